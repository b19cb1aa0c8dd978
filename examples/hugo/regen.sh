#!/usr/bin/env bash
# Regenerates the Hugo fixtures from project/ with Debian's Hugo 0.111.3 (bookworm's `hugo` package):
#   output/       `hugo --cleanDestinationDir --minify=false` of project/ as is
#   output-edit/  the same after applying edit.patch (one sentence of one post changed)
# Hugo comes from apt (installed when missing; root needed). Another version is refused unless
# HUGO_ALLOW_OTHER=1. Each build runs on a temporary copy of project/ with its own --cacheDir, so
# project/ gets no .hugo_build.lock or resources/_gen. All dates come from front matter (no git info,
# no "now"), so the output is deterministic: running this twice gives identical files.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WANT_VERSION="0.111.3"
export TZ=UTC
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}"
unset HUGO_ENVIRONMENT HUGO_BASEURL

if ! command -v hugo >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "regen.sh: hugo is missing; apt-get install hugo (as root)" >&2; exit 1; }
  echo "regen.sh: apt-get install hugo" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hugo >/dev/null
fi
HAVE_VERSION="$(hugo version | sed -nE 's/^hugo v([0-9.]+).*/\1/p')"
if [ "$HAVE_VERSION" != "$WANT_VERSION" ] && [ "${HUGO_ALLOW_OTHER:-0}" != 1 ]; then
  echo "regen.sh: hugo $HAVE_VERSION found, the fixture is made with $WANT_VERSION (HUGO_ALLOW_OTHER=1 to go on)" >&2
  exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sg-hugo-regen.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# build VARIANT DEST
build() {
  local variant="$1" dest="$2" src="$TMP/$1/project" out="$TMP/$1/public"
  mkdir -p "$src"
  cp -R "$HERE/project/." "$src/"
  if [ "$variant" = edit ]; then
    patch --quiet -p1 -d "$src" < "$HERE/edit.patch"
  fi
  (cd "$src" && hugo --quiet --cleanDestinationDir --minify=false --cacheDir "$TMP/$variant/cache" \
    --destination "$out")
  rm -rf "${HERE:?}/$dest"
  cp -R "$out" "$HERE/$dest"
  echo "regen.sh: wrote examples/hugo/$dest ($(find "$HERE/$dest" -type f | wc -l) files)" >&2
}

build plain output
build edit output-edit
echo "regen.sh: $(hugo version)" >&2
