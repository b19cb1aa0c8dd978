#!/usr/bin/env bash
# bench/build.sh: `staleguard build` against Django collectstatic + WhiteNoise and against the
# compression floor, on one corpus of real static files, in one run; prints the timings side by side
# and the ratios the targets are stated in. See bench/README.md.
#
# Targets:
#   cold build              <= 1.15 x the floor (compress each distinct content once, every core)
#                           => >= 1.8 x faster than Django + WhiteNoise collectstatic
#   one-file-change rebuild >= 100 x faster than WhiteNoise's collectstatic re-run after that change
#   no-change rebuild       >= 50 x faster than our own cold build
#
# Environment:
#   BENCH_SMALL=1             small corpus (bootstrap + Django admin) for quick testing
#   BENCH_SKIP_STALEGUARD=1   run everything but staleguard (its rows read n/a)
#   BENCH_SKIP_WHITENOISE=1   skip Django + WhiteNoise          (for development)
#   BENCH_SKIP_FLOOR=1        skip both floors                  (for development)
#   STALEGUARD_BIN=PATH       use this binary instead of `cargo build --profile dist -p staleguard`
#   BENCH_FLOOR_TARGET_DIR    cargo target dir of the floor tool (default bench/work/floor-target)
#   STALEGUARD_VENV           Python venv (see scripts/pyenv.sh)
#   BENCH_WAIT_IDLE=SECONDS   first wait (at most that long) for the 1-minute load average < 0.5
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

WORK="$BENCH_DIR/work"
LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# Pinned corpus sources.
BOOTSTRAP_VERSION=5.3.3
FONTAWESOME_VERSION=6.7.1
MONACO_VERSION=0.52.2

SMALL="${BENCH_SMALL:-0}"
SKIP_SG="${BENCH_SKIP_STALEGUARD:-0}"
SKIP_WN="${BENCH_SKIP_WHITENOISE:-0}"
SKIP_FLOOR="${BENCH_SKIP_FLOOR:-0}"
if [ "$SMALL" = 1 ]; then
  CORPUS="$WORK/corpus-small"
  VARIANT="small (BENCH_SMALL=1: bootstrap + admin)"
else
  CORPUS="$WORK/corpus"
  VARIANT="full"
fi
# The one file changed between a build and its rebuild: a plain bootstrap stylesheet that no other
# file of the corpus imports or references (bootstrap.css inlines reboot instead of importing it).
CHANGED_REL="bootstrap/css/bootstrap-reboot.css"
CHANGE_TEXT=$'\n/* staleguard bench: one-file change */\n'
# Monaco files excluded from the corpus for BOTH tools: their `//# sourceMappingURL=../min-maps/...`
# points at min/min-maps/, which monaco-editor does not ship, and Django's ManifestStaticFilesStorage
# post_process raises ValueError on a missing referenced file whatever manifest_strict says.
MONACO_EXCLUDED=(de es fr it ja ko ru zh-cn zh-tw)

NPROC="$(nproc)"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

step "staleguard build benchmark ($VARIANT corpus), $NPROC cores, timer: $TIMER"
info "work dir: $WORK"
wait_idle
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  warn "load average is $LOAD_START before starting: other processes are using the CPU, timings will be noisy"
fi

# ------------------------------------------------------------------------------------------------
step "Python venv (scripts/pyenv.sh)"
# shellcheck source=scripts/pyenv.sh
source "$ROOT/scripts/pyenv.sh"
ensure_venv || die "could not set up the Python venv (scripts/pyenv.sh ensure_venv)"
PY="$VIRTUAL_ENV/bin/python"
"$PY" -c 'import django, whitenoise, brotli' 2>/dev/null ||
  die "the venv at $VIRTUAL_ENV lacks django, whitenoise or brotli"
