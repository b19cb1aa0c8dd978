#!/usr/bin/env bash
# bench/plan.sh: the invalidation planner (`staleguard_core::purge::plan`) against s3deploy's CloudFront
# path reduction (re-implemented in the bench) and the all-paths plan, on a generated 50,000-page docs
# site, with CloudFront's limits and prices, in two months: the 1,000 free paths used up, and all left.
# Prints a Markdown table: billed items, unchanged URLs swept, changed URLs missed, the cost in dollars
# under the same prices ($0.005 a path past the free ones, $0.0000004 a swept URL), planning time.
# See bench/README.md.
#
# Our planner runs with the CLI's defaults (no sweep cap, sweep-price $0.0000004).
#
# Targets:
#   our cost <= s3deploy's and <= the all-paths plan's on every row
#   no changed URL missed; nothing swept where the changed URLs fit in the free paths left
#   50,000 changed URLs planned in <= 20 ms (stretch: 100,000, all 50,000 pages)
#
# Environment:
#   BENCH_RUNS=21             timed runs per planner and deploy (medians reported)
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

RUNS="${BENCH_RUNS:-21}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
REPORT="$WORK/plan-results.md"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

step "building the bench (profile dist, fat LTO: a few minutes the first time)"
cargo build --profile dist -p staleguard-core --example plan_bench 2>"$LOGS/plan-build.log" ||
  { tail -n 30 "$LOGS/plan-build.log" >&2; die "build failed (log: $LOGS/plan-build.log)"; }

wait_idle
awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l >= 0.5) }' &&
  warn "load average at the start was $LOAD_START: timings are noisy on a busy machine"

step "planning ($RUNS timed runs per planner and deploy)"
TABLE="$WORK/plan-table.md"
cargo run --profile dist -q -p staleguard-core --example plan_bench -- --runs "$RUNS" >"$TABLE" 2>"$LOGS/plan-run.log" ||
  { tail -n 30 "$LOGS/plan-run.log" >&2; die "the bench failed (log: $LOGS/plan-run.log)"; }

{
  echo "# Invalidation planner vs s3deploy's reduction"
  echo
  echo "- Date: $START_DATE; load average at the start: $LOAD_START"
  echo "- Machine: $(nproc) cores ($CPU_MODEL); $(rustc --version)"
  echo "- $(cat "$LOGS/plan-run.log")"
  echo "- CloudFront: paths and wildcards, 3,000 items per call, 15 wildcards and 3,000 paths in flight, \$0.005 per path past 1,000 free a month"
  echo "- staleguard rows: the CLI's defaults (no sweep cap, sweep-price \$0.0000004 a swept URL); every cost under the same prices"
  echo
  cat "$TABLE"
  if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo
    for w in "${WARNINGS[@]}"; do echo "- warning: $w"; done
  fi
} >"$REPORT"
cat "$REPORT"
info "report: $REPORT"
