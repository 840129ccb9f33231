//! Determinism and verification of the chain.
//!
//! One scripted history (orders, shipments, a double invoice, an acceptance beyond the credit
//! line, a split, a discount, a key rotation, stale-key and in-block-rotation transactions,
//! settlements) is applied twice from scratch to show that the same batches always give the same
//! blocks and state, then tampered with in every way a forger could: a flipped body byte, a forged
//! signature with and without the hashes recomputed, changed results, a removed block, time going
//! backwards, a broken link, a changed state hash, a rejected transaction marked applied. Each
//! tampering must be reported at the first bad height, by the check that can see it:
//! `ChainVerifier` for links, roots and signatures, `replay_chain` for what only re-execution
//! shows.

use crate::common::MODEL_CHAIN_ID;
use ledger::chain::BreakReason;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::{Block, SignedTx, TxBody, TxResult, tx_body::Command};
use ledger::{ChainBreak, ChainVerifier, Genesis, replay_chain};
use prost::Message;
use testkit::chain::{Chain, DAY_MS, Driver, HOUR_MS, block_hash, doc, genesis, reseal};

/// Where a transaction sits: height and position in its block.
#[derive(Debug, Clone, Copy)]
struct At {
    height: u64,
    index: usize,
}

/// The scripted history and where its notable transactions landed.
struct Scenario {
    driver: Driver,
    /// An applied split signed by `sup1` before it rotates its key.
    split_by_sup1: At,
    /// A rejected double invoice (`already_invoiced`).
    double_invoice: At,
    /// A rejected acceptance beyond the credit line (`credit_limit_exceeded`), validly signed.
    over_limit_accept: At,
    /// The block where `sup1` rotates its key.
    sup1_rotation: u64,
    /// An applied transfer signed by `sup1` with its new key.
    transfer_after_rotation: At,
    /// A transaction by `sup1` signed with its old key after the rotation (`bad_signature`).
    stale_key: At,
    /// In one block, `sup2` rotates its key (index 0) and signs with the new key (index 1).
    in_block_rotation: At,
    /// `sup1`'s keys before and after its rotation, and `sup2`'s.
    sup1_old: SigningKey,
    sup1_new: SigningKey,
    sup2_old: SigningKey,
}

fn at(driver: &Driver, index: usize) -> At {
    At { height: driver.height(), index }
}

