//! Crashes, pauses and partitions of every kind, the leader struck half of the time, under the
//! supply-chain workload: nothing acknowledged is lost, nothing is applied twice, the invariants
//! hold, and every replica ends in the same state. `SCF_FAULT_SECONDS` lengthens the window
//! (the soak), `SCF_FAULT_SEED` reruns a run.

use tests::nemesis::Kind;
use tests::{Scenario, run};

// Goal: the whole system keeps every acknowledged transaction and its invariants through a
// seeded mix of kill -9 and restart, SIGSTOP and SIGCONT, and isolation of a node (leader
// included, observer included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_pauses_and_partitions_lose_nothing() {
    let scenario = Scenario::new("nemesis", 30, vec![Kind::Crash, Kind::Pause, Kind::Isolate]);
    let summary = run(&scenario).await.unwrap_or_else(|e| panic!("{e:#}"));
    println!("seed {}: {summary}", scenario.seed);
    for line in &summary.schedule {
        println!("  {line}");
    }
    let (crashes, pauses, isolations) = summary.faults;
    assert!(crashes + pauses + isolations >= 5, "too few faults: {:?}", summary.schedule);
    assert!(summary.verdict.acknowledged > 100, "too little got through: {summary}");
}
