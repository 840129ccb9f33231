//! Rule-by-rule tests of the ledger state machine, written from the domain contract
//! (`shared/spec/domain.md`) rather than from the code: every rule of every command, the
//! transaction envelope, ledger time, and every rejection code in `ledger::reject::ALL_CODES`.
//!
//! Each test builds its own world with the common harness (`common::cast`: core enterprise `core`
//! buying from `sup1`, tier-2 supplier `sup2`, banks `bank1` and `bank2`, carrier `carrier`,
//! regulator `reg`, and a 1,000,000 EUR line from `bank1` to `core`). Rejections are asserted
//! through [`Recorded`], whose `rejects` is the harness's (the state must not change) plus a note
//! of the code on the current thread. The last test, `every_rejection_code_is_produced`, runs every
//! other test on its own thread and fails if a code of `ALL_CODES` was never produced, so a new
//! code without a test fails CI; it also checks that every `#[test]` of this file is in its list
//! and opens with its goal, so the list cannot silently fall behind the file.
//!
//! Nothing here sleeps or reads a clock: time is the harness's logical `now_ms`.

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use common::*;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::machine::{BANK_LINES_PER_OBLIGOR_MAX, BLOCK_TXS_MAX, LINES_MAX};
use ledger::pb::{
    self, AccessScope, InvoiceStatus, OfferStatus, Role, SignedTx, TokenStatus, TxResult,
    tx_body::Command,
};
use ledger::query::{self, TokenState};
use ledger::reject::ALL_CODES;
use ledger::{ApplyError, ChainVerifier, replay_chain, tx};
use rust_decimal::Decimal;

// ---------------------------------------------------------------------------------------------
// The recording wrapper and small helpers
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Rejection codes asserted on this thread. Thread-local because the test runner gives each
    /// test its own thread, and the coverage test runs every other test on its own.
    static PRODUCED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

fn record(code: &str) {
    PRODUCED.with(|produced| produced.borrow_mut().insert(code.to_owned()));
}

/// The harness, with every asserted rejection code recorded for the coverage test.
struct Recorded(Driver);

impl Deref for Recorded {
    type Target = Driver;
    fn deref(&self) -> &Driver {
        &self.0
    }
}

impl DerefMut for Recorded {
    fn deref_mut(&mut self) -> &mut Driver {
        &mut self.0
    }
}

impl Recorded {
    /// `Driver::rejects` (rejected with `code`, state unchanged), recorded.
    fn rejects(&mut self, signer: &str, command: Command, code: &str) -> TxResult {
        let result = self.0.rejects(signer, command, code);
        record(code);
        result
    }

    /// `Driver::rejects_tx`, recorded.
    fn rejects_tx(&mut self, tx: SignedTx, code: &str) -> TxResult {
        let result = self.0.rejects_tx(tx, code);
        record(code);
        result
    }

    // The forwarding methods below exist so that `h.ok(.., h.now_ms + ..)` borrows like it does on
    // a bare `Driver` (a two-phase borrow does not reach through `DerefMut`).

    fn ok(&mut self, signer: &str, command: Command) -> TxResult {
        self.0.ok(signer, command)
    }

    fn tx(&mut self, signer: &str, command: Command) -> SignedTx {
        self.0.tx(signer, command)
    }
}

/// Asserts that one result of a multi-transaction block is a rejection with `code`, and records
/// it. (The whole-state check of `rejects` does not apply when other transactions of the block
/// change the state.)
fn assert_rejected(result: &TxResult, code: &str) {
    assert!(!result.applied, "expected rejection {code}, but it was applied");
    assert_eq!(result.reject_code, code, "message: {}", result.reject_message);
    assert!(result.created_ids.is_empty());
    record(code);
}

fn assert_applied(result: &TxResult) {
    assert!(
        result.applied,
        "expected applied, got {}: {}",
        result.reject_code, result.reject_message
    );
}

/// The standard cast of `common::cast`, recorded.
fn world() -> Recorded {
    Recorded(cast())
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// A document hash of the wrong length (raw, since the client helper takes `[u8; 32]`).
fn shipment_with_hash(id: &str, po: &str, hash: Vec<u8>) -> Command {
    Command::RecordShipment(pb::RecordShipment {
        shipment_id: id.into(),
        po_id: po.into(),
        lines: vec![pb::ShipmentLine { sku: "WIDGET".into(), quantity: 1 }],
        carrier: String::new(),
        document_hash: hash,
    })
}

fn party(h: &Driver, id: &str) -> pb::Party {
    query::party(&h.chain.store, id).unwrap().unwrap_or_else(|| panic!("no party {id}"))
}

fn order(h: &Driver, id: &str) -> pb::PurchaseOrder {
    query::purchase_order(&h.chain.store, id).unwrap().unwrap_or_else(|| panic!("no order {id}"))
}

fn shipment(h: &Driver, id: &str) -> pb::Shipment {
    query::shipment(&h.chain.store, id).unwrap().unwrap_or_else(|| panic!("no shipment {id}"))
}

fn invoice(h: &Driver, id: &str) -> pb::Invoice {
    query::invoice(&h.chain.store, id).unwrap().unwrap_or_else(|| panic!("no invoice {id}"))
}

fn offer(h: &Driver, id: &str) -> pb::Offer {
    query::offer(&h.chain.store, id).unwrap().unwrap_or_else(|| panic!("no offer {id}"))
}

/// `(unsettled, credit limit)` of `obligor` in `currency` at the tip's ledger time.
fn exposure(h: &Driver, obligor: &str, currency: &str) -> (Decimal, Decimal) {
    query::exposure(&h.chain.store, obligor)
        .unwrap()
        .into_iter()
        .find(|e| e.currency == currency)
        .map_or((Decimal::ZERO, Decimal::ZERO), |e| (e.unsettled, e.credit_limit))
}

/// `core` orders from `sup1`: 10 WIDGET at 10.50 and 5 GADGET at 2.00, in EUR.
fn ordered(h: &mut Recorded, po: &str) {
    h.ok(
        "core",
        client::create_purchase_order(
            po,
            "sup1",
            &[("WIDGET", 10, "10.50"), ("GADGET", 5, "2.00")],
            "EUR",
        ),
    );
}

/// `sup1` ships `lines` of `po` without a carrier and `core` confirms delivery.
fn delivered(h: &mut Recorded, po: &str, id: &str, lines: &[(&str, u64)]) {
    h.ok("sup1", client::record_shipment(id, po, lines, "", doc(&format!("bol-{id}"))));
    h.ok("core", client::confirm_delivery(id));
}

/// `buyer` orders 100 WIDGET at 1,000.00 `currency` from `seller`, who ships them; the buyer
/// confirms delivery and the seller invoices `amount`. Returns the invoice id.
fn invoice_between(
    h: &mut Recorded,
    label: &str,
    buyer: &str,
    seller: &str,
    amount: &str,
    currency: &str,
) -> String {
    let (po, ship, inv) = (format!("PO-{label}"), format!("SH-{label}"), format!("INV-{label}"));
    h.ok(
        buyer,
        client::create_purchase_order(&po, seller, &[("WIDGET", 100, "1000.00")], currency),
    );
    h.ok(
        seller,
        client::record_shipment(&ship, &po, &[("WIDGET", 100)], "", doc(&format!("bol-{label}"))),
    );
    h.ok(buyer, client::confirm_delivery(&ship));
    let due = h.now_ms + 90 * DAY_MS;
    h.ok(
        seller,
        client::issue_invoice(&inv, &po, &[&ship], amount, due, doc(&format!("inv-{label}"))),
    );
    inv
}

/// The buyer accepts `inv` with `maturity_ms`; returns the minted token id.
fn accept(h: &mut Recorded, buyer: &str, inv: &str, maturity_ms: u64) -> String {
    h.ok(buyer, client::accept_invoice(inv, maturity_ms)).created_ids[0].clone()
}

/// `sup1` offers `token` to `bank` (max rate 10%, open for `open_ms`); returns the offer id.
fn offered(h: &mut Recorded, holder: &str, token: &str, bank: &str, open_ms: u64) -> String {
    let expires = h.now_ms + open_ms;
    h.ok(holder, client::offer_token(token, bank, "0.10", expires)).created_ids[0].clone()
}

/// Re-verifies every block (signatures included) and replays the chain from genesis to the same
/// state: rejected transactions are recorded, deterministically, in their blocks.
fn audit(h: &Driver) {
    let mut verifier = ChainVerifier::new(&h.genesis(), true);
    for block in &h.chain.blocks {
        verifier.verify_block(block).unwrap();
    }
    let replayed = replay_chain(&h.genesis(), &h.chain.blocks).unwrap();
    assert_eq!(replayed.entries(), h.chain.store.entries());
}

fn last_block_time_ms(h: &Driver) -> u64 {
    h.chain.blocks.last().unwrap().header.as_ref().unwrap().time_ms
}

// ---------------------------------------------------------------------------------------------
// Parties: registration and keys
// ---------------------------------------------------------------------------------------------

// Goal: only the registrar registers parties; a registered party has the role and key it was
// given, is not frozen, and can sign at once.
#[test]
fn register_party_only_by_registrar() {
    let mut h = world();
    let key = SigningKey::from_seed("newco");
    let public_key = key.public_key().to_bytes();
    let command = || client::register_party("newco", "NewCo", Role::Enterprise, &public_key);
    for signer in ["core", "bank1", "carrier", "reg"] {
        h.rejects(signer, command(), "wrong_role");
    }
    h.ok("registrar", command());
    let newco = party(&h, "newco");
    assert_eq!(newco.role, Role::Enterprise as i32);
    assert_eq!(newco.public_key, public_key.to_vec());
    assert!(!newco.frozen);
    h.identities.insert("newco".into(), Identity::new(CHAIN_ID, "newco", key));
    h.ok("newco", client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS));
}

// Goal: party ids are unique: an id cannot be registered again, whatever role or key the second
// registration carries, and the registrar's own id is taken at genesis.
#[test]
fn register_party_ids_are_unique() {
    let mut h = world();
    let other = SigningKey::from_seed("other").public_key().to_bytes();
    h.rejects(
        "registrar",
        client::register_party("sup1", "Impostor", Role::Bank, &other),
        "already_exists",
    );
    h.rejects(
        "registrar",
        client::register_party("registrar", "Impostor", Role::Enterprise, &other),
        "already_exists",
    );
    assert_eq!(party(&h, "sup1").role, Role::Enterprise as i32);
    assert_eq!(party(&h, "sup1").public_key, h.identity("sup1").public_key());
}

// Goal: party ids are 1 to 64 characters of [A-Za-z0-9._:-], and names are 1 to 256 bytes of
// printable text.
#[test]
fn register_party_refuses_bad_ids_and_names() {
    let mut h = world();
    let key = SigningKey::from_seed("x").public_key().to_bytes();
    let long_id = "x".repeat(65);
    for id in ["", "a/b", "has space", "caf\u{e9}", long_id.as_str()] {
        h.rejects(
            "registrar",
            client::register_party(id, "Name", Role::Enterprise, &key),
            "invalid_id",
        );
    }
    let long_name = "n".repeat(257);
    for name in ["", "   ", "line\nbreak", long_name.as_str()] {
        h.rejects(
            "registrar",
            client::register_party("okid", name, Role::Enterprise, &key),
            "invalid_argument",
        );
    }
    let max_id = "A.b_c:d-9".repeat(7) + "x";
    assert_eq!(max_id.len(), 64);
    h.ok("registrar", client::register_party(&max_id, "Name", Role::Enterprise, &key));
}

