//! The replica's durable state: the Raft log, its hard state, and the ledger state with its
//! applied index, behind one trait so the node loop runs the same over RocksDB
//! ([`crate::rocks::RocksLogStore`]) and over memory in the deterministic cluster tests.
//!
//! What is durable, and when, is the contract here:
//! - `append` and `set_hard_state` are buffered: they are visible to raft-rs at once but survive a
//!   crash only after `sync` (one fsync per Ready, however many entries it holds: group commit).
//! - `apply` writes the ledger's `WriteSet` and the new applied index in one atomic, synced write;
//!   like a synced RocksDB write batch, it also makes every earlier buffered write durable, so the
//!   applied index can never be ahead of the durable log or commit index after a crash.
//! - `install_snapshot` and `compact` are durable at once.
//!
//! [`MemLogStore`] keeps a `current` copy (what raft-rs sees) and a `durable` copy (what a crash
//! leaves); [`MemLogStore::crashed`] returns the latter, so a test can kill a node at any point
//! and restart it exactly as a real disk would.

use ledger::pb::{StateEntry, StateSnapshot};
use ledger::store::{MemStore, StateStore, StoreError, WriteSet};
use prost::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Format version of [`StateSnapshot`] payloads this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A failure of the replica's storage. Always fatal to the node: it stops rather than guess.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// Entries to append do not continue the log.
    #[error("entries starting at index {first} do not continue the log ending at {last}")]
    Gap {
        /// First index offered.
        first: u64,
        /// Last index held.
        last: u64,
    },
    /// Entries to append would overwrite compacted entries.
    #[error(
        "entries starting at index {first} overwrite the compacted prefix ending at {truncated}"
    )]
    OverwritesCompacted {
        /// First index offered.
        first: u64,
        /// Last compacted index.
        truncated: u64,
    },
    /// Applying out of order.
    #[error("applied index {next} does not follow {applied}")]
    ApplyOutOfOrder {
        /// Index offered.
        next: u64,
        /// Index applied so far.
        applied: u64,
    },
    /// Compacting past what is applied.
    #[error("cannot compact through {index}: only {applied} is applied")]
    CompactBeyondApplied {
        /// Index asked for.
        index: u64,
        /// Index applied so far.
        applied: u64,
    },
    /// A snapshot's payload does not decode.
    #[error("snapshot payload is corrupt: {0}")]
    CorruptSnapshot(String),
    /// RocksDB failed (an I/O error, corruption the engine reports).
    #[error("storage backend failed: {0}")]
    Backend(#[from] rocksdb::Error),
    /// A raft record (an entry, the hard state, the members) did not encode or decode.
    #[error("raft record does not encode or decode: {0}")]
    Record(#[from] protobuf::ProtobufError),
    /// A stored log index or term is not the 8 bytes this code writes.
    #[error("a stored 8-byte integer has {len} bytes")]
    IntegerLength {
        /// Its length.
        len: usize,
    },
    /// Reading the log back through raft-rs's `Storage` failed.
    #[error("reading the log failed: {0}")]
    Log(#[source] raft::Error),
    /// The ledger state could not be read.
    #[error("reading the ledger state failed: {0}")]
    State(#[source] StoreError),
}

/// Consistent views of a replica's applied ledger state, for threads other than the replica's.
pub trait StateViews: Send + Sync {
    /// Runs `read` once against a view of the state as of one applied entry (at least the last
    /// one applied when called). `false` if the store is gone (the replica stopped): then
    /// `read` did not run.
    fn read(&self, read: &mut dyn FnMut(&dyn StateStore)) -> bool;
}

/// The durable state of one replica. Extends raft-rs's read-only [`raft::Storage`] with the
/// writes the node's Ready loop makes.
pub trait LogStore: raft::Storage {
    /// The ledger state as of [`LogStore::applied_index`].
    type State: StateStore;

    /// Appends entries, replacing any suffix they conflict with. Buffered until [`sync`].
    ///
    /// [`sync`]: LogStore::sync
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogStoreError>;

    /// Replaces the hard state. Buffered until [`LogStore::sync`].
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), LogStoreError>;

    /// Makes every buffered write durable (one fsync).
    fn sync(&mut self) -> Result<(), LogStoreError>;

    /// Atomically and durably commits the ledger changes of the entry at `index`, records
    /// `index` as applied (and `conf_state` when the entry changed membership), raises the hard
    /// state's commit index to `index` if it was lower (an applied entry is committed, and
    /// raft-rs refuses to restart from a disk whose applied index is ahead of its commit index),
    /// and makes every buffered write durable.
    fn apply(
        &mut self,
        index: u64,
        writes: &WriteSet,
        conf_state: Option<&ConfState>,
    ) -> Result<(), LogStoreError>;

    /// The index of the last applied entry.
    fn applied_index(&self) -> u64;

    /// The ledger state.
    fn state(&self) -> &Self::State;

    /// Views of the applied ledger state that other threads may read while the replica's
    /// thread goes on, if this store has them (RocksDB's snapshots); `None` (the default):
    /// reads run on the replica's thread against [`LogStore::state`].
    fn views(&self) -> Option<std::sync::Arc<dyn StateViews>> {
        None
    }

    /// Replaces the whole state with a snapshot received from the leader, durably.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), LogStoreError>;

    /// Drops log entries up to and including `index` (at most the applied index), durably.
    fn compact(&mut self, index: u64) -> Result<(), LogStoreError>;
}

/// Everything one copy of a replica's disk holds.
#[derive(Debug, Clone, Default)]
struct Disk {
    hard_state: HardState,
    /// Membership as of the last applied entry (what a snapshot carries).
    conf_state: ConfState,
    /// Index and term of the last entry dropped by compaction or covered by a snapshot.
    truncated_index: u64,
    truncated_term: u64,
    /// Entries `truncated_index + 1 ..`, contiguous.
    entries: Vec<Entry>,
    ledger: MemStore,
    applied_index: u64,
}

impl Disk {
    fn first_index(&self) -> u64 {
        self.truncated_index + 1
    }

    fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.truncated_index, |e| e.index)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.truncated_index {
            return Ok(self.truncated_term);
        }
        if index < self.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[self.offset(index)].term)
    }

    fn offset(&self, index: u64) -> usize {
        usize::try_from(index - self.first_index()).expect("log offsets fit in memory")
    }
}

