#!/usr/bin/env bash
# bench/first-run.sh: the README's first command (scripts/demo.sh) as a new user meets it: a clean clone,
# an empty cargo registry (a fresh CARGO_HOME) and no target folder, for each revision given, one after the
# other in the same run. Reports wall and CPU seconds of the three parts (fetching the crates, the demo's
# own `cargo build`, run with --timings, and the demo itself), the total, and the binary's size. The
# timings pages are kept under bench/work/first-run/<rev>/ (open cargo-timings/cargo-timing.html).
#
#   bench/first-run.sh [REV...]     # default: 5ce9dd9 (fat LTO, AWS SDK) and HEAD
#
# FIRST_RUN_ALSO="cargo build --release --locked -p staleguard" also times that build, cold (its own
# profile shares nothing with the demo's), in the last revision's clone after its demo: another row.
#
# Needs the network for crates.io (that is part of what a first run costs). Nothing else should run on the
# machine meanwhile: these are wall-clock numbers on a small machine.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

WORK="$BENCH_DIR/work/first-run"
mkdir -p "$WORK"
revs=("$@")
[ ${#revs[@]} -gt 0 ] || revs=(5ce9dd9 HEAD)
REPORT="$WORK/results.md"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

fmt() { printf '%dm%02ds' "$(echo "$1 / 60" | bc)" "$(echo "$1 % 60 / 1" | bc)"; }

# timed OUTFILE CMD...: runs CMD, appends "wall user sys" to OUTFILE.
timed() {
  local out="$1"
  shift
  /usr/bin/time -f '%e %U %S' -o "$out.t" "$@"
  cat "$out.t" >>"$out"
}

{
  echo "# First run, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($CPU_MODEL), $(free -g | awk '/^Mem/{print $2}') GiB"
  echo
  echo "| revision | demo's build command | fetch crates | build | demo itself | total wall | total CPU | binary |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$REPORT"

for rev in "${revs[@]}"; do
  sha="$(git -C "$ROOT" rev-parse --short "$rev")"
  dir="$WORK/$sha"
  rm -rf "$dir"
  mkdir -p "$dir"
  step "$rev ($sha): clean clone, empty CARGO_HOME"
  git clone -q "$ROOT" "$dir/src"
  git -C "$dir/src" checkout -q "$sha"
  export CARGO_HOME="$dir/cargo-home"
  unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
  mkdir -p "$CARGO_HOME"
  build_cmd="$(grep -E '^cargo build ' "$dir/src/scripts/demo.sh" | head -1)"
  [ -n "$build_cmd" ] || die "no \`cargo build\` line in $rev's scripts/demo.sh"
  t="$dir/times"
  : >"$t"
  (cd "$dir/src" && timed "$t" cargo fetch --locked) >"$dir/fetch.log" 2>&1 || die "fetch failed ($dir/fetch.log)"
  info "fetched: $(tail -1 "$t")"
  # shellcheck disable=SC2086
  (cd "$dir/src" && timed "$t" $build_cmd --timings) >"$dir/build.log" 2>&1 || die "build failed ($dir/build.log)"
  info "built ($build_cmd): $(tail -1 "$t")"
  # The demo's own build line is now a no-op (a second or so, counted in the demo).
  (cd "$dir/src" && timed "$t" bash scripts/demo.sh) >"$dir/demo.log" 2>&1 || die "demo failed ($dir/demo.log)"
  info "demo: $(tail -1 "$t")"
  cp -r "$dir/src/target/cargo-timings" "$dir/" 2>/dev/null || true
  bin="$(ls -t "$dir"/src/target/*/staleguard 2>/dev/null | head -1)"
  size="$(du -m "$bin" | cut -f1)"
  read -r fw fu fs < <(sed -n 1p "$t")
  read -r bw bu bs < <(sed -n 2p "$t")
  read -r dw du_ ds < <(sed -n 3p "$t")
  total_wall="$(echo "$fw + $bw + $dw" | bc)"
  total_cpu="$(echo "$fu + $fs + $bu + $bs + $du_ + $ds" | bc)"
  echo "| $rev ($sha) | \`$build_cmd\` | $(fmt "$fw") | $(fmt "$bw") ($(fmt "$(echo "$bu + $bs" | bc)") CPU) | $(fmt "$dw") | **$(fmt "$total_wall")** | $(fmt "$total_cpu") | ${size} MB |" >>"$REPORT"
  # The longest compile units, from the timings page's data.
  html="$(ls "$dir"/cargo-timings/cargo-timing-*.html 2>/dev/null | head -1)"
  if [ -n "$html" ]; then
    python3 - "$html" >"$dir/longest.txt" <<'EOF' || true
import json, re, sys
text = open(sys.argv[1]).read()
m = re.search(r'const UNIT_DATA = (\[.*?\]);\n', text, re.S)
units = json.loads(m.group(1)) if m else []
for u in sorted(units, key=lambda u: -u["duration"])[:8]:
    print(f'{u["name"]} {u.get("target", "").strip()} {u["duration"]:.1f}s')
EOF
    info "longest units: $(paste -sd';' "$dir/longest.txt")"
  fi
done
if [ -n "${FIRST_RUN_ALSO:-}" ]; then
  step "also: $FIRST_RUN_ALSO (cold, in $sha's clone)"
  : >"$dir/also.times"
  # shellcheck disable=SC2086
  (cd "$dir/src" && timed "$dir/also.times" $FIRST_RUN_ALSO --timings) >"$dir/also.log" 2>&1 || die "failed ($dir/also.log)"
  read -r aw au as < <(sed -n 1p "$dir/also.times")
  bin="$(ls -t "$dir"/src/target/*/staleguard | head -1)"
  echo "| ${revs[-1]} ($sha), instead | \`$FIRST_RUN_ALSO\` | (fetched) | $(fmt "$aw") ($(fmt "$(echo "$au + $as" | bc)") CPU) | | | | $(du -m "$bin" | cut -f1) MB |" >>"$REPORT"
fi
echo
cat "$REPORT"
for rev in "${revs[@]}"; do
  sha="$(git -C "$ROOT" rev-parse --short "$rev")"
  echo
  echo "longest compile units, $rev ($sha):"
  cat "$WORK/$sha/longest.txt" 2>/dev/null || true
done
