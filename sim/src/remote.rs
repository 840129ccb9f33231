//! The run against a cluster: the workload submitted over HTTP to real `scf-node` processes,
//! then the cluster checked from the outside.
//!
//! One task owns the [`Workload`] and keeps requests in flight: in closed loop a fixed number
//! (the next is sent when one is answered), in open loop at a fixed rate whatever the answers
//! (latency is then measured from when each request was due, so a slow server cannot hide its
//! queue: no coordinated omission). A request carries one transaction or a batch. Before the
//! warm-up, the lives the run should need are planned and signed on every core
//! ([`RemoteConfig::presign`]), so that the client spends no CPU on signing while the server is
//! measured; a life started after they run out is signed when it starts, before its request's
//! clock starts in closed loop; in open loop the clock starts when the request was due, so
//! whatever delayed it, signing included, is measured.
//!
//! After the window the run drains what is in flight, waits until every replica reaches the same
//! height, and then checks the cluster:
//! - `replicas_agree`: every node (the observer included) reports the same height, block hash
//!   and state hash, and a replay of the chain in this process reaches that same state hash.
//! - `invariants_ok`: the chain, read block by block as the workload's regulator (whose signed
//!   reads see whole blocks) from an observer, replays from genesis with the same results and
//!   hashes ([`ledger::Replayer`]: links, signatures, rules), and the domain invariants hold on
//!   the replayed state ([`crate::check`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledger::crypto::SigningKey;
use ledger::pb::{SignedTx, TxResult};
use ledger::{Genesis, query};

use crate::check::{Snapshot, check};
use crate::client::{Answer, Http, now_ms};
use crate::node_api::{
    NodeStatus, Said, audit, genesis_of, quiesce, replay_chain, request_body, said, status,
};
use crate::report::{NodeReport, Report, mean_block_txs};
use crate::stats::{Progress, Stats};
use crate::workload::{Expect, Planned, Signing, Workload, WorkloadConfig};

/// Most transactions in one setup request.
const SETUP_BATCH: usize = 500;
/// Most requests in flight in open loop; a request due beyond that is not sent (`unsent`). Each
/// request in flight holds a connection, so this stays well under a node's default
/// `http.connections_max` (1,024), beyond which the node refuses connections: a cluster that
/// cannot keep up shows as requests not sent, not as refused connections.
const OPEN_LOOP_IN_FLIGHT_MAX: usize = 512;
/// How long the replicas get to reach the same height after the last answer.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(60);
/// In closed loop, transactions are signed ahead for this many per second of warm-up and window
/// (the rate is not known before the run; this is issue #5's batched target). Past them, lives
/// are signed inline.
const PRESIGN_CLOSED_LOOP_TPS: u64 = 5_000;
/// Most transactions signed ahead by default (about 150 MB of signed transactions).
const PRESIGN_MAX: u64 = 400_000;

/// How load is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// This many requests in flight; the next is sent when one is answered.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// Requests sent at this many transactions per second, whatever the answers.
    Open {
        /// Transactions per second.
        rate: u64,
    },
}

impl Load {
    /// Most requests in flight, and in open loop the ticks at which requests of `batch` are
    /// due. Behind schedule, the due requests go at once, so the offered load stays the rate;
    /// a request due when [`OPEN_LOOP_IN_FLIGHT_MAX`] are unanswered is not sent (`unsent`).
    pub fn pacing(self, batch: usize) -> (usize, Option<tokio::time::Interval>) {
        match self {
            Load::Closed { concurrency } => (concurrency, None),
            Load::Open { rate } => {
                let every = Duration::from_secs_f64(batch as f64 / rate.max(1) as f64);
                let mut due = tokio::time::interval(every);
                due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                (OPEN_LOOP_IN_FLIGHT_MAX, Some(due))
            }
        }
    }

