//! The storage boundary of the state machine.
//!
//! The ledger reads its state through [`StateStore`] and never writes to it: applying a block
//! returns a [`WriteSet`] that the caller persists atomically (the node puts it in the same
//! RocksDB `WriteBatch` as the Raft applied index, so the state and the index can never disagree
//! after a crash). [`MemStore`] is the in-memory twin for tests and offline re-verification.
//!
//! Keys are ASCII prefixes followed by ids (ids never contain `/`, see `machine::check_id`):
//!
//! | prefix | value | hashed into the state hash |
//! |---|---|---|
//! | `party/{id}` | `Party` | yes |
//! | `credit/{obligor}` | `ObligorCredit` (all its lines) | yes |
//! | `exposure/{obligor}/{currency}` | `Exposure` | yes |
//! | `po/{id}` | `PurchaseOrder` | yes |
//! | `ship/{id}` | `Shipment` | yes |
//! | `inv/{id}` | `Invoice` | yes |
//! | `tok/{id}` | `ReceivableToken` | yes |
//! | `holder/{party}/{token}` | empty (index of live and settled tokens by holder) | yes |
//! | `obligor/{party}/{token}` | empty (index of live and settled tokens by obligor) | yes |
//! | `offer/{id}` | `Offer` | yes |
//! | `fin/{offer_id}` | `Financing` | yes |
//! | `grant/{owner}/{grantee}/{scope}` | `AccessGrant` | yes |
//! | `doc/{hex}` | id of the record that used the document hash | yes |
//! | `tx/{hex}` | `TxLocation` (replay protection and lookup) | yes |
//! | `block/{height, 8 bytes big-endian}` | `Block` | no: blocks carry the state hash |
//! | `meta/tip` | `ChainTip` | no: it carries the state hash |
//! | `idx/reject/{height, 8 bytes BE}{index, 4 bytes BE}` | `RejectedTx` (the supervision log) | no: derived from the blocks |

use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// A failure of the underlying storage. Never a domain outcome: the node treats it as fatal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O error, corruption reported by the engine). The engine's own
    /// error is the source; it is shared (`Arc`) so that the error stays `Clone`, and this crate
    /// names no engine.
    #[error("storage backend failed: {source}")]
    Backend {
        /// The engine's error.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A stored record did not decode: the state on disk is not what this code wrote.
    #[error("stored record at key {key:?} is corrupt: {detail}")]
    Corrupt {
        /// The key, lossily printed.
        key: String,
        /// The decode error.
        detail: String,
    },
}

/// Backend failures carry no identity of their own, so two are equal when they say the same
/// (as they were when the variant held only the message); `Corrupt` compares field by field.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Backend { source: a }, Self::Backend { source: b }) => {
                a.to_string() == b.to_string()
            }
            (Self::Corrupt { key: a, detail: c }, Self::Corrupt { key: b, detail: d }) => {
                a == b && c == d
            }
            (Self::Backend { .. } | Self::Corrupt { .. }, _) => false,
        }
    }
}

impl Eq for StoreError {}

/// The visitor of [`StateStore::scan_prefix`]: called with each key and value, it returns
/// `ControlFlow::Break` to stop the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// Read access to the committed ledger state. Implementations must return prefix scans in
/// ascending byte order of the keys, so that every query answers the same on every replica (the
/// state machine itself only uses `get`).
pub trait StateStore {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Calls `visit` with every key starting with `prefix`, in ascending order, until it returns
    /// `ControlFlow::Break`.
    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError>;
}

