//! The HTTP API against a real cluster in this process: 3 voters and an observer, each a
//! `scf-node` (RocksDB, TCP, warp) on loopback with ports picked by the OS. Covers every route,
//! the forward and refuse paths, idempotent resubmission, bad input of every kind, the limits,
//! the admin API adding an observer at runtime, and a clean shutdown.

use crate::common;

use std::time::Duration;

use api::config::{PeerConfig, Role};
use api::server::{RunningNode, start_on};
use common::*;
use serde_json::{Value, json};

struct Cluster {
    nodes: Vec<RunningNode>,
    _dirs: Vec<TestDir>,
    http: Http,
}

impl Cluster {
    fn url(&self, index: usize, path: &str) -> String {
        format!("http://{}{path}", self.nodes[index].http_address)
    }

    fn admin(&self, index: usize, path: &str) -> String {
        format!("http://{}{path}", self.nodes[index].admin_address)
    }

    async fn statuses(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for index in 0..self.nodes.len() {
            out.push(self.http.get(&self.url(index, "/v1/status")).await.1);
        }
        out
    }

    /// The index of the leader, once there is one.
    async fn leader(&self) -> usize {
        eventually(Duration::from_secs(30), "a leader", || async {
            self.statuses().await.iter().position(|s| s["role"] == "leader")
        })
        .await
    }
}

async fn start_cluster() -> Cluster {
    let (nodes, dirs) = start_nodes(3, 1).await;
    Cluster { nodes, _dirs: dirs, http: Http::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_a_real_cluster() {
    let cluster = start_cluster().await;
    let http = cluster.http.clone();
    let leader = cluster.leader().await;
    let follower = (0..3).find(|i| *i != leader).unwrap();

    // A write sent to a follower is forwarded to the leader and answered with its outcome.
    let tx = register(1);
    let (status, first) =
        http.post(&cluster.url(follower, "/v1/transactions"), &tx_json(&tx)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["outcome"], "applied");
    assert_eq!(first["tx_hash"], tx_hash_hex(&tx));
    assert!(first["height"].as_u64().unwrap() >= 1);

    // Resubmitting returns the first outcome, never a second application.
    let (status, again) = http.post(&cluster.url(leader, "/v1/transactions"), &tx_json(&tx)).await;
    assert_eq!((status, &again), (200, &first));

    // An observer refuses writes and points at the leader.
    let (status, refused) =
        http.post(&cluster.url(3, "/v1/transactions"), &tx_json(&register(2))).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "read_only_replica");
    let hint = refused["error"]["leader_hint"].as_str().expect("a leader hint");
    assert!(hint.starts_with("http://127.0.0.1:"), "{hint}");

    // A batch: one answer per transaction, in order; all in a block or two.
    let batch: Vec<Value> = (10..15).map(|i| tx_json(&register(i))).collect();
    let (status, answers) =
        http.post(&cluster.url(leader, "/v1/transactions"), &json!(batch)).await;
    assert_eq!(status, 200, "{answers}");
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 5);
    for (i, answer) in (10..15).zip(answers) {
        assert_eq!(answer["outcome"], "applied", "{answer}");
        assert_eq!(answer["tx_hash"], tx_hash_hex(&register(i)));
    }

    // wait=false answers 202 once the leader has the transaction in its log on disk; the outcome
    // follows, and a resubmission then answers with it.
    let early = register(16);
    let (status, pending) =
        http.post(&cluster.url(follower, "/v1/transactions?wait=false"), &tx_json(&early)).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["outcome"], "pending");
    assert_eq!(pending["tx_hash"], tx_hash_hex(&early));
    assert!(pending["log_index"].as_u64().is_some_and(|i| i > 0), "{pending}");
    let lookup = cluster.url(leader, &format!("/v1/transactions/{}", tx_hash_hex(&early)));
    let outcome = eventually(Duration::from_secs(10), "the pending write to apply", || async {
        let (status, value) = http.get(&lookup).await;
        (status == 200).then_some(value)
    })
    .await;
    assert_eq!(outcome["outcome"], "applied");
    let (status, again) =
        http.post(&cluster.url(leader, "/v1/transactions?wait=false"), &tx_json(&early)).await;
    assert_eq!((status, &again["height"]), (200, &outcome["height"]), "{again}");
    // A linearizable read on a follower sees every write answered before it began.
    let written = register(17);
    let (status, applied) =
        http.post(&cluster.url(leader, "/v1/transactions"), &tx_json(&written)).await;
    assert_eq!((status, applied["outcome"].as_str()), (200, Some("applied")));
    let path = format!("/v1/transactions/{}?consistency=linearizable", tx_hash_hex(&written));
    for index in 0..4 {
        let (status, value) = http.get(&cluster.url(index, &path)).await;
        assert_eq!((status, &value["height"]), (200, &applied["height"]), "node {index}: {value}");
    }

    // A transaction the ledger's rules reject is recorded, with its reason.
    let dup_party = {
        let key = ledger::crypto::SigningKey::from_seed("api-test/party/1");
        let command = ledger::client::register_party(
            "p-1",
            "Party again",
            ledger::pb::Role::Enterprise,
            &key.public_key().to_bytes(),
        );
        registrar().sign(now_ms() + 3_600_000, 999, command)
    };
    let (status, rejected) =
        http.post(&cluster.url(leader, "/v1/transactions"), &tx_json(&dup_party)).await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["outcome"], "rejected");
    assert!(rejected["reason"]["code"].as_str().is_some_and(|c| !c.is_empty()));

    bad_input(&cluster, leader).await;
    reads(&cluster, &tx, &first).await;
    admin_adds_an_observer(cluster).await;
}

