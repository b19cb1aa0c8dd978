#!/usr/bin/env bash
# scripts/peers/nginx.sh: a throw-away nginx serving a configuration snippet, for tests.
#
#   scripts/peers/nginx.sh install
#       apt-get install nginx and libnginx-mod-http-brotli-static (as root; apt-get update only when
#       they are missing). Prints nothing when both are already installed. Debian's own nginx service,
#       if the package starts one, is left alone: the tests start their own instances.
#   scripts/peers/nginx.sh start SNIPPET PORT [STATE_DIR]
#       Writes STATE_DIR/nginx.conf (the brotli_static module when installed, pid file, logs and temp
#       paths in STATE_DIR, `include SNIPPET` in http {}), checks it with `nginx -t`, starts nginx in
#       the foreground as a child of this script's caller (daemon off) and waits until 127.0.0.1:PORT
#       (the port the snippet listens on) accepts, then prints on stdout, for eval:
#           NGINX_URL=http://127.0.0.1:PORT
#           NGINX_PID=NNN        (the master process)
#           NGINX_STATE=DIR      (STATE_DIR; default: a fresh `mktemp -d`)
#   scripts/peers/nginx.sh stop [STATE_DIR]
#       Stops the master recorded in STATE_DIR (SIGTERM, then SIGKILL after 5 s; its workers follow)
#       and removes STATE_DIR when `start` made it. Kills nothing else.
#
# Environment (start): NGINX_WATCH_PID=PID: a watchdog stops nginx once that process exits.
set -euo pipefail

PROG="scripts/peers/nginx.sh"
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/peers/lib.sh
source "$HERE/lib.sh"
MODULE=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

cmd_install() {
  if bin >/dev/null && [ -f "$MODULE" ]; then return 0; fi
  [ "$(id -u)" = 0 ] || die "nginx is not installed; run as root, or: sudo apt-get install nginx libnginx-mod-http-brotli-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq nginx libnginx-mod-http-brotli-static >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq nginx libnginx-mod-http-brotli-static >/dev/null
  }
  bin >/dev/null || die "nginx installed, but not found"
}

cmd_start() {
  local n snippet="${1:-}" port="${2:-}" state="${3:-}" made=0 pid
  n="$(bin)" || die "nginx is not installed (scripts/peers/nginx.sh install)"
  [ -f "$snippet" ] || die "no snippet at '$snippet' (usage: start SNIPPET PORT [STATE_DIR])"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be the port the snippet listens on"
  if [ -z "$state" ]; then state="$(mktemp -d)"; made=1; fi
  mkdir -p "$state/tmp"
  echo "made=$made" >"$state/peer.env"
  {
    [ -f "$MODULE" ] && echo "load_module $MODULE;"
    # As root, workers would drop to www-data, which cannot read a test's 0700 temp folder.
    [ "$(id -u)" = 0 ] && echo "user root;"
    echo "worker_processes 1;"
    echo "pid $state/nginx.pid;"
    echo "error_log $state/error.log;"
    echo "events { worker_connections 256; }"
    echo "http {"
    echo "    access_log off;"
    for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $state/tmp/$t;"; done
    echo "    include $(cd "$(dirname "$snippet")" && pwd)/$(basename "$snippet");"
    echo "}"
  } >"$state/nginx.conf"
  "$n" -t -q -p "$state" -c "$state/nginx.conf" 2>"$state/check.log" || {
    sed 's/^/    | /' "$state/check.log" >&2
    die "nginx -t refused the configuration (state: $state)"
  }
  "$n" -p "$state" -c "$state/nginx.conf" -g 'daemon off;' >"$state/nginx.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$state/master.pid"
  for _ in $(seq 1 200); do
    if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' "$port" 2>/dev/null; then
      break
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$state/nginx.log" "$state/error.log" >&2 2>/dev/null; die "nginx exited (state: $state)"; }
    sleep 0.05
  done
  peer_watchdog NGINX_WATCH_PID "${NGINX_WATCH_PID:-}" "$pid" "$HERE/nginx.sh" "$state"
  printf 'NGINX_URL=http://127.0.0.1:%s\nNGINX_PID=%s\nNGINX_STATE=%s\n' "$port" "$pid" "$state"
}

cmd_stop() {
  local state="${1:-${NGINX_STATE:-}}"
  [ -n "$state" ] || die "which instance? pass its STATE_DIR (or set NGINX_STATE)"
  peer_stop_pidfile "$state" master.pid
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) printf 'usage: %s install | start SNIPPET PORT [STATE_DIR] | stop [STATE_DIR]\n' "$PROG" >&2; exit 2 ;;
esac
