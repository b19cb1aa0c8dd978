#!/usr/bin/env bash
# bench/stats.sh: `staleguard stats` against GoAccess (Debian's package) on the same generated
# 10-million-line combined log, in one run: lines per second and peak memory (RSS) of each, and the
# ratios. See bench/README.md.
#
# The log (bench/work/stats-combined.log, generated once by awk with a fixed LCG seed, so every run
# and every machine reads the same bytes; regenerated when BENCH_STATS_LINES changes) is nginx's
# combined format with `$upstream_cache_status` appended (the format the README documents), over 7
# days: 300 fingerprinted assets, 5,000 pages, a few hundred 404 probes, 32,768 clients, 20 user
# agents, 85 % HIT.
# GoAccess reads it with `--log-format=COMBINED` (the trailing cache status is past its last
# specifier and ignored; the script checks that GoAccess counted every line as valid), writing its
# JSON report (`-o stats-goaccess.json`: a real report, not /dev/null). staleguard runs
# `stats LOG --json` with no config and no manifest (names decide the route class), on every core.
# Each is timed with /usr/bin/time -v (wall clock and maximum RSS); BENCH_ROUNDS rounds alternating
# the order; medians.
#
# Targets: staleguard lines/s >= 2 x GoAccess's, staleguard peak RSS < 100 MB.
#
# Environment:
#   STALEGUARD_BIN=PATH        use this binary instead of `cargo build --profile dist -p staleguard`
#   BENCH_STATS_LINES=10000000 lines in the generated log
#   BENCH_ROUNDS=3             timed runs per tool (alternating); the report shows medians
#   BENCH_NO_INSTALL=1         do not apt-get install goaccess when it is missing
#   BENCH_WAIT_IDLE=SECONDS    first wait (at most that long) for the 1-minute load average < 0.5
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

WORK="$BENCH_DIR/work"
LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

LINES="${BENCH_STATS_LINES:-10000000}"
[[ "$LINES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_STATS_LINES must be a positive integer"
ROUNDS="${BENCH_ROUNDS:-3}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
LOG="$WORK/stats-combined.log"
STAMP="$WORK/stats-combined.lines"
REPORT="$WORK/stats-results.md"
NPROC="$(nproc)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package \`time\`): it measures peak RSS"

step "GoAccess"
if ! command -v goaccess >/dev/null 2>&1; then
  [ "${BENCH_NO_INSTALL:-}" = 1 ] && die "goaccess is missing (apt-get install -y goaccess)"
  [ "$(id -u)" = 0 ] || die "goaccess is missing: sudo apt-get install -y goaccess"
  info "apt-get install -y goaccess"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq goaccess >"$LOGS/stats-goaccess-install.log" 2>&1 || {
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq goaccess \
      >>"$LOGS/stats-goaccess-install.log" 2>&1
  } || die "apt-get install goaccess failed (log: $LOGS/stats-goaccess-install.log)"
fi
GOACCESS_VERSION="$(goaccess --version 2>&1 | head -n 1)"
info "$GOACCESS_VERSION"

step "staleguard"
staleguard_bin "$LOGS/stats-cargo-build.log"
info "$("$SG" --version)"

step "the log: $LINES lines"
if [ -f "$LOG" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$LINES v2" ]; then
  info "reusing $LOG"
else
  rm -f "$LOG" "$STAMP"
  # A 31-bit LCG (glibc's constants): the same sequence for every awk, no srand() involved.
  awk -v n="$LINES" 'BEGIN {
    s = 12345
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon, " ")
    for (i = 0; i < 20; i++) ua[i] = sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", 100 + i, 100 + i)
    for (i = 0; i < 300; i++) {
      h = ""
      for (j = 0; j < 12; j++) { s = (s * 1103515245 + 12345) % 2147483648; h = h substr("0123456789abcdef", int(s / 65536) % 16 + 1, 1) }
      asset[i] = sprintf("/assets/%s.%s.%s", (i % 3 == 0 ? "app" : (i % 3 == 1 ? "vendor" : "style")), h, (i % 3 == 2 ? "css" : "js"))
    }
    t0 = 1714521600  # 2024-05-01T00:00:00Z; 7 days over n lines
    for (k = 0; k < n; k++) {
      s = (s * 1103515245 + 12345) % 2147483648; r = int(s / 65536)
      t = t0 + int(k * 604800 / n)
      d = int(t / 86400); sec = t % 86400
      day = d - 19844 + 1   # days since 2024-05-01, within May (the log spans 7 days)
      ts = sprintf("%02d/May/2024:%02d:%02d:%02d +0000", day, int(sec / 3600), int(sec / 60) % 60, sec % 60)
      p = r % 100
      if (p < 60) { path = asset[r % 300]; size = 20000 + (r % 300) * 97; st = 200 }
      else if (p < 95) { path = sprintf("/docs/page-%d.html", r % 5000); size = 4000 + r % 3000; st = 200 }
      else if (p < 97) { path = sprintf("/docs/page-%d.html?utm_source=x%d", r % 5000, r % 7); size = 0; st = 304 }
      else if (p < 99) { path = sprintf("/wp-login-%d.php", r % 400); size = 162; st = 404 }
      else { path = "/api/health"; size = 20; st = (r % 50 == 0 ? 503 : 200) }
      c = r % 20
      cache = (p < 95 ? (c < 17 ? "HIT" : (c < 19 ? "MISS" : "EXPIRED")) : (p < 99 ? "MISS" : "BYPASS"))
      printf "10.%d.%d.%d - - [%s] \"GET %s HTTP/1.1\" %d %d \"https://www.example.com/\" \"%s\" %s\n", int(r / 256) % 128, r % 256, (c * 13) % 250 + 1, ts, path, st, size, ua[c], cache
    }
  }' >"$LOG.tmp"
  mv "$LOG.tmp" "$LOG"
  echo "$LINES v2" >"$STAMP"
fi
LOG_BYTES="$(stat -c %s "$LOG")"
info "$(human_bytes "$LOG_BYTES"), $(wc -l <"$LOG") lines"

wait_idle

# timed NAME CMD...: runs CMD under /usr/bin/time -v; sets T_WALL (s) and T_RSS (kB).
timed() {
  local name=$1
  shift
  local tv="$LOGS/$name.time" rc=0
  /usr/bin/time -v -o "$tv" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
  # staleguard exits 3 when a threshold is crossed: a result, not a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    tail -n 20 "$LOGS/$name.err" | sed 's/^/    | /' >&2
    die "$name failed (exit $rc)"
  fi
  T_WALL="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tv")"
  T_RSS="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")"
  info "$(printf '%-22s wall %7.2f s   peak RSS %7.1f MB' "$name" "$T_WALL" "$(awk -v k="$T_RSS" 'BEGIN { print k / 1024 }')")"
}