    /// The report's description, with what is counted (`tx/s`, `puts/s`).
    pub fn describe(self, per_second: &str) -> String {
        match self {
            Load::Closed { concurrency } => {
                format!("closed loop, {concurrency} requests in flight")
            }
            Load::Open { rate } => format!("open loop, {rate} {per_second} offered"),
        }
    }
}

/// Settings of a run against a cluster.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Every node's HTTP URL (the observers' included: they are checked too).
    pub urls: Vec<String>,
    /// The chain's registrar key (the workload registers its parties).
    pub registrar_key: SigningKey,
    /// Workload seed.
    pub seed: u64,
    /// Prefix of the workload's ids, so that runs can share a chain.
    pub namespace: String,
    /// Measured window.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// Closed or open loop.
    pub load: Load,
    /// Transactions per request: 1 sends each alone (`{"body", "signature"}`), more sends
    /// arrays.
    pub batch: usize,
    /// Show progress on stderr.
    pub progress: bool,
    /// Transactions to sign before the warm-up, so that the client spends no CPU on signing
    /// while it is measured (lives beyond them are signed inline). `None`: enough for the
    /// warm-up and the window at the offered rate (open loop) or at
    /// [`PRESIGN_CLOSED_LOOP_TPS`] (closed loop), plus the whole scripts of the lives still in
    /// flight at the end, at most [`PRESIGN_MAX`].
    pub presign: Option<u64>,
}

impl RemoteConfig {
    /// Receivable lives in flight at once. Each waits for its previous step's outcome, so enough
    /// to fill every request in flight twice over (closed loop), or two seconds of the offered
    /// rate (open loop).
    fn lives_in_flight(&self) -> usize {
        let lives = match self.load {
            Load::Closed { concurrency } => {
                concurrency.saturating_mul(self.batch).saturating_mul(2)
            }
            Load::Open { rate } => usize::try_from(rate.saturating_mul(2)).unwrap_or(usize::MAX),
        };
        lives.max(64)
    }

    /// The transactions to sign ahead. Lives start whole: besides the transactions sent in the
    /// run, the lives in flight when it ends have their scripts' rest unsent (a life holds at
    /// most about a dozen transactions: ten steps and the odd bad one).
    pub fn presign(&self) -> u64 {
        self.presign.unwrap_or_else(|| {
            let seconds = (self.warmup + self.duration).as_secs_f64();
            let rate = match self.load {
                Load::Closed { .. } => PRESIGN_CLOSED_LOOP_TPS,
                Load::Open { rate } => rate,
            };
            let unsent = self.lives_in_flight() as f64 * 12.0;
            ((rate as f64 * seconds + unsent).ceil() as u64).min(PRESIGN_MAX)
        })
    }
}

/// One request's transactions, and when its clock started.
struct Sent {
    planned: Vec<Planned>,
    clock: Instant,
}

/// Where writes go, and where they are redirected when the leader moves.
struct Writer {
    http: Http,
    url: String,
}

impl Writer {
    /// Sends a request; `single` sends a lone transaction as an object rather than an array.
    fn send(
        &self,
        sent: Sent,
        single: bool,
    ) -> impl std::future::Future<Output = (Sent, anyhow::Result<Answer>)> + use<> {
        let http = self.http.clone();
        let url = self.url.clone();
        let body = {
            let txs: Vec<&SignedTx> = sent.planned.iter().map(|p| &p.tx).collect();
            request_body(&txs, single)
        };
        async move {
            let answer = http.submit(&url, &body, true).await;
            (sent, answer)
        }
    }

    /// Follows a `leader_hint` in an answer, if it names another node.
    fn follow(&mut self, answer: &anyhow::Result<Answer>) {
        if let Ok(answer) = answer {
            if let Some(hint) = answer.body["error"]["leader_hint"].as_str() {
                if hint != self.url {
                    self.url = hint.to_owned();
                }
            }
        }
    }
}

