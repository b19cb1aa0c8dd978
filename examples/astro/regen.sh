#!/usr/bin/env bash
# Regenerates the Astro fixtures from project/ with the generator pinned in project/package-lock.json:
#   output/       `npm run build` (astro build) of project/ as is
#   output-edit/  the same after applying edit.patch (one sentence of src/pages/blog/first-post.md changed)
# node_modules is installed with `npm ci` into a cache outside the repo
# ($STALEGUARD_FIXTURE_CACHE, default ~/.cache/staleguard), re-installed only when the lockfile changes.
# Every build runs in the same cache folder, with Astro's caches (.astro/, node_modules/.astro/, the
# optimized-image cache) removed first, so the output depends only on the sources.
# Idempotent: running it twice leaves the same files (Astro's output is deterministic; the only date,
# the RSS item's pubDate, is fixed in src/pages/rss.xml.js).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STALEGUARD_FIXTURE_CACHE:-$HOME/.cache/staleguard}/astro"
BUILD="$CACHE/build"
export TZ=UTC
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z (Astro writes no build date)
export ASTRO_TELEMETRY_DISABLED=1

command -v npm >/dev/null || { echo "regen.sh: npm (Node >= 18.20.8 or ^20.3) is required" >&2; exit 1; }
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
    echo "regen.sh: npm ci (astro, @astrojs/rss, sharp, from project/package-lock.json)" >&2
    (cd "$BUILD" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$BUILD/node_modules/.staleguard-lock.sha"
  fi
  rm -rf "$BUILD/node_modules/.astro" "$BUILD/node_modules/.vite" # Astro's image cache, Vite's: start cold
}

# build DEST
build() {
  local dest="$1"
  (cd "$BUILD" && npm run --silent build -- --silent)
  rm -rf "${HERE:?}/$dest"
  cp -R "$BUILD/dist" "$HERE/$dest"
  echo "regen.sh: wrote examples/astro/$dest ($(find "$HERE/$dest" -type f | wc -l) files)" >&2
}

prepare
build output
prepare edit
build output-edit
prepare # leave the cache with the unedited sources

echo "regen.sh: astro $(cd "$BUILD" && node -p 'require("astro/package.json").version')" >&2
