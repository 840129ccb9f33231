#!/usr/bin/env bash
# Fuzzes the ledger: every cargo-fuzz target in ledger/fuzz for FUZZ_SECONDS seconds each
# (default 30), after writing the generated seed corpus. Stops at the first crash, whose input
# libFuzzer saves under ledger/fuzz/artifacts/<target>/.
#
# FUZZ_SANITIZER (default `address`, cargo fuzz's own default) picks the sanitizer. Its flag is
# unstable, and this machine has only a stable toolchain, so for any sanitizer but `none` the run
# sets RUSTC_BOOTSTRAP=1 (for cargo fuzz only). FUZZ_SANITIZER=none needs no such flag and runs
# 3 to 5 times as fast; the ledger forbids unsafe code, so AddressSanitizer only guards the
# dependencies' unsafe code, and the choice is speed against that.
# See ledger/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
sanitizer="${FUZZ_SANITIZER:-address}"
fuzz_dir=ledger/fuzz

if [[ -x "$HOME/.cargo/bin/cargo" ]] && ! command -v cargo >/dev/null; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
# cargo-fuzz, installed only when missing or at another version (a warm machine keeps it).
cargo_fuzz_version=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
  echo "fuzz: installing cargo-fuzz $cargo_fuzz_version" >&2
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --force
fi

# The fuzz crate is a workspace of its own; its builds go to their own target directory, outside
# the checkout when FUZZ_TARGET_DIR says so (.ci/run keeps it in a cache that survives the
# clone). cargo fuzz builds for an explicit --target, so its instrumented artifacts never mix
# with the plain ones of the seed-corpus example in the same directory.
fuzz_target_dir="${FUZZ_TARGET_DIR:-$PWD/ledger/fuzz/target}"

cargo_fuzz() {
  if [[ "$sanitizer" == none ]]; then
    (cd ledger && cargo fuzz "$1" --target-dir "$fuzz_target_dir" "${@:2}")
  else
    (cd ledger && RUSTC_BOOTSTRAP=1 cargo fuzz "$1" --target-dir "$fuzz_target_dir" "${@:2}")
  fi
}

# Cargo caches a failed compiler probe (a build once run without RUSTC_BOOTSTRAP) in this file and
# replays the failure even with the flag set; it is only a cache, so start without it.
rm -f "$fuzz_target_dir/.rustc_info.json"

echo "== seed corpus" >&2
CARGO_TARGET_DIR="$fuzz_target_dir" cargo run --quiet --locked --manifest-path "$fuzz_dir/Cargo.toml" \
  --example seeds -- "$fuzz_dir/corpus"

for target in $(cd ledger && cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s (sanitizer: $sanitizer)" >&2
  cargo_fuzz run --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
