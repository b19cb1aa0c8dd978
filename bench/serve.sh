#!/usr/bin/env bash
# bench/serve.sh: `staleguard serve` against nginx, serving the same `staleguard build` output, one
# core each, in one run; prints requests/s and p99 latency side by side and the ratios
# staleguard/nginx. See bench/README.md.
#
# Scenarios (each server, each with a 2 s warm-up, then `wrk -t1 -c32 -d10s --latency`):
#   a) GET of a small fingerprinted CSS file with `Accept-Encoding: br, gzip` -> 200, Content-Encoding: br
#   b) the same GET with `If-None-Match: <the ETag that server sent>`          -> 304
# The server runs on CPU 0 (taskset -c 0), wrk on CPU 1 (taskset -c 1).
# Then (when valgrind is installed), with the wrk servers stopped, user-space instructions per request
# for (a) and (b): each server alone on CPU 0 under `valgrind --tool=callgrind --instr-atstart=no`,
# counted only during a 4 s `wrk -t1 -c32` run after a 2 s warm-up. Deterministic to about 1 %,
# where req/s scatters by 10 % on a 2-core machine.
#
# Environment:
#   STALEGUARD_BIN=PATH       use this binary instead of `cargo build --profile dist -p staleguard`
#   BENCH_SKIP_STALEGUARD=1   nginx only (the staleguard binary still builds the content; its rows read n/a)
#   BENCH_DURATION=10s        length of each measured wrk run (warm-up: BENCH_WARMUP=2s)
#   BENCH_CONNECTIONS=32      wrk connections (one wrk thread)
#   BENCH_ROUNDS=1            measured runs per server and scenario; the report shows medians
#   BENCH_ENCODING=gzip       measure gzip instead of br (automatic when the nginx brotli module is missing)
#   BENCH_CALLGRIND=0         skip the callgrind Ir/request step (default: on when valgrind and
#                             callgrind_control are installed; BENCH_CALLGRIND=1 fails without them)
#   BENCH_NO_INSTALL=1        do not apt-get install nginx, the brotli module, wrk, valgrind
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

WORK="$BENCH_DIR/work"
LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

SKIP_SG="${BENCH_SKIP_STALEGUARD:-0}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
CONNS="${BENCH_CONNECTIONS:-32}"
ROUNDS="${BENCH_ROUNDS:-1}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
CALLGRIND="${BENCH_CALLGRIND:-auto}"
case $CALLGRIND in 0 | 1 | auto) ;; *) die "BENCH_CALLGRIND must be 0 or 1" ;; esac
SITE="$WORK/serve-site"
SITE_CACHE="$WORK/serve-cache"
NGX="$WORK/nginx"
WRKDIR="$WORK/serve-wrk"
CG_DIR="$WORK/serve-callgrind"
CG_WARMUP=2s   # wrk under valgrind: warm-up (not counted), then the counted run
CG_DURATION=4s
REPORT="$WORK/serve-results.md"
IMMUTABLE_CC="public, max-age=31536000, immutable"
BROTLI_MODULE=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so

NPROC="$(nproc)"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

