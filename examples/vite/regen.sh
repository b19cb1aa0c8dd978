#!/usr/bin/env bash
# Regenerates the Vite fixtures from project/ with the generator pinned in project/package-lock.json:
#   output/       `npm run build` (tsc -b && vite build) of project/ as is
#   output-edit/  the same after applying edit.patch (one sentence of src/About.tsx changed)
#   output-base/  project/ built with `--base /app/` (every URL prefixed with /app/)
# node_modules is installed with `npm ci` into a cache outside the repo
# ($STALEGUARD_FIXTURE_CACHE, default ~/.cache/staleguard), re-installed only when the lockfile changes.
# Every build runs in the same cache folder, so the output depends only on the sources.
# Idempotent: running it twice leaves the same files (Vite's output is deterministic).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STALEGUARD_FIXTURE_CACHE:-$HOME/.cache/staleguard}/vite"
BUILD="$CACHE/build"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z (Vite writes no dates)

command -v npm >/dev/null || { echo "regen.sh: npm (Node >= 20.19) is required" >&2; exit 1; }
mkdir -p "$BUILD"

# Fresh copy of project/ (plus the edit, when asked), keeping the installed node_modules.
prepare() {
  find "$BUILD" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  cp -a "$HERE/project/." "$BUILD/"
  rm -rf "$BUILD/dist"
  if [ "${1:-}" = edit ]; then
    patch --quiet -p1 -d "$BUILD" < "$HERE/edit.patch"
  fi
  local want
  want="$(sha256sum "$BUILD/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$BUILD/node_modules/.staleguard-lock.sha" 2>/dev/null)" != "$want" ]; then
    echo "regen.sh: npm ci (vite and friends, from project/package-lock.json)" >&2
    (cd "$BUILD" && npm ci --include=dev --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$BUILD/node_modules/.staleguard-lock.sha"
  fi
  rm -rf "$BUILD/node_modules/.tmp" # tsc -b's build info: start each build cold
}

# build DEST [vite build flags...]
build() {
  local dest="$1"; shift
  (cd "$BUILD" && npm run --silent build -- --logLevel warn --emptyOutDir "$@")
  rm -rf "$HERE/$dest"
  cp -R "$BUILD/dist" "$HERE/$dest"
  echo "regen.sh: wrote examples/vite/$dest" >&2
}

prepare
build output
build output-base --base /app/
prepare edit
build output-edit
prepare # leave the cache with the unedited sources

echo "regen.sh: vite $(cd "$BUILD" && node -p 'require("vite/package.json").version')" >&2
