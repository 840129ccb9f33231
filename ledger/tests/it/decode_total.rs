//! Decoding and applying are total: whatever bytes or bodies arrive, `DecodedTx::decode` gives a
//! value or a typed error and `Ledger::apply_block` gives one typed result per transaction, never
//! a panic, and a rejected transaction leaves the domain state as it was.
//!
//! These are the stable-toolchain twins of the cargo-fuzz targets in `ledger/fuzz/`: proptest
//! throws random bytes, mutations of valid signed transactions (bit flips, overwrites,
//! truncations, extensions, insertions) and bodies with arbitrary field values at the decoder and
//! at a ledger holding a small but complete state (parties, credit, orders, shipments, invoices,
//! live tokens, an open offer, an access grant). Field values are drawn both from the ids that
//! exist and from anything at all, so the rules are reached as well as the envelope checks.

use crate::common;

use std::sync::OnceLock;

use common::*;
use ledger::client;
use ledger::crypto::{SigningKey, sha256};
use ledger::pb::{self, AccessScope, Block, Role, SignedTx, TxBody, TxResult, tx_body::Command};
use ledger::tx::{DecodeError, DecodedTx, SIGNED_TX_BYTES_MAX, TX_BODY_BYTES_MAX};
use ledger::{MemStore, replay_chain};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use prost::Message;
use testkit::chain::domain_state;

const PARTY_IDS: &[&str] =
    &["registrar", "core", "sup1", "sup2", "bank1", "bank2", "carrier", "reg"];

// ----- the base state every case starts from -----

/// The standard cast plus: token A (`sup1`, free), token B (`sup1`, under an open offer to
/// `bank1`), an issued invoice `INV-3`, on `PO-4` (`sup2` sells 20 `BOLT` to `core`) an
/// undelivered shipment `SH-4` and a delivered, uninvoiced `SH-5`, and an access grant from
/// `sup1` to `bank1`. Built once; cases apply blocks on top without changing it.
struct Base {
    h: Driver,
    token_a: String,
    token_b: String,
    offer: String,
    /// Every id that names a record, for strategies that should hit existing state.
    ids: Vec<String>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut h = cast();
        let token_a = accepted_token(&mut h, "1", "80000.00");
        let token_b = accepted_token(&mut h, "2", "20000.00");
        let expires = h.now_ms + DAY_MS;
        let offer = h.ok("sup1", client::offer_token(&token_b, "bank1", "0.05", expires));
        let offer = offer.created_ids[0].clone();
        delivered_invoice(&mut h, "3", "5000.00");
        h.ok("core", client::create_purchase_order("PO-4", "sup2", &[("BOLT", 20, "1.00")], "EUR"));
        h.ok(
            "sup2",
            client::record_shipment("SH-4", "PO-4", &[("BOLT", 5)], "carrier", doc("SH-4")),
        );
        h.ok("sup2", client::record_shipment("SH-5", "PO-4", &[("BOLT", 5)], "", doc("SH-5")));
        h.ok("core", client::confirm_delivery("SH-5"));
        let year = h.now_ms + 365 * DAY_MS;
        h.ok("sup1", client::grant_access("bank1", AccessScope::Trade, year));
        let mut ids: Vec<String> = PARTY_IDS.iter().map(|p| (*p).to_owned()).collect();
        for id in ["L1", "PO-1", "PO-2", "PO-3", "PO-4", "SH-1", "SH-2", "SH-3", "SH-4", "SH-5"] {
            ids.push(id.to_owned());
        }
        for id in ["INV-1", "INV-2", "INV-3", "WIDGET", "BOLT"] {
            ids.push(id.to_owned());
        }
        ids.extend([token_a.clone(), token_b.clone(), offer.clone()]);
        Base { h, token_a, token_b, offer, ids }
    })
}

// ----- strategies: field values that exist, that almost fit, and anything at all -----

fn id() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(base().ids.clone()),
        2 => "[A-Za-z0-9._:-]{1,64}",
        1 => "[A-Za-z0-9/]{1,8}",
        1 => "[A-Za-z0-9]{65,70}",
        1 => ".{0,80}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[ -~]{1,40}",
        1 => ".{0,300}",
        1 => Just(" ".to_owned()),
        1 => Just("a\u{7}b".to_owned()),
    ]
    .boxed()
}

