#!/usr/bin/env bash
# Starts this Django fixture under gunicorn on a loopback port, serving static files with WhiteNoise.
#
#   examples/django/run_gunicorn.sh PORT STATIC_ROOT [GUNICORN_ARGS...]
#
#   PORT          the port to bind on 127.0.0.1 (SG_HOST may name another loopback address)
#   STATIC_ROOT   the folder WhiteNoise serves under /static/ (exported as SG_STATIC_ROOT), e.g.
#                 examples/django/output, or a staleguard build of it with staticfiles.json
#   GUNICORN_ARGS passed on, e.g. --pid FILE, --daemon, --access-logfile -
#
# Environment: SG_STORAGE (the staticfiles backend; default StaticFilesStorage, use
# django.contrib.staticfiles.storage.ManifestStaticFilesStorage for a staleguard build, which needs
# STATIC_ROOT/staticfiles.json), SG_WORKERS (default 2), SG_WHITENOISE_AUTOREFRESH=1, SG_SECRET_KEY, SG_DB_PATH
# (see project/fixture_site/settings.py). The venv is examples/django/venv.sh's (created on first use).
# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default, shared by every instance of
# the user: --no-control-socket turns it off, so several servers can run at once.
# Runs gunicorn in the foreground (exec), so the caller's PID is gunicorn's master; stop it with TERM.
# WhiteNoise lists STATIC_ROOT once per worker at startup: files added later are not served (404) unless
# SG_WHITENOISE_AUTOREFRESH=1 or gunicorn is restarted/reloaded (HUP).
#
# e.g.  examples/django/run_gunicorn.sh 8123 "$PWD/examples/django/output" &
#       python3 examples/django/check_live.py http://127.0.0.1:8123 5
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ]; then
  echo "usage: $0 PORT STATIC_ROOT [GUNICORN_ARGS...]" >&2
  exit 2
fi
PORT="$1" STATIC="$2"
shift 2
HOST="${SG_HOST:-127.0.0.1}"
case "$PORT" in '' | *[!0-9]*) echo "run_gunicorn.sh: PORT must be a number, not '$PORT'" >&2; exit 2 ;; esac
case "$HOST" in 127.* | localhost | '[::1]') ;; *) echo "run_gunicorn.sh: SG_HOST must be a loopback address" >&2; exit 2 ;; esac
[ -d "$STATIC" ] || { echo "run_gunicorn.sh: STATIC_ROOT '$STATIC' is not a directory" >&2; exit 2; }

# shellcheck source=examples/django/venv.sh
source "$HERE/venv.sh"
ensure_fixture_venv

export SG_STATIC_ROOT
SG_STATIC_ROOT="$(cd "$STATIC" && pwd)"
export PYTHONDONTWRITEBYTECODE=1
exec gunicorn --chdir "$HERE/project" --bind "$HOST:$PORT" --workers "${SG_WORKERS:-2}" \
  --graceful-timeout 5 --no-control-socket "$@" fixture_site.wsgi:application
