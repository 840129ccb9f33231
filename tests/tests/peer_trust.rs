//! The raft port trusts no stranger: one regression test for each attack an outside review ran
//! against a local cluster (real `scf-node` processes, mutual TLS under the cluster's CA, as
//! `scf-sim cluster` starts them). Before peer authentication each of these worked: a stranger
//! connected with a `Hello` alone, spoke as any member, moved a member's address to its own,
//! stopped a replica with one heartbeat, and grew a node's memory with frame headers; and a
//! replica thread that died left its process answering 503.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::chain::REGISTRAR_ID;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::RejectedTx;
use ledger::pb::Role;
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use serde_json::Value;
use sim::client::{Http, now_ms, read_key_file};
use sim::cluster::LocalCluster;
use sim::node_api::{request_body, status};
use testkit::TestDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A cluster of three voters with TLS on every raft link, and the leader's id.
async fn cluster(name: &str) -> (TestDir, LocalCluster, u64) {
    let dir = TestDir::new(&format!("peer-trust-{name}"));
    let cluster =
        LocalCluster::start(&tests::cluster_config(dir.path(), 3, 0).unwrap()).await.unwrap();
    let http = Http::new(Duration::from_secs(10));
    let leader = field(&http, &cluster.nodes[0].url, "leader_id").await;
    assert!(leader != 0, "the cluster started without a leader");
    (dir, cluster, leader)
}

fn node(cluster: &LocalCluster, id: u64) -> &sim::cluster::LocalNode {
    cluster.nodes.iter().find(|n| n.id == id).expect("a node of the cluster")
}

/// A follower of `leader`.
fn follower(leader: u64) -> u64 {
    if leader == 1 { 2 } else { 1 }
}

/// One counter of a node's `/metrics`, by reason.
async fn metric(url: &str, name: &str, reason: &str) -> u64 {
    sample(url, &format!("{name}{{reason=\"{reason}\"}}")).await
}

/// The value of one series of a node's `/metrics` (its name and labels as they are printed).
async fn sample(url: &str, series: &str) -> u64 {
    let http = Http::new(Duration::from_secs(10));
    let answer = http.get(url, "/metrics", None).await.unwrap();
    let Value::String(text) = answer.body else { panic!("metrics are text: {:?}", answer.body) };
    let line = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in the metrics:\n{text}"))
        .parse()
        .unwrap()
}

async fn connections_refused(url: &str, reason: &str) -> u64 {
    metric(url, "scf_peer_connections_refused_total", reason).await
}

async fn messages_refused(url: &str, reason: &str) -> u64 {
    metric(url, "scf_peer_messages_refused_total", reason).await
}

/// Whether the count of connections refused for `reason` exceeds `count` within 10 s.
async fn connections_refused_exceed(url: &str, reason: &str, count: u64) -> bool {
    eventually(Duration::from_secs(10), || async { connections_refused(url, reason).await > count })
        .await
}

/// Whether the count of messages refused for `reason` exceeds `count` within 10 s.
async fn messages_refused_exceed(url: &str, reason: &str, count: u64) -> bool {
    eventually(Duration::from_secs(10), || async { messages_refused(url, reason).await > count })
        .await
}

/// The voter of the three that is neither `a` nor `b`.
fn third_voter(a: u64, b: u64) -> u64 {
    (1..=3).find(|id| *id != a && *id != b).expect("three voters")
}

/// Polls `condition` every 50 ms for at most `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut condition: impl FnMut() -> F,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn hello(chain_id: &str, from: u64, to: u64, address: &str) -> Vec<u8> {
    let hello = raft_node_hello(chain_id, from, to, address);
    frame(&hello)
}

/// The `Hello` frame's bytes, written by hand in prost's encoding (field numbers of
/// raft-node's `transport::Hello`), so this test depends on no internals.
fn raft_node_hello(chain_id: &str, from: u64, to: u64, address: &str) -> Vec<u8> {
    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    let mut out = Vec::new();
    out.push(0x08);
    varint(1, &mut out);
    out.push(0x12);
    varint(chain_id.len() as u64, &mut out);
    out.extend_from_slice(chain_id.as_bytes());
    out.push(0x18);
    varint(from, &mut out);
    out.push(0x20);
    varint(to, &mut out);
    out.push(0x2a);
    varint(address.len() as u64, &mut out);
    out.extend_from_slice(address.as_bytes());
    out
}

