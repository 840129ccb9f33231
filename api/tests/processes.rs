//! Real `scf-node` processes on loopback: 3 voters and an observer, each with its own RocksDB
//! directory. Clients keep submitting signed transactions over HTTP while voters are killed with
//! SIGKILL (the leader first) and restarted from their disks; `SCF_KILL_ROUNDS=N` runs N rounds
//! (default 1). Every transaction a client saw applied must be in every replica's chain at the
//! height it was reported, every replica ends with the same tip, the observer's audit passes,
//! and SIGTERM stops every process cleanly.
//!
//! Ports are picked by binding port 0 and releasing it, since each node's configuration must
//! name every other node's addresses before any of them starts.

// A test binary of its own (see tests/it/main.rs), sharing the harness of the others.
#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

const VOTERS: usize = 3;
const CLIENTS: u64 = 4;
/// Transactions applied between two steps of the nemesis.
const PROGRESS: u64 = 60;
const STEP: Duration = Duration::from_secs(60);

/// A loopback port below the kernel's ephemeral range: a killed node is restarted on the same
/// ports, and a port from that range could meanwhile become some connection's source port
/// (`Address already in use`). Held in `held` until every port is chosen, so all differ.
fn free_port(held: &mut Vec<std::net::TcpListener>) -> u16 {
    testkit::ports::hold_loopback_port(held).expect("a free loopback port").port()
}

struct Node {
    id: u64,
    config: PathBuf,
    http: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_scf-node"))
            .arg("--config")
            .arg(&self.config)
            .arg("--log-level")
            .arg("warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("scf-node starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .expect("SIGTERM");
        for _ in 0..500 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        panic!("node {} did not stop within 10 s of SIGTERM", self.id);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn write_configs(dir: &TestDir) -> Vec<Node> {
    let mut held = Vec::new();
    let ports: Vec<(u16, u16, u16)> = (0..=VOTERS)
        .map(|_| (free_port(&mut held), free_port(&mut held), free_port(&mut held)))
        .collect();
    drop(held);
    let peers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (http, raft, _))| {
            let role = if i < VOTERS { "voter" } else { "observer" };
            format!(
                "[[peers]]\nid = {}\nrole = \"{role}\"\nraft = \"127.0.0.1:{raft}\"\nhttp = \"http://127.0.0.1:{http}\"\n\n",
                i + 1
            )
        })
        .collect();
    let key = hex::encode(registrar().public_key());
    ports
        .iter()
        .enumerate()
        .map(|(i, (http, raft, admin))| {
            let id = i as u64 + 1;
            let role = if i < VOTERS { "voter" } else { "observer" };
            let data = dir.path().join(format!("node-{id}"));
            let text = format!(
                "node_id = {id}\nrole = \"{role}\"\ndata_dir = \"{}\"\n\
                 http_listen = \"127.0.0.1:{http}\"\nraft_listen = \"127.0.0.1:{raft}\"\n\
                 admin_listen = \"127.0.0.1:{admin}\"\n\n\
                 [chain]\nchain_id = \"{CHAIN_ID}\"\nregistrar_public_key = \"{key}\"\n\
                 genesis_time_ms = 1767225600000\n\n{peers}\
                 [raft]\ntick_ms = 50\ncompact_after_entries = 100\nsubmit_timeout_ms = 3000\n",
                data.display()
            );
            let config = dir.path().join(format!("node-{id}.toml"));
            std::fs::write(&config, text).unwrap();
            Node {
                id,
                config,
                http: format!("http://127.0.0.1:{http}"),
                log: dir.path().join(format!("node-{id}.log")),
                child: None,
            }
        })
        .collect()
}

struct Workload {
    next: AtomicU64,
    applied: AtomicU64,
    stop: AtomicBool,
    /// Transaction number → height at which a client saw it applied.
    acknowledged: Mutex<BTreeMap<u64, u64>>,
    /// Answers that said "unknown" (then resolved by resubmitting the same transaction).
    unknown: AtomicU64,
}