fn scenario() -> Scenario {
    let mut d = Driver::with_cast(MODEL_CHAIN_ID);
    let year = d.now_ms + 365 * DAY_MS;
    d.ok("bank1", client::grant_credit_line("L1", "core", "100000.00", "EUR", year));

    // Two orders in one block, their shipments in the next, deliveries (and a carrier
    // attestation) in the one after.
    let po1 = client::create_purchase_order("PO-1", "sup1", &[("WIDGET", 100, "1000.00")], "EUR");
    let po2 = client::create_purchase_order("PO-2", "sup1", &[("GADGET", 100, "2500.00")], "EUR");
    let txs = vec![d.tx("core", po1), d.tx("core", po2)];
    assert!(d.block(txs).iter().all(|r| r.applied));
    let sh1 = client::record_shipment("SH-1", "PO-1", &[("WIDGET", 100)], "carrier", doc("bol-1"));
    let sh2 = client::record_shipment("SH-2", "PO-2", &[("GADGET", 100)], "", doc("bol-2"));
    let txs = vec![d.tx("sup1", sh1), d.tx("sup1", sh2)];
    assert!(d.block(txs).iter().all(|r| r.applied));
    let txs = vec![
        d.tx("core", client::confirm_delivery("SH-1")),
        d.tx("core", client::confirm_delivery("SH-2")),
        d.tx("carrier", client::confirm_delivery("SH-1")),
    ];
    assert!(d.block(txs).iter().all(|r| r.applied));
    d.advance(DAY_MS);

    // Invoices, one of them a second invoice for the same shipment.
    let due = d.now_ms + 90 * DAY_MS;
    let txs = vec![
        d.tx("sup1", client::issue_invoice("INV-1", "PO-1", &["SH-1"], "80000", due, doc("i1"))),
        d.tx("sup1", client::issue_invoice("INV-2", "PO-1", &["SH-1"], "1000", due, doc("i2"))),
        d.tx("sup1", client::issue_invoice("INV-3", "PO-2", &["SH-2"], "200000", due, doc("i3"))),
    ];
    let results = d.block(txs);
    assert_eq!(
        results.iter().map(|r| r.reject_code.as_str()).collect::<Vec<_>>(),
        ["", "already_invoiced", ""]
    );
    let double_invoice = at(&d, 1);

    // Acceptances: the second would take core beyond its 100,000 line.
    let maturity = d.now_ms + 90 * DAY_MS;
    let txs = vec![
        d.tx("core", client::accept_invoice("INV-1", maturity)),
        d.tx("core", client::accept_invoice("INV-3", maturity)),
    ];
    let results = d.block(txs);
    assert!(results[0].applied);
    assert_eq!(results[1].reject_code, "credit_limit_exceeded");
    let over_limit_accept = at(&d, 1);
    let token = results[0].created_ids[0].clone();

    // sup1 pays sup2 with part of the token, then tries to spend the retired parent again.
    let txs = vec![
        d.tx("sup1", client::transfer_token(&token, "sup2", "30000")),
        d.tx("sup1", client::transfer_token(&token, "sup2", "1000")),
    ];
    let results = d.block(txs);
    assert!(results[0].applied);
    assert_eq!(results[1].reject_code, "token_not_live");
    let split_by_sup1 = at(&d, 0);
    let (sent, kept) = (results[0].created_ids[0].clone(), results[0].created_ids[1].clone());

    // sup2 sells its piece to bank2.
    let offer = d.ok("sup2", client::offer_token(&sent, "bank2", "0.05", d.now_ms + DAY_MS));
    d.advance(HOUR_MS);
    d.ok("bank2", client::discount_token(&offer.created_ids[0], "0.04"));

    // sup1 rotates its key; afterwards its new key signs and its old key no longer does.
    let sup1_old = d.identity("sup1").key.clone();
    let sup1_new = SigningKey::from_seed("sup1-rotated");
    d.ok("sup1", client::rotate_key(&sup1_new.public_key().to_bytes()));
    let sup1_rotation = d.height();
    d.identities.insert("sup1".into(), Identity::new(MODEL_CHAIN_ID, "sup1", sup1_new.clone()));
    let stale = client::transfer_token(&kept, "sup2", "5000");
    let txs = vec![
        d.tx("sup1", client::transfer_token(&kept, "sup2", "10000")),
        d.tx_with_key("sup1", &sup1_old, stale),
    ];
    let results = d.block(txs);
    assert!(results[0].applied);
    assert_eq!(results[1].reject_code, "bad_signature");
    let transfer_after_rotation = at(&d, 0);
    let stale_key = at(&d, 1);
    let sup1_piece = results[0].created_ids[1].clone();

    // sup2 rotates and uses its new key in the same block.
    let sup2_old = d.identity("sup2").key.clone();
    let sup2_new = SigningKey::from_seed("sup2-rotated");
    let rotate = d.tx("sup2", client::rotate_key(&sup2_new.public_key().to_bytes()));
    d.identities.insert("sup2".into(), Identity::new(MODEL_CHAIN_ID, "sup2", sup2_new));
    let grant = client::grant_access("bank1", ledger::pb::AccessScope::Receivables, year);
    let use_new_key = d.tx("sup2", grant);
    assert!(d.block(vec![rotate, use_new_key]).iter().all(|r| r.applied));
    let in_block_rotation = at(&d, 1);

    // At maturity the obligor pays every holder.
    d.advance(90 * DAY_MS);
    let txs = vec![
        d.tx("core", client::settle_token(&sent, "SEPA-1")),
        d.tx("core", client::settle_token(&sup1_piece, "SEPA-2")),
    ];
    assert!(d.block(txs).iter().all(|r| r.applied));

    Scenario {
        driver: d,
        split_by_sup1,
        double_invoice,
        over_limit_accept,
        sup1_rotation,
        transfer_after_rotation,
        stale_key,
        in_block_rotation,
        sup1_old,
        sup1_new,
        sup2_old,
    }
}

impl Scenario {
    fn blocks(&self) -> Vec<Block> {
        self.driver.chain.blocks.clone()
    }

    fn genesis(&self) -> Genesis {
        self.driver.chain.ledger.genesis().clone()
    }
}

