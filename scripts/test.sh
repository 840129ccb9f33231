#!/usr/bin/env bash
# Every test of the workspace: unit, property, model, determinism, decode-totality and the
# simulator's end-to-end run. PROPTEST_CASES raises the property tests' case count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --locked "$@"
