#!/usr/bin/env bash
# bench/ci.sh: a deploy from a fresh CI runner (no .staleguard/cache, a fresh copy of the sources: every
# mtime new) after 10 source files changed since the last deploy, to S3 emulated by moto, in one run:
#
#   staleguard deploy (its build reuses the store's sidecars, `--reuse-from` its own store)
#   vs a cold `staleguard build` + `aws s3 sync` of the whole output (what a fresh runner does without it)
#
# Also, side by side on the same corpus: the cold build with source maps at the cheap levels (the default)
# and with every file at brotli 11 (`cheap-compress = []`, before), with the bytes browsers fetch.
# See bench/README.md.
#
# Targets: baseline / staleguard >= 50 (seconds, whole commands); requests proportional to the change
# (no LIST; counted from moto's log); bytes browsers fetch unchanged by the cheap levels; cold build with
# them <= 0.75 x without.
#
# Environment:
#   STALEGUARD_BIN=PATH   use this binary instead of `cargo build --profile dist -p staleguard`
#   STALEGUARD_VENV       Python venv with moto and awscli (scripts/pyenv.sh, scripts/peers/moto.sh)
#   BENCH_WAIT_IDLE=N     first wait up to N s for the load average to drop below 0.5
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

WORK="$BENCH_DIR/work"
LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

CORPUS="$WORK/corpus"
CI="$WORK/ci"
RUNS="$CI/runs"
MOTO_SH="$ROOT/scripts/peers/moto.sh"
REPORT="$WORK/ci-results.md"
B_SG=sg-ci
B_AWS=aws-ci
PREFIX=site
# The 10 source files changed since the last deploy: stylesheets (one imported by others, so its
# dependants are renamed too), scripts, an SVG, a source map.
CHANGED=(
  bootstrap/css/bootstrap-reboot.css
  bootstrap/css/bootstrap-grid.css
  bootstrap/js/bootstrap.bundle.js
  admin/css/base.css
  admin/css/forms.css
  admin/js/core.js
  admin/js/actions.js
  fontawesome/css/all.css
  fontawesome/svgs/solid/house.svg
  monaco/min-maps/vs/loader.js.map
)

NPROC="$(nproc)"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

# --- moto, stopped by PID on exit (also on error or Ctrl-C) -------------------------------------
MOTO_PID=""
MOTO_STATE=""
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
cleanup() {
  [ -n "$MOTO_PID" ] || return 0
  if alive "$MOTO_PID"; then "$MOTO_SH" stop "$MOTO_STATE" >/dev/null 2>&1 || true; fi
  if alive "$MOTO_PID"; then
    kill -TERM "$MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$MOTO_PID" || break; sleep 0.1; done
    alive "$MOTO_PID" && kill -KILL "$MOTO_PID" 2>/dev/null
  fi
  info "stopped moto_server (pid $MOTO_PID)"
  MOTO_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "CI on a fresh runner: staleguard deploy (reusing the store's sidecars) vs cold build + aws s3 sync, $NPROC cores, timer: $TIMER"
wait_idle
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  warn "load average is $LOAD_START before starting: other processes are using the CPU, timings will be noisy"
fi

step "Tools"
"$MOTO_SH" install || die "scripts/peers/moto.sh install failed"
AWS="$("$MOTO_SH" aws-bin)"
# shellcheck source=scripts/pyenv.sh
source "$ROOT/scripts/pyenv.sh"
VPY="$(staleguard_venv)/bin/python"
staleguard_bin "$LOGS/cargo-staleguard.log"
SG_VERSION="$("$SG" --version | head -n 1)"
info "staleguard: $SG ($SG_VERSION); aws: $("$AWS" --version 2>&1 | head -n 1)"

step "Corpus (bench/build.sh's: npm packages with their source maps, Django admin)"
if [ ! -f "$CORPUS.spec" ]; then
  info "building it with bench/build.sh (corpus only)"
  BENCH_SKIP_STALEGUARD=1 BENCH_SKIP_WHITENOISE=1 BENCH_SKIP_FLOOR=1 "$BENCH_DIR/build.sh" >"$LOGS/ci-corpus.log" 2>&1 ||
    die "bench/build.sh could not make the corpus (log: $LOGS/ci-corpus.log)"
fi
for f in "${CHANGED[@]}"; do [ -f "$CORPUS/$f" ] || die "$f is not in the corpus"; done
read -r CORPUS_FILES CORPUS_BYTES < <(dir_stats "$CORPUS")
MAP_FILES="$(find "$CORPUS" -name '*.map' | wc -l)"
MAP_BYTES="$(find "$CORPUS" -name '*.map' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
info "$CORPUS: $CORPUS_FILES files, $(human_bytes "$CORPUS_BYTES"); $MAP_FILES source maps, $(human_bytes "$MAP_BYTES")"

rm -rf "$CI"
mkdir -p "$RUNS"
# checkout NAME [changed]: a fresh copy of the project (sources and config; new mtimes, no output, no
# cache), with the 10 files changed when asked.
checkout() {
  local d="$CI/$1"
  rm -rf "$d"
  mkdir -p "$d"
  cp -r "$CORPUS" "$d/static"
  if [ "${2:-}" = changed ]; then
    for f in "${CHANGED[@]}"; do
      case "$f" in
        *.map) "$VPY" - "$d/static/$f" <<'EOF' ;;
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m["sources"] = [s + "?v=2" for s in m.get("sources", [])]
json.dump(m, open(p, "w"))
EOF
        *.svg) printf '\n<!-- ci bench: changed -->\n' >>"$d/static/$f" ;;
        *) printf '\n/* ci bench: changed */\n' >>"$d/static/$f" ;;
      esac
    done
  fi
  cat >"$d/staleguard.toml" <<EOF