fn message(kind: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut message = Message { from, to, term, ..Default::default() };
    message.set_msg_type(kind);
    message
}

fn message_frame(message: &Message) -> Vec<u8> {
    frame(&message.write_to_bytes().unwrap())
}

/// Writes `bytes` and reads until the node closes the connection; true if it did within 10 s.
async fn closed_after<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> bool {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut sink = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    read.is_ok()
}

/// A TLS connection to node `to`'s raft port, with `files`' certificate.
async fn dial_as(
    files: &tls::TlsFiles,
    to: u64,
    address: SocketAddr,
) -> tls::tokio_rustls::client::TlsStream<TcpStream> {
    let connector = files.peer_connector().unwrap();
    let tcp = TcpStream::connect(address).await.unwrap();
    connector.connect(tls::node_server_name(to), tcp).await.unwrap()
}

/// A number of a node's `/v1/status`.
async fn field(http: &Http, url: &str, name: &str) -> u64 {
    let (_, body) = status(http, url).await.unwrap();
    body[name].as_u64().unwrap_or_else(|| panic!("no {name} in {body}"))
}

async fn term_of(url: &str) -> u64 {
    field(&Http::new(Duration::from_secs(10)), url, "term").await
}

/// Registers a new party through the leader and waits for the outcome: the cluster still
/// commits.
async fn commit_one(cluster: &LocalCluster, leader: u64, party: &str) {
    let registrar = Identity::new(
        &cluster.chain_id,
        REGISTRAR_ID,
        read_key_file(&cluster.registrar_key).unwrap(),
    );
    let key = SigningKey::generate(&mut ledger::crypto::rand::rng());
    let command =
        client::register_party(party, party, Role::Enterprise, &key.public_key().to_bytes());
    let tx = registrar.sign(now_ms() + 600_000, now_ms(), command);
    let http = Http::new(Duration::from_secs(30));
    let answer =
        http.submit(&node(cluster, leader).url, &request_body(&[&tx], true), true).await.unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["outcome"], "applied", "{:?}", answer.body);
}

// Goal: a client with no certificate, one with a certificate from another CA, and one that
// speaks plain TCP all fail to complete a connection to a raft port: each is closed, counted as
// a failed handshake, and the huge term their heartbeat carried never reaches the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_complete_a_connection() {
    let (dir, cluster, leader) = cluster("strangers").await;
    let target = follower(leader);
    let (url, raft) = (node(&cluster, target).url.clone(), node(&cluster, target).raft);
    let term = term_of(&url).await;
    let before = connections_refused(&url, "handshake").await;
    let mut forged = hello(&cluster.chain_id, leader, target, "127.0.0.1:1");
    forged.extend(message_frame(&message(MessageType::MsgHeartbeat, leader, target, term + 1_000)));

    // Plain TCP, as before TLS: the Hello is not a TLS ClientHello.
    let mut plain = TcpStream::connect(raft).await.unwrap();
    assert!(closed_after(&mut plain, &forged).await, "a plain TCP peer was kept");

    // TLS that trusts the cluster CA but shows no certificate of its own.
    let certs = &cluster.certs;
    let mut anonymous = (*tls::https_client_config(&certs.ca_file).unwrap()).clone();
    anonymous.alpn_protocols = vec![tls::PEER_ALPN.to_vec()];
    let connector = tls::tokio_rustls::TlsConnector::from(Arc::new(anonymous));
    let tcp = TcpStream::connect(raft).await.unwrap();
    // A handshake the client sees fail is a refusal too; one it sees succeed (TLS 1.3 ends
    // the client's side first) must then be closed by the node.
    if let Ok(mut stream) = connector.connect(tls::node_server_name(target), tcp).await {
        assert!(closed_after(&mut stream, &forged).await, "kept a client with no certificate");
    }

    // A certificate for the leader's id, issued by another CA.
    let other = tls::issue_cluster(&dir.path().join("other-ca"), &[leader], &[]).unwrap();
    let impostor = tls::TlsFiles {
        ca_file: certs.ca_file.clone(),
        cert_file: other.nodes[&leader].cert_file.clone(),
        key_file: other.nodes[&leader].key_file.clone(),
    };
    let tcp = TcpStream::connect(raft).await.unwrap();
    let connector = impostor.peer_connector().unwrap();
    // A handshake the client sees fail is a refusal too; one it sees succeed (TLS 1.3 ends
    // the client's side first) must then be closed by the node.
    if let Ok(mut stream) = connector.connect(tls::node_server_name(target), tcp).await {
        assert!(closed_after(&mut stream, &forged).await, "kept another CA's client");
    }

    assert!(
        connections_refused_exceed(&url, "handshake", before + 2).await,
        "the three refusals were not counted"
    );
    assert!(term_of(&url).await < term + 1_000, "a stranger's term reached the replica");
    commit_one(&cluster, leader, "after-strangers").await;
}

