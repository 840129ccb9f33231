//! The clients: the simulator's supply-chain workload (transfers by split, discounts,
//! settlements, and its deliberately bad transactions) submitted to the voters while the nemesis
//! works, each attempt recorded in the [`History`].
//!
//! A client does what a careful real one must: an answer that proposed nothing (`not_leader`,
//! `overloaded`, `rate_limited`, ...) or no outcome at all (no answer, a timeout, a 5xx other
//! than 503) is followed by a resubmission of the *same* signed
//! transaction, to the next voter, until an outcome arrives or [`DriverConfig::give_up`]
//! passes. Resubmitting is safe by the interface contract (a second copy is never applied
//! twice), and the checker holds the cluster to it. A life advances only on an outcome; one whose
//! step never got one ends there, and the checker resolves that step by its hash. A seeded share
//! of clients walk away at their first attempt without an outcome, so that such lookups happen
//! in every run with faults.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::pb::TxResult;
use sim::client::{Http, now_ms};
use sim::node_api::{Said, request_body, said};
use sim::workload::{Expect, Planned, Workload};
use tokio::task::JoinSet;

use crate::history::{Attempt, History, Outcome};

/// Codes of refusals that proposed nothing and say to retry: they say nothing of whether a
/// later attempt applies the transaction.
pub const RETRY_CODES: &[&str] = &[
    "not_leader",
    "leader_changed",
    "no_leader",
    "overloaded",
    "rate_limited",
    "too_many_connections",
    "replica_stopped",
];

/// How the clients run.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The voters' URLs; attempts go round them.
    pub urls: Vec<String>,
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// How long a transaction is resubmitted before its outcome is left to the checker.
    pub give_up: Duration,
    /// Share (percent) of transactions whose client walks away at the first attempt without an
    /// outcome, leaving it to the checker to resolve by lookup (as a client that crashed
    /// would); their lives end there.
    pub abandon_percent: u32,
    /// Seed of those choices.
    pub seed: u64,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Driven {
    /// Transactions submitted (each counted once, however many attempts it took).
    pub transactions: u64,
    /// Attempts after the first.
    pub resubmissions: u64,
    /// Transactions refused for good before any block, by code (the workload's forged
    /// signatures, say); one given up on after retryable refusals is an unknown outcome.
    pub refused: BTreeMap<String, u64>,
    /// Outcomes that were not what the workload expected, described.
    pub unmet: Vec<String>,
    /// Applied transactions by the height the clients were told.
    pub applied_at: HashMap<Vec<u8>, u64>,
}

/// Submits `planned` until it has an outcome, a refusal that is final, or `give_up` passes.
async fn conclude(
    http: Http,
    config: Arc<DriverConfig>,
    history: Arc<History>,
    started: Instant,
    first_node: usize,
    planned: Planned,
    abandon: bool,
) -> (Planned, Said, u32) {
    let tx_hash = hex::encode(ledger::tx::tx_hash(&planned.tx));
    let body = request_body(&[&planned.tx], true);
    let since = |at: Instant| u64::try_from(at.duration_since(started).as_millis()).unwrap_or(0);
    let deadline = Instant::now() + config.give_up;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = &config.urls[(first_node + attempt as usize) % config.urls.len()];
        let sent = Instant::now();
        let answer = http.submit(node, &body, true).await;
        let one = said(answer, 1).pop().expect("one transaction, one answer");
        history.record(Attempt {
            tx_hash: tx_hash.clone(),
            kind: planned.kind,
            attempt,
            node: node.clone(),
            sent_ms: since(sent),
            answered_ms: since(Instant::now()),
            outcome: Outcome::of(&one),
        });
        let again = match &one {
            Said::Outcome { .. } => false,
            Said::Refused { code, .. } => RETRY_CODES.contains(&code.as_str()),
            Said::Unknown(_) => true,
        };
        if !again || (abandon && matches!(one, Said::Unknown(_))) {
            return (planned, one, attempt);
        }
        if Instant::now() >= deadline {
            // Earlier attempts may have reached a log: only the chain can tell now.
            let why = format!("gave up after {attempt} attempts; the last: {one:?}");
            return (planned, Said::Unknown(why), attempt);
        }
        // Give an election or a restart time to happen before the next voter is asked.
        let backoff = Duration::from_millis(50 * u64::from(attempt.min(10)));
        tokio::time::sleep(backoff).await;
    }
}

/// The clients of one run.
pub struct Driver {
    config: Arc<DriverConfig>,
    http: Http,
    history: Arc<History>,
    started: Instant,
    next_node: usize,
    rng: sim::rng::Rng,
    /// What they saw.
    pub driven: Driven,
}

