//! `scf-node`'s configuration: a TOML file (see `docs/scf-node.example.toml`), with the fields
//! users override most often also settable by flag or environment variable (`main.rs`).
//!
//! Every node of a cluster must agree on `[chain]` (it defines genesis) and on the initial
//! members (`[[peers]]`, which lists every initial member, this node included). A node whose id
//! is not among the peers starts from genesis outside the membership and waits to be added at
//! runtime (see the README: how a regulator joins a running cluster).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Votes, may lead, accepts writes.
    Voter,
    /// A raft learner: receives and verifies every block, never votes, refuses writes.
    Observer,
}

/// The chain every member must agree on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The chain id every transaction names.
    pub chain_id: String,
    /// The registrar's 33-byte compressed secp256k1 public key, hex.
    pub registrar_public_key: String,
    /// Ledger time of genesis, ms since the Unix epoch.
    pub genesis_time_ms: u64,
}

/// One initial member of the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Raft id (not 0).
    pub id: u64,
    /// Voter or observer.
    pub role: Role,
    /// Where it accepts raft connections.
    pub raft: SocketAddr,
    /// Its HTTP API's base URL (followers forward writes there; observers hint it).
    pub http: String,
}

/// Raft and replica tuning; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    /// Milliseconds per raft tick.
    pub tick_ms: u64,
    /// Ticks of silence before an election (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Most transactions per log entry.
    pub batch_txs_max: usize,
    /// Most transactions accepted and not yet applied before writes get 503.
    pub pending_txs_max: usize,
    /// Most of the leader's proposals (log entries) in flight, appended and not yet applied;
    /// transactions arriving meanwhile gather into the next one (larger blocks under load).
    pub proposals_in_flight_max: usize,
    /// Compact the log after this many applied entries.
    pub compact_after_entries: u64,
    /// How long a write waits for its outcome before the answer is "unknown".
    pub submit_timeout_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 3,
            batch_txs_max: 1_024,
            pending_txs_max: 20_000,
            proposals_in_flight_max: 1,
            compact_after_entries: 10_000,
            submit_timeout_ms: 10_000,
        }
    }
}

/// HTTP limits; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Largest request body, bytes (413 beyond).
    pub body_bytes_max: u64,
    /// Most transactions in one batch request (413 beyond).
    pub batch_txs_max: usize,
    /// Most open connections (one more is answered 429 `too_many_connections` and closed).
    pub connections_max: usize,
    /// Most open connections from one client address (an IPv6 client's /64), so that one client
    /// cannot take every slot (429 `too_many_connections` beyond). The default leaves a quarter
    /// of `connections_max` to other clients while the simulator's open loop (512 requests in
    /// flight from one address) still fits; a node facing many clients wants it much lower.
    pub connections_per_client_max: usize,
    /// Connections kept for signed readers beyond `connections_max` (or beyond an address's
    /// `connections_per_client_max`): one accepted on them is served only while its requests
    /// verify as signed, and is closed otherwise ([`crate::listen`]).
    pub connections_reserved_for_signed: usize,
    /// Connections kept, beyond those, for regulators alone.
    pub connections_reserved_for_regulators: usize,
    /// Unsigned requests per second per client address, 0 for no limit (429 `rate_limited`
    /// beyond). A verified signed request is charged to its party instead
    /// ([`crate::listen::Budgets`]).
    pub requests_per_s_per_client: u32,
    /// Requests a client address may send at once after a pause.
    pub burst_per_client: u32,
    /// Signed requests per second per authenticated party other than a regulator, whatever its
    /// addresses, 0 for no limit (429 `rate_limited` beyond, once the signature verified).
    pub requests_per_s_per_party: u32,
    /// Signed requests a party may send at once after a pause.
    pub burst_per_party: u32,
    /// How long a client may take to send a request's headers before it is disconnected.
    pub header_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 4 * 1024 * 1024,
            batch_txs_max: 1_000,
            connections_max: 1_024,
            connections_per_client_max: 768,
            connections_reserved_for_signed: 48,
            connections_reserved_for_regulators: 16,
            requests_per_s_per_client: 20_000,
            burst_per_client: 40_000,
            requests_per_s_per_party: 1_000,
            burst_per_party: 2_000,
            header_timeout_ms: 10_000,
        }
    }
}