/// Amounts that parse, that almost parse, and that are out of range.
const AMOUNTS: &[&str] = &[
    "0",
    "0.00",
    "0.01",
    "1",
    "100.00",
    "5000.00",
    "15000.00",
    "80000.00",
    "1000000.00",
    "999999999999999.99",
    "1000000000000000",
    "1.505",
    "1.500",
    "-1",
    "+1",
    "1e3",
    " 1",
    "1.",
    ".5",
    "NaN",
];

/// Mostly a value of `listed`, then (`shaped.0` times as often as anything) a string of the regex
/// `shaped.1`, sometimes anything of the regex `anything`.
fn listed_or_shaped(
    listed: &'static [&'static str],
    shaped: (u32, &'static str),
    anything: &'static str,
) -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(listed).prop_map(str::to_owned),
        shaped.0 => shaped.1,
        1 => anything,
    ]
    .boxed()
}

fn amount() -> BoxedStrategy<String> {
    listed_or_shaped(AMOUNTS, (2, "[0-9]{1,22}(\\.[0-9]{0,12})?"), ".{0,24}")
}

const RATES: &[&str] = &["0", "0.04", "0.05", "0.0425", "0.06", "1", "1.01", "0.123456789", "-0.1"];

fn rate() -> BoxedStrategy<String> {
    listed_or_shaped(RATES, (2, "[0-9]{1,3}(\\.[0-9]{0,12})?"), ".{0,12}")
}

const CURRENCIES: &[&str] = &["EUR", "USD", "eur", "EU", "EURO", ""];

fn currency() -> BoxedStrategy<String> {
    listed_or_shaped(CURRENCIES, (1, "[A-Z]{3}"), ".{0,5}")
}

/// A time near the base's ledger time, or anything.
fn time_ms() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => (0u64..400).prop_map(|days| T0_MS + days * DAY_MS / 4),
        1 => Just(0u64),
        1 => Just(T0_MS),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn quantity() -> BoxedStrategy<u64> {
    prop_oneof![
        4 => 0u64..=20,
        1 => Just(1_000_000_000u64),
        1 => Just(1_000_000_001u64),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn key_of(seed: &str) -> Vec<u8> {
    SigningKey::from_seed(seed).public_key().to_bytes().to_vec()
}

/// A 33-byte key: a fresh valid one, an existing party's, or bytes that are not a key.
fn public_key() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => "[a-z]{1,8}".prop_map(|seed| key_of(&seed)),
        1 => select(PARTY_IDS).prop_map(key_of),
        1 => prop::collection::vec(any::<u8>(), 33),
        1 => prop::collection::vec(any::<u8>(), 0..70),
    ]
    .boxed()
}

/// A document hash: fresh, one already used by the base state, or not 32 bytes.
fn document_hash() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => "[a-z0-9-]{1,12}".prop_map(|label| doc(&label).to_vec()),
        1 => Just(doc("SH-4").to_vec()),
        1 => Just(doc("bol-1").to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
    .boxed()
}

fn enum_value(max: i32) -> BoxedStrategy<i32> {
    prop_oneof![4 => 0..=max, 1 => any::<i32>()].boxed()
}

fn order_lines() -> BoxedStrategy<Vec<pb::OrderLine>> {
    let line = (id(), quantity(), amount()).prop_map(|(sku, quantity, unit_price)| pb::OrderLine {
        sku,
        quantity,
        unit_price,
    });
    lines(line)
}

fn shipment_lines() -> BoxedStrategy<Vec<pb::ShipmentLine>> {
    lines((id(), quantity()).prop_map(|(sku, quantity)| pb::ShipmentLine { sku, quantity }))
}

/// Mostly a few lines, sometimes one more than the 100 a command may list.
fn lines<S: Strategy + Clone + 'static>(line: S) -> BoxedStrategy<Vec<S::Value>> {
    prop_oneof![
        9 => prop::collection::vec(line.clone(), 0..4),
        1 => prop::collection::vec(line, 101),
    ]
    .boxed()
}

