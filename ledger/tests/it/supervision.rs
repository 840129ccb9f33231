//! The regulator's figures (`ledger::supervision`) on a small market whose answers are worked
//! out by hand: two receivables of `core`, one split down to `sup2`, pieces discounted at two
//! banks, one left overdue, and three kinds of refused attempt.

use crate::common;

use common::*;
use ledger::client;
use ledger::pb::tx_body::Command;
use ledger::pb::{SignedTx, TxBody};
use ledger::supervision::{self, Scope, WEEK_MS};
use prost::Message;
use rust_decimal::Decimal;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// `core` owes two tokens: T1 (80,000, maturity in 90 days) split 30,000 to `sup2`, who sells
/// it to `bank1` at 4%; and T2 (20,000, maturity in 10 days) sold by `sup1` to `bank2` at 6%.
/// `bank2` also grants `core` 500,000 USD, so `core` has a second currency with no tokens. Then
/// 11 days pass: T2 is overdue.
fn market() -> (Driver, [String; 4]) {
    let mut h = cast();
    let t1 = accepted_token(&mut h, "1", "80000.00");
    let split = h.ok("sup1", client::transfer_token(&t1, "sup2", "30000"));
    let (sent, kept) = (split.created_ids[0].clone(), split.created_ids[1].clone());
    let expires = h.now_ms + DAY_MS;
    let offer =
        h.ok("sup2", client::offer_token(&sent, "bank1", "0.05", expires)).created_ids[0].clone();
    h.ok("bank1", client::discount_token(&offer, "0.04"));

    let inv = delivered_invoice(&mut h, "2", "20000.00");
    let t2 =
        h.ok("core", client::accept_invoice(&inv, h.now_ms + 10 * DAY_MS)).created_ids[0].clone();
    let offer =
        h.ok("sup1", client::offer_token(&t2, "bank2", "0.07", expires)).created_ids[0].clone();
    h.ok("bank2", client::discount_token(&offer, "0.06"));
    let expires = h.now_ms + 365 * DAY_MS;
    h.ok("bank2", client::grant_credit_line("L2", "core", "500000.00", "USD", expires));
    h.advance(11 * DAY_MS);
    // Ledger time is the tip's: an empty block brings it to now.
    h.block(Vec::new());
    (h, [sent, kept, t2, t1])
}

// Goal: exposure per obligor and currency: unsettled, overdue, limit, usage, holders.
#[test]
fn exposure_per_obligor() {
    let (h, _) = market();
    let rows = supervision::exposure(&h.chain.store, Scope::All).unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            let e = &r.exposure;
            (r.obligor.as_str(), e.currency.as_str(), e.unsettled, e.overdue, e.credit_limit)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("core", "EUR", d("100000"), d("20000"), d("1000000")),
            ("core", "USD", d("0"), d("0"), d("500000")),
        ]
    );
    // Holders of live tokens: bank1 (sent), sup1 (kept), bank2 (T2, overdue but unsettled).
    assert_eq!((rows[0].exposure.holders, rows[0].live_tokens), (3, 3));
    assert_eq!(rows[0].credit_used(), Some(d("0.1")));
    assert_eq!(supervision::exposure(&h.chain.store, Scope::Party("core")).unwrap(), rows);
    // A supplier owes nothing: its own view has no rows.
    let own = supervision::exposure(&h.chain.store, Scope::Party("sup1")).unwrap();
    assert!(own.is_empty(), "{own:?}");
}

// Goal: maturity ladder: overdue apart, then one bucket per week from ledger time.
#[test]
fn maturity_ladder_buckets_by_week() {
    let (h, _) = market();
    let ladders = supervision::maturity_ladder(&h.chain.store, Scope::All, 12).unwrap();
    assert_eq!(ladders.len(), 1, "USD has no tokens: {ladders:?}");
    let eur = &ladders[0];
    assert_eq!((eur.currency.as_str(), eur.overdue, eur.overdue_tokens), ("EUR", d("20000"), 1));
    // T1's pieces mature 90 days after the start, 79 days after now: week 11.
    let weeks: Vec<(u64, Decimal, usize)> = eur
        .buckets
        .iter()
        .filter(|b| b.tokens > 0)
        .map(|b| (b.week, b.face_value, b.tokens))
        .collect();
    assert_eq!(weeks, [(11, d("80000"), 2)]);
    assert_eq!(eur.buckets[0].from_ms, h.now_ms);
    assert_eq!(eur.buckets[0].to_ms, h.now_ms + WEEK_MS);
    // With 8 weeks they fall after the last bucket.
    let short = supervision::maturity_ladder(&h.chain.store, Scope::All, 8).unwrap();
    assert_eq!((short[0].later, short[0].later_tokens), (d("80000"), 2));
    // sup2 sold its piece: it holds and owes nothing live.
    assert!(
        supervision::maturity_ladder(&h.chain.store, Scope::Party("sup2"), 12).unwrap().is_empty()
    );
    let bank1 = supervision::maturity_ladder(&h.chain.store, Scope::Party("bank1"), 12).unwrap();
    assert_eq!(bank1[0].buckets[11].face_value, d("30000"));
    assert_eq!(bank1[0].overdue, Decimal::ZERO);
}