/// The changes one block makes, in key order: `Some` puts, `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    /// Key to new value, or `None` for a deletion.
    pub changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteSet {
    /// Records a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.changes.insert(key, Some(value));
    }

    /// Records a deletion.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.changes.insert(key, None);
    }

    /// Folds `later` over this set: later changes win.
    pub fn extend(&mut self, later: WriteSet) {
        self.changes.extend(later.changes);
    }

    /// SHA-256 over the changes to hashed keys (see the module table), in key order, each as
    /// `len(key) u32 BE, key, 0 | 1, [len(value) u32 BE, value]`.
    pub fn state_digest(&self) -> crate::crypto::Hash32 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (key, value) in &self.changes {
            if !is_hashed_key(key) {
                continue;
            }
            hasher.update(u32::try_from(key.len()).expect("keys are short").to_be_bytes());
            hasher.update(key);
            match value {
                None => hasher.update([0u8]),
                Some(value) => {
                    hasher.update([1u8]);
                    hasher.update(
                        u32::try_from(value.len())
                            .expect("records are far below 4 GiB")
                            .to_be_bytes(),
                    );
                    hasher.update(value);
                }
            }
        }
        hasher.finalize().into()
    }
}

/// Whether a key is part of the hashed state (everything but blocks, the chain tip and the
/// indexes derived from blocks).
pub fn is_hashed_key(key: &[u8]) -> bool {
    !(key.starts_with(keys::BLOCK_PREFIX)
        || key.starts_with(keys::META_PREFIX)
        || key.starts_with(keys::INDEX_PREFIX))
}

/// Whether a key holds a record of the domain: the hashed state without the replay-protection
/// entries (`tx/`). What a rejected transaction must leave unchanged (tests and fuzzing).
pub fn is_domain_key(key: &[u8]) -> bool {
    is_hashed_key(key) && !key.starts_with(keys::TX_PREFIX)
}

/// An in-memory [`StateStore`] for tests, tools and offline re-verification; not for a node.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a write set, as the node would in one atomic batch.
    pub fn commit(&mut self, writes: &WriteSet) {
        for (key, value) in &writes.changes {
            match value {
                Some(value) => {
                    self.entries.insert(key.clone(), value.clone());
                }
                None => {
                    self.entries.remove(key);
                }
            }
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry in key order (for tests that compare two stores).
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.entries
    }

    /// Sets a raw value as it is: for copying a state (a replica's own, to replay a snapshot
    /// from it), and for tests that corrupt state on purpose.
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, value);
    }
}

impl StateStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StoreError> {
        for (key, value) in self.entries.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Key construction; the one place that knows the layout in the module table.
pub mod keys {
    /// Prefix of blocks.
    pub const BLOCK_PREFIX: &[u8] = b"block/";
    /// Prefix of chain metadata.
    pub const META_PREFIX: &[u8] = b"meta/";
    /// The chain tip.
    pub const TIP: &[u8] = b"meta/tip";
    /// Prefix of indexes derived from the blocks (not hashed: the blocks are).
    pub const INDEX_PREFIX: &[u8] = b"idx/";
    /// Prefix of the log of rejected transactions, in chain order.
    pub const REJECTION_PREFIX: &[u8] = b"idx/reject/";

    /// `idx/reject/{height BE}{index BE}`: sorts in chain order.
    pub fn rejection(height: u64, index: u32) -> Vec<u8> {
        let mut key = REJECTION_PREFIX.to_vec();
        key.extend_from_slice(&height.to_be_bytes());
        key.extend_from_slice(&index.to_be_bytes());
        key
    }

