#!/usr/bin/env bash
# Regenerates the Eleventy fixtures from project/ with the generator pinned in project/package-lock.json:
#   output/       `npm run build` (eleventy) of project/ as is
#   output-edit/  the same after applying edit.patch (one sentence of posts/first.md changed)
# node_modules is installed with `npm ci` into a cache outside the repo
# ($STALEGUARD_FIXTURE_CACHE, default ~/.cache/staleguard), re-installed only when the lockfile changes.
# Every build runs in the same cache folder, so the output depends only on the sources.
# Idempotent: running it twice leaves the same files. Every template has a fixed `date:` in its front
# matter (none falls back to the file's mtime), and the dates are printed in UTC.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STALEGUARD_FIXTURE_CACHE:-$HOME/.cache/staleguard}/eleventy"
BUILD="$CACHE/build"
export TZ=UTC
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z (Eleventy ignores it)
unset ELEVENTY_ENV ELEVENTY_RUN_MODE

command -v npm >/dev/null || { echo "regen.sh: npm (Node >= 18) is required" >&2; exit 1; }
mkdir -p "$BUILD"

# Fresh copy of project/ (plus the edit, when asked), keeping the installed node_modules.
prepare() {
  find "$BUILD" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  cp -a "$HERE/project/." "$BUILD/"
  if [ "${1:-}" = edit ]; then
    patch --quiet -p1 -d "$BUILD" < "$HERE/edit.patch"
  fi
  local want
  want="$(sha256sum "$BUILD/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$BUILD/node_modules/.staleguard-lock.sha" 2>/dev/null)" != "$want" ]; then
    echo "regen.sh: npm ci (@11ty/eleventy, from project/package-lock.json)" >&2
    (cd "$BUILD" && npm ci --include=dev --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$BUILD/node_modules/.staleguard-lock.sha"
  fi
}

# build DEST
build() {
  local dest="$1"
  (cd "$BUILD" && npm run --silent build -- --quiet >/dev/null)
  rm -rf "${HERE:?}/$dest"
  cp -R "$BUILD/_site" "$HERE/$dest"
  echo "regen.sh: wrote examples/eleventy/$dest ($(find "$HERE/$dest" -type f | wc -l) files)" >&2
}

prepare
build output
prepare edit
build output-edit
prepare # leave the cache with the unedited sources

echo "regen.sh: eleventy $(cd "$BUILD" && node -p 'require("./node_modules/@11ty/eleventy/package.json").version')" >&2
