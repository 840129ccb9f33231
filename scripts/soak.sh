#!/usr/bin/env bash
# The long fault run (issue #6's soak): the nemesis scenario (kill -9, SIGSTOP, isolation, the
# leader half the time) and the durability scenario (kill -9/restart cycles with the observer
# down), each with a SOAK_SECONDS-long workload window (default 600), one after the other.
# SCF_FAULT_SEED replays a seed. Each passing run prints its figures and the nemesis's schedule;
# a failing one prints the seed, the schedule, the problems, and where the history and the node
# logs were kept. CI runs the same scenarios with 30 s windows (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export SCF_FAULT_SECONDS="${SOAK_SECONDS:-600}"
# The scenarios start scf-node processes: a copy of the one built here, so that a build during
# a long run does not swap the binary that restarted nodes run.
cargo build --release --locked -p api
node_bin=$(mktemp -d)
trap 'rm -rf "$node_bin"' EXIT
cp "${CARGO_TARGET_DIR:-target}/release/scf-node" "$node_bin/scf-node"
export SCF_NODE_BIN="$node_bin/scf-node"
cargo test --release --locked -p tests --test nemesis --test durability -- --nocapture --test-threads 1