    fn join(parts: &[&[u8]]) -> Vec<u8> {
        let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(b'/');
            }
            key.extend_from_slice(part);
        }
        key
    }

    /// The key parts joined, then a trailing `/`: every key below them.
    fn join_prefix(parts: &[&[u8]]) -> Vec<u8> {
        let mut key = join(parts);
        key.push(b'/');
        key
    }

    /// `party/{id}`.
    pub fn party(id: &str) -> Vec<u8> {
        join(&[b"party", id.as_bytes()])
    }
    /// `credit/{obligor}`.
    pub fn credit(obligor: &str) -> Vec<u8> {
        join(&[b"credit", obligor.as_bytes()])
    }
    /// `exposure/{obligor}/{currency}`.
    pub fn exposure(obligor: &str, currency: &str) -> Vec<u8> {
        join(&[b"exposure", obligor.as_bytes(), currency.as_bytes()])
    }
    /// `exposure/{obligor}/`: every currency of one obligor.
    pub fn exposure_prefix(obligor: &str) -> Vec<u8> {
        join_prefix(&[b"exposure", obligor.as_bytes()])
    }
    /// `po/{id}`.
    pub fn purchase_order(id: &str) -> Vec<u8> {
        join(&[b"po", id.as_bytes()])
    }
    /// `ship/{id}`.
    pub fn shipment(id: &str) -> Vec<u8> {
        join(&[b"ship", id.as_bytes()])
    }
    /// `inv/{id}`.
    pub fn invoice(id: &str) -> Vec<u8> {
        join(&[b"inv", id.as_bytes()])
    }
    /// `tok/{id}`.
    pub fn token(id: &str) -> Vec<u8> {
        join(&[b"tok", id.as_bytes()])
    }
    /// `tok/`: every token.
    pub const TOKEN_PREFIX: &[u8] = b"tok/";
    /// `inv/`: every invoice.
    pub const INVOICE_PREFIX: &[u8] = b"inv/";
    /// `credit/`: every obligor's credit lines.
    pub const CREDIT_PREFIX: &[u8] = b"credit/";
    /// `exposure/`: every obligor's unsettled totals.
    pub const EXPOSURE_PREFIX: &[u8] = b"exposure/";
    /// `ship/`: every shipment.
    pub const SHIPMENT_PREFIX: &[u8] = b"ship/";
    /// `holder/{party}/{token}`.
    pub fn holder_index(party: &str, token: &str) -> Vec<u8> {
        join(&[b"holder", party.as_bytes(), token.as_bytes()])
    }
    /// `holder/{party}/`.
    pub fn holder_prefix(party: &str) -> Vec<u8> {
        join_prefix(&[b"holder", party.as_bytes()])
    }
    /// `obligor/{party}/{token}`.
    pub fn obligor_index(party: &str, token: &str) -> Vec<u8> {
        join(&[b"obligor", party.as_bytes(), token.as_bytes()])
    }
    /// `obligor/{party}/`.
    pub fn obligor_prefix(party: &str) -> Vec<u8> {
        join_prefix(&[b"obligor", party.as_bytes()])
    }
    /// `offer/{id}`.
    pub fn offer(id: &str) -> Vec<u8> {
        join(&[b"offer", id.as_bytes()])
    }
    /// `fin/{offer_id}`.
    pub fn financing(offer_id: &str) -> Vec<u8> {
        join(&[b"fin", offer_id.as_bytes()])
    }
    /// `fin/`: every financing.
    pub const FINANCING_PREFIX: &[u8] = b"fin/";
    /// `grant/{owner}/{grantee}/{scope}`.
    pub fn grant(owner: &str, grantee: &str, scope: i32) -> Vec<u8> {
        join(&[b"grant", owner.as_bytes(), grantee.as_bytes(), scope.to_string().as_bytes()])
    }
    /// `grant/{owner}/`.
    pub fn grant_prefix(owner: &str) -> Vec<u8> {
        join_prefix(&[b"grant", owner.as_bytes()])
    }
    /// `doc/{hex}`.
    pub fn document(hash: &[u8]) -> Vec<u8> {
        join(&[b"doc", hex::encode(hash).as_bytes()])
    }
    /// `tx/`: every replay-protection entry.
    pub const TX_PREFIX: &[u8] = b"tx/";
    /// `tx/{hex}`.
    pub fn transaction(hash: &[u8]) -> Vec<u8> {
        join(&[b"tx", hex::encode(hash).as_bytes()])
    }
    /// `block/{height BE}`.
    pub fn block(height: u64) -> Vec<u8> {
        let mut key = BLOCK_PREFIX.to_vec();
        key.extend_from_slice(&height.to_be_bytes());
        key
    }
}
