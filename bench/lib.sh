# shellcheck shell=bash
# bench/lib.sh: helpers sourced by bench/build.sh (not meant to run on its own).
# Expects: set -euo pipefail, $WORK (bench/work) and $LOGS set by the caller.

# --- messages ---------------------------------------------------------------------------------
if [ -t 2 ]; then
  _B=$'\e[1m' _Y=$'\e[33m' _R=$'\e[31m' _N=$'\e[0m'
else
  _B='' _Y='' _R='' _N=''
fi
step() { printf '\n%s==> %s%s\n' "$_B" "$*" "$_N" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_Y" "$_N" "$*" >&2; WARNINGS+=("$*"); }
die() { printf '%serror:%s %s\n' "$_R" "$_N" "$*" >&2; exit 1; }
WARNINGS=()

# --- timing -----------------------------------------------------------------------------------
# Wall time comes from bash's $EPOCHREALTIME (microseconds) around the command; user and sys CPU
# seconds of the command and all its waited-for children from /usr/bin/time -f, or from bash's
# `time` keyword when /usr/bin/time is missing.
if [ -x /usr/bin/time ] && /usr/bin/time -f '%U' -o /dev/null true 2>/dev/null; then
  TIMER="/usr/bin/time"
else
  TIMER="bash-time"
fi

declare -A WALL=() USER_S=() SYS_S=()

# run_timed NAME STDOUT_FILE STDERR_FILE CMD...   (records WALL[NAME], USER_S[NAME], SYS_S[NAME])
# On failure: prints the tail of STDERR_FILE and returns the command's status.
run_timed() {
  local name=$1 out=$2 err=$3
  shift 3
  local tf="$LOGS/$name.cpu" t0 t1 rc=0
  t0=$EPOCHREALTIME
  if [ "$TIMER" = /usr/bin/time ]; then
    /usr/bin/time -f '%U %S' -o "$tf" "$@" >"$out" 2>"$err" || rc=$?
  else
    local TIMEFORMAT='%U %S'
    { time "$@" >"$out" 2>"$err" || rc=$?; } 2>"$tf"
  fi
  t1=$EPOCHREALTIME
  if [ "$rc" -ne 0 ]; then
    printf '%serror:%s %s failed (exit %s): %s\n' "$_R" "$_N" "$name" "$rc" "$*" >&2
    printf '    last lines of %s:\n' "$err" >&2
    tail -n 25 "$err" | sed 's/^/    | /' >&2
    return "$rc"
  fi
  WALL[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  # /usr/bin/time may print "Command exited with non-zero status" lines first: take the last line.
  read -r "USER_S[$name]" "SYS_S[$name]" < <(tail -n 1 "$tf")
  info "$(printf '%-28s wall %8.3f s   user %8.2f s   sys %6.2f s' "$name" "${WALL[$name]}" "${USER_S[$name]}" "${SYS_S[$name]}")"
}

# --- arithmetic on decimal strings (empty or "n/a" propagates as "n/a") ------------------------
div() { # div A B [DECIMALS]
  awk -v a="${1:-}" -v b="${2:-}" -v d="${3:-2}" 'BEGIN {
    if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) { print "n/a"; exit }
    r = a / b
    if (r < 1 && d < 3) d = 3
    printf "%.*f", d, r }'
}
# cmp_ok VALUE OP LIMIT -> "met" / "missed" / "n/a"
cmp_ok() {
  awk -v v="${1:-}" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "" || v == "n/a") { print "n/a"; exit }
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
    print ok ? "**met**" : "**MISSED**" }'
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# kv FILE KEY: value of a key=value line
kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# wait_idle: with BENCH_WAIT_IDLE=N, waits up to N s for the 1-minute load average to fall below 0.5, then
# resets LOAD_START and START_DATE.
wait_idle() {
  [ "${BENCH_WAIT_IDLE:-0}" -gt 0 ] || return 0
  info "waiting up to ${BENCH_WAIT_IDLE}s for the 1-minute load average to fall below 0.5 (BENCH_WAIT_IDLE)"
  local waited=0
  while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l >= 0.5) }' && [ "$waited" -lt "$BENCH_WAIT_IDLE" ]; do
    sleep 10
    waited=$((waited + 10))
  done
  # shellcheck disable=SC2034 # read by the sourcing script's report
  LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2034
  START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  info "load average now $LOAD_START after ${waited}s"
}

human_bytes() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

dir_stats() { # dir_stats DIR -> "FILES BYTES"
  find "$1" -type f -printf '%s\n' | awk '{ n++; s += $1 } END { printf "%d %d\n", n, s }'
}

