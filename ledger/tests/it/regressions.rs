//! Regression tests, each named after a bug a review found, so the bug cannot return unnoticed.

use crate::common;

use common::*;
use ledger::chain::{BreakReason, ChainBreak, ChainVerifier};
use ledger::client;
use ledger::crypto::SigningKey;
use ledger::pb::{Role, SignedTx};
use ledger::query;
use prost::Message;
use testkit::chain::reseal;

// Goal: an obligor whose credit lines add up to more than the largest amount can never be owed
// more than the largest amount. Before the fix, acceptance stored an unsettled total above the
// cap, which the ledger then could not read back: the next block touching that obligor failed
// on every replica and the chain halted.
#[test]
fn exposure_beyond_amount_max_halted_the_chain() {
    let mut h = cast();
    let max = "999999999999999.99";
    let expires = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L-big", "core", max, "EUR", expires));
    h.ok("bank2", client::grant_credit_line("L-big", "core", max, "EUR", expires));
    let mut tokens = Vec::new();
    for (n, outcome) in [(1, true), (2, false)] {
        let (po, ship, inv) =
            (format!("PO-big-{n}"), format!("SH-big-{n}"), format!("INV-big-{n}"));
        h.ok("core", client::create_purchase_order(&po, "sup1", &[("CRANE", 1, max)], "EUR"));
        h.ok("sup1", client::record_shipment(&ship, &po, &[("CRANE", 1)], "", doc(&ship)));
        h.ok("core", client::confirm_delivery(&ship));
        let due = h.now_ms + 30 * DAY_MS;
        h.ok(
            "sup1",
            client::issue_invoice(&inv, &po, &[&ship], "900000000000000.00", due, doc(&inv)),
        );
        let accept = client::accept_invoice(&inv, h.now_ms + 60 * DAY_MS);
        if outcome {
            tokens.push(h.ok("core", accept).created_ids[0].clone());
        } else {
            // 1.8e15 would exceed the largest amount: refused, even though the lines sum higher.
            h.rejects("core", accept, "credit_limit_exceeded");
        }
    }
    // The obligor's total stays readable: settling works and the chain goes on.
    h.ok("core", client::settle_token(&tokens[0], "wire-1"));
    let exposure = query::exposure(&h.chain.store, "core").unwrap();
    assert_eq!(exposure[0].unsettled, rust_decimal::Decimal::ZERO);
}

// Goal: the chain verifier learns keys only as the rules allow. Before the fix, a block producer
// could mark an enterprise's (rejected) registration of a new party as applied, recompute the
// hashes, and the signature-checking verifier would then accept transactions signed with the
// forged party's key.
#[test]
fn verifier_learned_keys_from_unauthorised_registrations() {
    let mut driver = Driver::with_cast(MODEL_CHAIN_ID);
    let evil = SigningKey::from_seed("evil");
    let register =
        client::register_party("evil", "Evil", Role::Enterprise, &evil.public_key().to_bytes());
    let first = driver.run("sup1", register);
    assert_eq!(first.reject_code, "wrong_role");
    driver
        .identities
        .insert("evil".into(), ledger::client::Identity::new(MODEL_CHAIN_ID, "evil", evil.clone()));
    let second = driver
        .run("evil", client::rotate_key(&SigningKey::from_seed("evil2").public_key().to_bytes()));
    assert_eq!(second.reject_code, "unknown_signer");

    let genesis = driver.chain.ledger.genesis().clone();
    let mut blocks = driver.chain.blocks.clone();
    let last = blocks.len();
    for block in &mut blocks[last - 2..] {
        let result = &mut block.results[0];
        result.applied = true;
        result.reject_code.clear();
        result.reject_message.clear();
    }
    reseal(&genesis, &mut blocks, 0);
    let mut verifier = ChainVerifier::new(&genesis, true);
    let outcome = blocks.iter().try_for_each(|block| verifier.verify_block(block).map(|_| ()));
    assert_eq!(
        outcome,
        Err(ChainBreak {
            height: u64::try_from(last).unwrap(),
            reason: BreakReason::SignatureInvalid { index: 0 }
        })
    );
    // Replay, the full audit, catches the first forged result already.
    assert!(matches!(
        ledger::replay_chain(&genesis, &blocks),
        Err(ChainBreak { reason: BreakReason::ResultMismatch { index: 0 }, .. })
    ));
}

// Goal: a body carrying bytes the ledger does not understand (here an unknown field 99) is not a
// transaction. Before the fix it was applied, and whatever the signer meant by the extra field
// was silently dropped by every replica.
#[test]
fn non_canonical_body_was_applied() {
    let mut h = cast();
    let tx = h.tx(
        "sup1",
        client::grant_access("sup2", ledger::pb::AccessScope::Trade, h.now_ms + DAY_MS),
    );
    let body = ledger::pb::TxBody::decode(tx.body.as_slice()).unwrap();
    let mut bytes = body.encode_to_vec();
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]); // field 99, varint 1
    let key = SigningKey::from_seed("sup1");
    let signature = key.sign(&bytes).to_bytes().to_vec();
    let result = h.rejects_tx(SignedTx { body: bytes, signature }, "malformed");
    assert!(result.reject_message.contains("canonical"), "{}", result.reject_message);
}
