#!/usr/bin/env bash
# bench/service.sh: `staleguard service` against the user's Celery + Redis-lock pattern (the anchor,
# ../shared/seeds: `apply_async(countdown=5)` and a 30 s `cache.add` lock per workspace), on the same
# workload, the same machine, in one run. See bench/README.md.
#
# 1. Staleness: 20,000 saves over 100 workspaces in bursts (bench/service/workload.py, seeded), sent
#    from one process, one save per call, to each side; both purge one recorder speaking Varnish's
#    purge protocol (bench/service/recorder.py). After each side drained, a workspace is stale when no
#    purge covering its last acknowledged save arrived after that acknowledgement (judge.py).
#    Reported: saves acknowledged per second, stale workspaces, purge requests, peak RSS of the
#    service / of the Celery worker (its processes summed).
# 2. Throughput of staleguard (durable: every 202 is committed with synchronous=FULL): wrk, one
#    thread, single-event POSTs on 64 keep-alive connections, and 1,000-event batch POSTs on 8.
# 3. Memory holding 20,000 pending events over 100 workspaces (debounce 10 min: nothing is sent).
# The service runs on CPU 1 (taskset -c 1), every client on CPU 0.
#
# Environment:
#   STALEGUARD_BIN=PATH     use this binary instead of `cargo build --profile dist -p staleguard`
#   BENCH_EVENTS=20000      saves in the workload (over 100 workspaces)
#   BENCH_DURATION=10s      each wrk run
#   BENCH_NO_INSTALL=1      do not apt-get install redis-server and wrk
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"
WORK="$BENCH_DIR/work/service"
LOGS="$WORK/logs"
rm -rf "$WORK"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
EVENTS="${BENCH_EVENTS:-20000}"
DURATION="${BENCH_DURATION:-10s}"
TOKEN="bench-token-$RANDOM$RANDOM"
export BENCH_TOKEN="$TOKEN"
S="$BENCH_DIR/service"

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Peak and current RSS in MB of PID and its children.
rss_of() { # rss_of PID FIELD (VmHWM or VmRSS)
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}
wait_http() { # wait_http URL
  for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  die "nothing answers at $1"
}

step "peers and tools"
if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  command -v redis-server >/dev/null || apt-get install -y redis-server >"$LOGS/apt.log" 2>&1
  command -v wrk >/dev/null || apt-get install -y wrk >>"$LOGS/apt.log" 2>&1
fi
command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
VENV="${BENCH_VENV:-$HOME/.cache/staleguard/bench-venv}"
if [ ! -x "$VENV/bin/celery" ]; then
  info "bench venv with Celery and redis-py: $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'celery[redis]==5.5.*' requests >"$LOGS/pip.log" 2>&1 || die "pip install celery failed (log: $LOGS/pip.log)"
fi
CELERY_VERSION="$("$VENV/bin/celery" --version | head -1)"
info "celery $CELERY_VERSION, $(redis-server --version | awk '{print $3}')"
staleguard_bin "$LOGS/build.log"
python3 "$S/workload.py" "$EVENTS" 100 >"$WORK/events.txt"

start_recorder() { # start_recorder LOG -> sets CDN_PORT
  CDN_PORT="$(free_port)"
  taskset -c 0 python3 "$S/recorder.py" "$CDN_PORT" "$1" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$CDN_PORT/"
}

# ---------------------------------------------------------------------------------------------
step "anchor: Celery + Redis lock (countdown=5, 30 s lock)"
REDIS_PORT="$(free_port)"
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$LOGS/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
start_recorder "$WORK/celery-cdn.log"
export BENCH_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" BENCH_CDN_URL="http://127.0.0.1:$CDN_PORT"
(cd "$S" && exec taskset -c 1 "$VENV/bin/celery" -A celery_app worker --concurrency 2 --loglevel warning) >"$LOGS/celery.log" 2>&1 &
CELERY_PID=$!
PIDS+=($CELERY_PID)
sleep 3
(cd "$S" && taskset -c 0 "$VENV/bin/python" produce_celery.py "$WORK/events.txt" "$WORK/celery-acks.txt") >"$WORK/celery-produce.txt"
C_RATE="$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$WORK/celery-produce.txt")"
info "apply_async: $C_RATE/s"
# Drained: every countdown passed and nothing is queued or reserved.
sleep 6
for _ in $(seq 1 600); do
  q="$(redis-cli -p "$REDIS_PORT" llen celery)"; u="$(redis-cli -p "$REDIS_PORT" hlen unacked)"
  [ "$q" = 0 ] && [ "$u" = 0 ] && break
  sleep 0.2