// Goal: the financing totals brought forward block by block, from genesis, are the totals of a
// scan of every financing: each financing is found in the block that wrote it, once, and a
// rejected discount adds nothing. So the API may keep them from height to height.
#[test]
fn financing_totals_advanced_by_blocks_equal_a_scan() {
    let (mut h, _) = market();
    let refused = h.run("bank1", client::discount_token("no-such-offer", "0.04"));
    assert!(!refused.applied);
    let store = &h.chain.store;
    let tip = ledger::query::tip(store).unwrap().expect("a tip").height;
    let mut advanced = supervision::FinancingTotals::default();
    let mut half_way = None;
    for height in 1..=tip {
        assert!(advanced.add_block(store, height).unwrap(), "block {height}");
        if height == tip / 2 {
            half_way = Some(advanced.clone());
        }
    }
    assert!(!advanced.add_block(store, tip + 1).unwrap(), "no block past the tip");
    let scanned = supervision::FinancingTotals::scan(store).unwrap();
    assert_eq!(advanced, scanned);
    // And the figures are the financings' own, summed here without the totals.
    let financings = ledger::query::financings(store).unwrap();
    let face: Decimal = financings.iter().map(|f| d(&f.face_value)).sum();
    let by_bank = advanced.financing_by_bank(Scope::All);
    assert_eq!(by_bank.iter().map(|b| b.count).sum::<usize>(), financings.len());
    assert_eq!(by_bank.iter().map(|b| b.face_value).sum::<Decimal>(), face);
    assert_eq!(advanced.concentration(Scope::All, 10)[0].financed_total, face);
    assert_ne!(half_way, Some(scanned.clone()), "the market's discounts come late in it");
    for scope in [Scope::All, Scope::Party("sup2"), Scope::Party("bank2"), Scope::Party("core")] {
        assert_eq!(
            advanced.financing_by_bank(scope),
            supervision::financing_by_bank(store, scope).unwrap()
        );
        assert_eq!(
            advanced.concentration(scope, 10),
            supervision::concentration(store, scope, 10).unwrap()
        );
    }
}

// Goal: financing per bank with proceeds and the face-weighted average rate; concentration
// ranks obligors and banks with their share of the whole, which only a regulator sees.
#[test]
fn financing_and_concentration() {
    let (h, _) = market();
    let banks = supervision::financing_by_bank(&h.chain.store, Scope::All).unwrap();
    let rows: Vec<_> = banks
        .iter()
        .map(|b| (b.bank.as_str(), b.count, b.face_value, b.proceeds, b.average_rate))
        .collect();
    // 30,000 x (1 - 0.04 x 90/360) = 29,700; 20,000 x (1 - 0.06 x 10/360) = 19,966.67.
    assert_eq!(
        rows,
        [
            ("bank1", 1, d("30000"), d("29700.00"), d("0.04")),
            ("bank2", 1, d("20000"), d("19966.67"), d("0.06")),
        ]
    );
    assert_eq!(banks[1].discount(), d("33.33"));
    assert_eq!((banks[0].average_days, banks[1].average_days), (90, 10));
    // sup2 sold to bank1 only; bank2 sees its own row only.
    let sup2 = supervision::financing_by_bank(&h.chain.store, Scope::Party("sup2")).unwrap();
    assert_eq!(sup2, banks[..1]);
    let bank2 = supervision::financing_by_bank(&h.chain.store, Scope::Party("bank2")).unwrap();
    assert_eq!(bank2, banks[1..]);
    // The obligor pays face value whoever holds its tokens: the sales' terms are not its own.
    assert!(
        supervision::financing_by_bank(&h.chain.store, Scope::Party("core")).unwrap().is_empty()
    );

    let all = supervision::concentration(&h.chain.store, Scope::All, 10).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].financed_total, d("50000"));
    let banks: Vec<_> =
        all[0].banks.iter().map(|s| (s.party.as_str(), s.financed, s.share)).collect();
    assert_eq!(
        banks,
        [("bank1", d("30000"), Some(d("0.6"))), ("bank2", d("20000"), Some(d("0.4")))]
    );
    assert_eq!(all[0].obligors[0].share, Some(Decimal::ONE));
    let top1 = supervision::concentration(&h.chain.store, Scope::All, 1).unwrap();
    assert_eq!(top1[0].banks.len(), 1);
    let own = supervision::concentration(&h.chain.store, Scope::Party("bank2"), 10).unwrap();
    assert_eq!(own[0].financed_total, d("20000"));
    assert!(own[0].obligors.is_empty());
    assert_eq!((own[0].banks[0].financed, own[0].banks[0].share), (d("20000"), None));
}

