//! The whole life of a receivable, end to end, through the pure state machine: register, order,
//! ship, deliver, invoice, accept, split to a tier-2 supplier, discount at a bank, settle.

use crate::common;

use common::*;
use ledger::client;
use ledger::pb::{OfferStatus, TokenStatus};
use ledger::query;
use rust_decimal::Decimal;
use std::str::FromStr;

// Goal: every step of a receivable's life applies, moves value where the domain contract says,
// and conserves face value across the split.
#[test]
fn receivable_life() {
    let mut h = cast();
    let token_id = accepted_token(&mut h, "1", "80000.00");
    let token = h.token(&token_id);
    assert_eq!(
        (token.holder.as_str(), token.obligor.as_str(), token.face_value.as_str()),
        ("sup1", "core", "80000.00")
    );

    // sup1 pays its own supplier sup2 with 30,000 of the token: a split.
    let split = h.ok("sup1", client::transfer_token(&token_id, "sup2", "30000"));
    let [sent, kept] = [split.created_ids[0].clone(), split.created_ids[1].clone()];
    assert_eq!(h.token(&token_id).status, TokenStatus::Retired as i32);
    assert_eq!(
        (h.token(&sent).holder.as_str(), h.token(&sent).face_value.as_str()),
        ("sup2", "30000.00")
    );
    assert_eq!(
        (h.token(&kept).holder.as_str(), h.token(&kept).face_value.as_str()),
        ("sup1", "50000.00")
    );

    // sup2 sells its piece to bank1 at 4.25% with 90 days to run.
    let offer =
        h.ok("sup2", client::offer_token(&sent, "bank1", "0.05", h.now_ms + DAY_MS)).created_ids[0]
            .clone();
    h.ok("bank1", client::discount_token(&offer, "0.0425"));
    let financing = query::financing(&h.chain.store, &offer).unwrap().unwrap();
    // 30,000 x (1 - 0.0425 x 90 / 360) = 29,681.25
    assert_eq!(financing.proceeds, "29681.25");
    assert_eq!(financing.days, 90);
    assert_eq!(h.token(&sent).holder, "bank1");
    assert_eq!(
        query::offer(&h.chain.store, &offer).unwrap().unwrap().status,
        OfferStatus::Discounted as i32
    );

    // At maturity core pays both holders.
    h.advance(90 * DAY_MS);
    h.ok("core", client::settle_token(&sent, "SEPA-1"));
    h.ok("core", client::settle_token(&kept, "SEPA-2"));
    assert_eq!(h.token(&sent).settled_to, "bank1");
    let exposure = query::exposure(&h.chain.store, "core").unwrap();
    assert_eq!(exposure[0].unsettled, Decimal::ZERO);

    let lineage = query::lineage(&h.chain.store, &token_id).unwrap().unwrap();
    let total: Decimal = lineage
        .descendants
        .iter()
        .filter(|t| t.child_ids.is_empty())
        .map(|t| Decimal::from_str(&t.face_value).unwrap())
        .sum();
    assert_eq!(total, Decimal::from_str("80000.00").unwrap());

    // The chain re-verifies, signatures included, and replays to the same state.
    let mut verifier = ledger::ChainVerifier::new(&h.genesis(), true);
    for block in &h.chain.blocks {
        verifier.verify_block(block).unwrap();
    }
    let replayed = ledger::replay_chain(&h.genesis(), &h.chain.blocks).unwrap();
    assert_eq!(replayed.entries(), h.chain.store.entries());
}
