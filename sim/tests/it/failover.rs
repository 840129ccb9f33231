//! The README's "try failover" walkthrough, for real: `scf-sim cluster` runs 3 voters and an
//! observer as `scf-node` processes; its leader is killed with SIGKILL; the others elect a new
//! one and keep taking writes while the launcher keeps running; `scf-sim cluster restart` brings
//! the old leader back, and it catches up. And `scf-sim cluster --restart` does that by itself.
//!
//! `scf-node` must be built next to `scf-sim` (`cargo test --release --workspace` builds both).
//! Everything listens on 127.0.0.1, and every wait is a poll with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::TestDir;

use crate::common;

use common::{ClusterProcess, alive, kill_9, poll, wait_for};

fn sim_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scf-sim"))
}

/// `scf-sim`, without the environment a developer's shell may have set.
fn sim() -> Command {
    let mut command = Command::new(sim_path());
    for var in ["SCF_REGISTRAR_KEY", "SCF_URL", "SCF_CHAIN", "SCF_SIGNER", "SCF_KEY"] {
        command.env_remove(var);
    }
    command
}

/// Runs `command` to its end, at most 60 s.
fn run(mut command: Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if wait_for(&mut child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        panic!("over 60 s:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One node as `cluster.json` describes it.
#[derive(Debug, Clone)]
struct Described {
    id: u64,
    role: String,
    url: String,
    pid: Option<u64>,
}

fn described(dir: &Path) -> (String, Vec<Described>) {
    let text = std::fs::read_to_string(dir.join("cluster.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let nodes = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Described {
            id: n["id"].as_u64().unwrap(),
            role: n["role"].as_str().unwrap().to_owned(),
            url: n["url"].as_str().unwrap().to_owned(),
            pid: n["pid"].as_u64(),
        })
        .collect();
    (json["chain_id"].as_str().unwrap().to_owned(), nodes)
}

/// `GET /v1/status` of the nodes, as a user's curl would read it.
struct Statuses {
    runtime: tokio::runtime::Runtime,
    http: sim::client::Http,
}

impl Statuses {
    fn new() -> Self {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Self { runtime, http: sim::client::Http::new(Duration::from_secs(2)) }
    }

    /// The node's status, or `None` if it does not answer 200.
    fn of(&self, node: &Described) -> Option<Value> {
        let answer = self.runtime.block_on(self.http.get(&node.url, "/v1/status", None)).ok()?;
        (answer.status == 200).then_some(answer.body)
    }

    /// The leader every one of `nodes` names, when they agree and it says it leads.
    fn agreed_leader(&self, nodes: &[&Described]) -> Option<u64> {
        let statuses: Vec<Value> = nodes.iter().map(|n| self.of(n)).collect::<Option<_>>()?;
        let leader = statuses[0]["leader_id"].as_u64().filter(|&id| id != 0)?;
        let agreed = statuses.iter().all(|s| s["leader_id"].as_u64() == Some(leader));
        let leads = statuses.iter().any(|s| s["node_id"] == leader && s["role"] == "leader");
        (agreed && leads).then_some(leader)
    }

    /// The height and last block hash all of `nodes` report, when they report the same.
    fn agreed_tip(&self, nodes: &[&Described]) -> Option<(u64, String)> {
        let statuses: Vec<Value> = nodes.iter().map(|n| self.of(n)).collect::<Option<_>>()?;
        let tip =
            |s: &Value| Some((s["height"].as_u64()?, s["last_block_hash"].as_str()?.to_owned()));
        let first = tip(&statuses[0])?;
        statuses.iter().all(|s| tip(s).as_ref() == Some(&first)).then_some(first)
    }
}

/// `scf-sim cluster restart --dir DIR N`.
fn restart(dir: &Path, node: u64) -> Output {
    let mut command = sim();
    command.args(["cluster", "restart", "--dir"]).arg(dir).arg(node.to_string());
    run(command)
}

// Goal: the README's failover walkthrough, step by step. A kill -9 of the leader leaves the
// launcher and the other nodes running (the launcher says which node exited and how), a new
// leader is elected and takes writes, `scf-sim cluster restart` refuses a node that does not
// exist and starts the old leader again as the launcher's child, the old leader catches up to
// the others' height and block hash, and SIGTERM to the launcher stops every node, the
// restarted one included; afterwards `restart` says no cluster runs there.
#[test]
fn a_killed_leader_is_replaced_and_catches_up_after_a_restart() {
    let dir = TestDir::new("sim-failover");
    let cluster_dir = dir.path().join("cluster");
    let (mut cluster, out) = ClusterProcess::start(&sim_path(), dir.path());
    let (chain, nodes) = described(&cluster_dir);
    let mut pids: Vec<u64> = nodes.iter().map(|n| n.pid.expect("every node runs")).collect();
    let voters: Vec<&Described> = nodes.iter().filter(|n| n.role == "voter").collect();
    let all: Vec<&Described> = nodes.iter().collect();
    assert_eq!((voters.len(), nodes.len()), (3, 4));
    let statuses = Statuses::new();

    // 1. The leader, as /v1/status names it on every node.
    let leader = poll(Duration::from_secs(30), || statuses.agreed_leader(&all))
        .expect("the nodes agree on a leader within 30 s");
    let (height_before, _) = poll(Duration::from_secs(30), || statuses.agreed_tip(&all))
        .expect("the nodes agree on a tip");
    let old = nodes.iter().find(|n| n.id == leader).unwrap().clone();
    let old_pid = old.pid.unwrap();

    // 2. kill -9 it.
    kill_9(old_pid);

    // 3. The others elect a new leader among themselves.
    let survivors: Vec<&Described> = all.iter().copied().filter(|n| n.id != leader).collect();
    let new_leader = poll(Duration::from_secs(30), || {
        statuses.agreed_leader(&survivors).filter(|&id| id != leader)
    })
    .expect("a new leader is elected within 30 s of the kill");
    assert!(voters.iter().any(|v| v.id == new_leader));
    // The launcher keeps running, with the other nodes, and said what happened.
    let errors = dir.path().join("cluster.err");
    let exited =
        format!("node {leader} exited (signal: 9 (SIGKILL)); the other nodes keep running");
    let said = poll(Duration::from_secs(10), || {
        let err = std::fs::read_to_string(&errors).unwrap_or_default();
        err.contains(&exited).then_some(err)
    });
    assert!(
        said.is_some(),
        "the launcher reports the exit: {:?}",
        std::fs::read_to_string(&errors)
    );
    assert!(cluster.0.try_wait().unwrap().is_none(), "the launcher keeps running");
    for node in &survivors {
        assert!(alive(node.pid.unwrap()), "node {} keeps running", node.id);
    }
    let (_, now) = described(&cluster_dir);
    assert_eq!(now.iter().find(|n| n.id == leader).unwrap().pid, None, "cluster.json: down");

    // 4. Writes while the old leader is down, through the first surviving voter (a follower
    // forwards them): the others' height moves past the old leader's.
    let survivor = survivors[0];
    for n in 0..3 {
        let key = dir.path().join(format!("party-{n}.key"));
        let mut keygen = sim();
        keygen.arg("keygen").arg("--out").arg(&key);
        let output = run(keygen);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let public = text(&output.stdout).trim().to_owned();
        let mut tx = sim();
        tx.args(["tx", "--chain", &chain, "--signer", "registrar", "--key"])
            .arg(cluster_dir.join("registrar.key"))
            .args(["--submit", &survivor.url, "--field", "/outcome", "register-party"])
            .args(["--party-id", &format!("party-{n}"), "--name", "Party", "--role", "enterprise"])
            .args(["--public-key", &public]);
        let output = run(tx);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(text(&output.stdout).trim(), "applied");
    }
    let (height, hash) = poll(Duration::from_secs(30), || {
        statuses.agreed_tip(&survivors).filter(|(h, _)| *h >= height_before + 3)
    })
    .expect("the surviving nodes agree on the new blocks");

    // 5. The launcher said how to restart a node; a node that does not exist: the launcher refuses, exit 1.
    let hint = format!("restart node N: scf-sim cluster restart --dir {} N", cluster_dir.display());
    assert!(out.contains(&hint), "{out}");
    let output = restart(&cluster_dir, 99);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("no node 99 in this cluster"),
        "{}",
        text(&output.stderr)
    );

    // 6. Restart the old leader by hand: the launcher starts it (a new pid, its child).
    let output = restart(&cluster_dir, leader);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).starts_with(&format!("node {leader} started again (pid ")),
        "{}",
        text(&output.stdout)
    );
    let (_, now) = described(&cluster_dir);
    let new_pid = now.iter().find(|n| n.id == leader).unwrap().pid.expect("it runs again");
    assert_ne!(new_pid, old_pid);
    assert!(alive(new_pid));
    pids.push(new_pid);

    // 7. It catches up: its height and last block hash reach the others'.
    let caught_up = poll(Duration::from_secs(60), || {
        statuses.agreed_tip(&all).filter(|tip| *tip == (height, hash.clone()))
    });
    assert!(
        caught_up.is_some(),
        "node {leader} did not catch up to height {height} within 60 s: {:?}",
        statuses.of(&old)
    );
    let restarted = statuses.of(&old).unwrap();
    assert_ne!(restarted["role"], "leader", "{restarted}");
    assert_eq!(restarted["leader_id"], new_leader, "{restarted}");

    // 8. SIGTERM to the launcher stops every node, the restarted one too, and exits 0.
    let status = cluster.terminate().expect("scf-sim cluster stops within 30 s of SIGTERM");
    assert!(status.success(), "scf-sim cluster exited with {status}");
    for pid in &pids {
        assert!(!alive(*pid), "scf-node {pid} outlived its cluster");
    }
    assert!(!cluster_dir.join("control.sock").exists(), "the control socket is removed");

    // 9. Nothing runs there now: `restart` says so, exit 2.
    let output = restart(&cluster_dir, leader);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("no scf-sim cluster is running in"),
        "{}",
        text(&output.stderr)
    );
}

