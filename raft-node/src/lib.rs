//! Raft replication of the ledger on RocksDB: not built yet.
//!
//! Issue #3 fills this crate: a node that drives tikv raft-rs through its Ready loop, stores the
//! log and the ledger state in RocksDB (the ledger's `WriteSet` in the same write batch as the
//! applied index), batches proposals, stamps ledger time as leader, replicates to voters and
//! observer replicas, and serves reads. It is the only crate that will do IO.
//!
//! Until then it exports nothing, so nothing can mistake it for a working node.