/// Commands that apply on the base state when signed by their party (alone; inside a block some
/// of them conflict, which is the point).
fn good_commands() -> Vec<(&'static str, Command)> {
    let b = base();
    let newco = SigningKey::from_seed("newco").public_key().to_bytes();
    let month = T0_MS + 30 * DAY_MS;
    vec![
        ("registrar", client::register_party("newco", "NewCo", Role::Bank, &newco)),
        ("sup2", client::rotate_key(&newco)),
        ("reg", client::set_frozen("sup2", true)),
        ("bank2", client::grant_credit_line("L9", "core", "10.00", "USD", month)),
        ("core", client::create_purchase_order("PO-9", "sup1", &[("NUT", 3, "2.50")], "EUR")),
        ("sup2", client::record_shipment("SH-9", "PO-4", &[("BOLT", 5)], "", doc("SH-9"))),
        ("core", client::confirm_delivery("SH-4")),
        ("carrier", client::confirm_delivery("SH-4")),
        ("sup2", client::issue_invoice("INV-9", "PO-4", &["SH-5"], "5.00", month, doc("INV-9"))),
        ("core", client::accept_invoice("INV-3", month)),
        ("core", client::reject_invoice("INV-3", "wrong quantity")),
        ("sup1", client::transfer_token(&b.token_a, "sup2", "30000.00")),
        ("sup1", client::transfer_token(&b.token_a, "bank2", "80000")),
        ("sup1", client::offer_token(&b.token_a, "bank2", "0.06", T0_MS + DAY_MS)),
        ("sup1", client::withdraw_offer(&b.offer)),
        ("bank1", client::discount_token(&b.offer, "0.0425")),
        ("core", client::settle_token(&b.token_b, "SEPA-1")),
        ("core", client::grant_access("reg", AccessScope::All, month)),
        ("sup1", client::revoke_access("bank1", AccessScope::Trade)),
    ]
}

fn good_command() -> BoxedStrategy<(&'static str, Command)> {
    select(good_commands()).boxed()
}

/// Mostly `good`, sometimes anything `arbitrary` gives.
fn or<T: Clone + std::fmt::Debug + 'static>(
    good: T,
    arbitrary: BoxedStrategy<T>,
) -> BoxedStrategy<T> {
    prop_oneof![3 => Just(good), 1 => arbitrary].boxed()
}

/// How `commands` draws the fields of a command.
#[derive(Debug, Clone, Copy)]
enum Fields {
    /// Every field from its strategy: any command, any values.
    Arbitrary,
    /// Mostly the field of the command as `good_commands` has it, sometimes anything its
    /// strategy gives.
    NearGood,
}

impl Fields {
    fn draw<T: Clone + std::fmt::Debug + 'static>(
        self,
        good: T,
        arbitrary: BoxedStrategy<T>,
    ) -> BoxedStrategy<T> {
        match self {
            Fields::Arbitrary => arbitrary,
            Fields::NearGood => or(good, arbitrary),
        }
    }
}

