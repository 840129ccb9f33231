//! Crash points at the dangerous places of the replica (raft-node's `crash_point!`): a node
//! aborts there under load, restarts, and the cluster keeps every acknowledged transaction and
//! its invariants, every replica ending in the same state. Needs an `scf-node` with crash points:
//! `scripts/test.sh` builds the workspace's tests with `--features api/failpoints`.

use tests::{Failpoint, Scenario, run};

/// Entries between log compactions in these runs.
const COMPACT_AFTER: u64 = 200;
/// How far the leader gets ahead of an observer kept down: past two compactions, so that what
/// the observer lacks is gone from the leader's log and it needs a snapshot.
const SNAPSHOT_LAG: u64 = 2 * COMPACT_AFTER + 50;

/// One cluster at a time: these run in one test binary, and each starts four nodes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_at(name: &'static str, action: &'static str, follower: bool, lag_entries: u64) {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut scenario = Scenario::new("failpoint", 12, Vec::new());
    scenario.failpoint = Some(Failpoint { name, action, follower, lag_entries });
    // A short log, so that a node kept down needs a snapshot to catch up.
    scenario.extra_toml = format!("[raft]\ncompact_after_entries = {COMPACT_AFTER}\n");
    let summary = run(&scenario).await.unwrap_or_else(|e| panic!("{name}: {e:#}"));
    println!("{name}, seed {}: {summary}", scenario.seed);
    assert!(
        summary.schedule.iter().any(|line| line.contains(&format!("aborted at {name}"))),
        "{name} was not reached: {:?}",
        summary.schedule
    );
    assert!(summary.verdict.acknowledged > 50, "too little got through: {summary}");
}

// Goal: a follower that dies with log entries written but its hard state not loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_before_hard_state() {
    crash_at("raft::append::before_hard_state", "20*off->return", true, 0).await;
}

// Goal: a follower that dies after executing a batch but before writing its block and applied
// index re-applies it on restart, to the same state as everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_before_store() {
    crash_at("raft::apply::before_store", "20*off->return", true, 0).await;
}

// Goal: a follower that dies after writing a block, before it reports the outcome (it has no
// proposers waiting: followers forward writes), comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_before_outcome() {
    crash_at("raft::apply::before_outcome", "20*off->return", true, 0).await;
}

// Goal: an observer that missed more than the leader keeps of its log dies receiving the
// snapshot, before writing it; restarted, it installs one and agrees with everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_before_install() {
    crash_at("raft::snapshot::before_install", "return", false, SNAPSHOT_LAG).await;
}

// Goal: the same, dying right after the snapshot was written and before the node moved on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_after_install() {
    crash_at("raft::snapshot::after_install", "return", false, SNAPSHOT_LAG).await;
}