// Goal: a node that holds a valid certificate for one id cannot speak as another: a Hello that
// claims another id is refused as an impersonation, and a message that claims another sender on
// an honest Hello closes the connection; neither message reaches the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_speak_as_another() {
    let (_dir, cluster, leader) = cluster("impersonation").await;
    let target = follower(leader);
    let holder = third_voter(leader, target);
    let (url, raft) = (node(&cluster, target).url.clone(), node(&cluster, target).raft);
    let files = cluster.certs.nodes[&holder].clone();
    let term = term_of(&url).await;
    let heartbeat =
        message_frame(&message(MessageType::MsgHeartbeat, leader, target, term + 1_000));

    // With the holder's certificate: a Hello in the leader's name (an impersonation), then an
    // honest Hello followed by a message in the leader's name (a forged sender, refused as a
    // bad frame).
    for (hello_from, reason, attack) in
        [(leader, "impersonation", "an impersonation"), (holder, "frame", "a forged sender")]
    {
        let refused = connections_refused(&url, reason).await;
        let mut stream = dial_as(&files, target, raft).await;
        let mut bytes = hello(&cluster.chain_id, hello_from, target, "");
        bytes.extend(&heartbeat);
        assert!(closed_after(&mut stream, &bytes).await, "{attack} was kept");
        assert!(
            connections_refused_exceed(&url, reason, refused).await,
            "{attack} was not counted"
        );
    }
    assert!(term_of(&url).await < term + 1_000, "a forged message reached the replica");
    commit_one(&cluster, leader, "after-impersonation").await;
}

// Goal: a Hello moves no address. A stranger and a member with another id's certificate each
// announce, in a follower's name, an address of the attacker's; the leader never dials it, and
// the follower keeps following the same leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_changes_no_address() {
    let (_dir, cluster, leader) = cluster("addresses").await;
    let victim = follower(leader);
    let holder = third_voter(leader, victim);
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_address = trap.local_addr().unwrap().to_string();
    let leader_raft = node(&cluster, leader).raft;
    let claim = hello(&cluster.chain_id, victim, leader, &trap_address);

    let mut plain = TcpStream::connect(leader_raft).await.unwrap();
    assert!(closed_after(&mut plain, &claim).await);
    let mut stream = dial_as(&cluster.certs.nodes[&holder], leader, leader_raft).await;
    assert!(closed_after(&mut stream, &claim).await);

    // A leader that took the address would dial it at once (its heartbeats go every 300 ms).
    let dialled = tokio::time::timeout(Duration::from_secs(3), trap.accept()).await;
    assert!(dialled.is_err(), "the leader dialled the attacker's address");
    let http = Http::new(Duration::from_secs(10));
    let after = field(&http, &node(&cluster, victim).url, "leader_id").await;
    assert_eq!(after, leader, "the victim lost its leader");
    commit_one(&cluster, leader, "after-hello").await;
}

