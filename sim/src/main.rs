//! `scf-sim`: the supply-chain workload simulator and command-line client.
//!
//! `scf-sim run` with no arguments is the README's main command: it starts a local cluster of
//! `scf-node` processes (3 voters, 1 observer), drives the workload against it, checks it and
//! stops it; `--target` drives a running cluster instead, `--in-process` the state machine
//! alone. `scf-sim cluster` starts a local cluster and keeps it up; `scf-sim etcd` drives an
//! etcd cluster with plain puts (the benchmarks' baseline); `keygen`, `tx`, `submit` and `get`
//! script the ledger from a shell (see `scripts/walkthrough.sh`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ledger::crypto::SigningKey;
use sim::client::Http;
use sim::cluster::{ClusterConfig, LocalCluster, find_node_binary};
use sim::inproc::InProcessConfig;
use sim::remote::{Load, RemoteConfig};
use sim::txcmd::TxCommand;

#[derive(Parser)]
#[command(name = "scf-sim", version, about = "scf-ledger workload simulator and client")]
struct Cli {
    /// The CA that nodes serving HTTPS (`https://` URLs) must present certificates of: the
    /// cluster's `ca.pem` (`scf-sim certs`, or `tls/ca.pem` in a `scf-sim cluster` directory).
    #[arg(long, global = true, env = "SCF_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive the supply-chain workload and report throughput, latency and invariant checks.
    Run(RunArgs),
    /// Start a local cluster of scf-node processes on loopback and keep it up until interrupted;
    /// `scf-sim cluster restart --dir DIR N` restarts node N of a running one.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Cluster(ClusterArgs),
    /// The baseline: drive a running etcd cluster with plain puts, with the same load as `run`.
    Etcd(EtcdArgs),
    /// Generate a secp256k1 key pair and print it as JSON (secret and public key, hex).
    Keygen {
        /// Write it to this file (created, readable by you only) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build and sign one transaction; print it, or submit it with --submit.
    Tx(Box<TxArgs>),
    /// Submit signed transactions (`{"body", "signature"}` or an array) from a file or stdin.
    Submit(SubmitArgs),
    /// GET any API path, signed as a party with --as and --key for private records.
    Get(GetArgs),
    /// Issue the certificates of a cluster's peer links: a cluster CA (reused if DIR has one),
    /// a certificate per node id, and an operator's; keys are written readable by you only.
    Certs(CertsArgs),
}

#[derive(clap::Args)]
struct CertsArgs {
    /// Where the files go: ca.pem and ca-key.pem (keep that one off the nodes), node-ID.pem and
    /// node-ID-key.pem, operator.pem and operator-key.pem. Created 0700 if missing.
    #[arg(long)]
    dir: PathBuf,
    /// The node ids to issue certificates for, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<u64>,
    /// Extra names in every node certificate, for HTTPS clients: IP addresses or host names
    /// (repeat the flag, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    san: Vec<String>,
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// Voters.
    #[arg(long, default_value_t = 3)]
    voters: usize,
    /// Observers.
    #[arg(long, default_value_t = 1)]
    observers: usize,
    /// Where configurations, data, logs, the registrar key, cluster.json and the control socket
    /// go (a new or empty directory).
    #[arg(long, required = true)]
    dir: Option<PathBuf>,
    /// The scf-node binary (default: next to scf-sim, else on PATH).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Start the nodes with fault injection on: each node's admin API can then cut its raft
    /// links (`PUT /v1/admin/faults`), to watch the cluster through a partition.
    #[arg(long)]
    fault_injection: bool,
    /// Serve the nodes' public APIs over HTTPS (clients: `--ca-file DIR/tls/ca.pem`). Raft
    /// links are mutual TLS either way.
    #[arg(long)]
    https: bool,
    /// Start a node that exits (a crash, `kill -9`) again after this delay, on its data dir
    /// and configuration: e.g. `2s`, `500ms`, or a number of seconds. Without it a node that
    /// exits stays down until `scf-sim cluster restart`; the others keep running either way.
    #[arg(long, value_name = "DELAY", value_parser = parse_duration)]
    restart: Option<Duration>,
    #[command(subcommand)]
    action: Option<ClusterAction>,
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Restart node N of the cluster running in DIR (a running node is stopped first, with
    /// SIGTERM): its launcher starts it again, on its data dir and configuration, and stops it
    /// with the others. Exits 1 if the launcher refuses (no such node), 2 if none runs there.
    Restart {
        /// The running cluster's directory (its `--dir`).
        #[arg(long)]
        dir: PathBuf,
        /// The node's id, as `scf-sim cluster` printed it.
        node: u64,
    },
}

/// Who signs. Like every option of `tx`, these are global: they may come before or after the
/// command's name.
#[derive(clap::Args)]
struct SignerArgs {
    /// The signing party's id.
    #[arg(long, global = true, env = "SCF_SIGNER")]
    signer: Option<String>,
    /// Its key file (as `scf-sim keygen --out` writes it).
    #[arg(long, global = true, env = "SCF_KEY", conflicts_with = "secret")]
    key: Option<PathBuf>,
    /// Its secret key, hex (prefer --key: command lines are visible to other users).
    #[arg(long, global = true)]
    secret: Option<String>,
}

impl SignerArgs {
    fn identity(&self) -> anyhow::Result<Option<(String, SigningKey)>> {
        let key = match (&self.key, &self.secret) {
            (Some(path), _) => Some(sim::client::read_key_file(path)?),
            (None, Some(secret)) => Some(sim::client::secret_key(secret)?),
            (None, None) => None,
        };
        match (&self.signer, key) {
            (Some(party), Some(key)) => Ok(Some((party.clone(), key))),
            (None, None) => Ok(None),
            (Some(_), None) => bail!("--signer/--as needs --key FILE or --secret HEX"),
            (None, Some(_)) => bail!("--key/--secret needs the party id (--signer or --as)"),
        }
    }
}

/// `scf-sim tx`. Its options are global (before or after the command's name), so none of them
/// can be required by clap: `tx` checks `--chain` itself.
#[derive(clap::Args)]
struct TxArgs {
    /// The chain id (required).
    #[arg(long, global = true, env = "SCF_CHAIN")]
    chain: Option<String>,
    #[command(flatten)]
    signer: SignerArgs,
    /// The nonce (default: the current time in ns, unique per transaction).
    #[arg(long, global = true)]
    nonce: Option<u64>,
    /// How long the transaction stays valid, from now (ledger rule: at most 1 hour ahead of
    /// ledger time, so at most 1h here).
    #[arg(long, global = true, default_value = "10m", value_parser = parse_valid_for)]
    valid_for: Duration,
    /// The command as JSON, from this file or `-` for stdin, instead of a subcommand.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Submit it to this node and print the answer instead of the transaction.
    #[arg(long, global = true, env = "SCF_URL")]
    submit: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<TxCommand>,
}

#[derive(clap::Args)]
struct OutputArgs {
    /// With --submit: false answers once the leader has it on disk (202 pending).
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    wait: bool,
    /// Print only this field of the answer (a JSON pointer such as /created_ids/0); repeat
    /// for several, one per line.
    #[arg(long, global = true)]
    field: Vec<String>,
}

#[derive(clap::Args)]
struct SubmitArgs {
    /// A node's URL.
    #[arg(long, env = "SCF_URL")]
    url: String,
    #[command(flatten)]
    output: OutputArgs,
    /// The signed transactions (default: stdin).
    file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct GetArgs {
    /// A node's URL.
    #[arg(long, env = "SCF_URL")]
    url: String,
    /// The path and query, e.g. /v1/invoices/inv-1 or /v1/tokens?holder=parts.
    path: String,
    /// Sign the request as this party (private records need it).
    #[arg(long = "as")]
    reader: Option<String>,
    /// The reader's key file.
    #[arg(long, conflicts_with = "secret")]
    key: Option<PathBuf>,
    /// The reader's secret key, hex.
    #[arg(long)]
    secret: Option<String>,
    /// Print only this field of the answer (a JSON pointer); repeat for several.
    #[arg(long)]
    field: Vec<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Comma-separated URLs of a running cluster's nodes (voters and observers: all are
    /// checked). Without it, a local cluster of scf-node processes is started for the run.
    #[arg(long, value_delimiter = ',', conflicts_with = "in_process")]
    target: Vec<String>,
    /// With --target: the chain's registrar key file (the workload registers its parties).
    #[arg(long, env = "SCF_REGISTRAR_KEY")]
    registrar_key: Option<PathBuf>,
    #[command(flatten)]
    load: LoadArgs,
    /// Transactions per request (1: single submissions); in process, most per block.
    #[arg(long)]
    batch: Option<usize>,
    /// Against a cluster: transactions to sign before the warm-up, so that no client CPU goes to
    /// signing while the server is measured (0: sign each life when it starts). Default: enough
    /// for the warm-up and the window at the --rate offered, or at 5,000 tx/s in closed loop,
    /// plus the lives in flight; at most 400,000.
    #[arg(long, conflicts_with = "in_process")]
    presign: Option<u64>,
    /// Workload seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Local cluster: voters.
    #[arg(long, default_value_t = 3)]
    voters: usize,
    /// Local cluster: observers.
    #[arg(long, default_value_t = 1)]
    observers: usize,
    /// Local cluster: its directory (new or empty), kept after the run. Default: a temporary
    /// one, removed after a successful run and kept (for its logs) after a failed one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Local cluster: the scf-node binary (default: next to scf-sim, else on PATH).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Drive the ledger state machine in this process instead (no network, Raft or disk):
    /// the cost of the rules alone.
    #[arg(long)]
    in_process: bool,
    /// Write the JSON report here (default: stdout, after the human report).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
    /// Write every workload party's key file here (`{party_id}.json`, with its `party_id` and
    /// role), before the run: the keys to sign in to the explorer or sign reads with, as the
    /// regulator (`regulator.json`), a bank or a supplier. The directory is created if needed.
    #[arg(long)]
    keys: Option<PathBuf>,
}

/// The window and the load, the same for `run` and `etcd`.
#[derive(clap::Args)]
struct LoadArgs {
    /// Measured window, e.g. `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before the window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: offer this many transactions (etcd: puts) per second, whatever the answers.
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<u64>,
    /// Closed loop: requests in flight at once (in process: receivable lives in flight).
    #[arg(long)]
    concurrency: Option<usize>,
}

impl LoadArgs {
    /// The load against a cluster: open loop with --rate, else closed loop.
    fn load(&self) -> anyhow::Result<Load> {
        Ok(match (self.rate, self.concurrency) {
            (Some(0), _) => bail!("--rate must be at least 1"),
            (Some(rate), _) => Load::Open { rate },
            (None, Some(0)) => bail!("--concurrency must be at least 1"),
            (None, concurrency) => {
                Load::Closed { concurrency: concurrency.unwrap_or(CLUSTER_CONCURRENCY) }
            }
        })
    }
}

#[derive(clap::Args)]
struct EtcdArgs {
    /// Comma-separated client URLs of the etcd members (writes go to the leader among them).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    #[command(flatten)]
    load: LoadArgs,
    /// Puts per request (1: plain puts; more: one etcd transaction of that many puts).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Bytes of each value (a signed ledger transaction is about this size).
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Write the JSON report here (default: stdout, after the human report).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

/// Closed-loop requests in flight against a cluster, by default.
const CLUSTER_CONCURRENCY: usize = 64;
/// Receivable lives in flight in process, by default.
const IN_PROCESS_LIVES: usize = 512;
/// Most transactions per block in process, by default.
const IN_PROCESS_BATCH: usize = 1_024;

/// Parses `30s`, `2m`, `1h`, `500ms` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.find(|c: char| !c.is_ascii_digit()).map_or((text, "s"), |i| (&text[..i], &text[i..]));
    let value: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 2m or 500ms"))?;
    let too_long = || format!("{text:?} is too long");
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value.checked_mul(60).ok_or_else(too_long)?)),
        "h" => Ok(Duration::from_secs(value.checked_mul(3_600).ok_or_else(too_long)?)),
        _ => Err(format!("{text:?}: unit must be ms, s, m or h")),
    }
}

