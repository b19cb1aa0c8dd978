#!/usr/bin/env bash
# scripts/peers/moto.sh: a moto server (in-memory stand-in for the S3 and CloudFront APIs), for tests.
#
#   scripts/peers/moto.sh install
#       Makes sure moto[server] and awscli (pinned in scripts/requirements-test.txt) are in the project's
#       Python venv, the one scripts/pyenv.sh makes ($STALEGUARD_VENV, default ~/.cache/staleguard/venv).
#       Prints nothing when they already are.
#   scripts/peers/moto.sh start [STATE_DIR]
#       Starts `moto_server` on a free 127.0.0.1 port, waits until it answers and prints, on stdout,
#       three lines meant for eval:
#           MOTO_URL=http://127.0.0.1:PORT
#           MOTO_PID=NNN             (the moto_server process; it has no children)
#           MOTO_STATE=DIR           (STATE_DIR; default: a fresh `mktemp -d`)
#       e.g.  eval "$(scripts/peers/moto.sh start)"
#   scripts/peers/moto.sh stop [STATE_DIR]
#       Stops the moto_server recorded in STATE_DIR (default: $MOTO_STATE): TERM, up to 10 s, then KILL.
#       Removes its files, and STATE_DIR itself when `start` made it with mktemp. Kills nothing else.
#   scripts/peers/moto.sh env URL
#       Prints `export` lines for the AWS CLI / SDKs / object_store against that server: dummy
#       credentials, region us-east-1, AWS_ENDPOINT_URL=URL, AWS_ALLOW_HTTP=true, the venv's bin/
#       first on PATH; and an `unset` line for a profile or session token a developer may have set.
#       e.g.  eval "$(scripts/peers/moto.sh env "$MOTO_URL")"; aws s3 mb s3://site
#   scripts/peers/moto.sh aws-bin
#       Prints the absolute path of the venv's `aws` (awscli v1).
#
# Several instances can run at once: each has its own state dir, port and PID file. moto keeps all
# state in memory: a fresh server has no buckets, and everything is gone when it stops.
# STATE_DIR holds: moto.pid, moto.log (moto_server's output, one line per request), peer.env.
#
# Environment (start):
#   MOTO_START_TIMEOUT=SECONDS  how long to wait for moto to answer (default 30)
#   MOTO_WATCH_PID=PID          also stop the server (and clean STATE_DIR) once PID has exited, checked
#                               every second: a test process that dies without running `stop` (SIGKILL,
#                               a timeout) leaves no server behind. The integration tests set it.
#
# Needs: the venv (run `install`; scripts/test.sh does), curl or the venv's python for the probe.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROG="scripts/peers/moto.sh"
MARK=".made-by-moto-sh"

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() {
  cat >&2 <<EOF
usage: $PROG install
       $PROG start [STATE_DIR]
       $PROG stop [STATE_DIR]
       $PROG env URL
       $PROG aws-bin
EOF
  exit 2
}

# shellcheck source=scripts/pyenv.sh
source "$ROOT/scripts/pyenv.sh"
VENV="$(staleguard_venv)"
VPY="$VENV/bin/python"
SERVER="$VENV/bin/moto_server"
AWS="$VENV/bin/aws"

