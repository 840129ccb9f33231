//! Counters for `/metrics`, kept in a `prometheus-client` registry of this node's own (several
//! nodes may share a process, as in tests) and rendered in Prometheus's text format 0.0.4.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::TypedMetric as _;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use raft_node::transport::PeerRefusals;

use crate::node::Status;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the request latency histogram, seconds.
const LATENCY_BUCKETS_S: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// One label. Every label value is bounded: routes and limits are the server's own names, codes
/// and outcomes the ledger's and the API's, statuses HTTP's, batch sizes powers of two up to the
/// batch limit. No client-chosen text becomes a label.
type Label<V> = [(&'static str, V); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// The node's counters: the API's own, and what its raft port refused (read at each scrape).
pub struct Metrics {
    registry: Registry,
    requests: Family<(Label<&'static str>, Label<u64>), Counter>,
    latency: Family<Label<&'static str>, Histogram, fn() -> Histogram>,
    outcomes: Family<Label<String>, Counter>,
    batch_sizes: Family<Label<u64>, Counter>,
    refused: Family<Label<&'static str>, Counter>,
    errors: Family<Label<String>, Counter>,
    reports: Family<Label<&'static str>, Counter>,
    financing_totals: Family<Label<&'static str>, Counter>,
}

impl Metrics {
    /// Counters at zero, with `peers`' refusals among them.
    pub fn new(peers: Arc<PeerRefusals>) -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            outcomes: Family::default(),
            batch_sizes: Family::default(),
            refused: Family::default(),
            errors: Family::default(),
            reports: Family::default(),
            financing_totals: Family::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "scf_http_requests",
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "scf_http_request_seconds",
            "Time to answer an HTTP request, by route",
            metrics.latency.clone(),
        );
        registry.register(
            "scf_transactions",
            "Transactions this node answered, by outcome (applied, pending or a rejection code)",
            metrics.outcomes.clone(),
        );
        registry.register(
            "scf_submit_batch_requests",
            "Submit requests by transactions per request, rounded up to a power of two",
            metrics.batch_sizes.clone(),
        );
        registry.register("scf_http_errors", "Error answers by code", metrics.errors.clone());
        registry.register(
            "scf_http_refused",
            "Requests and connections refused by a limit, by limit",
            metrics.refused.clone(),
        );
        registry.register(
            "scf_supervision_reports",
            "Supervision reports answered, by result: computed from the state, or cached (taken \
             from the reports computed at the same height)",
            metrics.reports.clone(),
        );
        registry.register(
            "scf_supervision_financing_totals",
            "How the financing totals of a concentration or financing report were had: scanned \
             (every financing read), advanced (an earlier height's, plus the financings of the \
             blocks since) or kept (already at that height)",
            metrics.financing_totals.clone(),
        );
        registry.register_collector(Box::new(PeerRefused(peers)));
        metrics
    }

    /// Counts one request.
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&([("route", route)], [("status", u64::from(status))])).inc();
        self.latency.get_or_create(&[("route", route)]).observe(elapsed.as_secs_f64());
    }

    /// Counts one transaction's outcome (`applied`, `pending` or its rejection code).
    pub fn outcome(&self, outcome: &str) {
        self.outcomes.get_or_create(&[("outcome", outcome.to_owned())]).inc();
    }

    /// Counts one request or connection refused by `limit` (`rate_limited`,
    /// `too_many_connections`).
    pub fn refused(&self, limit: &'static str) {
        self.refused.get_or_create(&[("limit", limit)]).inc();
    }

    /// Counts one error answer by its code.
    pub fn error(&self, code: &str) {
        self.errors.get_or_create(&[("code", code.to_owned())]).inc();
    }

    /// The counters of a [`crate::supervision::ReportCache`].
    pub fn report_counters(&self) -> crate::supervision::ReportCounters {
        let totals = |how| self.financing_totals.get_or_create(&[("how", how)]).clone();
        crate::supervision::ReportCounters {
            cached: self.reports("cached"),
            computed: self.reports("computed"),
            totals_scanned: totals("scanned"),
            totals_advanced: totals("advanced"),
            totals_kept: totals("kept"),
        }
    }

    /// The counter of supervision reports answered with `result` (`computed` or `cached`),
    /// for [`crate::supervision::ReportCache`].
    pub fn reports(&self, result: &'static str) -> Counter {
        self.reports.get_or_create(&[("result", result)]).clone()
    }

    /// Counts one submit request of `txs` transactions.
    pub fn batch(&self, txs: usize) {
        let txs_le = u64::try_from(txs.max(1).next_power_of_two()).unwrap_or(u64::MAX);
        self.batch_sizes.get_or_create(&[("txs_le", txs_le)]).inc();
    }

    /// The Prometheus text exposition, with the replica's raft figures (none once it has
    /// stopped) and what its raft port refused.
    pub fn render(&self, status: Option<&Status>) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String");
        if let Some(status) = status {
            let mut raft = Registry::default();
            for (name, help, value) in [
                ("scf_raft_term", "Raft term", status.term),
                ("scf_raft_commit_index", "Raft commit index", status.commit_index),
                ("scf_raft_applied_index", "Last applied log index", status.applied_index),
                (
                    "scf_raft_leader_id",
                    "The leader this replica knows of (0: none)",
                    status.leader_id,
                ),
                ("scf_ledger_height", "Ledger height", status.height),
                (
                    "scf_snapshots_installed",
                    "Snapshots installed since the replica started",
                    status.snapshots_installed,
                ),
            ] {
                raft.register(name, help, ConstGauge::new(value));
            }
            prometheus_text::encode(&mut out, &raft).expect("writing to a String");
        }
        out
    }
}

