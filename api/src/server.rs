//! Starting and stopping one node: RocksDB, the raft transport, the replica thread and the two
//! HTTP listeners (public API and loopback admin API), all from a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ledger::Ledger;
use raft_node::access_log::{AccessLog, AccessLogError};
use raft_node::node::{NodeConfig, NodeError};
use raft_node::replica::{Mailbox, Replica, ReplicaConfig, ReplicaThread};
use raft_node::rocks::RocksLogStore;
use raft_node::storage::{LogStore as _, LogStoreError};
use raft_node::transport::{TcpConfig, TcpTransport, Transport, bind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::admin_routes;
use crate::app::{App, Connector};
use crate::config::{Config, ConfigError, admin_on_loopback};
use crate::metrics::Metrics;
use crate::node::NodeHandle;
use crate::routes::routes;

/// Why a node did not start (or stop cleanly).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listening address could not be bound.
    #[error("{setting} {address}: {source}")]
    Bind {
        /// The setting that names it (`raft_listen`, `http_listen`, `admin_listen`).
        setting: &'static str,
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `[tls]` files do not make a working configuration.
    #[error("[tls]: {0}")]
    Tls(#[from] tls::TlsError),
    /// The data directory could not be created or made private.
    #[error("{action} {}: {source}", path.display())]
    DataDir {
        /// What failed (`creating`, `reading`, `chmod 700`).
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store in the data directory could not be opened.
    #[error("opening {}: {source}", path.display())]
    Store {
        /// The data directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: LogStoreError,
    },
    /// The data directory holds a chain of another block format: blocks of two formats in one
    /// chain would not verify, so the node does not extend it (the README's changelog says what
    /// to do).
    #[error(
        "{} holds a chain of block format {found}; this build reads and writes format \
         {expected} only: start a new chain in an empty data directory (see the changelog in the README)",
        path.display()
    )]
    ChainFormat {
        /// The data directory.
        path: PathBuf,
        /// The format of its first block.
        found: u32,
        /// The format this build writes.
        expected: u32,
    },
    /// The access log in the data directory could not be opened (or was edited).
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    /// A listener or the transport failed to start.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The replica failed to start, or stopped with an error.
    #[error("replica: {0}")]
    Replica(#[from] NodeError),
    /// The task that stops the replica's thread did not finish (it panicked, or was cancelled).
    #[error("stopping the replica thread: {0}")]
    Panicked(String),
}

/// A node that is up. [`RunningNode::shutdown`] stops it cleanly; dropping it stops the HTTP
/// servers and the replica without waiting.
pub struct RunningNode {
    /// Where the public HTTP API listens.
    pub http_address: SocketAddr,
    /// Where the admin HTTP API listens.
    pub admin_address: SocketAddr,
    /// Where raft peers connect.
    pub raft_address: SocketAddr,
    /// The replica's handle.
    pub replica: Replica,
    http: HttpServers,
    thread: Option<ReplicaThread>,
}

/// The two HTTP listeners of one node, serving its [`App`]: see [`serve`].
pub struct HttpServers {
    /// Where the public HTTP API listens.
    pub http_address: SocketAddr,
    /// Where the admin HTTP API listens.
    pub admin_address: SocketAddr,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

/// What a node's API serves besides its configuration: the node and what the raft side shares.
pub struct NodeParts {
    /// The node.
    pub node: Arc<dyn NodeHandle>,
    /// Its ledger's memos (the API's signature checks fill them; the ledger then skips them).
    pub memos: ledger::Memos,
    /// The raft links the admin API may cut (`fault_injection` only).
    pub cuts: Option<Arc<raft_node::transport::Cuts>>,
    /// What the raft port refused, for `/metrics`.
    pub refusals: Arc<raft_node::transport::PeerRefusals>,
    /// The replica's access log (in its data directory).
    pub access_log: Arc<AccessLog>,
}

/// The sockets a node listens on.
pub struct Listeners {
    /// Raft peers (bind it with [`raft_node::transport::bind`]).
    pub raft: tokio::net::TcpListener,
    /// The public HTTP API.
    pub http: tokio::net::TcpListener,
    /// The admin HTTP API.
    pub admin: tokio::net::TcpListener,
}

impl Listeners {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let failed =
            |setting, address| move |source| ServerError::Bind { setting, address, source };
        let raft = bind(config.raft_listen).map_err(failed("raft_listen", config.raft_listen))?;
        let http = tokio::net::TcpListener::bind(config.http_listen)
            .await
            .map_err(failed("http_listen", config.http_listen))?;
        let admin = tokio::net::TcpListener::bind(config.admin_listen)
            .await
            .map_err(failed("admin_listen", config.admin_listen))?;
        Ok(Self { raft, http, admin })
    }
}

/// Binds the addresses `config` names and starts the node: see [`start_on`].
pub async fn start(config: Config) -> Result<RunningNode, ServerError> {
    config.check()?;
    let listeners = Listeners::bind(&config).await?;
    start_on(config, listeners).await
}

/// Opens the node's store (bootstrapping a new one with genesis and the initial members),
/// starts the replica and serves the APIs on `listeners` (tests bind them on port 0 first, so
/// that every node's configuration can name every other's address). Must run inside a
/// multi-threaded tokio runtime.
pub async fn start_on(config: Config, listeners: Listeners) -> Result<RunningNode, ServerError> {
    config.check()?;
    admin_on_loopback(listeners.admin.local_addr()?)?;
    let genesis = config.genesis()?;
    let ledger = Ledger::new(genesis.clone());
    create_private_dir(&config.data_dir)?;
    if let Some(tls) = &config.tls {
        let files = tls.files();
        // Refused now rather than at the first connection; the transport re-reads the files
        // (and re-checks the key) for every connection after this.
        files.check_key_permissions()?;
        files.peer_acceptor()?;
    } else if !config.raft_listen.ip().is_loopback() {
        tracing::warn!(raft = %config.raft_listen, "insecure_peer_network: raft runs over plain \
            TCP; anyone who reaches the port can read the ledger and disrupt consensus");
    }
    tracing::info!(admin = %config.admin_listen, "the admin API listens on loopback only: \
        anyone with a shell on this machine can change the cluster's members");
    let writes = ledger.genesis_writes();
    let conf_state = config.members().conf_state();
    // Every node, an initial member or one that joins later, starts from the same genesis state
    // and the same initial membership: the log a joiner then receives from index 1 (or the
    // snapshot that replaces it) applies to exactly what it applies to on the initial members.
    let store = RocksLogStore::open(&config.data_dir, Some((&writes, &conf_state)))
        .map_err(|source| ServerError::Store { path: config.data_dir.clone(), source })?;
    check_chain_format(&config.data_dir, &store)?;
    // Opened before the node serves anything: a log that was edited stops the start here.
    let access_log = Arc::new(AccessLog::open(&config.data_dir, config.node_id)?);

    let seed = config.node_id
        ^ u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        );
    let node = NodeConfig {
        election_ticks: config.raft.election_ticks,
        heartbeat_ticks: config.raft.heartbeat_ticks,
        batch_txs_max: config.raft.batch_txs_max,
        pending_txs_max: config.raft.pending_txs_max,
        proposals_in_flight_max: config.raft.proposals_in_flight_max,
        compact_after_entries: config.raft.compact_after_entries,
        seed,
        ..NodeConfig::new(config.node_id)
    };
    let mut replica_config = ReplicaConfig::new(node);
    let refusals = replica_config.refusals.clone();
    replica_config.tick = std::time::Duration::from_millis(config.raft.tick_ms);
    replica_config.submit_timeout = std::time::Duration::from_millis(config.raft.submit_timeout_ms);
    let mailbox = Mailbox::new(&replica_config);
    let Listeners { raft: raft_listener, http: http_listener, admin: admin_listener } = listeners;
    let raft_address = raft_listener.local_addr()?;
    let transport_config = TcpConfig {
        tls: config.tls.as_ref().map(crate::config::TlsConfig::files),
        refusals: refusals.clone(),
        ..TcpConfig::new(config.node_id, &genesis.chain_id)
    };
    let cuts = config.fault_injection.then(|| transport_config.cuts.clone());
    if config.fault_injection {
        tracing::warn!("fault injection is on: the admin API can cut this node's raft links");
    }
    let mut transport = TcpTransport::start(
        transport_config,
        raft_listener,
        tokio::runtime::Handle::current(),
        mailbox.sink(),
    )?;
    for peer in config.peers.iter().filter(|p| p.id != config.node_id) {
        transport.add_peer(peer.id, peer.raft);
    }
    let memos = ledger.memos().clone();
    let thread = Replica::start(replica_config, store, ledger, transport, mailbox)?;
    let replica = thread.handle();

    let node = Arc::new(replica.clone());
    let parts = NodeParts { node, memos, cuts, refusals, access_log };
    let http = serve(config, parts, http_listener, admin_listener)?;
    Ok(RunningNode {
        http_address: http.http_address,
        admin_address: http.admin_address,
        raft_address,
        replica,
        http,
        thread: Some(thread),
    })
}

/// Serves `parts.node`'s API on `http_listener` (public) and `admin_listener` (admin) until
/// [`HttpServers::shutdown`]. Refuses an admin listener that is not on loopback, whatever the
/// configuration says. Must run inside a tokio runtime.
pub fn serve(
    config: Config,
    parts: NodeParts,
    http_listener: tokio::net::TcpListener,
    admin_listener: tokio::net::TcpListener,
) -> Result<HttpServers, ServerError> {
    let genesis = config.genesis()?;
    let http_address = http_listener.local_addr()?;
    let admin_address = admin_listener.local_addr()?;
    admin_on_loopback(admin_address)?;
    let (stop, stopped) = watch::channel(false);
    let connector = forwarding_connector(&config)?;
    let NodeParts { node, memos, cuts, refusals, access_log } = parts;
    let auth = crate::auth::Authenticator::new(&genesis.chain_id, config.node_id)
        .with_party_budget(config.http.requests_per_s_per_party, config.http.burst_per_party);
    let auth = Arc::new(auth);
    let metrics = Metrics::new(refusals);
    let reports = crate::supervision::ReportCache::new(metrics.report_counters());
    let audit = crate::routes::audit_from_genesis(&genesis, config.role);
    let app = Arc::new(App {
        node,
        config: Arc::new(config),
        genesis,
        metrics,
        client: Client::builder(TokioExecutor::new()).build(connector),
        access_log,
        memos,
        cuts,
        events: crate::app::Streams::new(stopped.clone()),
        auth,
        reports: Arc::new(reports),
        audit: tokio::sync::Mutex::new(audit),
    });
    let signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let refused: Arc<dyn Fn(&'static str) + Send + Sync> = {
        let app = app.clone();
        Arc::new(move |limit| app.metrics.refused(limit))
    };
    let public = app.config.http.listener();
    let https =
        (app.config.tls.as_ref()).filter(|tls| tls.https).map(crate::config::TlsConfig::files);
    // The admin API is for operators on this machine: few connections, no rate limit.
    let admin = crate::listen::Limits {
        connections_max: 64,
        reserved_for_signed: 0,
        reserved_for_regulators: 0,
        requests_per_s: 0,
        ..public.clone()
    };
    let servers = vec![
        tokio::spawn(crate::listen::serve(
            http_listener,
            routes(app.clone()),
            public,
            https,
            refused.clone(),
            signal(stopped.clone()),
        )),
        tokio::spawn(crate::listen::serve(
            admin_listener,
            admin_routes(app),
            admin,
            // Loopback only (Config::check): plain HTTP for the operators of this machine.
            None,
            refused,
            signal(stopped),
        )),
    ];
    Ok(HttpServers { http_address, admin_address, stop, servers })
}

impl HttpServers {
    /// Stops taking requests and lets the ones in progress finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in std::mem::take(&mut self.servers) {
            let _ = server.await;
        }
    }
}

