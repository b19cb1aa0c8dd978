#!/usr/bin/env bash
# scripts/peers/varnish.sh: a Varnish cache node (with vmod_xkey) in front of an origin, for tests.
#
#   scripts/peers/varnish.sh install
#       apt-get install varnish varnish-modules (as root; apt-get update only when they are missing).
#       Prints nothing when both are already installed.
#   scripts/peers/varnish.sh start BACKEND_HOST:BACKEND_PORT [STATE_DIR]
#       Renders scripts/peers/staleguard.vcl for that backend, checks it with `varnishd -C`, starts
#       varnishd on a free 127.0.0.1 port (admin interface on another), waits until it answers and
#       prints, on stdout, three lines meant for eval:
#           VARNISH_URL=http://127.0.0.1:PORT
#           VARNISH_PID=NNN          (the varnishd manager process; its child is the cache process)
#           VARNISH_STATE=DIR        (STATE_DIR; default: a fresh `mktemp -d`)
#       e.g.  eval "$(scripts/peers/varnish.sh start 127.0.0.1:8080)"
#   scripts/peers/varnish.sh stop [STATE_DIR]
#       Stops the varnishd recorded in STATE_DIR (default: $VARNISH_STATE) and its child, waits for
#       both to exit, removes STATE_DIR/work (and STATE_DIR itself when `start` made it with mktemp).
#       Kills nothing else.
#   scripts/peers/varnish.sh admin STATE_DIR ARGS...
#       varnishadm against that instance, e.g. `admin "$VARNISH_STATE" ban.list`.
#
# Several instances can run at once: each has its own state dir, `-n` work dir, ports and PID file.
# STATE_DIR holds: staleguard.vcl (rendered), secret, varnishd.pid, varnishd.log, peer.env, work/.
#
# Environment (start):
#   VARNISH_GZIP_SUPPORT=off|on   varnishd's http_gzip_support parameter (default: off, see below)
#   VARNISH_PARAMS="-p name=value ..."   extra varnishd arguments (word-split)
#   VARNISH_START_TIMEOUT=SECONDS  how long to wait for varnishd to answer (default 20)
#   VARNISH_VCL=FILE               another VCL template (same @BACKEND_HOST@/@BACKEND_PORT@ placeholders),
#                                  e.g. a node that answers purges but drops nothing, for tests
#
# Why http_gzip_support defaults to off here: when it is on (Varnish's default), Varnish rewrites a
# client's `Accept-Encoding: br, gzip` to `Accept-Encoding: gzip` on every cacheable request before
# the lookup and the backend fetch, so an origin that serves brotli sidecars never gets asked for br
# and Vary: Accept-Encoding never sees the client's real header. With it off, Accept-Encoding reaches
# the origin as sent, Content-Encoding: br is cached and served, and every distinct Accept-Encoding
# value is its own Vary variant. Set VARNISH_GZIP_SUPPORT=on to test against stock behaviour.
#
# `-j none`: no privilege separation. Started as root, varnishd would otherwise drop to the
# `varnish`/`vcache` users, which cannot read a state dir under a 0700 parent (mktemp -d, Rust's
# tempfile); with `-j none` it runs as the caller, root or not, and the same way for both.
#
# Needs: varnishd 7.x (std.ban), varnish-modules (xkey), python3 (free ports), curl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="scripts/peers/varnish.sh"
VCL_TEMPLATE="${VARNISH_VCL:-$HERE/staleguard.vcl}"

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() {
  cat >&2 <<EOF
usage: $PROG install
       $PROG start BACKEND_HOST:BACKEND_PORT [STATE_DIR]
       $PROG stop [STATE_DIR]
       $PROG admin STATE_DIR VARNISHADM_ARGS...
EOF
  exit 2
}

# Debian installs varnishd in /usr/sbin, which a non-root PATH may lack.
find_tool() { # find_tool NAME -> path or empty
  if command -v "$1" 2>/dev/null; then return 0; fi
  local d
  for d in /usr/sbin /usr/local/sbin /sbin; do
    if [ -x "$d/$1" ]; then printf '%s\n' "$d/$1"; return 0; fi
  done
  return 0
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a small race remains until varnishd binds it).
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The PID of a live varnishd whose command line names this work dir, or nothing.
live_pid() { # live_pid PIDFILE WORKDIR
  local pid
  [ -f "$1" ] || return 0
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  local cmdline
  cmdline="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  if grep -qxF -- "$2" <<<"$cmdline" \
     && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = varnishd ]; then
    printf '%s\n' "$pid"
  fi
}

