//! Counters for `/metrics`, rendered in Prometheus's text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::node::Status;

/// Upper bounds of the request latency histogram, seconds.
const LATENCY_BUCKETS_S: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Inner {
    /// (route, status) → count.
    requests: BTreeMap<(&'static str, u16), u64>,
    /// route → (bucket counts, sum of seconds, count).
    latency: BTreeMap<&'static str, ([u64; LATENCY_BUCKETS_S.len()], f64, u64)>,
    /// Outcomes of transactions this node answered: "applied" or a rejection code.
    outcomes: BTreeMap<String, u64>,
    /// Transactions per submit request (batch sizes), as a histogram by powers of two.
    batch_sizes: BTreeMap<u32, u64>,
    /// Requests and connections refused by a limit, by limit.
    refused: BTreeMap<&'static str, u64>,
    /// Error answers by code (`bad_signature`, `wrong_chain`, `not_leader`, ...).
    errors: BTreeMap<String, u64>,
}

/// The node's counters. One lock: updates are a few map operations per request.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner.requests.entry((route, status)).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let entry = inner.latency.entry(route).or_default();
        for (bucket, bound) in entry.0.iter_mut().zip(LATENCY_BUCKETS_S) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        entry.1 += seconds;
        entry.2 += 1;
    }

    /// Counts one transaction's outcome (`applied` or its rejection code).
    pub fn outcome(&self, outcome: &str) {
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    /// Counts one request or connection refused by `limit` (`rate_limited`,
    /// `too_many_connections`).
    pub fn refused(&self, limit: &'static str) {
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner.refused.entry(limit).or_default() += 1;
    }

    /// Counts one error answer by its code.
    pub fn error(&self, code: &str) {
        let mut inner = self.inner.lock().expect("metrics lock");
        match inner.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                inner.errors.insert(code.to_owned(), 1);
            }
        }
    }

    /// Counts one submit request of `txs` transactions.
    pub fn batch(&self, txs: usize) {
        let bucket = txs.max(1).next_power_of_two().trailing_zeros();
        let mut inner = self.inner.lock().expect("metrics lock");
        *inner.batch_sizes.entry(bucket).or_default() += 1;
    }

    /// The Prometheus text exposition, with the replica's raft figures and what its raft port
    /// refused.
    pub fn render(
        &self,
        status: Option<&Status>,
        peers: &raft_node::transport::PeerRefusals,
    ) -> String {
        let inner = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# TYPE scf_http_requests_total counter\n");
        for ((route, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "scf_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# TYPE scf_http_request_seconds histogram\n");
        for (route, (buckets, sum, count)) in &inner.latency {
            for (bucket, bound) in buckets.iter().zip(LATENCY_BUCKETS_S) {
                let _ = writeln!(
                    out,
                    "scf_http_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {bucket}"
                );
            }
            let _ = writeln!(
                out,
                "scf_http_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "scf_http_request_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "scf_http_request_seconds_count{{route=\"{route}\"}} {count}");
        }
        out.push_str("# TYPE scf_transactions_total counter\n");
        for (outcome, count) in &inner.outcomes {
            let _ = writeln!(out, "scf_transactions_total{{outcome=\"{outcome}\"}} {count}");
        }
        out.push_str("# TYPE scf_submit_batch_requests_total counter\n");
        for (bucket, count) in &inner.batch_sizes {
            let _ = writeln!(
                out,
                "scf_submit_batch_requests_total{{txs_le=\"{}\"}} {count}",
                1u64 << bucket
            );
        }
        out.push_str("# TYPE scf_http_errors_total counter\n");
        for (code, count) in &inner.errors {
            let _ = writeln!(out, "scf_http_errors_total{{code=\"{code}\"}} {count}");
        }
        out.push_str("# TYPE scf_http_refused_total counter\n");
        for (limit, count) in &inner.refused {
            let _ = writeln!(out, "scf_http_refused_total{{limit=\"{limit}\"}} {count}");
        }
        out.push_str("# TYPE scf_peer_connections_refused_total counter\n");
        for (reason, count) in peers.connections() {
            let _ =
                writeln!(out, "scf_peer_connections_refused_total{{reason=\"{reason}\"}} {count}");
        }
        out.push_str("# TYPE scf_peer_messages_refused_total counter\n");
        for (reason, count) in peers.messages() {
            let _ = writeln!(out, "scf_peer_messages_refused_total{{reason=\"{reason}\"}} {count}");
        }
        if let Some(status) = status {
            for (name, value) in [
                ("scf_raft_term", status.term),
                ("scf_raft_commit_index", status.commit_index),
                ("scf_raft_applied_index", status.applied_index),
                ("scf_raft_leader_id", status.leader_id),
                ("scf_ledger_height", status.height),
                ("scf_snapshots_installed", status.snapshots_installed),
            ] {
                let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
            }
        }
        out
    }
}
