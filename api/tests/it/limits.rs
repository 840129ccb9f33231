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
    status_line(stream).await
}

/// Reads the status line of the answer on `stream`, and gives its code.
async fn status_line(stream: &mut TcpStream) -> u16 {
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

/// `who`'s signed read of `holder`'s tokens at node `node_id`, now: its path and headers.
fn tokens_read(
    who: &Identity,
    holder: &Identity,
    node_id: u64,
) -> (String, Vec<(&'static str, String)>) {
    let path = as_reader(&format!("/v1/tokens?holder={}", holder.party_id), Some(who));
    let headers = signed_for(who, node_id, &path, now_ms()).to_vec();
    (path, headers)
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
    let node_id = node_id(&chain.http, observer).await;
    // Each from its own loopback address, so that only the party can tie them together.
    let get = |who: &Identity, host: u8| {
        let (path, headers) = tokens_read(who, who, node_id);
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

/// Unsigned requests that spend an address's budget leave the signed readers behind the same
/// address alone (their parties pay for those), while forged signatures are charged to their
/// address: past [`api::listen::FAILURES_BURST`] its signed requests are refused unread for a
/// while, a genuine one included, and readers elsewhere are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_cannot_starve_signed_readers_at_their_address() {
    let chain = Parties::register_with("address-budget", |config| {
        // The burst covers the set-up's requests from 127.0.0.1; the rate refills little
        // while a test runs (a token a second).
        config.http.requests_per_s_per_client = 1;
        config.http.burst_per_client = 2000;
    })
    .await;
    let Parties { observer, seller, regulator, .. } = &chain;
    let server = chain.nodes[1].http_address;
    let node_id = node_id(&chain.http, observer).await;
    let get = |host: u8, path: String, headers: Vec<(&'static str, String)>| async move {
        let mut stream = connect_from(host, server).await;
        get_status(&mut stream, &path, &headers).await
    };
    let read = |who: &Identity| tokens_read(who, seller, node_id);
    // 127.0.0.50 floods until it is refused (its burst of 2000, refilled at 1/s, runs dry
    // well within 4000 requests).
    let mut flooded = false;
    for _ in 0..4000 {
        if get(50, "/healthz".into(), Vec::new()).await == 429 {
            flooded = true;
            break;
        }
    }
    assert!(flooded, "the address's budget was never spent");
    // Its signed readers go on, and its unsigned requests stay refused.
    for _ in 0..5 {
        for who in [seller, regulator] {
            let (path, headers) = read(who);
            assert_eq!(get(50, path, headers).await, 200, "{}", who.party_id);
        }
    }
    // (A token refills every second, so one of these may be served.)
    let mut refused = 0;
    for _ in 0..5 {
        if get(50, "/healthz".into(), Vec::new()).await == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 3, "signed reads refilled the unsigned budget: {refused} of 5 refused");
    // A signature header on a route that reads none is charged to the address like an
    // unsigned request: 127.0.0.50's are refused.
    let mut refused = 0;
    for _ in 0..5 {
        let (_, headers) = read(seller);
        if get(50, "/healthz".into(), headers).await == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 3, "a signature header bought a budget: {refused} of 5 refused");
    // Forged signatures from 127.0.0.51: 401 each, until its failures are spent; then its
    // signed requests are refused unread, a genuine one among them.
    let mut unauthorized = 0;
    let mut barred = false;
    // (Failures refill at 10/s: the loop bars the address as long as a request takes under
    // about 90 ms, and ten times the burst leaves room for a slow machine.)
    for _ in 0..10 * api::listen::FAILURES_BURST {
        let (path, mut headers) = read(seller);
        headers.retain(|(name, _)| *name != "x-scf-signature");
        headers.push(("x-scf-signature", "00".repeat(64)));
        match get(51, path, headers).await {
            401 => unauthorized += 1,
            429 => {
                barred = true;
                break;
            }
            other => panic!("a forged signature answered {other}"),
        }
    }
    assert!(barred, "{unauthorized} forged signatures and never refused unread");
    assert!(unauthorized >= api::listen::FAILURES_BURST, "barred after {unauthorized}");
    let (path, headers) = read(seller);
    assert_eq!(get(51, path, headers).await, 429, "a barred address is not read");
    let (path, headers) = read(seller);
    assert_eq!(get(52, path, headers).await, 200, "another address is served");
}

/// Reads one whole answer on `stream` (a `content-length` body) and gives its status; the
/// connection may serve another request then.
async fn answer(stream: &mut TcpStream, path: &str, headers: &[(&str, String)]) -> u16 {
    let status = get_status(stream, path, headers).await;
    let read = async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(_) => head.push(byte[0]),
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .expect("a content-length");
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.expect("the body");
    };
    tokio::time::timeout(ANSWER, read).await.expect("the answer in time");
    status
}

/// Whether the node closes `stream` within `within` (it sends nothing more).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(tokio::time::timeout(within, stream.read_to_end(&mut rest)).await, Ok(Ok(_)))
}

/// With every ordinary connection taken by unsigned clients (from several addresses), signed
/// readers still connect, on the reserve: parties on theirs, a regulator on its own beyond it.
/// A reserved connection serves only those it is kept for: an unsigned request or a write on
/// it is refused and the connection closed, a signature on a route that reads none and a party
/// on the regulators' slot are answered once and closed, an idle one is closed within a second,
/// and once the reserve is full one more is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_readers_connect_when_unsigned_clients_hold_every_connection() {
    let chain = Parties::register_with("reserved-connections", |config| {
        config.http.connections_max = 8;
        config.http.connections_per_client_max = 4;
        config.http.connections_reserved_for_signed = 2;
        config.http.connections_reserved_for_regulators = 1;
        // The ordinary connections held below stay open however long the test takes.
        config.http.header_timeout_ms = 120_000;
    })
    .await;
    let Parties { observer, seller, buyer, regulator, .. } = &chain;
    let server = chain.nodes[1].http_address;
    let node_id = node_id(&chain.http, observer).await;
    let read = |who: &Identity| tokens_read(who, who, node_id);
    // Unsigned clients take every ordinary slot, four per address (the set-up's own
    // connections may hold some): the first refused was on the reserve, and is closed.
    let mut held = Vec::new();
    'fill: for host in 80..=82 {
        for _ in 0..4 {
            let mut stream = connect_from(host, server).await;
            match answer(&mut stream, "/healthz", &[]).await {
                200 => held.push(stream),
                429 => {
                    assert!(closed_within(&mut stream, ANSWER).await, "a refused reserved one");
                    break 'fill;
                }
                other => panic!("127.0.0.{host}: {other}"),
            }
        }
    }
    assert!(held.len() <= 8, "{} ordinary connections", held.len());
    // An idle reserved connection is closed within about a second.
    let mut idle = connect_from(89, server).await;
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await, "an idle reserved one");
    // A write, signed or not, is refused on a reserved connection, which is closed.
    let mut write = connect_from(88, server).await;
    let post = format!(
        "POST /v1/transactions HTTP/1.1\r\nhost: node\r\n{}content-length: 2\r\n\r\n{{}}",
        (read(seller).1.iter())
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect::<String>()
    );
    write.write_all(post.as_bytes()).await.expect("sending the write");
    assert_eq!(status_line(&mut write).await, 429, "a write on a reserved slot");
    assert!(closed_within(&mut write, ANSWER).await, "closed after a write");
    // A party on the signed readers' reserve, kept for more signed reads; a signature on a
    // route that reads none does not keep it.
    let mut seller_stream = connect_from(90, server).await;
    let (path, headers) = read(seller);
    assert_eq!(answer(&mut seller_stream, &path, &headers).await, 200);
    let (path, headers) = read(seller);
    assert_eq!(answer(&mut seller_stream, &path, &headers).await, 200, "kept");
    assert_eq!(answer(&mut seller_stream, "/healthz", &read(seller).1).await, 200);
    assert!(closed_within(&mut seller_stream, ANSWER).await, "closed after an unread signature");
    // Two parties fill that reserve.
    let mut kept = Vec::new();
    for (host, who) in [(91, buyer), (92, seller)] {
        let mut stream = connect_from(host, server).await;
        let (path, headers) = read(who);
        assert_eq!(answer(&mut stream, &path, &headers).await, 200, "{}", who.party_id);
        kept.push(stream);
    }
    // A third lands on the regulators' slot: answered once, then closed.
    let mut third = connect_from(93, server).await;
    let (path, headers) = read(seller);
    assert_eq!(answer(&mut third, &path, &headers).await, 200);
    assert!(closed_within(&mut third, ANSWER).await, "a party on the regulators' slot");
    // The regulator takes it, and reads on.
    let mut regulator_stream = connect_from(94, server).await;
    for _ in 0..3 {
        let (path, headers) = read(regulator);
        assert_eq!(answer(&mut regulator_stream, &path, &headers).await, 200);
    }
    // The reserve is full: one more connection is refused at once, signed or not.
    let mut stream = connect_from(95, server).await;
    assert_eq!(get_status(&mut stream, "/healthz", &[]).await, 429);
    let mut stream = connect_from(96, server).await;
    let (path, headers) = read(regulator);
    assert_eq!(get_status(&mut stream, &path, &headers).await, 429);
    drop((held, kept, regulator_stream));
}