done
sleep 1
C_RSS="$(rss_of "$CELERY_PID" VmHWM)"
read -r C_STALE C_PURGES < <(python3 "$S/judge.py" "$WORK/celery-acks.txt" "$WORK/celery-cdn.log" | sed 's/stale=\([0-9]*\) scopes=[0-9]* purges=\([0-9]*\)/\1 \2/')
info "stale workspaces: $C_STALE/100, purges: $C_PURGES, worker peak RSS: $C_RSS MB"
cleanup; PIDS=()

# ---------------------------------------------------------------------------------------------
run_service() { # run_service DIR DEBOUNCE MAX_WAIT -> sets SVC_PID SVC_URL
  local dir=$1
  mkdir -p "$dir"
  cat >"$dir/staleguard.toml" <<TOML
[deploy]
store = "file://store"

[service]
db = "svc/events.db"
debounce = "$2"
max-wait = "$3"
queue = 65536

[[cdn]]
provider = "varnish"
name = "edge"
nodes = ["http://127.0.0.1:$CDN_PORT"]
TOML
  local port
  port="$(free_port)"
  (cd "$dir" && STALEGUARD_SERVICE_TOKEN="$TOKEN" STALEGUARD_SERVICE_DB="${SVC_DB:-}" exec taskset -c 1 "$SG" service --listen "127.0.0.1:$port") >"$dir/service.log" 2>&1 &
  SVC_PID=$!
  PIDS+=($SVC_PID)
  SVC_URL="http://127.0.0.1:$port"
  wait_http "$SVC_URL/healthz"
}
pending() { curl -s -H "Authorization: Bearer $TOKEN" "$SVC_URL/metrics" | awk '$1 == "staleguard_events_pending" { print $2 }'; }

step "staleguard service (debounce 5s, max-wait 60s)"
start_recorder "$WORK/sg-cdn.log"
run_service "$WORK/sg" 5s 60s
taskset -c 0 python3 "$S/produce_http.py" "$SVC_URL" "$TOKEN" "$WORK/events.txt" "$WORK/sg-acks.txt" >"$WORK/sg-produce.txt"
G_RATE="$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$WORK/sg-produce.txt")"
info "POST (one client, one connection, one event each): $G_RATE/s"
sleep 5
for _ in $(seq 1 1200); do [ "$(pending)" = 0 ] && break; sleep 0.1; done
[ "$(pending)" = 0 ] || die "the service did not drain"
G_RSS="$(rss_of "$SVC_PID" VmHWM)"
read -r G_STALE G_PURGES < <(python3 "$S/judge.py" "$WORK/sg-acks.txt" "$WORK/sg-cdn.log" | sed 's/stale=\([0-9]*\) scopes=[0-9]* purges=\([0-9]*\)/\1 \2/')
info "stale workspaces: $G_STALE/100, purge requests: $G_PURGES, peak RSS: $G_RSS MB"

