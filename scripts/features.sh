#!/usr/bin/env bash
# Every crate builds without its default features and with each optional feature alone (a CDN provider,
# an object store backend, a codec), so a module that leans on another feature's code is caught here and
# not by a user who trims the build. `cargo check` only: type and borrow errors, no code generation. A
# crate whose features only switch on its dependencies' (no `cfg(feature)` in its own code) is checked
# without default features only: each feature alone is checked in the crate that has the code.
#
#   scripts/features.sh          # every crate and feature
#   scripts/features.sh cdn      # crates whose folder name matches
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

only="${1:-}"
runs=0
# A warning in a trimmed build (code only another feature uses) fails the step, as clippy's -D warnings
# does for the default build; RUSTFLAGS stay as they are, so the dependencies' checks are reused.
check() {
  local out
  out="$(cargo check --locked --message-format short "$@" 2>&1)" || { printf '%s\n' "$out" >&2; return 1; }
  if grep -E '^(crates|src)/[^ ]*: warning' <<<"$out" >&2; then
    echo "error: \`cargo check $*\` warns (above)" >&2
    return 1
  fi
}
for manifest in crates/*/Cargo.toml; do
  dir="$(dirname "$manifest")"
  [ -n "$only" ] && [[ "$dir" != *"$only"* ]] && continue
  pkg="$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)"
  # The [features] table's own keys, without `default`.
  features="$(awk '/^\[features\]/{f=1;next} /^\[/{f=0} f && /^[a-z0-9_-]+ *=/{sub(/ *=.*/,""); print}' "$manifest" | grep -vx default || true)"
  [ -z "$features" ] && continue
  echo "-- $pkg: no default features"
  check -p "$pkg" --no-default-features
  runs=$((runs + 1))
  # A crate with no code of its own behind a feature (the binary: its features only switch on its
  # dependencies', each checked alone above or below) needs the trimmed build only.
  if ! grep -rqE 'feature *= *"' "$dir/src"; then
    echo "   (no feature-gated code of its own: features checked in the crates they enable)"
    continue
  fi
  for f in $features; do
    # A feature this crate's code never tests only switches on a dependency's: checked there.
    if ! grep -rqE "feature *= *\"$f\"" "$dir/src"; then
      echo "   (\`$f\`: no code of its own here; checked in the crate it enables)"
      continue
    fi
    echo "-- $pkg: only \`$f\`"
    check -p "$pkg" --no-default-features --features "$f"
    runs=$((runs + 1))
  done
done
echo "features: $runs feature set(s) build"
