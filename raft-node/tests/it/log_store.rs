//! The `LogStore` contract checked against the in-memory twin that the deterministic cluster test
//! runs on. (The RocksDB store's tests are in `rocks_store.rs`, under `--features rocksdb`.)

use crate::contract;

use ledger::store::WriteSet;
use raft_node::storage::MemLogStore;

// Goal: the in-memory twin keeps the LogStore contract.
#[test]
fn mem_log_store_keeps_the_contract() {
    contract::contract(
        || MemLogStore::new(&WriteSet::default(), contract::conf()),
        MemLogStore::empty,
    );
}
