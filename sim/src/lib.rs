//! The scf-ledger simulator: a seeded supply-chain workload, the invariant checker, the run
//! drivers and their report. The `scf-sim` binary (`main.rs`) is the command line over these.
//!
//! Today the only workload driver is [`inproc`], which runs the workload against the state
//! machine in this process; the driver of a cluster of `scf-node` processes is issue #5. The
//! workload and the checker are written so that driver can reuse them, as [`cluster`] (local
//! `scf-node` processes) and [`client`] (HTTP, key files) are.
//!
//! The command-line client is [`txcmd`] (every ledger command as flags or JSON) over [`client`].

pub mod check;
pub mod client;
pub mod cluster;
pub mod inproc;
pub mod remote;
pub mod report;
pub mod rng;
pub mod stats;
pub mod txcmd;
pub mod workload;