/// The in-memory [`LogStore`] of the deterministic cluster tests: it forgets every write that was
/// not synced when the test crashes it. Not for production; nothing in it reaches a disk.
#[derive(Debug, Clone)]
pub struct MemLogStore {
    current: Disk,
    durable: Disk,
    /// Durable writes left before the simulated process dies (see [`MemLogStore::arm_crash`]).
    writes_left: std::cell::Cell<Option<u64>>,
    /// Set once the armed crash point is reached: nothing more becomes durable.
    dead: std::cell::Cell<bool>,
}

impl MemLogStore {
    /// A new replica's empty store: the ledger's genesis writes applied at index 0, and the
    /// initial membership (every replica of a new cluster starts from the same one).
    pub fn new(genesis_writes: &WriteSet, conf_state: ConfState) -> Self {
        let mut disk = Disk::default();
        disk.ledger.commit(genesis_writes);
        disk.conf_state = conf_state;
        Self::from_disk(disk)
    }

    fn from_disk(disk: Disk) -> Self {
        Self {
            current: disk.clone(),
            durable: disk,
            writes_left: std::cell::Cell::new(None),
            dead: std::cell::Cell::new(false),
        }
    }

    /// Arms a crash in the middle of whatever the node does next: `writes` more durable writes
    /// (syncs, applies, snapshot installs, compactions) succeed, and the process "dies" just
    /// before the one after; from then on nothing becomes durable. The test must then stop
    /// using the node (its later messages and answers never left the dead process) as soon as
    /// [`MemLogStore::is_dead`] says so, and restart it from [`MemLogStore::crashed`].
    pub fn arm_crash(&self, writes: u64) {
        self.writes_left.set(Some(writes));
    }

    /// Whether an armed crash point was reached.
    pub fn is_dead(&self) -> bool {
        self.dead.get()
    }

    /// An empty store for a replica that joins an existing cluster and will catch up from a
    /// snapshot: no genesis, no membership.
    pub fn empty() -> Self {
        Self::from_disk(Disk::default())
    }

    /// What this store's disk holds after a crash at this instant (or at the armed crash point,
    /// if it was reached): only synced writes.
    pub fn crashed(&self) -> Self {
        Self::from_disk(self.durable.clone())
    }

    fn make_durable(&mut self) {
        if self.dead.get() {
            return;
        }
        match self.writes_left.get() {
            Some(0) => {
                self.dead.set(true);
                return;
            }
            Some(n) => self.writes_left.set(Some(n - 1)),
            None => {}
        }
        self.durable = self.current.clone();
    }
}

impl raft::Storage for MemLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.current.hard_state.clone(),
            conf_state: self.current.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let disk = &self.current;
        check_range(low, high, disk.first_index(), disk.last_index())?;
        let mut entries = disk.entries[disk.offset(low)..disk.offset(high)].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.current.term(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.current.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.current.last_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The snapshot is always of the applied state: it is the only state a replica has. A
        // follower that needs more recent entries gets them from the log afterwards.
        let disk = &self.current;
        let term = disk.term(disk.applied_index)?;
        Ok(applied_snapshot(disk.applied_index, term, &disk.conf_state, encode_state(&disk.ledger)))
    }
}

