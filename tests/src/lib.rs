//! Whole-system fault tests, in the spirit of Jepsen's bank test and TigerBeetle's simulator:
//! real `scf-node` processes on loopback (3 voters and an observer, RocksDB, fsync on) run the
//! simulator's supply-chain workload while a [`nemesis`] crashes (`kill -9`), pauses (SIGSTOP)
//! and partitions them; every client attempt is recorded in a [`history`]; once every fault is
//! healed and the cluster is quiet, the [`checker`] holds the cluster to what its clients were
//! told and to the domain's invariants.
//!
//! A [`Scenario`] is one such run, drawn from a seed. A failure keeps the run's directory (node
//! configurations, data and logs) and says the seed, the nemesis's schedule, the problems, and
//! where the history was written. `SCF_FAULT_SEED` reruns a seed; `SCF_FAULT_SECONDS` makes the
//! workload window longer (the soak: `scripts/soak.sh`); `SCF_NODE_BIN` names the node binary.

pub mod browser;
pub mod checker;
pub mod driver;
pub mod history;
pub mod nemesis;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sim::client::{Http, read_key_file};
use sim::cluster::{ClusterConfig, LocalCluster, find_node_binary};
use sim::node_api::{genesis_of, status};
use sim::workload::{Workload, WorkloadConfig};
use testkit::TestDir;

use crate::checker::{Target, Verdict, check_cluster};
use crate::driver::{Driven, Driver, DriverConfig};
use crate::history::History;
use crate::nemesis::{Kind, Nemesis, NemesisConfig};

/// One run: a cluster, a workload, a nemesis.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Names the run's directory.
    pub name: &'static str,
    /// Seed of the workload and of the nemesis.
    pub seed: u64,
    /// Voters (ids 1 and up).
    pub voters: usize,
    /// Observers (the ids after the voters).
    pub observers: usize,
    /// The workload's window; faults happen inside it.
    pub duration: Duration,
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// Share (percent) of transactions whose client walks away at their first attempt without
    /// an outcome, for the checker to resolve by lookup.
    pub abandon_percent: u32,
    /// The faults the nemesis draws from (none: a run without faults).
    pub kinds: Vec<Kind>,
    /// Which nodes it strikes besides the leader: voters only, or the observers too.
    pub strike_observers: bool,
    /// Faults are held for this long, at least and at most (ms).
    pub hold_ms: (u64, u64),
    /// The cluster is left alone for this long between faults, at least and at most (ms).
    pub quiet_ms: (u64, u64),
    /// Keep the observers down (killed) for the whole window, restarted only afterwards: they
    /// must catch up.
    pub observers_down: bool,
    /// A crash point armed on one node during the window, instead of the nemesis.
    pub failpoint: Option<Failpoint>,
    /// TOML appended to every node's configuration (raft tuning).
    pub extra_toml: String,
}

/// A crash point (raft-node's `crash_point!`) armed on one node: the node is killed, restarted
/// with `FAILPOINTS` set, must abort at the point within the window, and is restarted without
/// it. Needs an `scf-node` built with crash points (see [`failpoint_node_binary`]).
#[derive(Debug, Clone)]
pub struct Failpoint {
    /// The point's name (`raft::append::before_hard_state`).
    pub name: &'static str,
    /// The `fail` crate's action: `return` aborts at the first pass, `20*off->return` at the
    /// twenty-first.
    pub action: &'static str,
    /// Arm a follower (a voter that does not lead), else an observer.
    pub follower: bool,
    /// How many entries the leader must apply past the node's applied index while the node is
    /// down, before it is restarted armed: with a short `compact_after_entries`, more than twice
    /// that makes the leader compact what the node lacks, so that it needs a snapshot (0: restart
    /// at once).
    pub lag_entries: u64,
}

impl Scenario {
    /// A scenario with the seed and window taken from `SCF_FAULT_SEED` and
    /// `SCF_FAULT_SECONDS` when set (else a new seed, and `seconds`).
    pub fn new(name: &'static str, seconds: u64, kinds: Vec<Kind>) -> Self {
        let seed =
            std::env::var("SCF_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(
                || (u64::from(std::process::id()) << 32) | (sim::client::now_ms() & 0xffff_ffff),
            );
        let seconds =
            std::env::var("SCF_FAULT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        Self {
            name,
            seed,
            voters: 3,
            observers: 1,
            duration: Duration::from_secs(seconds),
            concurrency: 16,
            abandon_percent: 10,
            kinds,
            strike_observers: true,
            hold_ms: (500, 2_500),
            quiet_ms: (500, 1_500),
            observers_down: false,
            failpoint: None,
            extra_toml: String::new(),
        }
    }
}

