//! The HTTP API over a `raft-node` replica, and the `scf-node` binary (issue #4, in progress).
//!
//! The only crate that knows HTTP and JSON on the server side:
//! - [`config`]: the node's TOML configuration;
//! - [`http`]: the routes of `../shared/spec/interface.md` (writes, reads, status, audit,
//!   metrics, health, transaction lookup, block headers) and the admin routes (membership);
//! - [`auth`]: signed read requests and who may read what; [`reads`]: the record reads;
//!   [`views`]: JSON views of ledger records;
//! - [`server`]: one node from a configuration: store, transport, replica, listeners;
//! - [`error`]: the JSON error shape every failure uses;
//! - [`metrics`]: Prometheus counters.
//!
//! Not yet: `wait=false`, per-client rate and connection limits, full blocks for signed readers,
//! the OpenAPI document, the command-line client.

pub mod auth;
pub mod blocks;
pub mod config;
pub mod error;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod reads;
pub mod server;
pub mod views;
