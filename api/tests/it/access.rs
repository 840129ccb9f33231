//! The access log over HTTP: every read of private data is logged with who, why and under
//! whose grant; a party reads the accesses to its own records (and only those) with
//! `GET /v1/access-log`; a regulator must say why it reads; and the entries chain to the head a
//! replica publishes in `/v1/status`, by the layout `raft_node::access_log` documents.

use crate::common;

use common::*;
use ledger::client::{self, Identity};
use ledger::pb::AccessScope;
use serde_json::Value;

/// Recomputes an entry's hash from its JSON fields, by the documented text.
fn entry_hash(entry: &Value) -> String {
    let text_of = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let list = |v: &Value| {
        (v.as_array().unwrap().iter()).map(|x| x.as_str().unwrap()).collect::<Vec<_>>().join(" ")
    };
    let text = format!(
        "scf-access-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        entry["node_id"],
        entry["seq"],
        text_of(&entry["prev"]),
        entry["time_ms"],
        text_of(&entry["reader"]),
        text_of(&entry["role"]),
        text_of(&entry["purpose"]),
        text_of(&entry["grant"]),
        text_of(&entry["path"]),
        list(&entry["owners"]),
        list(&entry["records"]),
    );
    hex::encode(ledger::crypto::sha256(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_sees_who_read_its_records_and_why() {
    let chain = Parties::register("access").await;
    let Parties { http, voter, observer, buyer, seller, bank, regulator, stranger, .. } = &chain;
    let far = valid_until_ms() + 365 * 24 * 3_600_000;
    for (who, command) in [
        (bank, client::grant_credit_line("line-1", "acme", "1000000.00", "EUR", far)),
        (buyer, client::create_purchase_order("po-1", "parts", &[("bolt", 1, "10.00")], "EUR")),
        (seller, client::record_shipment("sh-1", "po-1", &[("bolt", 1)], "", [7; 32])),
        (buyer, client::confirm_delivery("sh-1")),
        (seller, client::issue_invoice("inv-1", "po-1", &["sh-1"], "10.00", far, [8; 32])),
        (buyer, client::accept_invoice("inv-1", far)),
        (seller, client::grant_access("bank", AccessScope::Receivables, far)),
    ] {
        let (status, answer) =
            http.post(&format!("{voter}/v1/transactions"), &chain.sign(who, command)).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
    }
    let (_, held) = {
        let path = "/v1/tokens?holder=parts";
        let headers = signed(http, voter, Some(seller), path).await;
        http.get_with(&format!("{voter}{path}"), &headers).await
    };
    let token = held["tokens"][0]["token_id"].as_str().expect("the minted token").to_owned();
    let read = |path: String, who: &Identity| {
        let (http, base, who) = (http.clone(), voter.clone(), who.clone());
        async move {
            let headers = signed(&http, &base, Some(&who), &path).await;
            http.get_with(&format!("{base}{path}"), &headers).await
        }
    };
    let log_of = |who: &Identity| read("/v1/access-log".to_owned(), who);

    // The seller read its own token list above: a read of the seller's tokens, and of the
    // buyer's too (they are its debts), logged for each of them.
    let token_record = format!("token:{token}");
    let (status, before) = log_of(buyer).await;
    assert_eq!(status, 200, "{before}");
    let first = &before["entries"][0];
    assert_eq!(
        (first["reader"].as_str(), first["records"][0].as_str()),
        (Some("parts"), Some(token_record.as_str())),
        "{before}"
    );

    // The buyer reads its invoice; the bank its grantor's token; a regulator the invoice, for an
    // investigation. A regulator without a purpose, or with a party's, is refused and unlogged.
    assert_eq!(read("/v1/invoices/inv-1".to_owned(), buyer).await.0, 200);
    assert_eq!(read(format!("/v1/tokens/{token}"), bank).await.0, 200);
    let (status, answer) = read("/v1/invoices/inv-1".to_owned(), regulator).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("purpose_required")));
    let (status, answer) = read("/v1/invoices/inv-1?purpose=business".to_owned(), regulator).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("purpose_required")));
    let (status, answer) = read("/v1/invoices/inv-1?purpose=curiosity".to_owned(), buyer).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_purpose")));
    // A party cannot claim a regulator's purpose, and nobody gives two.
    let claimed = "/v1/invoices/inv-1?purpose=legal_order".to_owned();
    let (status, answer) = read(claimed, buyer).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("purpose_not_allowed")));
    let twice = "/v1/invoices/inv-1?purpose=audit&purpose=investigation".to_owned();
    let (status, answer) = read(twice, regulator).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_purpose")));
    // Nor by spelling the second one's key with a percent escape, which the query decodes.
    let escaped = "/v1/invoices/inv-1?purpose=audit&purpos%65=investigation".to_owned();
    let (status, answer) = read(escaped, regulator).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_purpose")));
    let path = "/v1/invoices/inv-1?purpose=investigation".to_owned();
    assert_eq!(read(path.clone(), regulator).await.0, 200);
    // A stranger's refused read touches nobody's data: nothing is logged.
    assert_eq!(read("/v1/invoices/inv-1".to_owned(), stranger).await.0, 403);
    // A regulator's market-wide report is a read of everyone's data.
    let report = "/v1/supervision/exposure?purpose=supervision".to_owned();
    assert_eq!(read(report.clone(), regulator).await.0, 200);

    // The buyer (obligor of the token, party of the invoice) sees all five, in order, each
    // naming the buyer alone: not who else's records the same answer held, nor whose grant
    // let the bank read (that is between the seller and the bank).
    let (status, log) = log_of(buyer).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["scope"], "own");
    let entries = log["entries"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>, Option<&str>, &str)> = entries
        .iter()
        .map(|e| {
            let records = e["records"][0].as_str().unwrap();
            (e["reader"].as_str().unwrap(), e["purpose"].as_str(), e["grant"].as_str(), records)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("parts", None, None, token_record.as_str()),
            ("acme", None, None, "invoice:inv-1"),
            ("bank", None, None, token_record.as_str()),
            ("reg", Some("investigation"), None, "invoice:inv-1"),
            ("reg", Some("supervision"), None, "report:exposure"),
        ],
        "{log}"
    );
    assert_eq!(entries[3]["path"], path);
    assert_eq!(entries[3]["role"], "regulator");
    assert_eq!(entries[4]["owners"], serde_json::json!(["*"]));
    assert!(entries[..4].iter().all(|e| e["owners"] == serde_json::json!(["acme"])), "{log}");

    // The seller's five: the bank's read names the seller's grant on the seller's entry.
    let (_, log) = log_of(seller).await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{log}");
    assert_eq!(
        (entries[2]["reader"].as_str(), entries[2]["grant"].as_str()),
        (Some("bank"), Some("parts"))
    );
    // The stranger sees only the market-wide report; the bank (no owner of anything read)
    // likewise.
    for who in [stranger, bank] {
        let (_, log) = log_of(who).await;
        let records: Vec<&str> = (log["entries"].as_array().unwrap().iter())
            .map(|e| e["records"][0].as_str().unwrap())
            .collect();
        assert_eq!(records, ["report:exposure"], "{log}");
    }

    // A regulator sees the whole log, which chains to the head in /v1/status entry by entry;
    // its look is itself logged, as a read of everyone's accounting.
    let (status, refused) = log_of(regulator).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("purpose_required")));
    let (status, all) = read("/v1/access-log?purpose=audit".to_owned(), regulator).await;
    assert_eq!((status, all["scope"].as_str()), (200, Some("all")), "{all}");
    let entries = all["entries"].as_array().unwrap().clone();
    // One entry per owner of each read: 2 + 2 + 2 + 2 reads of two owners' records, 1 report,
    // and the regulator's look at the log.
    assert_eq!(entries.len(), 10, "{all}");
    assert_eq!(entries[9]["records"], serde_json::json!(["access_log"]), "{all}");
    let mut prev = "0".repeat(64);
    for (seq, entry) in (1..).zip(&entries) {
        assert_eq!(entry["seq"], seq, "{entry}");
        assert_eq!(entry["prev"].as_str(), Some(prev.as_str()), "{entry}");
        assert_eq!(entry["hash"].as_str(), Some(entry_hash(entry).as_str()), "{entry}");
        prev = entry["hash"].as_str().unwrap().to_owned();
    }
    let (_, status) = http.get(&format!("{voter}/v1/status")).await;
    assert_eq!(status["access_log"]["length"], 10, "{status}");
    assert_eq!(status["access_log"]["head"].as_str(), Some(prev.as_str()), "{status}");
    // Paging.
    let (_, page) = read("/v1/access-log?purpose=audit&from=2&limit=2".to_owned(), regulator).await;
    let seqs: Vec<u64> =
        page["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!((seqs, page["next"].as_u64()), (vec![2, 3], Some(4)), "{page}");
    assert_eq!(page["earlier"].as_u64(), Some(2), "entry 1 precedes the page: {page}");
    // The newest, and the page before them: each look of the regulator's is logged before it
    // is answered (entries 11, 12 and 13).
    let seqs_next_earlier = |page: &serde_json::Value| {
        let seqs: Vec<u64> = (page["entries"].as_array().unwrap().iter())
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        (seqs, page["next"].as_u64(), page["earlier"].as_u64())
    };
    let newest = "/v1/access-log?purpose=audit&before=18446744073709551615&limit=2";
    let (_, page) = read(newest.to_owned(), regulator).await;
    assert_eq!(seqs_next_earlier(&page), (vec![11, 12], None, Some(11)), "{page}");
    let (_, page) =
        read("/v1/access-log?purpose=audit&before=11&limit=2".to_owned(), regulator).await;
    assert_eq!(seqs_next_earlier(&page), (vec![9, 10], Some(11), Some(9)), "{page}");
    let (_, page) =
        read("/v1/access-log?purpose=audit&before=3&limit=5".to_owned(), regulator).await;
    assert_eq!(seqs_next_earlier(&page), (vec![1, 2], Some(3), None), "{page}");
    // Both: the newest below `before`, none below `from`.
    let between = "/v1/access-log?purpose=audit&from=2&before=5&limit=10";
    let (_, page) = read(between.to_owned(), regulator).await;
    assert_eq!(seqs_next_earlier(&page), (vec![2, 3, 4], Some(5), Some(2)), "{page}");
    for bad in ["from=0", "limit=0", "limit=1001", "cursor=1", "before=0", "before=x"] {
        let (status, answer) = read(format!("/v1/access-log?{bad}"), buyer).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")), "{bad}");
    }
    // Unsigned: 401.
    let (status, _) = http.get(&format!("{voter}/v1/access-log")).await;
    assert_eq!(status, 401);

    // Each replica keeps its own log: the observer answered none of these reads.
    let (_, other) = http.get(&format!("{observer}/v1/status")).await;
    assert_eq!(other["access_log"]["length"], 0, "{other}");

    // The grant's read count is the log's.
    let (_, grants) = read("/v1/parties/parts/grants".to_owned(), seller).await;
    assert_eq!(grants["grants"][0]["reads_on_this_replica"], 1, "{grants}");
}

