#!/usr/bin/env bash
# The main job on the bundled example, with local defaults (no cloud account): builds staleguard, then
# fingerprints, rewrites and precompresses examples/site into examples/dist, and shows what came out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust 1.95+ (https://rustup.rs) and re-run" >&2
  exit 1
fi
cargo build --release --locked -p staleguard
bin="$PWD/target/release/staleguard"
echo
echo "== staleguard build (config: examples/staleguard.toml)"
"$bin" --config examples/staleguard.toml build
echo
echo "== a no-change rebuild is nearly free"
"$bin" --config examples/staleguard.toml build
echo
echo "== examples/dist/index.html now points at fingerprinted files:"
grep -oE '(href|src)="[^"]*\.[0-9a-f]{12}\.[a-z0-9]+"' examples/dist/index.html | head -5
echo
echo "== manifests: examples/dist/staleguard.manifest.json, examples/dist/staticfiles.json (Django), examples/dist/build-info.json"
cat examples/dist/build-info.json
