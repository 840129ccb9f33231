//! Raft replication of the ledger (issue #3, in progress).
//!
//! This crate will be the only one with IO: a node that drives tikv raft-rs through its Ready
//! loop, stores the log and the ledger state in RocksDB (the ledger's `WriteSet` in the same
//! write batch as the applied index), batches proposals, stamps ledger time as leader, and
//! replicates to voters and observer replicas.
//!
//! What exists today:
//! - [`storage`]: the storage boundary, [`storage::LogStore`], and its in-memory twin
//!   [`storage::MemLogStore`] that loses unsynced writes on a simulated crash;
//! - [`node`]: the replica, [`node::Node`], which drives raft-rs's Ready loop over a `LogStore`,
//!   batches and stamps proposals, applies committed batches to the ledger and reports each
//!   transaction's outcome, with no IO and no clock of its own;
//!   observers verify a snapshot by re-executing its whole chain before adopting it;
//! - `tests/cluster.rs`: the deterministic, seeded multi-node test over them, including an
//!   observer that joins with an empty disk and catches up from a snapshot.
//!
//! Every replica, observers included, re-executes every committed batch itself, so each checks
//! every signature and rule as it applies. `rocks` (feature `rocksdb`) is the `LogStore` in
//! RocksDB, tested on disk but not yet built by CI. Not yet: the TCP transport, the
//! tokio loop and timers around `Node`, ReadIndex reads, runtime membership changes (the apply
//! path handles conf-change entries, but nothing proposes them), a bound on the leader's time
//! stamp, and a way for an observer to compare its blocks with the leader's. Nothing here runs a
//! real cluster yet.

pub mod node;
pub mod replica;
pub mod rocks;
pub mod storage;
pub mod transport;