[build]
source = "static"
out = "dist"
${3:-}

[deploy]
store = "s3://$B_SG/$PREFIX"
EOF
  echo "$d"
}

step "moto"
eval "$(MOTO_WATCH_PID=$$ "$MOTO_SH" start "$CI/moto")"
[ -n "$MOTO_PID" ] && [ -n "${MOTO_URL:-}" ] || die "scripts/peers/moto.sh start printed no MOTO_URL/MOTO_PID"
MOTO_LOG="$MOTO_STATE/moto.log"
eval "$("$MOTO_SH" env "$MOTO_URL")"
export AWS_CONFIG_FILE="$CI/aws-config"
: >"$AWS_CONFIG_FILE"
"$AWS" s3 mb "s3://$B_SG" >/dev/null || die "aws s3 mb s3://$B_SG failed"
"$AWS" s3 mb "s3://$B_AWS" >/dev/null || die "aws s3 mb s3://$B_AWS failed"
declare -A REQ=()
# timed NAME CWD STDOUT CMD...: run_timed in CWD (WALL[NAME]: the command alone), plus the requests moto
# served meanwhile (REQ[NAME]).
timed() {
  local name=$1 cwd=$2 out=$3 before after
  shift 3
  before="$(log_lines)"
  pushd "$cwd" >/dev/null
  run_timed "$name" "$out" "$RUNS/$name.err" "$@" || die "$name failed: see $RUNS/$name.err"
  popd >/dev/null
  after="$(log_lines)"
  sed -n "$((before + 1)),${after}p" "$MOTO_LOG" >"$RUNS/$name.requests.log"
  REQ[$name]="$(count_requests "$RUNS/$name.requests.log")"
  info "$name: ${WALL[$name]} s; requests (total GET HEAD PUT POST DELETE LIST non-2xx other) ${REQ[$name]}"
}
json_field() { "$VPY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    r = r[k] if k else r
print(r)' "$1" "$2"; }

# ------------------------------------------------------------------------------------------------
step "The last deploy (not timed): both buckets get the build of the unchanged sources"
BASE="$(checkout base)"
(cd "$BASE" && "$SG" deploy --json >"$RUNS/base-deploy.json" 2>"$RUNS/base-deploy.err") ||
  die "the first staleguard deploy failed: see $RUNS/base-deploy.err"
"$AWS" s3 sync "$BASE/dist" "s3://$B_AWS/$PREFIX/" --no-progress >"$RUNS/base-sync.out" 2>&1 ||
  die "the first aws s3 sync failed: see $RUNS/base-sync.out"
BASE_OBJECTS="$(json_field "$RUNS/base-deploy.json" objects)"
info "staleguard deployed $BASE_OBJECTS objects; aws s3 sync uploaded $(grep -c '^upload:' "$RUNS/base-sync.out") files"
sleep 1.1   # S3 keeps LastModified to the second

# ------------------------------------------------------------------------------------------------
step "Fresh runner, 10 files changed: staleguard deploy (build --reuse-from the store, then upload)"
RUN_SG="$(checkout runner-sg changed)"
timed sg_ci "$RUN_SG" "$RUNS/sg-ci.json" "$SG" deploy --json
SG_COMPRESSED="$(json_field "$RUNS/sg-ci.json" build.compressed_now)"
SG_REUSED="$(json_field "$RUNS/sg-ci.json" build.reused)"
SG_UPLOADS="$("$VPY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["plan"]["uploads"]))' "$RUNS/sg-ci.json")"
info "staleguard: ${WALL[sg_ci]} s; compressed $SG_COMPRESSED, reused $SG_REUSED; uploaded $SG_UPLOADS objects"

