//! Signed reads over HTTP: a receivable's whole life is written through the API, then every
//! private record is read by its parties, a grantee, a regulator, a stranger and an unsigned
//! client, on a voter and on an observer. Owner, grantee and regulator may read; a stranger gets
//! 403 whether the record exists or not; an unsigned request gets 401.

use crate::common;

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
        let (base, path, who) = (base.to_owned(), path.to_owned(), who.cloned());
        async move {
            let headers = signed(&http, &base, who.as_ref(), &path).await;
            http.get_with(&format!("{base}{path}"), &headers).await
        }
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
            // A regulator says why it reads (see access.rs).
            let path = if who.party_id == regulator.party_id {
                "/v1/invoices/inv-1?purpose=audit"
            } else {
                invoice
            };
            let (status, answer) = read(base, path, Some(who)).await;
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
        let (status, _) = read(base, "/v1/invoices/no-such?purpose=audit", Some(regulator)).await;
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

    // A signature for another path, a stale time, an unknown party: 401. The voter is node 1.
    let mut headers = signed_for(seller, 1, "/v1/invoices/other", now_ms()).to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{invoice}"), &headers).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("bad_signature")));
    headers = signed_for(seller, 1, invoice, now_ms() - 3_600_000).to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{invoice}"), &headers).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("stale_request")));
    let ghost = Identity::new(CHAIN_ID, "ghost", SigningKey::from_seed("reads/ghost"));
    headers = signed_for(&ghost, 1, invoice, now_ms()).to_vec();
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
        let (status, full) = read(base, "/v1/blocks/1?purpose=audit", Some(regulator)).await;
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
        let (status, page) =
            read(base, "/v1/blocks?from=2&limit=3&purpose=audit", Some(regulator)).await;
        assert_eq!(status, 200, "{page}");
        let heights: Vec<u64> = (page["blocks"].as_array().unwrap().iter())
            .map(|b| b["height"].as_u64().unwrap())
            .collect();
        assert_eq!(heights, [2, 3, 4]);
        assert_eq!(page["next"], 5);
        assert!(page["blocks"][0]["transactions"].is_array());
        // A bad signature is refused even where no signature is needed.
        let headers = signed(http, base, Some(&ghost), "/v1/blocks/1").await;
        let (status, answer) = http.get_with(&format!("{base}/v1/blocks/1"), &headers).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unknown_party")));
    }
}

/// A captured signed read is good for one request at one node: sent again to the same node, to
/// another node, under another party's name, with a header changed or left out, it is refused.
/// The nonce is spent only by a request whose signature verifies, so a stranger cannot spend a
/// party's nonces ahead of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_read_is_used_once_at_one_node() {
    let chain = Parties::register("replay").await;
    let Parties { http, voter, observer, seller, regulator, .. } = &chain;
    let path = "/v1/tokens?holder=parts";
    let code = |answer: &Value| answer["error"]["code"].as_str().map(str::to_owned);
    // Signed for the voter (node 1): answered once, then refused as a replay.
    let headers = signed_for(seller, 1, path, now_ms()).to_vec();
    let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!((status, code(&answer).as_deref()), (401, Some("replayed_request")), "{answer}");
    // The same headers at the observer (node 2): signed for another node.
    let (status, answer) = http.get_with(&format!("{observer}{path}"), &headers).await;
    assert_eq!((status, code(&answer).as_deref()), (401, Some("wrong_node")), "{answer}");
    // ... and claiming to be for node 2 breaks the signature.
    let mut moved = headers.clone();
    moved[3].1 = "2".into();
    let (status, answer) = http.get_with(&format!("{observer}{path}"), &moved).await;
    assert_eq!((status, code(&answer).as_deref()), (401, Some("bad_signature")), "{answer}");
    // A regulator's event stream, replayed, is refused too.
    let events = "/v1/events?purpose=supervision";
    let headers = signed_for(regulator, 2, events, now_ms()).to_vec();
    let (status, _stream) = http.events(&format!("{observer}{events}"), &headers).await;
    assert_eq!(status, 200);
    let (status, _) = http.events(&format!("{observer}{events}"), &headers).await;
    assert_eq!(status, 401);

    // A fresh nonce with a wrong signature does not spend the nonce: the party's own request
    // with it still answers.
    let mut headers = signed_for(seller, 1, path, now_ms()).to_vec();
    let genuine = headers[4].1.clone();
    headers[4].1 = signed_for(seller, 1, "/v1/other", now_ms())[4].1.clone();
    let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!((status, code(&answer).as_deref()), (401, Some("bad_signature")));
    headers[4].1 = genuine;
    let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!(status, 200, "{answer}");

    // Every header is needed; a nonce must look like one.
    for missing in 0..5 {
        let mut headers = signed_for(seller, 1, path, now_ms()).to_vec();
        headers.remove(missing);
        let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
        assert_eq!((status, code(&answer).as_deref()), (401, Some("unauthenticated")), "{answer}");
    }
    let mut headers = signed_for(seller, 1, path, now_ms()).to_vec();
    headers[2].1 = "short".into();
    let (status, answer) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!((status, code(&answer).as_deref()), (401, Some("bad_nonce")), "{answer}");
}