// Goal: the role is one of enterprise, bank, logistics or regulator: the unspecified value, a
// second registrar and values outside the enum are refused.
#[test]
fn register_party_refuses_unknown_or_reserved_roles() {
    let mut h = world();
    let key = SigningKey::from_seed("x").public_key().to_bytes().to_vec();
    let with_role = |role: i32| {
        Command::RegisterParty(pb::RegisterParty {
            party_id: "newco".into(),
            name: "NewCo".into(),
            role,
            public_key: key.clone(),
        })
    };
    for role in [Role::Unspecified as i32, Role::Registrar as i32, 6, 99, -1] {
        h.rejects("registrar", with_role(role), "invalid_argument");
    }
    for (id, role) in [("e", Role::Enterprise), ("b", Role::Bank), ("l", Role::Logistics)] {
        h.ok("registrar", client::register_party(id, "Co", role, &key));
    }
    h.ok("registrar", client::register_party("r", "Co", Role::Regulator, &key));
}

// Goal: a public key is a 33-byte compressed secp256k1 point; wrong lengths, the uncompressed
// form, a bad prefix and an x off the field are refused.
#[test]
fn register_party_refuses_invalid_public_keys() {
    let mut h = world();
    let good = SigningKey::from_seed("newco").public_key().to_bytes();
    let mut bad_prefix = good;
    bad_prefix[0] = 0x05;
    let mut uncompressed = vec![0x04];
    uncompressed.extend_from_slice(&[0x11; 64]);
    let mut off_field = vec![0x02];
    off_field.extend_from_slice(&[0xff; 32]);
    let keys: [Vec<u8>; 6] = [
        Vec::new(),
        good[..32].to_vec(),
        [good.as_slice(), &[0]].concat(),
        uncompressed,
        bad_prefix.to_vec(),
        off_field,
    ];
    for key in keys {
        h.rejects(
            "registrar",
            client::register_party("newco", "NewCo", Role::Enterprise, &key),
            "invalid_public_key",
        );
    }
    h.ok("registrar", client::register_party("newco", "NewCo", Role::Enterprise, &good));
}

// Goal: key rotation is signed with the old key; from then on the old key's signatures are
// refused (even later in the same block) and the new key's are accepted, and the chain verifier
// follows the rotation.
#[test]
fn rotate_key_replaces_the_signing_key() {
    let mut h = world();
    let new_key = SigningKey::from_seed("sup1-rotated");
    let old = h.identity("sup1").clone();
    let valid_until = h.now_ms + 60_000;
    let grant = |expires| client::grant_access("bank1", AccessScope::Trade, expires);
    let rotate = h.tx("sup1", client::rotate_key(&new_key.public_key().to_bytes()));
    let stale = old.sign(valid_until, 1_000_001, grant(h.now_ms + DAY_MS));
    let results = h.block(vec![rotate, stale]);
    assert_applied(&results[0]);
    assert_rejected(&results[1], "bad_signature");
    assert_eq!(party(&h, "sup1").public_key, new_key.public_key().to_bytes().to_vec());

    h.rejects_tx(old.sign(valid_until, 1_000_002, grant(h.now_ms + DAY_MS)), "bad_signature");
    h.identities.insert("sup1".into(), Identity::new(CHAIN_ID, "sup1", new_key));
    h.ok("sup1", grant(h.now_ms + DAY_MS));
    audit(&h);
}

// Goal: a rotation to something that is not a compressed public key is refused, and the old key
// keeps working.
#[test]
fn rotate_key_refuses_invalid_keys() {
    let mut h = world();
    let good = SigningKey::from_seed("new").public_key().to_bytes();
    for key in [Vec::new(), good[..32].to_vec(), vec![0x04; 65]] {
        h.rejects("sup1", client::rotate_key(&key), "invalid_public_key");
    }
    assert_eq!(party(&h, "sup1").public_key, h.identity("sup1").public_key());
    h.ok("sup1", client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS));
}

// ---------------------------------------------------------------------------------------------
// Freezing
// ---------------------------------------------------------------------------------------------

// Goal: only the registrar or a regulator freezes and unfreezes a party; the registrar cannot be
// frozen, nobody freezes itself, and the party must exist.
#[test]
fn set_frozen_only_by_registrar_or_regulator() {
    let mut h = world();
    for signer in ["core", "sup1", "bank1", "carrier"] {
        h.rejects(signer, client::set_frozen("sup2", true), "wrong_role");
    }
    h.ok("reg", client::set_frozen("sup2", true));
    assert!(party(&h, "sup2").frozen);
    h.ok("registrar", client::set_frozen("sup2", false));
    assert!(!party(&h, "sup2").frozen);
    h.ok("registrar", client::set_frozen("sup2", true));
    assert!(party(&h, "sup2").frozen);
    h.ok("reg", client::set_frozen("sup2", false));
    assert!(!party(&h, "sup2").frozen);

    h.rejects("reg", client::set_frozen("registrar", true), "unauthorized");
    h.rejects("reg", client::set_frozen("reg", true), "same_party");
    h.rejects("reg", client::set_frozen("ghost", true), "not_found");
    h.rejects("reg", client::set_frozen("bad/id", true), "invalid_id");
}

// Goal: every transaction of a frozen party is refused with signer_frozen, whatever the command
// and role, and the party works again once unfrozen.
#[test]
fn frozen_signer_is_rejected() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("reg", client::set_frozen("sup1", true));
    h.ok("registrar", client::set_frozen("bank2", true));
    let new_key = SigningKey::from_seed("k").public_key().to_bytes();
    let far = h.now_ms + DAY_MS;
    h.rejects("sup1", client::transfer_token(&token, "sup2", "10.00"), "signer_frozen");
    h.rejects("sup1", client::offer_token(&token, "bank1", "0.1", far), "signer_frozen");
    h.rejects("sup1", client::rotate_key(&new_key), "signer_frozen");
    h.rejects("sup1", client::grant_access("bank1", AccessScope::Trade, far), "signer_frozen");
    h.rejects(
        "bank2",
        client::grant_credit_line("L9", "core", "5.00", "EUR", far),
        "signer_frozen",
    );

    h.ok("reg", client::set_frozen("sup1", false));
    h.ok("sup1", client::transfer_token(&token, "sup2", "10.00"));
}

// Goal: tokens a frozen party holds cannot move: not by its own transfer, and not by a bank
// discounting an offer the party made before it was frozen.
#[test]
fn frozen_holders_tokens_cannot_move() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let offer_id = offered(&mut h, "sup1", &token, "bank1", DAY_MS);
    h.ok("reg", client::set_frozen("sup1", true));
    h.rejects("sup1", client::withdraw_offer(&offer_id), "signer_frozen");
    h.rejects("bank1", client::discount_token(&offer_id, "0.05"), "party_frozen");
    assert_eq!(h.token(&token).holder, "sup1");

    h.ok("reg", client::set_frozen("sup1", false));
    h.ok("bank1", client::discount_token(&offer_id, "0.05"));
    assert_eq!(h.token(&token).holder, "bank1");
}

// Goal: value never goes to a frozen party: a transfer to it, and an offer to a frozen bank, are
// refused with party_frozen.
#[test]
fn nothing_moves_to_a_frozen_party() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("reg", client::set_frozen("sup2", true));
    h.ok("reg", client::set_frozen("bank2", true));
    h.rejects("sup1", client::transfer_token(&token, "sup2", "1000.00"), "party_frozen");
    h.rejects("sup1", client::transfer_token(&token, "sup2", "10.00"), "party_frozen");
    h.rejects("sup1", client::transfer_token(&token, "bank2", "10.00"), "party_frozen");
    let expires = h.now_ms + DAY_MS;
    h.rejects("sup1", client::offer_token(&token, "bank2", "0.1", expires), "party_frozen");
}

// Goal: the obligor cannot settle (pay) a token while its holder is frozen; it can once the
// holder is unfrozen.
#[test]
fn no_settlement_to_a_frozen_holder() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("registrar", client::set_frozen("sup1", true));
    h.rejects("core", client::settle_token(&token, "SEPA-1"), "party_frozen");
    assert_eq!(h.token(&token).status, TokenStatus::Live as i32);
    h.ok("registrar", client::set_frozen("sup1", false));
    h.ok("core", client::settle_token(&token, "SEPA-1"));
}

// ---------------------------------------------------------------------------------------------
// Credit lines
// ---------------------------------------------------------------------------------------------

// Goal: only a bank grants a credit line, to an existing, unfrozen enterprise, with a limit in
// minor units, an ISO currency code and an expiry after ledger time; a line keeps its currency.
#[test]
fn credit_line_grant_rules() {
    let mut h = world();
    let later = h.now_ms + 30 * DAY_MS;
    let line = |id: &str, obligor: &str, limit: &str, currency: &str, expires: u64| {
        client::grant_credit_line(id, obligor, limit, currency, expires)
    };
    for signer in ["core", "sup1", "carrier", "reg", "registrar"] {
        h.rejects(signer, line("L2", "sup1", "100.00", "EUR", later), "wrong_role");
    }
    h.rejects("bank1", line("L2", "bank2", "100.00", "EUR", later), "wrong_role");
    h.rejects("bank1", line("L2", "carrier", "100.00", "EUR", later), "wrong_role");
    h.rejects("bank1", line("L2", "ghost", "100.00", "EUR", later), "not_found");
    h.rejects("bank1", line("L 2", "sup1", "100.00", "EUR", later), "invalid_id");
    for limit in ["-1", "100.001", "1e3", "", "ten"] {
        h.rejects("bank1", line("L2", "sup1", limit, "EUR", later), "invalid_amount");
    }
    for currency in ["eur", "EURO", "E1R", ""] {
        h.rejects("bank1", line("L2", "sup1", "100.00", currency, later), "invalid_currency");
    }
    for expires in [0, h.now_ms - 1, h.now_ms] {
        h.rejects("bank1", line("L2", "sup1", "100.00", "EUR", expires), "invalid_time");
    }
    h.ok("reg", client::set_frozen("sup1", true));
    h.rejects("bank1", line("L2", "sup1", "100.00", "EUR", later), "party_frozen");
    h.ok("reg", client::set_frozen("sup1", false));

    h.ok("bank1", line("L2", "sup1", "100.00", "EUR", later));
    h.rejects("bank1", line("L2", "sup1", "100.00", "USD", later), "currency_mismatch");
    let lines = query::credit_lines(&h.chain.store, "sup1").unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0].bank.as_str(), lines[0].limit.as_str()), ("bank1", "100.00"));
}

// Goal: an obligor may accept while its unsettled face value plus the new token stays within the
// sum of its unexpired lines in that currency, across banks, up to the exact limit; one cent more
// is refused and mints nothing.
#[test]
fn credit_limit_is_the_sum_of_unexpired_lines() {
    let mut h = world();
    let later = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("A", "sup1", "600.00", "EUR", later));
    h.ok("bank2", client::grant_credit_line("B", "sup1", "400.00", "EUR", later));
    let maturity = h.now_ms + 90 * DAY_MS;
    let first = invoice_between(&mut h, "1", "sup1", "sup2", "700.00", "EUR");
    let second = invoice_between(&mut h, "2", "sup1", "sup2", "300.00", "EUR");
    let third = invoice_between(&mut h, "3", "sup1", "sup2", "0.01", "EUR");
    accept(&mut h, "sup1", &first, maturity);
    accept(&mut h, "sup1", &second, maturity);
    assert_eq!(exposure(&h, "sup1", "EUR"), (dec("1000.00"), dec("1000.00")));
    h.rejects("sup1", client::accept_invoice(&third, maturity), "credit_limit_exceeded");
    assert_eq!(invoice(&h, &third).status, InvoiceStatus::Issued as i32);
}

