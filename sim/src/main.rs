//! `scf-sim`: the supply-chain workload simulator and command-line client.
//!
//! `scf-sim run` with no arguments is the README's main command. Until the simulator drives
//! `scf-node` processes (issue #5) it runs the workload in process against the ledger state
//! machine and says so in its report; `--target` and `scf-sim cluster` refuse with a clear
//! message rather than pretend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ledger::crypto::SigningKey;
use sim::inproc::{InProcessConfig, run};

#[derive(Parser)]
#[command(name = "scf-sim", version, about = "scf-ledger workload simulator and client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive the supply-chain workload and report throughput, latency and invariant checks.
    Run(RunArgs),
    /// Start a local cluster of scf-node processes (not available yet: issue #5).
    Cluster {
        /// Voters.
        #[arg(long, default_value_t = 3)]
        voters: usize,
        /// Observers.
        #[arg(long, default_value_t = 1)]
        observers: usize,
        /// Data directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Generate a secp256k1 key pair and print it as JSON (secret and public key, hex).
    Keygen,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Comma-separated node URLs; without it the run is in process.
    #[arg(long)]
    target: Option<String>,
    /// Measured window, e.g. `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before the window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open-loop rate in transactions per second (needs a cluster).
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<u64>,
    /// Closed-loop concurrency: receivable lives in flight at once.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Most transactions per block.
    #[arg(long, default_value_t = 1024)]
    batch_max: usize,
    /// Workload seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

/// Parses `30s`, `2m`, `500ms` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.find(|c: char| !c.is_ascii_digit()).map_or((text, "s"), |i| (&text[..i], &text[i..]));
    let value: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 2m or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        _ => Err(format!("{text:?}: unit must be ms, s or m")),
    }
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
    match cli.command {
        Command::Keygen => {
            let mut rng = ledger::crypto::rand::rng();
            let key = SigningKey::generate(&mut rng);
            println!(
                "{{\"secret_key\": \"{}\", \"public_key\": \"{}\"}}",
                hex::encode(key.to_bytes()),
                hex::encode(key.public_key().to_bytes())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Cluster { .. } => bail!(
            "`scf-sim cluster` is not built yet (issue #5); start scf-node processes by hand (see \
             the README) or use `scf-sim run`, which runs the workload in process meanwhile"
        ),
        Command::Run(args) => {
            if args.target.is_some() {
                bail!("--target is not built yet (issue #5); without it the run is in process");
            }
            if args.rate.is_some() {
                bail!(
                    "--rate (open loop) needs a cluster to pace against; use --concurrency in process"
                );
            }
            if args.batch_max == 0 || args.concurrency == 0 {
                bail!("--batch-max and --concurrency must be at least 1");
            }
            if args.duration.is_zero() {
                bail!("--duration must be longer than zero");
            }
            let config = InProcessConfig {
                seed: args.seed,
                duration: args.duration,
                warmup: args.warmup,
                batch_max: args.batch_max,
                lives_in_flight: args.concurrency,
                progress: !args.quiet,
            };
            eprintln!(
                "scf-sim: the simulator does not drive scf-node processes yet (issue #5), so this \
                 run drives the ledger state machine in process: no network, no Raft, no disk."
            );
            let report = run(&config)?;
            print!("{}", report.to_table());
            let json = serde_json::to_string_pretty(&report)?;
            if let Some(path) = &args.json {
                std::fs::write(path, &json)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("scf-sim: JSON report written to {}", path.display());
            } else {
                println!("{json}");
            }
            let healthy = report.invariants_ok && report.replicas_agree && report.errors == 0;
            Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
