//! The scf-ledger simulator: a seeded supply-chain workload, the invariant checker, the run
//! drivers and their report. The `scf-sim` binary (`main.rs`) is the command line over these.
//!
//! The [`workload`] plans transactions from a seed and judges their outcomes; two drivers run
//! it: [`remote`] submits it over HTTP to `scf-node` processes (a cluster [`cluster`] starts
//! locally, or any running one) and then checks the cluster from the outside, and [`inproc`]
//! applies it to the state machine in this process (the cost of the rules alone). Both count
//! with [`stats`], check the domain invariants with [`check`] and report with [`report`].
//! [`etcd`] drives an etcd cluster with plain puts through the same load loop: the baseline the
//! benchmarks compare against.
//!
//! [`launcher`] supervises a local cluster for `scf-sim cluster`: it reports nodes that exit,
//! restarts them (after a delay, or by hand through a control socket) and keeps the rest up.
//!
//! [`node_api`] parses what `scf-node`'s API says (statuses, answers, blocks) for the drivers
//! and the whole-system tests.
//!
//! The command-line client is [`txcmd`] (every ledger command as flags or JSON) over [`client`].

pub mod check;
pub mod client;
pub mod cluster;
pub mod etcd;
pub mod inproc;
pub mod launcher;
pub mod node_api;
pub mod ports;
pub mod remote;
pub mod report;
pub mod rng;
pub mod stats;
pub mod txcmd;
pub mod workload;