impl LogStore for MemLogStore {
    type State = MemStore;

    fn append(&mut self, entries: &[Entry]) -> Result<(), LogStoreError> {
        let Some(first) = entries.first() else { return Ok(()) };
        let disk = &mut self.current;
        if first.index <= disk.truncated_index {
            return Err(LogStoreError::OverwritesCompacted {
                first: first.index,
                truncated: disk.truncated_index,
            });
        }
        if first.index > disk.last_index() + 1 {
            return Err(LogStoreError::Gap { first: first.index, last: disk.last_index() });
        }
        let keep = disk.offset(first.index);
        disk.entries.truncate(keep);
        disk.entries.extend_from_slice(entries);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), LogStoreError> {
        self.current.hard_state = hard_state.clone();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogStoreError> {
        self.make_durable();
        Ok(())
    }

    fn apply(
        &mut self,
        index: u64,
        writes: &WriteSet,
        conf_state: Option<&ConfState>,
    ) -> Result<(), LogStoreError> {
        let disk = &mut self.current;
        if index != disk.applied_index + 1 {
            return Err(LogStoreError::ApplyOutOfOrder {
                next: index,
                applied: disk.applied_index,
            });
        }
        disk.ledger.commit(writes);
        disk.applied_index = index;
        disk.hard_state.commit = disk.hard_state.commit.max(index);
        if let Some(conf_state) = conf_state {
            disk.conf_state = conf_state.clone();
        }
        self.make_durable();
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.current.applied_index
    }

    fn state(&self) -> &MemStore {
        &self.current.ledger
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), LogStoreError> {
        let metadata = snapshot.get_metadata();
        let ledger = decode_state(snapshot.get_data())?;
        let disk = &mut self.current;
        disk.ledger = ledger;
        disk.applied_index = metadata.index;
        disk.conf_state = metadata.get_conf_state().clone();
        disk.truncated_index = metadata.index;
        disk.truncated_term = metadata.term;
        // Entries after the snapshot that agree with it could be kept; dropping them is simpler
        // and always safe, since the leader sends what follows.
        disk.entries.clear();
        disk.hard_state.commit = disk.hard_state.commit.max(metadata.index);
        disk.hard_state.term = disk.hard_state.term.max(metadata.term);
        self.make_durable();
        Ok(())
    }

    fn compact(&mut self, index: u64) -> Result<(), LogStoreError> {
        let disk = &mut self.current;
        if index > disk.applied_index {
            return Err(LogStoreError::CompactBeyondApplied { index, applied: disk.applied_index });
        }
        if index <= disk.truncated_index {
            return Ok(());
        }
        let term = disk.term(index).map_err(LogStoreError::Log)?;
        let drop = disk.offset(index) + 1;
        disk.entries.drain(..drop);
        disk.truncated_index = index;
        disk.truncated_term = term;
        self.make_durable();
        Ok(())
    }
}

/// Encodes every key of a state as a [`StateSnapshot`].
pub fn encode_state(store: &MemStore) -> Vec<u8> {
    encode_entries(
        store
            .entries()
            .iter()
            .map(|(key, value)| StateEntry { key: key.clone(), value: value.clone() })
            .collect(),
    )
}

/// Encodes state entries, in key order, as a [`StateSnapshot`] payload.
pub(crate) fn encode_entries(entries: Vec<StateEntry>) -> Vec<u8> {
    StateSnapshot { version: SNAPSHOT_VERSION, entries }.encode_to_vec()
}

/// The checks `raft::Storage::entries` makes of its range, for a log holding
/// `first_index..=last_index`.
pub(crate) fn check_range(
    low: u64,
    high: u64,
    first_index: u64,
    last_index: u64,
) -> raft::Result<()> {
    if low < first_index {
        return Err(raft::Error::Store(StorageError::Compacted));
    }
    if high > last_index + 1 || low > high {
        return Err(raft::Error::Store(StorageError::Unavailable));
    }
    Ok(())
}

/// A Raft snapshot of the applied state: every store snapshots what it has applied, since that
/// is the only state a replica holds.
pub(crate) fn applied_snapshot(
    applied_index: u64,
    term: u64,
    conf_state: &ConfState,
    data: Vec<u8>,
) -> Snapshot {
    let mut metadata = SnapshotMetadata { index: applied_index, term, ..Default::default() };
    metadata.set_conf_state(conf_state.clone());
    let mut snapshot = Snapshot::default();
    snapshot.set_metadata(metadata);
    snapshot.set_data(data.into());
    snapshot
}

/// Decodes a [`StateSnapshot`] into a fresh state.
pub fn decode_state(bytes: &[u8]) -> Result<MemStore, LogStoreError> {
    let snapshot =
        StateSnapshot::decode(bytes).map_err(|e| LogStoreError::CorruptSnapshot(e.to_string()))?;
    if snapshot.version != SNAPSHOT_VERSION {
        return Err(LogStoreError::CorruptSnapshot(format!(
            "unknown snapshot version {}",
            snapshot.version
        )));
    }
    let mut writes = WriteSet::default();
    for entry in snapshot.entries {
        writes.put(entry.key, entry.value);
    }
    let mut store = MemStore::new();
    store.commit(&writes);
    Ok(store)
}

// The contract both stores keep is tested in `tests/log_store.rs`; these tests cover what only the
// in-memory twin does: forgetting unsynced writes on a simulated crash.
#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage as _;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![u8::try_from(index % 251).unwrap(); 10].into(),
            ..Default::default()
        }
    }

    fn store_with(entries: &[(u64, u64)]) -> MemLogStore {
        let mut store = MemLogStore::new(&WriteSet::default(), ConfState::default());
        let entries: Vec<Entry> = entries.iter().map(|(i, t)| entry(*i, *t)).collect();
        store.append(&entries).unwrap();
        store
    }

    // Goal: a crash forgets exactly the writes that were not synced.
    #[test]
    fn crash_forgets_unsynced_writes() {
        let mut store = store_with(&[(1, 1), (2, 1)]);
        store.sync().unwrap();
        store.append(&[entry(3, 1)]).unwrap();
        let hard_state = HardState { term: 5, ..Default::default() };
        store.set_hard_state(&hard_state).unwrap();
        let crashed = store.crashed();
        assert_eq!(crashed.last_index().unwrap(), 2);
        assert_eq!(crashed.initial_state().unwrap().hard_state.term, 0);
        store.sync().unwrap();
        let crashed = store.crashed();
        assert_eq!(crashed.last_index().unwrap(), 3);
        assert_eq!(crashed.initial_state().unwrap().hard_state.term, 5);
    }

    // Goal: applying is atomic with the applied index, in order, and makes buffered log writes
    // durable with it (as a synced RocksDB batch would).
    #[test]
    fn apply_is_durable_and_ordered() {
        let mut store = store_with(&[(1, 1), (2, 1)]);
        let mut writes = WriteSet::default();
        writes.put(b"k".to_vec(), b"v".to_vec());
        assert!(matches!(
            store.apply(2, &writes, None),
            Err(LogStoreError::ApplyOutOfOrder { next: 2, applied: 0 })
        ));
        store.apply(1, &writes, None).unwrap();
        let crashed = store.crashed();
        assert_eq!(crashed.applied_index(), 1);
        assert_eq!(crashed.state().get(b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(crashed.last_index().unwrap(), 2, "the apply synced the buffered entries");
    }

    // Goal: a snapshot carries the applied state, its index, term and membership, and a fresh
    // store that installs it holds the same state and continues the log after it.
    #[test]
    fn snapshot_round_trip() {
        let conf_state =
            ConfState { voters: vec![1, 2, 3], learners: vec![4], ..Default::default() };
        let mut source = MemLogStore::new(&WriteSet::default(), conf_state.clone());
        source.append(&[entry(1, 1), entry(2, 2), entry(3, 2)]).unwrap();
        for index in 1..=2 {
            let mut writes = WriteSet::default();
            writes.put(format!("key/{index}").into_bytes(), vec![u8::try_from(index).unwrap()]);
            source.apply(index, &writes, None).unwrap();
        }
        let snapshot = source.snapshot(0, 4).unwrap();
        assert_eq!((snapshot.get_metadata().index, snapshot.get_metadata().term), (2, 2));
        assert_eq!(snapshot.get_metadata().get_conf_state(), &conf_state);

        let mut joiner = MemLogStore::empty();
        joiner.install_snapshot(&snapshot).unwrap();
        assert_eq!(joiner.state().entries(), source.state().entries());
        assert_eq!(joiner.applied_index(), 2);
        assert_eq!((joiner.first_index().unwrap(), joiner.last_index().unwrap()), (3, 2));
        assert_eq!(joiner.term(2).unwrap(), 2);
        assert_eq!(joiner.initial_state().unwrap().conf_state, conf_state);
        joiner.append(&[entry(3, 2)]).unwrap();
        assert_eq!(joiner.crashed().applied_index(), 2, "installing a snapshot is durable");
    }

    // Goal: a corrupt snapshot payload is an error, not a panic or an empty state.
    #[test]
    fn corrupt_snapshot_is_refused() {
        assert!(matches!(decode_state(&[0xff, 0xff]), Err(LogStoreError::CorruptSnapshot(_))));
        let wrong_version = StateSnapshot { version: 9, entries: Vec::new() }.encode_to_vec();
        assert!(matches!(decode_state(&wrong_version), Err(LogStoreError::CorruptSnapshot(_))));
    }
}
