//! The `scf-sim` binary as a user runs it: the README's main command with a short window, and
//! the subcommands that must refuse honestly until the cluster exists.

use std::process::Command;

fn scf_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scf-sim"))
}

// Goal: `scf-sim run` drives the workload, every deliberately bad transaction is rejected with
// its expected code, the invariants hold, the replicas agree, and the JSON report has every
// field of the interface contract.
#[test]
fn run_writes_a_truthful_report() {
    let dir = std::env::temp_dir().join(format!("scf-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("report.json");
    let output = scf_sim()
        .args([
            "run",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--concurrency",
            "64",
            "--quiet",
            "--seed",
            "7",
        ])
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    for field in [
        "duration_s",
        "submitted",
        "applied",
        "rejected",
        "errors",
        "throughput_tps",
        "latency_ms",
        "invariants_ok",
        "replicas_agree",
        "nodes",
    ] {
        assert!(report.get(field).is_some(), "missing {field}");
    }
    for field in ["p50", "p90", "p99", "max"] {
        assert!(report["latency_ms"][field].as_f64().is_some(), "missing latency_ms.{field}");
    }
    assert!(report["applied"].as_u64().unwrap() > 0);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["invariants_ok"], true);
    assert_eq!(report["replicas_agree"], true);
    let bad = report["bad_submitted"].as_u64().unwrap();
    assert!(bad > 0, "the workload must include bad transactions");
    assert_eq!(report["bad_rejected_as_expected"].as_u64().unwrap(), bad);
    assert_eq!(report["rejected"].as_u64().unwrap(), bad, "only the bad transactions are rejected");
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["state_hash"] == nodes[0]["state_hash"] && n["height"] == nodes[0]["height"]));
    std::fs::remove_dir_all(&dir).unwrap();
}

// Goal: what cannot work yet says so and fails, rather than pretending.
#[test]
fn cluster_and_target_refuse_honestly() {
    let output = scf_sim().args(["cluster", "--voters", "3"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("issue #5"));
    let output = scf_sim().args(["run", "--target", "http://127.0.0.1:1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target"));
}

// Goal: keygen prints a usable key pair whose public key matches its secret.
#[test]
fn keygen_prints_a_matching_pair() {
    let output = scf_sim().arg("keygen").output().unwrap();
    assert!(output.status.success());
    let pair: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let secret = hex::decode(pair["secret_key"].as_str().unwrap()).unwrap();
    let public = hex::decode(pair["public_key"].as_str().unwrap()).unwrap();
    let key = ledger::crypto::SigningKey::from_bytes(&secret).unwrap();
    assert_eq!(key.public_key().to_bytes().to_vec(), public);
}

// Goal: bad arguments are refused with a message, not a panic.
#[test]
fn bad_arguments_are_refused() {
    let output = scf_sim().args(["run", "--duration", "soon"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("duration"));
    let output =
        scf_sim().args(["run", "--concurrency", "0", "--duration", "1s"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