# --- servers we started, stopped by PID on exit --------------------------------------------------
NGINX_PID=""
SG_PID=""
CG_PID="" # the server running under valgrind (the valgrind process itself: taskset and valgrind exec)
cleanup() {
  stop_pid "$NGINX_PID" nginx
  NGINX_PID=""
  stop_pid "$SG_PID" "staleguard serve"
  SG_PID=""
  stop_pid "$CG_PID" "server under valgrind"
  CG_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

step "staleguard serve vs nginx: $NPROC cores, $CPU_MODEL"
info "work dir: $WORK"
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  warn "load average is $LOAD_START before starting: other processes are using the CPU, req/s will be noisy"
fi
if [ "$NPROC" -lt 2 ]; then
  die "needs 2 CPUs (server on CPU 0, wrk on CPU 1); nproc says $NPROC"
fi

# ------------------------------------------------------------------------------------------------
step "Packages: nginx, brotli_static module, wrk$([ "$CALLGRIND" = 0 ] || echo ", valgrind")"
WANT=(nginx libnginx-mod-http-brotli-static wrk)
[ "$CALLGRIND" = 0 ] || WANT+=(valgrind)
MISSING=()
for p in "${WANT[@]}"; do pkg_installed "$p" || MISSING+=("$p"); done
if [ "${#MISSING[@]}" -gt 0 ] && [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${MISSING[*]}; run as root or: apt-get install -y ${MISSING[*]}"
  export DEBIAN_FRONTEND=noninteractive
  info "apt-get install -y ${MISSING[*]} (log: $LOGS/serve-apt.log)"
  apt-get update -q >"$LOGS/serve-apt.log" 2>&1 || die "apt-get update failed (log: $LOGS/serve-apt.log)"
  INSTALL=()
  for p in "${MISSING[@]}"; do
    # Not `apt-cache … | grep -q`: under pipefail, grep's early exit SIGPIPEs apt-cache and fails the test.
    policy="$(apt-cache policy "$p" 2>/dev/null || true)"
    if grep -q '^ *Candidate: [^(]' <<<"$policy"; then
      INSTALL+=("$p")
    else
      warn "package $p does not exist in this system's apt sources"
    fi
  done
  if [ "${#INSTALL[@]}" -gt 0 ]; then
    apt-get install -y -q "${INSTALL[@]}" >>"$LOGS/serve-apt.log" 2>&1 || {
      tail -n 20 "$LOGS/serve-apt.log" | sed 's/^/    | /' >&2
      die "apt-get install ${INSTALL[*]} failed"
    }
  fi
fi
# Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
NGINX_BIN="$(command -v nginx || true)"
if [ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ]; then NGINX_BIN=/usr/sbin/nginx; fi
[ -n "$NGINX_BIN" ] || die "nginx not found (apt-get install -y nginx)"
command -v wrk >/dev/null || die "wrk not found (apt-get install -y wrk)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
for t in curl python3; do command -v "$t" >/dev/null || die "$t not found"; done
V_NGINX="$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')"
V_WRK="$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }' || true)"
if [ -f "$BROTLI_MODULE" ] && [ "${BENCH_ENCODING:-br}" = br ]; then
  HAVE_BROTLI=1
  V_BROTLI="$(dpkg-query -W -f='${Version}' libnginx-mod-http-brotli-static 2>/dev/null || echo '?')"
  ENC=br
  AE="br, gzip"
  info "nginx $V_NGINX, brotli_static module $V_BROTLI, wrk $V_WRK"
else
  HAVE_BROTLI=0
  ENC=gzip
  AE="gzip"
  if [ "${BENCH_ENCODING:-br}" = gzip ]; then
    V_BROTLI="not loaded (BENCH_ENCODING=gzip)"
    info "BENCH_ENCODING=gzip: both servers measured with Accept-Encoding: gzip"
  else
    V_BROTLI="not installed"
    warn "no nginx brotli_static module ($BROTLI_MODULE): nginx can only serve the .gz sidecars, so BOTH servers are measured with Accept-Encoding: gzip"
  fi
  info "nginx $V_NGINX, wrk $V_WRK"
fi
V_VALGRIND=""
if [ "$CALLGRIND" = 0 ]; then
  CG_STATE="skipped (BENCH_CALLGRIND=0)"
elif command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
  CALLGRIND=1
  V_VALGRIND="$(valgrind --version 2>/dev/null | sed 's/^valgrind-//')"
  CG_STATE="measured"
  info "valgrind $V_VALGRIND (callgrind step on; BENCH_CALLGRIND=0 skips it)"
else
  [ "$CALLGRIND" != 1 ] || die "BENCH_CALLGRIND=1 but valgrind or callgrind_control not found (apt-get install -y valgrind)"
  CALLGRIND=0
  CG_STATE="skipped (valgrind or callgrind_control not installed)"
  info "no valgrind/callgrind_control: the callgrind Ir/request step is skipped"
fi

# ------------------------------------------------------------------------------------------------
step "staleguard binary"
staleguard_bin "$LOGS/cargo-staleguard-serve.log"
V_SG="$("$SG" --version 2>/dev/null | head -n 1 || true)"
info "$SG ${V_SG:+($V_SG)}"
SG_SERVE_ERR=""
if [ "$SKIP_SG" = 1 ]; then
  info "staleguard serve: skipped (BENCH_SKIP_STALEGUARD=1)"
elif ! "$SG" serve --help >/dev/null 2>&1; then
  SG_SERVE_ERR="$SG has no \`serve\` subcommand (\`$SG serve --help\` fails): build a staleguard that has it, point STALEGUARD_BIN at one, or set BENCH_SKIP_STALEGUARD=1 for the nginx half only"
  warn "$SG_SERVE_ERR; running the nginx half, then failing"
fi

# ------------------------------------------------------------------------------------------------
step "Content: staleguard build examples/site"
read -r LOGICAL URL_PATH RAW_SIZE ENC_SIZE < <(build_site_and_pick_css "$SITE" "$SITE_CACHE" "$ENC" "$LOGS/serve-build.log")
[ -n "${ENC_SIZE:-}" ] || die "could not pick a CSS file from $SITE/staleguard.manifest.json"
EXT=$([ "$ENC" = br ] && echo br || echo gz)
SIDECAR="$SITE/$URL_PATH.$EXT"
[ -f "$SIDECAR" ] || die "manifest lists a $ENC sidecar for $URL_PATH, but $SIDECAR does not exist"
REQ_PATH="/$URL_PATH"
info "file: $LOGICAL -> $REQ_PATH ($RAW_SIZE bytes, $ENC sidecar $ENC_SIZE bytes)"

# ------------------------------------------------------------------------------------------------
# Helpers for both servers.
HDRS="$WRKDIR/headers"
rm -rf "$WRKDIR"
mkdir -p "$WRKDIR" "$HDRS"

# fetch NAME URL [curl args]: headers to $HDRS/NAME, body to $HDRS/NAME.body; prints the status
fetch() {
  local name=$1 url=$2
  shift 2
  curl -s --max-time 5 -D "$HDRS/$name" -o "$HDRS/$name.body" -w '%{http_code}' "$@" "$url" || echo 000
}
wait_http() { # wait_http URL PID SECONDS
  local i
  for i in $(seq 1 $(($3 * 10))); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    [ "$i" -eq $(($3 * 10)) ] || sleep 0.1
  done
  return 1
}
# sg_listen_url STDOUT_FILE PID SECONDS: prints the URL of staleguard serve's 'listening on
# http://127.0.0.1:PORT' line once it is there; fails when PID exits first or after SECONDS
sg_listen_url() {
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

declare -A RPS=() P99=() BPR=() NOTE=() ETAG=()

# check SERVER BASE_URL [NAME]: the 200 (Content-Encoding, body = sidecar) and 304 checks; sets
# ETAG[NAME] (NAME defaults to SERVER; it also names the header files in $HDRS)
check() {
  local s=$1 base=$2 n=${3:-$1} code ce etag cc
  code="$(fetch "$n-get" "$base$REQ_PATH" -H "Accept-Encoding: $AE")"
  ce="$(hdr "$n-get" content-encoding)"
  etag="$(hdr "$n-get" etag)"
  cc="$(hdr "$n-get" cache-control)"
  info "$n: GET $REQ_PATH (Accept-Encoding: $AE) -> $code, Content-Encoding: ${ce:-none}, ETag: ${etag:-none}, Cache-Control: ${cc:-none}"
  [ "$code" = 200 ] || die "$n: GET $REQ_PATH answered $code, not 200 (headers: $HDRS/$n-get)"
  if [ "$ce" != "$ENC" ]; then
    if [ "$s" = nginx ] && [ "$ENC" = br ]; then
      die "nginx did not answer with Content-Encoding: br (brotli_static not active?); headers: $HDRS/$n-get"
    fi
    die "$n: expected Content-Encoding: $ENC, got '${ce:-none}' (headers: $HDRS/$n-get)"
  fi
  cmp -s "$HDRS/$n-get.body" "$SIDECAR" || die "$n: the body is not the $ENC sidecar $SIDECAR"
  [ -n "$etag" ] || die "$n: no ETag in the response (headers: $HDRS/$n-get)"
  case "$etag" in W/*) warn "$n: weak ETag $etag" ;; esac
  [ "$cc" = "$IMMUTABLE_CC" ] || warn "$n: Cache-Control is '${cc:-none}', expected '$IMMUTABLE_CC'"
  code="$(fetch "$n-304" "$base$REQ_PATH" -H "Accept-Encoding: $AE" -H "If-None-Match: $etag")"
  info "$n: GET $REQ_PATH with If-None-Match: $etag -> $code"
  [ "$code" = 304 ] || die "$n: conditional GET answered $code, not 304 (headers: $HDRS/$n-304)"
  ETAG[$n]=$etag
}

# lua FILE [ETAG]: a wrk script that sets the request headers
write_lua() {
  {
    echo "-- generated by bench/serve.sh"
    echo "wrk.method = \"GET\""
    echo "wrk.headers[\"Accept-Encoding\"] = [==[$AE]==]"
    if [ -n "${2:-}" ]; then echo "wrk.headers[\"If-None-Match\"] = [==[$2]==]"; fi
  } >"$1"
}

# to_ms VALUE_WITH_UNIT (wrk prints us, ms or s)
# to_bytes VALUE_WITH_UNIT (wrk prints B, KB, MB, GB with 1024 steps)

# run_wrk SERVER SCENARIO BASE_URL LUA ROUND: warm-up, then the measured run; appends to the
# space-separated lists RPS_ALL/P99_ALL/BPR_ALL[SERVER/SCENARIO]
declare -A RPS_ALL=() P99_ALL=() BPR_ALL=()
run_wrk() {
  local s=$1 sc=$2 base=$3 lua=$4 round=$5 out key="$1/$2"
  out="$WRKDIR/$s-$sc.r$round.txt"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$lua" "$base$REQ_PATH" >"$WRKDIR/$s-$sc.warmup.txt" 2>&1 ||
    die "wrk warm-up failed against $s: $(tail -n 3 "$WRKDIR/$s-$sc.warmup.txt")"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$base$REQ_PATH" >"$out" 2>&1 ||
    die "wrk failed against $s: $(tail -n 3 "$out")"
  local rps p99 bpr bad errs
  read -r rps p99 bpr < <(wrk_numbers "$out")
  [ -n "$bpr" ] || die "could not read wrk's numbers from $out"
  bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$out")"
  errs="$(sed -n 's/^ *Socket errors: *//p' "$out")"
  [ -z "$bad" ] || { NOTE[$key]+="round $round: $bad non-2xx/3xx; "; warn "$s $sc: $bad non-2xx/3xx responses"; }
  [ -z "$errs" ] || { NOTE[$key]+="round $round: socket errors: $errs; "; warn "$s $sc: socket errors: $errs"; }
  RPS_ALL[$key]+="$rps "
  P99_ALL[$key]+="$p99 "
  BPR_ALL[$key]+="$bpr "
  info "$(printf 'round %s  %-10s %-4s %9s req/s   p99 %8s ms   %5s bytes/response' "$round" "$s" "$sc" "$rps" "$p99" "$bpr")"
}

# ------------------------------------------------------------------------------------------------
step "Start nginx (1 worker, CPU 0)"
rm -rf "$NGX"
mkdir -p "$NGX/logs" "$NGX/tmp"
NGINX_PORT="$(free_port)"
{
  if [ "$HAVE_BROTLI" = 1 ]; then echo "load_module $BROTLI_MODULE;"; fi
  cat <<EOF
# generated by bench/serve.sh
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # nginx closes a keep-alive connection after 1000 requests by default; wrk would then
    # reconnect ~50 times a second. Keep connections open for the whole run, like staleguard.
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;

    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    etag on;
    gzip off;
    gzip_static on;
    gzip_vary on;
EOF
  if [ "$HAVE_BROTLI" = 1 ]; then echo "    brotli_static on;"; fi
  cat <<EOF

    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $SITE;
        location = $REQ_PATH {
            add_header Cache-Control "$IMMUTABLE_CC";
        }
    }
}
EOF
} >"$NGX/nginx.conf"
"$NGINX_BIN" -t -p "$NGX" -c "$NGX/nginx.conf" >"$LOGS/serve-nginx-t.log" 2>&1 || {
  sed 's/^/    | /' "$LOGS/serve-nginx-t.log" >&2
  die "nginx -t failed for $NGX/nginx.conf"
}
taskset -c 0 "$NGINX_BIN" -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off;' \
  >"$NGX/logs/stdout.log" 2>"$NGX/logs/stderr.log" &
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:$NGINX_PORT"
wait_http "$NGINX_URL/" "$NGINX_PID" 10 || {
  cat "$NGX/logs/stderr.log" "$NGX/logs/error.log" >&2 2>/dev/null || true
  die "nginx did not answer on $NGINX_URL"
}
info "nginx pid $NGINX_PID on $NGINX_URL (config $NGX/nginx.conf)"
check nginx "$NGINX_URL"
SERVERS=(nginx)
declare -A BASE=([nginx]="$NGINX_URL")

# ------------------------------------------------------------------------------------------------
SG_RAN=0
if [ "$SKIP_SG" != 1 ] && [ -z "$SG_SERVE_ERR" ]; then
  step "Start staleguard serve (CPU 0)"
  SG_LOG="$LOGS/serve-staleguard.out"
  taskset -c 0 "$SG" serve "$SITE" --bind 127.0.0.1 --port 0 >"$SG_LOG" 2>"$LOGS/serve-staleguard.err" &
  SG_PID=$!
  SG_URL="$(sg_listen_url "$SG_LOG" "$SG_PID" 20)" || SG_URL=""
  if [ -z "$SG_URL" ]; then
    tail -n 20 "$LOGS/serve-staleguard.err" | sed 's/^/    | /' >&2
    if kill -0 "$SG_PID" 2>/dev/null; then
      SG_SERVE_ERR="\`staleguard serve\` did not print 'listening on http://127.0.0.1:PORT' within 20 s (stdout: $SG_LOG)"
    else
      SG_SERVE_ERR="\`staleguard serve\` exited before printing 'listening on http://127.0.0.1:PORT' (stderr: $LOGS/serve-staleguard.err)"
    fi
    stop_pid "$SG_PID" "staleguard serve"
    SG_PID=""
    warn "$SG_SERVE_ERR"
  else
    info "staleguard serve pid $SG_PID on $SG_URL"
    check staleguard "$SG_URL"
    SERVERS+=(staleguard)
    BASE[staleguard]="$SG_URL"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Both servers stay up (idle but for the one under load); the runs alternate between them so that
# background load on the machine hits both alike.
step "wrk: ${ROUNDS} round(s) of (a) GET, (b) If-None-Match, alternating servers"
for s in "${SERVERS[@]}"; do
  write_lua "$WRKDIR/$s-get.lua"
  write_lua "$WRKDIR/$s-304.lua" "${ETAG[$s]}"
done
for round in $(seq 1 "$ROUNDS"); do
  for sc in get 304; do
    for s in "${SERVERS[@]}"; do
      run_wrk "$s" "$sc" "${BASE[$s]}" "$WRKDIR/$s-$sc.lua" "$round"
    done
  done
done
declare -A RPS_RANGE=()
for k in "${!RPS_ALL[@]}"; do
  RPS[$k]="$(median "${RPS_ALL[$k]}")"
  RPS_RANGE[$k]="$(tr ' ' '\n' <<<"${RPS_ALL[$k]}" | sed '/^$/d' | sort -g | sed -n '1p;$p' | paste -sd- -)"
  P99[$k]="$(median "${P99_ALL[$k]}")"
  BPR[$k]="$(median "${BPR_ALL[$k]}")"
done
[ "${#SERVERS[@]}" -lt 2 ] || SG_RAN=1
stop_pid "$NGINX_PID" nginx
NGINX_PID=""
stop_pid "$SG_PID" "staleguard serve"
SG_PID=""

# ------------------------------------------------------------------------------------------------
# Instructions per request under callgrind: req/s scatters by ~10 % between identical runs on this
# kind of machine, the user-space instruction count per request by ~1 %. Each server runs alone on
# CPU 0 (the wrk servers are stopped), a fresh one per scenario, under `valgrind --tool=callgrind
# --instr-atstart=no`: nothing is counted until `callgrind_control -i on`, which comes after a
# warm-up (valgrind translates code on first use), and `-i off` ends the count after the measured
# wrk run. Counted: every instruction the server process executes in user space (all threads,
# libraries included). Not counted: the kernel.
declare -A IR=() CG_REQS=() CG_CONNS=()
CG_CONNS_START=32 # valgrind makes the server ~50x slower: on wrk timeouts, halve it (down to 4)

cg_stop() { # cg_stop SERVER
  stop_pid "$CG_PID" "$1 under valgrind"
  CG_PID=""
}
# cg_start SERVER PREFIX: SERVER on CPU 0 under callgrind (output PREFIX.callgrind.out*); sets
# CG_PID and CG_URL; fails when it does not answer within 60 s
cg_start() {
  local s=$1 p=$2
  local vg=(taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$p.callgrind.out")
  case $s in
    nginx)
      # master_process off: the process valgrind runs is the one that serves
      "${vg[@]}" "$NGINX_BIN" -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off; master_process off;' \
        >"$p.stdout" 2>"$p.stderr" &
      CG_PID=$!
      CG_URL="$NGINX_URL"
      wait_http "$CG_URL/" "$CG_PID" 60
      ;;
    staleguard)
      "${vg[@]}" "$SG" serve "$SITE" --bind 127.0.0.1 --port 0 >"$p.stdout" 2>"$p.stderr" &
      CG_PID=$!
      CG_URL="$(sg_listen_url "$p.stdout" "$CG_PID" 60)"
      ;;
  esac
}
# cg_control PREFIX ARGS...: callgrind_control ARGS, logged to PREFIX.control.log; it exits 0 even
# when it fails, so success is its "OK." line
cg_control() {
  local p=$1 out
  shift
  out="$(callgrind_control "$@" 2>&1)" || true
  printf '$ callgrind_control %s\n%s\n' "$*" "$out" >>"$p.control.log"
  grep -q 'OK\.$' <<<"$out"
}
# cg_total PREFIX: Ir summed over callgrind's output files PREFIX.callgrind.out* (one per dump, one
# at exit), each file's `totals:` line (`summary:` when it has none)
cg_total() {
  local f
  for f in "$1".callgrind.out*; do
    [ -f "$f" ] || continue
    awk '/^totals:/ { t = $2; ht = 1 } /^summary:/ { s = $2 } END { printf "%.0f\n", ht ? t : s }' "$f"
  done | awk '{ n += $1 } END { printf "%.0f", n }'
}
# cg_run SERVER SCENARIO CONNECTIONS: one measurement with a fresh server; sets IR[SERVER/SCENARIO].
# Returns 1 (with a warning) when it failed, 2 when wrk had timeouts (retry with fewer connections).
cg_run() {
  local s=$1 sc=$2 c=$3 key="$1/$2" p="$CG_DIR/$1-$2" n="$1-cg"
  local out="$CG_DIR/$1-$2.wrk.txt" wrk_rc=0 reqs bad errs tmo ir
  rm -f "$p".*
  if ! cg_start "$s" "$p"; then
    tail -n 20 "$p.stderr" | sed 's/^/    | /' >&2
    warn "callgrind: $s did not answer under valgrind within 60 s (stderr: $p.stderr); no Ir/request for $s $sc"
    cg_stop "$s"
    return 1
  fi
  info "$s under callgrind: pid $CG_PID on $CG_URL"
  # Its own ETag: nginx's is made from the file's mtime and size, so ask the server that is running.
  check "$s" "$CG_URL" "$n"
  if [ "$sc" = 304 ]; then write_lua "$p.lua" "${ETAG[$n]}"; else write_lua "$p.lua"; fi
  if ! taskset -c 1 wrk -t1 -c"$c" -d"$CG_WARMUP" -s "$p.lua" "$CG_URL$REQ_PATH" >"$p.warmup.txt" 2>&1; then
    warn "callgrind: wrk warm-up failed against $s under valgrind: $(tail -n 3 "$p.warmup.txt")"
    cg_stop "$s"
    return 1
  fi
  if ! cg_control "$p" -i on "$CG_PID"; then
    warn "callgrind: \`callgrind_control -i on $CG_PID\` failed ($p.control.log); no Ir/request for $s $sc"
    cg_stop "$s"
    return 1
  fi
  taskset -c 1 wrk -t1 -c"$c" -d"$CG_DURATION" -s "$p.lua" "$CG_URL$REQ_PATH" >"$out" 2>&1 || wrk_rc=$?
  if ! cg_control "$p" -i off "$CG_PID" || ! cg_control "$p" -d "$CG_PID"; then
    warn "callgrind: \`callgrind_control -i off / -d $CG_PID\` failed ($p.control.log); no Ir/request for $s $sc"
    cg_stop "$s"
    return 1
  fi
  cg_stop "$s" # the dump is written; stopping also writes the (empty, instrumentation off) last part
  if [ "$wrk_rc" != 0 ]; then
    warn "callgrind: wrk failed against $s under valgrind: $(tail -n 3 "$out")"
    return 1
  fi
  reqs="$(awk '/requests in/ { print $1 }' "$out")"
  bad="$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$out")"
  errs="$(sed -n 's/^ *Socket errors: *//p' "$out")"
  tmo="$(sed -n 's/^ *Socket errors:.*timeout \([0-9][0-9]*\).*$/\1/p' "$out")"
  if [ -n "$tmo" ] && [ "$tmo" != 0 ]; then
    info "$s $sc: $tmo wrk timeouts with $c connections under valgrind ($out)"
    return 2
  fi
  if [ -n "$bad" ] || [ -n "$errs" ]; then
    warn "callgrind: wrk against $s $sc under valgrind: ${bad:+$bad non-2xx/3xx responses; }${errs:+socket errors: $errs; }no Ir/request ($out)"
    return 1
  fi
  if ! [[ "$reqs" =~ ^[1-9][0-9]*$ ]]; then
    warn "callgrind: could not read the request count from $out; no Ir/request for $s $sc"
    return 1
  fi
  ir="$(cg_total "$p")"
  if ! [[ "$ir" =~ ^[1-9][0-9]*$ ]]; then
    warn "callgrind: no instructions counted in $p.callgrind.out*; no Ir/request for $s $sc"
    return 1
  fi
  IR[$key]="$(awk -v i="$ir" -v n="$reqs" 'BEGIN { printf "%.0f", i / n }')"
  CG_REQS[$key]=$reqs
  CG_CONNS[$key]=$c
  info "$(printf '%-10s %-4s %12s Ir / %7s requests = %7s Ir/request (wrk -c%s)' "$s" "$sc" "$ir" "$reqs" "${IR[$key]}" "$c")"
}