step "Fresh runner, 10 files changed: cold staleguard build + aws s3 sync of the whole output"
RUN_AWS="$(checkout runner-aws changed)"
timed base_build "$RUN_AWS" "$RUNS/base-build.json" "$SG" build --json
timed base_sync "$RUN_AWS" "$RUNS/base-sync2.out" "$AWS" s3 sync dist "s3://$B_AWS/$PREFIX/" --no-progress
AWS_UPLOADS="$(grep -c '^upload:' "$RUNS/base-sync2.out" || true)"
BASE_COMPRESSED="$(json_field "$RUNS/base-build.json" compressed_now)"
BASE_TOTAL="$(awk -v a="${WALL[base_build]}" -v b="${WALL[base_sync]}" 'BEGIN { printf "%.2f", a + b }')"
info "baseline: build ${WALL[base_build]} s ($BASE_COMPRESSED compressions) + sync ${WALL[base_sync]} s ($AWS_UPLOADS uploads)"

# ------------------------------------------------------------------------------------------------
step "Cold build, every file at brotli 11 (cheap-compress = []: before), same sources"
RUN_Q11="$(checkout runner-q11 changed 'cheap-compress = []')"
timed q11_build "$RUN_Q11" "$RUNS/q11-build.json" "$SG" build --json
# Bytes browsers fetch: every output file but source maps and their sidecars; and whether they are the
# same bytes in both outputs.
NOT_FETCHED=(! -name '*.map' ! -name '*.map.br' ! -name '*.map.gz' ! -name '.*' ! -name staleguard.manifest.json ! -name staticfiles.json ! -name build-info.json)
browser_bytes() { (cd "$1" && find . -type f "${NOT_FETCHED[@]}" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'); }
map_sidecar_bytes() { (cd "$1" && find . -type f \( -name '*.map.br' -o -name '*.map.gz' \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'); }
# (the manifests are not fetched by browsers and differ: they list the maps' sidecars)
browser_digest() { (cd "$1" && find . -type f "${NOT_FETCHED[@]}" -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }
BYTES_CHEAP="$(browser_bytes "$RUN_AWS/dist")"
BYTES_Q11="$(browser_bytes "$RUN_Q11/dist")"
MAPZ_CHEAP="$(map_sidecar_bytes "$RUN_AWS/dist")"
MAPZ_Q11="$(map_sidecar_bytes "$RUN_Q11/dist")"
DIGEST_CHEAP="$(browser_digest "$RUN_AWS/dist")"
DIGEST_Q11="$(browser_digest "$RUN_Q11/dist")"
SAME_BYTES=no
[ "$DIGEST_CHEAP" = "$DIGEST_Q11" ] && SAME_BYTES=yes
[ "$SAME_BYTES" = yes ] || warn "the files browsers fetch differ between the two builds"

# ------------------------------------------------------------------------------------------------
step "Report"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
RATIO="$(div "$BASE_TOTAL" "${WALL[sg_ci]}" 1)"
COLD_RATIO="$(div "${WALL[base_build]}" "${WALL[q11_build]}" 2)"
cpu() { awk -v u="${USER_S[$1]:-0}" -v s="${SYS_S[$1]:-0}" 'BEGIN { printf "%.2f", u + s }'; }
CPU_SG="$(cpu sg_ci)"
CPU_BASE="$(awk -v a="$(cpu base_build)" -v b="$(cpu base_sync)" 'BEGIN { printf "%.2f", a + b }')"
CPU_RATIO="$(div "$CPU_BASE" "$CPU_SG" 1)"
COLD_CPU_RATIO="$(div "$(cpu base_build)" "$(cpu q11_build)" 2)"
read -r -a RS <<<"${REQ[sg_ci]}"
read -r -a RA <<<"${REQ[base_sync]}"
{
  echo "# CI on a fresh runner: staleguard deploy vs cold build + aws s3 sync (S3 emulated by moto)"
  echo
  echo "- date: $START_DATE; machine: $NPROC cores, $CPU_MODEL; load average $LOAD_START at start, $LOAD_END at end"
  echo "- $SG_VERSION; $("$AWS" --version 2>&1 | head -n 1); moto $("$VPY" -c 'import moto; print(moto.__version__)')"
  echo "- corpus: bench/build.sh's, $CORPUS_FILES files, $(human_bytes "$CORPUS_BYTES"), of which $MAP_FILES source maps ($(human_bytes "$MAP_BYTES")); the deployed output holds $BASE_OBJECTS objects"
  echo "- changed since the last deploy (fresh copy, every mtime new, no cache, no output): ${CHANGED[*]}"
  echo
  echo "| run | seconds | CPU s (user+sys) | requests | GET | HEAD | PUT | POST | DELETE | LIST | compressions | objects uploaded |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  echo "| staleguard deploy (build reusing the store's sidecars + upload) | ${WALL[sg_ci]} | $CPU_SG | ${RS[0]} | ${RS[1]} | ${RS[2]} | ${RS[3]} | ${RS[4]} | ${RS[5]} | ${RS[6]} | $SG_COMPRESSED ($SG_REUSED reused) | $SG_UPLOADS |"
  echo "| cold staleguard build | ${WALL[base_build]} | $(cpu base_build) | 0 | | | | | | | $BASE_COMPRESSED | |"
  echo "| + aws s3 sync of the output | ${WALL[base_sync]} | $(cpu base_sync) | ${RA[0]} | ${RA[1]} | ${RA[2]} | ${RA[3]} | ${RA[4]} | ${RA[5]} | ${RA[6]} | | $AWS_UPLOADS |"
  echo
  echo "Cold build + sync / staleguard: **${RATIO}x** in seconds (target >= 50: $(cmp_ok "$RATIO" '>=' 50)), ${CPU_RATIO}x in CPU seconds (moto's own CPU not counted)."
  echo
  echo "## Source maps at the cheap levels (same sources, cold builds)"
  echo
  echo "| build | seconds | CPU s | bytes browsers fetch (all but *.map and their sidecars) | source-map sidecar bytes |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  echo "| every file at brotli 11 / gzip 9 (\`cheap-compress = []\`, before) | ${WALL[q11_build]} | $(cpu q11_build) | $BYTES_Q11 | $MAPZ_Q11 |"
  echo "| source maps at brotli 5 / gzip 6 (default, after) | ${WALL[base_build]} | $(cpu base_build) | $BYTES_CHEAP | $MAPZ_CHEAP |"
  echo
  echo "After / before: **${COLD_RATIO}x** in seconds (target <= 0.75: $(cmp_ok "$COLD_RATIO" '<=' 0.75)), ${COLD_CPU_RATIO}x in CPU seconds; what browsers fetch is byte-identical: **$SAME_BYTES**."
  if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo
    for w in "${WARNINGS[@]}"; do echo "- warning: $w"; done
  fi
} >"$REPORT"
cat "$REPORT"
info "report: $REPORT; raw data: $RUNS"
