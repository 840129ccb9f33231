//! The HTTP API over a `raft-node` replica, and the `scf-node` binary.
//!
//! The only crate that knows HTTP and JSON on the server side. Its modules, from the outside in:
//! - [`server`]: one node from a configuration (store, transport, replica, listeners), and
//!   [`server::serve`], the two HTTP listeners over any [`node::NodeHandle`];
//! - [`listen`]: the listeners' connection, rate and header-time limits;
//! - [`routes`]: the public routes of `../shared/spec/interface.md` and the read handlers;
//!   [`write`]: the write path (body, precheck, submit, forward); [`admin`]: the loopback admin
//!   routes (membership, and the fault switch of test clusters);
//! - [`app`]: what every route shares, and the answer helpers;
//! - [`node`]: the narrow handle on the node the routes use, for a real replica and for the
//!   in-memory node the tests use ([`node::memory`]);
//! - [`wire`]: the submission body parsed into signed transactions (pure; fuzzed);
//! - [`auth`]: signed read requests and who may read what; [`reads`]: the record reads;
//!   [`blocks`]: block reads; [`supervision`]: the regulator's figures; [`events`]: the live
//!   event stream (SSE); [`access`]: the access log of private reads, their purposes, and
//!   `GET /v1/access-log`;
//! - [`views`]: JSON views of ledger records; [`error`]: the JSON error shape every failure
//!   uses; [`metrics`]: Prometheus counters; [`explorer`]: the web explorer's static assets;
//! - [`config`]: the node's TOML configuration.
//!
//! Imports run one way: routes → write/app/handlers → node; no module imports one that
//! imports it.

pub mod access;
pub mod admin;
pub mod app;
pub mod auth;
pub mod blocks;
pub mod config;
pub mod error;
pub mod events;
pub mod explorer;
pub mod listen;
pub mod metrics;
pub mod node;
pub mod reads;
pub mod routes;
pub mod server;
pub mod supervision;
pub mod views;
pub mod wire;
pub mod write;
