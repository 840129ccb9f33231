//! A local cluster of `scf-node` processes on loopback: configurations written to a directory,
//! a new registrar key and chain id, children started, watched and always stopped (SIGTERM, then
//! SIGKILL after a grace period; dropping the cluster kills what is left).
//!
//! Each child runs in its own process group, so that a terminal's Ctrl-C (or hangup) reaches only
//! the process that owns the cluster, which then stops every node in order; a node never sees a
//! signal its owner has not decided to send. The owner must therefore handle SIGINT, SIGTERM and
//! SIGHUP itself (as `scf-sim cluster` does) and stop or drop the cluster.
//!
//! `cluster.json` in the directory says what runs: it is rewritten (whole, through a rename)
//! whenever one node is started, killed, stopped or found exited, with each node's pid or `null`
//! while it is down. Stopping the whole cluster leaves it as it was, with the pids the nodes
//! last ran as.
//!
//! Signals go to children this cluster still holds (not yet reaped), so a pid signalled is never
//! one the system has reused for another process.
//!
//! `scf-sim cluster` runs one until interrupted (supervised by `crate::launcher`); `scf-sim run`
//! starts one for its measured run and stops it afterwards.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledger::crypto::SigningKey;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

use crate::client::{Http, now_ms, write_key_file};

/// The prefix of local clusters' chain ids; a random suffix makes each cluster's chain its own,
/// so a transaction signed for one local cluster is refused by every other (`wrong_chain`).
pub const LOCAL_CHAIN_PREFIX: &str = "scf-local-";

/// Most nodes in a local cluster: each is a RocksDB process on this machine.
pub const NODES_MAX: usize = 16;

/// How long a node has to stop after SIGTERM before it is killed with SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// What a local cluster is made of.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Voting members.
    pub voters: usize,
    /// Observers (raft learners).
    pub observers: usize,
    /// Where configurations, data and logs go.
    pub dir: PathBuf,
    /// The `scf-node` binary.
    pub node_bin: PathBuf,
    /// How long to wait for every node to be up and a leader elected.
    pub start_timeout: Duration,
    /// Start the nodes with `fault_injection`, so that [`LocalCluster::cut`] can partition
    /// them (the whole-system fault tests).
    pub fault_injection: bool,
    /// TOML appended to every node's configuration (a `[raft]` table of tuning, say).
    pub extra_toml: String,
    /// Serve the nodes' public APIs over HTTPS (their certificates name 127.0.0.1 and
    /// localhost; clients trust `tls/ca.pem`). Raft links are mutual TLS either way.
    pub https: bool,
}

/// One node of a local cluster.
#[derive(Debug)]
pub struct LocalNode {
    /// Raft id (1 and up: voters first).
    pub id: u64,
    /// `voter` or `observer`.
    pub role: &'static str,
    /// Where it accepts raft connections (mutual TLS; see [`LocalCluster::certs`]).
    pub raft: SocketAddr,
    /// The public HTTP API.
    pub url: String,
    /// The admin HTTP API.
    pub admin_url: String,
    child: Option<Child>,
}

impl LocalNode {
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    /// The nodes, voters first.
    pub nodes: Vec<LocalNode>,
    /// The registrar's key file.
    pub registrar_key: PathBuf,
    /// The chain id.
    pub chain_id: String,
    /// The certificates of its raft links (`tls/` in the directory): the CA, each node's, and
    /// an operator's.
    pub certs: tls::ClusterCerts,
    /// The directory.
    pub dir: PathBuf,
    node_bin: PathBuf,
    /// What HTTPS clients of this cluster trust (its CA), when it serves HTTPS.
    ca: Option<Arc<tls::rustls::ClientConfig>>,
    /// Whether every node came up (and `cluster.json` was first written): before, a change of
    /// a node is not described, since the file's presence says the cluster is up.
    ready: bool,
}

/// `scf-node` next to this executable (how cargo and installs lay them out), else on `PATH`.
pub fn find_node_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().ok();
    if let Some(dir) = me.as_deref().and_then(Path::parent) {
        // Test binaries live one level down, in `deps/`.
        for candidate in [dir.join("scf-node"), dir.join("../scf-node")] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("scf-node");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no scf-node binary next to scf-sim or on PATH: build it with `cargo build --release -p \
         api`, or name it with --node-bin"
    )
}

/// A free loopback port below the kernel's ephemeral range (see [`crate::ports`]), so that a
/// node restarted on it finds it free again. The caller holds the listener until every port is
/// chosen, so that no two nodes get the same one; the node binds it a moment after it is
/// dropped. Another process could take it in between: the node then fails to start and says
/// which address.
fn free_port(held: &mut Vec<TcpListener>) -> anyhow::Result<SocketAddr> {
    crate::ports::hold_loopback_port(held).context("binding a loopback port")
}

