#!/usr/bin/env bash
# The main job: builds scf-node and scf-sim, then `scf-sim run` starts a local cluster (3 voters
# and 1 observer, RocksDB, fsync on) on loopback, drives the supply-chain workload against it for
# 30 s after a 5 s warm-up, checks the invariants and that every replica agrees, stops the
# cluster and prints its report. Extra arguments go to `scf-sim run` (for example --duration 60s
# --json report.json; `scf-sim run --help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p api -p sim
exec "${CARGO_TARGET_DIR:-target}/release/scf-sim" run "$@"
