//! Support shared by the model-based tests (`model.rs`) and the chain tests (`chain.rs`): a chain
//! driven by hand over the pure state machine, deterministic keys, a logical clock, and helpers
//! that re-seal tampered blocks.
//!
//! This is deliberately separate from `tests/common`: those helpers assert on every step, while
//! these tests need to send transactions that fail, in batches, and inspect the raw blocks.
//! Nothing here reads the wall clock or draws random numbers.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::collections::BTreeMap;

use ledger::chain::{header_hash, merkle_root, results_hash, tx_leaves};
use ledger::client::{self, Identity};
use ledger::crypto::{self, Hash32, SigningKey};
use ledger::pb::{Block, Role, SignedTx, TxResult, tx_body::Command};
use ledger::{AppliedBlock, Genesis, Ledger, MemStore};

/// The chain id every test transaction carries.
pub const CHAIN_ID: &str = "scf-model";
/// 2023-11-14T22:13:20Z: an arbitrary fixed start, so no test reads the wall clock.
pub const T0_MS: u64 = 1_700_000_000_000;
/// One day of ledger time.
pub const DAY_MS: u64 = 86_400_000;
/// One minute of ledger time.
pub const MINUTE_MS: u64 = 60_000;
/// How far ahead of ledger time `valid_until_ms` may be (the domain contract's one hour).
pub const HOUR_MS: u64 = 3_600_000;
/// The registrar's party id.
pub const REGISTRAR: &str = "registrar";

/// The fixed cast: three enterprises, two banks, a carrier, a regulator.
pub const CAST: [(&str, Role); 7] = [
    ("core", Role::Enterprise),
    ("sup1", Role::Enterprise),
    ("sup2", Role::Enterprise),
    ("bank1", Role::Bank),
    ("bank2", Role::Bank),
    ("carrier", Role::Logistics),
    ("reg", Role::Regulator),
];

/// The genesis of every test chain: the registrar's key is derived from its id.
pub fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.into(),
        registrar_public_key: SigningKey::from_seed(REGISTRAR).public_key(),
        time_ms: T0_MS,
    }
}

/// A document hash that differs per label.
pub fn doc(label: &str) -> [u8; 32] {
    crypto::sha256(label.as_bytes())
}

/// A ledger, its store and every block applied so far.
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

/// A scripted client of a [`Chain`]: signs for the cast with deterministic keys, keeps a logical
/// clock and records every batch it applied, so a test can re-apply or tamper with them.
pub struct Driver {
    /// The chain driven.
    pub chain: Chain,
    /// Ledger time proposed for the next block.
    pub now_ms: u64,
    /// Current signing identity of every party.
    pub identities: BTreeMap<String, Identity>,
    /// Every batch applied, with its proposed time.
    pub batches: Vec<(u64, Vec<SignedTx>)>,
    nonce: u64,
}

impl Driver {
    /// A chain with only the registrar.
    pub fn new() -> Self {
        let mut identities = BTreeMap::new();
        identities.insert(
            REGISTRAR.to_owned(),
            Identity::new(CHAIN_ID, REGISTRAR, SigningKey::from_seed(REGISTRAR)),
        );
        Self {
            chain: Chain::new(genesis()),
            now_ms: T0_MS,
            identities,
            batches: Vec::new(),
            nonce: 0,
        }
    }

    /// A chain with the whole cast registered in its first block.
    pub fn with_cast() -> Self {
        let mut driver = Self::new();
        let mut txs = Vec::new();
        for (id, role) in CAST {
            let key = SigningKey::from_seed(id);
            let command = client::register_party(
                id,
                &format!("{id} Ltd"),
                role,
                &key.public_key().to_bytes(),
            );
            txs.push(driver.tx(REGISTRAR, command));
            driver.identities.insert(id.to_owned(), Identity::new(CHAIN_ID, id, key));
        }
        let results = driver.block(txs);
        assert!(results.iter().all(|r| r.applied), "the cast registers");
        driver
    }

    /// A transaction signed by `signer`'s current key, valid for one minute, with a fresh nonce.
    pub fn tx(&mut self, signer: &str, command: Command) -> SignedTx {
        let key = self.identity(signer).key.clone();
        self.tx_with_key(signer, &key, command)
    }

    /// A transaction that claims `signer` but is signed with `key`.
    pub fn tx_with_key(&mut self, signer: &str, key: &SigningKey, command: Command) -> SignedTx {
        self.nonce += 1;
        Identity::new(CHAIN_ID, signer, key.clone()).sign(
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

    /// Applies one transaction and asserts it was applied.
    pub fn ok(&mut self, signer: &str, command: Command) -> TxResult {
        let result = self.run(signer, command);
        assert!(
            result.applied,
            "expected applied: {} {}",
            result.reject_code, result.reject_message
        );
        result
    }

    /// Moves the logical clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// The current height.
    pub fn height(&self) -> u64 {
        self.chain.blocks.len() as u64
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
