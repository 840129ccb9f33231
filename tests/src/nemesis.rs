//! The nemesis: faults injected into a running local cluster on a schedule drawn from a seed,
//! one at a time, each held for a while and then healed. Every action is logged with its time,
//! so that a failure can say exactly what was done to the cluster and when.
//!
//! Faults: `kill -9` and a restart on the same disk (a crash), SIGSTOP and SIGCONT (a process
//! stalled by its machine: it keeps its sockets but answers nothing), and a network partition
//! that isolates one node from every other (the node's raft links cut both ways through its
//! admin API's fault switch; clients still reach it over HTTP, as in a real partial partition).
//! The victim is the current leader half of the time.

use std::time::{Duration, Instant};

use sim::client::Http;
use sim::cluster::LocalCluster;
use sim::node_api::status;
use sim::rng::Rng;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `kill -9`, then a restart.
    Crash,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Every raft link of the node cut, then healed.
    Isolate,
}

/// What the nemesis does.
#[derive(Debug, Clone)]
pub struct NemesisConfig {
    /// Its seed.
    pub seed: u64,
    /// The faults it chooses from.
    pub kinds: Vec<Kind>,
    /// Nodes it may strike (ids); the leader is always among the candidates.
    pub victims: Vec<u64>,
    /// How long a fault is held, at least and at most.
    pub hold_ms: (u64, u64),
    /// How long the cluster is left alone between faults, at least and at most.
    pub quiet_ms: (u64, u64),
}

/// The nemesis of one run.
pub struct Nemesis {
    config: NemesisConfig,
    rng: Rng,
    started: Instant,
    http: Http,
    /// Every action, with its time since the run started.
    pub log: Vec<String>,
    /// Faults injected, by kind.
    pub injected: Vec<(Kind, u64)>,
}

impl Nemesis {
    /// A nemesis for `config`, timed from `started`.
    pub fn new(config: NemesisConfig, started: Instant) -> Self {
        let rng = Rng::new(config.seed);
        Self {
            config,
            rng,
            started,
            http: Http::new(Duration::from_secs(2)),
            log: Vec::new(),
            injected: Vec::new(),
        }
    }

    fn note(&mut self, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.log.push(format!("{at:8.3}s {what}"));
    }

    /// The voter that says it leads, if one does.
    pub async fn leader(&self, cluster: &LocalCluster) -> Option<u64> {
        for node in cluster.nodes.iter().filter(|n| n.role == "voter" && n.pid().is_some()) {
            if let Ok((status, _)) = status(&self.http, &node.url).await {
                if status.role == "leader" {
                    return Some(node.id);
                }
            }
        }
        None
    }

    /// Strikes until `end`: a quiet spell, a fault, its hold, its healing; the last fault is
    /// healed before `end`. Returns at the first error of the cluster's control (a node that
    /// could not be restarted, say), leaving the fault in place: the run then fails, and
    /// stopping the cluster resumes and stops every node.
    pub async fn run(&mut self, cluster: &mut LocalCluster, end: Instant) -> anyhow::Result<()> {
        let (hold_min, hold_max) = self.config.hold_ms;
        let (quiet_min, quiet_max) = self.config.quiet_ms;
        loop {
            let quiet = Duration::from_millis(self.rng.range(quiet_min, quiet_max));
            let hold = Duration::from_millis(self.rng.range(hold_min, hold_max));
            if Instant::now() + quiet + hold >= end {
                return Ok(());
            }
            tokio::time::sleep(quiet).await;
            // Every draw is made every time, so that the schedule's random stream does not
            // depend on what the cluster answered.
            let kind = *self.rng.pick(&self.config.kinds);
            let strike_leader = self.rng.percent(50);
            let other = *self.rng.pick(&self.config.victims);
            let leader = self.leader(cluster).await;
            let victim = match leader {
                Some(leader) if strike_leader => leader,
                _ => other,
            };
            let who = if leader == Some(victim) {
                format!("node {victim} (the leader)")
            } else {
                format!("node {victim}")
            };
            self.strike(cluster, kind, victim, &who).await?;
            tokio::time::sleep(hold).await;
            self.heal(cluster, kind, victim).await?;
        }
    }

    async fn strike(
        &mut self,
        cluster: &mut LocalCluster,
        kind: Kind,
        victim: u64,
        who: &str,
    ) -> anyhow::Result<()> {
        match kind {
            Kind::Crash => {
                cluster.kill(victim)?;
                self.note(format!("kill -9 {who}"));
            }
            Kind::Pause => {
                cluster.pause(victim)?;
                self.note(format!("SIGSTOP {who}"));
            }
            Kind::Isolate => {
                let others: Vec<u64> =
                    cluster.nodes.iter().map(|n| n.id).filter(|&id| id != victim).collect();
                cluster.cut(victim, &others).await?;
                self.note(format!("isolate {who} from {others:?}"));
            }
        }
        self.injected.push((kind, victim));
        Ok(())
    }

    async fn heal(
        &mut self,
        cluster: &mut LocalCluster,
        kind: Kind,
        victim: u64,
    ) -> anyhow::Result<()> {
        let who = format!("node {victim}");
        match kind {
            Kind::Crash => {
                cluster.restart(victim)?;
                self.note(format!("restart {who}"));
            }
            Kind::Pause => {
                cluster.resume(victim)?;
                self.note(format!("SIGCONT {who}"));
            }
            Kind::Isolate => {
                cluster.cut(victim, &[]).await?;
                self.note(format!("heal {who}"));
            }
        }
        Ok(())
    }

    /// Logs an action the test took itself (outside the schedule).
    pub fn also(&mut self, what: impl Into<String>) {
        self.note(what.into());
    }

    /// Faults injected of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.injected.iter().filter(|(k, _)| *k == kind).count()
    }
}
