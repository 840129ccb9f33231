# Sourced by scripts/schemathesis.sh and scripts/bench-reads.sh (after `set -euo pipefail` and a
# `cd` to the repository's root): the Python virtual environment they share, and a one-voter
# local cluster on loopback that the workload has filled.
#
# The release binaries must be built first. Defines:
#   venv                          the virtual environment (bin/python, bin/schemathesis)
#   ensure_venv                   creates it, or again when its requirements changed
#   start_filled_node DIR SECONDS starts `scf-sim cluster` in DIR, lets `scf-sim run` write for
#                                 SECONDS, and sets url, admin (the admin API's URL) and keys
#                                 (the workload's key files, a regulator's among them); the
#                                 caller's EXIT trap calls stop_cluster.

# The binaries where cargo put them: $CARGO_TARGET_DIR (CI's is in the build cache), or the
# repository's own target/ (scripts/main.sh looks there too).
bin="${CARGO_TARGET_DIR:-target}/release"
venv="$HOME/.cache/scf-ledger/schemathesis-venv"

ensure_venv() {
  local requirements=scripts/schemathesis/requirements.txt stamp="$venv/.requirements"
  if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

cluster_pid=
stop_cluster() {
  if [[ -n "$cluster_pid" ]]; then
    kill "$cluster_pid" 2>/dev/null || true
    wait "$cluster_pid" 2>/dev/null || true
  fi
}

start_filled_node() {
  local dir=$1 seconds=$2
  "$bin/scf-sim" cluster --dir "$dir/cluster" --voters 1 --observers 0 >"$dir/cluster.log" 2>&1 &
  cluster_pid=$!
  for _ in $(seq 100); do
    [[ -s "$dir/cluster/cluster.json" ]] && break
    kill -0 "$cluster_pid" 2>/dev/null || { cat "$dir/cluster.log"; exit 1; }
    sleep 0.2
  done
  [[ -s "$dir/cluster/cluster.json" ]] || { echo "no cluster.json after 20 s" >&2; cat "$dir/cluster.log"; exit 1; }
  local node='import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0][sys.argv[2]])'
  url=$(python3 -c "$node" "$dir/cluster/cluster.json" url)
  admin=$(python3 -c "$node" "$dir/cluster/cluster.json" admin_url)
  keys="$dir/keys"
  # The workload registers its cast (a regulator among them) and writes their keys.
  "$bin/scf-sim" run --target "$url" --registrar-key "$dir/cluster/registrar.key" \
    --duration "${seconds}s" --warmup 0s --keys "$keys" --json "$dir/run.json" >"$dir/run.log" 2>&1 ||
    { cat "$dir/run.log"; exit 1; }
}
