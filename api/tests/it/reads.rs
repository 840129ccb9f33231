//! Signed reads over HTTP: a receivable's whole life is written through the API, then every
//! private record is read by its parties, a grantee, a regulator, a stranger and an unsigned
//! client, on a voter and on an observer. Owner, grantee and regulator may read; a stranger gets
//! 403 whether the record exists or not; an unsigned request gets 401.

use crate::common;

use api::auth::sign_request;
use common::*;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::AccessScope;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_records_follow_the_access_rules() {
    // One voter and one observer.
    let chain = Parties::register("reads").await;
    let Parties { http, voter, observer, buyer, seller, bank, regulator, stranger, .. } = &chain;
    let until = valid_until_ms();
    let submit = |who: &Identity, command| chain.sign(who, command);
    let post = |body: Value| {
        let http = http.clone();
        let url = format!("{voter}/v1/transactions");
        async move {
            let (status, answer) = http.post(&url, &body).await;
            assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
            answer
        }
    };
    let far = until + 365 * 24 * 3_600_000;
    post(submit(bank, client::grant_credit_line("line-1", "acme", "1000000.00", "EUR", far))).await;
    post(submit(
        buyer,
        client::create_purchase_order("po-1", "parts", &[("bolt", 100, "10.00")], "EUR"),
    ))
    .await;
    post(submit(seller, client::record_shipment("sh-1", "po-1", &[("bolt", 100)], "", [7; 32])))
        .await;
    post(submit(buyer, client::confirm_delivery("sh-1"))).await;
    post(submit(
        seller,
        client::issue_invoice("inv-1", "po-1", &["sh-1"], "1000.00", far, [8; 32]),
    ))
    .await;
    let accepted = post(submit(buyer, client::accept_invoice("inv-1", far))).await;
    let token = accepted["created_ids"][0].as_str().expect("a minted token id").to_owned();
    post(submit(seller, client::grant_access("bank", AccessScope::Receivables, far))).await;

    let read = |base: &str, path: &str, who: Option<&Identity>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        let headers = signed(who, path);
        async move { http.get_with(&url, &headers).await }
    };
    // A linearizable read on the observer answers (over MemoryNode the observer shares the
    // leader's state; a real observer's ReadIndex read is raft-node's tcp_cluster test).
    let (status, answer) =
        read(observer, &format!("/v1/tokens/{token}?consistency=linearizable"), Some(seller)).await;
    assert_eq!((status, answer["holder"].as_str()), (200, Some("parts")), "{answer}");

    // The observer shares the leader's state: it has every block before the reads start.

    let invoice = "/v1/invoices/inv-1";
    let token_path = format!("/v1/tokens/{token}");
    for base in [&voter, &observer] {
        // The parties, and a regulator.
        for who in [buyer, seller, regulator] {
            let (status, answer) = read(base, invoice, Some(who)).await;
            assert_eq!(status, 200, "{} reading the invoice: {answer}", who.party_id);
            assert_eq!(answer["amount"], "1000.00");
            assert_eq!(answer["status"], "accepted");
        }
        for path in ["/v1/purchase-orders/po-1", "/v1/shipments/sh-1"] {
            assert_eq!(read(base, path, Some(buyer)).await.0, 200, "{path}");
            assert_eq!(read(base, path, Some(stranger)).await.0, 403, "{path}");
        }
        // A stranger learns nothing, not even whether a record exists; a regulator is told.
        let (status, answer) = read(base, invoice, Some(stranger)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
        let (status, _) = read(base, "/v1/invoices/no-such", Some(stranger)).await;
        assert_eq!(status, 403);
        let (status, _) = read(base, "/v1/invoices/no-such", Some(regulator)).await;
        assert_eq!(status, 404);
        // No signature: 401.
        let (status, answer) = read(base, invoice, None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")));
        // The bank holds a receivables grant from the seller: tokens yes, trade records no.
        let (status, answer) = read(base, &token_path, Some(bank)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (answer["holder"].as_str(), answer["face_value"].as_str()),
            (Some("parts"), Some("1000.00"))
        );
        assert_eq!(read(base, invoice, Some(bank)).await.0, 403);
        let lineage = format!("/v1/tokens/{token}/lineage");
        assert_eq!(read(base, &lineage, Some(seller)).await.0, 200);
        let (status, held) = read(base, "/v1/tokens?holder=parts", Some(seller)).await;
        assert_eq!(status, 200);
        assert_eq!(held["tokens"].as_array().map(Vec::len), Some(1));
        assert_eq!(read(base, "/v1/tokens?holder=parts", Some(stranger)).await.0, 403);
        // Parties are public.
        let (status, answer) = read(base, "/v1/parties/parts", None).await;
        assert_eq!((status, answer["role"].as_str()), (200, Some("enterprise")));
    }

    // A signature for another path, a stale time, an unknown party: 401.
    let mut headers =
        sign_request("parts", &seller.key, "GET", "/v1/invoices/other", now_ms(), b"").to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{invoice}"), &headers).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("bad_signature")));
    headers =
        sign_request("parts", &seller.key, "GET", invoice, now_ms() - 3_600_000, b"").to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{invoice}"), &headers).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("stale_request")));
    let ghost = Identity::new(CHAIN_ID, "ghost", SigningKey::from_seed("reads/ghost"));
    headers = sign_request("ghost", &ghost.key, "GET", invoice, now_ms(), b"").to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{invoice}"), &headers).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unknown_party")));

    // The owner sees how often its grantee read under its grant, on each replica.
    let (status, grants) = read(voter, "/v1/parties/parts/grants", Some(seller)).await;
    assert_eq!(status, 200, "{grants}");
    let grant = &grants["grants"][0];
    assert_eq!(
        (grant["grantee"].as_str(), grant["scope"].as_str()),
        (Some("bank"), Some("receivables"))
    );
    assert_eq!(grant["reads_on_this_replica"], 1);
    assert_eq!(read(voter, "/v1/parties/parts/grants", Some(bank)).await.0, 403);

    // Blocks: header and transaction hashes for anyone; the transactions for a regulator only.
    for base in [&voter, &observer] {
        let (status, public) = read(base, "/v1/blocks/1", None).await;
        assert_eq!(status, 200, "{public}");
        let hashes = public["tx_hashes"].as_array().expect("transaction hashes").clone();
        assert!(!hashes.is_empty());
        assert!(public.get("transactions").is_none(), "{public}");
        let (status, as_party) = read(base, "/v1/blocks/1", Some(buyer)).await;
        assert_eq!((status, as_party.get("transactions")), (200, None));
        let (status, full) = read(base, "/v1/blocks/1", Some(regulator)).await;
        assert_eq!(status, 200, "{full}");
        let transactions = full["transactions"].as_array().expect("the regulator sees them");
        assert_eq!(transactions.len(), hashes.len());
        for (tx, hash) in transactions.iter().zip(&hashes) {
            let signed = ledger::pb::SignedTx {
                body: hex::decode(tx["body"].as_str().unwrap()).unwrap(),
                signature: hex::decode(tx["signature"].as_str().unwrap()).unwrap(),
            };
            assert_eq!(&json!(hex::encode(ledger::tx::tx_hash(&signed))), hash);
            assert_eq!(tx["outcome"], "applied");
        }
        let (status, page) = read(base, "/v1/blocks?from=2&limit=3", Some(regulator)).await;
        assert_eq!(status, 200, "{page}");
        let heights: Vec<u64> = (page["blocks"].as_array().unwrap().iter())
            .map(|b| b["height"].as_u64().unwrap())
            .collect();
        assert_eq!(heights, [2, 3, 4]);
        assert_eq!(page["next"], 5);
        assert!(page["blocks"][0]["transactions"].is_array());
        // A bad signature is refused even where no signature is needed.
        let headers =
            sign_request("ghost", &ghost.key, "GET", "/v1/blocks/1", now_ms(), b"").to_vec();
        let (status, answer) = http.get_with(&format!("{base}/v1/blocks/1"), &headers).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unknown_party")));
    }
}
