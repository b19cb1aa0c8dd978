#!/usr/bin/env bash
# scripts/peers/memcached.sh: a throw-away memcached server on loopback, for tests and benches.
#
#   scripts/peers/memcached.sh install
#       apt-get install memcached (as root; apt-get update only when it is missing). Prints nothing
#       when memcached is already there.
#   scripts/peers/memcached.sh start [STATE_DIR]
#       starts memcached (64 MB) on a free 127.0.0.1 TCP port, waits until it answers `version` and
#       prints, on stdout, lines meant for eval:
#           MEMCACHED_URL=memcached://127.0.0.1:PORT
#           MEMCACHED_PID=NNN
#           MEMCACHED_STATE=DIR
#   scripts/peers/memcached.sh stop [STATE_DIR]
#       Stops the server recorded in STATE_DIR (SIGTERM, then SIGKILL after 5 s), waits for it to exit
#       and removes STATE_DIR when `start` made it. Kills nothing else.
#
# Environment (start): MEMCACHED_WATCH_PID=PID: a watchdog stops the server once that process exits.
set -euo pipefail

PROG="scripts/peers/memcached.sh"
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/peers/lib.sh
source "$HERE/lib.sh"
bin() { command -v memcached 2>/dev/null || { [ -x /usr/bin/memcached ] && echo /usr/bin/memcached; }; }

cmd_install() {
  bin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "memcached is not installed; run as root, or: sudo apt-get install memcached"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq memcached >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq memcached >/dev/null
  }
  # Debian starts a system instance on 11211: the tests start their own; that one is left alone.
  bin >/dev/null || die "memcached installed, but not found"
}

cmd_start() {
  local m state="${1:-}" made=0 port pid user=()
  m="$(bin)" || die "memcached is not installed (scripts/peers/memcached.sh install, or apt-get install memcached)"
  if [ -z "$state" ]; then state="$(mktemp -d)"; made=1; fi
  mkdir -p "$state"
  port="$(peer_free_port)"
  # memcached refuses to run as root without -u.
  if [ "$(id -u)" = 0 ]; then user=(-u nobody); fi
  echo "made=$made" >"$state/peer.env"
  "$m" -l 127.0.0.1 -p "$port" -U 0 -m 64 "${user[@]}" >"$state/memcached.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$state/memcached.pid"
  for _ in $(seq 1 200); do
    if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"version\r\n")
assert s.recv(64).startswith(b"VERSION")
PY
    kill -0 "$pid" 2>/dev/null || { cat "$state/memcached.log" >&2; die "memcached exited (log: $state/memcached.log)"; }
    sleep 0.05
  done
  peer_watchdog MEMCACHED_WATCH_PID "${MEMCACHED_WATCH_PID:-}" "$pid" "$HERE/memcached.sh" "$state"
  printf 'MEMCACHED_URL=memcached://127.0.0.1:%s\nMEMCACHED_PID=%s\nMEMCACHED_STATE=%s\n' "$port" "$pid" "$state"
}

cmd_stop() {
  local state="${1:-${MEMCACHED_STATE:-}}"
  [ -n "$state" ] || die "which instance? pass its STATE_DIR (or set MEMCACHED_STATE)"
  peer_stop_pidfile "$state" memcached.pid
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) printf 'usage: %s install | start [STATE_DIR] | stop [STATE_DIR]\n' "$PROG" >&2; exit 2 ;;
esac
