#!/usr/bin/env bash
# scripts/peers/chromium.sh: headless Chromium (Debian's package) as a test peer, to see what a browser renders.
#
#   scripts/peers/chromium.sh install
#       apt-get install chromium when /usr/bin/chromium is missing (as root; apt-get update first).
#       Prints nothing when it is already installed.
#   scripts/peers/chromium.sh dump URL OUTFILE
#       Loads URL in headless Chromium with a throwaway profile, lets scripts run for 5 s of virtual time
#       (--virtual-time-budget=5000: timers and lazy imports settle, then the page is dumped at once) and
#       writes the serialised DOM (after JavaScript ran) to OUTFILE. Exit status: Chromium's; non-zero
#       also when OUTFILE ends up empty. Chromium's own stderr is shown only on failure.
#       e.g.  scripts/peers/chromium.sh dump 'http://127.0.0.1:8000/#/about' /tmp/about.html
#
# Environment: CHROMIUM (default /usr/bin/chromium), CHROMIUM_FLAGS_EXTRA (word-split, appended).
# Only ever point it at loopback URLs (127.0.0.1, localhost): the flags below also turn off Chromium's
# own background traffic (component updates, sync, QUIC, first-run fetches).
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

usage() {
  echo "usage: $0 install | dump URL OUTFILE" >&2
  exit 2
}

cmd_install() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "chromium.sh: /usr/bin/chromium is missing; run as root (apt-get install chromium)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [ -x /usr/bin/chromium ] || { echo "chromium.sh: apt-get installed no /usr/bin/chromium" >&2; return 1; }
}

cmd_dump() {
  [ $# -eq 2 ] || usage
  local url="$1" out="$2"
  [ -x "$CHROMIUM" ] || { echo "chromium.sh: $CHROMIUM not found; run: $0 install" >&2; return 1; }
  local profile log rc=0
  profile="$(mktemp -d "${TMPDIR:-/tmp}/sg-chromium.XXXXXX")"
  log="$profile.log"
  # shellcheck disable=SC2086
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=5000 ${CHROMIUM_FLAGS_EXTRA:-} \
    --dump-dom "$url" > "$out" 2> "$log" || rc=$?
  rm -rf "$profile"
  if [ "$rc" -eq 0 ] && [ ! -s "$out" ]; then
    echo "chromium.sh: empty DOM dump for $url" >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "chromium.sh: chromium exited $rc for $url; its stderr:" >&2
    tail -n 20 "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

case "${1:-}" in
  install) shift; [ $# -eq 0 ] || usage; cmd_install ;;
  dump) shift; cmd_dump "$@" ;;
  *) usage ;;
esac