/// The run: what is counted, and what it needs to judge an answer.
struct Driver {
    workload: Workload,
    stats: Stats,
    /// Height of every transaction this run saw applied, to tell a resubmission answered with its
    /// first outcome from a second application.
    applied_at: HashMap<Vec<u8>, u64>,
    /// Highest block height any answer named.
    highest: u64,
    window_start: Instant,
    end: Instant,
    /// The window in wall-clock ms, to tell which blocks were built in it.
    window_ms: (u64, u64),
}

impl Driver {
    /// The outcome a planned transaction got, as the workload understands outcomes.
    fn judge(&self, planned: &Planned, said: &Said) -> TxResult {
        let hash = ledger::tx::tx_hash(&planned.tx).to_vec();
        match said {
            Said::Outcome { result, height } => {
                // A resubmission is answered with its first outcome (the interface contract);
                // for a bad resubmission that is the rejection the workload expects, provided the height
                // is the first application's: the transaction was not applied again.
                let resubmission = planned.expect == Expect::Rejected("duplicate_transaction");
                if resubmission && result.applied && self.applied_at.get(&hash) == Some(height) {
                    return TxResult {
                        tx_hash: hash,
                        applied: false,
                        reject_code: "duplicate_transaction".into(),
                        reject_message: format!(
                            "answered with its first outcome (height {height})"
                        ),
                        created_ids: Vec::new(),
                    };
                }
                result.clone()
            }
            Said::Refused { code, message } => TxResult {
                tx_hash: hash,
                applied: false,
                reject_code: code.clone(),
                reject_message: message.clone(),
                created_ids: Vec::new(),
            },
            Said::Unknown(why) => TxResult {
                tx_hash: hash,
                applied: false,
                reject_code: "outcome_unknown".into(),
                reject_message: why.clone(),
                created_ids: Vec::new(),
            },
        }
    }

    /// Counts a request's answers and feeds every outcome back to the workload. Returns the
    /// first transaction that did not get its expected outcome, described.
    fn answered(&mut self, sent: &Sent, answers: Vec<Said>, setup: bool) -> Option<String> {
        let now = Instant::now();
        let latency = now.duration_since(sent.clock);
        let measuring = now >= self.window_start && now < self.end && !setup;
        let mut first_unmet = None;
        for (planned, said) in sent.planned.iter().zip(answers) {
            let result = self.judge(planned, &said);
            if let Said::Outcome { result: got, height } = &said {
                self.highest = self.highest.max(*height);
                if got.applied {
                    self.applied_at.insert(got.tx_hash.clone(), *height);
                }
            }
            let met = self.workload.observe(planned, &result);
            if !met && first_unmet.is_none() {
                first_unmet = Some(format!("{}: {said:?}", planned.kind));
            }
            if let Said::Unknown(why) = &said {
                // Not a rejection: nobody knows whether it was applied (the checks after the
                // run see the chain as it is either way).
                self.stats.error(format!("{}: no outcome: {why}", planned.kind));
                continue;
            }
            if measuring {
                self.stats.record(planned, &result, met, latency);
            } else if !met && !setup {
                self.stats.unexpected_outcome(planned, &result, "warm-up");
            }
        }
        first_unmet
    }

    /// Up to `count` transactions to send now.
    fn take(&mut self, count: usize) -> Vec<Planned> {
        let now = now_ms();
        std::iter::from_fn(|| self.workload.next(now)).take(count).collect()
    }
}

