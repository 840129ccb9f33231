//! Hostile input at the edge of a running cluster (real `scf-node` processes): malformed,
//! oversize, resubmitted, wrongly signed and foreign-chain requests, writes to the
//! observer, and raw bytes that are not HTTP. Every one is answered with a 4xx JSON error (a
//! resubmission with its first outcome), nothing changes on any replica, and the cluster still serves.
//! (A well-formed transaction that breaks a rule of the ledger, an expired one say, is not bad
//! input: it is ordered and recorded with its rejection, and the workload tests cover those.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::SignedTx;
use serde_json::{Value, json};
use sim::client::{Http, now_ms, read_key_file};
use sim::cluster::LocalCluster;
use sim::node_api::{quiesce, request_body, status};
use sim::workload::{Workload, WorkloadConfig};
use tests::driver::{Driver, DriverConfig};
use tests::history::History;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where each node is: height, block hash, state hash.
async fn heights(http: &Http, urls: &[String]) -> Vec<(u64, String, String)> {
    let mut all = Vec::new();
    for url in urls {
        let (s, _) = status(http, url).await.unwrap();
        all.push((s.height, s.last_block_hash, s.state_hash));
    }
    all
}

/// Sends `body` raw to `url`'s transactions route; returns the status and the JSON answer.
async fn post(http: &Http, url: &str, body: Vec<u8>) -> (u16, Value) {
    let answer = http.request("POST", &format!("{url}/v1/transactions"), &[], body).await;
    let answer = answer.unwrap_or_else(|e| panic!("no answer from {url}: {e:#}"));
    (answer.status, answer.body)
}

/// A hand-written signed transaction.
fn tx_json(tx: &SignedTx) -> Vec<u8> {
    request_body(&[tx], true).to_string().into_bytes()
}

/// Writes `bytes` on a raw connection to `address` and reads what comes back until it closes.
async fn raw(address: &str, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut back)).await;
    assert!(read.is_ok(), "the node kept a connection of garbage open for 15 s");
    String::from_utf8_lossy(&back).into_owned()
}