read -r V_DJANGO V_WHITENOISE V_BROTLI < <("$PY" -c '
from importlib.metadata import version
print(version("django"), version("whitenoise"), version("brotli"))')
info "Django $V_DJANGO, whitenoise $V_WHITENOISE, brotli (py) $V_BROTLI"

# ------------------------------------------------------------------------------------------------
# Build/locate the binaries first, so a broken build fails before minutes of timing.
step "Tools"
SG_OUT="$WORK/sg-out"
SG_CACHE="$WORK/sg-cache"
if [ "$SKIP_SG" = 1 ]; then
  info "staleguard: skipped (BENCH_SKIP_STALEGUARD=1)"
else
  staleguard_bin "$LOGS/cargo-staleguard.log"
  SG_VERSION="$("$SG" --version 2>/dev/null | head -n 1 || true)"
  info "staleguard binary: $SG ${SG_VERSION:+($SG_VERSION)}"
fi
if [ "$SKIP_FLOOR" != 1 ]; then
  command -v cargo >/dev/null || die "cargo is required to build the floor tool (bench/floor)"
  FLOOR_TARGET="${BENCH_FLOOR_TARGET_DIR:-$WORK/floor-target}"
  info "cargo build --release --manifest-path bench/floor/Cargo.toml (target: $FLOOR_TARGET)"
  locked=()
  [ -f "$BENCH_DIR/floor/Cargo.lock" ] && locked=(--locked)
  CARGO_TARGET_DIR="$FLOOR_TARGET" cargo build --release "${locked[@]}" --manifest-path "$BENCH_DIR/floor/Cargo.toml" \
    >"$LOGS/cargo-floor.log" 2>&1 || {
    tail -n 25 "$LOGS/cargo-floor.log" | sed 's/^/    | /' >&2
    die "building bench/floor failed (log: $LOGS/cargo-floor.log)"
  }
  FLOOR_BIN="$FLOOR_TARGET/release/staleguard-bench-floor"
fi

# ------------------------------------------------------------------------------------------------
step "Corpus"
CORPUS_SPEC="v2 small=$SMALL bootstrap=$BOOTSTRAP_VERSION fontawesome=$FONTAWESOME_VERSION monaco=$MONACO_VERSION django=$V_DJANGO"
PRISTINE="$CORPUS.pristine-$(basename "$CHANGED_REL")"
if [ -d "$CORPUS" ] && [ "$(cat "$CORPUS.spec" 2>/dev/null)" = "$CORPUS_SPEC" ] && [ -f "$PRISTINE" ]; then
  info "reusing $CORPUS"
else
  command -v npm >/dev/null || die "npm is required to fetch the corpus packages"
  NPM_DIR="$WORK/npm"
  pkgs=("bootstrap@$BOOTSTRAP_VERSION")
  [ "$SMALL" = 1 ] || pkgs+=("@fortawesome/fontawesome-free@$FONTAWESOME_VERSION" "monaco-editor@$MONACO_VERSION")
  info "npm install ${pkgs[*]}"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "${pkgs[@]}" \
    >"$LOGS/npm.log" 2>&1 || { tail -n 20 "$LOGS/npm.log" >&2; die "npm install failed (log: $LOGS/npm.log)"; }
  NM="$NPM_DIR/node_modules"
  ADMIN_STATIC="$("$PY" -c 'import django, os; print(os.path.join(os.path.dirname(django.__file__), "contrib/admin/static/admin"))')"
  [ -d "$ADMIN_STATIC" ] || die "Django admin static files not found at $ADMIN_STATIC"

  tmp="$CORPUS.tmp"
  rm -rf "$tmp" "$CORPUS" "$CORPUS.spec"
  mkdir -p "$tmp"
  cp -r "$NM/bootstrap/dist" "$tmp/bootstrap"
  cp -r "$ADMIN_STATIC" "$tmp/admin"
  if [ "$SMALL" != 1 ]; then
    mkdir -p "$tmp/fontawesome" "$tmp/monaco"
    for d in css webfonts svgs; do cp -r "$NM/@fortawesome/fontawesome-free/$d" "$tmp/fontawesome/$d"; done
    # min/ plus min-maps/: min/vs/loader.js, editor/editor.main.js and base/worker/workerMain.js
    # reference ../min-maps/...; without the maps Django's post_process fails on them.
    cp -r "$NM/monaco-editor/min" "$tmp/monaco/min"
    cp -r "$NM/monaco-editor/min-maps" "$tmp/monaco/min-maps"
    for l in "${MONACO_EXCLUDED[@]}"; do
      rm -f "$tmp/monaco/min/vs/nls.messages.$l.js" "$tmp/monaco/min-maps/nls.messages.$l.js.map"
    done
  fi
  [ -f "$tmp/$CHANGED_REL" ] || die "the file to change, $CHANGED_REL, is not in the corpus"
  cp "$tmp/$CHANGED_REL" "$PRISTINE"
  mv "$tmp" "$CORPUS"
  echo "$CORPUS_SPEC" >"$CORPUS.spec"
fi
# Every run starts from the pristine file (an earlier run appended to it).
cp "$PRISTINE" "$CORPUS/$CHANGED_REL"
read -r CORPUS_FILES CORPUS_BYTES < <(dir_stats "$CORPUS")
info "$CORPUS: $CORPUS_FILES files, $CORPUS_BYTES bytes ($(human_bytes "$CORPUS_BYTES"))"
for top in "$CORPUS"/*/; do
  read -r n b < <(dir_stats "$top")
  info "  $(basename "$top"): $n files, $(human_bytes "$b")"
done
info "file changed for the rebuilds: $CHANGED_REL (a comment appended)"

apply_change() { printf '%s' "$CHANGE_TEXT" >>"$CORPUS/$CHANGED_REL"; }
restore_change() { cp "$PRISTINE" "$CORPUS/$CHANGED_REL"; }

# manifest_lookup MANIFEST KEY: the hashed name a staticfiles.json maps KEY to ("" if none)
manifest_lookup() {
  "$PY" - "$1" "$2" <<'EOF' 2>/dev/null || true
import json, sys
try:
    print(json.load(open(sys.argv[1])).get("paths", {}).get(sys.argv[2], ""))
except Exception:
    print("")
EOF
}

# output_stats DIR -> "FILES BR GZ"
output_stats() {
  find "$1" -type f -printf '%f\n' | awk '{ n++ } /\.br$/ { br++ } /\.gz$/ { gz++ } END { printf "%d %d %d\n", n, br, gz }'
}

# ------------------------------------------------------------------------------------------------
if [ "$SKIP_SG" = 1 ]; then
  step "staleguard: skipped (BENCH_SKIP_STALEGUARD=1)"
else
  step "staleguard build"
  SG_BUILD=("$SG" build "$CORPUS" -o "$SG_OUT" --cache-dir "$SG_CACHE" --json)
  sg_fail() { die "staleguard build failed ($1); see $LOGS/sg-$1.err; command: $SG build $CORPUS -o $SG_OUT --cache-dir $SG_CACHE --json"; }

  rm -rf "$SG_OUT" "$SG_CACHE"
  restore_change
  run_timed sg_cold "$WORK/sg-cold.json" "$LOGS/sg-cold.err" "${SG_BUILD[@]}" || sg_fail cold
  SG_HASH_BEFORE="$(manifest_lookup "$SG_OUT/staticfiles.json" "$CHANGED_REL")"
  [ -f "$SG_OUT/staticfiles.json" ] || warn "staleguard wrote no $SG_OUT/staticfiles.json"
  read -r SG_OUT_FILES SG_OUT_BR SG_OUT_GZ < <(output_stats "$SG_OUT")
  info "output: $SG_OUT_FILES files, of which $SG_OUT_BR .br and $SG_OUT_GZ .gz"
  [ "$SG_OUT_BR" -gt 0 ] || warn "staleguard's output has no .br file: did it precompress anything?"

  apply_change
  run_timed sg_change "$WORK/sg-change.json" "$LOGS/sg-change.err" "${SG_BUILD[@]}" || sg_fail change
  SG_HASH_AFTER="$(manifest_lookup "$SG_OUT/staticfiles.json" "$CHANGED_REL")"
  if [ -z "$SG_HASH_AFTER" ] || [ "$SG_HASH_BEFORE" = "$SG_HASH_AFTER" ]; then
    warn "staleguard's staticfiles.json did not pick up the change to $CHANGED_REL ($SG_HASH_BEFORE -> $SG_HASH_AFTER)"
  fi

  # No-change rebuild: three runs, the median counts (it is short, so one run is noisy).
  nc=()
  for i in 1 2 3; do
    run_timed "sg_nochange_$i" "$WORK/sg-nochange.json" "$LOGS/sg-nochange.err" "${SG_BUILD[@]}" || sg_fail nochange
    nc+=("${WALL[sg_nochange_$i]}")
  done
  med="$(median3 "${nc[@]}")"
  for i in 1 2 3; do
    if [ "${WALL[sg_nochange_$i]}" = "$med" ]; then
      WALL["sg_nochange"]=$med USER_S["sg_nochange"]=${USER_S["sg_nochange_$i"]} SYS_S["sg_nochange"]=${SYS_S["sg_nochange_$i"]}
      break
    fi
  done
  restore_change
fi

# ------------------------------------------------------------------------------------------------
WN_OUT="$WORK/wn-out"
if [ "$SKIP_WN" = 1 ]; then
  step "Django + WhiteNoise: skipped (BENCH_SKIP_WHITENOISE=1)"
else
  step "Django + WhiteNoise collectstatic"
  DJ="$WORK/django"
  mkdir -p "$DJ"
  cat >"$DJ/benchsettings.py" <<EOF
# Written by bench/build.sh: throwaway settings for timing collectstatic.
SECRET_KEY = "bench-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.staticfiles"]
STATIC_URL = "/static/"
STATICFILES_DIRS = [$("$PY" -c 'import sys; print(repr(sys.argv[1]))' "$CORPUS")]
STATIC_ROOT = $("$PY" -c 'import sys; print(repr(sys.argv[1]))' "$WN_OUT")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EOF
  cat >"$DJ/manage.py" <<'EOF'
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsettings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
EOF
  # (run_timed needs a real command, not a shell function; manage.py puts its own folder on sys.path)
  COLLECTSTATIC=("$PY" "$DJ/manage.py" collectstatic --noinput)

  rm -rf "$WN_OUT"
  restore_change
  run_timed wn_cold "$LOGS/wn-cold.out" "$LOGS/wn-cold.err" "${COLLECTSTATIC[@]}" ||
    die "WhiteNoise cold collectstatic failed; see $LOGS/wn-cold.err"
  info "$(tail -n 1 "$LOGS/wn-cold.out")"
  WN_HASH_BEFORE="$(manifest_lookup "$WN_OUT/staticfiles.json" "$CHANGED_REL")"
  apply_change
  run_timed wn_rerun "$LOGS/wn-rerun.out" "$LOGS/wn-rerun.err" "${COLLECTSTATIC[@]}" ||
    die "WhiteNoise collectstatic re-run failed; see $LOGS/wn-rerun.err"
  info "$(tail -n 1 "$LOGS/wn-rerun.out")"
  WN_HASH_AFTER="$(manifest_lookup "$WN_OUT/staticfiles.json" "$CHANGED_REL")"
  if [ -z "$WN_HASH_AFTER" ] || [ "$WN_HASH_BEFORE" = "$WN_HASH_AFTER" ]; then
    warn "WhiteNoise's manifest did not pick up the change to $CHANGED_REL ($WN_HASH_BEFORE -> $WN_HASH_AFTER)"
  fi
  read -r WN_OUT_FILES WN_OUT_BR WN_OUT_GZ < <(output_stats "$WN_OUT")
  info "output: $WN_OUT_FILES files, of which $WN_OUT_BR .br and $WN_OUT_GZ .gz"
  restore_change
fi

# ------------------------------------------------------------------------------------------------
if [ "$SKIP_FLOOR" = 1 ]; then
  step "Floors: skipped (BENCH_SKIP_FLOOR=1)"
else
  step "Floor 1: Rust (brotli crate q11 lgwin22 + flate2 gzip 9, rayon, largest first)"
  run_timed floor_rust "$WORK/floor-rust.txt" "$LOGS/floor-rust.err" "$FLOOR_BIN" "$CORPUS" ||
    die "the Rust floor failed; see $LOGS/floor-rust.err"
  info "$(cat "$LOGS/floor-rust.err")"

  step "Floor 2: C brotli + zlib via Python (brotli.compress, gzip 9, multiprocessing.Pool($NPROC), largest first)"
  run_timed floor_c "$WORK/floor-c.txt" "$LOGS/floor-c.err" "$PY" "$BENCH_DIR/floor/c_floor.py" "$CORPUS" ||
    die "the C floor failed; see $LOGS/floor-c.err"
  info "$(cat "$LOGS/floor-c.err")"

  for f in rust c; do
    r="$(kv "$WORK/floor-$f.txt" cpu_over_wall)"
    if awk -v r="$r" -v n="$NPROC" 'BEGIN { exit !(r < 0.8 * n) }'; then
      warn "floor ($f): (user+sys)/wall = $r on $NPROC cores (< $(awk -v n="$NPROC" 'BEGIN { print 0.8 * n }')): not every core was busy (other processes competing for the CPU?), so this floor is too high"
    fi
  done
fi

# ------------------------------------------------------------------------------------------------
step "Report"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
V_RUSTC="$(rustc --version 2>/dev/null || echo n/a)"

w() { echo "${WALL[$1]:-n/a}"; }
row() { # row LABEL KEY
  local k=$2
  if [ -n "${WALL[$k]:-}" ]; then
    printf '| %s | %s | %s | %s | %s |\n' "$1" "${WALL[$k]}" "${USER_S[$k]}" "${SYS_S[$k]}" \
      "$(div "$(awk -v u="${USER_S[$k]}" -v s="${SYS_S[$k]}" 'BEGIN { print u + s }')" "${WALL[$k]}")"
  else
    printf '| %s | n/a | n/a | n/a | n/a |\n' "$1"
  fi
}
ratio_row() { # ratio_row LABEL NUM DEN OP LIMIT
  local r
  r="$(div "$2" "$3")"
  if [ -n "${4:-}" ]; then
    printf '| %s | %s | %s %s | %s |\n' "$1" "$r" "$4" "$5" "$(cmp_ok "$r" "$4" "$5")"
  else
    printf '| %s | %s | (info) | |\n' "$1" "$r"
  fi
}
ideal_wall() { awk -v u="${USER_S[$1]:-}" -v s="${SYS_S[$1]:-}" -v n="$NPROC" 'BEGIN { if (u == "") print "n/a"; else printf "%.1f", (u + s) / n }'; }
floor_cell() { [ -f "$WORK/floor-$1.txt" ] && kv "$WORK/floor-$1.txt" "$2" || echo n/a; }

REPORT="$WORK/build-results.md"
{
  echo "# staleguard build benchmark"
  echo
  echo "- date: $START_DATE"
  echo "- machine: $NPROC cores (nproc), $CPU_MODEL; load average $LOAD_START at start, $LOAD_END at end"
  echo "- corpus ($VARIANT): $CORPUS_FILES files, $CORPUS_BYTES bytes ($(human_bytes "$CORPUS_BYTES")); bootstrap $BOOTSTRAP_VERSION dist/, Django $V_DJANGO admin static$([ "$SMALL" = 1 ] || echo ", fontawesome-free $FONTAWESOME_VERSION css+webfonts+svgs, monaco-editor $MONACO_VERSION min/+min-maps/ (less min/vs/nls.messages.{$(IFS=,; echo "${MONACO_EXCLUDED[*]}")}.js and their maps)")"
  echo "- changed file for the rebuilds: \`$CHANGED_REL\` (a CSS comment appended)"
  echo "- versions: Django $V_DJANGO, whitenoise $V_WHITENOISE, brotli (py) $V_BROTLI, $V_RUSTC${SG_VERSION:+, $SG_VERSION}"
  echo "- timer: wall from bash \$EPOCHREALTIME, CPU from $TIMER; page cache warm for every step"
  echo
  echo "| step | wall s | user s | sys s | cpu/wall |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  row "Django+WhiteNoise collectstatic, cold (empty STATIC_ROOT)" wn_cold
  row "Django+WhiteNoise collectstatic re-run after one change" wn_rerun
  row "staleguard build, cold (no out, no cache)" sg_cold
  row "staleguard build after one change" sg_change
  row "staleguard build, no change (median of 3)" sg_nochange
  row "floor, Rust: brotli crate + flate2, $(floor_cell rust threads) threads" floor_rust
  row "floor, C: brotli.compress + zlib, $(floor_cell c processes) processes" floor_c
  echo
  echo "| ratio | value | target | |"
  echo "| --- | ---: | --- | --- |"
  ratio_row "WhiteNoise cold / staleguard cold" "$(w wn_cold)" "$(w sg_cold)" ">=" 1.8
  ratio_row "staleguard cold / Rust floor" "$(w sg_cold)" "$(w floor_rust)" "<=" 1.15
  ratio_row "staleguard cold / C floor" "$(w sg_cold)" "$(w floor_c)" "<=" 1.15
  ratio_row "WhiteNoise re-run / staleguard one-change rebuild" "$(w wn_rerun)" "$(w sg_change)" ">=" 100
  ratio_row "staleguard cold / staleguard no-change rebuild" "$(w sg_cold)" "$(w sg_nochange)" ">=" 50
  ratio_row "WhiteNoise cold / Rust floor" "$(w wn_cold)" "$(w floor_rust)"
  ratio_row "C floor / Rust floor" "$(w floor_c)" "$(w floor_rust)"
  echo
  if [ "$SKIP_FLOOR" != 1 ]; then
    echo "Floors: $(floor_cell rust distinct_contents) distinct compressible contents, $(floor_cell rust distinct_bytes) bytes" \
      "($(floor_cell rust skipped_files) files skipped by extension);" \
      "brotli output $(floor_cell rust brotli_bytes) bytes (Rust) vs $(floor_cell c brotli_bytes) (C);" \
      "gzip output $(floor_cell rust gzip_bytes) (flate2) vs $(floor_cell c gzip_bytes) (zlib)." \
      "(user+sys)/wall: Rust $(floor_cell rust cpu_over_wall), C $(floor_cell c cpu_over_wall) on $NPROC cores;" \
      "wall at full parallelism, (user+sys)/$NPROC: Rust $(ideal_wall floor_rust) s, C $(ideal_wall floor_c) s."
    echo
  fi
  if [ -n "${WN_OUT_FILES:-}" ] || [ -n "${SG_OUT_FILES:-}" ]; then
    echo "Outputs: WhiteNoise ${WN_OUT_FILES:-n/a} files (${WN_OUT_BR:-n/a} .br, ${WN_OUT_GZ:-n/a} .gz);" \
      "staleguard ${SG_OUT_FILES:-n/a} files (${SG_OUT_BR:-n/a} .br, ${SG_OUT_GZ:-n/a} .gz)."
    echo
  fi
  if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo "Warnings:"
    for m in "${WARNINGS[@]}"; do echo "- $m"; done
    echo
  fi
} >"$REPORT"
echo >&2
cat "$REPORT"
info "report written to $REPORT; logs in $LOGS"
