#!/usr/bin/env bash
# Source this file, then call `ensure_venv`: creates (once) a Python venv with the packages the tests and
# benchmarks need (Django, WhiteNoise, brotli, moto + awscli), and puts its bin/ first on PATH.
# The venv lives outside the repo so a clean clone reuses it: $STALEGUARD_VENV, default ~/.cache/staleguard/venv.
# Packages are pinned in scripts/requirements-test.txt; a changed file re-runs pip.

# The venv's folder (whether or not it exists yet); scripts/peers/moto.sh uses it too.
staleguard_venv() {
  printf '%s\n' "${STALEGUARD_VENV:-$HOME/.cache/staleguard/venv}"
}

ensure_venv() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local venv
  venv="$(staleguard_venv)"
  local req="$root/scripts/requirements-test.txt"
  local py="${PYTHON:-python3}"
  if ! command -v "$py" >/dev/null 2>&1; then
    echo "error: python3 is required for the Django/WhiteNoise checks; install it (apt-get install python3 python3-venv)" >&2
    return 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv" 2>/dev/null || {
      echo "python venv module missing; installing python3-venv" >&2
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && "$py" -m venv "$venv"
    } || return 1
  fi
  local stamp="$venv/.requirements.sha"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || return 1
    echo "$want" > "$stamp"
  fi
  export VIRTUAL_ENV="$venv"
  export PATH="$venv/bin:$PATH"
}
