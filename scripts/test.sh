#!/usr/bin/env bash
# Every test of the workspace: unit, property, model, determinism, decode-totality, the
# simulator's end-to-end run, and the whole-system fault tests (crate `tests`: crashes, pauses,
# partitions, crash points and hostile input on real processes, 30 s windows; the long version
# is scripts/soak.sh), and the web explorer's browser tests (headless Chromium, which
# scripts/setup.sh installs; they write docs/screenshots/). Arguments go to `cargo test` (for example `--test model`);
# PROPTEST_CASES raises the property tests' case count. Ends with one line that totals every
# test binary's results. Tests build in the release profile, like the main job and the benches,
# so RocksDB's C++ is compiled once (our crates keep overflow checks and debug assertions there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The fault tests' scf-node with crash points (tests/tests/failpoints.rs), built first; the
# workspace build below then puts the plain scf-node back in target/release.
cargo build --release --locked -p api --features failpoints
release="${CARGO_TARGET_DIR:-target}/release"
cp "$release/scf-node" "$release/scf-node-failpoints"
status=0
cargo test --release --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result: / { for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