/// Verifies `blocks` from genesis; the first break, if any.
fn verify(genesis: &Genesis, blocks: &[Block], signatures: bool) -> Result<(), ChainBreak> {
    let mut verifier = ChainVerifier::new(genesis, signatures);
    for block in blocks {
        verifier.verify_block(block)?;
    }
    Ok(())
}

/// Replays the chain from genesis, keeping only whether and where it breaks.
fn replay(genesis: &Genesis, blocks: &[Block]) -> Result<(), ChainBreak> {
    replay_chain(genesis, blocks).map(|_| ())
}

/// Turns a rejection into an applied result, as a forger hiding it would.
fn mark_applied(result: &mut TxResult) {
    result.applied = true;
    result.reject_code.clear();
    result.reject_message.clear();
}

/// What a verification that fails at `height` for `reason` answers.
fn broken(height: u64, reason: BreakReason) -> Result<(), ChainBreak> {
    Err(ChainBreak { height, reason })
}

/// Asserts that `blocks` break with `expected` whether signatures are checked or not.
fn assert_breaks_either_way(genesis: &Genesis, blocks: &[Block], expected: &ChainBreak) {
    assert_eq!(verify(genesis, blocks, false), Err(expected.clone()));
    assert_eq!(verify(genesis, blocks, true), Err(expected.clone()));
}

/// Asserts that `blocks` verify without signatures, and that the signature check catches the
/// transaction at `at`.
fn assert_only_signatures_catch(genesis: &Genesis, blocks: &[Block], at: At) {
    assert_eq!(verify(genesis, blocks, false), Ok(()), "only the signature can catch this");
    let invalid = BreakReason::SignatureInvalid { index: at.index };
    assert_eq!(verify(genesis, blocks, true), broken(at.height, invalid));
}

fn tx_mut(blocks: &mut [Block], at: At) -> &mut SignedTx {
    &mut blocks[usize::try_from(at.height).unwrap() - 1].txs[at.index]
}

fn block_mut(blocks: &mut [Block], height: u64) -> &mut Block {
    &mut blocks[usize::try_from(height).unwrap() - 1]
}

/// The same body signed with another key.
/// The header of the block at `height`.
fn header_mut(blocks: &mut [Block], height: u64) -> &mut ledger::pb::BlockHeader {
    block_mut(blocks, height).header.as_mut().expect("test blocks have headers")
}

/// Re-seals the blocks from `height` on (see [`reseal`]).
fn reseal_from(genesis: &Genesis, blocks: &mut [Block], height: u64) {
    reseal(genesis, blocks, usize::try_from(height).unwrap() - 1);
}

fn resign(tx: &SignedTx, key: &SigningKey) -> SignedTx {
    SignedTx { body: tx.body.clone(), signature: key.sign(&tx.body).to_bytes().to_vec() }
}

/// Sets each result's transaction hash to its transaction's, as a forger who changed a body must.
fn fix_result_hashes(block: &mut Block) {
    for (tx, result) in block.txs.iter().zip(block.results.iter_mut()) {
        result.tx_hash = ledger::tx::tx_hash(tx).to_vec();
    }
}

fn index_of(at: At) -> usize {
    at.index
}

// ---------------------------------------------------------------------------------------------
// (a) Determinism
// ---------------------------------------------------------------------------------------------

