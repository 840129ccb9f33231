//! The README's shell walkthrough, for real: `scf-sim cluster` starts 3 voters and an observer as
//! `scf-node` processes, `scripts/walkthrough.sh` drives a receivable's whole life through the
//! `scf-sim` client against them, and SIGTERM stops the cluster with every node.
//!
//! `scf-node` must be built next to `scf-sim` (`cargo test --release --workspace` builds both;
//! alone: `cargo build --release -p api` first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir()
            .join(format!("scf-sim-test-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn alive(pid: u64) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_receivable_lives_its_whole_life_from_the_shell() {
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_scf-sim"));
    let node = sim.with_file_name("scf-node");
    assert!(
        node.is_file(),
        "{} is missing: build it with `cargo build --release -p api` (the workspace's tests do)",
        node.display()
    );
    let dir = TempDir::new("walkthrough");
    let cluster_dir = dir.0.join("cluster");
    let mut cluster = Command::new(&sim)
        .args(["cluster", "--dir"])
        .arg(&cluster_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scf-sim cluster starts");

    // cluster.json appears once every node answers and a leader is elected.
    let description = cluster_dir.join("cluster.json");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !description.exists() {
        if let Some(status) = cluster.try_wait().unwrap() {
            panic!("scf-sim cluster exited early: {status}");
        }
        if Instant::now() > deadline {
            let _ = cluster.kill();
            panic!("the cluster was not up within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&description).unwrap();
    let described: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pids: Vec<u64> = described["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().expect("a pid"))
        .collect();
    assert_eq!(pids.len(), 4);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/walkthrough.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("SCF_DIR", &cluster_dir)
        .env("SCF_SIM", &sim)
        .output()
        .expect("the walkthrough runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Stop the cluster before asserting, so that a failure leaves nothing running.
    Command::new("kill").args(["-TERM", &cluster.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = cluster.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = cluster.kill();
            panic!("scf-sim cluster did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    assert!(output.status.success(), "the walkthrough failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("the receivable lived its whole life on the ledger"), "{stdout}");
    assert!(stdout.contains("\"state\": \"settled\""), "{stdout}");
    assert!(stdout.contains("\"signatures_checked\": true"), "{stdout}");
    assert!(status.success(), "scf-sim cluster exited with {status}");
    for pid in pids {
        assert!(!alive(pid), "scf-node {pid} outlived its cluster");
    }
}