# staleguard_bin LOGFILE: sets SG to $STALEGUARD_BIN, or builds `cargo build --profile dist -p staleguard` (log in
# LOGFILE; fat LTO, as releases are built) and uses target/dist/staleguard; dies with a hint when neither works. Needs ROOT.
staleguard_bin() {
  local log="$1"
  if [ -n "${STALEGUARD_BIN:-}" ]; then
    SG="$STALEGUARD_BIN"
    info "staleguard: using STALEGUARD_BIN=$SG"
  else
    command -v cargo >/dev/null || die "cargo not found (or set STALEGUARD_BIN to a built binary, or BENCH_SKIP_STALEGUARD=1)"
    info "cargo build --profile dist -p staleguard (log: $log)"
    (cd "$ROOT" && cargo build --profile dist --locked -p staleguard) >"$log" 2>&1 || {
      tail -n 25 "$log" | sed 's/^/    | /' >&2
      die "cargo build --profile dist -p staleguard failed; set STALEGUARD_BIN to a built binary, or BENCH_SKIP_STALEGUARD=1"
    }
    SG="${CARGO_TARGET_DIR:-$ROOT/target}/dist/staleguard"
  fi
  [ -x "$SG" ] || die "staleguard binary not found or not executable: $SG (set STALEGUARD_BIN, or BENCH_SKIP_STALEGUARD=1)"
}

# For the benches that count what moto served (deploy.sh, ci.sh); both need MOTO_LOG.
# The line count of moto's log once it has stopped growing (every request of the last command logged).
log_lines() {
  local a b
  b="$(wc -l <"$MOTO_LOG")"
  while :; do
    sleep 0.2
    a="$(wc -l <"$MOTO_LOG")"
    [ "$a" = "$b" ] && break
    b=$a
  done
  echo "$b"
}
# count_requests LOG -> "TOTAL GET HEAD PUT POST DELETE LIST NON2XX OTHER"
# LIST: a GET of the bucket itself (`/bucket?list-type=2&prefix=...`), not of a key.
count_requests() {
  awk 'match($0, /"[A-Z]+ [^ ]+ HTTP\/[0-9.]+" [0-9]+/) {
      split(substr($0, RSTART + 1, RLENGTH - 1), f, " ")
      m = f[1]; p = f[2]; st = f[4]
      sub(/\?.*/, "", p)
      if (m == "GET" && (p ~ /^\/[^\/]+\/?$/ || p == "/")) m = "LIST"
      if (m !~ /^(GET|HEAD|PUT|POST|DELETE|LIST)$/) m = "OTHER"
      n[m]++; t++
      if (st !~ /^2/) bad++
    }
    END { printf "%d %d %d %d %d %d %d %d %d\n", t, n["GET"], n["HEAD"], n["PUT"], n["POST"], n["DELETE"], n["LIST"], bad, n["OTHER"] }' "$1"
}

# build_site_and_pick_css SITE CACHE ENC LOG: builds examples/site into SITE with $SG (CACHE as its
# cache dir, output in LOG) and prints "LOGICAL URL_PATH RAW_SIZE ENC_SIZE" for the smallest
# fingerprinted (not mutable) .css file that has a sidecar of ENC (br, gzip): the file the serve and
# edge benchmarks measure.
build_site_and_pick_css() {
  local site="$1" cache="$2" enc="$3" log="$4"
  rm -rf "$site"
  "$SG" build examples/site -o "$site" --cache-dir "$cache" >"$log" 2>&1 || {
    tail -n 25 "$log" | sed 's/^/    | /' >&2
    die "staleguard build examples/site failed (log: $log)"
  }
  info "$(tail -n 1 "$log")"
  local manifest="$site/staleguard.manifest.json"
  [ -f "$manifest" ] || die "no manifest at $manifest"
  python3 - "$manifest" "$enc" <<'PY' || die "could not pick a CSS file from $manifest"
import json, sys
m = json.load(open(sys.argv[1]))
enc = sys.argv[2]
best = None
for logical, f in m.get("files", {}).items():
    e = (f.get("encodings") or {}).get(enc)
    if not logical.endswith(".css") or f.get("mutable") or not e or f.get("path") == logical:
        continue
    if best is None or f["size"] < best[2]:
        best = (logical, f["path"], f["size"], e["size"])
if best is None:
    sys.exit("no fingerprinted .css file with a %s sidecar in the manifest" % enc)
print(*best)
PY
}

# Shared by the server benches (serve, edge) and the deploy bench.
median() { # median of space-separated numbers (the lower middle one for an even count)
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}
stop_pid() { # stop_pid PID NAME: TERM, wait up to 10 s, then KILL
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$i" -eq 100 ] || sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  info "stopped $2 (pid $pid)"
}
to_bytes() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    m = 1; if (u == "KB") m = 1024; else if (u == "MB") m = 1048576; else if (u == "GB") m = 1073741824
    printf "%.0f", n * m }'
}
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}
hdr() { # hdr NAME FIELD: value of a response header (case-insensitive), CR stripped
  tr -d '\r' <"$HDRS/$1" | awk -v f="$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" -F': ' '
    { k = tolower($1) } k == f { sub(/^[^:]*: /, ""); print; exit }'
}
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# wrk_numbers FILE: "REQ/S P99_MS BYTES_PER_RESPONSE" from a `wrk --latency` output (dies without them).
wrk_numbers() {
  local out=$1 rps p99 nreq read bpr
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
  [ -n "$rps" ] || die "could not read Requests/sec from $out"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
  nreq="$(awk '/requests in/ { print $1 }' "$out")"
  read="$(awk '/requests in/ { print $(NF - 1) }' "$out")"
  bpr="$(awk -v b="$(to_bytes "$read")" -v n="$nreq" 'BEGIN { if (n > 0) printf "%.0f", b / n; else print "n/a" }')"
  echo "$rps $p99 $bpr"
}
