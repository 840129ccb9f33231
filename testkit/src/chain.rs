//! A ledger chain driven by hand over the pure state machine, for the ledger's tests and its
//! fuzzers: a fixed genesis, the cast, deterministic keys, a logical clock, and the helpers that
//! re-seal tampered blocks.
//!
//! [`Chain`] is the ledger, its store and every block applied; [`Driver`] is a scripted client of
//! one: it signs for the parties with keys derived from their ids, keeps a logical clock, records
//! every batch it applied (so a test can re-apply or tamper with them), and asserts outcomes:
//! [`Driver::rejects`] checks the domain's promise that a rejected transaction changes nothing
//! but the chain's own records (the block, the tip and the transaction's replay-protection
//! entry).
//!
//! Nothing here reads the wall clock or draws random numbers, so every test and every fuzz input
//! that uses it reproduces byte for byte.

use std::collections::BTreeMap;

use ledger::chain::{header_hash, merkle_root, results_hash, tx_leaves};
use ledger::client::{self, Identity};
use ledger::crypto::{self, Hash32, SigningKey};
use ledger::pb::{Block, ReceivableToken, Role, SignedTx, TxResult, tx_body::Command};
use ledger::{AppliedBlock, Genesis, Ledger, MemStore, query};

/// 2023-11-14T22:13:20Z: an arbitrary fixed start, so no test reads the wall clock.
pub const T0_MS: u64 = 1_700_000_000_000;
/// One day of ledger time.
pub const DAY_MS: u64 = 86_400_000;
/// One minute of ledger time: how long a driven transaction is valid.
pub const MINUTE_MS: u64 = 60_000;
/// How far ahead of ledger time `valid_until_ms` may be (the domain contract's one hour).
pub const HOUR_MS: u64 = 3_600_000;
/// The registrar's party id.
pub const REGISTRAR: &str = "registrar";

/// The fixed cast: three enterprises (core enterprise `core` buys from `sup1`, who buys from
/// `sup2`), two banks, a carrier, a regulator.
pub const CAST: [(&str, Role); 7] = [
    ("core", Role::Enterprise),
    ("sup1", Role::Enterprise),
    ("sup2", Role::Enterprise),
    ("bank1", Role::Bank),
    ("bank2", Role::Bank),
    ("carrier", Role::Logistics),
    ("reg", Role::Regulator),
];

/// The genesis of a test chain `chain_id` at [`T0_MS`]: the registrar's key is derived from its
/// id.
pub fn genesis(chain_id: &str) -> Genesis {
    Genesis {
        chain_id: chain_id.into(),
        registrar_public_key: SigningKey::from_seed(REGISTRAR).public_key(),
        time_ms: T0_MS,
    }
}

/// The command that registers party `id` with `role` and `public_key`, named `{id} Ltd`.
pub fn register(id: &str, role: Role, public_key: &[u8]) -> Command {
    client::register_party(id, &format!("{id} Ltd"), role, public_key)
}

/// The registration of a new enterprise `p-{i}` named `Party`, with a key derived from `label`
/// and `i`: a command that is always valid once, with a distinct hash for every `i`, which is
/// what load and replication tests need of their transactions.
pub fn party_registration(label: &str, i: u64) -> Command {
    let key = SigningKey::from_seed(&format!("{label}/party/{i}"));
    client::register_party(
        &format!("p-{i}"),
        "Party",
        Role::Enterprise,
        &key.public_key().to_bytes(),
    )
}

/// A document hash that differs per label.
pub fn doc(label: &str) -> [u8; 32] {
    crypto::sha256(label.as_bytes())
}

