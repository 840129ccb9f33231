//! [`RocksLogStore`]: the replica's durable state in RocksDB.
//!
//! Three column families:
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log` | log index, 8 bytes big-endian | `eraftpb::Entry` (protobuf) |
//! | `raft_meta` | `hard_state`, `conf_state`, `truncated`, `applied_index`, `initialized` | protobuf or 8/16 bytes big-endian |
//! | `ledger` | the ledger's own keys (`ledger::store` documents them) | the ledger's records |
//!
//! Durability follows the [`LogStore`] contract. Appends and hard-state changes are written at
//! once without an fsync (so raft-rs can read them back) and made durable by `sync`, which fsyncs
//! the write-ahead log: one fsync per Ready, however many entries it holds. `apply` writes the
//! ledger's write set, the applied index and any new membership in one write batch with
//! `sync = true`; since RocksDB's WAL is sequential, that fsync also covers every earlier
//! unsynced append. Snapshot installs and compactions are single synced batches too.

use std::path::Path;
use std::sync::{Arc, Weak};

use ledger::pb::StateEntry;
use ledger::store::{StateStore, StoreError, Visit, WriteSet};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, IteratorMode,
    Options, Snapshot as DbSnapshot, WriteBatch, WriteOptions,
};

use crate::storage::{
    LogStore, LogStoreError, StateViews, applied_snapshot, check_range, decode_state,
    encode_entries,
};

const CF_LOG: &str = "raft_log";
const CF_META: &str = "raft_meta";
const CF_LEDGER: &str = "ledger";
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_TRUNCATED: &[u8] = b"truncated";
const KEY_APPLIED: &[u8] = b"applied_index";
const KEY_INITIALIZED: &[u8] = b"initialized";

/// A RocksDB failure as the ledger state reports it.
fn state_backend(error: rocksdb::Error) -> StoreError {
    StoreError::Backend { source: std::sync::Arc::new(error) }
}

/// The ledger state in the `ledger` column family, read through [`StateStore`].
pub struct RocksState {
    db: Arc<DB>,
}

impl RocksState {
    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("every column family is created at open")
    }
}

impl StateStore for RocksState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(CF_LEDGER), key).map_err(state_backend)
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        let iterator =
            self.db.iterator_cf(self.cf(CF_LEDGER), IteratorMode::From(prefix, Direction::Forward));
        for item in iterator {
            let (key, value) = item.map_err(state_backend)?;
            if !key.starts_with(prefix) || visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Consistent views of the ledger column family from any thread: each read runs against a
/// RocksDB snapshot, so it sees the state of one applied entry whole (every apply and snapshot
/// install is one write batch), however the replica's thread goes on meanwhile. Holds the
/// database weakly: once the replica's store is dropped, reads fail (`None`) and the database
/// closes.
struct RocksViews {
    db: Weak<DB>,
}

impl StateViews for RocksViews {
    fn read(&self, read: &mut dyn FnMut(&dyn StateStore)) -> bool {
        let Some(db) = self.db.upgrade() else { return false };
        let Some(family) = db.cf_handle(CF_LEDGER) else { return false };
        let snapshot = db.snapshot();
        read(&SnapshotState { snapshot: &snapshot, family });
        true
    }
}

/// The ledger column family as of one RocksDB snapshot.
struct SnapshotState<'a> {
    snapshot: &'a DbSnapshot<'a>,
    family: &'a rocksdb::ColumnFamily,
}

impl StateStore for SnapshotState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot.get_cf(self.family, key).map_err(state_backend)
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        let mode = IteratorMode::From(prefix, Direction::Forward);
        for item in self.snapshot.iterator_cf(self.family, mode) {
            let (key, value) = item.map_err(state_backend)?;
            if !key.starts_with(prefix) || visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// The replica's durable state in one RocksDB database. See the module documentation.
pub struct RocksLogStore {
    state: RocksState,
    hard_state: HardState,
    conf_state: ConfState,
    truncated_index: u64,
    truncated_term: u64,
    last_index: u64,
    applied_index: u64,
}

/// The ledger column family's memtable size. Every applied block inserts its write set into the
/// memtable's skip list, and the cost of an insert grows with the list: RocksDB's default (64 MiB)
/// made the inserts a tenth of a replica's time; a list that fits in the cache costs less.
const LEDGER_WRITE_BUFFER_BYTES: usize = 8 << 20;

impl RocksLogStore {
    /// Opens (or creates) the store at `path`. A new store is initialised with `genesis` (the
    /// ledger's genesis writes and the initial membership) when given; without it a new store
    /// stays empty, for a replica that joins a running cluster and catches up from a snapshot.
    pub fn open(
        path: &Path,
        genesis: Option<(&WriteSet, &ConfState)>,
    ) -> Result<Self, LogStoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // LZ4: cheap to compress, and the one codec this build compiles into RocksDB.
        // The ledger's state is read by point lookups, most of them for keys that do not exist
        // (every new transaction's replay check, new records' ids): bloom filters answer those
        // without searching the memtable's skip list or an SST's blocks.
        let family = |name| {
            let mut options = Options::default();
            options.set_compression_type(DBCompressionType::Lz4);
            if name == CF_LEDGER {
                options.set_memtable_prefix_bloom_ratio(0.05);
                options.set_memtable_whole_key_filtering(true);
                options.set_write_buffer_size(LEDGER_WRITE_BUFFER_BYTES);
                let mut table = BlockBasedOptions::default();
                table.set_bloom_filter(10.0, false);
                options.set_block_based_table_factory(&table);
            }
            ColumnFamilyDescriptor::new(name, options)
        };
        let families = [CF_LOG, CF_META, CF_LEDGER].map(family);
        let db = DB::open_cf_descriptors(&options, path, families)?;
        let mut store = Self {
            state: RocksState { db: Arc::new(db) },
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            truncated_index: 0,
            truncated_term: 0,
            last_index: 0,
            applied_index: 0,
        };
        if store.meta(KEY_INITIALIZED)?.is_none() {
            if let Some((writes, conf_state)) = genesis {
                let mut batch = WriteBatch::default();
                store.put_writes(&mut batch, writes);
                batch.put_cf(store.state.cf(CF_META), KEY_CONF_STATE, conf_state.write_to_bytes()?);
                batch.put_cf(store.state.cf(CF_META), KEY_INITIALIZED, [1u8]);
                store.write(batch, true)?;
            }
        }
        store.load()?;
        Ok(store)
    }

    fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LogStoreError> {
        self.state.db.get_cf(self.state.cf(CF_META), key).map_err(LogStoreError::Backend)
    }

    fn load(&mut self) -> Result<(), LogStoreError> {
        if let Some(bytes) = self.meta(KEY_HARD_STATE)? {
            self.hard_state = HardState::parse_from_bytes(&bytes)?;
        }
        if let Some(bytes) = self.meta(KEY_CONF_STATE)? {
            self.conf_state = ConfState::parse_from_bytes(&bytes)?;
        }
        if let Some(bytes) = self.meta(KEY_TRUNCATED)? {
            // Index then term, 8 bytes each; a record of another length is corrupt.
            let (index, term) = bytes
                .split_at_checked(8)
                .ok_or(LogStoreError::IntegerLength { len: bytes.len() })?;
            self.truncated_index = u64_from(index)?;
            self.truncated_term = u64_from(term)?;
        }
        if let Some(bytes) = self.meta(KEY_APPLIED)? {
            self.applied_index = u64_from(&bytes)?;
        }
        let mut last = self.state.db.iterator_cf(self.state.cf(CF_LOG), IteratorMode::End);
        self.last_index = match last.next() {
            Some(item) => u64_from(&item?.0)?,
            None => self.truncated_index,
        };
        Ok(())
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), LogStoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.state.db.write_opt(batch, &options).map_err(LogStoreError::Backend)
    }

    fn put_writes(&self, batch: &mut WriteBatch, writes: &WriteSet) {
        let cf = self.state.cf(CF_LEDGER);
        for (key, value) in &writes.changes {
            match value {
                Some(value) => batch.put_cf(cf, key, value),
                None => batch.delete_cf(cf, key),
            }
        }
    }

    fn entry(&self, index: u64) -> raft::Result<Entry> {
        let bytes = self
            .state
            .db
            .get_cf(self.state.cf(CF_LOG), index.to_be_bytes())
            .map_err(|e| raft::Error::Store(StorageError::Other(e.into())))?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Entry::parse_from_bytes(&bytes)
            .map_err(|e| raft::Error::Store(StorageError::Other(e.into())))
    }
}

fn u64_from(bytes: &[u8]) -> Result<u64, LogStoreError> {
    let array: [u8; 8] =
        bytes.try_into().map_err(|_| LogStoreError::IntegerLength { len: bytes.len() })?;
    Ok(u64::from_be_bytes(array))
}

impl raft::Storage for RocksLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState { hard_state: self.hard_state.clone(), conf_state: self.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        check_range(low, high, self.truncated_index + 1, self.last_index)?;
        let max_size = max_size.into();
        let mut entries = Vec::new();
        let mut size = 0u64;
        for index in low..high {
            let entry = self.entry(index)?;
            size += u64::from(entry.compute_size());
            if !entries.is_empty() && max_size.is_some_and(|max| size > max) {
                break;
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.truncated_index {
            return Ok(self.truncated_term);
        }
        if index < self.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entry(index)?.term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index)
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let other = |e: String| raft::Error::Store(StorageError::Other(e.into()));
        let mut entries = Vec::new();
        for item in self.state.db.iterator_cf(self.state.cf(CF_LEDGER), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| other(e.to_string()))?;
            entries.push(StateEntry { key: key.into_vec(), value: value.into_vec() });
        }
        let term = self.term(self.applied_index)?;
        Ok(applied_snapshot(self.applied_index, term, &self.conf_state, encode_entries(entries)))
    }
}

impl LogStore for RocksLogStore {
    type State = RocksState;

    fn append(&mut self, entries: &[Entry]) -> Result<(), LogStoreError> {
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index <= self.truncated_index {
            return Err(LogStoreError::OverwritesCompacted {
                first: first.index,
                truncated: self.truncated_index,
            });
        }
        if first.index > self.last_index + 1 {
            return Err(LogStoreError::Gap { first: first.index, last: self.last_index });
        }
        let cf = self.state.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        let new_last = first.index + entries.len() as u64 - 1;
        if new_last < self.last_index {
            // A shorter conflicting suffix: drop what the old log held beyond it.
            batch.delete_range_cf(
                cf,
                (new_last + 1).to_be_bytes(),
                (self.last_index + 1).to_be_bytes(),
            );
        }
        for entry in entries {
            batch.put_cf(cf, entry.index.to_be_bytes(), entry.write_to_bytes()?);
        }
        self.write(batch, false)?;
        self.last_index = new_last;
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), LogStoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.state.cf(CF_META), KEY_HARD_STATE, hard_state.write_to_bytes()?);
        self.write(batch, false)?;
        self.hard_state = hard_state.clone();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogStoreError> {
        self.state.db.flush_wal(true).map_err(LogStoreError::Backend)
    }

    fn apply(
        &mut self,
        index: u64,
        writes: &WriteSet,
        conf_state: Option<&ConfState>,
    ) -> Result<(), LogStoreError> {
        if index != self.applied_index + 1 {
            return Err(LogStoreError::ApplyOutOfOrder {
                next: index,
                applied: self.applied_index,
            });
        }
        let mut batch = WriteBatch::default();
        self.put_writes(&mut batch, writes);
        let meta = self.state.cf(CF_META);
        batch.put_cf(meta, KEY_APPLIED, index.to_be_bytes());
        if let Some(conf_state) = conf_state {
            batch.put_cf(meta, KEY_CONF_STATE, conf_state.write_to_bytes()?);
        }
        let raised = (self.hard_state.commit < index)
            .then(|| HardState { commit: index, ..self.hard_state.clone() });
        if let Some(hard_state) = &raised {
            batch.put_cf(meta, KEY_HARD_STATE, hard_state.write_to_bytes()?);
        }
        self.write(batch, true)?;
        if let Some(hard_state) = raised {
            self.hard_state = hard_state;
        }
        self.applied_index = index;
        if let Some(conf_state) = conf_state {
            self.conf_state = conf_state.clone();
        }
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.applied_index
    }

    fn state(&self) -> &RocksState {
        &self.state
    }

    fn views(&self) -> Option<Arc<dyn StateViews>> {
        Some(Arc::new(RocksViews { db: Arc::downgrade(&self.state.db) }))
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), LogStoreError> {
        let metadata = snapshot.get_metadata();
        let state = decode_state(snapshot.get_data())?;
        let mut batch = WriteBatch::default();
        // Every ledger key is ASCII, so [0x00, 0xff) covers them all.
        batch.delete_range_cf(self.state.cf(CF_LEDGER), [0x00u8], [0xffu8]);
        for (key, value) in state.entries() {
            batch.put_cf(self.state.cf(CF_LEDGER), key, value);
        }
        batch.delete_range_cf(self.state.cf(CF_LOG), 0u64.to_be_bytes(), u64::MAX.to_be_bytes());
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = hard_state.commit.max(metadata.index);
        hard_state.term = hard_state.term.max(metadata.term);
        let meta = self.state.cf(CF_META);
        let mut truncated = metadata.index.to_be_bytes().to_vec();
        truncated.extend_from_slice(&metadata.term.to_be_bytes());
        batch.put_cf(meta, KEY_TRUNCATED, truncated);
        batch.put_cf(meta, KEY_APPLIED, metadata.index.to_be_bytes());
        batch.put_cf(meta, KEY_CONF_STATE, metadata.get_conf_state().write_to_bytes()?);
        batch.put_cf(meta, KEY_HARD_STATE, hard_state.write_to_bytes()?);
        batch.put_cf(meta, KEY_INITIALIZED, [1u8]);
        self.write(batch, true)?;
        self.hard_state = hard_state;
        self.conf_state = metadata.get_conf_state().clone();
        self.truncated_index = metadata.index;
        self.truncated_term = metadata.term;
        self.last_index = metadata.index;
        self.applied_index = metadata.index;
        Ok(())
    }

    fn compact(&mut self, index: u64) -> Result<(), LogStoreError> {
        if index > self.applied_index {
            return Err(LogStoreError::CompactBeyondApplied { index, applied: self.applied_index });
        }
        if index <= self.truncated_index {
            return Ok(());
        }
        let term = raft::Storage::term(self, index).map_err(LogStoreError::Log)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.state.cf(CF_LOG),
            (self.truncated_index + 1).to_be_bytes(),
            (index + 1).to_be_bytes(),
        );
        let mut truncated = index.to_be_bytes().to_vec();
        truncated.extend_from_slice(&term.to_be_bytes());
        batch.put_cf(self.state.cf(CF_META), KEY_TRUNCATED, truncated);
        self.write(batch, true)?;
        self.truncated_index = index;
        self.truncated_term = term;
        Ok(())
    }
}
