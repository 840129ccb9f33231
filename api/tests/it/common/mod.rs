//! Shared by the API's tests: a JSON HTTP client, temp dirs, configurations, signed transactions.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::config::{ChainConfig, Config, HttpLimits, PeerConfig, RaftTuning, Role};
use api::node::memory::MemoryNode;
use api::server::{HttpServers, Listeners, NodeParts, RunningNode, serve, start_on};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use ledger::pb::{Role as PartyRole, SignedTx};
use serde_json::{Value, json};

pub const CHAIN_ID: &str = "scf-api-test";

pub use testkit::{TestDir, now_ms};

pub fn registrar() -> Identity {
    Identity::new(CHAIN_ID, "registrar", SigningKey::from_seed("api-test/registrar"))
}

/// The registrar registers party `p-{i}`: always valid, a distinct hash per `i`.
pub fn register(i: u64) -> SignedTx {
    let key = SigningKey::from_seed(&format!("api-test/party/{i}"));
    let command = client::register_party(
        &format!("p-{i}"),
        "Party",
        PartyRole::Enterprise,
        &key.public_key().to_bytes(),
    );
    registrar().sign(valid_until_ms(), i, command)
}

/// One expiry for every transaction of the test process, so that `register(i)` is the same
/// transaction every time it is built.
pub fn valid_until_ms() -> u64 {
    static VALID_UNTIL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *VALID_UNTIL.get_or_init(|| now_ms() + 3_600_000)
}

pub fn tx_json(tx: &SignedTx) -> Value {
    json!({"body": hex::encode(&tx.body), "signature": hex::encode(&tx.signature)})
}

pub fn tx_hash_hex(tx: &SignedTx) -> String {
    hex::encode(ledger::tx::tx_hash(tx))
}

/// A configuration for node `id` of a cluster whose members are `peers`.
pub fn config(id: u64, role: Role, dir: &TestDir, peers: Vec<PeerConfig>) -> Config {
    Config { data_dir: dir.path().to_path_buf(), ..config_without_dir(id, role, peers) }
}

/// [`config`] for a node that keeps nothing on disk (an in-memory node).
fn config_without_dir(id: u64, role: Role, peers: Vec<PeerConfig>) -> Config {
    Config {
        node_id: id,
        role,
        data_dir: PathBuf::from("/nonexistent/in-memory-node"),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        raft_listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        chain: ChainConfig {
            chain_id: CHAIN_ID.into(),
            registrar_public_key: hex::encode(registrar().public_key()),
            genesis_time_ms: 1_767_225_600_000,
        },
        peers,
        // 50 ms ticks: elections only after 0.5 to 1 s of silence, so that a test on a busy
        // 2-core machine does not see leaders change under it, yet still starts quickly.
        raft: RaftTuning { tick_ms: 50, submit_timeout_ms: 5_000, ..RaftTuning::default() },
        http: HttpLimits { body_bytes_max: 256 * 1024, batch_txs_max: 50, ..HttpLimits::default() },
        // Plain TCP on loopback: these tests are about HTTP (tests/peer_trust.rs in the crate
        // `tests` runs the raft links over mutual TLS).
        tls: None,
        insecure_peer_network: false,
        fault_injection: false,
    }
}