// Goal: an expired line no longer counts toward the limit, and a line in another currency never
// counts; currencies never mix.
#[test]
fn expired_and_foreign_currency_lines_are_ignored() {
    let mut h = world();
    let soon = h.now_ms + 10 * DAY_MS;
    let later = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("EUR-10d", "sup1", "1000.00", "EUR", soon));
    h.ok("bank2", client::grant_credit_line("USD", "sup1", "5000.00", "USD", later));
    let eur = invoice_between(&mut h, "E", "sup1", "sup2", "100.00", "EUR");
    let usd = invoice_between(&mut h, "U", "sup1", "sup2", "5000.00", "USD");

    // The line expires at exactly this ledger time: it is no longer unexpired.
    h.advance(10 * DAY_MS);
    let maturity = h.now_ms + 90 * DAY_MS;
    h.rejects("sup1", client::accept_invoice(&eur, maturity), "credit_limit_exceeded");
    assert_eq!(exposure(&h, "sup1", "EUR"), (Decimal::ZERO, Decimal::ZERO));

    // The USD line covers the USD invoice exactly and nothing in EUR.
    accept(&mut h, "sup1", &usd, maturity);
    assert_eq!(exposure(&h, "sup1", "USD"), (dec("5000.00"), dec("5000.00")));
    h.rejects("sup1", client::accept_invoice(&eur, maturity), "credit_limit_exceeded");

    h.ok("bank1", client::grant_credit_line("EUR-new", "sup1", "100.00", "EUR", later));
    accept(&mut h, "sup1", &eur, maturity);
}

// Goal: granting an existing line id again replaces its limit and expiry (raise, lower, extend)
// instead of adding a second line.
#[test]
fn regranting_a_line_replaces_it() {
    let mut h = world();
    let five_days = h.now_ms + 5 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L", "sup1", "1000.00", "EUR", five_days));
    h.ok("bank1", client::grant_credit_line("L", "sup1", "200.00", "EUR", five_days));
    let lines = query::credit_lines(&h.chain.store, "sup1").unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].limit, "200.00");
    let big = invoice_between(&mut h, "1", "sup1", "sup2", "300.00", "EUR");
    let small = invoice_between(&mut h, "2", "sup1", "sup2", "200.00", "EUR");
    let maturity = h.now_ms + 90 * DAY_MS;
    h.rejects("sup1", client::accept_invoice(&big, maturity), "credit_limit_exceeded");

    // Extending the expiry keeps the line alive past its first expiry.
    let thirty_days = h.now_ms + 30 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L", "sup1", "200.00", "EUR", thirty_days));
    h.advance(10 * DAY_MS);
    accept(&mut h, "sup1", &small, maturity);
    assert_eq!(exposure(&h, "sup1", "EUR"), (dec("200.00"), dec("200.00")));

    // The same line id from another bank is another line.
    h.ok("bank2", client::grant_credit_line("L", "sup1", "300.00", "EUR", thirty_days));
    assert_eq!(query::credit_lines(&h.chain.store, "sup1").unwrap().len(), 2);
    accept(&mut h, "sup1", &big, maturity);
}

// ---------------------------------------------------------------------------------------------
// Purchase orders
// ---------------------------------------------------------------------------------------------

// Goal: the buyer, an enterprise, signs the order; the seller is another existing, unfrozen
// enterprise; order ids are unique; the order records buyer, seller and nothing shipped yet.
#[test]
fn purchase_order_parties() {
    let mut h = world();
    let lines = [("WIDGET", 10, "10.50")];
    let po = |id: &str, seller: &str| client::create_purchase_order(id, seller, &lines, "EUR");
    for signer in ["bank1", "carrier", "reg", "registrar"] {
        h.rejects(signer, po("PO-1", "sup1"), "wrong_role");
    }
    for seller in ["bank1", "carrier", "reg"] {
        h.rejects("core", po("PO-1", seller), "wrong_role");
    }
    h.rejects("core", po("PO-1", "ghost"), "not_found");
    h.rejects("core", po("PO-1", "core"), "same_party");
    h.rejects("core", po("PO/1", "sup1"), "invalid_id");
    h.ok("reg", client::set_frozen("sup2", true));
    h.rejects("core", po("PO-1", "sup2"), "party_frozen");

    h.ok("core", po("PO-1", "sup1"));
    let record = order(&h, "PO-1");
    assert_eq!((record.buyer.as_str(), record.seller.as_str()), ("core", "sup1"));
    assert_eq!(record.shipped.iter().map(|s| s.quantity).sum::<u64>(), 0);
    h.rejects("core", po("PO-1", "sup1"), "already_exists");
    h.rejects("sup1", po("PO-1", "core"), "already_exists");
}

// Goal: order lines have distinct skus and positive quantities, unit prices are in minor units
// (at most two decimals), and the currency is a three-letter ISO code.
#[test]
fn purchase_order_lines() {
    let mut h = world();
    let po = |lines: &[(&str, u64, &str)], currency: &str| {
        client::create_purchase_order("PO-1", "sup1", lines, currency)
    };
    h.rejects("core", po(&[], "EUR"), "invalid_argument");
    h.rejects("core", po(&[("A", 1, "1.00"), ("A", 2, "1.00")], "EUR"), "invalid_argument");
    h.rejects("core", po(&[("A", 0, "1.00")], "EUR"), "invalid_argument");
    h.rejects("core", po(&[("A", 1_000_000_001, "1.00")], "EUR"), "invalid_argument");
    h.rejects("core", po(&[("A/B", 1, "1.00")], "EUR"), "invalid_id");
    for price in ["10.505", "0.001", "-1.00", "1e3", "", "1,50"] {
        h.rejects("core", po(&[("A", 1, price)], "EUR"), "invalid_amount");
    }
    for currency in ["eur", "EURO", "EU", "", "E2R"] {
        h.rejects("core", po(&[("A", 1, "1.00")], currency), "invalid_currency");
    }
    h.ok("core", po(&[("A", 1, "10.5"), ("B", 3, "0")], "EUR"));
    let record = order(&h, "PO-1");
    assert_eq!(record.lines[0].unit_price, "10.50");
    assert_eq!(record.currency, "EUR");
}

// ---------------------------------------------------------------------------------------------
// Shipments
// ---------------------------------------------------------------------------------------------

// Goal: only the order's seller records a shipment against it; the order must exist.
#[test]
fn shipment_only_by_seller() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    let ship = |id: &str, po: &str| {
        client::record_shipment(id, po, &[("WIDGET", 1)], "", doc(&format!("bol-{id}")))
    };
    // The order's buyer, and a regulator, know the order: refused. Anyone else is told there
    // is no such order, exactly as for a missing one.
    for signer in ["core", "reg"] {
        h.rejects(signer, ship("S1", "PO-1"), "unauthorized");
    }
    for signer in ["sup2", "carrier", "bank1"] {
        let existing = h.rejects(signer, ship("S1", "PO-1"), "not_found").reject_message;
        let missing = h.rejects(signer, ship("S1", "PO-9"), "not_found").reject_message;
        assert_eq!(existing.replace("PO-1", "PO-9"), missing);
    }
    h.rejects("sup1", ship("S1", "PO-X"), "not_found");
    h.ok("sup1", ship("S1", "PO-1"));
    h.rejects("sup1", ship("S1", "PO-1"), "already_exists");
    assert_eq!(order(&h, "PO-1").shipment_ids, vec!["S1".to_owned()]);
}

// Goal: a shipment carries only skus of its order, each once, in positive quantities.
#[test]
fn shipment_lines() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    let ship = |lines: &[(&str, u64)]| client::record_shipment("S1", "PO-1", lines, "", doc("b"));
    h.rejects("sup1", ship(&[("BOLT", 1)]), "unknown_sku");
    h.rejects("sup1", ship(&[("WIDGET", 1), ("BOLT", 1)]), "unknown_sku");
    h.rejects("sup1", ship(&[("WIDGET", 1), ("WIDGET", 1)]), "invalid_argument");
    h.rejects("sup1", ship(&[("WIDGET", 0)]), "invalid_argument");
    h.rejects("sup1", ship(&[]), "invalid_argument");
    h.ok("sup1", ship(&[("WIDGET", 1), ("GADGET", 1)]));
}

// Goal: the quantity shipped per sku never exceeds the ordered quantity, counted across every
// shipment of the order; a shipment that would exceed on one line is refused as a whole.
#[test]
fn over_shipment_across_several_shipments() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    let ship = |id: &str, lines: &[(&str, u64)]| {
        client::record_shipment(id, "PO-1", lines, "", doc(&format!("bol-{id}")))
    };
    h.ok("sup1", ship("S1", &[("WIDGET", 4)]));
    h.ok("sup1", ship("S2", &[("WIDGET", 4)]));
    h.rejects("sup1", ship("S3", &[("WIDGET", 3)]), "over_shipment");
    h.rejects("sup1", ship("S3", &[("GADGET", 5), ("WIDGET", 3)]), "over_shipment");
    h.ok("sup1", ship("S3", &[("WIDGET", 2)]));
    h.rejects("sup1", ship("S4", &[("WIDGET", 1)]), "over_shipment");
    h.rejects("sup1", ship("S4", &[("GADGET", 6)]), "over_shipment");
    h.ok("sup1", ship("S4", &[("GADGET", 5)]));
    let shipped: Vec<u64> = order(&h, "PO-1").shipped.iter().map(|s| s.quantity).collect();
    assert_eq!(shipped, vec![10, 5]);
}

// Goal: a named carrier is an existing, unfrozen logistics party; a shipment may name none.
#[test]
fn shipment_carrier_must_be_logistics() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    let ship = |id: &str, carrier: &str| {
        client::record_shipment(id, "PO-1", &[("WIDGET", 1)], carrier, doc(&format!("bol-{id}")))
    };
    for carrier in ["bank1", "core", "sup2", "reg"] {
        h.rejects("sup1", ship("S1", carrier), "wrong_role");
    }
    h.rejects("sup1", ship("S1", "ghost"), "not_found");
    h.ok("reg", client::set_frozen("carrier", true));
    h.rejects("sup1", ship("S1", "carrier"), "party_frozen");
    h.ok("reg", client::set_frozen("carrier", false));
    h.ok("sup1", ship("S1", "carrier"));
    assert_eq!(shipment(&h, "S1").carrier, "carrier");
    h.ok("sup1", ship("S2", ""));
    assert_eq!(shipment(&h, "S2").carrier, "");
}

// Goal: a shipment's document hash is 32 bytes and never used before on the ledger; a refused
// shipment consumes neither its hash nor its id.
#[test]
fn shipment_document_hash_used_once() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    for hash in [vec![7; 31], vec![7; 33], Vec::new()] {
        h.rejects("sup1", shipment_with_hash("S1", "PO-1", hash), "invalid_document_hash");
    }
    h.ok("sup1", client::record_shipment("S1", "PO-1", &[("WIDGET", 1)], "", doc("bol-a")));
    h.rejects(
        "sup1",
        client::record_shipment("S2", "PO-1", &[("WIDGET", 1)], "", doc("bol-a")),
        "document_hash_used",
    );
    // A refused shipment did not take the id S2 or the hash bol-b.
    h.rejects(
        "sup1",
        client::record_shipment("S2", "PO-1", &[("WIDGET", 11)], "", doc("bol-b")),
        "over_shipment",
    );
    h.ok("sup1", client::record_shipment("S2", "PO-1", &[("WIDGET", 1)], "", doc("bol-b")));
}

// ---------------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------------

// Goal: the buyer confirms delivery, once; a stranger (another enterprise, a bank, a logistics
// party that is not the named carrier) is refused; the shipment must exist.
#[test]
fn delivery_is_confirmed_by_the_buyer_once() {
    let mut h = world();
    h.register("carrier2", Role::Logistics);
    ordered(&mut h, "PO-1");
    h.ok("sup1", client::record_shipment("S1", "PO-1", &[("WIDGET", 1)], "carrier", doc("b1")));
    for signer in ["sup1", "reg"] {
        h.rejects(signer, client::confirm_delivery("S1"), "unauthorized");
    }
    for signer in ["sup2", "bank1", "carrier2"] {
        h.rejects(signer, client::confirm_delivery("S1"), "not_found");
    }
    h.rejects("core", client::confirm_delivery("S9"), "not_found");
    h.ok("core", client::confirm_delivery("S1"));
    let delivered_at = shipment(&h, "S1").delivered_at_ms;
    assert_eq!(delivered_at, h.now_ms);
    h.advance(1_000);
    h.rejects("core", client::confirm_delivery("S1"), "already_delivered");
    assert_eq!(shipment(&h, "S1").delivered_at_ms, delivered_at);
}

