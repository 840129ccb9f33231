//! What only the RocksDB store can show: it keeps the `LogStore` contract on disk, everything
//! synced survives closing and reopening it, a store damaged on disk is refused rather than
//! trusted or panicked on, and a node restarted on it carries on.

use crate::contract;

use contract::{conf, contract, entry};
use ledger::client::Identity;
use ledger::crypto::SigningKey;
use ledger::store::{StateStore, WriteSet};
use ledger::{Ledger, query};
use raft::Storage as _;
use raft::eraftpb::{ConfState, HardState};
use raft_node::node::{Node, NodeConfig, Outcome};
use raft_node::rocks::RocksLogStore;
use raft_node::storage::LogStore;
use testkit::TestDir;
use testkit::chain::{self, HOUR_MS, REGISTRAR, T0_MS};

// Goal: the RocksDB store keeps the same contract as the in-memory twin.
#[test]
fn rocks_log_store_keeps_the_contract() {
    let dirs = std::cell::RefCell::new(Vec::new());
    let open = |genesis: bool| {
        let dir = TestDir::new("log-store");
        let conf = conf();
        let writes = WriteSet::default();
        let store = RocksLogStore::open(dir.path(), genesis.then_some((&writes, &conf))).unwrap();
        dirs.borrow_mut().push(dir);
        store
    };
    contract(|| open(true), || open(false));
}

// Goal: everything a RocksDB store wrote survives closing and reopening it: the log, the hard
// state, the applied state and index, the compaction point.
#[test]
fn rocks_store_survives_reopening() {
    let dir = TestDir::new("log-store");
    let writes = WriteSet::default();
    {
        let mut store = RocksLogStore::open(dir.path(), Some((&writes, &conf()))).unwrap();
        store.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
        store
            .set_hard_state(&HardState { term: 2, vote: 3, commit: 3, ..Default::default() })
            .unwrap();
        store.sync().unwrap();
        let mut applied = WriteSet::default();
        applied.put(b"party/a".to_vec(), b"a".to_vec());
        store.apply(1, &applied, None).unwrap();
        store.apply(2, &WriteSet::default(), None).unwrap();
        store.compact(1).unwrap();
    }
    // Reopening with a genesis does not re-initialise an existing store.
    let store = RocksLogStore::open(dir.path(), Some((&writes, &conf()))).unwrap();
    assert_eq!(store.initial_state().unwrap().hard_state.vote, 3);
    assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (2, 3));
    assert_eq!(store.term(1).unwrap(), 1);
    assert_eq!(store.term(3).unwrap(), 2);
    assert_eq!(store.applied_index(), 2);
    assert_eq!(store.state().get(b"party/a").unwrap(), Some(b"a".to_vec()));
    assert_eq!(store.initial_state().unwrap().conf_state, conf());
}

// Goal: a compaction point whose record on disk is too short (a torn or damaged disk, or
// another program's write) makes opening the store fail with a clear error: no panic, no guess.
#[test]
fn a_damaged_compaction_point_is_refused() {
    let dir = TestDir::new("log-store");
    let writes = WriteSet::default();
    drop(RocksLogStore::open(dir.path(), Some((&writes, &conf()))).unwrap());
    for damaged in [&b""[..], &[0u8; 5], &[0u8; 12], &[0u8; 17]] {
        {
            let families = ["raft_log", "raft_meta", "ledger"];
            let db =
                rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), families).unwrap();
            db.put_cf(db.cf_handle("raft_meta").unwrap(), b"truncated", damaged).unwrap();
        }
        let refused = RocksLogStore::open(dir.path(), None).err().expect("a damaged store opens");
        assert!(
            refused.to_string().contains("a stored 8-byte integer has"),
            "{} bytes: {refused}",
            damaged.len()
        );
    }
}

// Goal: a one-voter node on RocksDB applies transactions, and after it is closed and started
// again on the same directory it has the same chain and keeps applying.
#[test]
fn node_restarts_from_disk() {
    let dir = TestDir::new("log-store");
    let registrar = Identity::new("scf-disk", REGISTRAR, SigningKey::from_seed(REGISTRAR));
    let ledger = Ledger::new(chain::genesis("scf-disk"));
    let single = ConfState { voters: vec![1], ..Default::default() };
    let register =
        |i: u64| registrar.sign(T0_MS + HOUR_MS, i, chain::party_registration("disk", i));
    let run = |node: &mut Node<RocksLogStore>, first: u64, now_ms: u64| {
        for _ in 0..50 {
            node.tick();
            node.handle_ready().unwrap();
            if node.is_leader() {
                break;
            }
        }
        assert!(node.is_leader(), "a single voter elects itself");
        for i in first..first + 5 {
            node.submit(i, register(i)).unwrap();
        }
        node.flush(now_ms).unwrap();
        let mut committed = 0;
        for _ in 0..20 {
            node.handle_ready().unwrap();
            committed += node
                .take_outcomes()
                .into_iter()
                .filter(|o| matches!(o, Outcome::Committed { result, .. } if result.applied))
                .count();
        }
        assert_eq!(committed, 5);
    };
    let before = {
        let store =
            RocksLogStore::open(dir.path(), Some((&ledger.genesis_writes(), &single))).unwrap();
        let mut node = Node::new(NodeConfig::new(1), store, ledger.clone()).unwrap();
        run(&mut node, 0, T0_MS + 1_000);
        node.status()
    };
    let store = RocksLogStore::open(dir.path(), Some((&ledger.genesis_writes(), &single))).unwrap();
    let mut node = Node::new(NodeConfig::new(1), store, ledger.clone()).unwrap();
    let after = node.status();
    assert_eq!((after.height, &after.state_hash), (before.height, &before.state_hash));
    run(&mut node, 5, T0_MS + 2_000);
    let state = node.store().state();
    for i in 0..10 {
        assert!(query::party(state, &format!("p-{i}")).unwrap().is_some(), "p-{i}");
    }
}
