//! TLS for scf-ledger: mutual TLS on the links between nodes, HTTPS for the API, and the
//! certificates both use, issued from the cluster's own CA.
//!
//! Layout:
//! - [`identity`]: the names that identify nodes ([`node_name`]) and operators
//!   ([`OPERATOR_NAME`]), and [`peer_is_node`] / [`peer_is_operator`], which bind a verified
//!   peer certificate to one of them.
//! - [`config`]: [`TlsFiles`] (the CA, certificate and key PEM files of one identity) and the
//!   acceptors and connectors built from them; [`https_client_config`] for HTTPS clients.
//! - [`issue`]: [`Authority`] (a CA made with rcgen), node and operator certificates, the file
//!   writers ([`write_private`], [`write_public`]) and [`issue_cluster`].
//! - [`error`]: [`TlsError`], the crate's one error type.
//!
//! Invariants:
//! - Only rustls's ring provider is used, and it is passed explicitly to every configuration;
//!   this crate never installs or relies on a process-wide default provider, and never pulls
//!   aws-lc-rs. Other crates take rustls and tokio-rustls through the re-exports below, so
//!   they cannot enable another provider by depending on them with default features.
//! - The CA file is the only source of trust: never the system's roots, never a verifier that
//!   skips checks. A peer link requires certificates both ways and TLS 1.3.
//! - A handshake proves a chain to the CA; only [`peer_is_node`] says which node that is. The
//!   transport must check it against the id the peer claims before believing the claim.
//! - Certificate files are read when an acceptor or connector is built, so replacing them on
//!   disk rotates certificates without a restart.
//! - A private key is never read from, nor written to, a file that group or others can access,
//!   and is never logged or printed.
//!
//! This crate never opens a socket, reads a clock except to stamp the validity of a
//! certificate it issues, or knows anything of raft, HTTP routes or the ledger.

pub mod config;
pub mod error;
pub mod identity;
pub mod issue;

pub use config::{
    ClientAuth, HTTPS_ALPN, PEER_ALPN, TlsFiles, https_client_config,
    https_client_config_trusting_nothing, https_client_config_with_identity,
};
pub use error::TlsError;
pub use identity::{
    NAMESPACE, OPERATOR_NAME, node_name, node_server_name, peer_is_node, peer_is_operator,
};
pub use issue::{
    Authority, CA_VALIDITY_DAYS, CLUSTER_CA_NAME, ClusterCerts, Issued, LEAF_VALIDITY_DAYS,
    issue_cluster, write_private, write_public,
};

/// The rustls this crate builds on (ring provider only), for `ServerName`, `CommonState` and
/// the configuration types.
pub use rustls;
/// The tokio-rustls this crate builds on, for `TlsAcceptor`, `TlsConnector` and their streams.
pub use tokio_rustls;