// Goal: the named carrier's confirmation is an attestation recorded apart from the buyer's; it
// happens once, and alone it does not make the shipment invoiceable.
#[test]
fn carrier_attestation_is_separate_and_not_enough() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    h.ok("sup1", client::record_shipment("S1", "PO-1", &[("WIDGET", 1)], "carrier", doc("b1")));
    h.ok("sup1", client::record_shipment("S2", "PO-1", &[("WIDGET", 1)], "", doc("b2")));
    h.ok("carrier", client::confirm_delivery("S1"));
    let s1 = shipment(&h, "S1");
    assert_eq!((s1.carrier_attested_at_ms, s1.delivered_at_ms), (h.now_ms, 0));
    h.rejects("carrier", client::confirm_delivery("S1"), "already_delivered");
    // A shipment without a named carrier takes no carrier attestation.
    h.rejects("carrier", client::confirm_delivery("S2"), "not_found");

    let due = h.now_ms + 30 * DAY_MS;
    let issue = || client::issue_invoice("I1", "PO-1", &["S1"], "10.50", due, doc("i1"));
    h.rejects("sup1", issue(), "not_delivered");
    h.ok("core", client::confirm_delivery("S1"));
    let s1 = shipment(&h, "S1");
    assert!(s1.delivered_at_ms != 0 && s1.carrier_attested_at_ms != 0);
    h.ok("sup1", issue());
}

// ---------------------------------------------------------------------------------------------
// Invoices
// ---------------------------------------------------------------------------------------------

// Goal: only the order's seller issues an invoice on it; the order must exist.
#[test]
fn invoice_only_by_seller() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 1)]);
    let due = h.now_ms + 30 * DAY_MS;
    let issue = |po: &str| client::issue_invoice("I1", po, &["S1"], "10.50", due, doc("i1"));
    h.rejects("core", issue("PO-1"), "unauthorized");
    for signer in ["sup2", "bank1", "carrier"] {
        h.rejects(signer, issue("PO-1"), "not_found");
    }
    h.rejects("sup1", issue("PO-X"), "not_found");
    h.ok("sup1", issue("PO-1"));
    let record = invoice(&h, "I1");
    assert_eq!((record.seller.as_str(), record.buyer.as_str()), ("sup1", "core"));
    assert_eq!((record.amount.as_str(), record.currency.as_str()), ("10.50", "EUR"));
    assert_eq!(record.status, InvoiceStatus::Issued as i32);
    assert_eq!(shipment(&h, "S1").invoice_id, "I1");
}

// Goal: every shipment an invoice names exists, belongs to the invoiced order, appears once, and
// is delivered (confirmed by the buyer).
#[test]
fn invoice_shipments_are_delivered_and_of_the_order() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    ordered(&mut h, "PO-2");
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 1)]);
    h.ok("sup1", client::record_shipment("S2", "PO-1", &[("WIDGET", 1)], "", doc("b2")));
    delivered(&mut h, "PO-2", "T1", &[("WIDGET", 1)]);
    let due = h.now_ms + 30 * DAY_MS;
    let issue = |shipments: &[&str]| {
        client::issue_invoice("I1", "PO-1", shipments, "10.50", due, doc("i1"))
    };
    h.rejects("sup1", issue(&["S1", "S2"]), "not_delivered");
    h.rejects("sup1", issue(&["S1", "T1"]), "shipment_not_in_order");
    h.rejects("sup1", issue(&["S1", "S9"]), "not_found");
    h.rejects("sup1", issue(&["S1", "S1"]), "invalid_argument");
    h.rejects("sup1", issue(&[]), "invalid_argument");
    h.ok("sup1", issue(&["S1"]));
}

// Goal: a shipment is invoiced at most once: a second invoice naming it is a double-invoicing
// attempt, refused, and still recorded in its block with its reason for the audit trail.
#[test]
fn shipment_is_invoiced_at_most_once() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 2)]);
    delivered(&mut h, "PO-1", "S2", &[("WIDGET", 2)]);
    let due = h.now_ms + 30 * DAY_MS;
    h.ok("sup1", client::issue_invoice("I1", "PO-1", &["S1"], "21.00", due, doc("i1")));
    h.rejects(
        "sup1",
        client::issue_invoice("I2", "PO-1", &["S1"], "21.00", due, doc("i2")),
        "already_invoiced",
    );
    let attempt = h.chain.blocks.last().unwrap().clone();
    assert_eq!(attempt.txs.len(), 1);
    assert_eq!(attempt.results[0].reject_code, "already_invoiced");
    assert!(attempt.results[0].reject_message.contains("I1"));
    h.rejects(
        "sup1",
        client::issue_invoice("I2", "PO-1", &["S2", "S1"], "42.00", due, doc("i2")),
        "already_invoiced",
    );
    h.ok("sup1", client::issue_invoice("I2", "PO-1", &["S2"], "21.00", due, doc("i2")));
    audit(&h);
}

// Goal: the invoice amount is at most the delivered value (quantity x unit price) of the
// shipments it names, summed over their lines.
#[test]
fn invoice_amount_is_at_most_the_delivered_value() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    // S1: 3 x 10.50 + 2 x 2.00 = 35.50; S2: 2 x 10.50 = 21.00; together 56.50.
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 3), ("GADGET", 2)]);
    delivered(&mut h, "PO-1", "S2", &[("WIDGET", 2)]);
    let due = h.now_ms + 30 * DAY_MS;
    let issue = |shipments: &[&str], amount: &str| {
        client::issue_invoice("I1", "PO-1", shipments, amount, due, doc("i1"))
    };
    h.rejects("sup1", issue(&["S1"], "35.51"), "amount_exceeds_delivered_value");
    h.rejects("sup1", issue(&["S1", "S2"], "56.51"), "amount_exceeds_delivered_value");
    h.rejects("sup1", issue(&["S1", "S2"], "100000.00"), "amount_exceeds_delivered_value");
    h.ok("sup1", issue(&["S1", "S2"], "56.50"));
    assert_eq!(invoice(&h, "I1").amount, "56.50");
}

// Goal: an invoice's document hash is 32 bytes and used once on the whole ledger: not by
// another invoice, and not by a shipment either.
#[test]
fn invoice_document_hash_is_used_once() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 1)]);
    delivered(&mut h, "PO-1", "S2", &[("WIDGET", 1)]);
    let due = h.now_ms + 30 * DAY_MS;
    let issue_with = |id: &str, ship: &str, hash: Vec<u8>| {
        Command::IssueInvoice(pb::IssueInvoice {
            invoice_id: id.into(),
            po_id: "PO-1".into(),
            shipment_ids: vec![ship.into()],
            amount: "10.50".into(),
            due_date_ms: due,
            document_hash: hash,
        })
    };
    for hash in [vec![1; 31], vec![1; 33], Vec::new()] {
        h.rejects("sup1", issue_with("I1", "S1", hash), "invalid_document_hash");
    }
    // The bill of lading of shipment S1 cannot double as an invoice document.
    h.rejects("sup1", issue_with("I1", "S1", doc("bol-S1").to_vec()), "document_hash_used");
    h.ok("sup1", issue_with("I1", "S1", doc("inv-1").to_vec()));
    h.rejects("sup1", issue_with("I2", "S2", doc("inv-1").to_vec()), "document_hash_used");
    // Nor can an invoice document be reused as a bill of lading.
    h.rejects(
        "sup1",
        client::record_shipment("S3", "PO-1", &[("WIDGET", 1)], "", doc("inv-1")),
        "document_hash_used",
    );
    h.ok("sup1", issue_with("I2", "S2", doc("inv-2").to_vec()));
}

// Goal: invoice amounts are positive, in minor units, with no sign or exponent; the due date is
// set; the invoice id is new and well-formed.
#[test]
fn invoice_amount_and_fields() {
    let mut h = world();
    ordered(&mut h, "PO-1");
    delivered(&mut h, "PO-1", "S1", &[("WIDGET", 1)]);
    delivered(&mut h, "PO-1", "S2", &[("WIDGET", 1)]);
    let due = h.now_ms + 30 * DAY_MS;
    let issue = |id: &str, ship: &str, amount: &str, due: u64| {
        client::issue_invoice(id, "PO-1", &[ship], amount, due, doc(&format!("inv-{id}")))
    };
    for amount in ["0", "0.00", "-1.00", "-0.01", "1.005", "0.001", "1e1", "", " 1.00", "+1.00"] {
        h.rejects("sup1", issue("I1", "S1", amount, due), "invalid_amount");
    }
    h.rejects("sup1", issue("I1", "S1", "10.00", 0), "invalid_time");
    h.rejects("sup1", issue("I 1", "S1", "10.00", due), "invalid_id");
    h.ok("sup1", issue("I1", "S1", "0.01", due));
    h.rejects("sup1", issue("I1", "S2", "10.00", due), "already_exists");
}

// ---------------------------------------------------------------------------------------------
// Accepting and rejecting invoices
// ---------------------------------------------------------------------------------------------

// Goal: only the invoice's buyer accepts or rejects it; the invoice must exist.
#[test]
fn accept_or_reject_only_by_buyer() {
    let mut h = world();
    let inv = delivered_invoice(&mut h, "1", "1000.00");
    let maturity = h.now_ms + 90 * DAY_MS;
    for (signer, code) in [
        ("sup1", "unauthorized"),
        ("reg", "unauthorized"),
        ("sup2", "not_found"),
        ("bank1", "not_found"),
        ("carrier", "not_found"),
    ] {
        h.rejects(signer, client::accept_invoice(&inv, maturity), code);
        h.rejects(signer, client::reject_invoice(&inv, "no"), code);
    }
    h.rejects("core", client::accept_invoice("INV-X", maturity), "not_found");
    h.rejects("core", client::reject_invoice("INV-X", "no"), "not_found");
}

// Goal: accepting mints one receivable token (holder = seller, obligor = buyer, face value =
// invoice amount, maturity as given) and raises the obligor's unsettled exposure by its face.
#[test]
fn accept_mints_the_receivable_token() {
    let mut h = world();
    let inv = delivered_invoice(&mut h, "1", "1234.56");
    let maturity = h.now_ms + 120 * DAY_MS;
    let result = h.ok("core", client::accept_invoice(&inv, maturity));
    assert_eq!(result.created_ids.len(), 1);
    let token = h.token(&result.created_ids[0]);
    assert_eq!((token.holder.as_str(), token.obligor.as_str()), ("sup1", "core"));
    assert_eq!((token.face_value.as_str(), token.currency.as_str()), ("1234.56", "EUR"));
    assert_eq!(token.maturity_ms, maturity);
    assert_eq!(token.status, TokenStatus::Live as i32);
    assert_eq!((token.invoice_id.as_str(), token.parent_id.as_str()), (inv.as_str(), ""));
    let record = invoice(&h, &inv);
    assert_eq!(record.status, InvoiceStatus::Accepted as i32);
    assert_eq!(record.token_id, token.token_id);
    assert_eq!(exposure(&h, "core", "EUR"), (dec("1234.56"), dec("1000000.00")));
}

// Goal: maturity lies strictly after ledger time and at most ten years (3,650 days) ahead.
#[test]
fn accept_maturity_window() {
    let mut h = world();
    let inv = delivered_invoice(&mut h, "1", "1000.00");
    let ten_years = 3_650 * DAY_MS;
    for maturity in [0, h.now_ms - 1, h.now_ms, h.now_ms + ten_years + 1, u64::MAX] {
        h.rejects("core", client::accept_invoice(&inv, maturity), "invalid_time");
    }
    let latest = h.now_ms + ten_years;
    accept(&mut h, "core", &inv, latest);
}

