#!/usr/bin/env bash
# The cluster benchmarks of BENCHMARKS.md, each beside its etcd baseline, in one run:
#   1. a 3-member etcd cluster (Debian's etcd-server, installed here if missing; loopback; its
#      default fsync) driven by `scf-sim etcd` with plain puts, single and in transactions;
#   2. `scf-sim run` on its own local cluster (3 voters + 1 observer, fsync on), single
#      transactions and batches, with the same client concurrency as the etcd runs.
# The systems run one after the other, never together: the machine has few cores.
# Reports (JSON) go to $BENCH_OUT (default bench-results/DATE); a summary with the ratios ends
# the output.
#
# Settings (environment): BENCH_DURATION (60s), BENCH_WARMUP (10s), BENCH_CONCURRENCY (64,
# single requests in flight), BENCH_BATCH (50 transactions or puts per request),
# BENCH_BATCH_CONCURRENCY (2 batch requests in flight: more only queues, see BENCHMARKS.md),
# BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

duration=${BENCH_DURATION:-60s}
warmup=${BENCH_WARMUP:-10s}
concurrency=${BENCH_CONCURRENCY:-64}
batch=${BENCH_BATCH:-50}
batch_concurrency=${BENCH_BATCH_CONCURRENCY:-2}
out=${BENCH_OUT:-bench-results/$(date +%Y%m%d-%H%M%S)}

if ! command -v etcd >/dev/null; then
  echo "bench: installing Debian's etcd-server (the baseline)" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    etcd-server >/dev/null
fi

cargo build --release --locked -p api -p sim
sim="${CARGO_TARGET_DIR:-target}/release/scf-sim"
mkdir -p "$out"

# A loopback port nobody listens on (bash's /dev/tcp; no other tool needed).
used_ports=" "
free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 30000))
    [[ $used_ports == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      used_ports+="$port "
      echo "$port"
      return
    fi
  done
}

etcd_dir=$(mktemp -d "${TMPDIR:-/tmp}/scf-bench-etcd.XXXXXX")
etcd_pids=()
stop_etcd() {
  if ((${#etcd_pids[@]} > 0)); then
    kill "${etcd_pids[@]}" 2>/dev/null || true
    wait "${etcd_pids[@]}" 2>/dev/null || true
    etcd_pids=()
  fi
}
trap 'stop_etcd; rm -rf "$etcd_dir"' EXIT

declare -a client_ports peer_ports
initial_cluster=""
for i in 1 2 3; do
  client_ports[i]=$(free_port)
  peer_ports[i]=$(free_port)
  initial_cluster+="${initial_cluster:+,}e$i=http://127.0.0.1:${peer_ports[i]}"
done
endpoints=""
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$etcd_dir/e$i" \
    --listen-client-urls "http://127.0.0.1:${client_ports[i]}" \
    --advertise-client-urls "http://127.0.0.1:${client_ports[i]}" \
    --listen-peer-urls "http://127.0.0.1:${peer_ports[i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[i]}" \
    --initial-cluster "$initial_cluster" --initial-cluster-state new \
    --initial-cluster-token "scf-bench-$$" \
    >"$etcd_dir/e$i.log" 2>&1 &
  etcd_pids+=($!)
  endpoints+="${endpoints:+,}http://127.0.0.1:${client_ports[i]}"
done
echo "bench: etcd $(etcd --version | head -1 | sed 's/.*: //') on $endpoints (logs in $etcd_dir)" >&2

echo "== etcd, single puts, $concurrency in flight" >&2
"$sim" etcd --endpoints "$endpoints" --duration "$duration" --warmup "$warmup" \
  --concurrency "$concurrency" --quiet --json "$out/etcd-single.json"
echo "== etcd, transactions of $batch puts, $batch_concurrency in flight" >&2
"$sim" etcd --endpoints "$endpoints" --duration "$duration" --warmup "$warmup" \
  --concurrency "$batch_concurrency" --batch "$batch" --quiet --json "$out/etcd-batch.json"
stop_etcd

echo "== scf-ledger, single transactions, $concurrency in flight" >&2
"$sim" run --duration "$duration" --warmup "$warmup" --concurrency "$concurrency" --quiet \
  --json "$out/ledger-single.json"
echo "== scf-ledger, batches of $batch, $batch_concurrency in flight" >&2
"$sim" run --duration "$duration" --warmup "$warmup" --concurrency "$batch_concurrency" \
  --batch "$batch" --quiet --json "$out/ledger-batch.json"

# A number field of a flat JSON report (the reports are scf-sim's own, pretty-printed).
field() { sed -n "s/^  \"$2\": \\([0-9.]*\\),\$/\\1/p" "$1" | head -1; }
p99() { sed -n 's/^    "p99": \([0-9.]*\),$/\1/p' "$1" | head -1; }
summary() {
  local name=$1 ledger=$2 etcd=$3
  local tps puts
  tps=$(field "$ledger" throughput_tps)
  puts=$(field "$etcd" puts_per_s)
  awk -v n="$name" -v t="$tps" -v p="$puts" -v lp="$(p99 "$ledger")" -v ep="$(p99 "$etcd")" \
    'BEGIN { printf "%-8s %12.0f tx/s (p99 %7.1f ms) %12.0f puts/s (p99 %7.1f ms) %8.2f\n", n, t, lp, p, ep, t / p }'
}
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); window $duration after $warmup warm-up"
  printf '%-8s %36s %38s %8s\n' "" "scf-ledger (signed, validated, replicated)" "etcd (plain puts)" "ratio"
  summary single "$out/ledger-single.json" "$out/etcd-single.json"
  summary batch "$out/ledger-batch.json" "$out/etcd-batch.json"
} | tee "$out/summary.txt"
echo "bench: reports in $out" >&2