if [ "$CALLGRIND" = 1 ]; then
  step "callgrind: user-space instructions per request, (a) and (b), each server alone on CPU 0"
  info "valgrind $V_VALGRIND; output in $CG_DIR"
  rm -rf "$CG_DIR"
  mkdir -p "$CG_DIR"
  for sc in get 304; do
    for s in "${SERVERS[@]}"; do
      c=$CG_CONNS_START
      while :; do
        rc=0
        cg_run "$s" "$sc" "$c" || rc=$?
        [ "$rc" = 2 ] || break
        if [ "$c" -le 4 ]; then
          warn "callgrind: $s $sc: wrk timeouts under valgrind even with $c connections; no Ir/request"
          break
        fi
        c=$((c / 2))
        info "retrying $s $sc with $c connections"
      done
    done
  done
fi

# ------------------------------------------------------------------------------------------------
step "Report"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
cell() { # cell RPS|P99|BPR KEY
  case $1 in
    RPS) echo "${RPS[$2]:-n/a}" ;;
    RPSR) if [ "$ROUNDS" -gt 1 ] && [ -n "${RPS_RANGE[$2]:-}" ]; then echo "${RPS[$2]} (${RPS_RANGE[$2]})"; else echo "${RPS[$2]:-n/a}"; fi ;;
    P99) echo "${P99[$2]:-n/a}" ;;
    BPR) echo "${BPR[$2]:-n/a}" ;;
  esac
}
row() { # row LABEL SCENARIO
  local sc=$2
  printf '| %s | %s | %s | **%s** | %s | %s | %s | %s |\n' "$1" \
    "$(cell RPSR "nginx/$sc")" "$(cell RPSR "staleguard/$sc")" \
    "$(div "$(cell RPS "staleguard/$sc")" "$(cell RPS "nginx/$sc")")" \
    "$(cell P99 "nginx/$sc")" "$(cell P99 "staleguard/$sc")" \
    "$(cell BPR "nginx/$sc")" "$(cell BPR "staleguard/$sc")"
}
if [ "$SKIP_SG" = 1 ]; then
  SG_STATE="skipped (BENCH_SKIP_STALEGUARD=1)"
