#!/usr/bin/env bash
# scripts/peers/postgres.sh: a throw-away PostgreSQL server on loopback, for tests and benches.
#
#   scripts/peers/postgres.sh install
#       apt-get install postgresql (as root; apt-get update only when it is missing). Prints nothing
#       when initdb is already there (Debian keeps it in /usr/lib/postgresql/<version>/bin).
#   scripts/peers/postgres.sh start [STATE_DIR]
#       initdb into STATE_DIR/data (default: a fresh `mktemp -d`), trust authentication on loopback
#       only, fsync on (the service's durability is what is tested), starts postgres on a free
#       127.0.0.1 port, waits until it accepts connections and prints, on stdout, lines meant for eval:
#           POSTGRES_URL=postgres://staleguard@127.0.0.1:PORT/staleguard
#           POSTGRES_PID=NNN         (the postmaster)
#           POSTGRES_STATE=DIR
#       PostgreSQL refuses to run as root: as root, initdb and postgres run as the system user
#       `staleguard-pg` (created when missing), which owns STATE_DIR.
#   scripts/peers/postgres.sh stop [STATE_DIR]
#       Stops the postmaster recorded in STATE_DIR (fast shutdown, then SIGKILL after 10 s), waits for
#       it to exit and removes STATE_DIR when `start` made it. Kills nothing else.
#
# Environment (start): POSTGRES_START_TIMEOUT=SECONDS (default 30); POSTGRES_WATCH_PID=PID: a watchdog
# stops the server once that process exits (a test binary sharing one server, or killed without
# cleaning up).
set -euo pipefail

PROG="scripts/peers/postgres.sh"
RUN_AS="staleguard-pg"
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/peers/lib.sh
source "$HERE/lib.sh"

bindir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

as_owner() { # as_owner CMD...: as root, run as $RUN_AS; else as the caller
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$RUN_AS" -- "$@"
  else
    "$@"
  fi
}

cmd_install() {
  bindir >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run as root, or: sudo apt-get install postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postgresql >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
  }
  bindir >/dev/null || die "postgresql installed, but no initdb under /usr/lib/postgresql/*/bin"
}

cmd_start() {
  local bin state made=0 port pid
  bin="$(bindir)" || die "PostgreSQL is not installed (scripts/peers/postgres.sh install, or apt-get install postgresql)"
  state="${1:-}"
  if [ -z "$state" ]; then state="$(mktemp -d)"; made=1; fi
  mkdir -p "$state"
  if [ "$(id -u)" = 0 ]; then
    id "$RUN_AS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS"
    chown "$RUN_AS" "$state"
    # Its parent folders must be traversable by that user (mktemp -d makes them 0700).
    chmod o+x "$state" "$(dirname "$state")" 2>/dev/null || true
  fi
  port="$(peer_free_port)"
  as_owner "$bin/initdb" -D "$state/data" -U staleguard --auth=trust --no-instructions -E UTF8 >"$state/initdb.log" 2>&1 \
    || { cat "$state/initdb.log" >&2; die "initdb failed in $state/data"; }
  cat >>"$state/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$state'
fsync = on
synchronous_commit = on
max_connections = 200
CONF
  echo "made=$made" >"$state/peer.env"
  as_owner "$bin/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t "${POSTGRES_START_TIMEOUT:-30}" start >/dev/null \
    || { tail -n 20 "$state/postgres.log" >&2; die "postgres did not start (log: $state/postgres.log)"; }
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U staleguard staleguard >/dev/null \
    || die "cannot create the database staleguard"
  pid="$(head -1 "$state/data/postmaster.pid")"
  peer_watchdog POSTGRES_WATCH_PID "${POSTGRES_WATCH_PID:-}" "$pid" "$HERE/postgres.sh" "$state"
  printf 'POSTGRES_URL=postgres://staleguard@127.0.0.1:%s/staleguard\nPOSTGRES_PID=%s\nPOSTGRES_STATE=%s\n' "$port" "$pid" "$state"
}

cmd_stop() {
  local state="${1:-${POSTGRES_STATE:-}}" pid made=0 bin
  [ -n "$state" ] || die "which instance? pass its STATE_DIR (or set POSTGRES_STATE)"
  [ -f "$state/peer.env" ] && made="$(sed -n 's/^made=//p' "$state/peer.env")"
  if [ -f "$state/data/postmaster.pid" ]; then
    pid="$(head -1 "$state/data/postmaster.pid")"
    bin="$(bindir)" || true
    if [ -n "$bin" ]; then
      as_owner "$bin/pg_ctl" -D "$state/data" -m fast -w -t 10 stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
    else
      kill "$pid" 2>/dev/null || true
    fi
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ "$made" = 1 ] && rm -rf "$state"
  return 0
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) printf 'usage: %s install | start [STATE_DIR] | stop [STATE_DIR]\n' "$PROG" >&2; exit 2 ;;
esac
