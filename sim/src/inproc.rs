//! The in-process run: the workload against the ledger state machine in this process, with no
//! network and no Raft.
//!
//! This is `scf-sim run --in-process`: it measures the cost of the state machine itself (decoding, signature verification, the rules, block building) and
//! checks its invariants and its determinism. The "leader" applies batches as they come; after
//! the measured window a "follower" replays the same batches from genesis and an "observer"
//! re-verifies the leader's chain (hash links and every signature) and replays it too. The three
//! must end at the same height with the same state hash. Nothing here is durable.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ledger::pb::{Block, SignedTx};
use ledger::{ChainVerifier, Genesis, Ledger, MemStore, query};

use crate::check::{Snapshot, check};
use crate::report::{NodeReport, Report};
use crate::stats::{Progress, Stats};
use crate::workload::{Planned, Workload, WorkloadConfig, party_key};

/// Chain id of simulated ledgers.
pub const SIM_CHAIN_ID: &str = "scf-sim";

/// Settings of an in-process run.
#[derive(Debug, Clone)]
pub struct InProcessConfig {
    /// Workload seed.
    pub seed: u64,
    /// Measured window.
    pub duration: Duration,
    /// Unmeasured warm-up before the window.
    pub warmup: Duration,
    /// Most transactions per block.
    pub batch_max: usize,
    /// Most receivable lives in flight (the closed-loop concurrency).
    pub lives_in_flight: usize,
    /// Show progress on stderr.
    pub progress: bool,
}

fn wall_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the workload in process and returns the report.
pub fn run(config: &InProcessConfig) -> anyhow::Result<Report> {
    let mut workload_config = WorkloadConfig::new(config.seed, SIM_CHAIN_ID);
    workload_config.lives_in_flight = config.lives_in_flight;
    let registrar = party_key(config.seed, ledger::chain::REGISTRAR_ID);
    let genesis = Genesis {
        chain_id: SIM_CHAIN_ID.into(),
        registrar_public_key: registrar.public_key(),
        time_ms: wall_ms(),
    };
    let ledger = Ledger::new(genesis.clone());
    let mut store = MemStore::new();
    store.commit(&ledger.genesis_writes());
    let mut workload = Workload::new(workload_config);
    // Every batch as applied, for the replicas to replay.
    let mut log: Vec<(u64, Vec<SignedTx>)> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();

    let mut apply =
        |store: &mut MemStore, time_ms: u64, txs: Vec<SignedTx>| -> anyhow::Result<Block> {
            let applied =
                ledger.apply_block(store, time_ms, txs.clone()).context("applying a block")?;
            store.commit(&applied.writes);
            log.push((time_ms, txs));
            blocks.push(applied.block.clone());
            Ok(applied.block)
        };

    for phase in workload.setup(wall_ms()) {
        let txs: Vec<SignedTx> = phase.iter().map(|p| p.tx.clone()).collect();
        let block = apply(&mut store, wall_ms(), txs)?;
        for (planned, result) in phase.iter().zip(&block.results) {
            if !workload.observe(planned, result) {
                bail!("setup transaction {} was rejected: {}", planned.kind, result.reject_message);
            }
        }
    }

    let mut stats = Stats::new()?;
    let started = Instant::now();
    let window_start = started + config.warmup;
    let end = window_start + config.duration;
    let mut last_progress = started;
    let mut progress = Progress::new(config.progress, config.warmup, config.duration);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let measuring = now >= window_start;
        let time_ms = wall_ms();
        let mut batch: Vec<(Planned, Instant)> = Vec::with_capacity(config.batch_max);
        while batch.len() < config.batch_max {
            match workload.next(time_ms) {
                Some(planned) => batch.push((planned, Instant::now())),
                None => break,
            }
        }
        if batch.is_empty() {
            bail!("the workload has nothing to submit and nothing in flight");
        }
        let txs = batch.iter().map(|(p, _)| p.tx.clone()).collect();
        let block = apply(&mut store, time_ms, txs)?;
        let done = Instant::now();
        if measuring {
            stats.blocks += 1;
        }
        for ((planned, submitted_at), result) in batch.iter().zip(&block.results) {
            let met = workload.observe(planned, result);
            if measuring {
                stats.record(planned, result, met, done.duration_since(*submitted_at));
            } else if !met {
                // Not counted in the window's figures, but a wrong outcome is an error whenever
                // it happens.
                stats.unexpected_outcome(planned, result, "warm-up");
            }
        }
        if now.duration_since(last_progress) >= progress.every() {
            last_progress = now;
            progress.show(&stats, 0);
        }
    }
    progress.finish();
    let window_s = config.duration.as_secs_f64();
    let lives_completed = workload.completed_lives();

    let violations = check(&Snapshot::from_store(&store)?);
    let leader_tip = query::tip(&store)?.context("leader has no tip")?;
    let mut nodes = vec![NodeReport {
        url: "in-process://leader".into(),
        role: "leader".into(),
        height: leader_tip.height,
        state_hash: hex::encode(&leader_tip.state_hash),
    }];

    // The follower replays the log of batches from genesis, as a Raft follower would.
    let mut follower = MemStore::new();
    follower.commit(&ledger.genesis_writes());
    for (time_ms, txs) in &log {
        let applied = ledger.apply_block(&follower, *time_ms, txs.clone())?;
        follower.commit(&applied.writes);
    }
    let tip = query::tip(&follower)?.context("follower has no tip")?;
    nodes.push(NodeReport {
        url: "in-process://follower".into(),
        role: "follower".into(),
        height: tip.height,
        state_hash: hex::encode(&tip.state_hash),
    });

    // The observer verifies every block's links and signatures, then replays them.
    let mut verifier = ChainVerifier::new(&genesis, true);
    let observer_ok = blocks.iter().try_for_each(|b| verifier.verify_block(b).map(|_| ()));
    let observer = ledger::replay_chain(&genesis, &blocks);
    let (observer_height, observer_hash) = match (&observer_ok, &observer) {
        (Ok(()), Ok(state)) => {
            let tip = query::tip(state)?.context("observer has no tip")?;
            (tip.height, hex::encode(&tip.state_hash))
        }
        (Err(e), _) | (_, Err(e)) => {
            stats.unexpected.push(format!("observer: {e}"));
            (0, String::new())
        }
    };
    nodes.push(NodeReport {
        url: "in-process://observer".into(),
        role: "observer".into(),
        height: observer_height,
        state_hash: observer_hash,
    });
    let replicas_agree =
        nodes.iter().all(|n| n.height == nodes[0].height && n.state_hash == nodes[0].state_hash)
            && follower.entries() == store.entries();

    Ok(Report {
        invariants_ok: violations.is_empty(),
        replicas_agree,
        nodes,
        mode: "in-process".into(),
        signing: "inline (each life is planned and signed whole when it starts, on the thread that applies the blocks)"
            .into(),
        seed: config.seed,
        lives_completed,
        invariant_violations: violations,
        ..Report::of_window(stats, window_s)
    })
}