// Goal: out-of-range heartbeat (at this term and at term 0), append and snapshot messages from
// a member with a valid
// certificate (here the leader's own, as a compromised leader would send them) are refused
// before raft-rs, counted, and the follower keeps serving; one such heartbeat used to stop the
// replica through raft-rs's `fatal!`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_messages_are_dropped_and_the_node_keeps_serving() {
    let (_dir, cluster, leader) = cluster("ranges").await;
    let target = follower(leader);
    let (url, raft) = (node(&cluster, target).url.clone(), node(&cluster, target).raft);
    let files = cluster.certs.nodes[&leader].clone();
    let http = Http::new(Duration::from_secs(10));
    let term = field(&http, &url, "term").await;
    let commit_index = field(&http, &url, "commit_index").await;
    let applied_index = field(&http, &url, "applied_index").await;

    let mut heartbeat = message(MessageType::MsgHeartbeat, leader, target, term);
    heartbeat.commit = 1_000_000_000_000;
    let mut append = message(MessageType::MsgAppend, leader, target, term);
    (append.index, append.log_term, append.commit) = (commit_index, term, commit_index);
    append.entries = vec![
        Entry { index: 3, term, ..Default::default() },
        Entry { index: 2, term, ..Default::default() },
    ]
    .into();
    let mut snapshot = message(MessageType::MsgSnapshot, leader, target, term);
    let conf = ConfState { voters: vec![1, 2], learners: vec![2], ..Default::default() };
    snapshot.snapshot = Some(Snapshot {
        metadata: Some(SnapshotMetadata {
            index: commit_index + 1_000,
            term,
            conf_state: Some(conf).into(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    })
    .into();

    // Term 0 would make raft-rs take the heartbeat for a local message and skip its checks.
    let mut zero = message(MessageType::MsgHeartbeat, leader, target, 0);
    zero.commit = 1_000_000_000_000;
    for (forged, reason) in [
        (heartbeat, "commit_beyond_log"),
        (zero, "term"),
        (append, "entries"),
        (snapshot, "snapshot"),
    ] {
        let refused = messages_refused(&url, reason).await;
        // Each on its own connection: the node closes a connection that carried one.
        let mut stream = dial_as(&files, target, raft).await;
        let mut bytes = hello(&cluster.chain_id, leader, target, "");
        bytes.extend(message_frame(&forged));
        assert!(closed_after(&mut stream, &bytes).await, "{reason}: the connection stayed open");
        assert!(messages_refused_exceed(&url, reason, refused).await, "{reason}: not refused");
    }
    assert_eq!(field(&http, &url, "leader_id").await, leader, "the follower lost its leader");
    commit_one(&cluster, leader, "after-ranges").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            status(&http, &url)
                .await
                .is_ok_and(|(_, s)| s["applied_index"].as_u64().unwrap_or(0) > applied_index)
        })
        .await,
        "the follower stopped applying"
    );
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How much a node's resident memory may grow under the flood below. Before the fix, 40
/// connections announcing 256 MiB frames took a node from 63 MiB to 383 MiB.
const FLOOD_GROWTH_KIB_MAX: u64 = 64 * 1024;

