//! The public API over HTTPS (`[tls] https = true`), on real `scf-node` processes: clients that
//! trust the cluster CA are served, a write sent to a follower reaches the leader over HTTPS,
//! and clients that trust nothing, trust another CA or speak plain HTTP get no answer.

use std::time::Duration;

use ledger::chain::REGISTRAR_ID;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::Role;
use sim::client::{Http, now_ms, read_key_file};
use sim::cluster::{ClusterConfig, LocalCluster};
use sim::node_api::{request_body, status};

// Goal: with HTTPS on, every node answers clients that trust the cluster CA, a follower forwards
// a write to the leader over HTTPS and it is applied, and no answer reaches a client that
// trusts no CA, one that trusts another CA, or one that speaks plain HTTP to the HTTPS port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_to_clients_of_the_cluster_ca() {
    let dir = testkit::TestDir::new("https");
    let config = ClusterConfig { https: true, ..tests::cluster_config(dir.path(), 3, 0).unwrap() };
    let cluster = LocalCluster::start(&config).await.unwrap();
    let http = cluster.http(Duration::from_secs(30));
    let mut leader = 0;
    for node in &cluster.nodes {
        assert!(node.url.starts_with("https://127.0.0.1:"), "{}", node.url);
        let (_, body) = status(&http, &node.url).await.unwrap();
        leader = body["leader_id"].as_u64().expect("a leader id");
    }
    let follower = cluster.nodes.iter().find(|n| n.id != leader).expect("three voters");

    let registrar = Identity::new(
        &cluster.chain_id,
        REGISTRAR_ID,
        read_key_file(&cluster.registrar_key).unwrap(),
    );
    let key = SigningKey::generate(&mut ledger::crypto::rand::rng());
    let command = client::register_party(
        "over-https",
        "Over HTTPS",
        Role::Enterprise,
        &key.public_key().to_bytes(),
    );
    let tx = registrar.sign(now_ms() + 600_000, now_ms(), command);
    let answer = http.submit(&follower.url, &request_body(&[&tx], true), true).await.unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["outcome"], "applied", "{:?}", answer.body);

    let url = follower.url.clone();
    let trusting_nothing = Http::trusting(Duration::from_secs(10), None);
    assert!(trusting_nothing.get(&url, "/v1/status", None).await.is_err(), "served without a CA");
    let other =
        tls::issue_cluster(&dir.path().join("other-ca"), &[1], &["127.0.0.1".into()]).unwrap();
    let other_ca = tls::https_client_config(&other.ca_file).unwrap();
    let trusting_other = Http::trusting(Duration::from_secs(10), Some(other_ca));
    assert!(
        trusting_other.get(&url, "/v1/status", None).await.is_err(),
        "served another CA's client"
    );
    let plain = url.replacen("https://", "http://", 1);
    let answer =
        Http::trusting(Duration::from_secs(10), None).get(&plain, "/v1/status", None).await;
    assert!(answer.is_err(), "plain HTTP got an answer from the HTTPS port: {answer:?}");
}
