#!/usr/bin/env bash
# The whole test suite, from a fresh machine of this kind: installs what it needs, runs the format and lint
# checks, every Rust test (unit, property, integration on the real binary, Django reading our manifest), and
# a replay of the fuzz targets' seeds and regression inputs (CSS/HTML/JS scanners).
#
#   scripts/test.sh            # everything (the fuzz seeds are replayed by cargo test)
#   FUZZ_SECONDS=30 scripts/test.sh   # also explore 30 s per fuzz target with libFuzzer
#
# Peers: Django, WhiteNoise and gunicorn (pip, in a venv made by scripts/pyenv.sh; the Django stack runs
# under gunicorn across rebuilds), headless Chromium (Debian's package, scripts/peers/chromium.sh; the Vite
# stack is loaded in it), Varnish (Debian packages, installed here; each
# test starts its own node on free loopback ports with scripts/peers/varnish.sh and stops it by PID) and moto
# (S3 + CloudFront stand-in, with awscli: pip, in the same venv; each S3 deploy or CloudFront test starts its
# own moto_server on a free loopback port with scripts/peers/moto.sh and stops it by PID). Varnish is also the
# real edge of the purge and verify tests (PURGE, BAN, xkey; a node that ignores purges). Cloudflare, Fastly
# and CloudFront's limits, throttling and InProgress states have no local peer: in-process mocks that check
# the documented request shapes stand in (crates/cdn/tests/it). PostgreSQL (Debian's, scripts/peers/postgres.sh:
# initdb into a temp dir, as the user staleguard-pg when run as root) and promtool (extracted from Debian's
# prometheus package, scripts/peers/promtool.sh: the service's alert rules) too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each step says how long the one before took, so a CI log shows where the time goes.
last_step="" last_start=$SECONDS
step() {
  if [ -n "$last_step" ]; then printf -- '-- %s: %ss\n' "$last_step" "$((SECONDS - last_start))"; fi
  last_step="$*" last_start=$SECONDS
  printf '\n== %s\n' "$*"
}

step "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust 1.95+ (https://rustup.rs) and re-run" >&2
  exit 1
fi
cargo --version
if command -v rustup >/dev/null 2>&1; then
  installed="$(rustup component list --installed 2>/dev/null || true)"
  grep -q '^clippy' <<<"$installed" || rustup component add clippy rustfmt
fi

step "python venv with Django (peer for the manifest test)"
# shellcheck source=scripts/pyenv.sh
source scripts/pyenv.sh
ensure_venv
python -c 'import django; print("django", django.__version__)'

step "Varnish (peer for the serve-behind-a-cache test)"
scripts/peers/varnish.sh install
varnishd -V 2>&1 | head -1

step "Chromium (headless browser for the Vite stack test)"
scripts/peers/chromium.sh install
/usr/bin/chromium --version 2>/dev/null | head -1

step "moto (peer for the S3 deploy tests)"
scripts/peers/moto.sh install
python -c 'import moto; print("moto", moto.__version__)'
"$(scripts/peers/moto.sh aws-bin)" --version 2>&1

step "PostgreSQL (peer: the service's store for several instances)"
scripts/peers/postgres.sh install
psql --version

step "Redis and memcached (peers: the app-cache targets, and the service bench's Celery broker)"
scripts/peers/redis.sh install
redis-server --version
scripts/peers/memcached.sh install
memcached -V

step "nginx (peer: the generated nginx configuration serves what staleguard serve serves)"
scripts/peers/nginx.sh install
nginx -v 2>&1

step "nasm (assembler for rav1e and mozjpeg, the encoders of the \`avif\` and \`mozjpeg\` features)"
if ! command -v nasm >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "error: nasm is missing; run as root, or: sudo apt-get install nasm" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nasm >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nasm >/dev/null
  }
fi
nasm -v

step "promtool: the service's example alert rules load and fire as tested"
scripts/peers/promtool.sh check

# A CI run compiles from nothing once: incremental artifacts would only cost time and disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p staleguard-assets --all-targets --locked --features avif,mozjpeg -- -D warnings

step "each crate without default features, and with each feature alone"
scripts/features.sh

step "cargo test (unit, property, integration)"
cargo test --workspace --locked

step "AVIF and mozjpeg (features avif, mozjpeg): the image unit tests with both encoders, and Chromium decoding AVIF variants"
cargo test -p staleguard-assets --locked --features avif,mozjpeg -- images:: avif::

# The fuzz targets' committed seeds and regression inputs are replayed by `cargo test` above
# (crates/assets/tests/fuzz_seeds.rs, through the targets' own bodies in fuzz/harness/, strict):
# deterministic, and with no cargo-fuzz install or second build. FUZZ_SECONDS=N also explores each
# target with libFuzzer for N seconds (scripts/fuzz.sh; installs cargo-fuzz when missing).
if [ "${FUZZ_SECONDS:-0}" != "0" ]; then
  step "fuzz targets: explore ${FUZZ_SECONDS} s each with libFuzzer"
  FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}" FUZZ_STRICT="${FUZZ_STRICT:-1}" scripts/fuzz.sh "${FUZZ_SECONDS}"
fi

step "done: every check passed (${SECONDS}s in all)"
