# scripts/peers/lib.sh: what the peer scripts share (sourced, not run). Each script defines `die`.

# A free TCP port on 127.0.0.1.
peer_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# peer_watchdog VAR WATCH PID SCRIPT STATE: when WATCH (the value of the variable VAR, a PID; empty:
# no watchdog) exits while PID still runs, `SCRIPT stop STATE` stops the server.
peer_watchdog() {
  local var="$1" watch="$2" pid="$3" script="$4" state="$5"
  [ -n "$watch" ] || return 0
  [[ "$watch" =~ ^[0-9]+$ ]] || die "$var must be a PID, got '$watch'"
  (
    trap '' HUP INT
    while kill -0 "$watch" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then "$script" stop "$state"; fi
  ) </dev/null >/dev/null 2>&1 &
}

# peer_stop_pidfile STATE PIDFILE: SIGTERM to the PID recorded in STATE/PIDFILE, SIGKILL after 5 s,
# then removes STATE when `start` made it (STATE/peer.env says made=1). Kills nothing else.
peer_stop_pidfile() {
  local state="$1" pidfile="$2" pid made=0
  [ -f "$state/peer.env" ] && made="$(sed -n 's/^made=//p' "$state/peer.env")"
  if [ -f "$state/$pidfile" ]; then
    pid="$(cat "$state/$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ "$made" = 1 ] && rm -rf "$state"
  return 0
}
