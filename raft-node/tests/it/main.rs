//! raft-node's integration tests, in one test binary (one link step with RocksDB instead of
//! one per file; rust-analyzer's `tests/it` convention): the seeded simulated cluster, the log
//! store contract on memory and RocksDB, and real replicas over TCP.

mod contract;

mod cluster;
mod log_store;
mod rocks_store;
mod tcp_cluster;
