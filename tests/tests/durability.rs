//! Durability: many `kill -9` and restart cycles of the voters (the leader half of the time)
//! under load, with the observer down for all of them; nothing acknowledged is lost, and the
//! observer, restarted afterwards, catches up to the same state.

use tests::nemesis::Kind;
use tests::{Scenario, run};

// Goal: zero acknowledged transactions lost across repeated crashes of the voters, and an
// observer that missed all of it catches up (by log or by snapshot) and verifies the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_restart_cycles_lose_nothing_and_the_observer_catches_up() {
    let mut scenario = Scenario::new("durability", 30, vec![Kind::Crash]);
    scenario.strike_observers = false;
    scenario.observers_down = true;
    scenario.hold_ms = (200, 1_000);
    scenario.quiet_ms = (300, 1_000);
    let summary = run(&scenario).await.unwrap_or_else(|e| panic!("{e:#}"));
    println!("seed {}: {summary}", scenario.seed);
    for line in &summary.schedule {
        println!("  {line}");
    }
    let (crashes, _, _) = summary.faults;
    assert!(crashes >= 10, "too few kill/restart cycles: {:?}", summary.schedule);
    assert!(summary.verdict.acknowledged > 100, "too little got through: {summary}");
}
