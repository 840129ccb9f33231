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
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

cargo_fuzz() {
  if [[ "$sanitizer" == none ]]; then
    (cd ledger && cargo fuzz "$@")
  else
    (cd ledger && RUSTC_BOOTSTRAP=1 cargo fuzz "$@")
  fi
}

# Cargo caches a failed compiler probe (a build once run without RUSTC_BOOTSTRAP) in this file and
# replays the failure even with the flag set; it is only a cache, so start without it.
rm -f "$fuzz_dir/target/.rustc_info.json"

echo "== seed corpus" >&2
cargo run --quiet --manifest-path "$fuzz_dir/Cargo.toml" --example seeds -- "$fuzz_dir/corpus"

for target in $(cd ledger && cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s (sanitizer: $sanitizer)" >&2
  cargo_fuzz run --sanitizer "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
