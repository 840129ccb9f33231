//! `scf-node --config FILE`: one node of an scf-ledger cluster.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// One node of an scf-ledger cluster (see docs/scf-node.example.toml).
#[derive(Debug, Parser)]
#[command(name = "scf-node", version)]
struct Args {
    /// The node's TOML configuration.
    #[arg(long, env = "SCF_CONFIG")]
    config: PathBuf,
    /// Overrides `node_id`.
    #[arg(long, env = "SCF_NODE_ID")]
    node_id: Option<u64>,
    /// Overrides `data_dir`.
    #[arg(long, env = "SCF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Overrides `http_listen`.
    #[arg(long, env = "SCF_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Overrides `raft_listen`.
    #[arg(long, env = "SCF_RAFT_LISTEN")]
    raft_listen: Option<SocketAddr>,
    /// Overrides `admin_listen`.
    #[arg(long, env = "SCF_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Overrides `tls.ca_file`: the cluster CA every peer's certificate must chain to.
    #[arg(long, env = "SCF_TLS_CA_FILE")]
    tls_ca_file: Option<PathBuf>,
    /// Overrides `tls.cert_file`: this node's certificate.
    #[arg(long, env = "SCF_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    /// Overrides `tls.key_file`: this node's private key (mode 0600).
    #[arg(long, env = "SCF_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
    /// Sets `tls.https`: the public API over HTTPS with the node's certificate.
    #[arg(long, env = "SCF_HTTPS")]
    https: bool,
    /// Sets `insecure_peer_network`: raft over plain TCP on a non-loopback address.
    #[arg(long, env = "SCF_INSECURE_PEER_NETWORK")]
    insecure_peer_network: bool,
    /// Sets `fault_injection` (the admin API may then cut raft links; for tests only).
    #[arg(long, env = "SCF_FAULT_INJECTION")]
    fault_injection: bool,
    /// Log filter: a level (error, warn, info, debug, trace) or a tracing directive.
    #[arg(long, env = "SCF_LOG", default_value = "info")]
    log_level: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Crash points armed by FAILPOINTS (a test build only: the `failpoints` feature).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("scf-node: --log-level {:?}: {e}", args.log_level);
            return std::process::ExitCode::from(2);
        }
    };
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("scf-node: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let e = each_cause_once(&e);
            tracing::error!("{e}");
            eprintln!("scf-node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: the library's errors already name their source in
/// their own message, and a cause whose text is already there is not repeated.
fn each_cause_once(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = api::config::Config::load(&args.config)?;
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(address) = args.http_listen {
        config.http_listen = address;
    }
    if let Some(address) = args.raft_listen {
        config.raft_listen = address;
    }
    if let Some(address) = args.admin_listen {
        config.admin_listen = address;
    }
    config.fault_injection |= args.fault_injection;
    config.insecure_peer_network |= args.insecure_peer_network;
    let https = args.https;
    match (&mut config.tls, args.tls_ca_file, args.tls_cert_file, args.tls_key_file) {
        (_, None, None, None) => {}
        (Some(tls), ca, cert, key) => {
            tls.ca_file = ca.unwrap_or(std::mem::take(&mut tls.ca_file));
            tls.cert_file = cert.unwrap_or(std::mem::take(&mut tls.cert_file));
            tls.key_file = key.unwrap_or(std::mem::take(&mut tls.key_file));
        }
        (None, Some(ca_file), Some(cert_file), Some(key_file)) => {
            config.tls =
                Some(api::config::TlsConfig { ca_file, cert_file, key_file, https: false });
        }
        (None, ..) => anyhow::bail!(
            "the configuration has no [tls]: give all of --tls-ca-file, --tls-cert-file and \
             --tls-key-file"
        ),
    }
    match (&mut config.tls, https) {
        (_, false) => {}
        (Some(tls), true) => tls.https = true,
        (None, true) => anyhow::bail!("--https needs [tls] (or the --tls-* flags)"),
    }
    let node_id = config.node_id;
    let role = config.role;
    let scheme = if config.tls.as_ref().is_some_and(|tls| tls.https) { "https" } else { "http" };
    let node = api::server::start(config).await?;
    // One line a supervisor (scf-sim cluster, tests) can parse for the bound addresses.
    println!(
        "scf-node {node_id} ready http={scheme}://{} raft={} admin=http://{}",
        node.http_address, node.raft_address, node.admin_address
    );
    tracing::info!(node_id, ?role, http = %node.http_address, raft = %node.raft_address,
        admin = %node.admin_address, "scf-node started");
    tokio::select! {
        signal = wait_for_signal() => signal?,
        // A replica that died (a fatal error, a panic) serves nothing: exit non-zero so that a
        // supervisor (systemd, Kubernetes) restarts the node, rather than linger answering 503.
        () = node.replica_stopped() => anyhow::bail!(
            "node {node_id}: the replica stopped (its error is logged above); exiting"
        ),
    }
    tracing::info!(node_id, "shutting down");
    node.shutdown().await?;
    tracing::info!(node_id, "stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
