//! Raft replication of the ledger (issue #3, in progress).
//!
//! This crate will be the only one with IO: a node that drives tikv raft-rs through its Ready
//! loop, stores the log and the ledger state in RocksDB (the ledger's `WriteSet` in the same
//! write batch as the applied index), batches proposals, stamps ledger time as leader, and
//! replicates to voters and observer replicas.
//!
//! What exists today is the storage boundary, [`storage::LogStore`], with its in-memory twin
//! [`storage::MemLogStore`] that loses unsynced writes on a simulated crash, and the replicated
//! payload formats (`LogBatch`, `StateSnapshot` in the ledger's `.proto`). There is no Ready loop,
//! no RocksDB store, no transport and no node yet: nothing here can run a cluster.

pub mod storage;
