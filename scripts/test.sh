#!/usr/bin/env bash
# Every test of the workspace: unit, property, model, determinism, decode-totality, the
# simulator's end-to-end run, and the whole-system fault tests (crate `tests`: crashes, pauses,
# partitions, crash points and hostile input on real processes, 30 s windows; the long version
# is scripts/soak.sh), and the web explorer's browser tests (headless Chromium, which
# scripts/setup.sh installs; they write docs/screenshots/). Arguments go to `cargo test` (for
# example `--test it model::`); PROPTEST_CASES raises the property tests' case count. A whole
# run then checks the OpenAPI document against a running node (scripts/schemathesis.sh). Ends
# with one line that totals every test binary's results.
#
# One build serves every test: the release profile, like the main job and the benches, so
# RocksDB's C++ is compiled once (our crates keep overflow checks and debug assertions there),
# with raft-node's crash points compiled in (`--features api/failpoints`). They are inert until
# the FAILPOINTS environment variable arms one, which only tests/tests/failpoints.rs does, so
# the fault tests' scf-node and everything else share every compiled dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: every test binary runs, and the total counts them all, even after a failure.
cargo test --release --workspace --locked --features api/failpoints --no-fail-fast "$@" 2>&1 |
  tee "$log" || status=$?
# A whole run (no arguments) also checks the OpenAPI document against a running node with
# Schemathesis (scripts/schemathesis.sh), on the release binaries just built.
schema=skipped
if (($# == 0)); then
  schema_log=$(mktemp)
  if scripts/schemathesis.sh >"$schema_log" 2>&1; then
    schema=ok
  else
    schema=failed
    status=1
    cat "$schema_log"
  fi
  rm -f "$schema_log"
fi
echo "schemathesis: $schema"
awk '/^test result: / { for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