impl Driver {
    /// Clients for `config`, recording into `history`, timed from `started`.
    pub fn new(config: DriverConfig, history: Arc<History>, started: Instant) -> Self {
        let rng = sim::rng::Rng::new(config.seed);
        Self {
            rng,
            config: Arc::new(config),
            // Longer than the node's own wait for an outcome plus a forward to the leader.
            http: Http::new(Duration::from_secs(20)),
            history,
            started,
            next_node: 0,
            driven: Driven::default(),
        }
    }

    fn spawn(&mut self, tasks: &mut JoinSet<(Planned, Said, u32)>, planned: Planned, run: bool) {
        self.next_node += 1;
        let abandon = run && self.rng.percent(self.config.abandon_percent);
        self.driven.transactions += 1;
        tasks.spawn(conclude(
            self.http.clone(),
            self.config.clone(),
            self.history.clone(),
            self.started,
            self.next_node,
            planned,
            abandon,
        ));
    }

    /// The workload's setup (parties, then credit lines), every transaction applied; fails if
    /// one is not.
    pub async fn setup(&mut self, workload: &mut Workload) -> anyhow::Result<()> {
        for phase in workload.setup(now_ms()) {
            let mut tasks = JoinSet::new();
            let mut phase = phase.into_iter();
            loop {
                while tasks.len() < self.config.concurrency {
                    let Some(planned) = phase.next() else { break };
                    self.spawn(&mut tasks, planned, false);
                }
                let Some(joined) = tasks.join_next().await else { break };
                let (planned, said, attempts) = joined?;
                if !self.answered(workload, &planned, &said, attempts) {
                    anyhow::bail!("setting up the workload: {}: {said:?}", planned.kind);
                }
            }
        }
        Ok(())
    }

    /// Runs the workload until `end`, then waits for every transaction in flight to conclude.
    pub async fn run(&mut self, workload: &mut Workload, end: Instant) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            if Instant::now() < end {
                while tasks.len() < self.config.concurrency {
                    let Some(planned) = workload.next(now_ms()) else { break };
                    self.spawn(&mut tasks, planned, true);
                }
            }
            if tasks.is_empty() {
                if Instant::now() >= end {
                    return Ok(());
                }
                anyhow::bail!("the workload has nothing to submit and nothing in flight");
            }
            let until = tokio::time::Instant::from_std(end.max(Instant::now()));
            tokio::select! {
                Some(joined) = tasks.join_next() => {
                    let (planned, said, attempts) = joined?;
                    self.answered(workload, &planned, &said, attempts);
                }
                () = tokio::time::sleep_until(until), if Instant::now() < end => {}
            }
        }
    }

    /// Takes in a transaction's final answer; returns whether it met its expectation.
    fn answered(
        &mut self,
        workload: &mut Workload,
        planned: &Planned,
        said: &Said,
        attempts: u32,
    ) -> bool {
        self.driven.resubmissions += u64::from(attempts - 1);
        let hash = ledger::tx::tx_hash(&planned.tx).to_vec();
        let result = match said {
            Said::Unknown(why) => {
                // The checker looks the transaction up; its life ends here (a step must know
                // its predecessor's outcome), which frees its place for a new one.
                let unknown = TxResult {
                    tx_hash: hash,
                    applied: false,
                    reject_code: "outcome_unknown".into(),
                    reject_message: why.clone(),
                    created_ids: Vec::new(),
                };
                workload.observe(planned, &unknown);
                return false;
            }
            Said::Refused { code, message } => {
                *self.driven.refused.entry(code.clone()).or_default() += 1;
                TxResult {
                    tx_hash: hash,
                    applied: false,
                    reject_code: code.clone(),
                    reject_message: message.clone(),
                    created_ids: Vec::new(),
                }
            }
            Said::Outcome { result, height } => {
                // A resubmission is answered with its first outcome: that is the rejection the
                // workload expects when the height is the first application's.
                let resubmission = planned.expect == Expect::Rejected("duplicate_transaction");
                let first = self.driven.applied_at.get(&hash) == Some(height);
                if resubmission && result.applied && first {
                    TxResult {
                        applied: false,
                        reject_code: "duplicate_transaction".into(),
                        ..result.clone()
                    }
                } else {
                    if result.applied {
                        self.driven.applied_at.insert(hash, *height);
                    }
                    result.clone()
                }
            }
        };
        let met = workload.observe(planned, &result);
        if !met {
            self.driven.unmet.push(format!(
                "{} {}: expected {:?}, got {said:?}",
                planned.kind,
                hex::encode(&result.tx_hash),
                planned.expect
            ));
        }
        met
    }
}