need_installed() {
  if [ ! -x "$SERVER" ] || [ ! -x "$AWS" ] || [ ! -x "$VPY" ]; then
    die "moto/awscli not installed in the venv $VENV (no bin/moto_server or bin/aws): run $PROG install (scripts/test.sh does)"
  fi
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a small race remains until moto binds it).
free_port() {
  "$VPY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# HTTP status of a GET (000 when nothing answers).
http_code() { # http_code URL
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true
  else
    "$VPY" -c 'import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception as e:
    print(getattr(e, "code", "000"))' "$1" 2>/dev/null || true
  fi
}

# Exited (or a zombie waiting for PID 1 to reap it) counts as gone.
alive() { # alive PID
  [ -r "/proc/$1/stat" ] || return 1
  local st
  st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The PID in PIDFILE when it is a live moto_server started for STATE (its environment carries
# MOTO_PEER_STATE=STATE, which `start` sets), or nothing. A reused PID is never taken for ours.
live_pid() { # live_pid PIDFILE STATE
  local pid
  [ -f "$1" ] || return 0
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] || return 0
  alive "$pid" || return 0
  # Read first, then grep (a `… | grep -q` under pipefail fails when grep exits early and SIGPIPEs tr).
  local cmdline environ
  cmdline="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  environ="$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)"
  grep -q '/moto_server$' <<<"$cmdline" || return 0
  grep -qxF -- "MOTO_PEER_STATE=$2" <<<"$environ" || return 0
  printf '%s\n' "$pid"
}

cmd_install() {
  [ "$#" -eq 0 ] || usage
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/moto-install.XXXXXX")"
  # ensure_venv creates the venv and runs pip when scripts/requirements-test.txt changed; silent otherwise.
  if ! ensure_venv >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "could not set up the venv $VENV (scripts/pyenv.sh)"
  fi
  # The stamp may say "installed" while the packages are gone (a venv edited by hand): check the tools.
  if [ ! -x "$SERVER" ] || [ ! -x "$AWS" ] || ! "$VPY" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
    note "installing moto[server] and awscli into $VENV (pip, about a minute)"
    if ! "$VPY" -m pip install -q --disable-pip-version-check -r "$ROOT/scripts/requirements-test.txt" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      rm -f "$log"
      die "pip install -r scripts/requirements-test.txt failed"
    fi
    if [ ! -x "$SERVER" ] || [ ! -x "$AWS" ]; then
      die "pip ran but $SERVER or $AWS is still missing"
    fi
    note "installed: moto $("$VPY" -c 'import moto; print(moto.__version__)'), $("$AWS" --version 2>&1)"
  fi
  rm -f "$log"
}

cmd_start() {
  [ "$#" -le 1 ] || usage
  local state="${1:-}"
  need_installed
  local timeout="${MOTO_START_TIMEOUT:-30}" watch="${MOTO_WATCH_PID:-}"
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "MOTO_START_TIMEOUT must be a number of seconds, got '$timeout'"
  if [ -n "$watch" ]; then
    [[ "$watch" =~ ^[0-9]+$ ]] || die "MOTO_WATCH_PID must be a PID, got '$watch'"
    alive "$watch" || die "MOTO_WATCH_PID=$watch: no such process"
  fi

  local made_state=""
  if [ -z "$state" ]; then
    state="$(mktemp -d "${TMPDIR:-/tmp}/moto-peer.XXXXXX")"
    made_state=1
  fi
  mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  local pidfile="$state/moto.pid" log="$state/moto.log" old
  old="$(live_pid "$pidfile" "$state")"
  [ -z "$old" ] || die "a moto_server already runs for $state (pid $old): run $PROG stop $state"
  if [ -n "$made_state" ]; then : >"$state/$MARK"; fi

  # The port is free when picked but may be taken before moto binds it: retry with another.
  local attempt port url pid="" code="" deadline
  for attempt in 1 2 3; do
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    rm -f "$pidfile"
    # stdin/stdout/stderr away from the caller's: a caller reading our output to EOF (Rust's
    # Command::output) must not wait for the server. MOTO_PEER_STATE marks the process as ours.
    MOTO_PEER_STATE="$state" "$SERVER" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$pidfile"
    code=""
    deadline=$((SECONDS + timeout))
    while [ "$SECONDS" -lt "$deadline" ]; do
      code="$(http_code "$url/moto-api/data.json")"
      [ "$code" = 200 ] && break
      alive "$pid" || break
      sleep 0.1
    done
    [ "$code" = 200 ] && break
    if alive "$pid"; then
      { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null || true
      sed 's/^/    | /' "$log" | tail -n 30 >&2
      rm -f "$pidfile"
      [ -z "$made_state" ] || rm -rf "$state"
      die "moto_server (pid $pid) did not answer on $url within ${timeout}s; log above"
    fi
    if grep -qi 'address already in use' "$log" && [ "$attempt" -lt 3 ]; then
      note "port $port was taken before moto bound it (attempt $attempt); retrying"
      continue
    fi
    sed 's/^/    | /' "$log" | tail -n 30 >&2
    rm -f "$pidfile"
    [ -z "$made_state" ] || rm -rf "$state"
    die "moto_server exited while starting (log above; venv $VENV)"
  done

  cat >"$state/peer.env" <<EOF
MOTO_URL=$url
MOTO_PID=$pid
MOTO_STATE=$state
EOF

  if [ -n "$watch" ]; then
    # Watchdog: a subshell with no ties to the caller's stdout/stderr. It ends by itself once the
    # server is gone; when the watched process goes first, it runs `stop` for this state dir.
    (
      trap '' HUP INT
      while alive "$watch" && [ -n "$(live_pid "$pidfile" "$state")" ]; do sleep 1; done
      if [ -n "$(live_pid "$pidfile" "$state")" ]; then
        "$HERE/moto.sh" stop "$state"
      fi
    ) </dev/null >/dev/null 2>&1 &
  fi

  note "moto_server pid $pid on $url (state $state${watch:+, stops when pid $watch exits})"
  printf 'MOTO_URL=%q\nMOTO_PID=%q\nMOTO_STATE=%q\n' "$url" "$pid" "$state"
}

cmd_stop() {
  [ "$#" -le 1 ] || usage
  local state="${1:-${MOTO_STATE:-}}"
  [ -n "$state" ] || die "stop: which instance? pass its STATE_DIR (or set MOTO_STATE)"
  [ -d "$state" ] || die "stop: no such state dir: $state"
  state="$(cd "$state" && pwd)"
  local pidfile="$state/moto.pid" pid i
  pid="$(live_pid "$pidfile" "$state")"
  if [ -z "$pid" ]; then
    if [ -f "$pidfile" ]; then
      note "no moto_server running for $state (stale pid file)"
    else
      note "no moto_server running for $state"
    fi
  else
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      alive "$pid" || break
      [ "$i" -eq 100 ] || sleep 0.1
    done
    if alive "$pid"; then
      note "pid $pid still alive after 10 s: sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 20); do
        alive "$pid" || break
        sleep 0.1
      done
    fi
    note "stopped moto_server pid $pid"
  fi
  rm -f "$pidfile" "$state/peer.env"
  # A state dir that `start` made itself (mktemp) goes too; one the caller named keeps moto.log.
  if [ -f "$state/$MARK" ]; then
    rm -f "$state/$MARK" "$state/moto.log"
    rmdir "$state" 2>/dev/null || note "kept $state (it holds other files)"
  fi
}

cmd_env() {
  [ "$#" -eq 1 ] || usage
  local url="$1"
  [[ "$url" =~ ^https?://[^[:space:]/]+/?$ ]] || die "env: URL must be like http://127.0.0.1:PORT, got '$url'"
  url="${url%/}"
  printf 'export AWS_ACCESS_KEY_ID=testing\n'
  printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
  printf 'export AWS_DEFAULT_REGION=us-east-1\n'
  printf 'export AWS_REGION=us-east-1\n'
  printf 'export AWS_ENDPOINT_URL=%q\n' "$url"
  printf 'export AWS_ALLOW_HTTP=true\n'
  printf 'export AWS_EC2_METADATA_DISABLED=true\n'
  printf 'unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN\n'
  # shellcheck disable=SC2016 # "$PATH" is for the shell that evals this line
  printf 'export PATH=%q:"$PATH"\n' "$VENV/bin"
}

cmd_aws_bin() {
  [ "$#" -eq 0 ] || usage
  need_installed
  printf '%s\n' "$AWS"
}

[ "$#" -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
  install) cmd_install "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  env) cmd_env "$@" ;;
  aws-bin) cmd_aws_bin "$@" ;;
  -h|--help|help) usage ;;
  *) printf '%s: unknown command: %s\n' "$PROG" "$sub" >&2; usage ;;
esac
