//! A test harness over the pure state machine: a `MemStore`, a logical clock, and the identities
//! of the parties, with helpers that apply single transactions as blocks and check outcomes.
//!
//! `rejects` asserts the domain's promise that a rejected transaction changes nothing: the state
//! after the block equals the state before it, except for the chain's own records (the block, the
//! tip and the transaction's replay-protection entry).

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;

use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::{Block, Role, SignedTx, TxResult, tx_body::Command};
use ledger::{Genesis, Ledger, MemStore, query};

pub const CHAIN_ID: &str = "scf-test";
/// 2023-11-14T22:13:20Z: an arbitrary fixed start, so tests never read the wall clock.
pub const T0_MS: u64 = 1_700_000_000_000;
pub const DAY_MS: u64 = 86_400_000;

pub struct Harness {
    pub ledger: Ledger,
    pub store: MemStore,
    pub now_ms: u64,
    pub identities: BTreeMap<String, Identity>,
    pub blocks: Vec<Block>,
    nonce: u64,
}

impl Harness {
    pub fn new() -> Self {
        let registrar = SigningKey::from_seed("registrar");
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            registrar_public_key: registrar.public_key(),
            time_ms: T0_MS,
        };
        let ledger = Ledger::new(genesis);
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let mut identities = BTreeMap::new();
        identities.insert("registrar".into(), Identity::new(CHAIN_ID, "registrar", registrar));
        Self { ledger, store, now_ms: T0_MS, identities, blocks: Vec::new(), nonce: 0 }
    }

    pub fn genesis(&self) -> Genesis {
        self.ledger.genesis().clone()
    }

    pub fn identity(&self, id: &str) -> &Identity {
        self.identities.get(id).unwrap_or_else(|| panic!("no identity {id}"))
    }

    /// Registers `id` with `role` and a key derived from its id.
    pub fn register(&mut self, id: &str, role: Role) {
        let key = SigningKey::from_seed(id);
        let command =
            client::register_party(id, &format!("{id} Ltd"), role, &key.public_key().to_bytes());
        self.ok("registrar", command);
        self.identities.insert(id.into(), Identity::new(CHAIN_ID, id, key));
    }

    /// A transaction signed by `signer`, valid for one minute, with a fresh nonce.
    pub fn tx(&mut self, signer: &str, command: Command) -> SignedTx {
        self.nonce += 1;
        let valid_until = self.now_ms + 60_000;
        self.identity(signer).sign(valid_until, self.nonce, command)
    }

    /// Applies `txs` as one block at the current time.
    pub fn apply(&mut self, txs: Vec<SignedTx>) -> Vec<TxResult> {
        let applied = self
            .ledger
            .apply_block(&self.store, self.now_ms, txs)
            .expect("memory store never fails");
        self.store.commit(&applied.writes);
        self.blocks.push(applied.block.clone());
        applied.block.results
    }

    pub fn run(&mut self, signer: &str, command: Command) -> TxResult {
        let tx = self.tx(signer, command);
        self.apply(vec![tx]).remove(0)
    }

    /// Applies and asserts the transaction was applied; returns the result.
    pub fn ok(&mut self, signer: &str, command: Command) -> TxResult {
        let result = self.run(signer, command);
        assert!(
            result.applied,
            "expected applied, got {}: {}",
            result.reject_code, result.reject_message
        );
        result
    }

    /// Applies and asserts the transaction was rejected with `code` and changed no state.
    pub fn rejects(&mut self, signer: &str, command: Command, code: &str) -> TxResult {
        let tx = self.tx(signer, command);
        self.rejects_tx(tx, code)
    }

    pub fn rejects_tx(&mut self, tx: SignedTx, code: &str) -> TxResult {
        let before = self.domain_state();
        let result = self.apply(vec![tx]).remove(0);
        assert!(!result.applied, "expected rejection {code}, but it was applied");
        assert_eq!(result.reject_code, code, "message: {}", result.reject_message);
        assert!(result.created_ids.is_empty());
        assert_eq!(before, self.domain_state(), "a rejected transaction changed the state");
        result
    }

    /// The state without the chain's own records (blocks, tip, replay entries, the indexes
    /// derived from blocks).
    pub fn domain_state(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.store
            .entries()
            .iter()
            .filter(|(k, _)| ledger::store::is_domain_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    pub fn token(&self, id: &str) -> ledger::pb::ReceivableToken {
        query::token(&self.store, id).unwrap().unwrap_or_else(|| panic!("no token {id}"))
    }
}

/// A document hash that differs per label.
pub fn doc(label: &str) -> [u8; 32] {
    ledger::crypto::sha256(label.as_bytes())
}

/// The standard cast: core enterprise `core` buys from `sup1`, who buys from `sup2`; banks
/// `bank1` and `bank2`; carrier `carrier`; regulator `reg`. `bank1` grants `core` 1,000,000 EUR.
pub fn cast() -> Harness {
    let mut h = Harness::new();
    for (id, role) in [
        ("core", Role::Enterprise),
        ("sup1", Role::Enterprise),
        ("sup2", Role::Enterprise),
        ("bank1", Role::Bank),
        ("bank2", Role::Bank),
        ("carrier", Role::Logistics),
        ("reg", Role::Regulator),
    ] {
        h.register(id, role);
    }
    let expires = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L1", "core", "1000000.00", "EUR", expires));
    h
}

/// Order, ship, deliver and invoice `amount` EUR of goods from `sup1` to `core`; returns the
/// invoice id. Ids are derived from `label`.
pub fn delivered_invoice(h: &mut Harness, label: &str, amount: &str) -> String {
    let po = format!("PO-{label}");
    let ship = format!("SH-{label}");
    let inv = format!("INV-{label}");
    h.ok("core", client::create_purchase_order(&po, "sup1", &[("WIDGET", 100, "1000.00")], "EUR"));
    h.ok(
        "sup1",
        client::record_shipment(
            &ship,
            &po,
            &[("WIDGET", 100)],
            "carrier",
            doc(&format!("bol-{label}")),
        ),
    );
    h.ok("core", client::confirm_delivery(&ship));
    let due = h.now_ms + 90 * DAY_MS;
    h.ok(
        "sup1",
        client::issue_invoice(&inv, &po, &[&ship], amount, due, doc(&format!("inv-{label}"))),
    );
    inv
}

/// A delivered invoice accepted with maturity in 90 days; returns the token id.
pub fn accepted_token(h: &mut Harness, label: &str, amount: &str) -> String {
    let inv = delivered_invoice(h, label, amount);
    let maturity = h.now_ms + 90 * DAY_MS;
    let result = h.ok("core", client::accept_invoice(&inv, maturity));
    result.created_ids[0].clone()
}