/// Every kind of bad input gets a JSON error with a fitting 4xx status, and nothing is applied.
async fn bad_input(cluster: &Cluster, leader: usize) {
    let http = &cluster.http;
    let url = cluster.url(leader, "/v1/transactions");
    let height_before = cluster.statuses().await[leader]["height"].clone();
    let good = register(20);
    let mut wrong_chain_signer = registrar();
    wrong_chain_signer.chain_id = "another-chain".into();
    let wrong_chain =
        wrong_chain_signer.sign(now_ms() + 60_000, 1, ledger::client::set_frozen("p-1", true));
    let mut forged = register(21);
    forged.signature[10] ^= 1;
    let stranger = ledger::client::Identity::new(
        CHAIN_ID,
        "nobody",
        ledger::crypto::SigningKey::from_seed("nobody"),
    )
    .sign(now_ms() + 60_000, 1, ledger::client::set_frozen("p-1", true));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"body\": ".to_vec(), 400, "malformed_json"),
        ("a number", b"42".to_vec(), 400, "malformed_request"),
        ("an empty batch", b"[]".to_vec(), 400, "empty_batch"),
        ("a missing field", br#"{"body": "00"}"#.to_vec(), 400, "malformed_request"),
        (
            "an unknown field",
            json!({"body": "00", "signature": "00", "x": 1}).to_string().into_bytes(),
            400,
            "malformed_request",
        ),
        ("bad hex", br#"{"body": "zz", "signature": "00"}"#.to_vec(), 400, "bad_hex"),
        (
            "a tx_hash that is not the body's",
            json!({
                "body": hex::encode(&good.body),
                "signature": hex::encode(&good.signature),
                "tx_hash": hex::encode([7u8; 32]),
            })
            .to_string()
            .into_bytes(),
            400,
            "tx_hash_mismatch",
        ),
        (
            "garbage bytes",
            br#"{"body": "ffff", "signature": "00"}"#.to_vec(),
            400,
            "malformed_transaction",
        ),
        (
            "a short signature",
            json!({"body": hex::encode(&good.body), "signature": "0011"}).to_string().into_bytes(),
            400,
            "malformed_transaction",
        ),
        ("a wrong chain id", tx_json(&wrong_chain).to_string().into_bytes(), 400, "wrong_chain"),
        ("a forged signature", tx_json(&forged).to_string().into_bytes(), 400, "bad_signature"),
        ("an unknown signer", tx_json(&stranger).to_string().into_bytes(), 400, "unknown_signer"),
        ("an oversize body", vec![b' '; 300 * 1024], 413, "body_too_large"),
        (
            "an oversize batch",
            json!((0..51).map(|_| tx_json(&good)).collect::<Vec<_>>()).to_string().into_bytes(),
            413,
            "batch_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, answer, _) = http.raw("POST", &url, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {answer}"
        );
        assert!(answer["error"]["message"].is_string(), "{what}");
    }
    let (status, answer) = http.post(&format!("{url}?wait=maybe"), &tx_json(&good)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")));
    for (method, path, status, code) in [
        ("GET", "/v1/nothing", 404, "no_such_route"),
        ("DELETE", "/v1/status", 405, "method_not_allowed"),
        ("PUT", "/v1/transactions", 405, "method_not_allowed"),
        ("GET", "/v1/transactions/zz", 400, "bad_hex"),
        ("GET", "/v1/transactions/0000", 400, "bad_hex"),
        ("GET", "/v1/blocks/x", 400, "bad_height"),
        ("GET", "/v1/blocks?from=0", 400, "bad_query"),
        ("GET", "/v1/blocks?limit=100000", 400, "bad_query"),
        ("GET", "/v1/parties/p-1?consistency=strong", 400, "bad_query"),
        ("POST", "/v1/blocks", 405, "method_not_allowed"),
    ] {
        let (got, answer, _) = http.raw(method, &cluster.url(leader, path), Vec::new()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
    }
    // Mangled copies of a valid request (bytes replaced, cut short, tail repeated): always a
    // JSON error with a 4xx, never a 5xx, a hang or a dropped connection.
    let valid = tx_json(&register(22)).to_string().into_bytes();
    let mut seed: u64 = 0x5eed;
    let mut next = move |below: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        usize::try_from(seed >> 33).unwrap() % below.max(1)
    };
    for round in 0..200 {
        let mut body = valid.clone();
        match next(3) {
            0 => {
                for _ in 0..=next(4) {
                    let at = next(body.len());
                    body[at] = u8::try_from(next(256)).unwrap();
                }
            }
            1 => body.truncate(next(body.len())),
            _ => {
                let at = next(body.len());
                let copy = body[at..].to_vec();
                body.extend_from_slice(&copy);
            }
        }
        if body == valid {
            continue;
        }
        let (status, answer, _) = http.raw("POST", &url, body.clone()).await;
        assert!(
            (400..500).contains(&status) && answer["error"]["code"].is_string(),
            "round {round}: {status} {answer} for {}",
            String::from_utf8_lossy(&body)
        );
    }

    // Nothing above reached the chain.
    let height_after = cluster.statuses().await[leader]["height"].clone();
    assert_eq!(height_before, height_after);
}

/// Reads: transaction lookup, block headers, status, audit, metrics, health.
async fn reads(cluster: &Cluster, tx: &ledger::pb::SignedTx, first: &Value) {
    let http = &cluster.http;
    // Every replica, the observer included, finds the transaction once it has its block.
    for index in 0..4 {
        let url = cluster.url(index, &format!("/v1/transactions/{}", tx_hash_hex(tx)));
        let found = eventually(Duration::from_secs(10), "the transaction on every replica", || {
            let url = url.clone();
            async move {
                let (status, value, headers) = http.raw("GET", &url, Vec::new()).await;
                (status == 200).then_some((value, headers))
            }
        })
        .await;
        assert_eq!(found.0["height"], first["height"]);
        assert_eq!(found.0["outcome"], "applied");
        assert!(found.1.contains_key("x-scf-height"));
    }
    let (status, missing) =
        http.get(&cluster.url(0, &format!("/v1/transactions/{}", "00".repeat(32)))).await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("not_found")));

    let (status, block) = http.get(&cluster.url(3, "/v1/blocks/1")).await;
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["height"], 1);
    assert_eq!(block["block_hash"].as_str().unwrap().len(), 64);
    assert!(block["tx_hashes"].is_array() && block.get("transactions").is_none(), "{block}");
    let (status, _) = http.get(&cluster.url(3, "/v1/blocks/99999999")).await;
    assert_eq!(status, 404);
    let (status, page) = http.get(&cluster.url(0, "/v1/blocks?from=1&limit=2")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["blocks"].as_array().map(Vec::len), Some(2));
    assert_eq!((&page["blocks"][1]["height"], &page["next"]), (&json!(2), &json!(3)));
    let (status, past) = http.get(&cluster.url(0, "/v1/blocks?from=99999999")).await;
    assert_eq!((status, &past["blocks"], &past["next"]), (200, &json!([]), &Value::Null));

    // Every replica reaches the same height with the same hashes; the status has every field.
    let statuses = eventually(Duration::from_secs(10), "replicas to agree", || async {
        let statuses = cluster.statuses().await;
        let tips: Vec<_> = statuses
            .iter()
            .map(|s| (s["height"].clone(), s["state_hash"].clone(), s["last_block_hash"].clone()))
            .collect();
        tips.windows(2).all(|w| w[0] == w[1]).then_some(statuses)
    })
    .await;
    for (index, status) in statuses.iter().enumerate() {
        for field in [
            "node_id",
            "role",
            "leader_id",
            "term",
            "commit_index",
            "applied_index",
            "height",
            "last_block_hash",
            "state_hash",
        ] {
            assert!(status.get(field).is_some(), "node {index} status lacks {field}");
        }
    }
    assert_eq!(statuses[3]["role"], "observer");
    assert!(statuses.iter().filter(|s| s["role"] == "leader").count() <= 1);

    // The observer re-verifies the whole chain with every signature.
    let (status, audit) = http.get(&cluster.url(3, "/v1/audit/verify")).await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(audit["signatures_checked"], true);
    assert_eq!(audit["height"], statuses[3]["height"]);
    assert!(audit["first_bad"].is_null());

    // The leader answered the bad input above: its error counters have the codes.
    let leader = cluster.leader().await;
    let (status, metrics) = http.get(&cluster.url(leader, "/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert_eq!(status, 200);
    for name in [
        "scf_raft_term",
        "scf_raft_applied_index",
        "scf_http_requests_total",
        "scf_http_request_seconds_bucket",
        "scf_http_errors_total{code=\"bad_signature\"}",
        "scf_http_errors_total{code=\"no_such_route\"}",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    let (status, health) = http.get(&cluster.url(2, "/healthz")).await;
    assert_eq!((status, &health), (200, &json!({"ok": true})));
}

/// The admin API adds an observer that starts with an empty disk; it catches up.
async fn admin_adds_an_observer(mut cluster: Cluster) {
    let http = cluster.http.clone();
    let leader = cluster.leader().await;
    let (status, members) = http.get(&cluster.admin(leader, "/v1/admin/members")).await;
    assert_eq!(status, 200);
    assert_eq!(members, json!({"voters": [1, 2, 3], "observers": [4]}));

    let listeners = listeners().await;
    let raft = listeners.raft.local_addr().unwrap();
    let dir = TestDir::new("node-5");
    // The new observer's configuration names the initial members; it is not one of them.
    let peers: Vec<PeerConfig> = (0..4)
        .map(|i| PeerConfig {
            id: i as u64 + 1,
            role: if i == 3 { Role::Observer } else { Role::Voter },
            raft: cluster.nodes[i].raft_address,
            http: format!("http://{}", cluster.nodes[i].http_address),
        })
        .collect();
    let node = start_on(config(5, Role::Observer, &dir, peers), listeners).await.unwrap();
    cluster.nodes.push(node);
    cluster._dirs.push(dir);

    let bad = json!({"id": 0, "role": "observer", "raft": raft.to_string()});
    let (status, answer) = http.post(&cluster.admin(leader, "/v1/admin/members"), &bad).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_membership_change"))
    );
    let add = json!({"id": 5, "role": "observer", "raft": raft.to_string()});
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let (status, answer) = http.post(&cluster.admin(follower, "/v1/admin/members"), &add).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("not_leader")));
    let (status, answer) = http.post(&cluster.admin(leader, "/v1/admin/members"), &add).await;
    assert_eq!(status, 202, "{answer}");

    let leader_height = cluster.statuses().await[leader]["height"].as_u64().unwrap();
    eventually(Duration::from_secs(30), "the new observer to catch up", || async {
        let (_, status) = http.get(&cluster.url(4, "/v1/status")).await;
        (status["role"] == "observer" && status["height"].as_u64() >= Some(leader_height))
            .then_some(())
    })
    .await;
    let (status, audit) = http.get(&cluster.url(4, "/v1/audit/verify")).await;
    assert_eq!((status, audit["ok"].clone()), (200, json!(true)), "{audit}");

    for node in cluster.nodes {
        node.shutdown().await.expect("a clean shutdown");
    }
}

