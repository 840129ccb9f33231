//! The HTTP API over a `raft-node` replica, and the `scf-node` binary.
//!
//! The only crate that knows HTTP and JSON on the server side:
//! - [`config`]: the node's TOML configuration;
//! - [`http`]: the routes of `../shared/spec/interface.md` (writes, reads, status, audit,
//!   metrics, health, transaction lookup, blocks) and the admin routes (membership, and the
//!   fault switch of test clusters);
//! - [`wire`]: the submission body parsed into signed transactions (pure; fuzzed);
//! - [`listen`]: the listeners' connection, rate and header-time limits;
//! - [`auth`]: signed read requests and who may read what; [`reads`]: the record reads;
//!   [`views`]: JSON views of ledger records;
//! - [`supervision`]: the regulator's figures; [`events`]: the live event stream (SSE);
//! - [`explorer`]: the web explorer's static assets, served at `/`;
//! - [`server`]: one node from a configuration: store, transport, replica, listeners;
//! - [`error`]: the JSON error shape every failure uses;
//! - [`metrics`]: Prometheus counters.

pub mod auth;
pub mod blocks;
pub mod config;
pub mod error;
pub mod events;
pub mod explorer;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod reads;
pub mod server;
pub mod supervision;
pub mod views;
pub mod wire;