// Goal: an acceptance that would take the obligor's unsettled face value above its credit lines
// is refused with credit_limit_exceeded and leaves the invoice open; settling frees the room.
#[test]
fn accept_beyond_credit_is_refused() {
    let mut h = world();
    let later = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L", "sup1", "1000.00", "EUR", later));
    let first = invoice_between(&mut h, "1", "sup1", "sup2", "800.00", "EUR");
    let second = invoice_between(&mut h, "2", "sup1", "sup2", "200.01", "EUR");
    let maturity = h.now_ms + 90 * DAY_MS;
    let token = accept(&mut h, "sup1", &first, maturity);
    let result =
        h.rejects("sup1", client::accept_invoice(&second, maturity), "credit_limit_exceeded");
    assert!(result.reject_message.contains("1000.01"), "{}", result.reject_message);
    assert_eq!(invoice(&h, &second).status, InvoiceStatus::Issued as i32);
    h.ok("sup1", client::settle_token(&token, "PAY-1"));
    accept(&mut h, "sup1", &second, maturity);
}

// Goal: an invoice is decided once: accepting twice, accepting after rejecting and rejecting
// after accepting are refused, so an invoice is tokenized at most once; a rejection needs a
// reason.
#[test]
fn invoice_is_decided_once() {
    let mut h = world();
    let accepted = delivered_invoice(&mut h, "1", "1000.00");
    let rejected = delivered_invoice(&mut h, "2", "1000.00");
    let maturity = h.now_ms + 90 * DAY_MS;
    accept(&mut h, "core", &accepted, maturity);
    h.rejects("core", client::accept_invoice(&accepted, maturity), "invoice_not_open");
    h.rejects("core", client::reject_invoice(&accepted, "changed my mind"), "invoice_not_open");

    for reason in ["", "  ", "bad\u{7}"] {
        h.rejects("core", client::reject_invoice(&rejected, reason), "invalid_argument");
    }
    h.ok("core", client::reject_invoice(&rejected, "goods damaged"));
    let record = invoice(&h, &rejected);
    assert_eq!(record.status, InvoiceStatus::Rejected as i32);
    assert_eq!(record.reject_reason, "goods damaged");
    h.rejects("core", client::accept_invoice(&rejected, maturity), "invoice_not_open");
    h.rejects("core", client::reject_invoice(&rejected, "again"), "invoice_not_open");
    let minted = query::tokens(&h.chain.store).unwrap();
    assert_eq!(minted.len(), 1);
}

// Goal: a rejected invoice still consumes its shipments and document hash ("a shipment is
// invoiced at most once", "a document hash is used once"): the goods cannot be re-invoiced.
#[test]
fn rejected_invoice_keeps_its_shipments() {
    let mut h = world();
    let inv = delivered_invoice(&mut h, "1", "1000.00");
    h.ok("core", client::reject_invoice(&inv, "wrong amount"));
    let due = h.now_ms + 30 * DAY_MS;
    h.rejects(
        "sup1",
        client::issue_invoice("INV-1b", "PO-1", &["SH-1"], "900.00", due, doc("inv-1b")),
        "already_invoiced",
    );
}

// ---------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------

// Goal: transferring the full face value moves the token itself: same id, new holder, no
// children, one more holder change.
#[test]
fn full_transfer_keeps_the_token_id() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let result = h.ok("sup1", client::transfer_token(&token, "sup2", "1000.00"));
    assert!(result.created_ids.is_empty());
    let moved = h.token(&token);
    assert_eq!(moved.holder, "sup2");
    assert_eq!(moved.status, TokenStatus::Live as i32);
    assert!(moved.child_ids.is_empty());
    assert_eq!(moved.holder_changes, 1);
    let held = |party: &str| -> Vec<String> {
        query::tokens_by_holder(&h.chain.store, party)
            .unwrap()
            .into_iter()
            .map(|t| t.token_id)
            .collect()
    };
    assert_eq!(held("sup2"), vec![token.clone()]);
    assert!(held("sup1").is_empty());
    // The new holder can move it on (to a bank, too).
    h.ok("sup2", client::transfer_token(&token, "bank2", "1000"));
}

// Goal: a partial transfer retires the token and mints two children pointing to it, the amount
// to the receiver and the rest to the holder, together exactly the parent's face value; the
// obligor's exposure does not change.
#[test]
fn split_mints_two_children_summing_to_the_parent() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let result = h.ok("sup1", client::transfer_token(&token, "sup2", "333.33"));
    assert_eq!(result.created_ids.len(), 2);
    let (sent, kept) = (h.token(&result.created_ids[0]), h.token(&result.created_ids[1]));
    assert_eq!((sent.holder.as_str(), sent.face_value.as_str()), ("sup2", "333.33"));
    assert_eq!((kept.holder.as_str(), kept.face_value.as_str()), ("sup1", "666.67"));
    for child in [&sent, &kept] {
        assert_eq!(child.parent_id, token);
        assert_eq!(child.status, TokenStatus::Live as i32);
        assert_eq!(child.obligor, "core");
        assert_eq!(child.maturity_ms, h.token(&token).maturity_ms);
    }
    let parent = h.token(&token);
    assert_eq!(parent.status, TokenStatus::Retired as i32);
    assert_eq!(parent.child_ids, result.created_ids);
    assert_eq!(dec(&sent.face_value) + dec(&kept.face_value), dec(&parent.face_value));
    assert_eq!(exposure(&h, "core", "EUR").0, dec("1000.00"));

    // Splitting a child again still conserves the invoice amount over the leaves.
    h.ok("sup2", client::transfer_token(&sent.token_id, "bank1", "0.01"));
    let lineage = query::lineage(&h.chain.store, &token).unwrap().unwrap();
    let leaves: Decimal = lineage
        .descendants
        .iter()
        .filter(|t| t.child_ids.is_empty())
        .map(|t| dec(&t.face_value))
        .sum();
    assert_eq!(leaves, dec("1000.00"));
}

// Goal: a retired token never moves again: after a split the parent cannot be transferred,
// offered or settled.
#[test]
fn retired_token_never_moves_again() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("sup1", client::transfer_token(&token, "sup2", "400.00"));
    let expires = h.now_ms + DAY_MS;
    h.rejects("sup1", client::transfer_token(&token, "sup2", "600.00"), "token_not_live");
    h.rejects("sup1", client::transfer_token(&token, "sup2", "1000.00"), "token_not_live");
    h.rejects("sup1", client::offer_token(&token, "bank1", "0.1", expires), "token_not_live");
    h.rejects("core", client::settle_token(&token, "PAY-1"), "token_not_live");
}

// Goal: transfer amounts are positive, in minor units, and never more than the face value.
#[test]
fn transfer_amount_rules() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.rejects(
        "sup1",
        client::transfer_token(&token, "sup2", "1000.01"),
        "amount_exceeds_face_value",
    );
    h.rejects("sup1", client::transfer_token(&token, "sup2", "5000"), "amount_exceeds_face_value");
    for amount in ["0", "0.00", "-1.00", "0.001", "10.005", "1e2", ""] {
        h.rejects("sup1", client::transfer_token(&token, "sup2", amount), "invalid_amount");
    }
    let result = h.ok("sup1", client::transfer_token(&token, "sup2", "0.01"));
    assert_eq!(h.token(&result.created_ids[1]).face_value, "999.99");
}

// Goal: only the holder transfers, to another existing enterprise or bank: never to itself, to
// the token's obligor (which settles instead), a logistics party, a regulator or the registrar;
// the token must exist.
#[test]
fn transfer_parties() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.rejects("core", client::transfer_token(&token, "sup2", "10.00"), "unauthorized");
    for signer in ["sup2", "bank1"] {
        h.rejects(signer, client::transfer_token(&token, "sup2", "10.00"), "not_found");
    }
    h.rejects("sup1", client::transfer_token(&token, "sup1", "10.00"), "same_party");
    h.rejects("sup1", client::transfer_token(&token, "sup1", "1000.00"), "same_party");
    h.rejects("sup1", client::transfer_token(&token, "core", "10.00"), "same_party");
    h.rejects("sup1", client::transfer_token(&token, "core", "1000.00"), "same_party");
    for to in ["carrier", "reg", "registrar"] {
        h.rejects("sup1", client::transfer_token(&token, to, "10.00"), "wrong_role");
    }
    h.rejects("sup1", client::transfer_token(&token, "ghost", "10.00"), "not_found");
    h.rejects("sup1", client::transfer_token("tk-missing", "sup2", "10.00"), "not_found");
    h.ok("sup1", client::transfer_token(&token, "bank1", "10.00"));
}

// Goal: at and after maturity a token can only be settled: transfer and offer are refused, and
// it reads as overdue (derived from ledger time) until the obligor settles it.
#[test]
fn token_at_maturity_only_settles() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let maturity = h.token(&token).maturity_ms;
    let until_just_before = maturity - h.now_ms - 1;
    h.advance(until_just_before);
    let result = h.ok("sup1", client::transfer_token(&token, "sup2", "100.00"));
    let kept = result.created_ids[1].clone();
    h.advance(1);
    h.rejects("sup1", client::transfer_token(&kept, "sup2", "100.00"), "token_matured");
    let expires = h.now_ms + DAY_MS;
    h.rejects("sup1", client::offer_token(&kept, "bank1", "0.1", expires), "token_matured");
    h.advance(DAY_MS);
    h.rejects("sup1", client::transfer_token(&kept, "sup2", "900.00"), "token_matured");

    let now = query::ledger_time_ms(&h.chain.store).unwrap();
    assert_eq!(query::token_state(&h.token(&kept), now), TokenState::Overdue);
    let overdue = query::exposure(&h.chain.store, "core").unwrap()[0].overdue;
    assert_eq!(overdue, dec("1000.00"));
    h.ok("core", client::settle_token(&kept, "PAY-late"));
    let now = query::ledger_time_ms(&h.chain.store).unwrap();
    assert_eq!(query::token_state(&h.token(&kept), now), TokenState::Settled);
}

// ---------------------------------------------------------------------------------------------
// Offers and discounting
// ---------------------------------------------------------------------------------------------

// Goal: only the holder offers a token, and only to an existing, unfrozen bank other than itself.
#[test]
fn offer_by_the_holder_to_a_bank() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let expires = h.now_ms + DAY_MS;
    let to = |bank: &str| client::offer_token(&token, bank, "0.1", expires);
    h.rejects("core", to("bank1"), "unauthorized");
    for signer in ["sup2", "bank1"] {
        h.rejects(signer, to("bank1"), "not_found");
    }
    for bank in ["sup2", "core", "carrier", "reg"] {
        h.rejects("sup1", to(bank), "wrong_role");
    }
    h.rejects("sup1", to("ghost"), "not_found");
    h.rejects("sup1", client::offer_token("tk-missing", "bank1", "0.1", expires), "not_found");

    // A bank holding a token may offer it to another bank, not to itself.
    h.ok("sup1", client::transfer_token(&token, "bank1", "1000.00"));
    h.rejects("bank1", to("bank1"), "same_party");
    let result = h.ok("bank1", to("bank2"));
    let made = offer(&h, &result.created_ids[0]);
    assert_eq!((made.holder.as_str(), made.bank.as_str()), ("bank1", "bank2"));
    assert_eq!(made.status, OfferStatus::Open as i32);
    assert_eq!(h.token(&token).open_offer_id, made.offer_id);
}

// Goal: an offer's maximum rate is a decimal in [0, 1] with at most eight places, and it
// expires after ledger time and no later than the token's maturity.
#[test]
fn offer_rate_and_expiry() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let maturity = h.token(&token).maturity_ms;
    let expires = h.now_ms + DAY_MS;
    for rate in ["1.01", "-0.1", "0.123456789", "abc", "", "5%", "1e-2"] {
        h.rejects("sup1", client::offer_token(&token, "bank1", rate, expires), "invalid_rate");
    }
    for expires in [h.now_ms - 1, h.now_ms, maturity + 1] {
        h.rejects("sup1", client::offer_token(&token, "bank1", "0.1", expires), "invalid_time");
    }
    h.ok("sup1", client::offer_token(&token, "bank1", "0.12345678", maturity));
}

