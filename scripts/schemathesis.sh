#!/usr/bin/env bash
# The OpenAPI document against a running node: Schemathesis (every check) on a one-voter
# cluster on loopback that the workload has filled (parties, a receivable's whole life, every
# record kind), twice: unsigned, and signed as the workload's regulator
# (scripts/schemathesis/hooks.py signs each request, as ledger::client::ReadRequest does); then
# the admin listener's document (docs/openapi-admin.json), its GET routes.
# Any finding fails the script. Used by scripts/test.sh; SCHEMATHESIS_EXAMPLES sets how many
# cases each operation gets (default 40).
#
# Schemathesis comes from PyPI into a virtual environment in the build cache, at the pinned
# versions of scripts/schemathesis/requirements.txt (installed once, again when the file
# changes). The release binaries must be built (scripts/test.sh builds them first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/lib/node.sh
ensure_venv

work=$(mktemp -d)
trap 'stop_cluster; rm -rf "$work"' EXIT
start_filled_node "$work" 2
regulator=$(ls "$keys" | grep -- '-regulator\.json$' | head -1 || true)
[[ -n "$regulator" ]] || { echo "the run wrote no regulator key" >&2; exit 1; }
status=$(curl -sf "$url/v1/status")

# run LABEL SPEC_URL [SCHEMATHESIS_OPTION...] [-- VAR=VALUE...]: one run against SPEC_URL's
# API, with the variables for hooks.py.
run() {
  local label=$1 spec=$2 options=() vars=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do options+=("$1"); shift; done
  (($#)) && shift
  vars=("$@")
  echo "== schemathesis: $label"
  (cd "$root/scripts/schemathesis" &&
    env "${vars[@]}" PYTHONPATH=".:$root/scripts/lib" SCHEMATHESIS_HOOKS=hooks "$venv/bin/schemathesis" \
      --config-file schemathesis.toml run "$spec" \
      --checks all --workers 1 --phases examples,coverage,fuzzing \
      --max-examples "${SCHEMATHESIS_EXAMPLES:-40}" --seed 1 --no-color "${options[@]}")
}
run unsigned "$url/v1/openapi.json" -- SCF_READER=
run "signed as a regulator" "$url/v1/openapi.json" -- \
  SCF_BASE_URL="$url" \
  SCF_READER="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["party_id"])' "$keys/$regulator")" \
  SCF_READER_KEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_key"])' "$keys/$regulator")" \
  SCF_CHAIN_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["genesis"]["chain_id"])' "$status")" \
  SCF_NODE_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["node_id"])' "$status")"
# The admin listener's own document, read-only: its writes change the membership and cut raft
# links, which would end the one-voter cluster under test rather than check an answer.
run "admin, its reads" "$admin/v1/admin/openapi.json" --include-method GET -- SCF_READER=
echo "schemathesis: no findings"
