#!/usr/bin/env bash
# promtool (Prometheus's rule checker) from Debian's `prometheus` package, extracted without installing
# the package (no daemon, no postinst): `scripts/peers/promtool.sh install` puts it in
# ${PROMTOOL_DIR:-$HOME/.cache/staleguard/promtool}; `scripts/peers/promtool.sh check` checks and unit-tests
# examples/service/alerts.yml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir="${PROMTOOL_DIR:-$HOME/.cache/staleguard/promtool}"
bin="$dir/usr/bin/promtool"

install() {
  if [ -x "$bin" ]; then return; fi
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download prometheus >/dev/null) || {
      echo "error: cannot download Debian's prometheus package (for promtool)" >&2
      exit 1
    }
  fi
  dpkg -x "$tmp"/prometheus_*.deb "$dir"
  [ -x "$bin" ] || { echo "error: no promtool in Debian's prometheus package" >&2; exit 1; }
}

case "${1:-}" in
  install) install; "$bin" --version 2>&1 | head -1 ;;
  check)
    install
    "$bin" check rules examples/service/alerts.yml
    (cd examples/service && "$bin" test rules alerts_test.yml)
    ;;
  *) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