/// Every command with the party that may sign it, each field drawn as `fields` says. One table
/// serves the arbitrary and the near-good commands, so that both cover every command.
fn commands(fields: Fields) -> BoxedStrategy<(&'static str, Command)> {
    let b = base();
    let newco = SigningKey::from_seed("newco").public_key().to_bytes().to_vec();
    let month = T0_MS + 30 * DAY_MS;
    let good_lines =
        vec![pb::OrderLine { sku: "NUT".into(), quantity: 3, unit_price: "2.50".into() }];
    let good_shipment = vec![pb::ShipmentLine { sku: "BOLT".into(), quantity: 5 }];
    let (token_a, token_b, offer) = (b.token_a.clone(), b.token_b.clone(), b.offer.clone());
    let s = |v: &str| v.to_owned();
    // No carrier is a valid choice, so an arbitrary carrier is none half the time.
    let carrier = match fields {
        Fields::Arbitrary => prop_oneof![Just(String::new()), id()].boxed(),
        Fields::NearGood => or(String::new(), id()),
    };
    Union::new([
        (
            fields.draw(s("newco"), id()),
            fields.draw(s("NewCo"), text()),
            fields.draw(Role::Bank as i32, enum_value(5)),
            fields.draw(newco.clone(), public_key()),
        )
            .prop_map(|(party_id, name, role, public_key)| {
                (
                    "registrar",
                    Command::RegisterParty(pb::RegisterParty { party_id, name, role, public_key }),
                )
            })
            .boxed(),
        fields
            .draw(newco, public_key())
            .prop_map(|new_public_key| {
                ("sup2", Command::RotateKey(pb::RotateKey { new_public_key }))
            })
            .boxed(),
        (fields.draw(s("sup2"), id()), any::<bool>())
            .prop_map(|(party_id, frozen)| {
                ("reg", Command::SetFrozen(pb::SetFrozen { party_id, frozen }))
            })
            .boxed(),
        (
            fields.draw(s("L9"), id()),
            fields.draw(s("core"), id()),
            fields.draw(s("10.00"), amount()),
            fields.draw(s("USD"), currency()),
            fields.draw(month, time_ms()),
        )
            .prop_map(|(line_id, obligor, limit, currency, expires_at_ms)| {
                let c = pb::GrantCreditLine { line_id, obligor, limit, currency, expires_at_ms };
                ("bank2", Command::GrantCreditLine(c))
            })
            .boxed(),
        (
            fields.draw(s("PO-9"), id()),
            fields.draw(s("sup1"), id()),
            fields.draw(good_lines, order_lines()),
            fields.draw(s("EUR"), currency()),
        )
            .prop_map(|(po_id, seller, lines, currency)| {
                let c = pb::CreatePurchaseOrder { po_id, seller, lines, currency };
                ("core", Command::CreatePurchaseOrder(c))
            })
            .boxed(),
        (
            fields.draw(s("SH-9"), id()),
            fields.draw(s("PO-4"), id()),
            fields.draw(good_shipment, shipment_lines()),
            carrier,
            fields.draw(doc("SH-9").to_vec(), document_hash()),
        )
            .prop_map(|(shipment_id, po_id, lines, carrier, document_hash)| {
                let c = pb::RecordShipment { shipment_id, po_id, lines, carrier, document_hash };
                ("sup2", Command::RecordShipment(c))
            })
            .boxed(),
        (select(&["core", "carrier", "sup2"][..]), fields.draw(s("SH-4"), id()))
            .prop_map(|(signer, shipment_id)| {
                (signer, Command::ConfirmDelivery(pb::ConfirmDelivery { shipment_id }))
            })
            .boxed(),
        (
            fields.draw(s("INV-9"), id()),
            fields.draw(s("PO-4"), id()),
            fields.draw(vec![s("SH-5")], prop::collection::vec(id(), 0..4).boxed()),
            fields.draw(s("5.00"), amount()),
            fields.draw(month, time_ms()),
            fields.draw(doc("INV-9").to_vec(), document_hash()),
        )
            .prop_map(|(invoice_id, po_id, shipment_ids, amount, due_date_ms, document_hash)| {
                let c = pb::IssueInvoice {
                    invoice_id,
                    po_id,
                    shipment_ids,
                    amount,
                    due_date_ms,
                    document_hash,
                };
                ("sup2", Command::IssueInvoice(c))
            })
            .boxed(),
        (fields.draw(s("INV-3"), id()), fields.draw(month, time_ms()))
            .prop_map(|(invoice_id, maturity_ms)| {
                ("core", Command::AcceptInvoice(pb::AcceptInvoice { invoice_id, maturity_ms }))
            })
            .boxed(),
        (fields.draw(s("INV-3"), id()), fields.draw(s("wrong quantity"), text()))
            .prop_map(|(invoice_id, reason)| {
                ("core", Command::RejectInvoice(pb::RejectInvoice { invoice_id, reason }))
            })
            .boxed(),
        (
            fields.draw(token_a.clone(), id()),
            fields.draw(s("sup2"), id()),
            fields.draw(s("30000.00"), amount()),
        )
            .prop_map(|(token_id, to, amount)| {
                ("sup1", Command::TransferToken(pb::TransferToken { token_id, to, amount }))
            })
            .boxed(),
        (
            fields.draw(token_a, id()),
            fields.draw(s("bank2"), id()),
            fields.draw(s("0.06"), rate()),
            fields.draw(T0_MS + DAY_MS, time_ms()),
        )
            .prop_map(|(token_id, bank, max_annual_rate, expires_at_ms)| {
                let c = pb::OfferToken { token_id, bank, max_annual_rate, expires_at_ms };
                ("sup1", Command::OfferToken(c))
            })
            .boxed(),
        fields
            .draw(offer.clone(), id())
            .prop_map(|offer_id| ("sup1", Command::WithdrawOffer(pb::WithdrawOffer { offer_id })))
            .boxed(),
        (fields.draw(offer, id()), fields.draw(s("0.0425"), rate()))
            .prop_map(|(offer_id, annual_rate)| {
                ("bank1", Command::DiscountToken(pb::DiscountToken { offer_id, annual_rate }))
            })
            .boxed(),
        (fields.draw(token_b, id()), fields.draw(s("SEPA-1"), text()))
            .prop_map(|(token_id, payment_reference)| {
                ("core", Command::SettleToken(pb::SettleToken { token_id, payment_reference }))
            })
            .boxed(),
        (
            fields.draw(s("reg"), id()),
            fields.draw(AccessScope::All as i32, enum_value(4)),
            fields.draw(month, time_ms()),
        )
            .prop_map(|(grantee, scope, expires_at_ms)| {
                ("core", Command::GrantAccess(pb::GrantAccess { grantee, scope, expires_at_ms }))
            })
            .boxed(),
        (fields.draw(s("bank1"), id()), fields.draw(AccessScope::Trade as i32, enum_value(4)))
            .prop_map(|(grantee, scope)| {
                ("sup1", Command::RevokeAccess(pb::RevokeAccess { grantee, scope }))
            })
            .boxed(),
    ])
    .boxed()
}