/// Every limit answers with its own 4xx: too many connections, too many requests from one
/// client, and a client that does not finish its headers is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_429_and_slow_clients_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let nodes = start_memory_with(0, |config| {
        config.http = api::config::HttpLimits {
            connections_max: 2,
            connections_per_client_max: 2,
            // No reserve: the third connection is refused at once (`limits::signed_readers_*`
            // has the reserve).
            connections_reserved_for_signed: 0,
            connections_reserved_for_regulators: 0,
            requests_per_s_per_client: 2,
            burst_per_client: 5,
            header_timeout_ms: 1_000,
            ..config.http.clone()
        };
    })
    .await;
    let address = nodes[0].http_address;
    let read_all = |mut stream: TcpStream| async move {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
        read.await.expect("the server closes the connection").ok();
        String::from_utf8_lossy(&answer).into_owned()
    };

    // Two connections are all this node serves; the third is answered 429 and closed.
    let held =
        [TcpStream::connect(address).await.unwrap(), TcpStream::connect(address).await.unwrap()];
    let mut third = TcpStream::connect(address).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = read_all(third).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("\"too_many_connections\""), "{answer}");

    // A client that sends no complete headers is disconnected after the header timeout.
    let [mut slow, idle] = held;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost:").await.unwrap();
    assert_eq!(read_all(slow).await, "", "a slow client gets no answer, only a closed socket");
    assert_eq!(read_all(idle).await, "");

    // Then the next client is served again, and its requests are rate limited: a burst of five,
    // then 429 with a Retry-After.
    let http = Http::default();
    let url = format!("http://{address}/healthz");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, answer, headers) = http.raw("GET", &url, Vec::new()).await;
        if status == 429 {
            assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert_eq!(statuses[..5], [200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // Once a token is back, the refusals are in the metrics.
    let metrics = eventually(Duration::from_secs(5), "a request within the rate", || async {
        let (status, metrics) = http.get(&format!("http://{address}/metrics")).await;
        (status == 200).then(|| metrics.as_str().unwrap_or_default().to_owned())
    })
    .await;
    assert!(metrics.contains("scf_http_refused_total{limit=\"too_many_connections\"} 1"));
    assert!(metrics.contains("scf_http_refused_total{limit=\"rate_limited\"}"));
}

// Regression for the bug oversize_body_reset_before_413 (found by tests/tests/bad_input.rs): a
// body larger than the limit and than the socket buffers was answered 413 and the connection
// closed while the client was still sending, so the client saw a reset (broken pipe) and never
// the answer. Goal: the client reads its 413, and the node serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_body_reset_before_413() {
    let nodes = start_memory(0).await;
    let http = Http::default();
    let url = format!("http://{}/v1/transactions", nodes[0].http_address);
    let (status, answer, _) = http.raw("POST", &url, vec![b' '; 16 << 20]).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    let status_url = format!("http://{}/v1/status", nodes[0].http_address);
    assert_eq!(http.get(&status_url).await.0, 200);
}

/// Reads never stall consensus: four clients flood every node with the heaviest unsigned reads
/// (`/v1/blocks?from=1&limit=1000` and `/v1/audit/verify?from=1`) while a writer commits one
/// transaction after another. No leader changes (every node keeps the term and the leader it
/// had), and no commit takes longer than [`FLOODED_COMMIT_MAX`], measured per write. Reads run
/// on a bounded pool against RocksDB snapshots, off the replica's thread; when they ran on it,
/// this flood cost two elections in ten seconds (issue #19).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reads_does_not_stall_consensus() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    /// Longest commit allowed under the flood: half the shortest election timeout (1 s).
    const FLOODED_COMMIT_MAX: Duration = Duration::from_millis(500);
    const FLOOD: Duration = Duration::from_secs(6);

    let cluster = start_cluster().await;
    let http = cluster.http.clone();
    let leader = cluster.leader().await;
    // A chain worth reading: 300 blocks.
    for i in 0..300 {
        let (status, answer) = http
            .post(&cluster.url(leader, "/v1/transactions"), &tx_json(&register(1_000 + i)))
            .await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
    }
    let before = cluster.statuses().await;
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    for client in 0..4 {
        let urls: Vec<String> = (0..4)
            .map(|node| {
                let path = if client % 2 == 0 {
                    "/v1/blocks?from=1&limit=1000"
                } else {
                    // From genesis each time: an audit otherwise goes on from the last one.
                    "/v1/audit/verify?from=1"
                };
                cluster.url(node, path)
            })
            .collect();
        let (http, stop, reads) = (Http::default(), stop.clone(), reads.clone());
        flooders.push(tokio::spawn(async move {
            let mut turn = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, answer) = http.get(&urls[turn % urls.len()]).await;
                assert_eq!(status, 200, "{answer}");
                reads.fetch_add(1, Ordering::Relaxed);
                turn += 1;
            }
        }));
    }
    let started = std::time::Instant::now();
    let mut latencies = Vec::new();
    let mut i = 0;
    while started.elapsed() < FLOOD {
        let tx = register(5_000 + i);
        let sent = std::time::Instant::now();
        let (status, answer) =
            http.post(&cluster.url(leader, "/v1/transactions"), &tx_json(&tx)).await;
        latencies.push(sent.elapsed());
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")), "{answer}");
        i += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.expect("a flooder ends cleanly");
    }
    let after = cluster.statuses().await;
    for (node, (before, after)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            (&before["term"], &before["leader_id"]),
            (&after["term"], &after["leader_id"]),
            "node {node}: {before} then {after}"
        );
    }
    latencies.sort();
    let longest = *latencies.last().expect("writes were made");
    let p50 = latencies[latencies.len() / 2];
    eprintln!(
        "flood: {} reads, {} writes, commit p50 {p50:?}, longest {longest:?}",
        reads.load(Ordering::Relaxed),
        latencies.len()
    );
    assert!(reads.load(Ordering::Relaxed) > 20, "the flood read");
    assert!(
        longest <= FLOODED_COMMIT_MAX,
        "a commit took {longest:?} under the flood (p50 {p50:?})"
    );
}

