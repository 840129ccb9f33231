//! The `LogStore` contract, shared by the tests of both implementations.

#![allow(dead_code)]

use ledger::store::{StateStore, WriteSet};
use raft::GetEntriesContext;
use raft::eraftpb::{ConfState, Entry, HardState};
use raft_node::storage::{LogStore, LogStoreError};

pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![u8::try_from(index % 251).unwrap(); 16].into(),
        ..Default::default()
    }
}

pub fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

pub fn conf() -> ConfState {
    ConfState { voters: vec![1, 2, 3], learners: vec![4], ..Default::default() }
}

/// The contract every `LogStore` keeps; `fresh` opens a new initialised store, `empty` a new
/// uninitialised one.
pub fn contract<L: LogStore>(fresh: impl Fn() -> L, empty: impl Fn() -> L) {
    // Appends are readable at once; a conflicting append replaces the suffix; gaps are refused.
    let mut store = fresh();
    assert_eq!(store.initial_state().unwrap().conf_state, conf());
    store.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
    assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (1, 3));
    store.append(&[entry(2, 2)]).unwrap();
    assert_eq!(store.last_index().unwrap(), 2);
    assert_eq!(store.term(2).unwrap(), 2);
    assert!(matches!(store.append(&[entry(4, 2)]), Err(LogStoreError::Gap { first: 4, last: 2 })));
    store.append(&[entry(3, 2), entry(4, 2)]).unwrap();
    assert_eq!(
        store.entries(1, 5, None, ctx()).unwrap().iter().map(|e| e.term).collect::<Vec<_>>(),
        [1, 2, 2, 2]
    );
    assert_eq!(
        store.entries(1, 5, Some(1), ctx()).unwrap().len(),
        1,
        "a size limit still returns one"
    );
    assert!(store.entries(1, 6, None, ctx()).is_err());

    // Hard state round-trips.
    let hard_state = HardState { term: 2, vote: 1, commit: 3, ..Default::default() };
    store.set_hard_state(&hard_state).unwrap();
    store.sync().unwrap();
    assert_eq!(store.initial_state().unwrap().hard_state, hard_state);

    // Apply is ordered and lands in the state.
    let mut writes = WriteSet::default();
    writes.put(b"party/x".to_vec(), b"x".to_vec());
    assert!(matches!(store.apply(2, &writes, None), Err(LogStoreError::ApplyOutOfOrder { .. })));
    store.apply(1, &writes, None).unwrap();
    assert_eq!(store.state().get(b"party/x").unwrap(), Some(b"x".to_vec()));
    let mut delete = WriteSet::default();
    delete.changes.insert(b"party/x".to_vec(), None);
    store.apply(2, &delete, None).unwrap();
    assert_eq!(store.state().get(b"party/x").unwrap(), None);
    store
        .apply(
            3,
            &WriteSet::default(),
            Some(&ConfState { voters: vec![1, 2, 3, 4], ..Default::default() }),
        )
        .unwrap();
    assert_eq!(store.initial_state().unwrap().conf_state.voters, [1, 2, 3, 4]);

    // Compaction keeps the boundary's term and refuses to pass the applied index.
    store.compact(2).unwrap();
    assert_eq!(store.first_index().unwrap(), 3);
    assert_eq!(store.term(2).unwrap(), 2);
    assert!(store.entries(2, 4, None, ctx()).is_err());
    assert_eq!(store.entries(3, 5, None, ctx()).unwrap().len(), 2);
    assert!(matches!(store.compact(4), Err(LogStoreError::CompactBeyondApplied { .. })));
    assert!(matches!(store.append(&[entry(2, 3)]), Err(LogStoreError::OverwritesCompacted { .. })));

    // A snapshot is of the applied state, and an empty store that installs it continues after it.
    let mut writes = WriteSet::default();
    writes.put(b"party/y".to_vec(), b"y".to_vec());
    store.apply(4, &writes, None).unwrap();
    // The hard state said commit 3: applying entry 4 raises it in the same write, since an
    // applied entry is committed and raft-rs refuses to restart with applied > commit.
    assert_eq!(store.initial_state().unwrap().hard_state.commit, 4);
    let snapshot = store.snapshot(0, 9).unwrap();
    assert_eq!((snapshot.get_metadata().index, snapshot.get_metadata().term), (4, 2));
    let mut joiner = empty();
    assert!(joiner.initial_state().unwrap().conf_state.voters.is_empty());
    joiner.install_snapshot(&snapshot).unwrap();
    assert_eq!(joiner.applied_index(), 4);
    assert_eq!(joiner.state().get(b"party/y").unwrap(), Some(b"y".to_vec()));
    assert_eq!(joiner.state().get(b"party/x").unwrap(), None);
    assert_eq!((joiner.first_index().unwrap(), joiner.last_index().unwrap()), (5, 4));
    assert_eq!(joiner.term(4).unwrap(), 2);
    assert_eq!(joiner.initial_state().unwrap().conf_state.voters, [1, 2, 3, 4]);
    joiner.append(&[entry(5, 3)]).unwrap();
    assert_eq!(joiner.last_index().unwrap(), 5);
}
