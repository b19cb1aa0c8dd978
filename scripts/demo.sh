#!/usr/bin/env bash
# The main job on the bundled example, with local defaults (no cloud account): builds staleguard, then
# fingerprints, rewrites and precompresses examples/site into examples/dist, shows what came out, deploys
# it to a local store (examples/public, a folder standing in for a bucket), serves the store on a free
# loopback port to show the headers, verifies that what is served is what was deployed, then changes a page
# and runs build → deploy → verify again (the server is stopped by PID at the end). No CDN is needed: the
# local server stands in for one (`--cdn-url`); with a `[[cdn]]` and `[verify] cdn-url` in the config, the
# same `deploy` purges the CDN, warms it and verifies through it. Last, `staleguard edge` (a local CDN
# edge: a caching proxy) goes in front of the origin, with `[[cdn]]` and `[verify] cdn-url` pointing at
# it: a deploy without a purge fails verification naming the stale page, `invalidate` fixes it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust 1.95+ (https://rustup.rs) and re-run" >&2
  exit 1
fi
# The dev profile: the quickest build (minutes on a fresh 2-core machine; the compression, hashing and
# scanning crates are optimised even there, see Cargo.toml), and the one `scripts/test.sh` reuses.
# `cargo install --path crates/staleguard` builds the optimised binary for real sites.
cargo build --locked -p staleguard
bin="$PWD/target/debug/staleguard"
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

echo
echo "== staleguard deploy: examples/dist → file://public (immutable files first, pages next, manifests last)"
"$bin" --config examples/staleguard.toml deploy
echo
echo "== deploy again: only what changed would go up (here: nothing)"
"$bin" --config examples/staleguard.toml deploy
echo
echo "== staleguard deploys (history in examples/public/.staleguard/)"
"$bin" --config examples/staleguard.toml deploys

echo
echo "== staleguard serve examples/public (the deployed store, free loopback port), then a few requests"
log="$(mktemp)"
"$bin" --config examples/staleguard.toml serve examples/public --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
base="$(grep -oE 'http://[0-9.:]+' "$log" | head -1)"
css="$(python3 -c 'import json,sys; print(json.load(open("examples/dist/staleguard.manifest.json"))["files"]["css/site.css"]["path"])')"
echo "-- GET /$css (fingerprinted: cached for a year)"
curl -s -D - -o /dev/null -H 'Accept-Encoding: br, gzip' "$base/$css" | grep -iE '^(HTTP|cache-control|etag|content-encoding|vary)'
echo "-- GET / (HTML: revalidated)"
curl -s -D - -o /dev/null "$base/" | grep -iE '^(HTTP|cache-control|etag)'
etag="$(curl -s -D - -o /dev/null -H 'Accept-Encoding: br' "$base/$css" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}')"
echo "-- the same with If-None-Match: $etag"
curl -s -D - -o /dev/null -H 'Accept-Encoding: br' -H "If-None-Match: $etag" "$base/$css" | head -1
echo "-- $base/health/static-version"
curl -s "$base/health/static-version"
echo

echo
echo "== staleguard verify --all: every mutable URL of the deploy fetched (browsers' and identity encodings), decoded, hashed, compared with the record"
"$bin" --config examples/staleguard.toml verify --cdn-url "$base" --all
echo
echo "== edit a page, build, deploy, verify"
page=examples/site/about/index.html
backup="$(mktemp)"
cp "$page" "$backup"
trap 'cp "$backup" "$page"; rm -f "$backup"; kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
printf '\n<!-- edited by scripts/demo.sh at %s -->\n' "$(date -u +%FT%TZ)" >>"$page"
"$bin" --config examples/staleguard.toml build
"$bin" --config examples/staleguard.toml deploy
"$bin" --config examples/staleguard.toml verify --cdn-url "$base"
cp "$backup" "$page"
"$bin" --config examples/staleguard.toml build >/dev/null
"$bin" --config examples/staleguard.toml deploy >/dev/null
kill "$pid"
wait "$pid" 2>/dev/null || true

echo
echo "== staleguard edge: a local CDN edge in front of the origin, so stale pages show before production"
# The example's config plus what a CDN setup adds: pages cached at the edge for an hour (so only a purge
# makes a change visible), the edge as the `[[cdn]]` to purge and the `cdn-url` to verify through.
cfg=examples/staleguard.edge.toml
write_cfg() {
  cat examples/staleguard.toml - >"$cfg" <<TOML

[[routes]]
match = "**/*.html"
cache-control = "public, max-age=0, s-maxage=3600"
$1
TOML
}
write_cfg ""
slog="$(mktemp)"
elog="$(mktemp)"
"$bin" --config "$cfg" serve examples/public --port 0 >"$slog" 2>&1 &
spid=$!
trap 'cp "$backup" "$page"; rm -f "$backup" "$slog" "$elog" "$cfg"; kill "$spid" "${epid:-}" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q listening "$slog" && break; sleep 0.1; done
origin="$(grep -oE 'http://[0-9.:]+' "$slog" | head -1)"
"$bin" edge --origin "$origin" --listen 127.0.0.1:0 >"$elog" 2>&1 &
epid=$!
for _ in $(seq 50); do grep -q listening "$elog" && break; sleep 0.1; done
edge="$(grep -oE 'http://[0-9.:]+' "$elog" | head -1)"
echo "origin $origin, edge $edge"
write_cfg "
[[cdn]]
provider = \"edge\"
nodes = [\"$edge\"]

[verify]
cdn-url = \"$edge\"
origin-url = \"$origin\"
warm = [\"/\", \"/about/\"]
timeout = \"2s\""
"$bin" --config "$cfg" invalidate >/dev/null   # the edge's state is unknown to staleguard: purge once
"$bin" --config "$cfg" warm
echo "-- GET $edge/about/ twice:"
for _ in 1 2; do curl -s -D - -o /dev/null "$edge/about/" | grep -iE '^(x-cache|age):' | tr -d '\r' | paste -sd' '; done
echo
echo "-- edit the page, deploy WITHOUT a purge: the edge keeps the old page, verify says so (exit 3)"
printf '\n<!-- edited again by scripts/demo.sh at %s -->\n' "$(date -u +%FT%TZ)" >>"$page"
"$bin" --config "$cfg" build >/dev/null
code=0
"$bin" --config "$cfg" deploy --no-purge || code=$?
echo "(deploy --no-purge exited $code: deployed, users may get stale content)"
[ "$code" = 3 ] || { echo "error: expected exit 3 from a deploy without purge behind the edge" >&2; exit 1; }
echo
echo "-- staleguard invalidate: purges what changed since the edge's last purge; verify passes"
"$bin" --config "$cfg" invalidate
"$bin" --config "$cfg" verify
cp "$backup" "$page"
"$bin" --config examples/staleguard.toml build >/dev/null
"$bin" --config examples/staleguard.toml deploy >/dev/null
kill "$spid" "$epid"
wait "$spid" "$epid" 2>/dev/null || true