// Goal: a node refuses to start on a data directory whose chain is of an older block format
// (here format 1, from before the results hash left out reject messages), with an error that
// names the format and says what to do, rather than extend it with blocks of another format that
// would no longer verify as one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_block_format_is_refused() {
    use ledger::pb::{Block, BlockHeader};
    use prost::Message as _;
    use raft_node::storage::LogStore as _;

    let dir = testkit::TestDir::new("old-format");
    let listeners = listeners().await;
    let peers = vec![PeerConfig {
        id: 1,
        role: Role::Voter,
        raft: listeners.raft.local_addr().unwrap(),
        http: format!("http://{}", listeners.http.local_addr().unwrap()),
    }];
    let config = config(1, Role::Voter, &dir, peers);
    {
        let ledger = ledger::Ledger::new(config.genesis().unwrap());
        let conf_state = config.members().conf_state();
        let mut store = raft_node::rocks::RocksLogStore::open(
            &config.data_dir,
            Some((&ledger.genesis_writes(), &conf_state)),
        )
        .unwrap();
        let header = BlockHeader { version: 1, height: 1, ..Default::default() };
        let block = Block { header: Some(header), ..Default::default() };
        let mut writes = ledger::store::WriteSet::default();
        writes.put(ledger::store::keys::block(1), block.encode_to_vec());
        store.apply(1, &writes, None).unwrap();
    }
    match start_on(config, listeners).await {
        Err(error @ api::server::ServerError::ChainFormat { found: 1, expected: 2, .. }) => {
            let said = error.to_string();
            assert!(said.contains("start a new chain"), "{said}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a node started on a chain of block format 1"),
    }
}