step "staleguard throughput (wrk -t1, durable acks)"
wrk_rate() { # wrk_rate CONNS SCRIPT -> requests/s of 2xx
  local out
  out="$(taskset -c 0 wrk -t1 -c"$1" -d"$DURATION" -s "$2" "$SVC_URL" 2>&1)"
  echo "$out" >>"$LOGS/wrk.log"
  if grep -q 'Non-2xx' <<<"$out"; then warn "wrk saw non-2xx answers: $(grep 'Non-2xx' <<<"$out")"; fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
SINGLE="$(wrk_rate 64 "$S/single.lua")"
info "single-event POSTs, 64 connections: $SINGLE/s"
BATCH_REQ="$(wrk_rate 8 "$S/batch.lua")"
BATCH="$(awk -v r="$BATCH_REQ" 'BEGIN { printf "%.0f", r * 1000 }')"
info "batch POSTs of 1,000, 8 connections: $BATCH_REQ/s = $BATCH events/s"
cleanup; PIDS=()

step "staleguard holding $EVENTS pending events over 100 workspaces"
start_recorder "$WORK/held-cdn.log"
run_service "$WORK/held" 10m 1h
python3 - "$SVC_URL" "$TOKEN" "$WORK/events.txt" <<'PY'
import http.client, json, sys, urllib.parse
base, token, path = sys.argv[1:4]
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port)
ev = [l.split() for l in open(path) if l.strip()]
for i in range(0, len(ev), 1000):
    body = json.dumps({"events": [{"scope": s, "paths": [p]} for s, p in ev[i:i + 1000]]})
    c.request("POST", "/v1/invalidations:batch", body, {"authorization": f"Bearer {token}", "content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
PY
HELD="$(pending)"
H_RSS="$(rss_of "$SVC_PID" VmRSS)"
H_HWM="$(rss_of "$SVC_PID" VmHWM)"
info "pending: $HELD, RSS $H_RSS MB (peak $H_HWM MB)"
cleanup; PIDS=()

# ---------------------------------------------------------------------------------------------
step "staleguard service on PostgreSQL (one instance; the server shares CPU 1 with it)"
scripts/peers/postgres.sh install >>"$LOGS/apt.log" 2>&1 || die "scripts/peers/postgres.sh install failed"
eval "$(POSTGRES_WATCH_PID=$$ scripts/peers/postgres.sh start)"
PG_PIDS=("$POSTGRES_PID")
taskset -pc 1 "$POSTGRES_PID" >/dev/null 2>&1 || true
export SVC_DB="$POSTGRES_URL"
start_recorder "$WORK/pg-cdn.log"
run_service "$WORK/pg" 5s 60s
taskset -c 0 python3 "$S/produce_http.py" "$SVC_URL" "$TOKEN" "$WORK/events.txt" "$WORK/pg-acks.txt" >"$WORK/pg-produce.txt"
P_RATE="$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$WORK/pg-produce.txt")"
sleep 5
for _ in $(seq 1 1200); do [ "$(pending)" = 0 ] && break; sleep 0.1; done
[ "$(pending)" = 0 ] || die "the service on PostgreSQL did not drain"
read -r P_STALE P_PURGES < <(python3 "$S/judge.py" "$WORK/pg-acks.txt" "$WORK/pg-cdn.log" | sed 's/stale=\([0-9]*\) scopes=[0-9]* purges=\([0-9]*\)/\1 \2/')
info "stale workspaces: $P_STALE/100, purge requests: $P_PURGES, one-client POSTs: $P_RATE/s"
P_SINGLE="$(wrk_rate 64 "$S/single.lua")"
P_BATCH_REQ="$(wrk_rate 8 "$S/batch.lua")"
P_BATCH="$(awk -v r="$P_BATCH_REQ" 'BEGIN { printf "%.0f", r * 1000 }')"
info "single-event POSTs: $P_SINGLE/s; batch: $P_BATCH events/s"
cleanup; PIDS=()
scripts/peers/postgres.sh stop "$POSTGRES_STATE" >/dev/null 2>&1 || true
unset SVC_DB

# ---------------------------------------------------------------------------------------------
CPU="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
printf '\n%s, %s cores (%s), %s saves over 100 workspaces\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$CPU" "$EVENTS"
printf '| | Celery + Redis lock (anchor) | staleguard service | ratio |\n|---|---|---|---|\n'
printf '| workspaces stale at the end | %s / 100 | %s / 100 | |\n' "$C_STALE" "$G_STALE"
printf '| saves acknowledged per second, one client, one per call | %s | %s | %s× |\n' "$C_RATE" "$G_RATE" "$(div "$G_RATE" "$C_RATE" 1)"
printf '| purge requests sent | %s | %s | |\n' "$C_PURGES" "$G_PURGES"
printf '| peak RSS (worker / service) | %s MB | %s MB | %s× |\n' "$C_RSS" "$G_RSS" "$(div "$G_RSS" "$C_RSS" 2)"
printf '| durable single-event POSTs/s (wrk, 64 connections) | | %s | %s× the anchor |\n' "$SINGLE" "$(div "$SINGLE" "$C_RATE" 1)"
printf '| durable events/s through the batch endpoint (wrk, 8 × 1,000) | | %s | %s× the anchor |\n' "$BATCH" "$(div "$BATCH" "$C_RATE" 1)"
printf '| RSS holding %s pending events over 100 workspaces | | %s MB (peak %s MB) | |\n' "$HELD" "$H_RSS" "$H_HWM"
printf '| on PostgreSQL: workspaces stale at the end | %s / 100 | %s / 100 | |\n' "$C_STALE" "$P_STALE"
printf '| on PostgreSQL: durable single-event POSTs/s (wrk, 64 connections) | | %s | %s× the anchor |\n' "$P_SINGLE" "$(div "$P_SINGLE" "$C_RATE" 1)"
printf '| on PostgreSQL: durable events/s through the batch endpoint (wrk, 8 × 1,000) | | %s | %s× the anchor |\n' "$P_BATCH" "$(div "$P_BATCH" "$C_RATE" 1)"
for w in "${WARNINGS[@]}"; do printf 'warning: %s\n' "$w"; done