impl Drop for HttpServers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for server in &self.servers {
            server.abort();
        }
    }
}

/// The connector a follower forwards writes to the leader with: plain HTTP, or HTTPS that
/// trusts only the cluster CA (a leader serving HTTPS holds a node certificate, with the names
/// of its URL among its extra names).
fn forwarding_connector(config: &Config) -> Result<Connector, tls::TlsError> {
    let tls_config = match &config.tls {
        Some(tls) => tls::https_client_config(&tls.ca_file)?,
        // No CA: no HTTPS URL can verify, and a cluster without [tls] serves plain HTTP.
        None => tls::https_client_config_trusting_nothing()?,
    };
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let mut tls_config = (*tls_config).clone();
    // hyper-rustls sets ALPN itself (http/1.1, from enable_http1) and refuses a preset.
    tls_config.alpn_protocols.clear();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// Creates `dir` (and its parents) readable by its owner alone (0700): it holds the whole
/// ledger. An existing directory that others can read is tightened, with a warning.
fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let failed = |action| move |source| ServerError::DataDir { action, path: dir.into(), source };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(dir).map_err(failed("creating"))?;
    let metadata = std::fs::metadata(dir).map_err(failed("reading"))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"),
            "the data directory was readable by others; setting it to 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(failed("chmod 700"))?;
    }
    Ok(())
}