// Goal: `--restart 1s` starts a node that was killed again by itself, on its old data (the
// chain's tip survives), and the launcher still stops it on SIGTERM.
#[test]
fn restart_after_a_delay_brings_a_killed_node_back() {
    let dir = TestDir::new("sim-auto-restart");
    let cluster_dir = dir.path().join("cluster");
    let args = ["--voters", "1", "--observers", "0", "--restart", "1s"];
    let (mut cluster, out) = ClusterProcess::start_with(&sim_path(), dir.path(), &args);
    assert!(out.contains("a node that exits is restarted after 1s"), "{out}");
    let (chain, nodes) = described(&cluster_dir);
    let node = nodes[0].clone();
    let old_pid = node.pid.unwrap();
    let statuses = Statuses::new();

    // One block on disk, so that the restarted node has something to come back with.
    let mut keygen = sim();
    keygen.arg("keygen");
    let key: Value = serde_json::from_str(&text(&run(keygen).stdout)).unwrap();
    let mut tx = sim();
    tx.args(["tx", "--chain", &chain, "--signer", "registrar", "--key"])
        .arg(cluster_dir.join("registrar.key"))
        .args(["--submit", &node.url, "--field", "/height", "register-party"])
        .args(["--party-id", "p", "--name", "P", "--role", "bank"])
        .args(["--public-key", key["public_key"].as_str().unwrap()]);
    let output = run(tx);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let height: u64 = text(&output.stdout).trim().parse().unwrap();

    kill_9(old_pid);
    let new_pid = poll(Duration::from_secs(30), || {
        let (_, now) = described(&cluster_dir);
        now[0].pid.filter(|&pid| pid != old_pid)
    })
    .expect("the node is started again within 30 s");
    let back = poll(Duration::from_secs(30), || {
        statuses.of(&node).filter(|s| s["role"] == "leader" && s["height"].as_u64() >= Some(height))
    });
    assert!(back.is_some(), "the restarted node leads again at height {height}");
    let err = std::fs::read_to_string(dir.path().join("cluster.err")).unwrap();
    assert!(err.contains("node 1 exited (signal: 9 (SIGKILL)); its log is "), "{err}");
    assert!(err.contains("restarting it in 1s"), "{err}");
    assert!(err.contains(&format!("node 1 restarted (pid {new_pid})")), "{err}");

    let status = cluster.terminate().expect("scf-sim cluster stops within 30 s of SIGTERM");
    assert!(status.success(), "scf-sim cluster exited with {status}");
    assert!(!alive(new_pid) && !alive(old_pid), "no scf-node outlives its cluster");
}