/// The raft port's refusals, read from the transport's and the replica's counters at each scrape,
/// every reason listed (zeros included).
struct PeerRefused(Arc<PeerRefusals>);

impl fmt::Debug for PeerRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerRefused")
    }
}

impl Collector for PeerRefused {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for (name, help, counts) in [
            (
                "scf_peer_connections_refused",
                "Raft connections closed by the transport, by reason",
                self.0.connections(),
            ),
            (
                "scf_peer_messages_refused",
                "Raft messages refused by the replica's guard, by reason",
                self.0.messages(),
            ),
        ] {
            let mut family =
                encoder.encode_descriptor(name, help, None, ConstCounter::<u64>::TYPE)?;
            for (reason, count) in counts {
                let labels = [("reason", reason)];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(count).encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition names every family the docs list, with the sample lines operators and the
    /// tests grep for.
    #[test]
    fn the_exposition_is_prometheus_text() {
        let metrics = Metrics::new(Arc::new(PeerRefusals::default()));
        metrics.request("submit", 200, Duration::from_millis(3));
        metrics.request("submit", 200, Duration::from_secs(20));
        metrics.outcome("applied");
        metrics.refused("rate_limited");
        metrics.error("bad_signature");
        metrics.batch(50);
        metrics.batch(0);
        let status = Status {
            id: 1,
            role: crate::node::RaftRole::Leader,
            observer: false,
            leader_id: 1,
            term: 7,
            commit_index: 40,
            applied_index: 39,
            height: 12,
            last_block_hash: Vec::new(),
            state_hash: Vec::new(),
            snapshots_installed: 0,
        };
        let text = metrics.render(Some(&status));
        for line in [
            "# TYPE scf_http_requests_total counter",
            "scf_http_requests_total{route=\"submit\",status=\"200\"} 2",
            "# TYPE scf_http_request_seconds histogram",
            "scf_http_request_seconds_bucket{route=\"submit\",le=\"0.005\"} 1",
            "scf_http_request_seconds_bucket{route=\"submit\",le=\"10\"} 1",
            "scf_http_request_seconds_bucket{route=\"submit\",le=\"+Inf\"} 2",
            "scf_http_request_seconds_count{route=\"submit\"} 2",
            "scf_transactions_total{outcome=\"applied\"} 1",
            "scf_submit_batch_requests_total{txs_le=\"64\"} 1",
            "scf_submit_batch_requests_total{txs_le=\"1\"} 1",
            "scf_http_errors_total{code=\"bad_signature\"} 1",
            "scf_http_refused_total{limit=\"rate_limited\"} 1",
            "scf_peer_connections_refused_total{reason=\"handshake\"} 0",
            "scf_peer_messages_refused_total{reason=\"not_a_member\"} 0",
            "# TYPE scf_raft_term gauge",
            "scf_raft_term 7",
            "scf_raft_applied_index 39",
            "scf_ledger_height 12",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        // A stopped replica has no raft figures.
        assert!(!metrics.render(None).contains("scf_raft_term"));
    }
}