/// `GET /v1/transactions/{hash}` tells anyone where a transaction is and whether it applied;
/// why it was rejected, or what it created, only its signer, the parties it involves and
/// regulators. A rejection's text names other parties' figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactions_details_go_to_its_parties_only() {
    let chain = Parties::register("outcomes").await;
    let Parties { http, voter, observer, buyer, seller, bank, regulator, stranger, .. } = &chain;
    // The buyer orders from the seller: applied (it created po-1), and it involves both. Then
    // the buyer records a shipment, which only the seller may: rejected, and a rejected
    // transaction involves only its signer and the parties it names (none here).
    let order = client::create_purchase_order("po-1", "parts", &[("bolt", 1, "1.00")], "EUR");
    let applied = chain.post(buyer, order, "applied").await;
    let ship = client::record_shipment("sh-1", "po-1", &[("bolt", 1)], "", [3; 32]);
    let rejected = chain.post(buyer, ship, "rejected").await;
    let cases = [
        (&applied, "created_ids", vec![buyer, seller, regulator], vec![stranger, bank]),
        (&rejected, "reason", vec![buyer, regulator], vec![stranger, bank, seller]),
    ];
    for (answer, detail, told, not_told) in cases {
        let hash = answer["tx_hash"].as_str().expect("a hash");
        let path = format!("/v1/transactions/{hash}");
        for base in [voter, observer] {
            let (status, public) = chain.read(base, &path, None).await;
            assert_eq!(status, 200, "{public}");
            assert_eq!(public["tx_hash"], answer["tx_hash"]);
            assert_eq!(public["outcome"], answer["outcome"]);
            assert!(public["height"].is_u64() && public["index"].is_u64(), "{public}");
            assert!(public.get(detail).is_none(), "unsigned: {public}");
            for &who in &not_told {
                let (status, theirs) = chain.read(base, &path, Some(who)).await;
                assert_eq!(status, 200, "{theirs}");
                assert!(theirs.get(detail).is_none(), "{}: {theirs}", who.party_id);
            }
            for &who in &told {
                let (status, full) = chain.read(base, &path, Some(who)).await;
                assert_eq!(status, 200, "{full}");
                assert_eq!(full[detail], answer[detail], "{}: {full}", who.party_id);
            }
        }
    }
    // A bad signature is refused here too, not answered as if unsigned.
    let hash = applied["tx_hash"].as_str().expect("a hash");
    let path = format!("/v1/transactions/{hash}");
    let mut headers = signed_for(seller, 1, &path, now_ms()).to_vec();
    headers[4].1 = "00".repeat(64);
    let (status, _) = http.get_with(&format!("{voter}{path}"), &headers).await;
    assert_eq!(status, 401);
}