/// Runs the workload against the cluster at `config.urls` and checks it.
pub async fn run(config: &RemoteConfig) -> anyhow::Result<Report> {
    if config.urls.is_empty() {
        bail!("no node to run against");
    }
    if config.batch == 0 {
        bail!("a request carries at least one transaction");
    }
    let http = Http::new(Duration::from_secs(30));
    let mut statuses = Vec::new();
    for url in &config.urls {
        statuses.push(status(&http, url).await.with_context(|| format!("asking {url}"))?);
    }
    let genesis = genesis_of(&statuses[0].1)?;
    for (node, body) in &statuses[1..] {
        let theirs = genesis_of(body)?;
        if theirs.chain_id != genesis.chain_id || theirs.time_ms != genesis.time_ms {
            bail!(
                "{} is on chain {:?}, {} on {:?}",
                statuses[0].0.url,
                genesis.chain_id,
                node.url,
                theirs.chain_id
            );
        }
    }
    if config.registrar_key.public_key() != genesis.registrar_public_key {
        bail!("the registrar key given is not this chain's registrar (see /v1/status genesis)");
    }
    let write_url = statuses
        .iter()
        .find(|(node, _)| node.role == "leader")
        .or_else(|| statuses.iter().find(|(node, _)| node.role != "observer"))
        .map(|(node, _)| node.url.clone())
        .context("no voter among the targets: observers take no writes")?;

    let mut workload_config = WorkloadConfig::new(config.seed, &genesis.chain_id);
    workload_config.namespace = config.namespace.clone();
    workload_config.registrar_key = Some(config.registrar_key.clone());
    workload_config.lives_in_flight = config.lives_in_flight();
    let mut writer = Writer { http: http.clone(), url: write_url };
    let single = config.batch == 1;
    let mut driver = Driver {
        workload: Workload::new(workload_config),
        stats: Stats::new()?,
        applied_at: HashMap::new(),
        highest: 0,
        window_start: Instant::now(),
        end: Instant::now(),
        window_ms: (0, 0),
    };

    // The cast and its credit lines, phase by phase, before the clock starts.
    for phase in driver.workload.setup(now_ms()) {
        let mut phase = phase.into_iter().peekable();
        while phase.peek().is_some() {
            let planned: Vec<Planned> = phase.by_ref().take(SETUP_BATCH).collect();
            let (sent, answer) = writer.send(Sent { planned, clock: Instant::now() }, false).await;
            let answers = said(answer, sent.planned.len());
            if let Some(unmet) = driver.answered(&sent, answers, true) {
                bail!("setting up the workload's parties and credit lines failed: {unmet}");
            }
        }
    }

    // Every life the warm-up and the window should need, signed now, on every core.
    let presign = config.presign();
    let mut presign_s = 0.0;
    if presign > 0 {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if config.progress {
            eprintln!("scf-sim: signing {presign} transactions ahead, on {threads} threads");
        }
        let started = Instant::now();
        let mut workload = driver.workload;
        let now = now_ms();
        driver.workload = tokio::task::spawn_blocking(move || {
            workload.prepare(presign, now, threads);
            workload
        })
        .await
        .context("signing ahead failed")?;
        presign_s = started.elapsed().as_secs_f64();
    }

    let mut progress = Progress::new(config.progress, config.warmup, config.duration);
    driver.window_start = Instant::now() + config.warmup;
    driver.end = driver.window_start + config.duration;
    let window_start_ms = now_ms() + u64::try_from(config.warmup.as_millis()).unwrap_or(0);
    driver.window_ms = (
        window_start_ms,
        window_start_ms + u64::try_from(config.duration.as_millis()).unwrap_or(0),
    );
    let end = tokio::time::Instant::from_std(driver.end);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut show = tokio::time::interval(progress.every());
    let (concurrency, mut due) = config.load.pacing(config.batch);
    let mut unsent: u64 = 0;
    let mut stopping = false;
    loop {
        if !stopping && due.is_none() {
            while in_flight.len() < concurrency {
                let planned = driver.take(config.batch);
                if planned.is_empty() {
                    break;
                }
                in_flight.spawn(writer.send(Sent { planned, clock: Instant::now() }, single));
            }
            if in_flight.is_empty() {
                bail!("the workload has nothing to submit and nothing in flight");
            }
        }
        if stopping && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some(joined) = in_flight.join_next() => {
                let (sent, answer) = joined.context("a request's task failed")?;
                writer.follow(&answer);
                let answers = said(answer, sent.planned.len());
                driver.answered(&sent, answers, false);
            }
            tick = async { due.as_mut().expect("open loop").tick().await },
                if due.is_some() && !stopping =>
            {
                let planned = if in_flight.len() < concurrency {
                    driver.take(config.batch)
                } else {
                    Vec::new()
                };
                if planned.is_empty() {
                    // Every life waits for an outcome, or too many requests are unanswered:
                    // the due request is not sent, and the report counts it.
                    if Instant::now() >= driver.window_start {
                        unsent += config.batch as u64;
                    }
                } else {
                    in_flight.spawn(writer.send(Sent { planned, clock: tick.into_std() }, single));
                }
            }
            _ = show.tick() => progress.show(&driver.stats, in_flight.len()),
            () = tokio::time::sleep_until(end), if !stopping => stopping = true,
        }
    }
    progress.show(&driver.stats, 0);
    progress.finish();

    let checked = check_cluster(&http, config, &genesis, &driver).await?;
    let window_s = config.duration.as_secs_f64();
    let mut stats = driver.stats;
    let submission = if single {
        "single (one transaction per request)".to_owned()
    } else {
        format!("batches of up to {} transactions per request", config.batch)
    };
    let mut unexpected = std::mem::take(&mut stats.unexpected);
    unexpected.extend(checked.notes);
    Ok(Report {
        invariants_ok: checked.violations.is_empty(),
        replicas_agree: checked.replicas_agree,
        nodes: checked.nodes,
        mode: "cluster".into(),
        signing: describe_signing(driver.workload.signing(), presign_s, config.load),
        seed: config.seed,
        lives_completed: driver.workload.completed_lives(),
        blocks: checked.window_blocks,
        mean_block_txs: mean_block_txs(checked.window_block_txs, checked.window_blocks),
        invariant_violations: checked.violations,
        unexpected,
        load: Some(config.load.describe("tx/s")),
        submission: Some(submission),
        unsent: matches!(config.load, Load::Open { .. }).then_some(unsent),
        replayed_height: Some(checked.replayed_height),
        audit_ok: checked.audit_ok,
        ..Report::of_window(stats, window_s)
    })
}