// Goal: an audit goes on from where the last one stopped: a second audit verifies only the
// blocks added since, one with nothing new verifies nothing, `from=1` restarts from genesis,
// and any other `from` is refused (a verifier at a height needs every key change before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_goes_on_from_where_the_last_stopped() {
    let nodes = start_memory(0).await;
    let base = format!("http://{}", nodes[0].http_address);
    let http = Http::default();
    let commit = |from: u64, to: u64| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            for i in from..to {
                let url = format!("{base}/v1/transactions");
                let (status, answer) = http.post(&url, &tx_json(&register(i))).await;
                assert_eq!(
                    (status, answer["outcome"].as_str()),
                    (200, Some("applied")),
                    "{answer}"
                );
            }
        }
    };
    let audit = |query: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let (status, answer) = http.get(&format!("{base}/v1/audit/verify{query}")).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["ok"], true, "{answer}");
            (answer["from"].as_u64().unwrap(), answer["height"].as_u64().unwrap())
        }
    };
    commit(0, 3).await;
    let (from, first) = audit("").await;
    assert_eq!(from, 1);
    assert!(first >= 3, "three blocks at least: {first}");
    commit(3, 5).await;
    let (from, second) = audit("").await;
    assert_eq!(from, first + 1, "the second audit starts after the first");
    assert!(second > first);
    assert_eq!(audit("").await, (second + 1, second), "nothing new, nothing verified");
    assert_eq!(audit("?from=1").await, (1, second), "from=1 restarts from genesis");
    let (status, refused) = http.get(&format!("{base}/v1/audit/verify?from=2")).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("bad_query")), "{refused}");
}