// Goal: the same batches applied twice from scratch, each time with a fresh ledger and store,
// give identical blocks, block hashes, state hashes, tips, write sets and stores; replay rebuilds
// the same store; and a different proposed time changes the chain from that height on (so the
// comparison has teeth).
#[test]
fn same_batches_give_the_same_chain() {
    let scenario = scenario();
    let batches = &scenario.driver.batches;
    assert!(
        scenario.blocks().iter().flat_map(|b| &b.results).any(|r| !r.applied),
        "the history includes rejected transactions"
    );
    let run = |batches: &[(u64, Vec<SignedTx>)]| {
        let mut chain = Chain::new(genesis(MODEL_CHAIN_ID));
        let applied: Vec<_> = batches.iter().map(|(t, txs)| chain.apply(*t, txs.clone())).collect();
        (applied, chain.store)
    };
    let (first, first_store) = run(batches);
    let (second, second_store) = run(batches);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        let height = a.tip.height;
        assert_eq!(a.hash, b.hash, "block hash at {height}");
        assert_eq!(a.tip.state_hash, b.tip.state_hash, "state hash at {height}");
        assert_eq!(a, b, "block, tip or write set at {height}");
    }
    assert_eq!(first_store.entries(), second_store.entries());
    assert_eq!(first_store.entries(), scenario.driver.chain.store.entries());
    let hashes: std::collections::BTreeSet<_> = first.iter().map(|a| a.hash).collect();
    assert_eq!(hashes.len(), first.len(), "every block hash is distinct");

    let replayed = replay_chain(&scenario.genesis(), &scenario.blocks()).unwrap();
    assert_eq!(replayed.entries(), first_store.entries());

    // One millisecond later at one height: that block and every later one differ.
    let mut shifted = batches.clone();
    let height = 5;
    shifted[height - 1].0 += 1;
    let (third, _) = run(&shifted);
    assert_eq!(first[height - 2].hash, third[height - 2].hash);
    for h in height..=first.len() {
        assert_ne!(first[h - 1].hash, third[h - 1].hash, "block {h} must change");
    }
}

// ---------------------------------------------------------------------------------------------
// (b) ChainVerifier
// ---------------------------------------------------------------------------------------------

// Goal: the honest chain verifies with every signature checked, across two key rotations (one
// used in the same block), a stale-key rejection and rejected transactions, and the verifier
// computes the same block hashes as the ledger.
#[test]
fn verifier_accepts_the_honest_chain() {
    let scenario = scenario();
    let mut verifier = ChainVerifier::new(&scenario.genesis(), true);
    for (block, hash) in scenario.blocks().iter().zip(&scenario.driver.chain.hashes) {
        assert_eq!(verifier.verify_block(block).unwrap(), *hash);
    }
    assert_eq!(verifier.next_height(), scenario.driver.height() + 1);
}

// Goal: a flipped byte in a transaction body is reported at its height: the result no longer
// names the transaction; and if the forger re-points the result and recomputes every hash, the
// signature check still catches it.
#[test]
fn flipped_body_byte_breaks_at_its_height() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let at = scenario.split_by_sup1;

    let mut blocks = scenario.blocks();
    let body = &mut tx_mut(&mut blocks, at).body;
    let last = body.len() - 1;
    body[last] ^= 0x01;
    let expected = ChainBreak {
        height: at.height,
        reason: BreakReason::ResultHashMismatch { index: index_of(at) },
    };
    assert_breaks_either_way(&genesis, &blocks, &expected);

    fix_result_hashes(block_mut(&mut blocks, at.height));
    reseal_from(&genesis, &mut blocks, at.height);
    assert_only_signatures_catch(&genesis, &blocks, at);
}

// Goal: an applied transaction whose signature is replaced by one from another key, over the
// same body, changes the block's transaction root (signatures are bound into the Merkle leaves),
// so it breaks the root check at its height; a forger who recomputes every root and link gets
// different block hashes from that height on, and then only the signature check catches it, at
// its height; replay catches it too, as a changed result.
#[test]
fn forged_signature_is_caught_only_by_the_signature_check() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let at = scenario.split_by_sup1;
    let mut blocks = scenario.blocks();
    let forged = resign(tx_mut(&mut blocks, at), &SigningKey::from_seed("sup2"));
    *tx_mut(&mut blocks, at) = forged;
    assert_eq!(verify(&genesis, &blocks, false), broken(at.height, BreakReason::TxRootMismatch));
    reseal(&genesis, &mut blocks, 0);
    let first_changed = usize::try_from(at.height).unwrap() - 1;
    for (position, (tampered, honest)) in
        blocks.iter().zip(&scenario.driver.chain.hashes).enumerate()
    {
        assert_eq!(
            block_hash(tampered) == *honest,
            position < first_changed,
            "block {}",
            position + 1
        );
    }
    assert_only_signatures_catch(&genesis, &blocks, at);
    assert_eq!(
        replay(&genesis, &blocks),
        broken(at.height, BreakReason::ResultMismatch { index: at.index })
    );
}