/// What a passing run did.
#[derive(Debug)]
pub struct Summary {
    /// The checker's figures.
    pub verdict: Verdict,
    /// The clients' figures.
    pub driven: Driven,
    /// Faults injected: crashes, pauses, isolations.
    pub faults: (usize, usize, usize),
    /// The nemesis's log.
    pub schedule: Vec<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (v, d) = (&self.verdict, &self.driven);
        let resolved = v.resolved_applied + v.resolved_rejected + v.resolved_absent;
        write!(
            f,
            "{} transactions submitted ({} resubmissions); {} distinct transactions acknowledged; \
             {} refused before any block {:?}; {resolved} never answered, resolved by lookup \
             ({} applied, {} rejected, {} not in the chain); faults: {} crashes, {} pauses, {} \
             isolations; chain: height {}, {} transactions, {} applied, {} duplicate copies \
             recorded as such; lost: {}, applied twice: {}",
            d.transactions,
            d.resubmissions,
            v.acknowledged,
            d.refused.values().sum::<u64>(),
            d.refused,
            v.resolved_applied,
            v.resolved_rejected,
            v.resolved_absent,
            self.faults.0,
            self.faults.1,
            self.faults.2,
            v.height,
            v.chain_txs,
            v.applied,
            v.duplicate_copies,
            v.lost,
            v.applied_twice,
        )
    }
}

/// The `scf-node` the scenarios start: `SCF_NODE_BIN` when set (the soak runs a copy, so that
/// a build during a long run does not change the binary under it), else the one cargo built.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    match std::env::var_os("SCF_NODE_BIN") {
        Some(path) => Ok(PathBuf::from(path)),
        None => find_node_binary(),
    }
}

/// The `scf-node` built with crash points: `SCF_FAILPOINTS_NODE_BIN` when set, else the one
/// cargo built, which has them when the workspace's tests are built with
/// `--features api/failpoints` (as `scripts/test.sh` does). Crash points are inert until
/// `FAILPOINTS` arms one, so every other test runs the same binary unchanged; one build of the
/// workspace serves them all (TiKV's habit).
pub fn failpoint_node_binary() -> anyhow::Result<PathBuf> {
    match std::env::var_os("SCF_FAILPOINTS_NODE_BIN") {
        Some(path) => Ok(PathBuf::from(path)),
        None => node_binary(),
    }
}

/// The configuration of a local cluster of `voters` and `observers` in `dir` (under `cluster/`),
/// with the `scf-node` the scenarios start, a minute to start, and nothing else: what the tests
/// that start their own cluster share (their directory is a `testkit::TestDir`, kept with the
/// node logs after a failure).
pub fn cluster_config(
    dir: &Path,
    voters: usize,
    observers: usize,
) -> anyhow::Result<ClusterConfig> {
    Ok(ClusterConfig {
        voters,
        observers,
        dir: dir.join("cluster"),
        node_bin: node_binary()?,
        start_timeout: Duration::from_secs(60),
        fault_injection: false,
        extra_toml: String::new(),
        https: false,
    })
}

/// Runs `scenario`. On success the cluster is stopped and its directory removed; on failure
/// the directory is kept and the error says the seed, the schedule, the problems and where the
/// history is.
pub async fn run(scenario: &Scenario) -> anyhow::Result<Summary> {
    let dir = TestDir::new(&format!("faults-{}", scenario.name));
    let result = run_in(scenario, dir.path()).await;
    if result.is_err() {
        dir.keep();
    }
    result
}

