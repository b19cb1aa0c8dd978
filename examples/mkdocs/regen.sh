#!/usr/bin/env bash
# Regenerates the MkDocs Material fixtures from project/ with the versions pinned in requirements.txt
# (mkdocs 1.6.1, mkdocs-material 9.8.2):
#   output/       `mkdocs build --strict --clean` of project/ as is (everything it writes is kept)
#   output-edit/  the same after applying edit.patch (one paragraph of guide/configuration.md changed)
# The venv lives outside the repo: $STALEGUARD_FIXTURE_CACHE/mkdocs/venv (default
# ~/.cache/staleguard/mkdocs/venv), re-installed from PyPI when requirements.txt changes.
# SOURCE_DATE_EPOCH fixes the sitemap's <lastmod> and the gzip header of sitemap.xml.gz, so the output
# is deterministic: running this twice gives identical files.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STALEGUARD_FIXTURE_CACHE:-$HOME/.cache/staleguard}/mkdocs"
VENV="$CACHE/venv"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z
export NO_MKDOCS_2_WARNING=1 # mkdocs-material 9.8 prints a notice about MkDocs 2.0 otherwise
export PYTHONDONTWRITEBYTECODE=1 TZ=UTC

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$want" ]; then
  echo "regen.sh: pip install -r examples/mkdocs/requirements.txt into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" > "$VENV/.requirements.sha"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sg-mkdocs-regen.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# build VARIANT DEST
build() {
  local variant="$1" dest="$2" src="$TMP/$1/project" out="$TMP/$1/site"
  mkdir -p "$src"
  cp -R "$HERE/project/." "$src/"
  if [ "$variant" = edit ]; then
    patch --quiet -p1 -d "$src" < "$HERE/edit.patch"
  fi
  (cd "$src" && "$VENV/bin/mkdocs" build --quiet --strict --clean --site-dir "$out")
  rm -rf "${HERE:?}/$dest"
  cp -R "$out" "$HERE/$dest"
  echo "regen.sh: wrote examples/mkdocs/$dest ($(find "$HERE/$dest" -type f | wc -l) files)" >&2
}

build plain output
build edit output-edit
echo "regen.sh: $("$VENV/bin/mkdocs" --version | sed 's/ from .*//'), mkdocs-material $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mkdocs-material"))')" >&2