/// One client: submits transactions one at a time to the voters in turn. An answer that leaves
/// the outcome open (a connection cut by a kill, a timeout, a leader change) is resolved by
/// resubmitting the same signed transaction, which returns its first outcome if it had one.
async fn client(workload: Arc<Workload>, urls: Vec<String>, http: Http, start: usize) {
    let mut target = start;
    while !workload.stop.load(Ordering::Relaxed) {
        let i = workload.next.fetch_add(1, Ordering::Relaxed);
        let tx = tx_json(&register(i));
        loop {
            let url = format!("{}/v1/transactions", urls[target % urls.len()]);
            match http.try_post(&url, &tx).await {
                Ok((200, answer)) => {
                    assert_eq!(answer["outcome"], "applied", "tx {i}: {answer}");
                    let height = answer["height"].as_u64().unwrap();
                    workload.acknowledged.lock().unwrap().insert(i, height);
                    workload.applied.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok((status, answer)) => {
                    let code = answer["error"]["code"].as_str().unwrap_or_default().to_owned();
                    assert!(
                        matches!(status, 502..=504),
                        "tx {i}: unexpected answer {status} {answer}"
                    );
                    if code == "outcome_unknown" || code == "leader_unreachable" {
                        workload.unknown.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // The node is down or was killed mid-request: the outcome is open.
                Err(_) => {
                    workload.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
            target += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn status(http: &Http, node: &Node) -> Option<Value> {
    let (code, value, _) = http.raw_fallible("GET", &format!("{}/v1/status", node.http)).await?;
    (code == 200).then_some(value)
}

async fn await_progress(workload: &Workload, nodes: &[Node], step: &str) {
    let goal = workload.applied.load(Ordering::Relaxed) + PROGRESS;
    let deadline = std::time::Instant::now() + STEP;
    while workload.applied.load(Ordering::Relaxed) < goal {
        if std::time::Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| {
                    format!(
                        "node {}:\n{}",
                        n.id,
                        std::fs::read_to_string(&n.log).unwrap_or_default()
                    )
                })
                .collect();
            panic!("no progress during {step}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_killed_with_sigkill_lose_nothing() {
    let dir = TestDir::new("processes");
    let mut nodes = write_configs(&dir);
    for node in &mut nodes {
        node.start();
    }
    let http = Http::default();
    let leader = eventually(STEP, "a leader", || async {
        for (index, node) in nodes.iter().enumerate() {
            if status(&http, node).await.is_some_and(|s| s["role"] == "leader") {
                return Some(index);
            }
        }
        None
    })
    .await;

    let workload = Arc::new(Workload {
        next: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        acknowledged: Mutex::new(BTreeMap::new()),
        unknown: AtomicU64::new(0),
    });
    let urls: Vec<String> = nodes[..VOTERS].iter().map(|n| n.http.clone()).collect();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(workload.clone(), urls.clone(), http.clone(), c as usize)))
        .collect();
    await_progress(&workload, &nodes, "start-up").await;

    // The leader first, then every other voter: SIGKILL, progress without it, restart.
    // SCF_KILL_ROUNDS=N repeats the round N times (a longer soak).
    let rounds: usize = std::env::var("SCF_KILL_ROUNDS").map_or(1, |r| r.parse().expect("N"));
    let mut order = vec![leader];
    order.extend((0..VOTERS).filter(|v| *v != leader));
    let order: Vec<usize> = order.iter().copied().cycle().take(rounds * VOTERS).collect();
    for voter in order {
        nodes[voter].kill();
        await_progress(&workload, &nodes, &format!("node {} killed", voter + 1)).await;
        nodes[voter].start();
        await_progress(&workload, &nodes, &format!("node {} restarted", voter + 1)).await;
    }
    workload.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }

    // Every replica reaches the same tip.
    let tip = eventually(STEP, "every replica to agree", || async {
        let mut tips = Vec::new();
        for node in &nodes {
            let status = status(&http, node).await?;
            tips.push((
                status["height"].clone(),
                status["last_block_hash"].clone(),
                status["state_hash"].clone(),
            ));
        }
        tips.windows(2).all(|w| w[0] == w[1]).then(|| tips[0].clone())
    })
    .await;

    // Every acknowledged transaction is on the observer's chain, where it was reported.
    let acknowledged = std::mem::take(&mut *workload.acknowledged.lock().unwrap());
    assert!(acknowledged.len() as u64 >= 7 * PROGRESS);
    let observer = &nodes[VOTERS];
    for (i, height) in &acknowledged {
        let url = format!("{}/v1/transactions/{}", observer.http, tx_hash_hex(&register(*i)));
        let (code, record) = http.get(&url).await;
        assert_eq!(code, 200, "acknowledged tx {i} is missing: {record}");
        assert_eq!(record["height"].as_u64(), Some(*height), "tx {i}");
        assert_eq!(record["outcome"], "applied");
    }
    let (code, audit) = http.get(&format!("{}/v1/audit/verify", observer.http)).await;
    assert_eq!((code, audit["ok"].clone()), (200, Value::Bool(true)), "{audit}");
    eprintln!(
        "{} transactions acknowledged; {} answers without an outcome (refused connections, cut requests, timeouts), each resolved by resubmitting; tip {tip:?}",
        acknowledged.len(),
        workload.unknown.load(Ordering::Relaxed)
    );

    for node in &mut nodes {
        let exit = node.terminate();
        assert!(exit.success(), "node {} exited with {exit} after SIGTERM", node.id);
    }
}