// Goal: every rejection is logged with who attempted what, counted by reason; a forgery is
// logged under the name it forged, marked unverified.
#[test]
fn rejection_log_names_the_attempts() {
    let (mut h, [sent, ..]) = market();
    // sup1 moves a piece it sold (it is no longer one of the token's parties: it is told there
    // is no such token), then invoices delivered goods a second time.
    h.rejects("sup1", client::transfer_token(&sent, "sup1", "1.00"), "not_found");
    let inv = delivered_invoice(&mut h, "3", "1000.00");
    let again = client::issue_invoice("INV-3b", "PO-3", &["SH-3"], "1000.00", h.now_ms, doc("x"));
    h.rejects("sup1", again, "already_invoiced");
    // Someone signs as core with another key.
    let mut forged = h.tx("sup2", client::accept_invoice(&inv, h.now_ms + DAY_MS));
    let mut body = TxBody::decode(forged.body.as_slice()).unwrap();
    body.signer = "core".into();
    forged = SignedTx { body: body.encode_to_vec(), signature: forged.signature };
    h.rejects_tx(forged, "bad_signature");

    let log = supervision::rejections(&h.chain.store, Scope::All, None, 2).unwrap();
    assert_eq!(log.total, 3);
    assert_eq!(log.by_code.len(), 3);
    assert!(log.by_code.iter().all(|(_, count)| *count == 1), "{:?}", log.by_code);
    let recent: Vec<_> = log
        .recent
        .iter()
        .map(|r| (r.signer.as_str(), r.kind.as_str(), r.code.as_str(), r.signature_verified))
        .collect();
    assert_eq!(
        recent,
        [
            ("core", "accept_invoice", "bad_signature", false),
            ("sup1", "issue_invoice", "already_invoiced", true),
        ]
    );
    assert_eq!(log.recent[0].height, h.chain.blocks.len() as u64);
    let sup1 = supervision::rejections(&h.chain.store, Scope::Party("sup1"), None, 10).unwrap();
    assert_eq!(sup1.total, 2);
    let one = supervision::rejections(&h.chain.store, Scope::All, Some("not_found"), 10).unwrap();
    assert_eq!((one.total, one.recent[0].signer.as_str()), (1, "sup1"));
    // The log is derived from the blocks: a replay rebuilds it exactly.
    let replayed = ledger::replay_chain(&h.genesis(), &h.chain.blocks).unwrap();
    let log = |store: &ledger::MemStore| -> Vec<(Vec<u8>, Vec<u8>)> {
        (store.entries().iter())
            .filter(|(k, _)| k.starts_with(ledger::store::keys::REJECTION_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(log(&replayed), log(&h.chain.store));
    assert_eq!(log(&replayed).len(), 3);
}

// Goal: a transaction involves its signer, the parties it names and the parties of what it
// acts on.
#[test]
fn involved_parties() {
    let (h, [sent, kept, ..]) = market();
    let involved = |signer: &str, command: Command| {
        let body = TxBody { signer: signer.into(), command: Some(command), ..Default::default() };
        supervision::involved(&h.chain.store, &body, true).unwrap()
    };
    assert_eq!(
        involved("sup1", client::transfer_token(&kept, "sup2", "1")),
        ["core", "sup1", "sup2"]
    );
    assert_eq!(involved("core", client::settle_token(&sent, "P")), ["bank1", "core"]);
    assert_eq!(involved("sup1", client::confirm_delivery("SH-1")), ["carrier", "core", "sup1"]);
    assert_eq!(involved("core", client::accept_invoice("INV-2", 1)), ["core", "sup1"]);
    assert_eq!(involved("core", client::accept_invoice("no-such", 1)), ["core"]);
    // A rejected transaction names only whom it names itself: a stranger's doomed settlement
    // of a token must not tell it who holds and owes that token.
    let probe = TxBody {
        signer: "carrier".into(),
        command: Some(client::settle_token(&sent, "P")),
        ..Default::default()
    };
    assert_eq!(supervision::involved(&h.chain.store, &probe, false).unwrap(), ["carrier"]);
    let probe = TxBody {
        signer: "carrier".into(),
        command: Some(client::transfer_token(&sent, "sup2", "1")),
        ..Default::default()
    };
    assert_eq!(supervision::involved(&h.chain.store, &probe, false).unwrap(), ["carrier", "sup2"]);
}