/// Any command, every field drawn from the strategies above.
fn command() -> BoxedStrategy<Command> {
    commands(Fields::Arbitrary).prop_map(|(_, command)| command).boxed()
}

/// A good command (signed by the right party) with some of its fields replaced by arbitrary
/// values: this is what reaches each rule's own argument checks, which a command with every
/// field arbitrary rarely gets to past the record lookups.
fn near_good_command() -> BoxedStrategy<(&'static str, Command)> {
    commands(Fields::NearGood)
}

/// When the body says it lapses, relative to the block's time.
#[derive(Debug, Clone)]
enum Deadline {
    InAMinute,
    JustExpired,
    TooFar,
    Raw(u64),
}

/// Which key signs the body bytes.
#[derive(Debug, Clone)]
enum Key {
    /// The key of the party the body names as signer (the registrar's if it names no party).
    Signer,
    /// Another party's key.
    Party(&'static str),
    /// Signature bytes that are not a signature by anyone's key.
    Garbage(Vec<u8>),
}

/// A body with arbitrary field values and how to date and sign it.
#[derive(Debug, Clone)]
struct Spec {
    body: TxBody,
    deadline: Deadline,
    key: Key,
}

fn spec_with(
    command: BoxedStrategy<Option<Command>>,
    signer: BoxedStrategy<String>,
) -> BoxedStrategy<Spec> {
    let chain_id = prop_oneof![8 => Just(CHAIN_ID.to_owned()), 1 => ".{0,12}"];
    let deadline = prop_oneof![
        8 => Just(Deadline::InAMinute),
        1 => Just(Deadline::JustExpired),
        1 => Just(Deadline::TooFar),
        1 => any::<u64>().prop_map(Deadline::Raw),
    ];
    let key = prop_oneof![
        8 => Just(Key::Signer),
        1 => select(PARTY_IDS).prop_map(Key::Party),
        1 => prop_oneof![
            prop::collection::vec(any::<u8>(), 64),
            prop::collection::vec(any::<u8>(), 0..80),
        ]
        .prop_map(Key::Garbage),
    ];
    (chain_id, signer, any::<u64>(), command, deadline, key)
        .prop_map(|(chain_id, signer, nonce, command, deadline, key)| Spec {
            body: TxBody { chain_id, signer, valid_until_ms: 0, nonce, command },
            deadline,
            key,
        })
        .boxed()
}

/// A body with any command and any field values.
fn any_spec() -> BoxedStrategy<Spec> {
    let command = prop_oneof![12 => command().prop_map(Some), 1 => Just(None)].boxed();
    let signer = prop_oneof![8 => select(PARTY_IDS).prop_map(str::to_owned), 1 => id()].boxed();
    spec_with(command, signer)
}

/// A body that applies alone, dated and signed properly.
fn good_spec() -> BoxedStrategy<Spec> {
    (good_command(), any::<u64>())
        .prop_map(|((signer, command), nonce)| Spec {
            body: ledger::tx::body(CHAIN_ID, signer, 0, nonce, command),
            deadline: Deadline::InAMinute,
            key: Key::Signer,
        })
        .boxed()
}

/// A near-good command, mostly dated and signed properly.
fn near_spec() -> BoxedStrategy<Spec> {
    let deadline = prop_oneof![12 => Just(Deadline::InAMinute), 1 => Just(Deadline::JustExpired)];
    let key = prop_oneof![12 => Just(Key::Signer), 1 => select(PARTY_IDS).prop_map(Key::Party)];
    (near_good_command(), any::<u64>(), deadline, key)
        .prop_map(|((signer, command), nonce, deadline, key)| Spec {
            body: ledger::tx::body(CHAIN_ID, signer, 0, nonce, command),
            deadline,
            key,
        })
        .boxed()
}

/// Dates, encodes and signs a spec for a block at `now_ms`.
fn sign(spec: &Spec, now_ms: u64) -> SignedTx {
    let mut body = spec.body.clone();
    body.valid_until_ms = match spec.deadline {
        Deadline::InAMinute => now_ms + 60_000,
        Deadline::JustExpired => now_ms - 1,
        Deadline::TooFar => now_ms + 3_600_001,
        Deadline::Raw(ms) => ms,
    };
    let bytes = body.encode_to_vec();
    let signature = match &spec.key {
        Key::Signer => {
            let signer =
                if PARTY_IDS.contains(&body.signer.as_str()) { &body.signer } else { "registrar" };
            SigningKey::from_seed(signer).sign(&bytes).to_bytes().to_vec()
        }
        Key::Party(party) => SigningKey::from_seed(party).sign(&bytes).to_bytes().to_vec(),
        Key::Garbage(bytes) => bytes.clone(),
    };
    SignedTx { body: bytes, signature }
}

/// One change to an encoded envelope.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Overwrite(Index, u8),
    Truncate(Index),
    Extend(Vec<u8>),
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Overwrite(at, byte)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match mutation {
            Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            Mutation::Overwrite(at, byte) if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::Truncate(at) if !bytes.is_empty() => bytes.truncate(at.index(bytes.len())),
            Mutation::Extend(tail) => bytes.extend_from_slice(tail),
            Mutation::Insert(at, insert) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, insert.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

// ----- the checks -----

/// `DecodedTx::decode` on any bytes: agrees with decoding the envelope first, gives only typed
/// errors, and an accepted transaction carries the envelope's body hash and signature and
/// re-encodes to itself.
fn check_decode(bytes: &[u8]) -> Result<DecodedTx, DecodeError> {
    let outcome = DecodedTx::decode(bytes);
    if bytes.len() > SIGNED_TX_BYTES_MAX {
        assert_eq!(outcome, Err(DecodeError::TooLarge(bytes.len())));
        return outcome;
    }
    match SignedTx::decode(bytes) {
        Ok(signed) => {
            assert_eq!(outcome, DecodedTx::from_signed(&signed));
            if let Ok(decoded) = &outcome {
                assert_eq!(decoded.hash, sha256(&signed.body));
                assert_eq!(decoded.signature.to_bytes().as_slice(), signed.signature.as_slice());
                assert!(decoded.body.command.is_some());
                assert_eq!(DecodedTx::decode(&signed.encode_to_vec()).as_ref(), Ok(decoded));
            }
        }
        Err(_) => assert!(matches!(outcome, Err(DecodeError::Envelope(_))), "{outcome:?}"),
    }
    if let Err(DecodeError::TooLarge(len)) = outcome {
        assert!(len > TX_BODY_BYTES_MAX);
    }
    outcome
}

/// Applies `txs` as one block on the base state at `now_ms` and checks everything that must hold
/// whatever the transactions are. Returns the results and the state after the block.
fn apply_checked(now_ms: u64, txs: &[SignedTx]) -> (Vec<TxResult>, MemStore) {
    let b = base();
    let applied =
        b.h.chain
            .ledger
            .apply_block(&b.h.chain.store, now_ms, txs.to_vec())
            .expect("a memory store never fails and the block is small");
    let results = applied.block.results.clone();
    assert_eq!(results.len(), txs.len(), "one result per transaction");
    for (tx, result) in txs.iter().zip(&results) {
        assert_eq!(result.tx_hash, sha256(&tx.body));
        if result.applied {
            assert!(result.reject_code.is_empty() && result.reject_message.is_empty());
        } else {
            assert!(ledger::reject::ALL_CODES.contains(&result.reject_code.as_str()), "{result:?}");
            assert!(!result.reject_message.is_empty());
            assert!(result.created_ids.is_empty(), "a rejection created {:?}", result.created_ids);
        }
        // The envelope checks are the decoder's: a transaction is malformed exactly when it does
        // not decode.
        let malformed = result.reject_code == "malformed";
        assert_eq!(DecodedTx::from_signed(tx).is_err(), malformed, "{result:?}");
    }

    let mut after = b.h.chain.store.clone();
    after.commit(&applied.writes);
    let block = Block::decode(applied.block.encode_to_vec().as_slice()).expect("a block decodes");
    assert_eq!(block, applied.block);
    let replayed = replay_chain(&b.h.genesis(), b.h.chain.blocks.iter().chain([&block]))
        .expect("the chain replays from genesis");
    assert_eq!(replayed.entries(), after.entries());

    // The rejected transactions changed nothing: the accepted ones alone reach the same domain
    // state with the same results.
    let accepted: Vec<SignedTx> =
        txs.iter().zip(&results).filter(|(_, r)| r.applied).map(|(tx, _)| tx.clone()).collect();
    let alone =
        b.h.chain.ledger.apply_block(&b.h.chain.store, now_ms, accepted).expect("memory store");
    let accepted_results: Vec<TxResult> = results.iter().filter(|r| r.applied).cloned().collect();
    assert_eq!(alone.block.results, accepted_results);
    let mut after_alone = b.h.chain.store.clone();
    after_alone.commit(&alone.writes);
    assert_eq!(domain_state(&after), domain_state(&after_alone), "a rejection changed the state");
    (results, after)
}

/// A candidate of a mixed block.
#[derive(Debug, Clone)]
enum Candidate {
    Any(Spec),
    Good(Spec),
    /// A good transaction's envelope, mutated; dropped if it no longer decodes as an envelope.
    Mutated(Spec, Vec<Mutation>),
    /// Random bytes as an envelope; dropped if they do not decode as one.
    Raw(Vec<u8>),
    /// A transaction of the base chain again.
    Replay(Index),
}

fn candidate() -> impl Strategy<Value = Candidate> {
    prop_oneof![
        2 => any_spec().prop_map(Candidate::Any),
        2 => near_spec().prop_map(Candidate::Any),
        3 => good_spec().prop_map(Candidate::Good),
        2 => (good_spec(), prop::collection::vec(mutation(), 1..4))
            .prop_map(|(spec, mutations)| Candidate::Mutated(spec, mutations)),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Candidate::Raw),
        1 => any::<Index>().prop_map(Candidate::Replay),
    ]
}

/// A block time at the base's ledger time, a little after, or after the offer expired and the
/// tokens matured; an earlier proposal is raised to the tip's time by the ledger.
fn block_time_ms() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(T0_MS),
        2 => T0_MS - 5_000..T0_MS + 2 * DAY_MS,
        1 => Just(T0_MS + 91 * DAY_MS),
    ]
}