struct Planned {
    id: u64,
    role: &'static str,
    http: SocketAddr,
    raft: SocketAddr,
    admin: SocketAddr,
}

impl LocalCluster {
    /// Writes the configurations and starts every node; waits until each answers and a leader
    /// is elected. On failure every started child is stopped.
    pub async fn start(config: &ClusterConfig) -> anyhow::Result<Self> {
        if config.voters == 0 {
            bail!("a cluster needs at least one voter");
        }
        if config.voters + config.observers > NODES_MAX {
            bail!("a local cluster has at most {NODES_MAX} nodes, voters and observers together");
        }
        std::fs::create_dir_all(&config.dir)
            .with_context(|| format!("creating {}", config.dir.display()))?;
        // A used directory holds another cluster's keys and data: starting over it would mix
        // two chains, so only a new or empty one will do.
        let used = std::fs::read_dir(&config.dir)
            .with_context(|| format!("reading {}", config.dir.display()))?
            .next()
            .is_some();
        if used {
            bail!("{} is not empty; give a new or empty directory", config.dir.display());
        }
        let mut rng = ledger::crypto::rand::rng();
        let registrar = SigningKey::generate(&mut rng);
        let chain_id = format!(
            "{LOCAL_CHAIN_PREFIX}{:08x}",
            ledger::crypto::rand::Rng::random::<u32>(&mut rng)
        );
        let registrar_key = config.dir.join("registrar.key");
        write_key_file(&registrar_key, &registrar)?;
        let mut planned = Vec::new();
        let mut held = Vec::new();
        for index in 0..config.voters + config.observers {
            planned.push(Planned {
                id: index as u64 + 1,
                role: if index < config.voters { "voter" } else { "observer" },
                http: free_port(&mut held)?,
                raft: free_port(&mut held)?,
                admin: free_port(&mut held)?,
            });
        }
        drop(held);
        // Mutual TLS on every raft link, under a CA of this cluster's own (tls/ in the
        // directory; the HTTP APIs stay plain HTTP on loopback).
        let ids: Vec<u64> = planned.iter().map(|node| node.id).collect();
        let sans = ["127.0.0.1".to_owned(), "localhost".to_owned()];
        let certs = tls::issue_cluster(&config.dir.join("tls"), &ids, &sans)
            .context("issuing the cluster's certificates")?;
        let scheme = if config.https { "https" } else { "http" };
        let mut peers = String::new();
        for node in &planned {
            let _ = write!(
                peers,
                "\n[[peers]]\nid = {}\nrole = \"{}\"\nraft = \"{}\"\nhttp = \"{scheme}://{}\"\n",
                node.id, node.role, node.raft, node.http
            );
        }
        let genesis_time_ms = now_ms();
        let mut cluster = LocalCluster {
            nodes: Vec::new(),
            registrar_key,
            chain_id,
            certs: certs.clone(),
            ca: if config.https {
                Some(tls::https_client_config(&certs.ca_file).context("the cluster's CA")?)
            } else {
                None
            },
            dir: config.dir.clone(),
            node_bin: config.node_bin.clone(),
            ready: false,
        };
        for node in &planned {
            let data = config.dir.join(format!("node-{}", node.id));
            let files = &certs.nodes[&node.id];
            let text = format!(
                "# Written by scf-sim cluster.\nnode_id = {}\nrole = \"{}\"\ndata_dir = {:?}\n\
                 http_listen = \"{}\"\nraft_listen = \"{}\"\nadmin_listen = \"{}\"\n\
                 fault_injection = {}\n\n[tls]\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n\
                 https = {}\n\n\
                 [chain]\n\
                 chain_id = \"{}\"\nregistrar_public_key = \"{}\"\ngenesis_time_ms = {}\n{peers}\n{}",
                node.id,
                node.role,
                data.display().to_string(),
                node.http,
                node.raft,
                node.admin,
                config.fault_injection,
                files.ca_file.display().to_string(),
                files.cert_file.display().to_string(),
                files.key_file.display().to_string(),
                config.https,
                cluster.chain_id,
                hex::encode(registrar.public_key().to_bytes()),
                genesis_time_ms,
                config.extra_toml,
            );
            let path = config.dir.join(format!("node-{}.toml", node.id));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            let child = cluster.spawn(node.id, &[])?;
            cluster.nodes.push(LocalNode {
                id: node.id,
                role: node.role,
                raft: node.raft,
                url: format!("{scheme}://{}", node.http),
                admin_url: format!("http://{}", node.admin),
                child: Some(child),
            });
        }
        if let Err(error) = cluster.wait_ready(config.start_timeout).await {
            cluster.stop();
            return Err(error);
        }
        cluster.ready = true;
        cluster.write_description()?;
        Ok(cluster)
    }

