#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, on stable Rust.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 30)
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none. ASan works on stable with RUSTC_BOOTSTRAP=1; `none`
#                   runs several times faster (no instrumentation of the unsafe code in dependencies).
#   FUZZ_STRICT=1   also check that every rewritten reference reads back as the URL written (the
#                   fuzz crate's `strict` feature), not only that the count is unchanged.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10).
#   FUZZ_SEED       libFuzzer's random seed (exploration is still not bit-for-bit reproducible).
#   FUZZ_REPLAY=1   only run every committed seed and regression input once (fuzz/seeds/<target>/):
#                   deterministic, what scripts/test.sh and CI do; SECONDS is ignored. Explore with
#                   `scripts/fuzz.sh 60` (random seeds) and commit any crash input as a new seed.
#   CARGO_TARGET_DIR  honoured (default: fuzz/target).
#
# Seeds are read from fuzz/seeds/<target>/ (committed); new inputs go to fuzz/corpus/<target>/ and
# findings to fuzz/artifacts/<target>/ (both git-ignored); logs to fuzz/artifacts/logs/.
# Exits non-zero when any target finds a crash, a hang or an out-of-memory input. The last line is
# `fuzz: N passed, M failed` (N, M count targets).
set -euo pipefail

secs="${1:-30}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]   (a positive integer, default 30)" >&2
    exit 2
fi
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address | none) ;;
    *)
        echo "fuzz: FUZZ_SANITIZER must be address or none, not '$sanitizer'" >&2
        exit 2
        ;;
esac
timeout_secs="${FUZZ_TIMEOUT:-10}"
run_args=(-max_total_time="${1:-30}")
if [[ "${FUZZ_REPLAY:-0}" == 1 ]]; then
    run_args=(-runs=0)
fi
seed_args=()
if [[ -n "${FUZZ_SEED:-}" ]]; then
    seed_args=(-seed="$FUZZ_SEED")
fi
features=()
if [[ "${FUZZ_STRICT:-0}" == 1 ]]; then
    features=(--features strict)
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module, …) to rustc; this lets
# the stable compiler accept them. No nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)"
    start=$SECONDS
    cargo install cargo-fuzz --locked
    echo "fuzz: installed cargo-fuzz in $((SECONDS - start)) s"
fi
echo "fuzz: $(rustc --version), $(cargo fuzz --version), sanitizer=$sanitizer${features[*]:+, ${features[*]}}"

mapfile -t targets < <(cargo fuzz list)
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz: no fuzz targets found in $root/fuzz" >&2
    exit 1
fi

start=$SECONDS
cargo fuzz build --sanitizer "$sanitizer" "${features[@]}"
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start)) s"

logs="$root/fuzz/artifacts/logs"
mkdir -p "$logs"
passed=0
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    before="$(find "artifacts/$t" -maxdepth 1 -type f -printf '%f\n' | sort)"
    log="$logs/$t.log"
    if [[ "${FUZZ_REPLAY:-0}" == 1 ]]; then
        echo "fuzz: $t: replaying seeds and corpus ..."
    else
        echo "fuzz: $t for ${secs} s ..."
    fi
    # libFuzzer stops itself after -max_total_time; `timeout` is only a backstop against a wedged run.
    if timeout -k 10 "$((secs * 2 + timeout_secs + 120))" \
        cargo fuzz run "$t" --sanitizer "$sanitizer" "${features[@]}" \
        "corpus/$t" "seeds/$t" -- \
        "${run_args[@]}" -timeout="$timeout_secs" -print_final_stats=1 "${seed_args[@]}" \
        >"$log" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    new="$(comm -13 <(printf '%s\n' "$before") \
        <(find "artifacts/$t" -maxdepth 1 -type f -printf '%f\n' | sort) | sed '/^$/d')"
    execs="$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -1)"
    runs="$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -1)"
    if [[ $rc -eq 0 && -z "$new" ]]; then
        passed=$((passed + 1))
        echo "fuzz: $t passed: ${runs:-?} runs, ${execs:-?} exec/s"
    else
        failed=$((failed + 1))
        echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} runs, ${execs:-?} exec/s; log: $log"
        grep -m1 -A4 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" | sed 's/^/    /' || true
        if [[ -z "$new" ]]; then
            tail -n 20 "$log" | sed 's/^/    /'
        fi
        while IFS= read -r a; do
            [[ -n "$a" ]] || continue
            echo "  artifact: $root/fuzz/artifacts/$t/$a"
            echo "  reproduce: (cd $root/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer${features[*]:+ ${features[*]}} $t artifacts/$t/$a)"
        done <<<"$new"
    fi
done

echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