// Goal: a token under an open offer cannot be transferred or offered again; once the offer is
// withdrawn the token moves freely, and the withdrawn offer can neither be withdrawn again nor
// discounted.
#[test]
fn token_under_offer_is_pinned_until_withdrawn() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let offer_id = offered(&mut h, "sup1", &token, "bank1", 10 * DAY_MS);
    let expires = h.now_ms + DAY_MS;
    h.rejects("sup1", client::transfer_token(&token, "sup2", "1000.00"), "token_under_offer");
    h.rejects("sup1", client::transfer_token(&token, "sup2", "10.00"), "token_under_offer");
    h.rejects("sup1", client::offer_token(&token, "bank2", "0.1", expires), "token_under_offer");
    h.rejects("sup1", client::offer_token(&token, "bank1", "0.2", expires), "token_under_offer");

    h.rejects("bank1", client::withdraw_offer(&offer_id), "unauthorized");
    for signer in ["core", "sup2"] {
        h.rejects(signer, client::withdraw_offer(&offer_id), "not_found");
    }
    h.rejects("sup1", client::withdraw_offer("of-missing"), "not_found");
    h.ok("sup1", client::withdraw_offer(&offer_id));
    assert_eq!(offer(&h, &offer_id).status, OfferStatus::Withdrawn as i32);
    h.rejects("sup1", client::withdraw_offer(&offer_id), "offer_not_open");
    h.rejects("bank1", client::discount_token(&offer_id, "0.05"), "offer_not_open");
    h.ok("sup1", client::transfer_token(&token, "sup2", "10.00"));
}

// Goal: an offer that lapsed no longer blocks its token (it can be offered again or moved), and
// can no longer be discounted.
#[test]
fn lapsed_offer_no_longer_blocks() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let lapsed = offered(&mut h, "sup1", &token, "bank1", DAY_MS);
    h.advance(DAY_MS);
    h.rejects("bank1", client::discount_token(&lapsed, "0.05"), "offer_expired");
    let fresh = offered(&mut h, "sup1", &token, "bank2", DAY_MS);
    h.ok("sup1", client::withdraw_offer(&fresh));
    h.advance(1);
    h.rejects("bank1", client::discount_token(&lapsed, "0.05"), "offer_expired");
    h.ok("sup1", client::transfer_token(&token, "sup2", "1000.00"));
    assert_eq!(h.token(&token).holder, "sup2");
}

// Goal: only the bank the offer names discounts it, at a well-formed rate no higher than the
// offer's maximum (equal is fine).
#[test]
fn discount_by_the_named_bank_within_the_rate() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let expires = h.now_ms + DAY_MS;
    let offer_id =
        h.ok("sup1", client::offer_token(&token, "bank1", "0.05", expires)).created_ids[0].clone();
    h.rejects("sup1", client::discount_token(&offer_id, "0.04"), "unauthorized");
    for signer in ["bank2", "core", "sup2"] {
        h.rejects(signer, client::discount_token(&offer_id, "0.04"), "not_found");
    }
    h.rejects("bank1", client::discount_token(&offer_id, "0.0500001"), "rate_above_offer");
    h.rejects("bank1", client::discount_token(&offer_id, "0.06"), "rate_above_offer");
    for rate in ["1.5", "-0.01", "x", ""] {
        h.rejects("bank1", client::discount_token(&offer_id, rate), "invalid_rate");
    }
    h.rejects("bank1", client::discount_token("of-missing", "0.04"), "not_found");
    h.ok("bank1", client::discount_token(&offer_id, "0.05"));
}

// Goal: the bank becomes the holder and the ledger records the financing with proceeds =
// face x (1 - rate x days / 360), days = whole days from ledger time to maturity, rounded
// half-even to 0.01.
#[test]
fn discount_proceeds_on_known_examples() {
    let mut h = world();
    // 100,000.00 with 60 whole days left (60.5 days, rounded down) at 6%:
    // 100,000 x (1 - 0.06 x 60 / 360) = 99,000.00.
    let token = accepted_token(&mut h, "1", "100000.00");
    h.advance(29 * DAY_MS + DAY_MS / 2);
    let offer_id = offered(&mut h, "sup1", &token, "bank1", DAY_MS);
    h.ok("bank1", client::discount_token(&offer_id, "0.06"));
    let financing = query::financing(&h.chain.store, &offer_id).unwrap().unwrap();
    assert_eq!(financing.days, 60);
    assert_eq!(financing.proceeds, "99000.00");
    assert_eq!((financing.seller.as_str(), financing.bank.as_str()), ("sup1", "bank1"));
    assert_eq!((financing.face_value.as_str(), financing.obligor.as_str()), ("100000.00", "core"));
    assert_eq!(financing.annual_rate, "0.06");
    let token = h.token(&token);
    assert_eq!((token.holder.as_str(), token.holder_changes), ("bank1", 1));
    assert_eq!(offer(&h, &offer_id).status, OfferStatus::Discounted as i32);

    // 10.00 with one whole day left at 54%: 10 x (1 - 0.54 / 360) = 9.985 exactly, a tie that
    // half-even rounds to 9.98 (half-up would give 9.99).
    let inv = delivered_invoice(&mut h, "2", "10.00");
    let maturity = h.now_ms + 2 * DAY_MS - 1;
    let small = accept(&mut h, "core", &inv, maturity);
    let offer_id =
        h.ok("sup1", client::offer_token(&small, "bank2", "0.6", h.now_ms + 60_000)).created_ids[0]
            .clone();
    h.ok("bank2", client::discount_token(&offer_id, "0.54"));
    let financing = query::financing(&h.chain.store, &offer_id).unwrap().unwrap();
    assert_eq!((financing.days, financing.proceeds.as_str()), (1, "9.98"));
}

// Goal: an offer is discounted once (a token is discounted at most once per holder change);
// the bank that now holds the token may offer it on, which is a new holder change.
#[test]
fn discount_once_per_holder_change() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let offer_id = offered(&mut h, "sup1", &token, "bank1", DAY_MS);
    h.ok("bank1", client::discount_token(&offer_id, "0.05"));
    h.rejects("bank1", client::discount_token(&offer_id, "0.05"), "offer_not_open");
    h.rejects("bank1", client::discount_token(&offer_id, "0.01"), "offer_not_open");
    h.rejects("sup1", client::withdraw_offer(&offer_id), "offer_not_open");
    let onward = offered(&mut h, "bank1", &token, "bank2", DAY_MS);
    h.ok("bank2", client::discount_token(&onward, "0.05"));
    assert_eq!(query::financings(&h.chain.store).unwrap().len(), 2);
    assert_eq!(h.token(&token).holder_changes, 2);
}

// Goal: a rate and tenor that would leave no positive proceeds are refused.
#[test]
fn discount_without_positive_proceeds_is_refused() {
    let mut h = world();
    let inv = delivered_invoice(&mut h, "1", "1000.00");
    let maturity = h.now_ms + 400 * DAY_MS;
    let token = accept(&mut h, "core", &inv, maturity);
    let expires = h.now_ms + DAY_MS;
    let offer_id =
        h.ok("sup1", client::offer_token(&token, "bank1", "1", expires)).created_ids[0].clone();
    h.rejects("bank1", client::discount_token(&offer_id, "1"), "non_positive_proceeds");
    h.rejects("bank1", client::discount_token(&offer_id, "0.9"), "non_positive_proceeds");
    h.ok("bank1", client::discount_token(&offer_id, "0.5"));
}

// ---------------------------------------------------------------------------------------------
// Settlement
// ---------------------------------------------------------------------------------------------

// Goal: only the token's obligor settles it, with a payment reference; the token must exist.
#[test]
fn settle_only_by_the_obligor() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    for signer in ["sup1", "reg"] {
        h.rejects(signer, client::settle_token(&token, "PAY-1"), "unauthorized");
    }
    for signer in ["sup2", "bank1"] {
        h.rejects(signer, client::settle_token(&token, "PAY-1"), "not_found");
    }
    h.rejects("core", client::settle_token("tk-missing", "PAY-1"), "not_found");
    h.rejects("core", client::settle_token(&token, ""), "invalid_argument");
    h.ok("core", client::settle_token(&token, "PAY-1"));
    let settled = h.token(&token);
    assert_eq!(settled.status, TokenStatus::Settled as i32);
    assert_eq!(
        (settled.settled_to.as_str(), settled.payment_reference.as_str()),
        ("sup1", "PAY-1")
    );
}

// Goal: a token is settled once, and a settled token never moves again.
#[test]
fn settle_once() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("core", client::settle_token(&token, "PAY-1"));
    h.rejects("core", client::settle_token(&token, "PAY-2"), "token_not_live");
    h.rejects("sup1", client::transfer_token(&token, "sup2", "1000.00"), "token_not_live");
    let expires = h.now_ms + DAY_MS;
    h.rejects("sup1", client::offer_token(&token, "bank1", "0.1", expires), "token_not_live");
    assert_eq!(exposure(&h, "core", "EUR").0, Decimal::ZERO);
}

// Goal: settling a token with an open offer closes the offer, which can then not be discounted.
#[test]
fn settlement_closes_an_open_offer() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    let offer_id = offered(&mut h, "sup1", &token, "bank1", DAY_MS);
    h.ok("core", client::settle_token(&token, "PAY-1"));
    assert_eq!(offer(&h, &offer_id).status, OfferStatus::Closed as i32);
    assert_eq!(h.token(&token).open_offer_id, "");
    h.rejects("bank1", client::discount_token(&offer_id, "0.05"), "offer_not_open");
    h.rejects("sup1", client::withdraw_offer(&offer_id), "offer_not_open");
}

// Goal: settlement lowers the obligor's unsettled exposure by the face value, piece by piece
// after a split, pays whoever holds each piece, and so frees credit.
#[test]
fn settlement_lowers_exposure() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "80000.00");
    let pieces = h.ok("sup1", client::transfer_token(&token, "sup2", "30000.00")).created_ids;
    assert_eq!(exposure(&h, "core", "EUR").0, dec("80000.00"));
    h.ok("sup2", client::transfer_token(&pieces[0], "bank2", "30000.00"));
    h.ok("core", client::settle_token(&pieces[0], "PAY-1"));
    assert_eq!(h.token(&pieces[0]).settled_to, "bank2");
    assert_eq!(exposure(&h, "core", "EUR").0, dec("50000.00"));
    h.ok("core", client::settle_token(&pieces[1], "PAY-2"));
    assert_eq!(h.token(&pieces[1]).settled_to, "sup1");
    assert_eq!(exposure(&h, "core", "EUR").0, Decimal::ZERO);
}

// ---------------------------------------------------------------------------------------------
// Access grants
// ---------------------------------------------------------------------------------------------

// Goal: a party grants another read access to one scope of its records until an expiry; a
// re-grant of the same scope replaces the grant; ALL covers every scope; expired grants lapse.
#[test]
fn grant_and_regrant_access() {
    let mut h = world();
    let (ten, twenty) = (h.now_ms + 10 * DAY_MS, h.now_ms + 20 * DAY_MS);
    let access =
        |h: &Recorded, scope| query::has_access(&h.chain.store, "core", "bank2", scope).unwrap();
    h.ok("core", client::grant_access("bank2", AccessScope::Credit, ten));
    assert!(access(&h, AccessScope::Credit));
    assert!(!access(&h, AccessScope::Trade));
    h.ok("core", client::grant_access("bank2", AccessScope::Credit, twenty));
    let grants = query::grants_by_owner(&h.chain.store, "core").unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].expires_at_ms, twenty);
    // Access runs until the replaced, later expiry.
    h.advance(15 * DAY_MS);
    h.ok("core", client::grant_access("bank2", AccessScope::All, h.now_ms + DAY_MS));
    assert!(access(&h, AccessScope::Credit) && access(&h, AccessScope::Trade));
    assert!(access(&h, AccessScope::Receivables));
    h.advance(2 * DAY_MS);
    h.ok("sup1", client::grant_access("core", AccessScope::Trade, h.now_ms + DAY_MS));
    assert!(access(&h, AccessScope::Credit));
    assert!(!access(&h, AccessScope::Trade));
}