/// A JSON HTTP client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl Http {
    /// Sends a request, or says why no answer came (connection refused or reset, timeout).
    pub async fn try_post(&self, url: &str, body: &Value) -> Result<(u16, Value), String> {
        let request = hyper::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        Ok((status, value))
    }

    /// A GET that gives `None` when no answer came (a node that is down).
    pub async fn raw_fallible(&self, method: &str, url: &str) -> Option<(u16, Value, ())> {
        let request =
            hyper::Request::builder().method(method).uri(url).body(Full::new(Bytes::new())).ok()?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .ok()?
            .ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&bytes).ok()?, ()))
    }

    /// Sends a request; the body is raw bytes. Returns the status, the JSON answer (or the text
    /// as a JSON string when it is not JSON) and the headers.
    pub async fn raw(
        &self,
        method: &str,
        url: &str,
        body: Vec<u8>,
    ) -> (u16, Value, hyper::HeaderMap) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("an answer within 30 s")
            .expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value, headers)
    }

    /// A GET with extra headers: the response, its body not yet read.
    async fn get_response(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> hyper::Response<hyper::body::Incoming> {
        let mut request = hyper::Request::builder().method("GET").uri(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("an answer within 30 s")
            .expect("an HTTP answer")
    }

    /// A GET with extra headers.
    pub async fn get_with(&self, url: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let response = self.get_response(url, headers).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Opens a server-sent event stream (`GET` with `headers`); its status and a reader of its
    /// events.
    pub async fn events(&self, url: &str, headers: &[(&str, String)]) -> (u16, EventReader) {
        let response = self.get_response(url, headers).await;
        let status = response.status().as_u16();
        (status, EventReader { body: response.into_body(), text: String::new() })
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let (status, value, _) = self.raw("GET", url, Vec::new()).await;
        (status, value)
    }

    pub async fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        let (status, value, _) = self.raw("POST", url, body.to_string().into_bytes()).await;
        (status, value)
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Listeners on loopback ports the OS picks.
pub async fn listeners() -> Listeners {
    Listeners {
        raft: raft_node::transport::bind("127.0.0.1:0".parse().unwrap()).unwrap(),
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    }
}

/// Starts nodes 1..=`voters` as voters and the next `observers` as observers, in this process,
/// each with its own directory (returned to be kept alive as long as the nodes).
pub async fn start_nodes(voters: u64, observers: u64) -> (Vec<RunningNode>, Vec<TestDir>) {
    let mut bound = Vec::new();
    let mut peers = Vec::new();
    for id in 1..=voters + observers {
        let listeners = listeners().await;
        peers.push(PeerConfig {
            id,
            role: if id <= voters { Role::Voter } else { Role::Observer },
            raft: listeners.raft.local_addr().unwrap(),
            http: format!("http://{}", listeners.http.local_addr().unwrap()),
        });
        bound.push(listeners);
    }
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for (listeners, peer) in bound.into_iter().zip(peers.clone()) {
        let dir = TestDir::new(&format!("node-{}", peer.id));
        let config = config(peer.id, peer.role, &dir, peers.clone());
        nodes.push(start_on(config, listeners).await.expect("node starts"));
        dirs.push(dir);
    }
    (nodes, dirs)
}

/// The API over an in-memory node ([`MemoryNode`]): no consensus and no storage, the real
/// ledger, routes and listeners.
pub struct MemoryServer {
    /// Where the public HTTP API listens.
    pub http_address: std::net::SocketAddr,
    /// Where the admin HTTP API listens.
    pub admin_address: std::net::SocketAddr,
    /// The node (stop it to see the API answer as for a stopped replica).
    pub node: MemoryNode,
    /// Where its access log is.
    pub dir: TestDir,
    _servers: HttpServers,
}

/// An in-memory leader (node 1) and `observers` observers sharing its state (nodes 2, 3, ...),
/// each with the API on its own loopback ports.
pub async fn start_memory(observers: u64) -> Vec<MemoryServer> {
    start_memory_with(observers, |_| {}).await
}

/// [`start_memory`], each node's configuration changed by `adjust` first.
pub async fn start_memory_with(observers: u64, adjust: impl Fn(&mut Config)) -> Vec<MemoryServer> {
    let mut bound = Vec::new();
    let mut peers = Vec::new();
    for id in 1..=1 + observers {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.push(PeerConfig {
            id,
            role: if id == 1 { Role::Voter } else { Role::Observer },
            // No raft port: nothing connects to it.
            raft: "127.0.0.1:9".parse().unwrap(),
            http: format!("http://{}", http.local_addr().unwrap()),
        });
        bound.push((http, admin));
    }
    let leader_config = config_without_dir(1, Role::Voter, peers.clone());
    let leader = MemoryNode::new(1, leader_config.genesis().expect("genesis"));
    let mut servers = Vec::new();
    for ((http, admin), peer) in bound.into_iter().zip(peers.clone()) {
        let node = if peer.id == 1 { leader.clone() } else { leader.observer(peer.id) };
        let dir = TestDir::new("memory-node");
        let access_log = raft_node::access_log::AccessLog::open(dir.path(), peer.id).unwrap();
        let parts = NodeParts {
            node: std::sync::Arc::new(node.clone()),
            memos: node.memos().clone(),
            cuts: None,
            refusals: Default::default(),
            access_log: std::sync::Arc::new(access_log),
        };
        let mut config = config_without_dir(peer.id, peer.role, peers.clone());
        adjust(&mut config);
        let served = serve(config, parts, http, admin).expect("the API serves");
        servers.push(MemoryServer {
            http_address: served.http_address,
            admin_address: served.admin_address,
            node,
            dir,
            _servers: served,
        });
    }
    servers
}

/// The records tests' chain: an in-memory leader and an observer, the parties of a
/// receivable's life registered on it, and helpers to write and to make signed reads.
pub struct Parties {
    /// Leader, then observer.
    pub nodes: Vec<MemoryServer>,
    /// The client.
    pub http: Http,
    /// The leader's URL.
    pub voter: String,
    /// The observer's URL.
    pub observer: String,
    /// The buyer (the obligor), `acme`.
    pub buyer: Identity,
    /// The supplier, `parts`.
    pub seller: Identity,
    /// A bank, `bank`.
    pub bank: Identity,
    /// A regulator, `reg`.
    pub regulator: Identity,
    /// An enterprise with no part in anything, `stranger`.
    pub stranger: Identity,
    nonce: AtomicU64,
}

impl Parties {
    /// Starts the nodes and registers the five parties, with keys seeded by `seed`.
    pub async fn register(seed: &str) -> Self {
        Self::register_with(seed, |_| {}).await
    }

    /// [`Parties::register`] on nodes whose configuration `adjust` changed first.
    pub async fn register_with(seed: &str, adjust: impl Fn(&mut Config)) -> Self {
        let nodes = start_memory_with(1, adjust).await;
        let party =
            |id: &str| Identity::new(CHAIN_ID, id, SigningKey::from_seed(&format!("{seed}/{id}")));
        let parties = Parties {
            http: Http::default(),
            voter: format!("http://{}", nodes[0].http_address),
            observer: format!("http://{}", nodes[1].http_address),
            nodes,
            buyer: party("acme"),
            seller: party("parts"),
            bank: party("bank"),
            regulator: party("reg"),
            stranger: party("stranger"),
            nonce: AtomicU64::new(0),
        };
        for (who, role) in [
            (&parties.buyer, PartyRole::Enterprise),
            (&parties.seller, PartyRole::Enterprise),
            (&parties.bank, PartyRole::Bank),
            (&parties.regulator, PartyRole::Regulator),
            (&parties.stranger, PartyRole::Enterprise),
        ] {
            let command =
                client::register_party(&who.party_id, &who.party_id, role, &who.public_key());
            parties.post(&registrar(), command, "applied").await;
        }
        parties
    }

    /// `who` signs `command` (a fresh nonce each time), as the submission JSON.
    pub fn sign(&self, who: &Identity, command: ledger::pb::tx_body::Command) -> Value {
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed) + 1;
        tx_json(&who.sign(valid_until_ms(), nonce, command))
    }

    /// `who` submits `command` to the leader, which must answer 200 with `outcome`.
    pub async fn post(
        &self,
        who: &Identity,
        command: ledger::pb::tx_body::Command,
        outcome: &str,
    ) -> Value {
        let body = self.sign(who, command);
        let (status, answer) =
            self.http.post(&format!("{}/v1/transactions", self.voter), &body).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some(outcome)), "{answer}");
        answer
    }

    /// `GET base+path`, signed by `who` (unsigned for `None`).
    pub async fn read(&self, base: &str, path: &str, who: Option<&Identity>) -> (u16, Value) {
        let path = &as_reader(path, who);
        let headers = signed(&self.http, base, who, path).await;
        self.http.get_with(&format!("{base}{path}"), &headers).await
    }
}