// Goal: a forger who rewrites someone else's applied transaction (sup2 raises the amount sup1
// sent it) and signs it with its own key is caught at that height: by the signature check when
// it recomputed results, root and every later link; by the Merkle root check when it re-pointed
// the result but did not recompute the root; by the result check when it recomputed nothing.
#[test]
fn forged_transaction_is_caught_at_its_height() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let at = scenario.split_by_sup1;
    let forger = SigningKey::from_seed("sup2");
    let forge = |blocks: &mut Vec<Block>| {
        let tx = tx_mut(blocks, at);
        let mut body = TxBody::decode(tx.body.as_slice()).unwrap();
        match body.command.as_mut() {
            Some(Command::TransferToken(transfer)) => transfer.amount = "50000.00".into(),
            other => panic!("expected the split, found {other:?}"),
        }
        *tx = ledger::tx::sign(&body, &forger);
    };
    let height = usize::try_from(at.height).unwrap();

    // Everything recomputed: only the signature check sees it.
    let mut blocks = scenario.blocks();
    forge(&mut blocks);
    fix_result_hashes(block_mut(&mut blocks, at.height));
    reseal(&genesis, &mut blocks, height - 1);
    assert_only_signatures_catch(&genesis, &blocks, at);

    // The result re-pointed, the root left alone.
    let mut blocks = scenario.blocks();
    forge(&mut blocks);
    fix_result_hashes(block_mut(&mut blocks, at.height));
    let expected = ChainBreak { height: at.height, reason: BreakReason::TxRootMismatch };
    assert_breaks_either_way(&genesis, &blocks, &expected);

    // Nothing recomputed.
    let mut blocks = scenario.blocks();
    forge(&mut blocks);
    assert_eq!(
        verify(&genesis, &blocks, true),
        broken(at.height, BreakReason::ResultHashMismatch { index: at.index })
    );
}

// Goal: a changed result (the rejected double invoice's code rewritten, or the rejection
// flipped to applied) breaks the results hash at its height when the forger does not recompute
// it; its message, text for people, is not hashed, so a reworded message breaks neither the
// verifier nor a replay (an edit to an error text in a later version keeps old chains valid).
#[test]
fn changed_result_breaks_the_results_hash() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let at = scenario.double_invoice;
    let expected = ChainBreak { height: at.height, reason: BreakReason::ResultsHashMismatch };

    let mut blocks = scenario.blocks();
    block_mut(&mut blocks, at.height).results[at.index].reject_code = "expired".into();
    assert_eq!(verify(&genesis, &blocks, true), Err(expected.clone()));

    let mut blocks = scenario.blocks();
    block_mut(&mut blocks, at.height).results[at.index].reject_message = "reworded".into();
    assert_eq!(verify(&genesis, &blocks, true), Ok(()));
    assert_eq!(replay(&genesis, &blocks), Ok(()));

    let mut blocks = scenario.blocks();
    let result = &mut block_mut(&mut blocks, at.height).results[at.index];
    mark_applied(result);
    assert_eq!(verify(&genesis, &blocks, true), Err(expected));
}

// Goal: a removed block is reported at its height, as a gap.
#[test]
fn removed_block_breaks_at_its_height() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    for height in [1u64, 6, scenario.driver.height()] {
        let mut blocks = scenario.blocks();
        blocks.remove(usize::try_from(height).unwrap() - 1);
        let expected = if height == scenario.driver.height() {
            // Removing the last block leaves a shorter, valid prefix.
            Ok(())
        } else {
            broken(height, BreakReason::HeightGap { expected: height, found: height + 1 })
        };
        assert_eq!(verify(&genesis, &blocks, true), expected, "removed block {height}");
    }
}

// Goal: a block whose time goes back before its predecessor's is reported at its height, even
// when the forger re-links every later block.
#[test]
fn time_going_backwards_breaks_at_its_height() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let height = scenario.over_limit_accept.height;
    let mut blocks = scenario.blocks();
    let previous = blocks[usize::try_from(height).unwrap() - 2].header.as_ref().unwrap().time_ms;
    header_mut(&mut blocks, height).time_ms = previous - 1;
    reseal_from(&genesis, &mut blocks, height);
    assert_eq!(
        verify(&genesis, &blocks, true),
        broken(height, BreakReason::TimeWentBackwards { previous, found: previous - 1 })
    );
}