// Goal: 1,000 connection attempts, each announcing a 256 MiB frame, and 40 member connections
// that announce 200 MiB frames and send only their start leave the node's memory within
// FLOOD_GROWTH_KIB_MAX, and the node still serves. (Three defences hold the bound together: a
// connection without a certificate never reaches a frame, a member holds one connection at a
// time, and a frame's buffer grows only with the bytes that arrive; the transport's unit tests
// check the last two.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_huge_frame_headers_leave_memory_bounded() {
    let (_dir, cluster, leader) = cluster("flood").await;
    let target = follower(leader);
    let (url, raft) = (node(&cluster, target).url.clone(), node(&cluster, target).raft);
    let pid = node(&cluster, target).pid().expect("running");
    let before = rss_kib(pid);

    // 1,000 plain connections in waves of 100, each writing a huge frame header.
    for _ in 0..10 {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..100 {
            wave.spawn(async move {
                if let Ok(mut stream) = TcpStream::connect(raft).await {
                    let _ = stream.write_all(&(256u32 << 20).to_be_bytes()).await;
                    let mut byte = [0u8; 1];
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
                }
            });
        }
        while wave.join_next().await.is_some() {}
    }
    // 40 authenticated connections that announce 200 MiB and send 64 KiB of it.
    let files = cluster.certs.nodes[&leader].clone();
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut stream = dial_as(&files, target, raft).await;
        let mut bytes = hello(&cluster.chain_id, leader, target, "");
        bytes.extend((200u32 << 20).to_be_bytes());
        bytes.extend(vec![0u8; 64 * 1024]);
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
        held.push(stream);
    }
    let after = rss_kib(pid);
    println!("resident memory: {before} KiB before, {after} KiB after the flood");
    assert!(
        after.saturating_sub(before) <= FLOOD_GROWTH_KIB_MAX,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    drop(held);
    commit_one(&cluster, leader, "after-flood").await;
    let http = Http::new(Duration::from_secs(10));
    assert!(status(&http, &url).await.is_ok(), "the node stopped serving");
}

// Goal: a replica thread that dies (here a panic armed at the apply crash point) makes the
// process exit non-zero, so that a supervisor restarts it, instead of lingering with 503s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_thread_ends_the_process() {
    let (_dir, mut cluster, leader) = cluster("dead-replica").await;
    let victim = follower(leader);
    cluster.kill(victim).unwrap();
    cluster.restart_with(victim, &[("FAILPOINTS", "raft::apply::before_store=panic")]).unwrap();
    // The next block it applies panics its replica thread.
    commit_one(&cluster, leader, "dies-on-apply").await;
    let mut exit = None;
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        exit = cluster.exited(victim).unwrap();
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = exit.expect(
        "the node kept running with its replica thread dead (or this scf-node was built without \
         `--features api/failpoints`, so FAILPOINTS armed nothing: scripts/test.sh builds it so)",
    );
    assert_eq!(exit.code(), Some(1), "the node did not exit with an error: {exit:?}");
}

/// A state's entries, key by key.
type Entries = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;

