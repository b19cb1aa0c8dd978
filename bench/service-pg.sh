#!/usr/bin/env bash
# bench/service-pg.sh: events/s one instance commits to PostgreSQL through its group-commit writer
# (crates/service/src/pg.rs, PgWriter), with N concurrent producers appending one event each
# (crates/service/examples/pg_append.rs). Every acknowledged event is committed with fsync and
# synchronous_commit on. The server is a throw-away one from scripts/peers/postgres.sh (stopped by PID);
# the producers run on CPU 0 (taskset), PostgreSQL where the scheduler puts it.
#
# Environment: BENCH_PRODUCERS=64, BENCH_SECONDS=10.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"
scripts/peers/postgres.sh install
cargo build --release --locked -p staleguard-service --example pg_append >/dev/null 2>&1 \
  || { echo "error: cargo build --example pg_append failed" >&2; exit 1; }
bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/pg_append"
eval "$(scripts/peers/postgres.sh start)"
trap 'scripts/peers/postgres.sh stop "$POSTGRES_STATE"' EXIT
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(psql --version | awk '{print $3}')"
taskset -c 0 "$bin" "$POSTGRES_URL" "${BENCH_PRODUCERS:-64}" "${BENCH_SECONDS:-10}"