    /// Starts node `id` from its configuration, with `env` added to its environment, its output
    /// appended to its log.
    fn spawn(&self, id: u64, env: &[(&str, &str)]) -> anyhow::Result<Child> {
        let path = self.dir.join(format!("node-{id}.toml"));
        let log_path = self.dir.join(format!("node-{id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        Command::new(&self.node_bin)
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: see the module documentation.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.node_bin.display()))
    }

    fn node_mut(&mut self, id: u64) -> anyhow::Result<&mut LocalNode> {
        self.nodes.iter_mut().find(|n| n.id == id).with_context(|| format!("no node {id}"))
    }

    /// Kills node `id` with SIGKILL (a crash: nothing is flushed or closed) and reaps it.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        let mut child = node.child.take().with_context(|| format!("node {id} is not running"))?;
        child.kill().with_context(|| format!("killing node {id}"))?;
        child.wait().with_context(|| format!("reaping node {id}"))?;
        self.write_description()
    }

    /// Stops node `id` as [`LocalCluster::stop`] stops them all (SIGTERM, SIGKILL after
    /// [`STOP_GRACE`]) and reaps it; returns how it exited. Blocks until then.
    pub fn stop_node(&mut self, id: u64) -> anyhow::Result<ExitStatus> {
        let node = self.node_mut(id)?;
        let mut child = node.child.take().with_context(|| format!("node {id} is not running"))?;
        terminate(&child);
        let status = wait_or_kill(&mut child, Instant::now() + STOP_GRACE)
            .with_context(|| format!("waiting for node {id} to stop"))?;
        self.write_description()?;
        Ok(status)
    }

    /// Starts node `id` again, on its old data, ports and log, after [`LocalCluster::kill`].
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.restart_with(id, &[])
    }

    /// [`LocalCluster::restart`] with `env` added to the node's environment (`FAILPOINTS`, say).
    pub fn restart_with(&mut self, id: u64, env: &[(&str, &str)]) -> anyhow::Result<()> {
        if self.node_mut(id)?.child.is_some() {
            bail!("node {id} is running");
        }
        let child = self.spawn(id, env)?;
        self.node_mut(id)?.child = Some(child);
        self.write_description()
    }

    /// Reaps every node that has exited and says how each did; the others keep running. Those
    /// count as not running from now on (pid `null` in `cluster.json`) until restarted.
    pub fn reap_exited(&mut self) -> anyhow::Result<Vec<(u64, ExitStatus)>> {
        let mut exits = Vec::new();
        for node in &mut self.nodes {
            let Some(child) = &mut node.child else { continue };
            let status =
                child.try_wait().with_context(|| format!("waiting for node {}", node.id))?;
            if let Some(status) = status {
                node.child = None;
                exits.push((node.id, status));
            }
        }
        if !exits.is_empty() {
            self.write_description()?;
        }
        Ok(exits)
    }

    /// Whether node `id` is a member of this cluster.
    pub fn has_node(&self, id: u64) -> bool {
        self.nodes.iter().any(|n| n.id == id)
    }

    /// Node `id`'s log file.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// How node `id` exited, if it has (it is then reaped and counts as not running).
    pub fn exited(&mut self, id: u64) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let node = self.node_mut(id)?;
        let Some(child) = &mut node.child else { return Ok(None) };
        let status = child.try_wait().with_context(|| format!("waiting for node {id}"))?;
        if status.is_some() {
            node.child = None;
            self.write_description()?;
        }
        Ok(status)
    }

    /// Stops node `id` with SIGSTOP: it holds its sockets and state but does nothing, as a
    /// process stalled by its machine would.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, Signal::STOP)
    }

    /// Lets node `id` go on after [`LocalCluster::pause`] (SIGCONT).
    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, Signal::CONT)
    }

    /// Sends `signal` to node `id`, which must be running (not yet reaped: its pid is its own).
    fn signal(&mut self, id: u64, signal: Signal) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        let child = node.child.as_ref().with_context(|| format!("node {id} is not running"))?;
        kill_process(Pid::from_child(child), signal)
            .with_context(|| format!("sending {signal:?} to node {id}"))
    }

    /// Cuts node `id`'s raft links to `peers`, both ways (`[]` heals it), through its admin
    /// API; the cluster must run with [`ClusterConfig::fault_injection`].
    pub async fn cut(&self, id: u64, peers: &[u64]) -> anyhow::Result<()> {
        let node =
            self.nodes.iter().find(|n| n.id == id).with_context(|| format!("no node {id}"))?;
        let http = Http::new(Duration::from_secs(5));
        let body = json!({"cut_peers": peers}).to_string().into_bytes();
        let url = format!("{}/v1/admin/faults", node.admin_url);
        let answer = http
            .request("PUT", &url, &[], body)
            .await
            .with_context(|| format!("cutting node {id}'s links"))?;
        if answer.status != 200 {
            bail!("node {id}'s admin API answered {}: {}", answer.status, answer.body);
        }
        Ok(())
    }

    /// A client for this cluster's APIs (trusting its CA when it serves HTTPS).
    pub fn http(&self, timeout: Duration) -> Http {
        Http::trusting(timeout, self.ca.clone())
    }

    /// Waits until every node answers `/healthz` and names the same leader in `/v1/status`,
    /// and that leader says it leads: then a write sent to any voter is applied and any node
    /// can serve reads.
    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let http = self.http(Duration::from_secs(2));
        let deadline = Instant::now() + limit;
        loop {
            self.check_children()?;
            let mut healthy = 0;
            let mut leaders = Vec::new();
            let mut leading = Vec::new();
            for node in &self.nodes {
                if !matches!(http.get(&node.url, "/healthz", None).await, Ok(a) if a.status == 200)
                {
                    continue;
                }
                healthy += 1;
                if let Ok(answer) = http.get(&node.url, "/v1/status", None).await {
                    leaders.push(answer.body["leader_id"].as_u64().unwrap_or(0));
                    if answer.body["role"] == "leader" {
                        leading.push(node.id);
                    }
                }
            }
            let leader = leaders.first().copied().filter(|&id| id != 0);
            let agreed = leaders.len() == self.nodes.len()
                && leaders.iter().all(|&id| Some(id) == leader)
                && leader.is_some_and(|id| leading == [id]);
            if agreed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the cluster was not up within {limit:?} ({healthy} of {} nodes healthy, \
                     leaders named: {leaders:?}); see the node logs in {}",
                    self.nodes.len(),
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if a node exited.
    pub fn check_children(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            let exited = match &mut node.child {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                node.child = None;
                let log = self.dir.join(format!("node-{}.log", node.id));
                bail!("node {} exited ({status}); its log is {}", node.id, log.display());
            }
        }
        Ok(())
    }

    /// What `cluster.json` says: chain, registrar key file, and each node's URLs and pid.
    pub fn description(&self) -> Value {
        let nodes: Vec<Value> = (self.nodes.iter())
            .map(|n| {
                json!({"id": n.id, "role": n.role, "url": n.url, "admin_url": n.admin_url,
                       "pid": n.pid()})
            })
            .collect();
        json!({
            "chain_id": self.chain_id,
            "registrar_key": self.registrar_key,
            "nodes": nodes,
        })
    }

    /// Writes `cluster.json` whole through a rename, so that a reader never sees half of it.
    fn write_description(&self) -> anyhow::Result<()> {
        if !self.ready {
            return Ok(());
        }
        let path = self.dir.join("cluster.json");
        let temporary = self.dir.join("cluster.json.new");
        let text = serde_json::to_string_pretty(&self.description())?;
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Stops every node: SIGTERM, then SIGKILL for any still running after 15 s. Returns how
    /// each node that was still running exited (a clean stop is a success; `signal: 9` means
    /// it had to be killed).
    pub fn stop(&mut self) -> Vec<(u64, ExitStatus)> {
        for node in &self.nodes {
            if let Some(child) = &node.child {
                terminate(child);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut exits = Vec::new();
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else { continue };
            if let Ok(status) = wait_or_kill(&mut child, deadline) {
                exits.push((node.id, status));
            }
        }
        // `cluster.json` keeps the pids the nodes last ran as, for whoever checks that they
        // are gone.
        exits
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// SIGTERM (and SIGCONT, in case the node was paused). A child that has already exited (not
/// yet reaped) refuses neither; if a signal fails anyway, the child is killed after the grace
/// period instead.
fn terminate(child: &Child) {
    let pid = Pid::from_child(child);
    let _ = kill_process(pid, Signal::TERM);
    let _ = kill_process(pid, Signal::CONT);
}

/// Waits for `child` until `deadline`, then kills it with SIGKILL; returns how it exited.
fn wait_or_kill(child: &mut Child, deadline: Instant) -> std::io::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for LocalCluster {
    /// Children never outlive the cluster: whatever still runs is killed and reaped.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
