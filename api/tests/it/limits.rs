//! Limits per client: one address flooding a node with connections, or with event streams,
//! cannot keep another client out, and signed readers (a regulator above all) keep their own
//! stream slots whatever unsigned clients do. The other clients come from other loopback
//! addresses (127.0.0.2 and up: all of 127/8 is loopback on Linux).

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use ledger::client::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long one answer's status line may take.
const ANSWER: Duration = Duration::from_secs(5);

/// A connection to `server` from the loopback address `127.0.0.{host}`.
async fn connect_from(host: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0));
    socket.bind(source).expect("binding a loopback address");
    socket.connect(server).await.expect("connecting on loopback")
}

/// Sends `GET path` (with `headers`) on `stream` and reads up to the status line's code. The
/// connection stays open (an event stream keeps sending on it).
async fn get_status(stream: &mut TcpStream, path: &str, headers: &[(&str, String)]) -> u16 {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: node\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("sending the request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    };
    tokio::time::timeout(ANSWER, read).await.expect("a status line in time");
    let line = String::from_utf8_lossy(&head).into_owned();
    line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| {
        panic!("not a status line: {line:?}");
    })
}

/// One address holding all its connection slots gets 429 for one more; another address is
/// served meanwhile, and the first gets a slot back once it closes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let nodes = start_memory_with(0, |config| {
        config.http.connections_max = 8;
        config.http.connections_per_client_max = 3;
    })
    .await;
    let server = nodes[0].http_address;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(1, server).await;
        assert_eq!(get_status(&mut stream, "/healthz", &[]).await, 200);
        held.push(stream);
    }
    let mut over = connect_from(1, server).await;
    assert_eq!(get_status(&mut over, "/healthz", &[]).await, 429);
    // Another client works while the first holds its share.
    for host in [2, 3] {
        let mut other = connect_from(host, server).await;
        assert_eq!(get_status(&mut other, "/healthz", &[]).await, 200, "127.0.0.{host}");
    }
    // A closed connection frees its client's slot.
    drop(held.pop());
    let again = eventually(ANSWER, "a freed slot", || async {
        let mut stream = connect_from(1, server).await;
        (get_status(&mut stream, "/healthz", &[]).await == 200).then_some(stream)
    })
    .await;
    drop(again);
}

/// Unsigned event streams: four per address, 64 in all. Past them, signed readers still open
/// theirs (a party's pool and the regulators' are apart), and a party gets four at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_streams_cannot_crowd_out_signed_readers() {
    let chain = Parties::register("stream-limits").await;
    let Parties { observer, seller, regulator, .. } = &chain;
    let server = chain.nodes[1].http_address;
    let mut open = Vec::new();
    // From one address: four, then 503.
    for _ in 0..4 {
        let mut stream = connect_from(2, server).await;
        assert_eq!(get_status(&mut stream, "/v1/events", &[]).await, 200);
        open.push(stream);
    }
    let mut fifth = connect_from(2, server).await;
    assert_eq!(get_status(&mut fifth, "/v1/events", &[]).await, 503);
    // From 17 more addresses, four each: the pool fills at 64 in all, and the last eight are
    // refused.
    let mut refused = 0;
    for host in 3..=19 {
        for _ in 0..4 {
            let mut stream = connect_from(host, server).await;
            match get_status(&mut stream, "/v1/events", &[]).await {
                200 => open.push(stream),
                503 => refused += 1,
                other => panic!("127.0.0.{host}: {other}"),
            }
        }
    }
    assert_eq!((open.len(), refused), (64, 8));
    // A party and a regulator open theirs all the same, from a crowded address too.
    for who in [seller, regulator] {
        let path = as_reader("/v1/events", Some(who));
        let headers = signed(&chain.http, observer, Some(who), &path).await;
        let mut stream = connect_from(2, server).await;
        assert_eq!(get_status(&mut stream, &path, &headers).await, 200, "{}", who.party_id);
        open.push(stream);
    }
    // A party has four at most (it has one open now).
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let headers = signed(&chain.http, observer, Some(seller), "/v1/events").await;
        let mut stream = connect_from(20, server).await;
        statuses.push(get_status(&mut stream, "/v1/events", &headers).await);
        open.push(stream);
    }
    assert_eq!(statuses, [200, 200, 200, 503]);
}

/// Each authenticated party has its own budget of signed requests, whatever address it sends
/// from: past it a party is refused (`429 rate_limited`), while another party from the same
/// address is served, and a regulator has no such budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_has_its_own_budget_and_a_regulator_none() {
    const BURST: u32 = 3;
    let chain = Parties::register_with("party-budget", |config| {
        config.http.requests_per_s_per_party = 1;
        config.http.burst_per_party = BURST;
    })
    .await;
    let Parties { observer, seller, buyer, regulator, .. } = &chain;
    let server = chain.nodes[1].http_address;
    let (status, node) = chain.http.get(&format!("{observer}/v1/status")).await;
    assert_eq!(status, 200, "{node}");
    let node_id = node["node_id"].as_u64().expect("a node id");
    // Each from its own loopback address, so that only the party can tie them together.
    let get = |who: &Identity, host: u8| {
        let path = as_reader(&format!("/v1/tokens?holder={}", who.party_id), Some(who));
        let headers = signed_for(who, node_id, &path, now_ms());
        async move {
            let mut stream = connect_from(host, server).await;
            get_status(&mut stream, &path, &headers).await
        }
    };
    // Within the burst: served, one address after another; then refused, from a fresh one.
    // (A bucket refilled at 1/s may have one more token by the last of these.)
    for host in 30..30 + BURST as u8 {
        assert_eq!(get(seller, host).await, 200, "127.0.0.{host}");
    }
    let mut refused = 0;
    for host in 40..44 {
        if get(seller, host).await == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 3, "the seller's budget was not enforced across addresses");
    // The obligor reads its own side from the seller's last address: its own budget. The
    // regulator reads on and on.
    assert_eq!(get(buyer, 43).await, 200);
    for _ in 0..3 * BURST {
        assert_eq!(get(regulator, 43).await, 200);
    }
}
