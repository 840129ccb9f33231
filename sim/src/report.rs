//! The simulator's report: the JSON of the interface contract plus a human table.

use std::collections::BTreeMap;

use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// One replica as seen at the end of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// Where it is (`in-process://...` for in-process replicas).
    pub url: String,
    /// `leader`, `follower` or `observer`.
    pub role: String,
    /// Height of its last block.
    pub height: u64,
    /// Its state hash at that height, hex.
    pub state_hash: String,
}

/// The JSON report (`../shared/spec/interface.md`), with extra fields after the contract's.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Length of the measured window.
    pub duration_s: f64,
    /// Transactions submitted in the measured window.
    pub submitted: u64,
    /// Of those, applied.
    pub applied: u64,
    /// Of those, rejected.
    pub rejected: u64,
    /// Transactions whose outcome was not the expected one (warm-up included), plus transport
    /// errors.
    pub errors: u64,
    /// Applied transactions per second of the measured window.
    pub throughput_tps: f64,
    /// Submission-to-outcome latency.
    pub latency_ms: LatencyMs,
    /// Whether every domain invariant held on the final state.
    pub invariants_ok: bool,
    /// Whether every replica reached the same state hash at the same height.
    pub replicas_agree: bool,
    /// Every replica.
    pub nodes: Vec<NodeReport>,
    /// How the run was made: `in-process` (no cluster yet) or `cluster`.
    pub mode: String,
    /// Where transactions were signed relative to the measured window.
    pub signing: String,
    /// The workload seed.
    pub seed: u64,
    /// Rejections in the window by code.
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// Deliberately bad transactions in the window, and how many got their expected code.
    pub bad_submitted: u64,
    /// Of `bad_submitted`, rejected with the expected code.
    pub bad_rejected_as_expected: u64,
    /// Receivable lives completed (ordered through settled) during the whole run, warm-up
    /// included.
    pub lives_completed: u64,
    /// Blocks applied in the window and their mean size.
    pub blocks: u64,
    /// Mean transactions per block.
    pub mean_block_txs: f64,
    /// Violations found by the invariant checker (empty when `invariants_ok`).
    pub invariant_violations: Vec<String>,
    /// The first unexpected outcomes, for diagnosis.
    pub unexpected: Vec<String>,
}

impl Report {
    /// The human report.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<28} {v}\n"));
        line("mode", format!("{} (signing {})", self.mode, self.signing));
        line("seed", self.seed.to_string());
        line("measured window", format!("{:.1} s", self.duration_s));
        line("submitted", self.submitted.to_string());
        line("applied", self.applied.to_string());
        line("rejected", self.rejected.to_string());
        line("errors (unexpected)", self.errors.to_string());
        line("throughput", format!("{:.0} applied tx/s", self.throughput_tps));
        line(
            "latency p50/p90/p99/max",
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} ms",
                self.latency_ms.p50, self.latency_ms.p90, self.latency_ms.p99, self.latency_ms.max
            ),
        );
        line("blocks", format!("{} (mean {:.1} tx/block)", self.blocks, self.mean_block_txs));
        line("lives completed", self.lives_completed.to_string());
        line(
            "bad tx rejected as expected",
            format!("{} of {}", self.bad_rejected_as_expected, self.bad_submitted),
        );
        for (code, n) in &self.rejections_by_reason {
            line(&format!("  rejected: {code}"), n.to_string());
        }
        line(
            "invariants",
            if self.invariants_ok {
                "ok".into()
            } else {
                format!("VIOLATED: {:?}", self.invariant_violations)
            },
        );
        line("replicas agree", if self.replicas_agree { "yes".into() } else { "NO".into() });
        for node in &self.nodes {
            line(
                &format!("  {} ({})", node.url, node.role),
                format!(
                    "height {} state {}",
                    node.height,
                    &node.state_hash[..16.min(node.state_hash.len())]
                ),
            );
        }
        for u in &self.unexpected {
            line("unexpected", u.clone());
        }
        out
    }
}