elif [ "$SG_RAN" = 1 ]; then
  SG_STATE="measured"
else
  SG_STATE="FAILED: $SG_SERVE_ERR"
fi
{
  echo "# staleguard serve vs nginx"
  echo
  echo "- date: $START_DATE"
  echo "- machine: $NPROC cores (nproc), $CPU_MODEL; load average $LOAD_START at start, $LOAD_END at end"
  echo "- nginx $V_NGINX (worker_processes 1, open_file_cache, gzip_static$([ "$HAVE_BROTLI" = 1 ] && echo ", brotli_static from libnginx-mod-http-brotli-static $V_BROTLI" || echo "; brotli_static $V_BROTLI"), etag on, access_log off, keepalive_requests 1000000)"
  echo "- staleguard: ${V_SG:-n/a} ($SG); serve: $SG_STATE"
  echo "- wrk $V_WRK: \`wrk -t1 -c$CONNS -d$DURATION --latency\`, each after a $WARMUP warm-up; server pinned to CPU 0, wrk to CPU 1 (taskset); $ROUNDS round(s), servers alternating$([ "$ROUNDS" = 1 ] || echo "; medians shown")"
  echo "- content: \`staleguard build examples/site\`; file \`$REQ_PATH\` ($LOGICAL, $RAW_SIZE bytes, $ENC sidecar $ENC_SIZE bytes)"
  echo "- (a) GET with \`Accept-Encoding: $AE\` -> 200, Content-Encoding: $ENC; (b) the same with \`If-None-Match: <that server's ETag>\` -> 304"
  echo "- callgrind (Ir/request): $CG_STATE${V_VALGRIND:+; valgrind $V_VALGRIND}"
  [ "$HAVE_BROTLI" = 1 ] || echo "- **nginx brotli_static $V_BROTLI: both servers measured with Accept-Encoding: gzip**"
  echo
  echo "| scenario | nginx req/s | staleguard req/s | staleguard/nginx | nginx p99 ms | staleguard p99 ms | nginx bytes/resp | staleguard bytes/resp |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  row "(a) GET $ENC 200" get
  row "(b) If-None-Match 304" 304
  echo
  [ "$ROUNDS" = 1 ] || echo "req/s: median of $ROUNDS rounds (lowest-highest); ratio: of the medians; p99 and bytes/resp: medians too."
  echo "bytes/resp: bytes wrk read divided by requests (status line, headers and body)."
  echo
  if [ "$CALLGRIND" = 1 ]; then
    echo "### User-space instructions per request (callgrind; lower is better)"
    echo
    echo "| scenario | nginx Ir/req | staleguard Ir/req | staleguard/nginx (lower is better) |"
    echo "| --- | ---: | ---: | ---: |"
    for sc in get 304; do
      if [ "$sc" = get ]; then label="(a) GET $ENC 200"; else label="(b) If-None-Match 304"; fi
      printf '| %s | %s | %s | **%s** |\n' "$label" "${IR[nginx/$sc]:-n/a}" "${IR[staleguard/$sc]:-n/a}" \
        "$(div "${IR[staleguard/$sc]:-n/a}" "${IR[nginx/$sc]:-n/a}" 3)"
    done
    echo
    echo "Ir/req: instructions the server process executed in user space (all threads, libraries included), counted by valgrind's callgrind only during a $CG_DURATION \`wrk -t1\` run (after a $CG_WARMUP warm-up, each server alone on CPU 0, a fresh one per scenario), divided by the requests wrk completed. The kernel is not counted: its TCP work is ~70 % of the server's CPU time, and for (b) both servers make the same syscalls per request (one recvfrom, one send); for (a) nginx makes five (recvfrom, setsockopt TCP_CORK, writev, sendfile, setsockopt) where staleguard makes two (recvfrom, sendto). Unlike req/s, Ir/req is deterministic to within about 1 % between runs."
    cg_runs=""
    for k in nginx/get staleguard/get nginx/304 staleguard/304; do
      [ -n "${CG_REQS[$k]:-}" ] || continue
      cg_runs+="${cg_runs:+, }$k ${CG_REQS[$k]} requests (-c${CG_CONNS[$k]})"
    done
    [ -z "$cg_runs" ] || printf '\nCounted: %s.\n' "$cg_runs"
    echo
  else
    echo "Ir/request (callgrind): $CG_STATE."
    echo
  fi
  echo "ETags: nginx \`${ETAG[nginx]:-n/a}\`, staleguard \`${ETAG[staleguard]:-n/a}\`."
  echo
  for s in nginx staleguard; do
    [ -f "$HDRS/$s-get" ] || continue
    echo "<details><summary>$s response headers (a)</summary>"
    echo
    echo '```'
    tr -d '\r' <"$HDRS/$s-get" | sed '/^$/d'
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
  echo "Raw wrk output: \`bench/work/serve-wrk/\`; nginx config: \`bench/work/nginx/nginx.conf\`$([ "$CALLGRIND" = 1 ] && echo "; callgrind output, wrk runs under valgrind: \`bench/work/serve-callgrind/\` (\`callgrind_annotate FILE\`)")."
} >"$REPORT"
echo >&2
cat "$REPORT"
info "report written to $REPORT"

if [ "$SKIP_SG" != 1 ] && [ "$SG_RAN" != 1 ]; then
  die "staleguard half not measured: $SG_SERVE_ERR"
fi