/// A lookup of one transaction is logged as its event stream is: a party's in its own log only
/// (an entry in the counterparty's would tell it of the reader's part), a regulator's for every
/// party the transaction involves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_lookup_is_logged_for_its_reader_or_every_party_it_involves() {
    let chain = Parties::register("access-tx").await;
    let Parties { http, voter, buyer, seller, regulator, .. } = &chain;
    let command = client::create_purchase_order("po-1", "parts", &[("bolt", 1, "10.00")], "EUR");
    let (status, answer) =
        http.post(&format!("{voter}/v1/transactions"), &chain.sign(buyer, command)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
    let hash = answer["tx_hash"].as_str().expect("a tx hash").to_owned();
    let record = format!("transaction:{hash}");
    let read = |path: String, who: &Identity| {
        let (http, base, who) = (http.clone(), voter.clone(), who.clone());
        async move {
            let headers = signed(&http, &base, Some(&who), &path).await;
            http.get_with(&format!("{base}{path}"), &headers).await
        }
    };
    // Who read the transaction, by `who`'s log.
    let readers_in = |who: &Identity| {
        let (read, record) = (read, record.clone());
        let who = who.clone();
        async move {
            let (status, log) = read("/v1/access-log".to_owned(), &who).await;
            assert_eq!(status, 200, "{log}");
            let entries = log["entries"].as_array().expect("entries").clone();
            entries
                .iter()
                .filter(|e| e["records"].as_array().unwrap().iter().any(|r| *r == record))
                .map(|e| e["reader"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let (status, answer) = read(format!("/v1/transactions/{hash}"), seller).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
    assert_eq!(readers_in(seller).await, ["parts"]);
    assert!(readers_in(buyer).await.is_empty(), "the buyer is not told the seller looked");
    let path = format!("/v1/transactions/{hash}?purpose=supervision");
    assert_eq!(read(path, regulator).await.0, 200);
    assert_eq!(readers_in(buyer).await, ["reg"]);
    assert_eq!(readers_in(seller).await, ["parts", "reg"]);
}