/// `cases` cases, or more when `PROPTEST_CASES` asks for more (see `scripts/test.sh`). The counts
/// keep the whole file to a few seconds in a debug build.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig { cases: default.cases.max(cases), ..default }
}

proptest! {
    #![proptest_config(config(2_000))]

    // Goal: any byte string decodes to a transaction or a typed error, never a panic, and the
    // decoder agrees with the envelope decoder.
    #[test]
    fn random_bytes_decode_to_a_value_or_a_typed_error(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..1_000),
        ],
    ) {
        let _ = check_decode(&bytes);
    }

    // Goal: bit flips, overwrites, truncations, extensions and insertions of a valid signed
    // transaction decode to a value or a typed error; an unchanged envelope still decodes.
    #[test]
    fn mutated_signed_transactions_decode_to_a_value_or_a_typed_error(
        spec in any_spec(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let original = sign(&spec, T0_MS).encode_to_vec();
        let mutated = mutate(original.clone(), &mutations);
        let outcome = check_decode(&mutated);
        if mutated == original {
            prop_assert_eq!(outcome, check_decode(&original));
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    // Goal: one transaction with arbitrary field values, dated and signed in any of the ways a
    // client could get wrong, gives one typed result; a rejection changes no domain state and
    // the chain with its block still replays from genesis.
    #[test]
    fn an_arbitrary_body_is_applied_or_rejected_without_changing_state(
        spec in prop_oneof![2 => any_spec(), 3 => near_spec(), 1 => good_spec()],
        now_ms in block_time_ms(),
    ) {
        let b = base();
        let tx = sign(&spec, now_ms.max(T0_MS));
        let (results, after) = apply_checked(now_ms, std::slice::from_ref(&tx));
        if !results[0].applied {
            prop_assert_eq!(domain_state(&b.h.chain.store), domain_state(&after), "{:?}", results[0]);
        }
    }

    // Goal: a block mixing arbitrary bodies, good transactions, mutated envelopes, random
    // envelopes and replays of the chain gives one typed result per transaction, rejected ones
    // change nothing (the accepted ones alone reach the same state), and a mutated envelope is
    // applied only if it still carries the original body and signature.
    #[test]
    fn a_mixed_block_gives_typed_results_and_rejections_change_nothing(
        candidates in prop::collection::vec(candidate(), 1..6),
        now_ms in block_time_ms(),
    ) {
        let b = base();
        let signing_ms = now_ms.max(T0_MS);
        let history: Vec<&SignedTx> = b.h.chain.blocks.iter().flat_map(|block| &block.txs).collect();
        let mut txs = Vec::new();
        let mut originals = Vec::new();
        for candidate in &candidates {
            let (tx, original) = match candidate {
                Candidate::Any(spec) | Candidate::Good(spec) => (sign(spec, signing_ms), None),
                Candidate::Mutated(spec, mutations) => {
                    let original = sign(spec, signing_ms);
                    let mutated = mutate(original.encode_to_vec(), mutations);
                    let _ = check_decode(&mutated);
                    match SignedTx::decode(mutated.as_slice()) {
                        Ok(tx) => (tx, Some(original)),
                        Err(_) => continue,
                    }
                }
                Candidate::Raw(bytes) => match SignedTx::decode(bytes.as_slice()) {
                    Ok(tx) => (tx, None),
                    Err(_) => continue,
                },
                Candidate::Replay(index) => ((*index.get(&history)).clone(), None),
            };
            txs.push(tx);
            originals.push(original);
        }
        let (results, _) = apply_checked(now_ms, &txs);
        for ((tx, original), result) in txs.iter().zip(&originals).zip(&results) {
            if let (Some(original), true) = (original, result.applied) {
                prop_assert_eq!(&tx.body, &original.body);
                prop_assert_eq!(&tx.signature, &original.signature);
            }
        }
    }
}

// Goal: the size limits give their own typed error: an envelope over the maximum before it is
// parsed, and a body over the maximum inside an envelope that is not.
#[test]
fn oversized_inputs_are_refused_with_too_large() {
    let envelope = vec![0u8; SIGNED_TX_BYTES_MAX + 1];
    assert_eq!(check_decode(&envelope), Err(DecodeError::TooLarge(SIGNED_TX_BYTES_MAX + 1)));
    let signed = SignedTx { body: vec![0; TX_BODY_BYTES_MAX + 1], signature: vec![0; 64] };
    let bytes = signed.encode_to_vec();
    assert!(bytes.len() <= SIGNED_TX_BYTES_MAX);
    assert_eq!(check_decode(&bytes), Err(DecodeError::TooLarge(TX_BODY_BYTES_MAX + 1)));
    let (results, _) = apply_checked(T0_MS, &[signed]);
    assert_eq!(results[0].reject_code, "malformed");
}

// Goal: the good commands the block strategy leans on really apply on the base state, so the
// mixed-block property exercises accepted transactions and not only rejections.
#[test]
fn every_good_command_applies_alone() {
    for (nonce, (signer, command)) in (1u64..).zip(good_commands()) {
        let spec = Spec {
            body: ledger::tx::body(CHAIN_ID, signer, 0, nonce, command),
            deadline: Deadline::InAMinute,
            key: Key::Signer,
        };
        let (results, _) = apply_checked(T0_MS, &[sign(&spec, T0_MS)]);
        assert!(results[0].applied, "{signer}: {}", results[0].reject_message);
    }
}
