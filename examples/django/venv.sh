# Source this file, then call `ensure_fixture_venv`: creates (once) the venv of the Django fixture with the
# packages pinned in examples/django/requirements.txt (Django 5.2, WhiteNoise 6 + brotli, gunicorn) and puts
# its bin/ first on PATH. The venv lives outside the repo: $STALEGUARD_FIXTURE_VENV, default
# ~/.cache/staleguard/venv-fixtures. A changed requirements.txt re-runs pip (from PyPI).

ensure_fixture_venv() {
  local here venv req want py="${PYTHON:-python3}"
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  venv="${STALEGUARD_FIXTURE_VENV:-$HOME/.cache/staleguard/venv-fixtures}"
  req="$here/requirements.txt"
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv" || {
      echo "venv.sh: python3 -m venv failed; install python3-venv" >&2
      return 1
    }
  fi
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements.sha" 2>/dev/null)" != "$want" ]; then
    echo "venv.sh: pip install -r examples/django/requirements.txt into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || return 1
    echo "$want" > "$venv/.requirements.sha"
  fi
  export VIRTUAL_ENV="$venv"
  export PATH="$venv/bin:$PATH"
}