// Goal: a party revokes a grant it made; revoking a grant that does not exist (or no longer
// exists) is refused, and so is an unknown scope.
#[test]
fn revoke_access() {
    let mut h = world();
    let later = h.now_ms + 10 * DAY_MS;
    h.ok("core", client::grant_access("bank2", AccessScope::Credit, later));
    h.rejects("core", client::revoke_access("bank2", AccessScope::Trade), "not_found");
    h.rejects("core", client::revoke_access("bank1", AccessScope::Credit), "not_found");
    h.rejects("sup1", client::revoke_access("bank2", AccessScope::Credit), "not_found");
    h.rejects("core", client::revoke_access("bank/2", AccessScope::Credit), "invalid_id");
    let unknown = Command::RevokeAccess(pb::RevokeAccess { grantee: "bank2".into(), scope: 42 });
    h.rejects("core", unknown, "invalid_argument");
    h.ok("core", client::revoke_access("bank2", AccessScope::Credit));
    assert!(!query::has_access(&h.chain.store, "core", "bank2", AccessScope::Credit).unwrap());
    assert!(query::grants_by_owner(&h.chain.store, "core").unwrap().is_empty());
    h.rejects("core", client::revoke_access("bank2", AccessScope::Credit), "not_found");
}

// Goal: a grant goes to another existing, unfrozen, non-registrar party, for a known scope, with
// an expiry after ledger time.
#[test]
fn grant_access_rules() {
    let mut h = world();
    let later = h.now_ms + DAY_MS;
    h.rejects("core", client::grant_access("core", AccessScope::All, later), "same_party");
    for scope in [AccessScope::Unspecified as i32, 5, 99, -3] {
        let command = Command::GrantAccess(pb::GrantAccess {
            grantee: "bank2".into(),
            scope,
            expires_at_ms: later,
        });
        h.rejects("core", command, "invalid_argument");
    }
    h.rejects("core", client::grant_access("ghost", AccessScope::All, later), "not_found");
    h.rejects("core", client::grant_access("registrar", AccessScope::All, later), "wrong_role");
    for expires in [0, h.now_ms] {
        h.rejects("core", client::grant_access("bank2", AccessScope::All, expires), "invalid_time");
    }
    h.ok("reg", client::set_frozen("bank2", true));
    h.rejects("core", client::grant_access("bank2", AccessScope::All, later), "party_frozen");
    for grantee in ["bank1", "sup1", "carrier", "reg"] {
        h.ok("core", client::grant_access(grantee, AccessScope::Trade, later));
    }
    assert_eq!(query::grants_by_owner(&h.chain.store, "core").unwrap().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------------------------

/// A distinct nonce for transactions a test signs by hand, far from the harness's own.
fn nonce(n: u64) -> u64 {
    1_000_000 + n
}

// Goal: a transaction signed for another chain is refused, even with a valid signature.
#[test]
fn wrong_chain_id_is_rejected() {
    let mut h = world();
    let elsewhere = Identity::new("scf-other", "sup1", SigningKey::from_seed("sup1"));
    let command = client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS);
    let tx = elsewhere.sign(h.now_ms + 60_000, nonce(1), command.clone());
    h.rejects_tx(tx, "wrong_chain");
    h.ok("sup1", command);
}

// Goal: valid_until must not have passed (equal to ledger time is still valid) and must be at
// most one hour ahead of ledger time (exactly one hour is valid).
#[test]
fn valid_until_window() {
    let mut h = world();
    h.advance(5_000);
    let now = h.now_ms;
    let sup1 = h.identity("sup1").clone();
    let command = |n| client::grant_access("bank1", AccessScope::Trade, now + DAY_MS + n);
    h.rejects_tx(sup1.sign(now - 1, nonce(1), command(1)), "expired");
    h.rejects_tx(sup1.sign(0, nonce(2), command(2)), "expired");
    h.rejects_tx(sup1.sign(now + 3_600_001, nonce(3), command(3)), "valid_until_too_far");
    h.rejects_tx(sup1.sign(u64::MAX, nonce(4), command(4)), "valid_until_too_far");
    assert_applied(&h.block(vec![sup1.sign(now, nonce(5), command(5))])[0]);
    assert_applied(&h.block(vec![sup1.sign(now + 3_600_000, nonce(6), command(6))])[0]);
}

// Goal: a transaction whose hash is already on the ledger is refused, whether it was applied in
// an earlier block or earlier in the same block.
#[test]
fn duplicate_transaction_is_rejected() {
    let mut h = world();
    let tx = h.tx("sup1", client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS));
    assert_applied(&h.block(vec![tx.clone()])[0]);
    let result = h.rejects_tx(tx, "duplicate_transaction");
    assert!(result.reject_message.contains(&format!("height {}", h.chain.blocks.len() - 1)));

    let tx = h.tx("sup1", client::grant_access("bank2", AccessScope::Trade, h.now_ms + DAY_MS));
    let results = h.block(vec![tx.clone(), tx]);
    assert_applied(&results[0]);
    assert_rejected(&results[1], "duplicate_transaction");
}

// Goal: a transaction from a party that is not registered is refused, and does not burn its
// hash: once the party is registered with that key, the same transaction applies.
#[test]
fn unknown_signer_is_rejected() {
    let mut h = world();
    let ghost = Identity::new(CHAIN_ID, "ghost", SigningKey::from_seed("ghost"));
    let tx = ghost.sign(
        h.now_ms + 60_000,
        nonce(1),
        client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS),
    );
    h.rejects_tx(tx.clone(), "unknown_signer");
    let odd = Identity::new(CHAIN_ID, "bad/id", SigningKey::from_seed("ghost"));
    h.rejects_tx(
        odd.sign(h.now_ms + 60_000, nonce(2), client::set_frozen("sup1", true)),
        "unknown_signer",
    );
    h.register("ghost", Role::Enterprise);
    assert_applied(&h.block(vec![tx])[0]);
}

// Goal: a signature that does not verify against the signer's key is refused and does NOT burn
// the transaction's hash: the same body with a good signature afterwards is applied (in a later
// block, or later in the same block), so nobody can block a party's transaction by front-running
// it with a forged signature.
#[test]
fn bad_signature_does_not_burn_the_hash() {
    let mut h = world();
    let sup1 = SigningKey::from_seed("sup1");
    let mallory = SigningKey::from_seed("mallory");
    let now = h.now_ms;
    let body = |n| {
        tx::body(
            CHAIN_ID,
            "sup1",
            now + 60_000,
            nonce(n),
            client::grant_access("bank1", AccessScope::Trade, now + DAY_MS),
        )
    };
    let forged = tx::sign(&body(1), &mallory);
    let good = tx::sign(&body(1), &sup1);
    assert_eq!(tx::tx_hash(&forged), tx::tx_hash(&good));
    h.rejects_tx(forged.clone(), "bad_signature");
    // sup1's own signature, but over another body.
    let transplanted =
        SignedTx { body: good.body.clone(), signature: tx::sign(&body(2), &sup1).signature };
    h.rejects_tx(transplanted, "bad_signature");
    assert_applied(&h.block(vec![good.clone()])[0]);
    let found = query::transaction(&h.chain.store, &tx::tx_hash(&good)).unwrap().unwrap();
    let height = u64::try_from(h.chain.blocks.len()).unwrap();
    assert_eq!((found.height, found.result.applied), (height, true));
    h.rejects_tx(forged, "duplicate_transaction");

    let forged = tx::sign(&body(3), &mallory);
    let good = tx::sign(&body(3), &sup1);
    let results = h.block(vec![forged, good]);
    assert_rejected(&results[0], "bad_signature");
    assert_applied(&results[1]);
    audit(&h);
}

/// The order n of secp256k1, big-endian.
const CURVE_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// The same signature with s replaced by n - s: valid ECDSA, but the high-S twin the contract
/// refuses.
fn high_s_twin(signature: &[u8]) -> Vec<u8> {
    let mut twin = signature.to_vec();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut digit = i16::from(CURVE_ORDER[i]) - i16::from(signature[32 + i]) - borrow;
        borrow = i16::from(digit < 0);
        digit += 256 * borrow;
        twin[32 + i] = u8::try_from(digit).unwrap();
    }
    twin
}

// Goal: bytes that are not a well-formed signed transaction (undecodable or oversized body, no
// command, a signature of the wrong length or in high-S form) are refused as malformed, are still
// recorded in the block, and do not burn the hash of the well-formed transaction.
#[test]
fn malformed_transactions_are_rejected() {
    let mut h = world();
    let garbage = SignedTx { body: vec![0xff; 5], signature: vec![0; 64] };
    h.rejects_tx(garbage.clone(), "malformed");
    h.rejects_tx(garbage, "malformed");
    let oversized = SignedTx { body: vec![0; tx::TX_BODY_BYTES_MAX + 1], signature: vec![0; 64] };
    h.rejects_tx(oversized, "malformed");
    let sup1 = SigningKey::from_seed("sup1");
    let mut no_command =
        tx::body(CHAIN_ID, "sup1", h.now_ms + 60_000, nonce(1), client::set_frozen("x", true));
    no_command.command = None;
    h.rejects_tx(tx::sign(&no_command, &sup1), "malformed");

    let command = client::grant_access("bank1", AccessScope::Trade, h.now_ms + DAY_MS);
    let good = tx::sign(&tx::body(CHAIN_ID, "sup1", h.now_ms + 60_000, nonce(2), command), &sup1);
    for signature in [
        Vec::new(),
        good.signature[..63].to_vec(),
        [good.signature.as_slice(), &[0]].concat(),
        high_s_twin(&good.signature),
    ] {
        h.rejects_tx(SignedTx { body: good.body.clone(), signature }, "malformed");
    }
    let block = h.chain.blocks.last().unwrap();
    assert_eq!(block.results[0].reject_code, "malformed");
    assert_eq!(block.txs[0].body, good.body);
    assert_applied(&h.block(vec![good])[0]);
    audit(&h);
}

// Goal: a transaction whose signature verified is final even when rejected: resubmitting its
// exact bytes later is a replay (duplicate_transaction), not a retry; a client retries with a new
// nonce. This pins the ledger's reading of "a transaction whose hash was already applied".
#[test]
fn authenticated_rejection_is_final() {
    let mut h = world();
    let token = accepted_token(&mut h, "1", "1000.00");
    h.ok("reg", client::set_frozen("sup1", true));
    let tx = h.tx("sup1", client::transfer_token(&token, "sup2", "10.00"));
    h.rejects_tx(tx.clone(), "signer_frozen");
    let found = query::transaction(&h.chain.store, &tx::tx_hash(&tx)).unwrap().unwrap();
    assert!(!found.result.applied);
    assert_eq!(found.result.reject_code, "signer_frozen");
    assert_eq!(found.tx, tx);
    h.ok("reg", client::set_frozen("sup1", false));
    h.rejects_tx(tx, "duplicate_transaction");
    h.ok("sup1", client::transfer_token(&token, "sup2", "10.00"));
}

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