SG_DIR="$WORK/stats-sg"
mkdir -p "$SG_DIR"
run_sg() { pushd "$SG_DIR" >/dev/null; timed "$1" "$SG" stats "$LOG" --json; popd >/dev/null; }
run_ga() { timed "$1" goaccess "$LOG" --log-format=COMBINED --no-progress -o "$WORK/stats-goaccess.json"; }

SG_W=() SG_R=() GA_W=() GA_R=()
step "timed runs ($ROUNDS each, alternating)"
for i in $(seq 1 "$ROUNDS"); do
  if [ $((i % 2)) -eq 1 ]; then
    run_sg "stats-sg-$i"; SG_W+=("$T_WALL"); SG_R+=("$T_RSS")
    run_ga "stats-goaccess-$i"; GA_W+=("$T_WALL"); GA_R+=("$T_RSS")
  else
    run_ga "stats-goaccess-$i"; GA_W+=("$T_WALL"); GA_R+=("$T_RSS")
    run_sg "stats-sg-$i"; SG_W+=("$T_WALL"); SG_R+=("$T_RSS")
  fi
done

# Both read every line: staleguard's requests and GoAccess's valid requests are the line count.
SG_REQ="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["requests"])' "$LOGS/stats-sg-1.out")"
SG_BAD="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["malformed"])' "$LOGS/stats-sg-1.out")"
GA_VALID="$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["general"]; print(g.get("valid_requests", g.get("total_requests")))' "$WORK/stats-goaccess.json")"
[ "$SG_REQ" = "$LINES" ] || die "staleguard counted $SG_REQ requests ($SG_BAD malformed), expected $LINES"
[ "$GA_VALID" = "$LINES" ] || die "GoAccess counted $GA_VALID valid requests, expected $LINES"
SG_HIT="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["total"]["hit_ratio"] * 100, 2))' "$LOGS/stats-sg-1.out")"

SG_WALL="$(median "${SG_W[*]}")"
GA_WALL="$(median "${GA_W[*]}")"
SG_RSS="$(median "${SG_R[*]}")"
GA_RSS="$(median "${GA_R[*]}")"
SG_LPS="$(div "$LINES" "$SG_WALL" 0)"
GA_LPS="$(div "$LINES" "$GA_WALL" 0)"
SPEED="$(div "$SG_LPS" "$GA_LPS" 2)"
SG_MB="$(awk -v k="$SG_RSS" 'BEGIN { printf "%.1f", k / 1024 }')"
GA_MB="$(awk -v k="$GA_RSS" 'BEGIN { printf "%.1f", k / 1024 }')"
MEM="$(div "$SG_MB" "$GA_MB" 2)"

{
  echo "# staleguard stats vs GoAccess"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $NPROC cores ($CPU_MODEL), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$("$SG" --version), $GOACCESS_VERSION; log: $LINES lines, $(human_bytes "$LOG_BYTES") (nginx combined + \$upstream_cache_status)"
  echo
  echo "| | staleguard stats | GoAccess | staleguard / GoAccess | target |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| wall (median of $ROUNDS) | ${SG_WALL} s | ${GA_WALL} s | | |"
  echo "| lines/s | $SG_LPS | $GA_LPS | **${SPEED}x** | >= 2x: $(cmp_ok "$SPEED" ">=" 2) |"
  echo "| peak RSS | $SG_MB MB | $GA_MB MB | ${MEM}x | staleguard < 100 MB: $(cmp_ok "$SG_MB" "<=" 100) |"
  echo
  echo "Runs (wall s): staleguard ${SG_W[*]}; GoAccess ${GA_W[*]}. Both counted $LINES requests; staleguard's hit ratio $SG_HIT %."
} >"$REPORT"
step "report: $REPORT"
cat "$REPORT"