/// A transaction's validity: longer than zero and at most an hour, since the ledger rejects
/// one whose `valid_until` is more than an hour ahead of its time (`valid_until_too_far`).
fn parse_valid_for(text: &str) -> Result<Duration, String> {
    let valid_for = parse_duration(text)?;
    if valid_for.is_zero() || valid_for > Duration::from_secs(3_600) {
        return Err(format!(
            "{text:?}: a transaction is valid for more than 0 and at most 1h (the ledger rejects \
             one valid for longer)"
        ));
    }
    Ok(valid_for)
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("scf-sim: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn main_inner() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(ca_file) = &cli.ca_file {
        sim::client::trust_ca_file(ca_file)?;
    }
    match cli.command {
        Command::Keygen { out } => {
            let key = SigningKey::generate(&mut ledger::crypto::rand::rng());
            match out {
                Some(path) => {
                    sim::client::write_key_file(&path, &key)?;
                    eprintln!("scf-sim: key written to {}", path.display());
                    write_out(format_args!("{}", hex::encode(key.public_key().to_bytes())))?;
                }
                None => write_out(format_args!("{}", sim::client::key_json(&key)))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cluster(args) => runtime()?.block_on(cluster(args)),
        Command::Certs(args) => {
            if args.nodes.contains(&0) {
                anyhow::bail!("node id 0 is reserved");
            }
            let certs = tls::issue_cluster(&args.dir, &args.nodes, &args.san)?;
            eprintln!("scf-sim: the cluster CA is {}", certs.ca_file.display());
            for (id, files) in &certs.nodes {
                eprintln!(
                    "scf-sim: node {id}: cert_file {}, key_file {}",
                    files.cert_file.display(),
                    files.key_file.display()
                );
            }
            eprintln!(
                "scf-sim: keep {} off the nodes; it issues every certificate the cluster trusts",
                certs.ca_key_file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tx(args) => runtime()?.block_on(tx(*args)),
        Command::Submit(args) => {
            let text = read_input(args.file.as_deref())?;
            let body: serde_json::Value =
                serde_json::from_str(&text).context("the input is not JSON")?;
            runtime()?.block_on(async {
                let http = Http::new(Duration::from_secs(60));
                let answer = http.submit(&args.url, &body, args.output.wait).await?;
                print_answer(&answer, &args.output.field, Answering::Submit)
            })
        }
        Command::Get(args) => {
            let signer = SignerArgs { signer: args.reader, key: args.key, secret: args.secret };
            let reader = signer.identity()?;
            runtime()?.block_on(async {
                let http = Http::new(Duration::from_secs(60));
                let reader = reader.as_ref().map(|(party, key)| (party.as_str(), key));
                let answer = http.get(&args.url, &args.path, reader).await?;
                print_answer(&answer, &args.field, Answering::Read)
            })
        }
        Command::Run(args) => {
            let report = if args.in_process { run_in_process(&args)? } else { run_cluster(&args)? };
            print!("{}", report.to_table());
            write_report(&report, args.json.as_deref())?;
            Ok(if report.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Etcd(args) => {
            let config = sim::etcd::EtcdConfig {
                endpoints: args.endpoints.clone(),
                duration: args.load.duration,
                warmup: args.load.warmup,
                load: args.load.load()?,
                batch: args.batch,
                value_bytes: args.value_bytes,
                progress: !args.quiet,
            };
            let report = runtime()?.block_on(interruptible(sim::etcd::run(&config)))?;
            print!("{}", report.to_table());
            write_report(&report, args.json.as_deref())?;
            Ok(if report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// Writes a report's JSON to `path`, or to stdout after the table.
fn write_report(
    report: &impl serde::Serialize,
    path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    match path {
        Some(path) => {
            std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("scf-sim: JSON report written to {}", path.display());
            Ok(())
        }
        None => write_out(format_args!("{json}")),
    }
}

fn run_in_process(args: &RunArgs) -> anyhow::Result<sim::report::Report> {
    if args.load.rate.is_some() {
        bail!("--rate (open loop) needs a cluster to pace against; use --concurrency in process");
    }
    let config = InProcessConfig {
        seed: args.seed,
        duration: args.load.duration,
        warmup: args.load.warmup,
        batch_max: args.batch.unwrap_or(IN_PROCESS_BATCH),
        lives_in_flight: args.load.concurrency.unwrap_or(IN_PROCESS_LIVES),
        progress: !args.quiet,
    };
    if config.batch_max == 0 || config.lives_in_flight == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    eprintln!("scf-sim: in process: the ledger state machine alone, no network, Raft or disk");
    sim::inproc::run(&config)
}

/// Writes the key file of every party of the workload drawn from `seed` in `namespace`.
fn write_cast_keys(dir: &Path, seed: u64, namespace: &str) -> anyhow::Result<()> {
    let mut config = sim::workload::WorkloadConfig::new(seed, "");
    config.namespace = namespace.to_owned();
    let cast = sim::workload::Cast::new(&config);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (identity, role) in cast.parties() {
        let path = dir.join(format!("{}.json", identity.party_id));
        let role = ledger::reject::role_name(role);
        sim::client::write_party_key_file(&path, &identity.party_id, role, &identity.key)?;
    }
    eprintln!(
        "scf-sim: the workload's key files are in {} (the regulator's: {}regulator.json)",
        dir.display(),
        namespace
    );
    Ok(())
}

/// A run against a cluster: `--target`'s, or a local one started (and always stopped) here.
fn run_cluster(args: &RunArgs) -> anyhow::Result<sim::report::Report> {
    let batch = args.batch.unwrap_or(1);
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    let mut config = RemoteConfig {
        urls: args.target.clone(),
        registrar_key: SigningKey::from_seed("unused"),
        seed: args.seed,
        namespace: String::new(),
        duration: args.load.duration,
        warmup: args.load.warmup,
        load: args.load.load()?,
        batch,
        progress: !args.quiet,
        presign: args.presign,
    };
    if !args.target.is_empty() {
        let path = args.registrar_key.as_ref().context(
            "--target needs the chain's registrar key: --registrar-key FILE (or \
             SCF_REGISTRAR_KEY), as `scf-sim cluster` writes it",
        )?;
        config.registrar_key = sim::client::read_key_file(path)?;
        // Runs against one chain must not collide on ids: each gets its own.
        config.namespace = format!(
            "r{:08x}-",
            ledger::crypto::rand::Rng::random::<u32>(&mut ledger::crypto::rand::rng(),)
        );
        if let Some(dir) = &args.keys {
            write_cast_keys(dir, config.seed, &config.namespace)?;
        }
        return runtime()?.block_on(interruptible(sim::remote::run(&config)));
    }
    if args.voters == 0 {
        bail!("a cluster needs at least one voter");
    }
    if let Some(dir) = &args.keys {
        write_cast_keys(dir, config.seed, &config.namespace)?;
    }
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let name = format!("scf-sim-run-{}-{}", std::process::id(), sim::client::now_ms());
            (std::env::temp_dir().join(name), true)
        }
    };
    let cluster_config = ClusterConfig {
        voters: args.voters,
        observers: args.observers,
        dir: dir.clone(),
        node_bin: match &args.node_bin {
            Some(path) => path.clone(),
            None => find_node_binary()?,
        },
        start_timeout: Duration::from_secs(60),
        fault_injection: false,
        extra_toml: String::new(),
        https: false,
    };
    let runtime = runtime()?;
    let outcome = runtime.block_on(async {
        eprintln!(
            "scf-sim: starting {} voters and {} observers (scf-node, fsync on) in {}",
            args.voters,
            args.observers,
            dir.display()
        );
        let mut cluster = interruptible(LocalCluster::start(&cluster_config)).await?;
        config.urls = cluster.nodes.iter().map(|n| n.url.clone()).collect();
        config.registrar_key = sim::client::read_key_file(&cluster.registrar_key)?;
        let report = interruptible(sim::remote::run(&config)).await;
        eprintln!("scf-sim: stopping the cluster");
        let exits = tokio::task::spawn_blocking(move || cluster.stop()).await?;
        let unclean: Vec<String> = exits
            .iter()
            .filter(|(_, status)| !status.success())
            .map(|(id, status)| format!("node {id} did not stop cleanly ({status})"))
            .collect();
        report.map(|mut report| {
            report.unexpected.extend(unclean.iter().cloned());
            report.errors += unclean.len() as u64;
            report
        })
    });
    let keep = match &outcome {
        Ok(report) => !temporary || !report.healthy(),
        Err(_) => true,
    };
    if keep {
        eprintln!("scf-sim: the cluster's configs, data and logs are in {}", dir.display());
    } else if let Err(error) = std::fs::remove_dir_all(&dir) {
        eprintln!("scf-sim: could not remove {}: {error}", dir.display());
    }
    outcome
}

/// Runs `work` unless SIGINT or SIGTERM comes first.
async fn interruptible<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        done = work => done,
        _ = interrupt.recv() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

/// Writes a line to stdout: a closed stdout (`scf-sim get … | head -1`) is an error, not a panic.
fn write_out(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

/// Writes a line to stdout, ignoring a closed stdout: what `scf-sim cluster` prints is also in
/// its cluster.json, and the cluster must keep running (and stop cleanly) regardless.
fn say(text: std::fmt::Arguments<'_>) {
    let _ = write_out(text);
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A file's text, or stdin's for none or `-`.
fn read_input(path: Option<&std::path::Path>) -> anyhow::Result<String> {
    match path {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        }
        _ => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading stdin")?;
            Ok(text)
        }
    }
}

/// What makes an answer a failure besides its HTTP status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answering {
    /// A submission: a rejected outcome or a refused batch item fails it too.
    Submit,
    /// A read: any 2xx answer succeeds (a transaction read as rejected is a successful read).
    Read,
}

/// Prints an answer (or the fields asked for). Exit status: 1 for an error answer (stderr:
/// `HTTP STATUS: error`; nothing applied, or `outcome_unknown`), and for a submission whose
/// outcome is a rejection (`rejected`: recorded in its block) or one of whose batch items the
/// node refused (`refused`); 0 otherwise.
fn print_answer(
    answer: &sim::client::Answer,
    fields: &[String],
    answering: Answering,
) -> anyhow::Result<ExitCode> {
    let body = &answer.body;
    if !(200..300).contains(&answer.status) {
        if fields.is_empty() {
            write_out(format_args!("{}", serde_json::to_string_pretty(body)?))?;
        }
        let error = body.get("error").unwrap_or(body);
        eprintln!("scf-sim: HTTP {}: {error}", answer.status);
        return Ok(ExitCode::FAILURE);
    }
    let items = match body {
        _ if answering == Answering::Read => Vec::new(),
        serde_json::Value::Array(items) => items.iter().collect(),
        item => vec![item],
    };
    let mut refused = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let which = if items.len() > 1 { format!(" (item {index})") } else { String::new() };
        if item["outcome"] == "rejected" {
            refused.push(format!("rejected{which}: {}", item["reason"]));
        } else if let Some(error) = item.get("error") {
            refused.push(format!("refused{which}: {error}"));
        }
    }
    if fields.is_empty() {
        write_out(format_args!("{}", serde_json::to_string_pretty(body)?))?;
    }
    for pointer in fields {
        match body.pointer(pointer) {
            Some(serde_json::Value::String(text)) => write_out(format_args!("{text}"))?,
            Some(value) => write_out(format_args!("{value}"))?,
            // A rejection has no created ids: say why it failed rather than what is missing.
            None if !refused.is_empty() => {}
            None => {
                eprintln!("scf-sim: the answer has no {pointer}: {body}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    if refused.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("scf-sim: not applied: {}", refused.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

async fn tx(args: TxArgs) -> anyhow::Result<ExitCode> {
    let command = match (&args.command, &args.json) {
        (Some(command), None) => command.clone(),
        (None, Some(path)) => TxCommand::from_json(&read_input(Some(path))?)?,
        (Some(_), Some(_)) => bail!("give a command or --json FILE, not both"),
        (None, None) => bail!("name a command (scf-sim tx --help lists them) or give --json FILE"),
    };
    let Some(chain) = &args.chain else {
        bail!("a transaction needs the chain id: --chain ID (or SCF_CHAIN)");
    };
    let Some((party, key)) = args.signer.identity()? else {
        bail!("a transaction needs --signer PARTY and --key FILE (or --secret HEX)");
    };
    let now = sim::client::now_ms();
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        )
        .unwrap_or(u64::MAX),
    };
    let valid_for = u64::try_from(args.valid_for.as_millis()).unwrap_or(u64::MAX);
    let identity = ledger::client::Identity::new(chain, &party, key);
    let signed = identity.sign(now.saturating_add(valid_for), nonce, command.build(now)?);
    let hash = hex::encode(ledger::tx::tx_hash(&signed));
    let json = serde_json::json!({
        "body": hex::encode(&signed.body),
        "signature": hex::encode(&signed.signature),
    });
    match &args.submit {
        None => {
            // The node checks the hash if it is given; it is for looking the transaction
            // up later (`GET /v1/transactions/{tx_hash}`).
            let mut printed = json;
            printed["tx_hash"] = serde_json::Value::String(hash);
            write_out(format_args!("{printed}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(url) => {
            let http = Http::new(Duration::from_secs(60));
            let answer = http.submit(url, &json, args.output.wait).await?;
            print_answer(&answer, &args.output.field, Answering::Submit)
        }
    }
}

/// `scf-sim cluster restart --dir DIR N`: asks DIR's launcher to restart node N.
async fn cluster_restart(dir: &Path, node: u64) -> anyhow::Result<ExitCode> {
    match sim::launcher::request_restart(dir, node).await? {
        Ok(text) => {
            say(format_args!("{text}"));
            Ok(ExitCode::SUCCESS)
        }
        Err(text) => {
            eprintln!("scf-sim: the cluster's launcher refused: {text}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn cluster(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    if let Some(ClusterAction::Restart { dir, node }) = &args.action {
        return cluster_restart(dir, *node).await;
    }
    let dir = args.dir.context("--dir DIR is required")?;
    let node_bin = match args.node_bin {
        Some(path) => path,
        None => find_node_binary()?,
    };
    let config = ClusterConfig {
        voters: args.voters,
        observers: args.observers,
        dir,
        node_bin,
        start_timeout: Duration::from_secs(60),
        fault_injection: args.fault_injection,
        extra_toml: String::new(),
        https: args.https,
    };
    // Signals are caught from the start: one that arrives while the nodes start drops the
    // starting cluster, which kills the nodes already started.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // The nodes run in their own process groups, so a closed terminal's SIGHUP reaches only this
    // process, which must then stop them.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let interrupted = || {
        eprintln!("scf-sim: interrupted while the nodes started: killing those already started");
        Ok(ExitCode::FAILURE)
    };
    let mut cluster = tokio::select! {
        started = LocalCluster::start(&config) => started?,
        _ = interrupt.recv() => return interrupted(),
        _ = terminate.recv() => return interrupted(),
        _ = hangup.recv() => return interrupted(),
    };
    say(format_args!("chain {}", cluster.chain_id));
    say(format_args!("registrar key {}", cluster.registrar_key.display()));
    for node in &cluster.nodes {
        say(format_args!("node {} {} {}", node.id, node.role, node.url));
    }
    match args.restart {
        Some(delay) => say(format_args!("a node that exits is restarted after {delay:?}")),
        None => say(format_args!("a node that exits stays down until restarted by hand")),
    }
    say(format_args!(
        "restart node N: scf-sim cluster restart --dir {} N",
        cluster.dir().display()
    ));
    say(format_args!("cluster {} (Ctrl-C stops it)", cluster.dir().join("cluster.json").display()));
    let shutdown = async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
    };
    let supervision = sim::launcher::Supervision { restart_after: args.restart };
    sim::launcher::supervise(&mut cluster, supervision, shutdown).await;
    eprintln!("scf-sim: stopping the cluster");
    // Nodes down now exited earlier (each said so then); they are not stopped, and they make
    // the exit status 1, like a node that does not stop cleanly.
    let down: Vec<u64> =
        cluster.nodes.iter().filter(|node| node.pid().is_none()).map(|node| node.id).collect();
    let exits = tokio::task::spawn_blocking(move || cluster.stop()).await?;
    let unclean: Vec<_> = exits.iter().filter(|(_, status)| !status.success()).collect();
    for (id, status) in &unclean {
        eprintln!("scf-sim: node {id} did not stop cleanly ({status})");
    }
    for id in &down {
        eprintln!("scf-sim: node {id} was not running when the cluster stopped");
    }
    eprintln!("scf-sim: every node stopped");
    // A node that exits non-zero on SIGTERM is a failure of its own, even after a clean run.
    Ok(if unclean.is_empty() && down.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