children_of() { # direct children of PID, one per line
  if command -v ps >/dev/null; then
    ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true
    return 0
  fi
  # No procps: field 4 of /proc/N/stat is the parent (field 2 may hold spaces: cut after the last ')').
  local stat
  for stat in /proc/[0-9]*/stat; do
    awk -v want="$1" '{ sub(/^.*\) /, ""); if ($2 == want) { f = FILENAME; gsub(/[^0-9]/, "", f); print f } }' \
      "$stat" 2>/dev/null || true
  done
}

cmd_install() {
  [ "$#" -eq 0 ] || usage
  local status
  status="$(dpkg-query -W -f='${Status}\n' varnish varnish-modules 2>/dev/null || true)"
  if [ "$(grep -c '^install ok installed$' <<<"$status")" = 2 ]; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "installing varnish needs root (apt-get install -y varnish varnish-modules)"
  export DEBIAN_FRONTEND=noninteractive
  note "installing varnish varnish-modules (apt-get)"
  local log
  log="$(mktemp)"
  if ! { apt-get update -q && apt-get install -y -q varnish varnish-modules; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    die "apt-get install varnish varnish-modules failed"
  fi
  rm -f "$log"
  note "installed: $("$(find_tool varnishd)" -V 2>&1 | head -n 1)"
}

cmd_start() {
  if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then usage; fi
  local backend="$1" state="${2:-}"
  local bhost bport
  case "$backend" in
    *:*) bport="${backend##*:}"; bhost="${backend%:*}" ;;
    *) die "backend must be HOST:PORT, got '$backend'" ;;
  esac
  bhost="${bhost#[}"; bhost="${bhost%]}"
  if ! [[ "$bport" =~ ^[0-9]+$ ]] || [ "$bport" -lt 1 ] || [ "$bport" -gt 65535 ]; then
    die "bad backend port in '$backend'"
  fi
  [ -n "$bhost" ] || die "empty backend host in '$backend'"
  [[ "$bhost" =~ ^[A-Za-z0-9.:_-]+$ ]] || die "bad backend host '$bhost'"

  local varnishd varnishadm
  varnishd="$(find_tool varnishd)"
  [ -n "$varnishd" ] || die "varnishd not installed: run $PROG install"
  varnishadm="$(find_tool varnishadm)"
  [ -n "$varnishadm" ] || die "varnishadm not installed: run $PROG install"
  command -v python3 >/dev/null || die "python3 is needed to pick free ports"
  command -v curl >/dev/null || die "curl is needed to check that varnishd answers"
  [ -f "$VCL_TEMPLATE" ] || die "VCL template missing: $VCL_TEMPLATE"

  local made_state=""
  if [ -z "$state" ]; then
    state="$(mktemp -d "${TMPDIR:-/tmp}/varnish-peer.XXXXXX")"
    made_state=1
  fi
  mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  local work="$state/work" pidfile="$state/varnishd.pid"
  if [ -n "$(live_pid "$pidfile" "$work")" ]; then
    die "a varnishd already runs for $state (pid $(live_pid "$pidfile" "$work")): run $PROG stop $state"
  fi
  rm -rf "$work"
  if [ -n "$made_state" ]; then : >"$state/.made-by-varnish-sh"; fi

  local vcl="$state/staleguard.vcl"
  sed -e "s/@BACKEND_HOST@/$bhost/g" -e "s/@BACKEND_PORT@/$bport/g" "$VCL_TEMPLATE" >"$vcl"
  # `varnishd -C` prints the generated C (to stderr) when the VCL compiles, the errors when not.
  if ! "$varnishd" -j none -C -f "$vcl" -n "$work" >/dev/null 2>"$state/vcl-check.log"; then
    cat "$state/vcl-check.log" >&2
    if grep -q 'xkey' "$state/vcl-check.log"; then
      note "hint: vmod xkey comes with varnish-modules: run $PROG install"
    fi
    die "VCL does not compile: $vcl"
  fi
  rm -f "$state/vcl-check.log"

  ( umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/secret" )

  local gzip="${VARNISH_GZIP_SUPPORT:-off}" timeout="${VARNISH_START_TIMEOUT:-20}"
  local -a extra=()
  if [ -n "${VARNISH_PARAMS:-}" ]; then
    read -r -a extra <<<"$VARNISH_PARAMS"
  fi

  # The ports are free when picked but may be taken before varnishd binds them: retry a few times.
  local attempt port aport pid=""
  for attempt in 1 2 3; do
    port="$(free_port)"
    aport="$(free_port)"
    rm -f "$pidfile"
    if "$varnishd" -j none -a "127.0.0.1:$port" -T "127.0.0.1:$aport" -S "$state/secret" \
        -f "$vcl" -n "$work" -P "$pidfile" -s malloc,64m \
        -p ban_lurker_sleep=0.1 -p "http_gzip_support=$gzip" "${extra[@]}" \
        >"$state/varnishd.log" 2>&1; then
      pid="$(live_pid "$pidfile" "$work")"
      [ -n "$pid" ] && break
    fi
    note "varnishd did not start (attempt $attempt), log:"
    sed 's/^/    | /' "$state/varnishd.log" >&2
    pid=""
  done
  [ -n "$pid" ] || die "could not start varnishd (state: $state)"

  # Ready when the cache process answers. A PURGE of a URL nobody uses never reaches the backend
  # and leaves the cache empty (a GET would fetch and cache something). 403 is an answer too: a VCL
  # whose purge ACL leaves loopback out (a test of that ACL).
  local url="http://127.0.0.1:$port" code="" deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X PURGE \
      "$url/.varnish-peer-readiness-probe" 2>/dev/null || true)"
    case "$code" in 200 | 403) break ;; esac
    if [ -z "$(live_pid "$pidfile" "$work")" ]; then
      sed 's/^/    | /' "$state/varnishd.log" >&2
      die "varnishd (pid $pid) exited while starting (state: $state)"
    fi
    sleep 0.1
  done
  if [ "$code" != 200 ] && [ "$code" != 403 ]; then
    "$varnishadm" -n "$work" status >&2 2>&1 || true
    cmd_stop "$state" || true
    die "varnishd did not answer on $url within ${timeout}s (last status '${code:-none}')"
  fi

  cat >"$state/peer.env" <<EOF
