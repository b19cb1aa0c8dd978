#!/usr/bin/env bash
# Regenerates the Django fixtures from project/ with the Django/WhiteNoise pinned in requirements.txt:
#   output/       `manage.py collectstatic --noinput` of project/ with the plain StaticFilesStorage
#                 (SG_STORAGE unset) into a fresh staging folder: admin's and site_app's static files
#   output-edit/  the same after applying edit.patch (a colour change in site_app/css/site.css)
# The venv is examples/django/venv.sh's (~/.cache/staleguard/venv-fixtures). Each run collects into a new
# temporary STATIC_ROOT from a temporary copy of project/, so nothing stale survives and project/ gets no
# __pycache__. Idempotent; collectstatic copies bytes, so the output is deterministic.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=examples/django/venv.sh
source "$HERE/venv.sh"
ensure_fixture_venv

export PYTHONDONTWRITEBYTECODE=1
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}"
unset SG_STORAGE SG_STATIC_URL
TMP="$(mktemp -d "${TMPDIR:-/tmp}/sg-django-regen.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# collect VARIANT DEST
collect() {
  local variant="$1" dest="$2" src="$TMP/$1/project" root="$TMP/$1/static"
  mkdir -p "$src"
  cp -R "$HERE/project/." "$src/"
  if [ "$variant" = edit ]; then
    patch --quiet -p1 -d "$src" < "$HERE/edit.patch"
  fi
  (
    cd "$src"
    export SG_STATIC_ROOT="$root" SG_DB_PATH="$TMP/$variant/db.sqlite3"
    python manage.py check --fail-level WARNING >/dev/null
    python manage.py collectstatic --noinput --verbosity 0
  )
  rm -rf "${HERE:?}/$dest"
  cp -R "$root" "$HERE/$dest"
  echo "regen.sh: wrote examples/django/$dest ($(find "$HERE/$dest" -type f | wc -l) files)" >&2
}

collect plain output
collect edit output-edit
echo "regen.sh: Django $(python -c 'import django; print(django.get_version())'), WhiteNoise $(python -c 'import importlib.metadata as m; print(m.version("whitenoise"))')" >&2
