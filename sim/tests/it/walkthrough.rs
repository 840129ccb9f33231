//! The README's shell walkthrough, for real: `scf-sim cluster` starts 3 voters and an observer as
//! `scf-node` processes, `scripts/walkthrough.sh` drives a receivable's whole life through the
//! `scf-sim` client against them, and SIGTERM stops the cluster with every node.
//!
//! `scf-node` must be built next to `scf-sim` (`cargo test --release --workspace` builds both;
//! alone: `cargo build --release -p api` first). Everything listens on 127.0.0.1, and every wait
//! is bounded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::TestDir;

use crate::common;

use common::{ClusterProcess, alive, wait_for};

// Goal: the README's walkthrough runs as written against a real cluster of processes, and
// stopping `scf-sim cluster` with SIGTERM exits 0 and leaves no scf-node behind.
#[test]
fn a_receivable_lives_its_whole_life_from_the_shell() {
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_scf-sim"));
    let node = sim.with_file_name("scf-node");
    assert!(
        node.is_file(),
        "{} is missing: build it with `cargo build --release -p api` (the workspace's tests do)",
        node.display()
    );
    let dir = TestDir::new("sim-walkthrough");
    let cluster_dir = dir.path().join("cluster");
    let (mut cluster, out) = ClusterProcess::start(&sim, dir.path());
    let printed_nodes: Vec<&str> = out.lines().filter(|l| l.starts_with("node ")).collect();
    assert_eq!(printed_nodes.len(), 4, "{out}");
    assert!(printed_nodes[3].starts_with("node 4 observer http://127.0.0.1:"), "{out}");
    assert!(out.contains("chain scf-local-"), "{out}");
    let text = std::fs::read_to_string(cluster_dir.join("cluster.json")).unwrap();
    let described: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pids: Vec<u64> = described["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().expect("a pid"))
        .collect();
    assert_eq!(pids.len(), 4);
    let key = std::fs::metadata(cluster_dir.join("registrar.key")).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&key.permissions());
    assert_eq!(mode & 0o777, 0o600, "the registrar key is readable by its owner only");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/walkthrough.sh");
    let script_out = dir.path().join("walkthrough.out");
    let script_err = dir.path().join("walkthrough.err");
    let mut walkthrough = Command::new("bash")
        .arg(&script)
        .env("SCF_DIR", &cluster_dir)
        .env("SCF_SIM", &sim)
        .env_remove("SCF_URL")
        .stdout(std::fs::File::create(&script_out).unwrap())
        .stderr(std::fs::File::create(&script_err).unwrap())
        .spawn()
        .expect("the walkthrough runs");
    let finished = wait_for(&mut walkthrough, Duration::from_secs(180));
    if finished.is_none() {
        let _ = walkthrough.kill();
        let _ = walkthrough.wait();
    }
    let stdout = std::fs::read_to_string(&script_out).unwrap();
    let stderr = std::fs::read_to_string(&script_err).unwrap();

    // Stop the cluster before asserting on the walkthrough: its status is part of the test.
    let status = cluster.terminate();

    let finished = finished.unwrap_or_else(|| panic!("the walkthrough took over 180 s:\n{stdout}"));
    assert!(finished.success(), "the walkthrough failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("the receivable lived its whole life on the ledger"), "{stdout}");
    assert!(stdout.contains("\"state\": \"settled\""), "{stdout}");
    assert!(stdout.contains("HTTP 403"), "the stranger's read is refused: {stdout}");
    assert!(stdout.contains("rejected: token_not_live"), "a split token is not sold: {stdout}");
    assert!(stdout.contains("resubmitted: applied"), "an offline-signed tx is submitted: {stdout}");
    assert!(stdout.contains("\"signatures_checked\": true"), "{stdout}");
    let status = status.expect("scf-sim cluster stops within 30 s of SIGTERM");
    assert!(status.success(), "scf-sim cluster exited with {status}");
    for pid in pids {
        assert!(!alive(pid), "scf-node {pid} outlived its cluster");
    }
}
