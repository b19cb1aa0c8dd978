#!/usr/bin/env bash
# scripts/peers/redis.sh: a throw-away Redis server on loopback, for tests and benches.
#
#   scripts/peers/redis.sh install
#       apt-get install redis-server (as root; apt-get update only when it is missing). Prints nothing
#       when redis-server is already there.
#   scripts/peers/redis.sh start [STATE_DIR]
#       starts redis-server on a free 127.0.0.1 port (no persistence: a test's data dies with it),
#       waits until it answers PING and prints, on stdout, lines meant for eval:
#           REDIS_URL=redis://127.0.0.1:PORT
#           REDIS_PID=NNN
#           REDIS_STATE=DIR
#       REDIS_PASSWORD=SECRET in the environment makes the server require it (`requirepass`).
#   scripts/peers/redis.sh stop [STATE_DIR]
#       Stops the server recorded in STATE_DIR (SIGTERM, then SIGKILL after 5 s), waits for it to exit
#       and removes STATE_DIR when `start` made it. Kills nothing else.
#
# Environment (start): REDIS_WATCH_PID=PID: a watchdog stops the server once that process exits.
set -euo pipefail

PROG="scripts/peers/redis.sh"
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/peers/lib.sh
source "$HERE/lib.sh"

cmd_install() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "Redis is not installed; run as root, or: sudo apt-get install redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq redis-server >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq redis-server >/dev/null
  }
  command -v redis-server >/dev/null || die "redis-server installed, but not on PATH"
}

cmd_start() {
  command -v redis-server >/dev/null 2>&1 || die "Redis is not installed (scripts/peers/redis.sh install, or apt-get install redis-server)"
  local state="${1:-}" made=0 port pid auth=()
  if [ -z "$state" ]; then state="$(mktemp -d)"; made=1; fi
  mkdir -p "$state"
  port="$(peer_free_port)"
  if [ -n "${REDIS_PASSWORD:-}" ]; then auth=(--requirepass "$REDIS_PASSWORD"); fi
  echo "made=$made" >"$state/peer.env"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$state" \
    --daemonize no "${auth[@]}" >"$state/redis.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$state/redis.pid"
  for _ in $(seq 1 200); do
    if redis-cli -p "$port" ${REDIS_PASSWORD:+-a "$REDIS_PASSWORD" --no-auth-warning} ping 2>/dev/null | grep -q PONG; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$state/redis.log" >&2; die "redis-server exited (log: $state/redis.log)"; }
    sleep 0.05
  done
  peer_watchdog REDIS_WATCH_PID "${REDIS_WATCH_PID:-}" "$pid" "$HERE/redis.sh" "$state"
  printf 'REDIS_URL=redis://127.0.0.1:%s\nREDIS_PID=%s\nREDIS_STATE=%s\n' "$port" "$pid" "$state"
}

cmd_stop() {
  local state="${1:-${REDIS_STATE:-}}"
  [ -n "$state" ] || die "which instance? pass its STATE_DIR (or set REDIS_STATE)"
  peer_stop_pidfile "$state" redis.pid
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) printf 'usage: %s install | start [STATE_DIR] | stop [STATE_DIR]\n' "$PROG" >&2; exit 2 ;;
esac
