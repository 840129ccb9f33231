//! The simulator's report: the JSON of the interface contract plus a human table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::Stats;

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

impl std::fmt::Display for LatencyMs {
    /// `p50 / p90 / p99 / max ms`, as the reports' tables show them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} / {:.2} / {:.2} / {:.2} ms", self.p50, self.p90, self.p99, self.max)
    }
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
    /// How the run was made: `cluster` (scf-node processes over HTTP) or `in-process` (the
    /// state machine alone).
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
    /// Blocks built in the window (against a cluster: whose ledger time is in the window).
    pub blocks: u64,
    /// Mean transactions per block.
    pub mean_block_txs: f64,
    /// Violations found by the invariant checker (empty when `invariants_ok`).
    pub invariant_violations: Vec<String>,
    /// The first unexpected outcomes, for diagnosis.
    pub unexpected: Vec<String>,
    /// Against a cluster: closed loop (requests in flight) or open loop (offered rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<String>,
    /// Against a cluster: one transaction per request, or batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission: Option<String>,
    /// Open loop: transactions due in the window that were not sent (every life waited for an
    /// outcome, or too many requests were unanswered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsent: Option<u64>,
    /// Against a cluster: the height up to which this process replayed the chain it read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_height: Option<u64>,
    /// Against a cluster: the observer's own `/v1/audit/verify` (links and every signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_ok: Option<bool>,
}

impl Report {
    /// The measured window's counts, latency and blocks from `stats` over `window_s`; every field
    /// that depends on how the run was made is empty (nothing healthy), for `run` and
    /// `run --in-process` to fill with struct update syntax.
    pub fn of_window(stats: Stats, window_s: f64) -> Self {
        Self {
            duration_s: window_s,
            submitted: stats.submitted,
            applied: stats.applied,
            rejected: stats.rejected,
            errors: stats.errors,
            throughput_tps: stats.applied as f64 / window_s,
            latency_ms: stats.latency(),
            invariants_ok: false,
            replicas_agree: false,
            nodes: Vec::new(),
            mode: String::new(),
            signing: String::new(),
            seed: 0,
            rejections_by_reason: stats.rejections,
            bad_submitted: stats.bad_submitted,
            bad_rejected_as_expected: stats.bad_ok,
            lives_completed: 0,
            blocks: stats.blocks,
            mean_block_txs: mean_block_txs(stats.submitted, stats.blocks),
            invariant_violations: Vec::new(),
            unexpected: stats.unexpected,
            load: None,
            submission: None,
            unsent: None,
            replayed_height: None,
            audit_ok: None,
        }
    }

    /// Whether the run found nothing wrong: invariants held, replicas agree, the observer's
    /// audit (if run) passed, and every transaction got its expected outcome.
    pub fn healthy(&self) -> bool {
        self.invariants_ok
            && self.replicas_agree
            && self.errors == 0
            && self.audit_ok != Some(false)
    }

    /// The human report.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<28} {v}\n"));
        line("mode", self.mode.clone());
        line("signing", self.signing.clone());
        if let Some(load) = &self.load {
            line("load", load.clone());
        }
        if let Some(submission) = &self.submission {
            line("submission", submission.clone());
        }
        line("seed", self.seed.to_string());
        line("measured window", format!("{:.1} s", self.duration_s));
        line("submitted", self.submitted.to_string());
        line("applied", self.applied.to_string());
        line("rejected", self.rejected.to_string());
        line("errors (unexpected)", self.errors.to_string());
        line("throughput", format!("{:.0} applied tx/s", self.throughput_tps));
        line("latency p50/p90/p99/max", self.latency_ms.to_string());
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
        if let Some(unsent) = self.unsent {
            line("unsent (open loop, behind)", unsent.to_string());
        }
        if let Some(height) = self.replayed_height {
            line("chain replayed here to", format!("height {height}"));
        }
        if let Some(ok) = self.audit_ok {
            line("observer audit", if ok { "ok".into() } else { "FAILED".into() });
        }
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

/// Mean transactions per block (0 without blocks).
pub fn mean_block_txs(txs: u64, blocks: u64) -> f64 {
    if blocks > 0 { txs as f64 / blocks as f64 } else { 0.0 }
}