/// The state without the chain's own records: blocks, the tip, replay-protection entries and the
/// indexes derived from blocks.
pub fn domain_state(store: &MemStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store
        .entries()
        .iter()
        .filter(|(key, _)| ledger::store::is_domain_key(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A ledger, its store and every block applied so far.
#[derive(Debug)]
pub struct Chain {
    /// The rules.
    pub ledger: Ledger,
    /// The committed state.
    pub store: MemStore,
    /// Every block, in height order.
    pub blocks: Vec<Block>,
    /// The hash of every block, in height order.
    pub hashes: Vec<Hash32>,
}

impl Chain {
    /// A chain at height 0.
    pub fn new(genesis: Genesis) -> Self {
        let ledger = Ledger::new(genesis);
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        Self { ledger, store, blocks: Vec::new(), hashes: Vec::new() }
    }

    /// Applies `txs` as the next block with the proposed time, commits it and returns it.
    pub fn apply(&mut self, proposed_time_ms: u64, txs: Vec<SignedTx>) -> AppliedBlock {
        let applied = self
            .ledger
            .apply_block(&self.store, proposed_time_ms, txs)
            .expect("a memory store never fails and blocks stay small");
        self.store.commit(&applied.writes);
        self.blocks.push(applied.block.clone());
        self.hashes.push(applied.hash);
        applied
    }
}

/// A scripted client of a [`Chain`]: signs for the parties with deterministic keys, keeps a
/// logical clock and records every batch it applied.
#[derive(Debug)]
pub struct Driver {
    /// The chain driven.
    pub chain: Chain,
    /// Ledger time proposed for the next block.
    pub now_ms: u64,
    /// Current signing identity of every party.
    pub identities: BTreeMap<String, Identity>,
    /// Every batch applied, with its proposed time.
    pub batches: Vec<(u64, Vec<SignedTx>)>,
    /// The last nonce signed: every transaction gets a fresh one.
    nonce: u64,
}

impl Driver {
    /// A chain `chain_id` with only the registrar.
    pub fn new(chain_id: &str) -> Self {
        let mut identities = BTreeMap::new();
        identities.insert(
            REGISTRAR.to_owned(),
            Identity::new(chain_id, REGISTRAR, SigningKey::from_seed(REGISTRAR)),
        );
        Self {
            chain: Chain::new(genesis(chain_id)),
            now_ms: T0_MS,
            identities,
            batches: Vec::new(),
            nonce: 0,
        }
    }

    /// A chain `chain_id` with the whole [`CAST`] registered in its first block.
    pub fn with_cast(chain_id: &str) -> Self {
        let mut driver = Self::new(chain_id);
        let txs = driver.cast_registrations();
        let results = driver.block(txs);
        assert!(results.iter().all(|r| r.applied), "the cast registers");
        driver
    }

    /// The registrar's registrations of the whole [`CAST`], not yet applied, each party with a
    /// key derived from its id; from now on the driver signs for them.
    pub fn cast_registrations(&mut self) -> Vec<SignedTx> {
        let mut txs = Vec::new();
        for (id, role) in CAST {
            let key = SigningKey::from_seed(id);
            txs.push(self.tx(REGISTRAR, register(id, role, &key.public_key().to_bytes())));
            let identity = Identity::new(self.chain_id(), id, key);
            self.identities.insert(id.to_owned(), identity);
        }
        txs
    }

    /// The chain's id.
    pub fn chain_id(&self) -> &str {
        &self.chain.ledger.genesis().chain_id
    }

    /// The chain's genesis.
    pub fn genesis(&self) -> Genesis {
        self.chain.ledger.genesis().clone()
    }

    /// Registers `id` with `role` and a key derived from its id, in a block of its own, and
    /// asserts it applied.
    pub fn register(&mut self, id: &str, role: Role) {
        let key = SigningKey::from_seed(id);
        self.ok(REGISTRAR, register(id, role, &key.public_key().to_bytes()));
        let identity = Identity::new(self.chain_id(), id, key);
        self.identities.insert(id.into(), identity);
    }

    /// A transaction signed by `signer`'s current key, valid for one minute, with a fresh nonce.
    pub fn tx(&mut self, signer: &str, command: Command) -> SignedTx {
        let key = self.identity(signer).key.clone();
        self.tx_with_key(signer, &key, command)
    }

    /// A transaction that claims `signer` but is signed with `key`.
    pub fn tx_with_key(&mut self, signer: &str, key: &SigningKey, command: Command) -> SignedTx {
        self.nonce += 1;
        Identity::new(self.chain_id(), signer, key.clone()).sign(
            self.now_ms + MINUTE_MS,
            self.nonce,
            command,
        )
    }

    /// The current identity of `id`.
    pub fn identity(&self, id: &str) -> &Identity {
        self.identities.get(id).unwrap_or_else(|| panic!("no identity {id}"))
    }

    /// Applies `txs` as one block at the current time and records the batch.
    pub fn block(&mut self, txs: Vec<SignedTx>) -> Vec<TxResult> {
        self.batches.push((self.now_ms, txs.clone()));
        self.chain.apply(self.now_ms, txs).block.results
    }

    /// Applies one transaction as a block and returns its result.
    pub fn run(&mut self, signer: &str, command: Command) -> TxResult {
        let tx = self.tx(signer, command);
        self.block(vec![tx]).remove(0)
    }

    /// Applies one transaction and asserts it was applied; returns the result.
    pub fn ok(&mut self, signer: &str, command: Command) -> TxResult {
        let result = self.run(signer, command);
        assert!(
            result.applied,
            "expected applied, got {}: {}",
            result.reject_code, result.reject_message
        );
        result
    }

    /// Applies one transaction and asserts it was rejected with `code` and changed no state.
    pub fn rejects(&mut self, signer: &str, command: Command, code: &str) -> TxResult {
        let tx = self.tx(signer, command);
        self.rejects_tx(tx, code)
    }

    /// Applies `tx` and asserts it was rejected with `code` and changed no state.
    pub fn rejects_tx(&mut self, tx: SignedTx, code: &str) -> TxResult {
        let before = self.domain_state();
        let result = self.block(vec![tx]).remove(0);
        assert!(!result.applied, "expected rejection {code}, but it was applied");
        assert_eq!(result.reject_code, code, "message: {}", result.reject_message);
        assert!(result.created_ids.is_empty());
        assert_eq!(before, self.domain_state(), "a rejected transaction changed the state");
        result
    }

    /// The chain's state without its own records (see [`domain_state`]).
    pub fn domain_state(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        domain_state(&self.chain.store)
    }

    /// Moves the logical clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// The current height.
    pub fn height(&self) -> u64 {
        self.chain.blocks.len() as u64
    }

    /// The token `id`, which must exist.
    pub fn token(&self, id: &str) -> ReceivableToken {
        query::token(&self.chain.store, id)
            .expect("a memory store never fails")
            .unwrap_or_else(|| panic!("no token {id}"))
    }
}

/// Recomputes the Merkle root, the results hash and the transaction count of `blocks[from..]`,
/// and re-links each to the previous block's hash: what a forger who rewrites history has to do
/// so that only checks that need a key or a replay can catch the change. Does not touch
/// `TxResult::tx_hash`; a forger who changes a body must fix that separately.
pub fn reseal(genesis: &Genesis, blocks: &mut [Block], from: usize) {
    let mut prev_hash = if from == 0 { genesis.hash() } else { block_hash(&blocks[from - 1]) };
    for block in &mut blocks[from..] {
        let leaves = tx_leaves(&block.txs);
        let header = block.header.as_mut().expect("test blocks have headers");
        header.tx_root = merkle_root(&leaves).to_vec();
        header.results_hash = results_hash(&block.results).to_vec();
        header.tx_count = u32::try_from(block.txs.len()).expect("small blocks");
        header.prev_hash = prev_hash.to_vec();
        prev_hash = block_hash(block);
    }
}

/// The hash of a block's header.
pub fn block_hash(block: &Block) -> Hash32 {
    header_hash(block.header.as_ref().expect("test blocks have headers"))
        .expect("test headers have 32-byte hash fields")
}
