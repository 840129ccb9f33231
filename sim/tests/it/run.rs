//! `scf-sim run` against real `scf-node` processes: a short run on a local cluster it starts
//! itself, and runs against a cluster started by `scf-sim cluster` (`--target`), checked
//! through their JSON reports.
//!
//! `scf-node` must be built next to `scf-sim` (`cargo test --release --workspace` builds both;
//! alone: `cargo build --release -p api` first). Everything listens on 127.0.0.1, and every wait
//! is bounded.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::TestDir;

use crate::common;

use common::{ClusterProcess, alive, wait_for};

fn sim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scf-sim"));
    for var in ["SCF_REGISTRAR_KEY", "SCF_URL", "SCF_CHAIN", "SCF_SIGNER", "SCF_KEY"] {
        command.env_remove(var);
    }
    command
}

/// Runs `command` to its end, at most `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if wait_for(&mut child, limit).is_none() {
        // SIGTERM: scf-sim then stops its nodes.
        common::sigterm(&mut child);
        let output = child.wait_with_output().unwrap();
        panic!("over {limit:?}:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    child.wait_with_output().unwrap()
}

/// The bad transactions' expected codes (`workload.rs`).
const ATTACK_CODES: [&str; 6] = [
    "duplicate_transaction",
    "bad_signature",
    "already_invoiced",
    "amount_exceeds_face_value",
    "not_found",
    "offer_not_open",
];

/// What every healthy report says.
fn assert_healthy(report: &Value, nodes: usize) {
    let text = serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report["mode"], "cluster", "{text}");
    assert!(report["applied"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(report["errors"], 0, "{text}");
    assert_eq!(report["invariants_ok"], true, "{text}");
    assert_eq!(report["replicas_agree"], true, "{text}");
    assert_eq!(report["audit_ok"], true, "{text}");
    let bad = report["bad_submitted"].as_u64().unwrap();
    assert!(bad > 0, "{text}");
    assert_eq!(report["bad_rejected_as_expected"].as_u64(), Some(bad), "{text}");
    let codes: BTreeSet<&str> =
        report["rejections_by_reason"].as_object().unwrap().keys().map(String::as_str).collect();
    assert!(codes.iter().all(|c| ATTACK_CODES.contains(c)), "{text}");
    assert!(codes.contains("bad_signature") && codes.contains("duplicate_transaction"), "{text}");
    assert_eq!(
        report["submitted"].as_u64(),
        Some(report["applied"].as_u64().unwrap() + report["rejected"].as_u64().unwrap()),
        "{text}"
    );
    let listed = report["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), nodes, "{text}");
    assert_eq!(listed.iter().filter(|n| n["role"] == "observer").count(), 1, "{text}");
    assert_eq!(listed.iter().filter(|n| n["role"] == "leader").count(), 1, "{text}");
    let height = &listed[0]["height"];
    assert!(listed.iter().all(|n| &n["height"] == height), "{text}");
    assert_eq!(report["replayed_height"], *height, "{text}");
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() > 0.0, "{text}");
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64(), "{text}");
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// Goal: the README's main command in short: `scf-sim run` starts 3 voters and an observer,
// drives the workload, checks the cluster, reports, and leaves no node running.
#[test]
fn run_on_its_own_local_cluster() {
    let dir = TestDir::new("sim-local");
    let cluster_dir = dir.path().join("cluster");
    let json = dir.path().join("report.json");
    let mut command = sim();
    command
        .args(["run", "--duration", "3s", "--warmup", "1s", "--concurrency", "16", "--quiet"])
        .arg("--dir")
        .arg(&cluster_dir)
        .arg("--json")
        .arg(&json);
    let output = run_bounded(command, Duration::from_secs(240));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report = read_report(&json);
    assert_healthy(&report, 4);
    assert_eq!(report["submission"], "single (one transaction per request)");
    // By default every life the run needs is signed before the warm-up (20,000 transactions:
    // 5,000 a second of warm-up and window), and nothing is signed while it is measured.
    let signing = report["signing"].as_str().unwrap();
    let (_, after) = signing.split_once("were signed before the warm-up (").expect(signing);
    let signed_ahead: u64 = after.split_once(' ').unwrap().0.parse().expect(signing);
    assert!(signed_ahead >= 20_000, "{signing}");
    assert!(!signing.contains("inline"), "{signing}");
    assert!(stdout.contains("replicas agree               yes"), "{stdout}");
    // Every node was stopped: no pid of the cluster is alive.
    let described: Value =
        serde_json::from_str(&std::fs::read_to_string(cluster_dir.join("cluster.json")).unwrap())
            .unwrap();
    for node in described["nodes"].as_array().unwrap() {
        let pid = node["pid"].as_u64().unwrap();
        assert!(!alive(pid), "scf-node {pid} outlived the run");
    }
}

// Goal: `--target` drives a running cluster, twice on the same chain (each run has its own
// ids), once closed loop with single transactions and once open loop with batches.
#[test]
fn runs_against_a_running_cluster_share_its_chain() {
    let dir = TestDir::new("sim-target");
    let cluster_dir = dir.path().join("cluster");
    let (_cluster, _) = ClusterProcess::start(Path::new(env!("CARGO_BIN_EXE_scf-sim")), dir.path());
    let described: Value =
        serde_json::from_str(&std::fs::read_to_string(cluster_dir.join("cluster.json")).unwrap())
            .unwrap();
    let urls: Vec<&str> =
        described["nodes"].as_array().unwrap().iter().map(|n| n["url"].as_str().unwrap()).collect();
    let target = urls.join(",");

    // Without the registrar key the run cannot register its parties: a clear refusal.
    let output = run_bounded(
        {
            let mut command = sim();
            command.args(["run", "--target", &target, "--duration", "1s"]);
            command
        },
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--registrar-key"));

    let runs: [&[&str]; 2] =
        [&["--concurrency", "8"], &["--rate", "400", "--batch", "10", "--presign", "0"]];
    let mut heights = Vec::new();
    for (n, load) in runs.iter().enumerate() {
        let json = dir.path().join(format!("report-{n}.json"));
        let mut command = sim();
        command
            .args(["run", "--target", &target, "--duration", "2s", "--warmup", "1s", "--quiet"])
            .args(*load)
            .arg("--registrar-key")
            .arg(cluster_dir.join("registrar.key"))
            .arg("--json")
            .arg(&json);
        let output = run_bounded(command, Duration::from_secs(180));
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report = read_report(&json);
        assert_healthy(&report, 4);
        heights.push(report["replayed_height"].as_u64().unwrap());
        if n == 1 {
            assert_eq!(report["load"], "open loop, 400 tx/s offered");
            assert!(report["submission"].as_str().unwrap().starts_with("batches of up to 10"));
            assert!(report["unsent"].is_u64());
            // --presign 0: every life is signed as it starts, inside the measured latency.
            let signing = report["signing"].as_str().unwrap();
            assert!(signing.starts_with("0 of the "), "{signing}");
            assert!(signing.contains("signed inline, in the client, after each request was due"));
        }
    }
    assert!(heights[1] > heights[0], "the second run extended the same chain: {heights:?}");
}