/// Sends `target` a snapshot of `data`, `above` its commit index at its current term, as member
/// `from` (with `from`'s certificate), and checks that `target` closes the connection and counts
/// a `snapshot_state` refusal.
async fn snapshot_refused(
    cluster: &LocalCluster,
    from: u64,
    target: u64,
    data: &[u8],
    above: u64,
    conf: &ConfState,
    what: &str,
) {
    let http = Http::new(Duration::from_secs(10));
    let (url, raft) = (node(cluster, target).url.clone(), node(cluster, target).raft);
    let term = term_of(&url).await;
    let commit_index = field(&http, &url, "commit_index").await;
    let mut message = message(MessageType::MsgSnapshot, from, target, term);
    message.snapshot = Some(Snapshot {
        data: data.to_vec().into(),
        metadata: Some(SnapshotMetadata {
            index: commit_index + above,
            term,
            conf_state: Some(conf.clone()).into(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    })
    .into();
    let refused = messages_refused(&url, "snapshot_state").await;
    let mut stream = dial_as(&cluster.certs.nodes[&from], target, raft).await;
    let mut bytes = hello(&cluster.chain_id, from, target, "");
    bytes.extend(message_frame(&message));
    assert!(closed_after(&mut stream, &bytes).await, "{target}, {what}: not closed");
    assert!(
        messages_refused_exceed(&url, "snapshot_state", refused).await,
        "{target}, {what}: not refused"
    );
}

/// Submits `tx` to `url` and waits for its outcome.
async fn outcome_of(url: &str, tx: &ledger::pb::SignedTx) -> Value {
    let http = Http::new(Duration::from_secs(30));
    let answer = http.submit(url, &request_body(&[tx], true), true).await.unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

// Goal: a snapshot whose state is not what its own blocks produce is refused by every replica,
// voter and observer alike, before raft-rs sees it: one record changed, extra or missing, and
// one entry of the rejection log (`idx/`, derived from the blocks) changed, extra or missing.
// Each refusal is counted, nothing is installed, and the replica keeps following its leader.
// The forgeries are made from the cluster's real chain, replayed here, and sent as its leader
// would send them (the leader's certificate): a compromised or corrupted leader. Before, a voter
// installed any snapshot unchecked, and an observer took the rejection log on trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_snapshots_are_refused_by_voters_and_observers() {
    let dir = TestDir::new("peer-trust-snapshots");
    let cluster =
        LocalCluster::start(&tests::cluster_config(dir.path(), 3, 1).unwrap()).await.unwrap();
    let http = Http::new(Duration::from_secs(10));
    let leader = field(&http, &cluster.nodes[0].url, "leader_id").await;
    assert!(leader != 0, "the cluster started without a leader");
    let leader_url = node(&cluster, leader).url.clone();

    // A regulator to read the whole chain with, and a rejection for the log: its id again.
    let registrar = Identity::new(
        &cluster.chain_id,
        REGISTRAR_ID,
        read_key_file(&cluster.registrar_key).unwrap(),
    );
    let key = SigningKey::generate(&mut ledger::crypto::rand::rng());
    let register = |nonce| {
        let command = client::register_party(
            "auditor",
            "Auditor",
            Role::Regulator,
            &key.public_key().to_bytes(),
        );
        registrar.sign(now_ms() + 600_000, nonce, command)
    };
    assert_eq!(outcome_of(&leader_url, &register(now_ms())).await["outcome"], "applied");
    let again = outcome_of(&leader_url, &register(now_ms() + 1)).await;
    assert_eq!(again["reason"]["code"], "already_exists", "{again}");

    let (_, status_body) = status(&http, &leader_url).await.unwrap();
    let genesis = sim::node_api::genesis_of(&status_body).unwrap();
    let height = status_body["height"].as_u64().unwrap();
    let (state, broken) = sim::node_api::replay_chain(
        &http,
        &leader_url,
        ("auditor", &key),
        &genesis,
        height,
        |_| {},
    )
    .await
    .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let rejection = state
        .entries()
        .keys()
        .find(|k| k.starts_with(ledger::store::keys::REJECTION_PREFIX))
        .expect("the rejection is logged")
        .clone();
    let party = ledger::store::keys::party("auditor");
    let altered = |change: &dyn Fn(&mut Entries)| {
        let mut entries = state.entries().clone();
        change(&mut entries);
        let mut forged = ledger::MemStore::new();
        for (key, value) in entries {
            forged.put_raw(key, value);
        }
        raft_node::storage::encode_state(&forged)
    };
    let mut invented = RejectedTx::decode(state.entries()[&rejection].as_slice()).unwrap();
    invented.signer = "a-rival".into();
    let invented = invented.encode_to_vec();
    let mut frozen = ledger::pb::Party::decode(state.entries()[&party].as_slice()).unwrap();
    frozen.frozen = true;
    // Another chain of the same genesis, valid block by block and longer than the cluster's.
    let ledger = ledger::Ledger::new(genesis.clone());
    let mut other = ledger::MemStore::new();
    other.commit(&ledger.genesis_writes());
    for i in 0..height + 20 {
        let key = SigningKey::generate(&mut ledger::crypto::rand::rng());
        let id = format!("other-{i}");
        let command =
            client::register_party(&id, &id, Role::Enterprise, &key.public_key().to_bytes());
        let time_ms = genesis.time_ms + 1_000 * (i + 1);
        let tx = registrar.sign(time_ms + 600_000, i, command);
        let applied = ledger.apply_block(&other, time_ms, vec![tx]).unwrap();
        assert!(applied.block.results[0].applied, "{:?}", applied.block.results[0]);
        other.commit(&applied.writes);
    }
    let mut genesis_state = ledger::MemStore::new();
    genesis_state.commit(&ledger.genesis_writes());

    const MISMATCH: &str = "the state is not what its blocks produce";
    // What is sent, how far above the target's commit index, and why it is refused. The one at
    // the commit index itself is one raft-rs would restore were its term another there.
    let forgeries = [
        (
            "a changed record",
            altered(&|e| {
                e.insert(party.clone(), frozen.encode_to_vec());
            }),
            1_000,
            MISMATCH,
        ),
        (
            "a changed record at the commit index",
            altered(&|e| {
                e.insert(party.clone(), frozen.encode_to_vec());
            }),
            0,
            MISMATCH,
        ),
        (
            "an extra record",
            altered(&|e| {
                e.insert(ledger::store::keys::party("ghost"), Vec::new());
            }),
            1_000,
            MISMATCH,
        ),
        (
            "a missing record",
            altered(&|e| {
                e.remove(&party);
            }),
            1_000,
            MISMATCH,
        ),
        (
            "a changed rejection",
            altered(&|e| {
                e.insert(rejection.clone(), invented.clone());
            }),
            1_000,
            MISMATCH,
        ),
        (
            "an extra rejection",
            altered(&|e| {
                e.insert(ledger::store::keys::rejection(1, 7), invented.clone());
            }),
            1_000,
            MISMATCH,
        ),
        (
            "a missing rejection",
            altered(&|e| {
                e.remove(&rejection);
            }),
            1_000,
            MISMATCH,
        ),
        (
            "the genesis state, faithful but behind",
            raft_node::storage::encode_state(&genesis_state),
            1_000,
            "below this replica's",
        ),
        (
            "another valid chain",
            raft_node::storage::encode_state(&other),
            1_000,
            "is not this replica's",
        ),
    ];

    let observer = cluster.nodes.iter().find(|n| n.role == "observer").expect("an observer").id;
    let conf = ConfState {
        voters: cluster.nodes.iter().filter(|n| n.role == "voter").map(|n| n.id).collect(),
        learners: vec![observer],
        ..Default::default()
    };
    for target in [follower(leader), observer] {
        let url = node(&cluster, target).url.clone();
        let installed = sample(&url, "scf_snapshots_installed").await;
        for (what, data, above, _) in &forgeries {
            snapshot_refused(&cluster, leader, target, data, *above, &conf, what).await;
        }
        // The honest state, but from a member that is not this term's leader: refused unread.
        let sender = third_voter(leader, target);
        // The check needs the target to know its leader: the refusals above closed its link to
        // the leader, so a voter may be between heartbeats or electing.
        assert!(
            eventually(Duration::from_secs(10), || async {
                field(&http, &url, "leader_id").await == leader
            })
            .await,
            "{target} lost its leader"
        );
        let honest = raft_node::storage::encode_state(&state);
        snapshot_refused(&cluster, sender, target, &honest, 1_000, &conf, "not the leader").await;
        assert_eq!(
            sample(&url, "scf_snapshots_installed").await,
            installed,
            "{target} installed a forged snapshot"
        );
        // Each refused for what was forged (not, say, for a block it could not read): the
        // honest state verifies (`raft_node::node` unit tests), these do not.
        let log = std::fs::read_to_string(cluster.log_path(target)).unwrap();
        let refusals: Vec<&str> =
            log.lines().filter(|l| l.contains("refused the snapshot")).collect();
        assert_eq!(refusals.len(), forgeries.len() + 1, "{target}'s log:\n{log}");
        for (line, (what, _, _, why)) in refusals.iter().zip(&forgeries) {
            assert!(line.contains(why), "{target}, {what}: {line}");
        }
        let last = refusals.last().unwrap();
        assert!(last.contains(&format!("sent by {sender}, not by {leader}")), "{target}: {last}");
    }
    // Both keep following their leader.
    let targets = [follower(leader), observer];
    let mut applied = Vec::new();
    for target in targets {
        applied.push(field(&http, &node(&cluster, target).url, "applied_index").await);
    }
    commit_one(&cluster, leader, "after-snapshots").await;
    for (target, applied) in targets.into_iter().zip(applied) {
        let url = node(&cluster, target).url.clone();
        assert!(
            eventually(Duration::from_secs(10), || async {
                status(&http, &url)
                    .await
                    .is_ok_and(|(_, s)| s["applied_index"].as_u64().unwrap_or(0) > applied)
            })
            .await,
            "{target} stopped applying"
        );
    }
}
