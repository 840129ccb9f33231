//! Raft replication of the ledger.
//!
//! The only crate with consensus and storage IO: replicas that drive tikv raft-rs through its Ready loop, store the
//! log and the ledger state in RocksDB (the ledger's `WriteSet` in the same write batch as the
//! applied index), batch proposals, stamp ledger time as leader, and replicate over TCP to
//! voters and observer replicas (raft learners).
//!
//! - [`storage`]: the storage boundary, [`storage::LogStore`], and its in-memory twin
//!   [`storage::MemLogStore`] that loses unsynced writes on a simulated crash;
//! - [`rocks`]: [`rocks::RocksLogStore`], the `LogStore` in RocksDB;
//! - [`node`]: [`node::Node`], which drives raft-rs's Ready loop over a `LogStore`, batches and
//!   stamps proposals, applies committed batches to the ledger, reports each transaction's
//!   outcome, proposes membership changes and serves ReadIndex reads, with no IO and no clock
//!   of its own; observers verify a snapshot by re-executing its whole chain before adopting it;
//! - [`transport`]: the [`transport::Transport`] boundary and [`transport::TcpTransport`];
//! - [`replica`]: [`replica::Replica`], a `Node` running on its own thread with a clock, a
//!   transport and bounded queues, and the handle clients call.
//!
//! Every replica, observers included, re-executes every committed batch itself, so each checks
//! every signature and rule as it applies. Not yet: a bound on the time stamp a leader may
//! propose, and an observer comparing its blocks with the leader's (it re-executes them, so a
//! divergence would show as a different state hash at the same height, which nothing watches
//! yet).

/// A crash point for the whole-system fault tests. Built only with the `failpoints` feature;
/// armed by the `FAILPOINTS` environment variable of the `fail` crate (`NAME=return` crashes on
/// the first pass, `NAME=20*off->return` on the twenty-first): the process then aborts there, at
/// once, between two steps. (The operating system keeps what the process wrote, synced or not;
/// a machine that loses its unsynced writes is simulated only by `MemLogStore` in the seeded
/// cluster tests.) Unarmed, or without the feature, it does nothing.
///
/// The points: `raft::append::before_hard_state` (log entries written, hard state not),
/// `raft::apply::before_store` (a batch executed, its block and applied index not yet written),
/// `raft::apply::before_outcome` (a block written, its proposers not yet told),
/// `raft::snapshot::before_install` and `raft::snapshot::after_install` (a snapshot received
/// and verified but not written; written but the node not yet moved on).
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if fail::eval($name, |_| ()).is_some() {
            eprintln!("failpoint {} reached: aborting the process", $name);
            std::process::abort();
        }
    };
}

pub mod access_log;
pub mod guard;
pub mod node;
pub mod replica;
pub mod rocks;
pub mod storage;
pub mod transport;
