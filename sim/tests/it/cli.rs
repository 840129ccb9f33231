//! The `scf-sim` binary as a user runs it: `run --in-process` with a short window, the client's
//! refusals of bad input, `scf-sim cluster`'s refusals and failed starts, and `run --target`'s
//! refusal without the registrar key. Runs against real `scf-node` processes are in `run.rs`.

use std::process::Command;

use testkit::TestDir;

/// The binary, without the environment variables that stand for its flags (a developer's shell
/// may have them set).
fn scf_sim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scf-sim"));
    for name in ["SCF_CHAIN", "SCF_URL", "SCF_SIGNER", "SCF_KEY"] {
        command.env_remove(name);
    }
    command
}

// Goal: `scf-sim run --in-process` drives the workload, every deliberately bad transaction is
// rejected with its expected code, the invariants hold, the replicas agree, and the JSON report
// has every field of the interface contract.
#[test]
fn run_writes_a_truthful_report() {
    let dir = TestDir::new("sim-cli");
    let json_path = dir.path().join("report.json");
    let output = scf_sim()
        .args([
            "run",
            "--in-process",
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
}

// Goal: a run against a cluster it did not start needs that chain's registrar key, and says so
// before it connects anywhere; a cluster needs its directory.
#[test]
fn target_needs_the_registrar_key_and_cluster_needs_a_dir() {
    let output = scf_sim().args(["cluster", "--voters", "3"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--dir"));
    let output = scf_sim().args(["run", "--target", "http://127.0.0.1:1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--registrar-key"));
}

// Goal: `tx` signs what the flags or the JSON say, and bad input gets a clear error, not a panic.
#[test]
fn tx_signs_from_flags_or_json_and_refuses_bad_input() {
    let secret = hex::encode(ledger::crypto::SigningKey::from_seed("cli/tx").to_bytes());
    let signed = |args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = scf_sim()
            .args(["tx", "--chain", "c", "--signer", "acme", "--secret", &secret, "--nonce", "7"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let by_flags = signed(&["confirm-delivery", "--shipment-id", "sh-1"], "");
    assert!(by_flags.status.success(), "{}", String::from_utf8_lossy(&by_flags.stderr));
    let tx: serde_json::Value = serde_json::from_slice(&by_flags.stdout).unwrap();
    let body = hex::decode(tx["body"].as_str().unwrap()).unwrap();
    let decoded = ledger::tx::DecodedTx::from_signed(&ledger::pb::SignedTx {
        body,
        signature: hex::decode(tx["signature"].as_str().unwrap()).unwrap(),
    })
    .expect("a well-formed transaction");
    assert_eq!((decoded.body.chain_id.as_str(), decoded.body.signer.as_str()), ("c", "acme"));
    assert_eq!(decoded.body.nonce, 7);
    assert_eq!(tx["tx_hash"].as_str(), Some(hex::encode(decoded.hash).as_str()));
    // tx's options may also follow the command's name.
    let options_after = scf_sim()
        .args(["tx", "confirm-delivery", "--shipment-id", "sh-1", "--chain", "c"])
        .args(["--signer", "acme", "--secret", &secret, "--nonce", "7", "--valid-for", "1m"])
        .output()
        .unwrap();
    assert!(options_after.status.success(), "{}", String::from_utf8_lossy(&options_after.stderr));
    let after: serde_json::Value = serde_json::from_slice(&options_after.stdout).unwrap();
    let after = ledger::tx::DecodedTx::from_signed(&ledger::pb::SignedTx {
        body: hex::decode(after["body"].as_str().unwrap()).unwrap(),
        signature: hex::decode(after["signature"].as_str().unwrap()).unwrap(),
    })
    .unwrap();
    assert_eq!((after.body.chain_id.as_str(), after.body.nonce), ("c", 7));
    assert_eq!(after.body.command, decoded.body.command);
    let by_json =
        signed(&["--json", "-"], r#"{"command": "confirm_delivery", "shipment_id": "sh-1"}"#);
    assert!(by_json.status.success(), "{}", String::from_utf8_lossy(&by_json.stderr));
    let again: serde_json::Value = serde_json::from_slice(&by_json.stdout).unwrap();
    // valid_until differs by the clock; the command is the same.
    let again_body = hex::decode(again["body"].as_str().unwrap()).unwrap();
    let again = ledger::tx::DecodedTx::from_signed(&ledger::pb::SignedTx {
        body: again_body,
        signature: hex::decode(again["signature"].as_str().unwrap()).unwrap(),
    })
    .unwrap();
    assert_eq!(again.body.command, decoded.body.command);

    for (args, stdin, says) in [
        (&["--json", "-"][..], r#"{"command": "print_money"}"#, "print_money"),
        (&["--json", "-"][..], "not json", "not a command"),
        (&["rotate-key", "--new-public-key", "zz"][..], "", "not hex"),
        (&["--valid-for", "2h", "confirm-delivery", "--shipment-id", "s"][..], "", "at most 1h"),
        (&["--valid-for", "0s", "confirm-delivery", "--shipment-id", "s"][..], "", "at most 1h"),
        (
            &["--json", "-", "confirm-delivery", "--shipment-id", "s"][..],
            r#"{"command": "confirm_delivery", "shipment_id": "s"}"#,
            "not both",
        ),
        (
            &["--submit", "http://127.0.0.1:1", "confirm-delivery", "--shipment-id", "s"][..],
            "",
            "127.0.0.1:1",
        ),
    ] {
        let output = signed(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let output = scf_sim()
        .args(["tx", "--chain", "c", "--signer", "acme", "confirm-delivery", "--shipment-id", "s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--key"));
    let output = scf_sim()
        .args(["tx", "--signer", "acme", "--secret", &secret, "confirm-delivery"])
        .args(["--shipment-id", "s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--chain"));
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

// Goal: `scf-sim cluster` refuses a used directory, and a start that fails (here every "node"
// exits at once) says which node and where its log is, exits non-zero and leaves no child.
#[test]
fn cluster_refuses_a_used_dir_and_reports_a_failed_start() {
    let test_dir = TestDir::new("sim-cli-cluster");
    let dir = test_dir.path();
    std::fs::write(dir.join("something"), "").unwrap();
    let output = scf_sim().arg("cluster").arg("--dir").arg(dir).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));

    let fresh = dir.join("fresh");
    let output = scf_sim()
        .args(["cluster", "--node-bin", "/nonexistent/scf-node", "--dir"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/scf-node"));

    let failing = dir.join("failing");
    let output = scf_sim()
        .args(["cluster", "--voters", "1", "--observers", "0", "--node-bin", "/bin/false"])
        .arg("--dir")
        .arg(&failing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("node 1 exited") && stderr.contains("node-1.log"), "{stderr}");
    assert!(!failing.join("cluster.json").exists(), "no cluster.json for a cluster that never ran");
}
