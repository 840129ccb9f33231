//! The HTTP API over a `raft-node` replica, and the `scf-node` binary (issue #4, in progress).
//!
//! The only crate that knows HTTP and JSON on the server side:
//! - [`config`]: the node's TOML configuration;
//! - [`http`]: the routes of `../shared/spec/interface.md` (writes, status, audit, metrics,
//!   health, transaction lookup, block headers) and the admin routes (membership);
//! - [`server`]: one node from a configuration: store, transport, replica, listeners;
//! - [`error`]: the JSON error shape every failure uses;
//! - [`metrics`]: Prometheus counters.
//!
//! Not yet: record reads with signed-request authorization, `wait=false`, per-client rate and
//! connection limits, the OpenAPI document, the command-line client.

pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod server;