impl RunningNode {
    /// Resolves when the replica's thread has ended by itself (a fatal error): the process
    /// must then exit non-zero, so that its supervisor restarts it.
    pub async fn replica_stopped(&self) {
        self.replica.stopped().await;
    }

    /// Stops taking requests, lets the ones in progress finish, then stops the replica.
    /// Everything acknowledged is already durable.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let RunningNode { http, thread, .. } = self;
        http.shutdown().await;
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.stop())
                .await
                .map_err(|e| ServerError::Panicked(e.to_string()))??;
        }
        Ok(())
    }
}

/// Refuses a data directory whose chain is of another block format than this build's
/// ([`ledger::chain::BLOCK_VERSION`]). One block tells: a chain is of one format throughout.
fn check_chain_format(path: &Path, store: &RocksLogStore) -> Result<(), ServerError> {
    let first = ledger::query::block(store.state(), 1).map_err(|source| ServerError::Store {
        path: path.to_owned(),
        source: LogStoreError::State(source),
    })?;
    let found = first.and_then(|block| block.header).map(|header| header.version);
    match found {
        Some(found) if found != ledger::chain::BLOCK_VERSION => Err(ServerError::ChainFormat {
            path: path.to_owned(),
            found,
            expected: ledger::chain::BLOCK_VERSION,
        }),
        _ => Ok(()),
    }
}