/// [`run`] in `dir`.
async fn run_in(scenario: &Scenario, dir: &Path) -> anyhow::Result<Summary> {
    let mut cluster = LocalCluster::start(&ClusterConfig {
        voters: scenario.voters,
        observers: scenario.observers,
        dir: dir.join("cluster"),
        node_bin: if scenario.failpoint.is_some() {
            failpoint_node_binary()?
        } else {
            node_binary()?
        },
        start_timeout: Duration::from_secs(60),
        fault_injection: true,
        extra_toml: scenario.extra_toml.clone(),
        https: false,
    })
    .await?;
    let outcome = drive(scenario, &mut cluster).await;
    let exits = cluster.stop();
    let history_path = dir.join("history.jsonl");
    let (summary, history, mut problems) = match outcome {
        Ok((summary, history)) => {
            let mut problems = summary.verdict.problems.clone();
            problems.extend(summary.driven.unmet.iter().map(|u| format!("unexpected: {u}")));
            (Some(summary), history, problems)
        }
        Err((error, history, schedule)) => {
            let mut problems = vec![format!("{error:#}")];
            problems.extend(schedule.iter().map(|s| format!("(schedule) {s}")));
            (None, history, problems)
        }
    };
    for (id, status) in exits {
        if !status.success() {
            problems.push(format!("node {id} did not stop cleanly on SIGTERM: {status}"));
        }
    }
    match summary {
        Some(summary) if problems.is_empty() => Ok(summary),
        summary => {
            if let Err(error) = history.write(&history_path) {
                problems
                    .push(format!("writing the history to {}: {error}", history_path.display()));
            }
            let mut text = format!(
                "scenario {} failed with seed {} (rerun: SCF_FAULT_SEED={} SCF_FAULT_SECONDS={})\n",
                scenario.name,
                scenario.seed,
                scenario.seed,
                scenario.duration.as_secs()
            );
            if let Some(summary) = &summary {
                let _ = writeln!(text, "nemesis schedule:");
                for line in &summary.schedule {
                    let _ = writeln!(text, "  {line}");
                }
                let _ = writeln!(text, "figures: {summary}");
            }
            let _ = writeln!(text, "problems ({}):", problems.len());
            for problem in problems.iter().take(40) {
                let _ = writeln!(text, "  {problem}");
            }
            let _ = writeln!(
                text,
                "history (one attempt per line): {}\nnode logs and data: {}",
                history_path.display(),
                dir.join("cluster").display()
            );
            anyhow::bail!(text)
        }
    }
}

type Failure = (anyhow::Error, Arc<History>, Vec<String>);

/// The workload under the nemesis, then healing and the check.
async fn drive(
    scenario: &Scenario,
    cluster: &mut LocalCluster,
) -> Result<(Summary, Arc<History>), Failure> {
    let history = Arc::new(History::default());
    let started = Instant::now();
    let mut nemesis = Nemesis::new(
        NemesisConfig {
            seed: scenario.seed ^ 0x006e_656d_6573_6973, // "nemesis": its own stream
            kinds: scenario.kinds.clone(),
            victims: (cluster.nodes.iter())
                .filter(|n| n.role == "voter" || scenario.strike_observers)
                .map(|n| n.id)
                .collect(),
            hold_ms: scenario.hold_ms,
            quiet_ms: scenario.quiet_ms,
        },
        started,
    );
    let result = drive_inner(scenario, cluster, &history, &mut nemesis, started).await;
    match result {
        Ok((verdict, driven)) => {
            let faults = (
                nemesis.count(Kind::Crash),
                nemesis.count(Kind::Pause),
                nemesis.count(Kind::Isolate),
            );
            Ok((Summary { verdict, driven, faults, schedule: nemesis.log }, history))
        }
        Err(error) => Err((error, history, nemesis.log)),
    }
}