// Goal: no request a client can send changes a replica's state unless it is a valid signed
// transaction, none is answered with a 5xx or a dropped connection, and the node serves after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_change_nothing_and_the_node_still_serves() {
    let dir = testkit::TestDir::new("bad-input");
    let mut cluster =
        LocalCluster::start(&tests::cluster_config(dir.path(), 3, 1).unwrap()).await.unwrap();
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let voter = urls[0].clone();
    let observer = urls[3].clone();
    let http = Http::new(Duration::from_secs(30));

    // The workload's parties, and one applied transaction to resubmit.
    let mut config = WorkloadConfig::new(7, &cluster.chain_id);
    config.registrar_key = Some(read_key_file(&cluster.registrar_key).unwrap());
    let mut workload = Workload::new(config);
    let history = Arc::new(History::default());
    let driver_config = DriverConfig {
        urls: urls[..3].to_vec(),
        concurrency: 8,
        give_up: Duration::from_secs(30),
        abandon_percent: 0,
        seed: 7,
    };
    let mut driver = Driver::new(driver_config, history, Instant::now());
    driver.setup(&mut workload).await.unwrap();
    let core = workload.cast().cores[0].clone();
    let seller = workload.cast().tier1[0].party_id.clone();
    let order = |identity: &Identity, po: &str, valid_until: u64| {
        let command = client::create_purchase_order(po, &seller, &[("sku", 1, "10.00")], "EUR");
        identity.sign(valid_until, now_ms(), command)
    };
    let valid_until = now_ms() + 600_000;
    let applied = order(&core, "po-bad-input-1", valid_until);
    let (code, first) = post(&http, &voter, tx_json(&applied)).await;
    assert_eq!((code, first["outcome"].as_str()), (200, Some("applied")), "{first}");

    let (highest, _, _) = heights(&http, &urls).await.into_iter().max().unwrap();
    let (_, stuck) = quiesce(&http, &urls, highest, Duration::from_secs(30)).await;
    assert_eq!(stuck, None);
    let before = heights(&http, &urls).await;

    // The one valid transaction kept for the end, and its hostile variants.
    let fresh = order(&core, "po-bad-input-2", valid_until);
    let intruder = SigningKey::from_seed("intruder");
    let forged = SignedTx {
        body: fresh.body.clone(),
        signature: intruder.sign(&fresh.body).to_bytes().to_vec(),
    };
    let zero_signature = SignedTx { body: fresh.body.clone(), signature: vec![0; 64] };
    let mut flipped_body = fresh.clone();
    let last = flipped_body.body.len() - 1;
    flipped_body.body[last] ^= 1;
    let other_chain =
        order(&Identity::new("other-chain", &core.party_id, core.key.clone()), "po-x", valid_until);
    let impostor =
        order(&Identity::new(&cluster.chain_id, &core.party_id, intruder), "po-y", valid_until);
    let stranger = order(
        &Identity::new(&cluster.chain_id, "nobody-registered", SigningKey::from_seed("n")),
        "po-z",
        valid_until,
    );
    let hex_sig = hex::encode(&fresh.signature);
    let hex_body = hex::encode(&fresh.body);
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let oversize = json!({"body": "ab".repeat(3 * 1024 * 1024), "signature": hex_sig}).to_string();
    let too_many: Vec<Value> =
        (0..1_001).map(|_| json!({"body": hex_body, "signature": hex_sig})).collect();

    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("not JSON", b"{\"body\": ".to_vec()),
        ("binary garbage", (0..=255u8).cycle().take(4096).collect()),
        ("a number", b"42".to_vec()),
        ("an empty batch", b"[]".to_vec()),
        ("missing signature", json!({"body": hex_body}).to_string().into_bytes()),
        (
            "unknown field",
            json!({"body": hex_body, "signature": hex_sig, "x": 1}).to_string().into_bytes(),
        ),
        ("odd hex", json!({"body": "abc", "signature": hex_sig}).to_string().into_bytes()),
        ("non-hex", json!({"body": "zz", "signature": hex_sig}).to_string().into_bytes()),
        ("short signature", json!({"body": hex_body, "signature": "00"}).to_string().into_bytes()),
        (
            "a body that is not a transaction",
            json!({"body": "ffffffff", "signature": hex_sig}).to_string().into_bytes(),
        ),
        ("nested a hundred thousand deep", deep.into_bytes()),
        ("oversize", oversize.into_bytes()),
        ("a batch over the limit", Value::Array(too_many).to_string().into_bytes()),
        (
            "a wrong tx_hash",
            json!({"body": hex_body, "signature": hex_sig, "tx_hash": "00".repeat(32)})
                .to_string()
                .into_bytes(),
        ),
        ("forged signature", tx_json(&forged)),
        ("zero signature", tx_json(&zero_signature)),
        ("body changed after signing", tx_json(&flipped_body)),
        ("another chain", tx_json(&other_chain)),
        ("signed by another key", tx_json(&impostor)),
        ("an unregistered signer", tx_json(&stranger)),
    ];
    for (what, body) in hostile {
        for url in [&voter, &urls[1]] {
            let route = format!("{url}/v1/transactions");
            let answer = http.request("POST", &route, &[], body.clone()).await;
            let answer = answer.unwrap_or_else(|e| panic!("{what} at {url}: {e:#}"));
            let (code, answer) = (answer.status, answer.body);
            assert!(
                (400..500).contains(&code)
                    && answer["error"]["code"].is_string()
                    && answer["error"]["message"].is_string(),
                "{what} at {url}: answered {code} {answer}"
            );
        }
    }

    // A resubmission is answered with its first outcome and applies nothing.
    let (code, again) = post(&http, &urls[2], tx_json(&applied)).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!((&again["outcome"], &again["height"]), (&first["outcome"], &first["height"]));

    // The observer takes no writes, even valid ones.
    let (code, answer) = post(&http, &observer, tx_json(&fresh)).await;
    assert_eq!((code, answer["error"]["code"].as_str()), (403, Some("read_only_replica")));

    // Raw bytes that are not HTTP, a request cut short, an unknown route.
    let address = voter.trim_start_matches("http://");
    let answer =
        raw(address, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n").await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
    let cut = "POST /v1/transactions HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"body\"";
    let answer = raw(address, cut.as_bytes()).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
    let answer = http.get(&voter, "/v1/no-such-route", None).await.unwrap();
    assert_eq!(answer.status, 404, "{}", answer.body);

    // Nothing changed anywhere.
    assert_eq!(heights(&http, &urls).await, before, "a hostile request changed a replica");

    // And the cluster still serves: the valid transaction applies and every replica follows.
    let (code, answer) = post(&http, &urls[1], tx_json(&fresh)).await;
    assert_eq!((code, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
    let height = answer["height"].as_u64().unwrap();
    let (_, stuck) = quiesce(&http, &urls, height, Duration::from_secs(30)).await;
    assert_eq!(stuck, None);
    for url in &urls {
        assert_eq!(http.get(url, "/healthz", None).await.unwrap().status, 200);
    }
    for (id, exit) in cluster.stop() {
        assert!(exit.success(), "node {id} did not stop cleanly: {exit}");
    }
}