impl HttpLimits {
    /// The public listener's limits.
    pub fn listener(&self) -> crate::listen::Limits {
        crate::listen::Limits {
            connections_max: self.connections_max,
            connections_per_client_max: self.connections_per_client_max,
            reserved_for_signed: self.connections_reserved_for_signed,
            reserved_for_regulators: self.connections_reserved_for_regulators,
            requests_per_s: self.requests_per_s_per_client,
            burst: self.burst_per_client,
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            drain_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Mutual TLS between nodes: the cluster CA and this node's certificate and key (PEM files;
/// `scf-sim certs` issues them). Re-read for every new peer connection, so replacing the files
/// rotates them without a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The cluster CA's certificate: every peer's chain must lead to it.
    pub ca_file: PathBuf,
    /// This node's certificate, naming `node-{node_id}.scf-ledger`.
    pub cert_file: PathBuf,
    /// Its private key; refused unless only its owner can read it (mode 0600).
    pub key_file: PathBuf,
    /// Serve the public HTTP API (and the explorer) over HTTPS with this certificate, which
    /// then needs the names clients use among its extra names (`scf-sim certs --san`). Off by
    /// default: plain HTTP on loopback. The peers' `http` URLs should then say `https://`.
    #[serde(default)]
    pub https: bool,
}

impl TlsConfig {
    /// The files, as the transport takes them.
    pub fn files(&self) -> tls::TlsFiles {
        tls::TlsFiles {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's raft id.
    pub node_id: u64,
    /// Voter or observer.
    pub role: Role,
    /// Where RocksDB keeps this node's log and state.
    pub data_dir: PathBuf,
    /// Where the HTTP API listens.
    pub http_listen: SocketAddr,
    /// Where raft peers connect.
    pub raft_listen: SocketAddr,
    /// Where the admin API (membership changes) listens; loopback by default, since anyone who
    /// reaches it can change the cluster's members.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// The chain.
    pub chain: ChainConfig,
    /// The cluster's initial members, this node included unless it joins later.
    pub peers: Vec<PeerConfig>,
    /// Raft tuning.
    #[serde(default)]
    pub raft: RaftTuning,
    /// HTTP limits.
    #[serde(default)]
    pub http: HttpLimits,
    /// Mutual TLS on every raft link. Required unless `raft_listen` is on loopback or
    /// `insecure_peer_network` is set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Runs raft over plain TCP on a non-loopback address, trusting whoever reaches the port
    /// with the whole ledger and its consensus. Logged as a warning; never for production.
    #[serde(default)]
    pub insecure_peer_network: bool,
    /// Lets the admin API cut this node's raft links on demand (`PUT /v1/admin/faults`): for
    /// the whole-system fault tests. Off unless set; never for a production node.
    #[serde(default)]
    pub fault_injection: bool,
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the configuration's shape.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: toml::de::Error,
    },
    /// `[chain] registrar_public_key` is not a public key in hex.
    #[error("chain.registrar_public_key: {0}")]
    RegistrarKey(String),
    /// The settings parse but break a rule: the message names the setting and the rule.
    #[error("{0}")]
    Invalid(String),
}

/// `Ok` if `holds`, else the rule `broken` describes.
fn rule(holds: bool, broken: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if holds { Ok(()) } else { Err(ConfigError::Invalid(broken())) }
}

impl Config {
    /// Reads a file (see [`Config::check`] for what the types cannot say).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }

    /// Checks what the types cannot: ids, roles and keys that agree with each other.
    pub fn check(&self) -> Result<(), ConfigError> {
        rule(self.node_id != 0, || "node_id 0 is reserved".into())?;
        self.registrar_key()?;
        rule(!self.chain.chain_id.is_empty(), || "chain.chain_id is empty".into())?;
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        rule(ids.len() == self.peers.len(), || "two peers share an id".into())?;
        rule(!ids.contains(&0), || "peer id 0 is reserved".into())?;
        rule(self.peers.iter().any(|p| p.role == Role::Voter), || {
            "the cluster needs at least one voter among the peers".into()
        })?;
        if let Some(me) = self.peers.iter().find(|p| p.id == self.node_id) {
            rule(me.role == self.role, || {
                format!("this node is a {:?} but its peer entry says {:?}", self.role, me.role)
            })?;
        }
        rule(self.raft.tick_ms > 0, || "raft.tick_ms must be positive".into())?;
        rule((1..=ledger::machine::BLOCK_TXS_MAX).contains(&self.raft.batch_txs_max), || {
            format!(
                "raft.batch_txs_max must be between 1 and {} (one log entry is one block)",
                ledger::machine::BLOCK_TXS_MAX
            )
        })?;
        rule(self.http.batch_txs_max > 0, || "http.batch_txs_max must be positive".into())?;
        rule(self.raft.proposals_in_flight_max > 0, || {
            "raft.proposals_in_flight_max must be at least 1".into()
        })?;
        rule(self.http.connections_max > 0, || "http.connections_max must be positive".into())?;
        rule(
            (1..=self.http.connections_max).contains(&self.http.connections_per_client_max),
            || {
                "http.connections_per_client_max must be positive and at most connections_max"
                    .into()
            },
        )?;
        rule(self.http.requests_per_s_per_client == 0 || self.http.burst_per_client > 0, || {
            "http.burst_per_client must be positive when requests are rate limited".into()
        })?;
        rule(self.http.requests_per_s_per_party == 0 || self.http.burst_per_party > 0, || {
            "http.burst_per_party must be positive when parties are rate limited".into()
        })?;
        rule(self.http.header_timeout_ms > 0, || "http.header_timeout_ms must be positive".into())?;
        rule(
            self.tls.is_some() || self.raft_listen.ip().is_loopback() || self.insecure_peer_network,
            || {
                format!(
                    "raft_listen {} is not on loopback and [tls] is not configured: peers would \
                     be unauthenticated and the ledger readable by anyone who reaches the port. \
                     Configure [tls] (scf-sim certs issues the files), or set \
                     insecure_peer_network (--insecure-peer-network) to accept that",
                    self.raft_listen
                )
            },
        )?;
        admin_on_loopback(self.admin_listen)
    }

    fn registrar_key(&self) -> Result<ledger::crypto::PublicKeyBytes, ConfigError> {
        let key = hex::decode(&self.chain.registrar_public_key)
            .map_err(|e| ConfigError::RegistrarKey(e.to_string()))?;
        ledger::crypto::PublicKeyBytes::parse(&key)
            .map_err(|e| ConfigError::RegistrarKey(e.to_string()))
    }

    /// The genesis every member derives from `[chain]`.
    pub fn genesis(&self) -> Result<ledger::Genesis, ConfigError> {
        Ok(ledger::Genesis {
            chain_id: self.chain.chain_id.clone(),
            registrar_public_key: self.registrar_key()?,
            time_ms: self.chain.genesis_time_ms,
        })
    }

    /// The initial members: every peer, by role.
    pub fn members(&self) -> raft_node::node::Members {
        let ids = |role| self.peers.iter().filter(|p| p.role == role).map(|p| p.id).collect();
        raft_node::node::Members { voters: ids(Role::Voter), observers: ids(Role::Observer) }
    }

    /// The HTTP URL of peer `id`, if configured.
    pub fn http_url(&self, id: u64) -> Option<&str> {
        self.peers.iter().find(|p| p.id == id).map(|p| p.http.as_str())
    }
}

/// The admin API changes the cluster's members: it listens on this machine only.
pub fn admin_on_loopback(admin: SocketAddr) -> Result<(), ConfigError> {
    rule(admin.ip().is_loopback(), || {
        format!(
            "admin_listen {admin} is not on loopback: anyone who reaches the admin API can \
             change the cluster's members, so it only listens on this machine (127.0.0.1 or ::1)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example is a valid configuration whose values are the defaults it claims.
    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../docs/scf-node.example.toml");
        let config: Config = toml::from_str(text).expect("the example parses");
        config.check().expect("the example is valid");
        config.genesis().expect("the example's chain makes a genesis");
        let http = HttpLimits::default();
        assert_eq!(
            (config.http.connections_max, config.http.requests_per_s_per_client),
            (http.connections_max, http.requests_per_s_per_client)
        );
        assert_eq!(
            (
                config.http.connections_reserved_for_signed,
                config.http.connections_reserved_for_regulators
            ),
            (http.connections_reserved_for_signed, http.connections_reserved_for_regulators)
        );
        assert_eq!(
            (
                config.http.burst_per_client,
                config.http.header_timeout_ms,
                config.http.body_bytes_max
            ),
            (http.burst_per_client, http.header_timeout_ms, http.body_bytes_max)
        );
        assert_eq!(config.raft.pending_txs_max, RaftTuning::default().pending_txs_max);
        assert_eq!(config.peers.len(), 4);
    }

    /// An admin API anyone on the network could reach is refused, by `check` and by `serve`'s
    /// own test of the address it was handed.
    #[test]
    fn the_admin_api_listens_on_loopback_only() {
        let text = include_str!("../../docs/scf-node.example.toml");
        let mut config: Config = toml::from_str(text).expect("the example parses");
        for open in ["0.0.0.0:8700", "192.0.2.7:8700", "[::]:8700"] {
            config.admin_listen = open.parse().unwrap();
            let refused = config.check().expect_err(open).to_string();
            assert!(
                refused.contains("admin_listen") && refused.contains("is not on loopback"),
                "{open}: {refused}"
            );
            assert!(admin_on_loopback(config.admin_listen).is_err(), "{open}");
        }
        for local in ["127.0.0.1:0", "[::1]:8700"] {
            assert!(admin_on_loopback(local.parse().unwrap()).is_ok(), "{local}");
        }
    }
}
