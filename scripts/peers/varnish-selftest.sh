#!/usr/bin/env bash
# scripts/peers/varnish-selftest.sh: end-to-end check of scripts/peers/varnish.sh and staleguard.vcl.
#
# Starts scripts/peers/test-origin.py on a temp docroot and two Varnish nodes in front of it, checks
# MISS/HIT, Cache-Control pass-through and TTL, no-store, PURGE, BAN by regex, xkey purge and
# softpurge, Vary on Accept-Encoding (br), If-None-Match, the loopback ACL and that the nodes are
# independent, then stops everything by PID. Prints one line per check and `N passed, N failed`.
# Needs varnish + varnish-modules (scripts/peers/varnish.sh install), python3, curl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VARNISH_SH="$HERE/varnish.sh"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/varnish-selftest.XXXXXX")"
DOC="$TMP/www"
ORIGIN_PID=""
STATES=()
PASS=0
FAIL=0

cleanup() {
  local s
  for s in "${STATES[@]}"; do
    if [ -d "$s" ]; then "$VARNISH_SH" stop "$s" 2>/dev/null || true; fi
  done
  if [ -n "$ORIGIN_PID" ] && kill -0 "$ORIGIN_PID" 2>/dev/null; then
    kill "$ORIGIN_PID" 2>/dev/null || true
    wait "$ORIGIN_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { PASS=$((PASS + 1)); printf 'ok    %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL  %s\n' "$*"; }
expect() { # expect LABEL ACTUAL WANTED
  if [ "$2" = "$3" ]; then ok "$1: $2"; else bad "$1: got '$2', want '$3'"; fi
}

# req BASE METHOD PATH [curl args]: prints "STATUS|X-Cache|X-Cache-Hits|Content-Encoding|body-first-line"
req() {
  local base=$1 m=$2 p=$3
  shift 3
  curl -s --max-time 10 -X "$m" -D "$TMP/h" -o "$TMP/b" "$@" "$base$p" >/dev/null || true
  local st xc xh ce
  st="$(tr -d '\r' <"$TMP/h" | awk 'NR == 1 { print $2 }')"
  xc="$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "x-cache" { print $2 }')"
  xh="$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "x-cache-hits" { print $2 }')"
  ce="$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')"
  printf '%s|%s|%s|%s|%s\n' "$st" "$xc" "$xh" "$ce" "$(head -n 1 "$TMP/b" | tr -d '\r')"
}
header() { tr -d '\r' <"$TMP/h" | awk -F': ' -v k="$1" 'tolower($1) == tolower(k) { print $2; exit }'; }
synth_title() { sed -n 's:.*<title>\(.*\)</title>.*:\1:p' "$TMP/b" | head -n 1; }

# --- docroot and origin --------------------------------------------------------------------------
mkdir -p "$DOC/assets" "$DOC/blog"
echo 'home v1' >"$DOC/index.html"
echo 'css v1' >"$DOC/assets/site.css"
echo 'js v1' >"$DOC/assets/app.js"
printf 'BROTLI-BYTES-v1' >"$DOC/assets/site.css.br"
echo 'post1 v1' >"$DOC/blog/post1.html"
echo 'post2 v1' >"$DOC/blog/post2.html"
echo 'blog author:ann' >"$DOC/blog/post1.html.xkey"
echo 'blog author:bob' >"$DOC/blog/post2.html.xkey"
echo 'secret v1' >"$DOC/nostore.txt"
echo 'no-store' >"$DOC/nostore.txt.cache-control"
echo 'short v1' >"$DOC/short.txt"
echo 'public, max-age=1' >"$DOC/short.txt.cache-control"

ORIGIN_LOG="$TMP/origin.log" python3 "$HERE/test-origin.py" "$DOC" 0 >"$TMP/origin.out" 2>"$TMP/origin.err" &
ORIGIN_PID=$!
ORIGIN=""
for _ in $(seq 1 100); do
  ORIGIN="$(sed -n 's/^listening on http:\/\/\(127\.0\.0\.1:[0-9]*\)$/\1/p' "$TMP/origin.out")"
  [ -n "$ORIGIN" ] && break
  sleep 0.1
done
[ -n "$ORIGIN" ] || { cat "$TMP/origin.err" >&2; echo "test origin did not start" >&2; exit 1; }
echo "origin: http://$ORIGIN (pid $ORIGIN_PID)"

# --- two nodes (default grace 10 s; node B with default_grace=0 for the TTL check) ---------------
eval "$("$VARNISH_SH" start "$ORIGIN" "$TMP/node-a")"
A=$VARNISH_URL A_PID=$VARNISH_PID A_STATE=$VARNISH_STATE
STATES+=("$A_STATE")
eval "$(VARNISH_PARAMS="-p default_grace=0" "$VARNISH_SH" start "$ORIGIN")"
B=$VARNISH_URL B_PID=$VARNISH_PID B_STATE=$VARNISH_STATE
STATES+=("$B_STATE")
echo "node A: $A (pid $A_PID), node B: $B (pid $B_PID)"
if [ "$A" != "$B" ]; then ok "two nodes on different ports"; else bad "both nodes on $A"; fi

echo "== MISS, then HIT; Cache-Control passes through"
expect "A GET /index.html" "$(req "$A" GET /index.html)" "200|MISS|0||home v1"
expect "A GET /index.html again" "$(req "$A" GET /index.html)" "200|HIT|1||home v1"
expect "Cache-Control from the origin" "$(header Cache-Control)" "public, max-age=60"
expect "B is a separate cache: B GET /index.html" "$(req "$B" GET /index.html)" "200|MISS|0||home v1"

echo "== stale until invalidated; PURGE by URL"
echo 'home v2' >"$DOC/index.html"
expect "A still serves the old copy" "$(req "$A" GET /index.html)" "200|HIT|2||home v1"
req "$A" PURGE /index.html >/dev/null
expect "PURGE /index.html" "$(synth_title)" "200 Purged /index.html"
expect "A after PURGE" "$(req "$A" GET /index.html)" "200|MISS|0||home v2"
expect "B untouched by A's PURGE" "$(req "$B" GET /index.html)" "200|HIT|1||home v1"

echo "== BAN by URL regex"
req "$A" GET /assets/app.js >/dev/null
req "$A" GET /blog/post1.html >/dev/null
expect "A GET /assets/app.js cached" "$(req "$A" GET /assets/app.js)" "200|HIT|1||js v1"
echo 'js v2' >"$DOC/assets/app.js"
req "$A" BAN / -H 'x-ban-url: ^/assets/' >/dev/null
expect "BAN ^/assets/" "$(synth_title)" "200 Ban added"
expect "A /assets/app.js after BAN" "$(req "$A" GET /assets/app.js)" "200|MISS|0||js v2"
expect "A /blog/post1.html not banned" "$(req "$A" GET /blog/post1.html)" "200|HIT|1||post1 v1"
req "$A" BAN / >/dev/null
expect "BAN without x-ban-url" "$(synth_title)" "400 Missing x-ban-url header"

echo "== xkey purge and softpurge"
req "$A" GET /blog/post2.html >/dev/null
echo 'post1 v2' >"$DOC/blog/post1.html"
echo 'post2 v2' >"$DOC/blog/post2.html"
req "$A" PURGE / -H 'xkey-purge: author:ann' >/dev/null
expect "xkey-purge author:ann" "$(synth_title)" "200 Invalidated 1 objects"
expect "A post1 after xkey purge" "$(req "$A" GET /blog/post1.html)" "200|MISS|0||post1 v2"
expect "A post2 keeps its copy" "$(req "$A" GET /blog/post2.html)" "200|HIT|1||post2 v1"
req "$A" PURGE / -H 'xkey-softpurge: author:bob' >/dev/null
expect "xkey-softpurge author:bob" "$(synth_title)" "200 Softpurged 1 objects"
expect "A post2 stale once (grace), refetch in background" "$(req "$A" GET /blog/post2.html)" "200|HIT|2||post2 v1"
got=""
for _ in $(seq 1 30); do # the background refetch takes a moment
  sleep 0.1
  got="$(req "$A" GET /blog/post2.html | cut -d'|' -f1,5)"
  [ "$got" = "200|post2 v2" ] && break
done
expect "A post2 refetched" "$got" "200|post2 v2"

echo "== Vary: Accept-Encoding keeps br and identity apart"
expect "A br" "$(req "$A" GET /assets/site.css -H 'Accept-Encoding: br, gzip')" "200|MISS|0|br|BROTLI-BYTES-v1"
expect "A br again" "$(req "$A" GET /assets/site.css -H 'Accept-Encoding: br, gzip')" "200|HIT|1|br|BROTLI-BYTES-v1"
expect "A identity is another variant" "$(req "$A" GET /assets/site.css)" "200|MISS|0||css v1"
expect "Vary kept" "$(header Vary)" "Accept-Encoding"
etag="$(req "$A" GET /assets/site.css -H 'Accept-Encoding: br, gzip' >/dev/null; header ETag)"
expect "A If-None-Match on a hit" "$(req "$A" GET /assets/site.css -H 'Accept-Encoding: br, gzip' -H "If-None-Match: $etag" | cut -d'|' -f1,2)" "304|HIT"
req "$A" PURGE /assets/site.css >/dev/null
expect "PURGE drops every variant: br" "$(req "$A" GET /assets/site.css -H 'Accept-Encoding: br, gzip' | cut -d'|' -f1,2)" "200|MISS"
expect "PURGE drops every variant: identity" "$(req "$A" GET /assets/site.css | cut -d'|' -f1,2)" "200|MISS"

echo "== Cache-Control honoured: no-store, max-age=1 (node B, default_grace=0)"
req "$A" GET /nostore.txt >/dev/null
expect "no-store is not cached" "$(req "$A" GET /nostore.txt | cut -d'|' -f1,2)" "200|MISS"
req "$B" GET /short.txt >/dev/null
expect "B max-age=1: HIT while fresh" "$(req "$B" GET /short.txt | cut -d'|' -f1,2)" "200|HIT"
sleep 2.2
expect "B max-age=1: MISS after 2.2 s" "$(req "$B" GET /short.txt | cut -d'|' -f1,2)" "200|MISS"

echo "== ACL: invalidation from another loopback address (127.0.0.2) is refused"
if curl -s --max-time 5 --interface 127.0.0.2 -o "$TMP/b" -X PURGE "$A/index.html" 2>/dev/null; then
  expect "PURGE from 127.0.0.2" "$(synth_title)" "403 Forbidden"
  curl -s --max-time 5 --interface 127.0.0.2 -o "$TMP/b" -X BAN -H 'x-ban-url: .' "$A/" || true
  expect "BAN from 127.0.0.2" "$(synth_title)" "403 Forbidden"
else
  echo "skip  (cannot send from 127.0.0.2 here)"
fi

echo "== stop by PID"
for s in "$A_STATE" "$B_STATE"; do "$VARNISH_SH" stop "$s" 2>/dev/null; done
STATES=()
for p in "$A_PID" "$B_PID"; do
  if kill -0 "$p" 2>/dev/null; then bad "varnishd pid $p still running after stop"; else ok "varnishd pid $p gone"; fi
done
if [ ! -e "$A_STATE/work" ]; then ok "work dir of A removed"; else bad "$A_STATE/work still there"; fi
if [ ! -e "$B_STATE" ]; then ok "mktemp state dir of B removed"; else bad "$B_STATE still there"; fi

echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