// Goal: what a command accumulates is bounded: an order has at most LINES_MAX lines, a bank may
// grant one obligor at most BANK_LINES_PER_OBLIGOR_MAX unexpired credit lines (a lapsed line makes
// room, and one bank's full quota does not stop another bank), and a block holds at most
// BLOCK_TXS_MAX transactions (refused as a whole, which is not a rejection).
#[test]
fn collections_are_bounded() {
    let mut h = world();
    let skus: Vec<String> = (0..=LINES_MAX).map(|i| format!("SKU{i}")).collect();
    let lines: Vec<(&str, u64, &str)> = skus.iter().map(|sku| (sku.as_str(), 1, "1.00")).collect();
    let po =
        |lines: &[(&str, u64, &str)]| client::create_purchase_order("PO-1", "sup1", lines, "EUR");
    h.rejects("core", po(&lines), "invalid_argument");
    h.ok("core", po(&lines[..LINES_MAX]));

    let (soon, later) = (h.now_ms + DAY_MS, h.now_ms + 30 * DAY_MS);
    let grant = |id: &str, expires| client::grant_credit_line(id, "sup1", "1.00", "EUR", expires);
    let mut txs = vec![h.tx("bank1", grant("C0", soon))];
    for i in 1..BANK_LINES_PER_OBLIGOR_MAX {
        txs.push(h.tx("bank1", grant(&format!("C{i}"), later)));
    }
    assert!(h.block(txs).iter().all(|result| result.applied));
    h.rejects("bank1", grant("C-extra", later), "invalid_argument");
    h.ok("bank2", grant("C-other-bank", later));
    h.advance(DAY_MS);
    h.ok("bank1", grant("C-extra", later));
    assert_eq!(
        query::credit_lines(&h.chain.store, "sup1").unwrap().len(),
        BANK_LINES_PER_OBLIGOR_MAX + 1
    );

    let junk = SignedTx { body: vec![0xff], signature: Vec::new() };
    let oversized =
        h.chain.ledger.apply_block(&h.chain.store, h.now_ms, vec![junk; BLOCK_TXS_MAX + 1]);
    assert_eq!(oversized.unwrap_err(), ApplyError::TooManyTransactions(BLOCK_TXS_MAX + 1));
}

// ---------------------------------------------------------------------------------------------
// Ledger time
// ---------------------------------------------------------------------------------------------

// Goal: ledger time never goes backwards: a block proposed with an earlier time than the tip's
// (or than genesis) gets the tip's time, and the envelope checks use that time, not the proposed
// one; the chain still verifies and replays.
#[test]
fn ledger_time_never_goes_backwards() {
    let mut h = Recorded(Driver::new(CHAIN_ID));
    // Before genesis: the first block takes the genesis time.
    h.now_ms = T0_MS - 5_000;
    h.register("sup1", Role::Enterprise);
    assert_eq!(last_block_time_ms(&h), T0_MS);

    h.now_ms = T0_MS + 10_000;
    h.register("sup2", Role::Enterprise);
    assert_eq!(last_block_time_ms(&h), T0_MS + 10_000);

    // The leader proposes 5 s earlier; a transaction valid until between the two is expired at
    // the ledger's time.
    h.now_ms = T0_MS + 5_000;
    let sup1 = h.identity("sup1").clone();
    let late = sup1.sign(T0_MS + 8_000, nonce(1), client::set_frozen("sup2", true));
    let fine = sup1.sign(
        T0_MS + 20_000,
        nonce(2),
        client::grant_access("sup2", AccessScope::Trade, T0_MS + DAY_MS),
    );
    let results = h.block(vec![late, fine]);
    assert_rejected(&results[0], "expired");
    assert_applied(&results[1]);
    assert_eq!(last_block_time_ms(&h), T0_MS + 10_000);
    let tip = query::tip(&h.chain.store).unwrap().unwrap();
    assert_eq!(tip.time_ms, T0_MS + 10_000);
    // Records stamped in that block carry the ledger time too.
    assert_eq!(
        query::grants_by_owner(&h.chain.store, "sup1").unwrap()[0].granted_at_ms,
        T0_MS + 10_000
    );

    // Time then moves on from the tip, never below it.
    h.now_ms = T0_MS + 12_000;
    h.register("sup3", Role::Enterprise);
    assert_eq!(last_block_time_ms(&h), T0_MS + 12_000);
    audit(&h);
}

// ---------------------------------------------------------------------------------------------
// Coverage of the rejection codes
// ---------------------------------------------------------------------------------------------

/// Every test of this file but the coverage test itself.
const RULE_TESTS: &[(&str, fn())] = &[
    ("register_party_only_by_registrar", register_party_only_by_registrar),
    ("register_party_ids_are_unique", register_party_ids_are_unique),
    ("register_party_refuses_bad_ids_and_names", register_party_refuses_bad_ids_and_names),
    (
        "register_party_refuses_unknown_or_reserved_roles",
        register_party_refuses_unknown_or_reserved_roles,
    ),
    ("register_party_refuses_invalid_public_keys", register_party_refuses_invalid_public_keys),
    ("rotate_key_replaces_the_signing_key", rotate_key_replaces_the_signing_key),
    ("rotate_key_refuses_invalid_keys", rotate_key_refuses_invalid_keys),
    ("set_frozen_only_by_registrar_or_regulator", set_frozen_only_by_registrar_or_regulator),
    ("frozen_signer_is_rejected", frozen_signer_is_rejected),
    ("frozen_holders_tokens_cannot_move", frozen_holders_tokens_cannot_move),
    ("nothing_moves_to_a_frozen_party", nothing_moves_to_a_frozen_party),
    ("no_settlement_to_a_frozen_holder", no_settlement_to_a_frozen_holder),
    ("credit_line_grant_rules", credit_line_grant_rules),
    ("credit_limit_is_the_sum_of_unexpired_lines", credit_limit_is_the_sum_of_unexpired_lines),
    (
        "expired_and_foreign_currency_lines_are_ignored",
        expired_and_foreign_currency_lines_are_ignored,
    ),
    ("regranting_a_line_replaces_it", regranting_a_line_replaces_it),
    ("purchase_order_parties", purchase_order_parties),
    ("purchase_order_lines", purchase_order_lines),
    ("shipment_only_by_seller", shipment_only_by_seller),
    ("shipment_lines", shipment_lines),
    ("over_shipment_across_several_shipments", over_shipment_across_several_shipments),
    ("shipment_carrier_must_be_logistics", shipment_carrier_must_be_logistics),
    ("shipment_document_hash_used_once", shipment_document_hash_used_once),
    ("delivery_is_confirmed_by_the_buyer_once", delivery_is_confirmed_by_the_buyer_once),
    (
        "carrier_attestation_is_separate_and_not_enough",
        carrier_attestation_is_separate_and_not_enough,
    ),
    ("invoice_only_by_seller", invoice_only_by_seller),
    (
        "invoice_shipments_are_delivered_and_of_the_order",
        invoice_shipments_are_delivered_and_of_the_order,
    ),
    ("shipment_is_invoiced_at_most_once", shipment_is_invoiced_at_most_once),
    (
        "invoice_amount_is_at_most_the_delivered_value",
        invoice_amount_is_at_most_the_delivered_value,
    ),
    ("invoice_document_hash_is_used_once", invoice_document_hash_is_used_once),
    ("invoice_amount_and_fields", invoice_amount_and_fields),
    ("accept_or_reject_only_by_buyer", accept_or_reject_only_by_buyer),
    ("accept_mints_the_receivable_token", accept_mints_the_receivable_token),
    ("accept_maturity_window", accept_maturity_window),
    ("accept_beyond_credit_is_refused", accept_beyond_credit_is_refused),
    ("invoice_is_decided_once", invoice_is_decided_once),
    ("rejected_invoice_keeps_its_shipments", rejected_invoice_keeps_its_shipments),
    ("full_transfer_keeps_the_token_id", full_transfer_keeps_the_token_id),
    (
        "split_mints_two_children_summing_to_the_parent",
        split_mints_two_children_summing_to_the_parent,
    ),
    ("retired_token_never_moves_again", retired_token_never_moves_again),
    ("transfer_amount_rules", transfer_amount_rules),
    ("transfer_parties", transfer_parties),
    ("token_at_maturity_only_settles", token_at_maturity_only_settles),
    ("offer_by_the_holder_to_a_bank", offer_by_the_holder_to_a_bank),
    ("offer_rate_and_expiry", offer_rate_and_expiry),
    ("token_under_offer_is_pinned_until_withdrawn", token_under_offer_is_pinned_until_withdrawn),
    ("lapsed_offer_no_longer_blocks", lapsed_offer_no_longer_blocks),
    ("discount_by_the_named_bank_within_the_rate", discount_by_the_named_bank_within_the_rate),
    ("discount_proceeds_on_known_examples", discount_proceeds_on_known_examples),
    ("discount_once_per_holder_change", discount_once_per_holder_change),
    (
        "discount_without_positive_proceeds_is_refused",
        discount_without_positive_proceeds_is_refused,
    ),
    ("settle_only_by_the_obligor", settle_only_by_the_obligor),
    ("settle_once", settle_once),
    ("settlement_closes_an_open_offer", settlement_closes_an_open_offer),
    ("settlement_lowers_exposure", settlement_lowers_exposure),
    ("grant_and_regrant_access", grant_and_regrant_access),
    ("revoke_access", revoke_access),
    ("grant_access_rules", grant_access_rules),
    ("wrong_chain_id_is_rejected", wrong_chain_id_is_rejected),
    ("valid_until_window", valid_until_window),
    ("duplicate_transaction_is_rejected", duplicate_transaction_is_rejected),
    ("unknown_signer_is_rejected", unknown_signer_is_rejected),
    ("bad_signature_does_not_burn_the_hash", bad_signature_does_not_burn_the_hash),
    ("malformed_transactions_are_rejected", malformed_transactions_are_rejected),
    ("authenticated_rejection_is_final", authenticated_rejection_is_final),
    ("collections_are_bounded", collections_are_bounded),
    ("ledger_time_never_goes_backwards", ledger_time_never_goes_backwards),
];

/// The names of the `#[test]` functions declared in this file, each checked to open with its
/// `// Goal:` comment.
fn declared_tests() -> BTreeSet<String> {
    let source = include_str!("rules.rs");
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    let mut names = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "#[test]" {
            continue;
        }
        let name = lines[i + 1]
            .strip_prefix("fn ")
            .and_then(|rest| rest.split('(').next())
            .unwrap_or_else(|| panic!("#[test] on line {} is not followed by a fn", i + 1));
        let comment_start =
            lines[..i].iter().rposition(|l| !l.starts_with("//")).map_or(0, |p| p + 1);
        assert!(
            comment_start < i && lines[comment_start].starts_with("// Goal: "),
            "test {name} does not open with a `// Goal:` comment"
        );
        names.insert(name.to_owned());
    }
    names
}

// Goal: every rejection code of `ALL_CODES` is produced (and asserted) by at least one test, so
// a new code without a test fails CI; no test produces a code outside the list; and every test of
// this file is run here, so a test added without listing it is caught too.
#[test]
fn every_rejection_code_is_produced() {
    let mut declared = declared_tests();
    assert!(declared.remove("every_rejection_code_is_produced"));
    let listed: BTreeSet<String> = RULE_TESTS.iter().map(|(name, _)| (*name).to_owned()).collect();
    let unlisted: Vec<&String> = declared.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&declared).collect();
    assert!(unlisted.is_empty(), "add these tests to RULE_TESTS: {unlisted:?}");
    assert!(stale.is_empty(), "RULE_TESTS names tests that do not exist: {stale:?}");

    PRODUCED.with(|produced| produced.borrow_mut().clear());
    let mut failed = Vec::new();
    for (name, test) in RULE_TESTS {
        if std::panic::catch_unwind(*test).is_err() {
            failed.push(*name);
        }
    }
    let produced = PRODUCED.with(|produced| produced.borrow().clone());
    let missing: Vec<&str> =
        ALL_CODES.iter().copied().filter(|code| !produced.contains(*code)).collect();
    assert!(
        missing.is_empty(),
        "rejection codes no test produced: {missing:?} \
         (tests that failed while collecting: {failed:?})"
    );
    let unknown: Vec<&String> =
        produced.iter().filter(|code| !ALL_CODES.contains(&code.as_str())).collect();
    assert!(unknown.is_empty(), "codes outside ALL_CODES: {unknown:?}");
}