// Goal: a changed `prev_hash` is reported at its height; re-linking everything after it does not
// help.
#[test]
fn changed_prev_hash_breaks_at_its_height() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let height = scenario.split_by_sup1.height;
    let mut blocks = scenario.blocks();
    header_mut(&mut blocks, height).prev_hash = vec![7; 32];
    reseal(&genesis, &mut blocks, usize::try_from(height).unwrap());
    assert_eq!(verify(&genesis, &blocks, true), broken(height, BreakReason::PrevHashMismatch));
}

// ---------------------------------------------------------------------------------------------
// (c) Replay
// ---------------------------------------------------------------------------------------------

// Goal: a changed state hash, with the block hash and every later link recomputed, passes the
// verifier (which cannot see state) but not a replay, which reports it at its height.
#[test]
fn replay_catches_a_changed_state_hash() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let height = scenario.split_by_sup1.height;
    let mut blocks = scenario.blocks();
    header_mut(&mut blocks, height).state_hash[0] ^= 0xff;
    reseal_from(&genesis, &mut blocks, height);
    assert_eq!(verify(&genesis, &blocks, true), Ok(()));
    assert_eq!(replay(&genesis, &blocks), broken(height, BreakReason::StateHashMismatch));
}

// Goal: a validly signed acceptance that was rejected for exceeding the credit line, marked
// applied with the results hash, block hash and later links recomputed, passes the verifier
// (signatures included) but a replay reports the changed result at its height and position.
#[test]
fn replay_catches_a_rejected_transaction_marked_applied() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    let at = scenario.over_limit_accept;
    let mut blocks = scenario.blocks();
    let result = &mut block_mut(&mut blocks, at.height).results[at.index];
    assert_eq!(result.reject_code, "credit_limit_exceeded");
    mark_applied(result);
    reseal_from(&genesis, &mut blocks, at.height);
    assert_eq!(verify(&genesis, &blocks, true), Ok(()));
    assert_eq!(
        replay(&genesis, &blocks),
        broken(at.height, BreakReason::ResultMismatch { index: at.index })
    );
}

// ---------------------------------------------------------------------------------------------
// (d) Key rotation
// ---------------------------------------------------------------------------------------------

// Goal: after a RotateKey in the middle of the chain the verifier checks the party's signatures
// against the new key, and before it against the old one: a post-rotation transaction re-signed
// with the old key, or a pre-rotation one re-signed with the new key, breaks at its height; so
// does a transaction re-signed with a party's old key right after an in-block rotation; and a
// result that calls a valid signature bad is flagged.
#[test]
fn verifier_follows_key_rotation() {
    let scenario = scenario();
    let genesis = scenario.genesis();
    assert!(scenario.split_by_sup1.height < scenario.sup1_rotation);
    assert!(scenario.sup1_rotation < scenario.transfer_after_rotation.height);

    // The stale-key transaction in the honest chain is rejected, and rightly not flagged.
    let stale = scenario.stale_key;
    let honest = scenario.blocks();
    let stale_result = &honest[usize::try_from(stale.height).unwrap() - 1].results[stale.index];
    assert_eq!(stale_result.reject_code, "bad_signature");
    assert_eq!(verify(&genesis, &honest, true), Ok(()));

    let cases = [
        (scenario.transfer_after_rotation, scenario.sup1_old.clone()),
        (scenario.split_by_sup1, scenario.sup1_new.clone()),
        (scenario.in_block_rotation, scenario.sup2_old.clone()),
    ];
    for (at, key) in cases {
        let mut blocks = scenario.blocks();
        let forged = resign(tx_mut(&mut blocks, at), &key);
        *tx_mut(&mut blocks, at) = forged;
        // Recompute every root and link, so only the signature check can tell.
        reseal(&genesis, &mut blocks, 0);
        assert_eq!(
            verify(&genesis, &blocks, true),
            broken(at.height, BreakReason::SignatureInvalid { index: at.index }),
            "re-signed at {at:?}"
        );
    }

    // The transfer signed with the new key, falsely recorded as a bad signature.
    let at = scenario.transfer_after_rotation;
    let mut blocks = scenario.blocks();
    let result = &mut block_mut(&mut blocks, at.height).results[at.index];
    result.applied = false;
    result.reject_code = "bad_signature".into();
    result.created_ids.clear();
    reseal_from(&genesis, &mut blocks, at.height);
    assert_eq!(
        verify(&genesis, &blocks, true),
        broken(at.height, BreakReason::FalseSignatureRejection { index: at.index })
    );
}