VARNISH_URL=$url
VARNISH_PID=$pid
VARNISH_STATE=$state
VARNISH_ADMIN=127.0.0.1:$aport
VARNISH_BACKEND=$bhost:$bport
EOF
  note "varnishd pid $pid on $url -> backend $bhost:$bport (admin 127.0.0.1:$aport, state $state)"
  if ! python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()' \
      "$bhost" "$bport" 2>/dev/null; then
    note "warning: nothing accepts connections on the backend $bhost:$bport yet (Varnish answers 503 until something does)"
  fi
  printf 'VARNISH_URL=%q\nVARNISH_PID=%q\nVARNISH_STATE=%q\n' "$url" "$pid" "$state"
}

cmd_stop() {
  [ "$#" -le 1 ] || usage
  local state="${1:-${VARNISH_STATE:-}}"
  [ -n "$state" ] || die "stop: which instance? pass its STATE_DIR (or set VARNISH_STATE)"
  [ -d "$state" ] || die "stop: no such state dir: $state"
  state="$(cd "$state" && pwd)"
  local work="$state/work" pidfile="$state/varnishd.pid" pid
  pid="$(live_pid "$pidfile" "$work")"
  if [ -z "$pid" ]; then
    if [ -f "$pidfile" ]; then
      note "no varnishd running for $state (stale pid file)"
    else
      note "no varnishd running for $state"
    fi
  else
    local kids k i alive
    kids="$(children_of "$pid")"
    kill -TERM "$pid" 2>/dev/null || true
    # The manager stops its child, then exits. Wait up to 10 s, then KILL what is left.
    for i in $(seq 1 100); do
      alive=""
      for k in $pid $kids; do
        if kill -0 "$k" 2>/dev/null; then alive=1; fi
      done
      [ -z "$alive" ] && break
      [ "$i" -eq 100 ] || sleep 0.1
    done
    for k in $kids $pid; do
      if kill -0 "$k" 2>/dev/null; then
        note "pid $k still alive after 10 s: sending KILL"
        kill -KILL "$k" 2>/dev/null || true
      fi
    done
    note "stopped varnishd pid $pid${kids:+ (child $(echo "$kids" | tr '\n' ' ' | sed 's/ $//'))}"
  fi
  rm -f "$pidfile" "$state/peer.env"
  rm -rf "$work"
  # A state dir that `start` made itself (mktemp) goes too; one the caller named stays.
  if [ -f "$state/.made-by-varnish-sh" ]; then
    rm -f "$state/.made-by-varnish-sh" "$state/staleguard.vcl" "$state/secret" \
      "$state/varnishd.log" "$state/vcl-check.log"
    rmdir "$state" 2>/dev/null || note "kept $state (it holds other files)"
  fi
}

cmd_admin() {
  [ "$#" -ge 2 ] || usage
  local state="$1"; shift
  local varnishadm
  varnishadm="$(find_tool varnishadm)"
  [ -n "$varnishadm" ] || die "varnishadm not installed: run $PROG install"
  [ -d "$state/work" ] || die "no running instance in $state"
  "$varnishadm" -n "$state/work" "$@"
}

[ "$#" -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  admin) cmd_admin "$@" ;;
  -h|--help|help) usage ;;
  *) printf '%s: unknown command: %s\n' "$PROG" "$sub" >&2; usage ;;
esac