async fn drive_inner(
    scenario: &Scenario,
    cluster: &mut LocalCluster,
    history: &Arc<History>,
    nemesis: &mut Nemesis,
    started: Instant,
) -> anyhow::Result<(Verdict, Driven)> {
    let http = Http::new(Duration::from_secs(5));
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let voters: Vec<String> =
        cluster.nodes.iter().filter(|n| n.role == "voter").map(|n| n.url.clone()).collect();
    let observer = (cluster.nodes.iter())
        .find(|n| n.role == "observer")
        .map(|n| n.url.clone())
        .context("the checks read the chain from an observer")?;
    let observers: Vec<u64> =
        cluster.nodes.iter().filter(|n| n.role == "observer").map(|n| n.id).collect();
    let (_, body) = status(&http, &urls[0]).await?;
    let genesis = genesis_of(&body)?;
    let mut config = WorkloadConfig::new(scenario.seed, &cluster.chain_id);
    config.registrar_key = Some(read_key_file(&cluster.registrar_key)?);
    config.lives_in_flight = scenario.concurrency * 4;
    let mut workload = Workload::new(config);
    let mut driver = Driver::new(
        DriverConfig {
            urls: voters,
            concurrency: scenario.concurrency,
            give_up: Duration::from_secs(60),
            abandon_percent: scenario.abandon_percent,
            seed: scenario.seed ^ 0x0063_6c69_656e_7473, // "clients": its own stream
        },
        history.clone(),
        started,
    );
    driver.setup(&mut workload).await?;

    if scenario.observers_down {
        for &id in &observers {
            cluster.kill(id)?;
            nemesis.also(format!("kill -9 observer {id} for the whole window"));
        }
    }
    let end = Instant::now() + scenario.duration;
    let (driven, struck) = if let Some(failpoint) = &scenario.failpoint {
        tokio::join!(driver.run(&mut workload, end), arm(cluster, failpoint, nemesis, end))
    } else if scenario.kinds.is_empty() {
        (driver.run(&mut workload, end).await, Ok(()))
    } else {
        tokio::join!(driver.run(&mut workload, end), nemesis.run(cluster, end))
    };
    struck?;
    driven?;
    if scenario.observers_down {
        for &id in &observers {
            cluster.restart(id)?;
            nemesis.also(format!("restart observer {id}"));
        }
    }
    nemesis.also("window over; every fault healed");

    let regulator = &workload.cast().regulator;
    let target = Target {
        urls: &urls,
        observer: &observer,
        genesis: &genesis,
        regulator: (&regulator.party_id, &regulator.key),
    };
    let verdict = check_cluster(&target, &history.attempts()).await?;
    Ok((verdict, std::mem::take(&mut driver.driven)))
}

/// Arms `failpoint` on a follower or an observer, waits for the node to abort there, and
/// restarts it unarmed.
async fn arm(
    cluster: &mut LocalCluster,
    failpoint: &Failpoint,
    nemesis: &mut Nemesis,
    end: Instant,
) -> anyhow::Result<()> {
    let leader = nemesis.leader(cluster).await;
    let role = if failpoint.follower { "voter" } else { "observer" };
    let victim = (cluster.nodes.iter())
        .find(|n| n.role == role && Some(n.id) != leader)
        .map(|n| n.id)
        .with_context(|| format!("no {role} to arm that does not lead"))?;
    let http = Http::new(Duration::from_secs(2));
    let applied_index = |body: &serde_json::Value| body["applied_index"].as_u64().unwrap_or(0);
    let url = cluster.nodes.iter().find(|n| n.id == victim).map(|n| n.url.clone());
    let (_, body) = status(&http, &url.context("the victim has a URL")?).await?;
    let behind = applied_index(&body) + failpoint.lag_entries;
    cluster.kill(victim)?;
    nemesis
        .also(format!("kill -9 node {victim} (applied index {}) to arm it", applied_index(&body)));
    if failpoint.lag_entries > 0 {
        let leader_url = (cluster.nodes.iter())
            .find(|n| Some(n.id) == leader)
            .map(|n| n.url.clone())
            .context("a leader to watch")?;
        loop {
            let ahead = status(&http, &leader_url).await.map(|(_, b)| applied_index(&b));
            if ahead.as_ref().is_ok_and(|&a| a >= behind) {
                break;
            }
            if Instant::now() >= end {
                anyhow::bail!("the leader did not apply past index {behind} within the window");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nemesis.also(format!("the leader applied past index {behind}"));
    }
    let setting = format!("{}={}", failpoint.name, failpoint.action);
    cluster.restart_with(victim, &[("FAILPOINTS", &setting)])?;
    nemesis.also(format!("restart node {victim} with FAILPOINTS={setting}"));
    let status = loop {
        if let Some(status) = cluster.exited(victim)? {
            break status;
        }
        if Instant::now() >= end {
            anyhow::bail!(
                "node {victim} never reached {} within the window (was scf-node built with \
                 `--features api/failpoints`? scripts/test.sh builds it so)",
                failpoint.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // An abort: SIGABRT, signal 6.
    if std::os::unix::process::ExitStatusExt::signal(&status) != Some(6) {
        anyhow::bail!("node {victim} exited ({status}) but not by aborting at {}", failpoint.name);
    }
    nemesis.also(format!("node {victim} aborted at {}", failpoint.name));
    cluster.restart(victim)?;
    nemesis.also(format!("restart node {victim} unarmed"));
    Ok(())
}
