#!/usr/bin/env bash
# The read side of one node (BENCHMARKS.md, "Reads: the report cache and the access log"): a
# one-voter local cluster filled by the workload for BENCH_FILL seconds (default 30), then
# scripts/bench/reads.py, BENCH_ROUNDS (default 90, at most 90) interleaved rounds of
#   - the maturity ladder computed (a new `weeks` each round: a scan of every token), the
#     concentration report computed from the kept financing totals (a new `top` each round)
#     and cached (the same `top`);
#   - a token read by its holder (logged: the access log's write and fdatasync) and by a party
#     with no part in it (403: authenticated and looked up alike, nothing logged).
# Prints the figures as JSON. Builds the release binaries as scripts/test.sh does; Python's
# ecdsa comes from the virtual environment scripts/schemathesis.sh uses.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --workspace --locked --features api/failpoints --bins
source scripts/lib/node.sh
ensure_venv

work=$(mktemp -d)
trap 'stop_cluster; rm -rf "$work"' EXIT
start_filled_node "$work" "${BENCH_FILL:-30}"
"$venv/bin/python" scripts/bench/reads.py "$url" "$keys" "${BENCH_ROUNDS:-90}"
