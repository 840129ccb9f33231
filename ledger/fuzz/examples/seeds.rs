//! Writes the seed corpus of both fuzz targets and runs every seed through the target's checks.
//!
//! Usage: `cargo run --manifest-path ledger/fuzz/Cargo.toml --example seeds -- DIR`, which writes
//! `DIR/decode/seed-*` and `DIR/decode_then_apply/seed-*` (overwriting earlier seeds of the same
//! names) and prints how each `decode_then_apply` seed's transactions came out, so a change to the
//! ledger that makes the seeds stop reaching the command rules shows up here.
//!
//! The seeds are generated rather than checked in because `decode_then_apply` seeds name records
//! of the fixture chain (token and offer ids are derived from transaction hashes) and must follow
//! any change to it.

use std::path::Path;

use ledger::client;
use ledger::crypto::SigningKey;
use ledger::pb::{AccessScope, Role, SignedTx, tx_body::Command};
use ledger::{Ledger, MemStore};
use ledger_fuzz::{
    CHAIN_ID, Candidate, DAY_MS, T0_MS, check_decode, check_decode_then_apply, check_submission,
    doc, encode_input, fixture, party_index,
};
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args().nth(1).ok_or("usage: seeds DIR")?;
    let root = Path::new(&root);
    let fixture = fixture();

    let decode_dir = root.join("decode");
    std::fs::create_dir_all(&decode_dir)?;
    let setup_tx = fixture.setup_txs().next().expect("the fixture has transactions").clone();
    for (name, bytes) in [
        ("signed_tx", setup_tx.encode_to_vec()),
        ("tx_body", body(1, client::transfer_token(&fixture.token_free, "sup2", "1.00"))),
        ("block", first_block()),
    ] {
        check_decode(&bytes);
        std::fs::write(decode_dir.join(format!("seed-{name}")), bytes)?;
    }

    let apply_dir = root.join("decode_then_apply");
    std::fs::create_dir_all(&apply_dir)?;
    for (name, bytes) in apply_seeds() {
        let results = check_decode_then_apply(&bytes);
        let outcomes: Vec<&str> = results
            .iter()
            .map(|r| if r.applied { "applied" } else { r.reject_code.as_str() })
            .collect();
        println!("decode_then_apply/seed-{name}: {}", outcomes.join(", "));
        std::fs::write(apply_dir.join(format!("seed-{name}")), bytes)?;
    }

    let submission_dir = root.join("submission");
    std::fs::create_dir_all(&submission_dir)?;
    let item = ledger_fuzz::wire::item_json(&setup_tx);
    let mut with_hash = item.clone();
    with_hash["tx_hash"] = hex::encode(ledger::tx::tx_hash(&setup_tx)).into();
    for (name, value) in [
        ("one", item.clone()),
        ("batch", serde_json::Value::Array(vec![item.clone(), with_hash.clone(), item.clone()])),
        ("with_hash", with_hash),
        ("bad_items", serde_json::json!([{"body": "zz", "signature": ""}, {"body": 1}, 7])),
    ] {
        let bytes = value.to_string().into_bytes();
        check_submission(&bytes);
        std::fs::write(submission_dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

/// An encoded body; the signer, chain and deadline are fixed up by the target.
fn body(nonce: u64, command: Command) -> Vec<u8> {
    ledger::tx::body(CHAIN_ID, "", 0, nonce, command).encode_to_vec()
}

fn signed(party: &str, nonce: u64, command: Command) -> Candidate {
    Candidate::Signed {
        party: party_index(party),
        keep_valid_until: false,
        body: body(nonce, command),
    }
}

/// A block at height 1 on the fixture's genesis, small enough for libFuzzer's default input
/// size, that replays from genesis: one applied and one rejected transaction.
fn first_block() -> Vec<u8> {
    let fixture = fixture();
    let ledger = Ledger::new(fixture.ledger.genesis().clone());
    let mut store = MemStore::new();
    store.commit(&ledger.genesis_writes());
    let key = SigningKey::from_seed("newco").public_key().to_bytes();
    let registrar = fixture.identity("registrar");
    let register = client::register_party("newco", "NewCo", Role::Enterprise, &key);
    let txs = vec![
        registrar.sign(T0_MS + 60_000, 1, register),
        registrar.sign(T0_MS + 60_000, 2, client::set_frozen("nobody", true)),
    ];
    let applied = ledger.apply_block(&store, T0_MS, txs).expect("the memory store never fails");
    applied.block.encode_to_vec()
}

fn apply_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let f = fixture();
    let month = T0_MS + 30 * DAY_MS;
    let key = |seed: &str| SigningKey::from_seed(seed).public_key().to_bytes();
    let parties = vec![
        signed(
            "registrar",
            1,
            client::register_party("newco", "NewCo", Role::Enterprise, &key("newco")),
        ),
        signed("sup2", 2, client::rotate_key(&key("sup2-next"))),
        signed("reg", 3, client::set_frozen("sup2", true)),
        signed("bank2", 4, client::grant_credit_line("L2", "core", "50000.00", "USD", month)),
        signed("sup1", 5, client::revoke_access("bank1", AccessScope::Trade)),
        signed("core", 6, client::grant_access("reg", AccessScope::Credit, month)),
    ];
    let goods = vec![
        signed(
            "core",
            1,
            client::create_purchase_order("PO-2", "sup2", &[("BOLT", 500, "0.25")], "EUR"),
        ),
        signed(
            "sup2",
            2,
            client::record_shipment("SH-5", "PO-2", &[("BOLT", 200)], "carrier", doc("SH-5")),
        ),
        signed("core", 3, client::confirm_delivery("SH-5")),
        signed("carrier", 4, client::confirm_delivery("SH-4")),
        signed("core", 5, client::confirm_delivery("SH-4")),
        signed(
            "sup1",
            6,
            client::issue_invoice("INV-4", "PO-1", &["SH-4"], "200.00", month, doc("INV-4")),
        ),
        signed(
            "sup2",
            7,
            client::issue_invoice("INV-5", "PO-2", &["SH-5"], "50.00", month, doc("INV-5")),
        ),
        signed("core", 8, client::accept_invoice("INV-3", month)),
        signed("core", 9, client::reject_invoice("INV-4", "damaged goods")),
    ];
    let tokens = vec![
        signed("sup1", 1, client::transfer_token(&f.token_free, "sup2", "15000.00")),
        signed("bank1", 2, client::discount_token(&f.offer_open, "0.04")),
        signed("core", 3, client::settle_token(&f.token_offered, "SEPA-1")),
    ];
    let offers = vec![
        signed("sup1", 1, client::withdraw_offer(&f.offer_open)),
        signed(
            "sup1",
            2,
            client::offer_token(&f.token_offered, "bank2", "0.06", T0_MS + 2 * DAY_MS),
        ),
        signed("sup1", 3, client::offer_token(&f.token_free, "bank1", "0.05", T0_MS + DAY_MS)),
    ];
    let late = vec![
        signed("core", 1, client::settle_token(&f.token_free, "SEPA-2")),
        signed("bank1", 2, client::discount_token(&f.offer_open, "0.04")),
        signed("sup1", 3, client::transfer_token(&f.token_offered, "sup2", "1.00")),
    ];
    // One refusal of each kind that a short run did not find by itself, so the fuzzer starts
    // next to them.
    let year = T0_MS + 365 * DAY_MS;
    let refusals = vec![
        signed("bank1", 1, client::discount_token(&f.offer_open, "0.06")),
        signed("sup1", 2, client::transfer_token(&f.token_free, "sup2", "90000.00")),
        signed("bank1", 3, client::grant_credit_line("L1", "core", "1.00", "USD", year)),
        signed("bank1", 4, client::grant_credit_line("L1", "core", "1.00", "EUR", year)),
        signed("core", 5, client::accept_invoice("INV-3", month)),
        signed(
            "sup1",
            6,
            client::record_shipment("SH-6", "PO-1", &[("GADGET", 1)], "", doc("SH-1")),
        ),
        signed("sup1", 7, client::withdraw_offer(&f.offer_open)),
        signed("sup1", 8, client::withdraw_offer(&f.offer_open)),
        signed("sup1", 9, client::transfer_token(&f.token_free, "sup2", "10.00")),
        signed("sup1", 10, client::transfer_token(&f.token_free, "sup2", "10.00")),
        signed("reg", 11, client::set_frozen("sup2", true)),
        signed("sup1", 12, client::transfer_token(&f.token_offered, "sup2", "1.00")),
        signed("sup1", 13, client::offer_token(&f.token_offered, "bank2", "0.06", month)),
        Candidate::Signed {
            party: party_index("core"),
            keep_valid_until: true,
            body: ledger::tx::body(CHAIN_ID, "", u64::MAX, 14, client::confirm_delivery("SH-4"))
                .encode_to_vec(),
        },
    ];
    let setup_tx = f.setup_txs().next().expect("the fixture has transactions");
    let settle = client::settle_token(&f.token_free, "SEPA-3");
    let other_chain = ledger::tx::body("elsewhere", "sup1", T0_MS + 60_000, 1, settle.clone());
    let other_signer = ledger::tx::body(CHAIN_ID, "core", T0_MS + 60_000, 2, settle.clone());
    let expired = ledger::tx::body(CHAIN_ID, "core", 0, 3, settle);
    let unsigned = SignedTx { body: other_signer.encode_to_vec(), signature: vec![0xff; 64] };
    let envelopes = vec![
        Candidate::Envelope(setup_tx.encode_to_vec()),
        Candidate::Repeat(1),
        Candidate::SignedAsIs { party: party_index("sup1"), body: other_chain.encode_to_vec() },
        Candidate::SignedAsIs { party: party_index("sup1"), body: other_signer.encode_to_vec() },
        Candidate::Signed {
            party: party_index("core"),
            keep_valid_until: true,
            body: expired.encode_to_vec(),
        },
        Candidate::Envelope(unsigned.encode_to_vec()),
        Candidate::Repeat(0),
    ];
    vec![
        ("parties", encode_input(0, &parties)),
        ("goods", encode_input(1, &goods)),
        ("tokens", encode_input(2, &tokens)),
        ("offers", encode_input(3, &offers)),
        // 91 days after the tip: past the offer's expiry and the tokens' maturity.
        ("late", encode_input(128 + 91, &late)),
        ("envelopes", encode_input(4, &envelopes)),
        ("refusals", encode_input(5, &refusals)),
    ]
}