/// The report's `signing`: how many of the transactions sent were signed ahead, and how the
/// others were.
fn describe_signing(signing: Signing, presign_s: f64, load: Load) -> String {
    let sent = signing.prepared_used + signing.inline_used;
    let mut text = format!(
        "{} of the {sent} transactions sent were signed before the warm-up ({} signed in \
         {presign_s:.1} s, {} lives)",
        signing.prepared_used, signing.prepared, signing.prepared_lives
    );
    if signing.prepared_dropped > 0 {
        text += &format!("; {} were dropped unsent, too old", signing.prepared_dropped);
    }
    if signing.inline_used > 0 {
        text += &format!("; {} were signed inline, in the client, ", signing.inline_used);
        text += match load {
            Load::Closed { .. } => "before each request's clock started",
            Load::Open { .. } => "after each request was due (their latency includes it)",
        };
    }
    text
}

/// Everything the run checks once the cluster is quiet.
struct Checked {
    nodes: Vec<NodeReport>,
    replicas_agree: bool,
    violations: Vec<String>,
    replayed_height: u64,
    audit_ok: Option<bool>,
    /// Blocks built in the measured window, and their transactions.
    window_blocks: u64,
    window_block_txs: u64,
    notes: Vec<String>,
}

async fn check_cluster(
    http: &Http,
    config: &RemoteConfig,
    genesis: &Genesis,
    driver: &Driver,
) -> anyhow::Result<Checked> {
    let mut notes = Vec::new();
    let (statuses, stuck) = quiesce(http, &config.urls, driver.highest, QUIESCE_TIMEOUT).await;
    notes.extend(stuck.clone());
    let nodes: Vec<NodeReport> = statuses
        .iter()
        .map(|n| NodeReport {
            url: n.url.clone(),
            role: n.role.clone(),
            height: n.height,
            state_hash: n.state_hash.clone(),
        })
        .collect();

    // The chain from an observer (a regulator's replica), else from the first node.
    let source = statuses
        .iter()
        .find(|n| n.role == "observer")
        .or(statuses.first())
        .map(|n| n.url.clone())
        .context("no node answered")?;
    let regulator = &driver.workload.cast().regulator;
    let (mut window_blocks, mut window_block_txs) = (0, 0);
    let target = statuses.first().map_or(0, |n| n.height);
    let reader = (regulator.party_id.as_str(), &regulator.key);
    let (replayed, mut violations) =
        replay_chain(http, &source, reader, genesis, target, |block| {
            let header = block.header.as_ref().expect("built with one");
            if (driver.window_ms.0..driver.window_ms.1).contains(&header.time_ms) {
                window_blocks += 1;
                window_block_txs += u64::from(header.tx_count);
            }
        })
        .await?;
    let tip = query::tip(&replayed)?;
    let replayed_height = tip.as_ref().map_or(0, |t| t.height);
    let replayed_hash = tip.map(|t| hex::encode(&t.state_hash)).unwrap_or_default();
    if violations.is_empty() {
        violations.extend(check(&Snapshot::from_store(&replayed)?));
    }

    let first = statuses.first();
    let same = |n: &NodeStatus| {
        first.is_some_and(|f| {
            n.height == f.height
                && n.last_block_hash == f.last_block_hash
                && n.state_hash == f.state_hash
        })
    };
    let replicas_agree = stuck.is_none()
        && statuses.len() == config.urls.len()
        && statuses.iter().all(same)
        && first.is_some_and(|f| f.height == replayed_height && f.state_hash == replayed_hash);
    if !replicas_agree {
        notes.push(format!(
            "replicas: {:?}; replayed here: height {replayed_height} state {replayed_hash}",
            statuses
                .iter()
                .map(|n| format!("{} height {} state {}", n.url, n.height, n.state_hash))
                .collect::<Vec<_>>()
        ));
    }

    // The observer's own audit: it re-verifies links and every signature itself.
    let audit_ok = audit(http, &source, &mut notes).await;
    Ok(Checked {
        nodes,
        replicas_agree,
        violations,
        replayed_height,
        audit_ok,
        window_blocks,
        window_block_txs,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(load: Load, batch: usize, presign: Option<u64>) -> RemoteConfig {
        RemoteConfig {
            urls: vec!["http://127.0.0.1:1".into()],
            registrar_key: SigningKey::from_seed("test"),
            seed: 1,
            namespace: String::new(),
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(5),
            load,
            batch,
            progress: false,
            presign,
        }
    }

    // Goal: by default the transactions signed ahead cover the warm-up and the window at the
    // rate (5,000 tx/s in closed loop) plus whole scripts for every life still in flight at the
    // end (lives start whole), within the cap; an explicit --presign is taken as it is.
    #[test]
    fn transactions_signed_ahead_cover_the_run_and_the_lives_in_flight() {
        let closed = config(Load::Closed { concurrency: 64 }, 1, None);
        assert_eq!(closed.lives_in_flight(), 128);
        assert_eq!(closed.presign(), 35 * 5_000 + 128 * 12);
        let open = config(Load::Open { rate: 3_000 }, 10, None);
        assert_eq!(open.lives_in_flight(), 6_000);
        assert_eq!(open.presign(), 35 * 3_000 + 6_000 * 12);
        let huge = config(Load::Open { rate: 100_000 }, 1, None);
        assert_eq!(huge.presign(), PRESIGN_MAX);
        assert_eq!(config(Load::Open { rate: 100_000 }, 1, Some(0)).presign(), 0);
    }
}
