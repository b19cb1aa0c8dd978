#!/usr/bin/env bash
# bench/edge.sh: `staleguard edge` against Varnish 7, both caching the same small precompressed file from
# the same origin, one core each, in one run; prints cache-hit requests/s and p99 latency side by side
# and the ratio edge/Varnish, then a miss storm (1,000 concurrent requests for one never-seen URL) with
# the origin requests each cache let through. See bench/README.md.
#
# Hits: the origin is `staleguard serve` of the example site (CPU 1; it only serves the first miss).
# Each cache (staleguard edge: `taskset -c 0`; varnishd with scripts/peers/staleguard.vcl: its manager
# and cache process, every thread, `taskset -a -p -c 0`) gets the URL warmed (X-Cache: HIT,
# Content-Encoding: br, body = the .br sidecar, else the run fails), then a 2 s warm-up and
# `wrk -t1 -c32 -d10s --latency -H 'Accept-Encoding: br, gzip'` on CPU 1; BENCH_ROUNDS rounds, the
# order alternating (edge first in odd rounds); medians with ranges.
# Miss storm: a Python origin (CPU 1) that counts requests per path and answers after 0.5 s with
# `Cache-Control: public, max-age=60`; for each cache (a fresh instance on CPU 0 in front of it), a
# Python asyncio client (CPU 1) opens 1,000 connections, then writes one GET of a never-seen URL on
# every one of them at once and reads every response; then the origin's count for that URL. 3 runs,
# a fresh URL each, the order alternating.
# Then (when valgrind is installed) user-space instructions per hit of the edge under callgrind, like
# bench/serve.sh. Not for Varnish: its cache process is a fork of the manager, and callgrind_control
# (through valgrind's gdbserver, which a forked child does not get) cannot switch counting on in it.
#
# Environment:
#   STALEGUARD_BIN=PATH       use this binary instead of `cargo build --profile dist -p staleguard`
#   BENCH_ROUNDS=5            measured wrk runs per cache (alternating); the report shows medians
#   BENCH_DURATION=10s        length of each measured wrk run (warm-up: BENCH_WARMUP=2s)
#   BENCH_CONNECTIONS=32      wrk connections (one wrk thread)
#   BENCH_STORM_RUNS=3        miss storms per cache, a fresh URL each
#   BENCH_STORM_CLIENTS=1000  concurrent requests (connections) per storm
#   BENCH_STORM_DELAY=0.5     seconds the storm origin waits before answering
#   BENCH_EDGE_MEMORY=256MiB  staleguard edge --memory
#   BENCH_VARNISH_PARAMS="-p name=value ..."  extra varnishd arguments (default: none, stock thread pools)
#   BENCH_CALLGRIND=0         skip the callgrind Ir/hit step of the edge (default: on when valgrind and
#                             callgrind_control are installed; BENCH_CALLGRIND=1 fails without them)
#   BENCH_NO_INSTALL=1        do not install varnish, varnish-modules, wrk, valgrind
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

DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
CONNS="${BENCH_CONNECTIONS:-32}"
ROUNDS="${BENCH_ROUNDS:-5}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
STORM_RUNS="${BENCH_STORM_RUNS:-3}"
[[ "$STORM_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_STORM_RUNS must be a positive integer"
STORM_CLIENTS="${BENCH_STORM_CLIENTS:-1000}"
[[ "$STORM_CLIENTS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_STORM_CLIENTS must be a positive integer"
STORM_DELAY="${BENCH_STORM_DELAY:-0.5}"
[[ "$STORM_DELAY" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_STORM_DELAY must be a number of seconds"
STORM_TIMEOUT=60 # seconds a storm client waits for its response
EDGE_MEMORY="${BENCH_EDGE_MEMORY:-256MiB}"
VARNISH_EXTRA="${BENCH_VARNISH_PARAMS:-}"
CALLGRIND="${BENCH_CALLGRIND:-auto}"
case $CALLGRIND in 0 | 1 | auto) ;; *) die "BENCH_CALLGRIND must be 0 or 1" ;; esac
SITE="$WORK/edge-site"
SITE_CACHE="$WORK/edge-cache"
VSTATE="$WORK/edge-varnish" # varnish.sh state dirs: hits/, storm/
WRKDIR="$WORK/edge-wrk"
HDRS="$WRKDIR/headers"
STORM_DIR="$WORK/edge-storm"
CG_DIR="$WORK/edge-callgrind"
CG_WARMUP=2s
CG_DURATION=4s
REPORT="$WORK/edge-results.md"
VARNISH_SH="$ROOT/scripts/peers/varnish.sh"
ENC=br
AE="br, gzip"

NPROC="$(nproc)"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

# --- processes we started, stopped by PID on exit -------------------------------------------------
ORIGIN_PID=""       # staleguard serve (origin of the hit phase)
EDGE_PID=""         # staleguard edge (hit phase)
STORM_ORIGIN_PID="" # the counting Python origin
STORM_EDGE_PID=""   # staleguard edge (storm phase)
CG_PID=""           # staleguard edge under valgrind
VARNISH_UP=()       # varnish.sh state dirs with a varnishd running (stopped with `varnish.sh stop DIR`)
varnish_stop() { # varnish_stop STATE_DIR: the varnishd recorded there (manager and child, by PID)
  local d=$1 keep=() x
  "$VARNISH_SH" stop "$d" >>"$LOGS/edge-varnish.log" 2>&1 || warn "scripts/peers/varnish.sh stop $d failed (log: $LOGS/edge-varnish.log)"
  for x in "${VARNISH_UP[@]}"; do [ "$x" = "$d" ] || keep+=("$x"); done
  VARNISH_UP=("${keep[@]}")
  info "stopped varnishd ($d)"
}
cleanup() {
  local d
  stop_pid "$EDGE_PID" "staleguard edge"
  EDGE_PID=""
  stop_pid "$STORM_EDGE_PID" "staleguard edge (storm)"
  STORM_EDGE_PID=""
  stop_pid "$CG_PID" "staleguard edge under valgrind"
  CG_PID=""
  for d in "${VARNISH_UP[@]}"; do varnish_stop "$d"; done
  stop_pid "$ORIGIN_PID" "staleguard serve (origin)"
  ORIGIN_PID=""
  stop_pid "$STORM_ORIGIN_PID" "storm origin"
  STORM_ORIGIN_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "staleguard edge vs Varnish: $NPROC cores, $CPU_MODEL"
info "work dir: $WORK"
wait_idle
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  warn "load average is $LOAD_START before starting: other processes are using the CPU, req/s will be noisy (a bench run that just ended counts too: Varnish's worker threads raise the load average; the report's per-round 'other processes' CPU s' is the better measure)"
fi
[ "$NPROC" -ge 2 ] || die "needs 2 CPUs (cache on CPU 0, wrk and the origins on CPU 1); nproc says $NPROC"

# 1,000 storm connections: the caches (started from here) and the client need the descriptors.
NOFILE_WANT=$((STORM_CLIENTS * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NOFILE_WANT" ]; then
  hard="$(ulimit -Hn)"
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$NOFILE_WANT" ]; then
    ulimit -n "$NOFILE_WANT"
  else
    ulimit -n "$hard"
    warn "ulimit -n is at most $hard (wanted $NOFILE_WANT for $STORM_CLIENTS storm connections)"
  fi
fi
info "ulimit -n $(ulimit -n)"

# ------------------------------------------------------------------------------------------------
step "Packages: varnish, varnish-modules, wrk$([ "$CALLGRIND" = 0 ] || echo ", valgrind")"
if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  "$VARNISH_SH" install || die "scripts/peers/varnish.sh install failed"
  WANT=(wrk)
  [ "$CALLGRIND" = 0 ] || WANT+=(valgrind)
  MISSING=()
  for p in "${WANT[@]}"; do pkg_installed "$p" || MISSING+=("$p"); done
  if [ "${#MISSING[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${MISSING[*]}; run as root or: apt-get install -y ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    info "apt-get install -y ${MISSING[*]} (log: $LOGS/edge-apt.log)"
    { apt-get update -q && apt-get install -y -q "${MISSING[@]}"; } >"$LOGS/edge-apt.log" 2>&1 || {
      tail -n 20 "$LOGS/edge-apt.log" | sed 's/^/    | /' >&2
      die "apt-get install ${MISSING[*]} failed"
    }
  fi
fi
VARNISHD="$(command -v varnishd || true)"
if [ -z "$VARNISHD" ] && [ -x /usr/sbin/varnishd ]; then VARNISHD=/usr/sbin/varnishd; fi
[ -n "$VARNISHD" ] || die "varnishd not found (scripts/peers/varnish.sh install)"
command -v varnishstat >/dev/null || die "varnishstat not found (apt-get install -y varnish)"
command -v wrk >/dev/null || die "wrk not found (apt-get install -y wrk)"
for t in taskset curl python3 ps; do command -v "$t" >/dev/null || die "$t not found"; done
V_VARNISH="$("$VARNISHD" -V 2>&1 | head -n 1 | sed 's/^varnishd (\(.*\))$/\1/')"
V_VMODS="$(dpkg-query -W -f='${Version}' varnish-modules 2>/dev/null || echo '?')"
V_WRK="$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }' || true)"
V_PY="$(python3 -c 'import platform; print(platform.python_version())')"
info "$V_VARNISH, varnish-modules $V_VMODS, wrk $V_WRK, Python $V_PY"
V_VALGRIND=""
if [ "$CALLGRIND" = 0 ]; then
  CG_STATE="skipped (BENCH_CALLGRIND=0)"
elif command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
  CALLGRIND=1
  V_VALGRIND="$(valgrind --version 2>/dev/null | sed 's/^valgrind-//')"
  CG_STATE="measured (edge only)"
  info "valgrind $V_VALGRIND (callgrind step on; BENCH_CALLGRIND=0 skips it)"
else
  [ "$CALLGRIND" != 1 ] || die "BENCH_CALLGRIND=1 but valgrind or callgrind_control not found (apt-get install -y valgrind)"
  CALLGRIND=0
  CG_STATE="skipped (valgrind or callgrind_control not installed)"
  info "no valgrind/callgrind_control: the callgrind Ir/hit step is skipped"
fi

# ------------------------------------------------------------------------------------------------
step "staleguard binary"
staleguard_bin "$LOGS/cargo-staleguard-edge.log"
V_SG="$("$SG" --version 2>/dev/null | head -n 1 || true)"
info "$SG ${V_SG:+($V_SG)}"
SG_STAMP="$(stat -c '%s bytes, modified %y' "$SG")"
info "binary: $SG_STAMP"
"$SG" edge --help >/dev/null 2>&1 || die "$SG has no \`edge\` subcommand (\`$SG edge --help\` fails): point STALEGUARD_BIN at a staleguard that has it"

# ------------------------------------------------------------------------------------------------
step "Content: staleguard build examples/site"
read -r LOGICAL URL_PATH RAW_SIZE ENC_SIZE < <(build_site_and_pick_css "$SITE" "$SITE_CACHE" "$ENC" "$LOGS/edge-build.log")
[ -n "${ENC_SIZE:-}" ] || die "could not pick a CSS file from $SITE/staleguard.manifest.json"
SIDECAR="$SITE/$URL_PATH.br"
[ -f "$SIDECAR" ] || die "manifest lists a br sidecar for $URL_PATH, but $SIDECAR does not exist"
REQ_PATH="/$URL_PATH"
info "file: $LOGICAL -> $REQ_PATH ($RAW_SIZE bytes, br sidecar $ENC_SIZE bytes)"

# ------------------------------------------------------------------------------------------------
rm -rf "$WRKDIR" "$STORM_DIR" "$VSTATE"
mkdir -p "$WRKDIR" "$HDRS" "$STORM_DIR" "$VSTATE"

# fetch NAME URL [curl args]: headers to $HDRS/NAME, body to $HDRS/NAME.body; prints the status
fetch() {
  local name=$1 url=$2
  shift 2
  curl -s --max-time 10 -D "$HDRS/$name" -o "$HDRS/$name.body" -w '%{http_code}' "$@" "$url" || echo 000
}
# listen_url STDOUT_FILE PID SECONDS: the URL of a 'listening on http://127.0.0.1:PORT' line (staleguard
# serve, staleguard edge, the storm origin) once it is there; fails when PID exits first or after SECONDS
listen_url() {
  local url i
  for i in $(seq 1 $(($3 * 10))); do
    url="$(sed -n 's/^.*listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*$/\1/p' "$1" | head -n 1)"
    if [ -n "$url" ]; then
      echo "$url"
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    [ "$i" -eq $(($3 * 10)) ] || sleep 0.1
  done
  return 1
}
children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
# pin_varnish PID: the manager PID and its children (the cache process), every thread, to CPU 0; checks
# every thread's Cpus_allowed_list afterwards. Sets V_THREADS (the number of threads pinned).
pin_varnish() {
  local mgr=$1 kids p t n=0 bad=""
  kids="$(children_of "$mgr")"
  [ -n "$kids" ] || die "varnishd pid $mgr has no child process (no cache process?)"
  for p in $mgr $kids; do
    taskset -a -p -c 0 "$p" >>"$LOGS/edge-taskset.log" 2>&1 || die "taskset -a -p -c 0 $p failed (log: $LOGS/edge-taskset.log)"
  done
  for p in $mgr $kids; do
    for t in /proc/"$p"/task/*; do
      [ -r "$t/status" ] || continue
      n=$((n + 1))
      [ "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status")" = 0 ] || bad+=" ${t##*/}"
    done
  done
  [ -z "$bad" ] || die "varnishd threads not pinned to CPU 0:$bad"
  V_THREADS=$n
}
# varnish_start NAME BACKEND_HOST:PORT: scripts/peers/varnish.sh start with state dir $VSTATE/NAME; sets
# V_URL, V_PID, V_KIDS, V_THREADS and pins it to CPU 0
varnish_start() {
  local name=$1 backend=$2 dir="$VSTATE/$1" out
  out="$LOGS/edge-varnish-$name.env"
  VARNISH_PARAMS="$VARNISH_EXTRA" "$VARNISH_SH" start "$backend" "$dir" >"$out" 2>>"$LOGS/edge-varnish.log" || {
    tail -n 20 "$LOGS/edge-varnish.log" | sed 's/^/    | /' >&2
    die "scripts/peers/varnish.sh start $backend $dir failed"
  }
  VARNISH_UP+=("$dir")
  V_URL="$(kv "$out" VARNISH_URL)"
  V_PID="$(kv "$out" VARNISH_PID)"
  if [ -z "$V_URL" ] || [ -z "$V_PID" ]; then
    die "scripts/peers/varnish.sh start printed no VARNISH_URL/VARNISH_PID ($out)"
  fi
  VARNISH_MGRS+=" $V_PID"
  pin_varnish "$V_PID"
  V_KIDS="$(children_of "$V_PID" | paste -sd, -)"
  info "varnishd ($name) pid $V_PID (cache process $V_KIDS) on $V_URL -> $backend; $V_THREADS threads pinned to CPU 0 (state $dir)"
}
# edge_start STDOUT_FILE STDERR_FILE ORIGIN_URL: staleguard edge on CPU 0; sets E_PID, E_URL
edge_start() {
  taskset -c 0 "$SG" edge --origin "$3" --listen 127.0.0.1:0 --memory "$EDGE_MEMORY" >"$1" 2>"$2" &
  E_PID=$!
  E_URL="$(listen_url "$1" "$E_PID" 20)" || {
    tail -n 20 "$2" | sed 's/^/    | /' >&2
    stop_pid "$E_PID" "staleguard edge"
    die "staleguard edge did not print 'edge listening on http://127.0.0.1:PORT' within 20 s (stdout: $1, stderr: $2)"
  }
}
# edge_summary STDERR_FILE FIELD: a count from the line the edge prints when it stops ("N hits, N misses,
# ..., N origin requests (...)"), e.g. FIELD = "origin requests"
edge_summary() {
  sed -n "s/^edge [^ ]*:.*[^0-9]\([0-9][0-9]*\) $2[ ,].*$/\1/p" "$1" | tail -n 1
}
vstat() { # vstat NAME COUNTER: a varnishstat counter of the instance in $VSTATE/NAME
  varnishstat -n "$VSTATE/$1/work" -1 -f "$2" 2>/dev/null | awk -v c="$2" '$1 == c { print $2 }'
}

# check_hit CACHE BASE_URL TAG: GET until X-Cache: HIT (at most 3 times); the HIT must be a 200 with
# Content-Encoding: br and the .br sidecar as its body. Anything else stops the run.
check_hit() {
  local c=$1 base=$2 n="$1-$3" code ce xc i
  for i in 1 2 3; do
    code="$(fetch "$n" "$base$REQ_PATH" -H "Accept-Encoding: $AE")"
    xc="$(hdr "$n" x-cache)"
    ce="$(hdr "$n" content-encoding)"
    info "$c: GET $REQ_PATH (Accept-Encoding: $AE) -> $code, X-Cache: ${xc:-none}, Content-Encoding: ${ce:-none}"
    [ "$code" = 200 ] || die "$c: GET $REQ_PATH answered $code, not 200 (headers: $HDRS/$n)"
    [ "$xc" != HIT ] || break
  done
  [ "$xc" = HIT ] || die "$c: no X-Cache: HIT after $i GETs of $REQ_PATH (last: '${xc:-none}'; headers: $HDRS/$n)"
  [ "$ce" = br ] || die "$c: the HIT has Content-Encoding '${ce:-none}', not br (headers: $HDRS/$n)"
  cmp -s "$HDRS/$n.body" "$SIDECAR" || die "$c: the HIT's body is not the br sidecar $SIDECAR"
}

# to_ms VALUE_WITH_UNIT (wrk prints us, ms or s)
# to_bytes VALUE_WITH_UNIT (wrk prints B, KB, MB, GB with 1024 steps)
range() { # range "A B C": lowest-highest
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | sed -n '1p;$p' | paste -sd- -
}

# Other processes' CPU time during a measured run (the load average is no use here: Varnish's worker
# threads alone raise it to 10 and more): a snapshot of every process's utime+stime+cutime+cstime
# before and after; the sum of the differences over processes that are not the bench's (this script and
# its children, the varnishd managers and their children), minus the earlier time of processes that
# exited in between (a parent that reaped them has it in its cutime now). Approximate: a process that
# started and ended inside the run, and whose parent ended too, is missed.
cat >"$WRKDIR/cpu_others.py" <<'PY'
# generated by bench/edge.sh: cpu_others.py snap FILE | cpu_others.py diff BEFORE AFTER EXCLUDED_PID...
import json, os, sys


def snap():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        r = s[s.rindex(")") + 2:].split()  # r[0] is field 3 (state)
        out[d + ":" + r[19]] = [int(r[1]), sum(int(x) for x in r[11:15])]  # ppid; utime stime cutime cstime
    return out


if sys.argv[1] == "snap":
    json.dump(snap(), open(sys.argv[2], "w"))
else:
    before, after = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
    excl = set(sys.argv[4:])
    mine = lambda k, v: k.split(":")[0] in excl or str(v[0]) in excl
    t = sum(v[1] - before.get(k, [0, 0])[1] for k, v in after.items() if not mine(k, v))
    t -= sum(v[1] for k, v in before.items() if k not in after and not mine(k, v))
    print("%.2f" % (max(t, 0) / os.sysconf("SC_CLK_TCK")))
PY
VARNISH_MGRS="" # the varnishd managers we started (their children are theirs)

# run_wrk CACHE BASE_URL ROUND: warm-up, then the measured run; appends to RPS_ALL/P99_ALL/BPR_ALL[CACHE]
declare -A RPS_ALL=() P99_ALL=() BPR_ALL=() RPS_ROUND=() OTHER_CPU=() NOTE=()
run_wrk() {
  local c=$1 base=$2 round=$3 out other
  out="$WRKDIR/$c.r$round.txt"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$WARMUP" -H "Accept-Encoding: $AE" "$base$REQ_PATH" >"$WRKDIR/$c.r$round.warmup.txt" 2>&1 ||
    die "wrk warm-up failed against $c: $(tail -n 3 "$WRKDIR/$c.r$round.warmup.txt")"
  python3 "$WRKDIR/cpu_others.py" snap "$WRKDIR/cpu.before"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Accept-Encoding: $AE" "$base$REQ_PATH" >"$out" 2>&1 ||
    die "wrk failed against $c: $(tail -n 3 "$out")"
  python3 "$WRKDIR/cpu_others.py" snap "$WRKDIR/cpu.after"
  # shellcheck disable=SC2086 # VARNISH_MGRS: a list of PIDs
  other="$(python3 "$WRKDIR/cpu_others.py" diff "$WRKDIR/cpu.before" "$WRKDIR/cpu.after" "$$" $VARNISH_MGRS)"
  OTHER_CPU[$c/$round]=$other
  if awk -v o="$other" 'BEGIN { exit !(o > 0.5) }'; then
    warn "$c round $round: other processes used $other CPU s during the measured run: its numbers are disturbed"
  fi
  local rps p99 bpr bad errs
  read -r rps p99 bpr < <(wrk_numbers "$out")
  [ -n "$bpr" ] || die "could not read wrk's numbers from $out"
  bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$out")"
  errs="$(sed -n 's/^ *Socket errors: *//p' "$out")"
  [ -z "$bad" ] || { NOTE[$c]+="round $round: $bad non-2xx/3xx; "; warn "$c round $round: $bad non-2xx/3xx responses"; }
  [ -z "$errs" ] || { NOTE[$c]+="round $round: socket errors: $errs; "; warn "$c round $round: socket errors: $errs"; }
  RPS_ALL[$c]+="$rps "
  P99_ALL[$c]+="$p99 "
  BPR_ALL[$c]+="$bpr "
  RPS_ROUND[$c/$round]=$rps
  info "$(printf 'round %s  %-8s %9s req/s   p99 %8s ms   %5s bytes/response   other processes %s CPU s' "$round" "$c" "$rps" "$p99" "$bpr" "$other")"
}

# ------------------------------------------------------------------------------------------------
step "Origin: staleguard serve (CPU 1)"
taskset -c 1 "$SG" serve "$SITE" --bind 127.0.0.1 --port 0 >"$LOGS/edge-origin.out" 2>"$LOGS/edge-origin.err" &
ORIGIN_PID=$!
ORIGIN_URL="$(listen_url "$LOGS/edge-origin.out" "$ORIGIN_PID" 20)" || {
  tail -n 20 "$LOGS/edge-origin.err" | sed 's/^/    | /' >&2
  die "staleguard serve did not print 'listening on http://127.0.0.1:PORT' within 20 s"
}
ORIGIN_HOSTPORT="${ORIGIN_URL#http://}"
info "staleguard serve pid $ORIGIN_PID on $ORIGIN_URL"
code="$(fetch origin "$ORIGIN_URL$REQ_PATH" -H "Accept-Encoding: $AE")"
if [ "$code" != 200 ] || [ "$(hdr origin content-encoding)" != br ]; then
  die "origin: GET $REQ_PATH answered $code with Content-Encoding '$(hdr origin content-encoding)', not 200 br"
fi
ORIGIN_CC="$(hdr origin cache-control)"
info "origin: 200 br, Cache-Control: ${ORIGIN_CC:-none}, Vary: $(hdr origin vary)"

step "Caches (CPU 0): staleguard edge and varnishd, both in front of the origin"
edge_start "$LOGS/edge-hits.out" "$LOGS/edge-hits.err" "$ORIGIN_URL"
EDGE_PID=$E_PID
EDGE_URL=$E_URL
info "staleguard edge pid $EDGE_PID on $EDGE_URL (--memory $EDGE_MEMORY)"
varnish_start hits "$ORIGIN_HOSTPORT"
VARNISH_URL=$V_URL
VARNISH_THREADS=$V_THREADS
declare -A BASE=([edge]="$EDGE_URL" [varnish]="$VARNISH_URL")
CACHES=(edge varnish)
for c in "${CACHES[@]}"; do check_hit "$c" "${BASE[$c]}" before; done

# ------------------------------------------------------------------------------------------------
step "Hits: wrk, ${ROUNDS} round(s), alternating (edge first in odd rounds)"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order=(edge varnish); else order=(varnish edge); fi
  for c in "${order[@]}"; do run_wrk "$c" "${BASE[$c]}" "$round"; done
done
declare -A RPS=() RPS_RANGE=() P99=() P99_RANGE=() BPR=()
for c in "${CACHES[@]}"; do
  RPS[$c]="$(median "${RPS_ALL[$c]}")"
  RPS_RANGE[$c]="$(range "${RPS_ALL[$c]}")"
  P99[$c]="$(median "${P99_ALL[$c]}")"
  P99_RANGE[$c]="$(range "${P99_ALL[$c]}")"
  BPR[$c]="$(median "${BPR_ALL[$c]}")"
done
PAIRED=""
for round in $(seq 1 "$ROUNDS"); do
  PAIRED+="$(div "${RPS_ROUND[edge/$round]}" "${RPS_ROUND[varnish/$round]}" 3) "
done
RATIO="$(div "${RPS[edge]}" "${RPS[varnish]}" 3)"
P99_RATIO="$(div "${P99[edge]}" "${P99[varnish]}" 3)"
info "edge/Varnish req/s: $RATIO (per round: $PAIRED)"
# Still hits after the load, and what reached the origin.
for c in "${CACHES[@]}"; do check_hit "$c" "${BASE[$c]}" after; done
V_HIT_BACKEND="$(vstat hits MAIN.backend_req)"
V_HIT_CLIENT="$(vstat hits MAIN.client_req)"
V_HIT_HITS="$(vstat hits MAIN.cache_hit)"
varnish_stop "$VSTATE/hits"
stop_pid "$EDGE_PID" "staleguard edge"
EDGE_PID=""
E_HIT_ORIGIN="$(edge_summary "$LOGS/edge-hits.err" "origin requests")"
E_HIT_HITS="$(edge_summary "$LOGS/edge-hits.err" hits)"
info "origin requests during the hit phase: edge ${E_HIT_ORIGIN:-?} (of ${E_HIT_HITS:-?} hits), Varnish ${V_HIT_BACKEND:-?} (MAIN.backend_req; ${V_HIT_HITS:-?} hits)"

# ------------------------------------------------------------------------------------------------
step "Miss storm: $STORM_CLIENTS concurrent GETs of a never-seen URL, $STORM_RUNS run(s) per cache"
cat >"$STORM_DIR/origin.py" <<'PY'
# generated by bench/edge.sh: the miss-storm origin. Counts GETs per path, answers each after DELAY
# seconds with a small cacheable CSS body; GET /__counts returns the counts as JSON (no-store).
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[1])
counts = {}
lock = threading.Lock()
BODY = b"/* bench/edge.sh miss storm */ body { color: #123456 }\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, body, headers):
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__counts":
            with lock:
                body = json.dumps(counts, sort_keys=True).encode()
            self.send(body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            return
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
        time.sleep(DELAY)
        self.send(BODY, [("Content-Type", "text/css; charset=utf-8"), ("Cache-Control", "public, max-age=60")])

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096  # were a cache to pass every request on, none should be refused


srv = Server(("127.0.0.1", 0), Handler)
print("origin listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
cat >"$STORM_DIR/client.py" <<'PY'
# generated by bench/edge.sh: the miss-storm client. Opens N connections to HOST:PORT, then writes one
# `GET PATH` on every one of them at once and reads every response to the end.
# The request: Accept-Encoding br, gzip and Connection close (not on the first two lines: Python would
# take "...coding: br" there for the file's source encoding). Prints one JSON object: connections made,
# seconds to write all N requests, seconds from the first request written to the last response read,
# statuses, X-Cache values, and the median response time.
import asyncio, json, resource, sys, time

host, port, path, n, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64 if hard == resource.RLIM_INFINITY else min(n + 64, hard), hard))
REQ = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept-Encoding: br, gzip\r\nConnection: close\r\n\r\n"
       % (path, host, port)).encode()


async def connect(sem):
    async with sem:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)


async def read_one(reader, writer, t0):
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
    except Exception as e:  # timeout, reset
        writer.close()
        return ("error:" + type(e).__name__, None, time.monotonic() - t0)
    t = time.monotonic() - t0
    writer.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    first = head[0].split(" ")
    status = first[1] if len(first) > 1 and first[0].startswith("HTTP/") else "no-response"
    xc = None
    for line in head[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "x-cache":
            xc = v.strip()
    return (status, xc, t)


async def main():
    sem = asyncio.Semaphore(256)  # connect in waves; the requests are all written afterwards
    conns = await asyncio.gather(*[connect(sem) for _ in range(n)], return_exceptions=True)
    ok = [c for c in conns if not isinstance(c, BaseException)]
    errors = sorted({type(c).__name__ for c in conns if isinstance(c, BaseException)})
    await asyncio.sleep(0.3)  # let the server accept them all
    t0 = time.monotonic()
    for _, w in ok:
        w.write(REQ)
    sent = time.monotonic() - t0
    res = await asyncio.gather(*[read_one(r, w, t0) for r, w in ok])
    statuses, xcache = {}, {}
    for s, x, _ in res:
        statuses[s] = statuses.get(s, 0) + 1
        if x is not None:
            xcache[x] = xcache.get(x, 0) + 1
    lat = sorted(t for _, _, t in res)
    print(json.dumps({
        "clients": n, "connected": len(ok), "connect_errors": errors,
        "sent_s": round(sent, 4), "wall_s": round(lat[-1], 4) if lat else None,
        "p50_s": round(lat[(len(lat) - 1) // 2], 4) if lat else None,
        "statuses": statuses, "xcache": xcache,
    }, sort_keys=True))


asyncio.run(main())
PY
taskset -c 1 python3 "$STORM_DIR/origin.py" "$STORM_DELAY" >"$STORM_DIR/origin.out" 2>"$STORM_DIR/origin.err" &
STORM_ORIGIN_PID=$!
STORM_ORIGIN_URL="$(listen_url "$STORM_DIR/origin.out" "$STORM_ORIGIN_PID" 20)" || {
  tail -n 20 "$STORM_DIR/origin.err" | sed 's/^/    | /' >&2
  die "the storm origin did not start (stderr: $STORM_DIR/origin.err)"
}
info "storm origin (Python $V_PY, ${STORM_DELAY} s per answer, Cache-Control: public, max-age=60) pid $STORM_ORIGIN_PID on $STORM_ORIGIN_URL"
edge_start "$STORM_DIR/edge.out" "$STORM_DIR/edge.err" "$STORM_ORIGIN_URL"
STORM_EDGE_PID=$E_PID
declare -A SBASE=([edge]="$E_URL")
info "staleguard edge (storm) pid $STORM_EDGE_PID on $E_URL"
varnish_start storm "${STORM_ORIGIN_URL#http://}"
SBASE[varnish]=$V_URL

origin_count() { # origin_count PATH: requests the storm origin got for PATH
  curl -s --max-time 10 "$STORM_ORIGIN_URL/__counts" | python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
declare -A S_ORIGIN=() S_OK=() S_WALL=() S_ROWS=()
STORM_TABLE=""
for run in $(seq 1 "$STORM_RUNS"); do
  if [ $((run % 2)) = 1 ]; then order=(edge varnish); else order=(varnish edge); fi
  for c in "${order[@]}"; do
    path="/storm/$c-r$run-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n').css"
    before="$(origin_count "$path")"
    [ "$before" = 0 ] || die "storm URL $path was already requested from the origin ($before)"
    port="${SBASE[$c]##*:}"
    out="$STORM_DIR/$c-r$run.json"
    taskset -c 1 python3 "$STORM_DIR/client.py" 127.0.0.1 "$port" "$path" "$STORM_CLIENTS" "$STORM_TIMEOUT" \
      >"$out" 2>"$STORM_DIR/$c-r$run.err" || {
      tail -n 20 "$STORM_DIR/$c-r$run.err" | sed 's/^/    | /' >&2
      die "the storm client failed against $c (stderr: $STORM_DIR/$c-r$run.err)"
    }
    sleep 1 # a background fetch, if any, reaches the origin too
    n_origin="$(origin_count "$path")"
    read -r connected n200 wall p50 sent xcache other < <(python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
st = r["statuses"]
other = ",".join("%s:%d" % (k, v) for k, v in sorted(st.items()) if k != "200") or "-"
xc = ",".join("%s:%d" % (k, v) for k, v in sorted(r["xcache"].items())) or "-"
print(r["connected"], st.get("200", 0), r["wall_s"], r["p50_s"], r["sent_s"], xc, other)
PY
)
    S_ORIGIN[$c]+="$n_origin "
    S_OK[$c]+="$n200 "
    S_WALL[$c]+="$wall "
    S_ROWS[$c]+="$run "
    STORM_TABLE+="| $run | $c | **$n_origin** | $n200 / $STORM_CLIENTS | ${xcache//,/, } | $wall | $p50 | $sent |"$'\n'
    info "$(printf 'run %s  %-8s origin requests %4s   200s %4s/%s (connected %s; other: %s)   X-Cache %s   wall %s s   p50 %s s   all sent in %s s' \
      "$run" "$c" "$n_origin" "$n200" "$STORM_CLIENTS" "$connected" "$other" "$xcache" "$wall" "$p50" "$sent")"
    [ "$connected" = "$STORM_CLIENTS" ] || warn "storm run $run, $c: only $connected of $STORM_CLIENTS connections opened ($out)"
    [ "$other" = - ] || warn "storm run $run, $c: responses other than 200: $other ($out)"
    awk -v s="$sent" -v d="$STORM_DELAY" 'BEGIN { exit !(s >= d) }' &&
      warn "storm run $run, $c: writing the requests took ${sent} s, not less than the origin's ${STORM_DELAY} s: not all were in flight at once"
    if [ "$c" = edge ] && [ "$n_origin" != 1 ]; then
      warn "storm run $run: the edge let $n_origin requests through to the origin for one URL (target: 1)"
    fi
  done
done
V_STORM_BACKEND="$(vstat storm MAIN.backend_req)"
V_STORM_BUSY_SLEEP="$(vstat storm MAIN.busy_sleep)"
varnish_stop "$VSTATE/storm"
stop_pid "$STORM_EDGE_PID" "staleguard edge (storm)"
STORM_EDGE_PID=""
E_STORM_ORIGIN="$(edge_summary "$STORM_DIR/edge.err" "origin requests")"
stop_pid "$STORM_ORIGIN_PID" "storm origin"
STORM_ORIGIN_PID=""
STORM_EDGE_OK=1
for n_origin in ${S_ORIGIN[edge]}; do [ "$n_origin" = 1 ] || STORM_EDGE_OK=0; done

# ------------------------------------------------------------------------------------------------
# Instructions per hit under callgrind, edge only (see the top of this file for why not Varnish): a fresh
# edge on CPU 0 under `valgrind --tool=callgrind --instr-atstart=no`, the URL warmed, a 2 s wrk warm-up
# (not counted), then counted only during a 4 s wrk run. The origin (staleguard serve) is still up.
IR="" CG_REQS="" CG_CONNS_USED=""
cg_control() { # cg_control PREFIX ARGS...: callgrind_control ARGS (logged); success is its "OK." line
  local p=$1 out
  shift
  out="$(callgrind_control "$@" 2>&1)" || true
  printf '$ callgrind_control %s\n%s\n' "$*" "$out" >>"$p.control.log"
  grep -q 'OK\.$' <<<"$out"
}
cg_total() { # Ir summed over PREFIX.callgrind.out* (each file's totals: line, else summary:)
  local f
  for f in "$1".callgrind.out*; do
    [ -f "$f" ] || continue
    awk '/^totals:/ { t = $2; ht = 1 } /^summary:/ { s = $2 } END { printf "%.0f\n", ht ? t : s }' "$f"
  done | awk '{ n += $1 } END { printf "%.0f", n }'
}
cg_stop() {
  stop_pid "$CG_PID" "staleguard edge under valgrind"
  CG_PID=""
}
# cg_run CONNECTIONS: returns 1 (with a warning) when it failed, 2 on wrk timeouts (retry with fewer)
cg_run() {
  local c=$1 p="$CG_DIR/edge" out="$CG_DIR/edge.wrk.txt" wrk_rc=0 reqs bad errs tmo ir url
  rm -f "$p".*
  taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$p.callgrind.out" \
    "$SG" edge --origin "$ORIGIN_URL" --listen 127.0.0.1:0 --memory "$EDGE_MEMORY" >"$p.stdout" 2>"$p.stderr" &
  CG_PID=$!
  url="$(listen_url "$p.stdout" "$CG_PID" 60)" || {
    tail -n 20 "$p.stderr" | sed 's/^/    | /' >&2
    warn "callgrind: staleguard edge did not start under valgrind within 60 s (stderr: $p.stderr); no Ir/hit"
    cg_stop
    return 1
  }
  info "staleguard edge under callgrind: pid $CG_PID on $url"
  check_hit edge "$url" callgrind
  if ! taskset -c 1 wrk -t1 -c"$c" -d"$CG_WARMUP" -H "Accept-Encoding: $AE" "$url$REQ_PATH" >"$p.warmup.txt" 2>&1; then
    warn "callgrind: wrk warm-up failed: $(tail -n 3 "$p.warmup.txt")"
    cg_stop
    return 1
  fi
  cg_control "$p" -i on "$CG_PID" || { warn "callgrind: \`callgrind_control -i on $CG_PID\` failed ($p.control.log)"; cg_stop; return 1; }
  taskset -c 1 wrk -t1 -c"$c" -d"$CG_DURATION" -H "Accept-Encoding: $AE" "$url$REQ_PATH" >"$out" 2>&1 || wrk_rc=$?
  if ! cg_control "$p" -i off "$CG_PID" || ! cg_control "$p" -d "$CG_PID"; then
    warn "callgrind: \`callgrind_control -i off / -d $CG_PID\` failed ($p.control.log)"
    cg_stop
    return 1
  fi
  cg_stop
  [ "$wrk_rc" = 0 ] || { warn "callgrind: wrk failed under valgrind: $(tail -n 3 "$out")"; return 1; }
  reqs="$(awk '/requests in/ { print $1 }' "$out")"
  bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$out")"
  errs="$(sed -n 's/^ *Socket errors: *//p' "$out")"
  tmo="$(sed -n 's/^ *Socket errors:.*timeout \([0-9][0-9]*\).*$/\1/p' "$out")"
  if [ -n "$tmo" ] && [ "$tmo" != 0 ]; then
    info "$tmo wrk timeouts with $c connections under valgrind ($out)"
    return 2
  fi
  if [ -n "$bad" ] || [ -n "$errs" ]; then
    warn "callgrind: wrk under valgrind: ${bad:+$bad non-2xx/3xx responses; }${errs:+socket errors: $errs; }no Ir/hit ($out)"
    return 1
  fi
  [[ "$reqs" =~ ^[1-9][0-9]*$ ]] || { warn "callgrind: no request count in $out"; return 1; }
  ir="$(cg_total "$p")"
  [[ "$ir" =~ ^[1-9][0-9]*$ ]] || { warn "callgrind: no instructions counted in $p.callgrind.out*"; return 1; }
  IR="$(awk -v i="$ir" -v n="$reqs" 'BEGIN { printf "%.0f", i / n }')"
  CG_REQS=$reqs
  CG_CONNS_USED=$c
  info "edge: $ir Ir / $reqs hits = $IR Ir/hit (wrk -c$c)"
}
if [ "$CALLGRIND" = 1 ]; then
  step "callgrind: user-space instructions per hit, staleguard edge alone on CPU 0"
  rm -rf "$CG_DIR"
  mkdir -p "$CG_DIR"
  c=32
  while :; do
    rc=0
    cg_run "$c" || rc=$?
    [ "$rc" = 2 ] || break
    if [ "$c" -le 4 ]; then
      warn "callgrind: wrk timeouts under valgrind even with $c connections; no Ir/hit"
      break
    fi
    c=$((c / 2))
    info "retrying with $c connections"
  done
fi
stop_pid "$ORIGIN_PID" "staleguard serve (origin)"
ORIGIN_PID=""

# ------------------------------------------------------------------------------------------------
step "Report"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$(stat -c '%s bytes, modified %y' "$SG" 2>/dev/null || echo gone)" != "$SG_STAMP" ]; then
  warn "$SG changed during the run (was: $SG_STAMP): later steps may have run another build"
fi
with_range() { if [ "$ROUNDS" -gt 1 ]; then echo "$1 ($2)"; else echo "$1"; fi; }
list() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | paste -sd, - | sed 's/,/, /g'; }
{
  echo "# staleguard edge vs Varnish"
  echo
  echo "- date: $START_DATE"
  echo "- machine: $NPROC cores (nproc), $CPU_MODEL; load average $LOAD_START at start, $LOAD_END at end"
  echo "- Varnish: $V_VARNISH, varnish-modules $V_VMODS; \`scripts/peers/varnish.sh start\` with \`scripts/peers/staleguard.vcl\` (builtin caching, X-Cache header), \`-s malloc,64m\`, \`http_gzip_support=off\` (br passes through and is cached), stock thread pools${VARNISH_EXTRA:+, extra: \`$VARNISH_EXTRA\`}; $VARNISH_THREADS threads in the manager and cache process, all pinned to CPU 0 (\`taskset -a -p -c 0\` on both PIDs)"
  echo "- staleguard: ${V_SG:-n/a} ($SG, $SG_STAMP); \`staleguard edge --origin ORIGIN --listen 127.0.0.1:0 --memory $EDGE_MEMORY\` under \`taskset -c 0\` (one tokio worker)"
  echo "- origin for the hits: \`staleguard serve\` of \`staleguard build examples/site\` on CPU 1 (Cache-Control: ${ORIGIN_CC:-none}); file \`$REQ_PATH\` ($LOGICAL, $RAW_SIZE bytes, br sidecar $ENC_SIZE bytes)"
  echo "- wrk $V_WRK: \`wrk -t1 -c$CONNS -d$DURATION --latency -H 'Accept-Encoding: $AE'\` on CPU 1, each after a $WARMUP warm-up; $ROUNDS round(s), order alternating (edge first in odd rounds); both caches up, the one not measured idle"
  echo "- checked before and after the runs, for both: 200, X-Cache: HIT, Content-Encoding: br, body = the .br sidecar"
  echo
  echo "## Cache hits"
  echo
  echo "| cache | req/s | p99 ms | bytes/resp |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| staleguard edge | $(with_range "${RPS[edge]}" "${RPS_RANGE[edge]}") | $(with_range "${P99[edge]}" "${P99_RANGE[edge]}") | ${BPR[edge]} |"
  echo "| Varnish | $(with_range "${RPS[varnish]}" "${RPS_RANGE[varnish]}") | $(with_range "${P99[varnish]}" "${P99_RANGE[varnish]}") | ${BPR[varnish]} |"
  echo
  echo "- edge / Varnish, req/s: **$RATIO×** (target ≥ 1.0×: $(cmp_ok "$RATIO" '>=' 1.0)); per round (paired): $(list "$PAIRED")"
  echo "- edge / Varnish, p99: $P99_RATIO (lower is better)"
  echo "- origin requests during the whole hit phase (warm-up, checks, every wrk run): edge ${E_HIT_ORIGIN:-n/a} (its exit summary; ${E_HIT_HITS:-n/a} hits), Varnish ${V_HIT_BACKEND:-n/a} (MAIN.backend_req; ${V_HIT_HITS:-n/a} hits of ${V_HIT_CLIENT:-n/a} requests)"
  [ "$ROUNDS" = 1 ] || echo "- req/s and p99: median of $ROUNDS rounds (lowest-highest); ratios: of the medians. bytes/resp: bytes wrk read / requests (status line, headers, body)."
  echo
  echo "| round | edge req/s | Varnish req/s | edge / Varnish | other processes' CPU s during the edge / Varnish run |"
  echo "| ---: | ---: | ---: | ---: | ---: |"
  for round in $(seq 1 "$ROUNDS"); do
    echo "| $round | ${RPS_ROUND[edge/$round]} | ${RPS_ROUND[varnish/$round]} | $(div "${RPS_ROUND[edge/$round]}" "${RPS_ROUND[varnish/$round]}" 3) | ${OTHER_CPU[edge/$round]} / ${OTHER_CPU[varnish/$round]} |"
  done
  echo
  echo "Other processes' CPU s: CPU time used during that $DURATION run by every process but the bench's own (utime+stime+cutime+cstime from /proc, before and after; approximate). Above 0.5 s the run is marked in the warnings: it was disturbed."
  echo
  echo "## Miss storm"
  echo
  echo "A fresh cache of each kind on CPU 0 in front of a Python origin on CPU 1 (\`ThreadingHTTPServer\`; counts GETs per path, answers after $STORM_DELAY s with a 55-byte CSS body and \`Cache-Control: public, max-age=60\`). Per run and cache, a Python asyncio client on CPU 1 opens $STORM_CLIENTS connections, then writes \`GET <never-seen URL>\` (Accept-Encoding: br, gzip; Connection: close) on all of them at once and reads every response; then the origin's count for that URL (1 s later). Order alternating per run."
  echo
  echo "| run | cache | origin requests | 200s | X-Cache | wall s (first request written → last response) | p50 s | s to write all requests |"
  echo "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |"
  printf '%s' "$STORM_TABLE"
  echo
  echo "- origin requests per storm: edge $(list "${S_ORIGIN[edge]}") (target: 1 each: $([ "$STORM_EDGE_OK" = 1 ] && echo '**met**' || echo '**MISSED**')), Varnish $(list "${S_ORIGIN[varnish]}")"
  echo "- 200s: edge $(list "${S_OK[edge]}"), Varnish $(list "${S_OK[varnish]}") of $STORM_CLIENTS each; wall s: edge $(list "${S_WALL[edge]}") (median $(median "${S_WALL[edge]}")), Varnish $(list "${S_WALL[varnish]}") (median $(median "${S_WALL[varnish]}"))"
  echo "- cross-checks: the storm edge's exit summary counts ${E_STORM_ORIGIN:-n/a} origin requests in all; Varnish's MAIN.backend_req ${V_STORM_BACKEND:-n/a}, MAIN.busy_sleep ${V_STORM_BUSY_SLEEP:-n/a} (requests parked on the waiting list)"
  echo "- X-Cache: the edge labels a request that waited for another's fetch MISS; Varnish labels it HIT (it was served from the object the fetch made)."
  echo
  if [ "$CALLGRIND" = 1 ]; then
    echo "## Instructions per hit (callgrind, edge only)"
    echo
    echo "- staleguard edge: **${IR:-n/a} Ir/hit**${CG_REQS:+ ($CG_REQS hits counted, \`wrk -t1 -c$CG_CONNS_USED -d$CG_DURATION\` after a $CG_WARMUP warm-up; valgrind $V_VALGRIND)}"
    echo "- user-space instructions of the whole edge process (all threads, libraries) during the counted run / hits; the kernel is not counted. Varnish is not measured: its cache process is a fork of the manager, and callgrind_control reaches a process through valgrind's gdbserver, which a forked child does not get."
    echo
  else
    echo "Ir/hit (callgrind): $CG_STATE."
    echo
  fi
  for c in edge varnish; do
    [ -f "$HDRS/$c-before" ] || continue
    echo "<details><summary>$c response headers (HIT)</summary>"
    echo
    echo '```'
    tr -d '\r' <"$HDRS/$c-before" | sed '/^$/d'
    echo '```'
    echo "</details>"
    echo
  done
  notes=""
  for k in "${!NOTE[@]}"; do notes+="- $k: ${NOTE[$k]}"$'\n'; done
  if [ -n "$notes" ]; then
    echo "wrk errors:"
    printf '%s' "$notes"
    echo
  fi
  if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo "Warnings:"
    for m in "${WARNINGS[@]}"; do echo "- $m"; done
    echo
  fi
  echo "Raw output: wrk \`bench/work/edge-wrk/\`, storms \`bench/work/edge-storm/\` (client JSON per run, origin, edge logs), Varnish state and logs \`bench/work/edge-varnish/\`, \`bench/work/logs/edge-*\`$([ "$CALLGRIND" = 1 ] && echo "; callgrind \`bench/work/edge-callgrind/\`")."
} >"$REPORT"
echo >&2
cat "$REPORT"
info "report written to $REPORT"
