#!/usr/bin/env bash
# The main job: builds scf-sim and runs the supply-chain workload with its report.
# Extra arguments go to `scf-sim run` (for example --duration 60s --json report.json).
#
# Until the simulator drives scf-node processes (issue #5) the run is in process: the workload
# drives the ledger state machine directly, with a replaying follower and a signature-checking
# observer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p sim
exec ./target/release/scf-sim run "$@"