/// The signed-read headers of `who` for `GET path` at the node at `base` now (none for
/// `None`): signed for that node, as its `GET /v1/status` names it, with a fresh nonce.
pub async fn signed(
    http: &Http,
    base: &str,
    who: Option<&Identity>,
    path: &str,
) -> Vec<(&'static str, String)> {
    let Some(who) = who else { return Vec::new() };
    signed_for(who, node_id(http, base).await, path, now_ms()).to_vec()
}

/// The id of the node at `base`, as its `GET /v1/status` gives it (what a signed read names).
pub async fn node_id(http: &Http, base: &str) -> u64 {
    let (status, node) = http.get(&format!("{base}/v1/status")).await;
    assert_eq!(status, 200, "{node}");
    node["node_id"].as_u64().expect("a node id")
}

/// `path` as `who` asks for it: a regulator's (`reg`, [`Parties::regulator`]) with
/// `purpose=supervision` added, since every private read by a regulator gives a purpose.
pub fn as_reader(path: &str, who: Option<&Identity>) -> String {
    match who {
        Some(who) if who.party_id == "reg" && !path.contains("purpose=") => {
            let join = if path.contains('?') { '&' } else { '?' };
            format!("{path}{join}purpose=supervision")
        }
        _ => path.to_owned(),
    }
}

/// The signed-read headers of `who` for `GET path` at node `node_id` at `time_ms`, with a fresh
/// nonce.
pub fn signed_for(
    who: &Identity,
    node_id: u64,
    path: &str,
    time_ms: u64,
) -> [(&'static str, String); 5] {
    let nonce = ledger::client::read_nonce(&mut ledger::crypto::rand::rng());
    ledger::client::ReadRequest {
        chain_id: &who.chain_id,
        node_id,
        party: &who.party_id,
        method: "GET",
        path_and_query: path,
        nonce: &nonce,
        time_ms,
        body: b"",
    }
    .sign(&who.key)
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `event:`.
    pub name: String,
    /// `id:`.
    pub id: String,
    /// `data:`, parsed as JSON.
    pub data: Value,
}

/// Reads the events of an open stream.
pub struct EventReader {
    body: hyper::body::Incoming,
    text: String,
}

impl EventReader {
    /// The next event (comments skipped), or `None` if the stream ends or none comes within
    /// `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = Event { name: String::new(), id: String::new(), data: Value::Null };
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event.name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data = Some(value.trim().to_owned());
                    }
                }
                if let Some(data) = data {
                    event.data = serde_json::from_str(&data).expect("event data is JSON");
                    return Some(event);
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await.ok()??.ok()?;
            if let Ok(bytes) = frame.into_data() {
                self.text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Events until one matches `last` (included); panics if the stream ends or stalls for
    /// `limit` first.
    pub async fn until(&mut self, limit: Duration, last: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next(limit)
                .await
                .unwrap_or_else(|| panic!("the stream stalled or ended after {events:?}"));
            let done = last(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}
