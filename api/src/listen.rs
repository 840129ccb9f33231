//! The HTTP accept loop, with the limits that protect a node from its clients: at most
//! `connections_max` open connections, and at most `connections_per_client_max` of them from one
//! client address (one more gets a `429 too_many_connections` and is closed), a token bucket of
//! requests per client address (`429 rate_limited`), and a deadline for a request's headers (a
//! client that trickles them is disconnected). Every request carries its client's
//! [`ClientAddress`] as an extension, for limits further in (event streams per client).
//!
//! With a certificate ([`serve`]'s `tls`), every connection is HTTPS: the handshake must finish
//! within the header deadline, and the certificate files are read for each connection, so
//! replacing them rotates the certificate without a restart.
//!
//! warp's own server takes only a bare listener, so connections are served here with hyper and
//! [`warp::service`]; the routes stay warp filters.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use bytes::Bytes;
use governor::Quota;
use governor::clock::{Clock, DefaultClock, Reference as _};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;
use warp::Filter;
use warp::http::{Request, Response, StatusCode};
use warp::reply::Reply;

use crate::error::ApiError;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most.
    pub connections_max: usize,
    /// Open connections from one client address ([`client_key`]) at most.
    pub connections_per_client_max: usize,
    /// Requests per second per client address (0: no limit).
    pub requests_per_s: u32,
    /// Requests a client may make at once after being idle.
    pub burst: u32,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long in-flight requests get to finish at shutdown.
    pub drain_timeout: Duration,
}

/// Connections refused at once at most; beyond, a refused connection is just closed.
const REFUSALS_MAX: usize = 64;
/// How long a refused connection is given to send its request and read the answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Clients remembered before idle ones are forgotten.
const CLIENTS_MAX: usize = 10_000;
/// How often at most idle clients are forgotten once there are [`CLIENTS_MAX`]: the scan is
/// O(clients), and a crowd of busy clients must not make every request pay for it.
const FORGET_EVERY: Duration = Duration::from_secs(1);

/// governor's keyed limiter on clock `C`.
type Keyed<C> = governor::RateLimiter<
    IpAddr,
    DashMapStateStore<IpAddr>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// A token bucket per client address: governor's GCRA (a bucket of `burst` refilled at
/// `requests_per_s`), keyed by IP address, on `C`'s clock (a fake one in tests).
///
/// A client is its IPv4 address, or its IPv6 /64: a host is given at least a /64, and keying by
/// the full address would give it 2^64 buckets. (A site given a /56 or /48 still has 2^8 or
/// 2^16 buckets, and hosts that share a /64 share one: a coarser second limit is not built.) A client whose bucket has refilled is
/// as good as new, so the limiter forgets those once it holds [`CLIENTS_MAX`], at most once per
/// [`FORGET_EVERY`]: it then holds about the clients of the last refill time (burst / rate) and
/// forget interval, however many addresses send.
pub struct RateLimiter<C: Clock = DefaultClock> {
    /// `None`: no limit.
    limiter: Option<Keyed<C>>,
    /// When idle clients were last forgotten.
    forgotten_at: Mutex<Option<C::Instant>>,
}

impl RateLimiter {
    /// `requests_per_s` (0: unlimited) with bursts of `burst`.
    pub fn new(requests_per_s: u32, burst: u32) -> Self {
        Self::with_clock(requests_per_s, burst, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// [`RateLimiter::new`] on `clock`.
    pub fn with_clock(requests_per_s: u32, burst: u32, clock: C) -> Self {
        let limiter = NonZeroU32::new(requests_per_s).map(move |rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::dashmap_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock,
            )
        });
        Self { limiter, forgotten_at: Mutex::new(None) }
    }

    /// Takes a token for `client`, if it has one.
    pub fn allow(&self, client: IpAddr) -> bool {
        let Some(limiter) = &self.limiter else { return true };
        if limiter.len() >= CLIENTS_MAX {
            // One request scans; the others go on while it does (never wait on the lock). A
            // poisoned lock holds a valid instant all the same.
            let forgotten_at = match self.forgotten_at.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut forgotten_at) = forgotten_at {
                let now = limiter.clock().now();
                if forgotten_at.is_none_or(|at| now.duration_since(at) >= FORGET_EVERY.into()) {
                    // Forget the clients whose buckets have refilled: they are as if new.
                    limiter.retain_recent();
                    *forgotten_at = Some(now);
                }
            }
        }
        limiter.check_key(&client_key(client)).is_ok()
    }

    /// How many clients it remembers.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |limiter| limiter.len())
    }
}

/// The key a client's requests are counted under: its IPv4 address (an IPv4-mapped IPv6 one
/// included), or the /64 of its IPv6 address.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The client a request came from ([`client_key`] of its address): a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

/// Open connections per client ([`client_key`]), each at most `max`.
#[derive(Debug)]
struct ClientConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl ClientConnections {
    /// A slot for one more connection from `client`, if it has fewer than `max` open.
    fn try_open(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot { owner: self.clone(), client })
    }
}

/// One open connection of a client: freed when dropped. A client with none is forgotten, so
/// the map holds only clients with connections open.
#[derive(Debug)]
struct ClientSlot {
    owner: Arc<ClientConnections>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

fn error_response(error: &ApiError) -> warp::reply::Response {
    Response::builder()
        .status(error.status)
        .header("content-type", "application/json")
        .header("retry-after", "1")
        .body(Bytes::from(error.body().to_string()))
        .expect("a valid response")
        .into_response()
}

/// Serves `filter` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and gives the open requests `limits.drain_timeout` to finish. `refused` is told of
/// every request or connection a limit refused (for metrics). With `tls`, over HTTPS only.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    limits: Limits,
    tls: Option<tls::TlsFiles>,
    refused: Arc<dyn Fn(&'static str) + Send + Sync>,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let per_client = Arc::new(ClientConnections {
        open: Mutex::new(HashMap::new()),
        max: limits.connections_per_client_max,
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
    let limiter = Arc::new(RateLimiter::new(limits.requests_per_s, limits.burst));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // back off briefly rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = client_key(peer.ip());
        let slots = match connections.clone().try_acquire_owned() {
            Err(_) => Err((
                "too_many_connections",
                "this node has as many connections open as it serves; retry later",
            )),
            Ok(all) => match per_client.try_open(client) {
                Some(client) => Ok(Slots { _all: all, _client: client }),
                None => Err((
                    "too_many_client_connections",
                    "this address has as many connections open as the node serves one client; close one, or retry later",
                )),
            },
        };
        let slots = match slots {
            Ok(slots) => slots,
            Err((limit, message)) => {
                refused(limit);
                // A plain-text 429 means nothing to a TLS client: it is just closed.
                if tls.is_some() {
                    continue;
                }
                if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse_connection(stream, message).await;
                        drop(refusal);
                    });
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = Counted { slots: Some(slots), stream };
        let service = warp::service(filter.clone());
        let limiter = limiter.clone();
        let refused = refused.clone();
        let handler = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddress(client));
            let mut service = service.clone();
            let allowed = limiter.allow(client);
            let refused = refused.clone();
            async move {
                if allowed {
                    service.call(request).await
                } else {
                    refused("rate_limited");
                    Ok(error_response(&ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "too many requests from this address; slow down and retry",
                    )))
                }
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), handler)).await
                }
                Some(files) => {
                    let acceptor = match files.https_acceptor(tls::ClientAuth::None) {
                        Ok(acceptor) => acceptor,
                        Err(error) => {
                            tracing::warn!(%error, "HTTPS: the certificate files");
                            return;
                        }
                    };
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection =
                                builder.serve_connection(TokioIo::new(stream), handler);
                            watcher.watch(connection).await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "HTTPS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
}

/// A served connection's socket with its slot under the connection limit. The slot is freed
/// before the socket is shut down or closed (`slots` are dropped before `stream`), so a plain
/// HTTP client that saw its connection closed finds the slot free for its next one. (Over
/// HTTPS, rustls sends its close_notify just before the shutdown reaches this socket.)
struct Counted {
    slots: Option<Slots>,
    stream: TcpStream,
}

/// A connection's slots: one of the node's, one of its client's.
struct Slots {
    _all: OwnedSemaphorePermit,
    _client: ClientSlot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.slots.take();
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// Answers a connection over the limit with a 429 and closes it. Its request is read first (up
/// to the end of its headers, briefly), so that closing does not reset the connection before
/// the client has read the answer.
async fn refuse_connection(mut stream: TcpStream, message: &'static str) {
    let body = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_connections", message)
        .body()
        .to_string();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let mut head = Vec::new();
        let mut buffer = [0u8; 2048];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(10, 5, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..5 {
            assert!(limiter.allow(client));
        }
        assert!(!limiter.allow(client), "the burst is spent");
        assert!(limiter.allow(other), "buckets are per client");
        // 10 per second: one token every 100 ms.
        clock.advance(Duration::from_millis(100));
        assert!(limiter.allow(client));
        clock.advance(Duration::from_millis(50));
        assert!(!limiter.allow(client));
        // Idle for long: back to the burst, no more.
        clock.advance(Duration::from_secs(60));
        for _ in 0..5 {
            assert!(limiter.allow(client));
        }
        assert!(!limiter.allow(client));
    }

    #[test]
    fn zero_rate_is_no_limit() {
        let limiter = RateLimiter::new(0, 0);
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..10_000).all(|_| limiter.allow(client)));
    }

    #[test]
    fn idle_clients_are_forgotten_when_there_are_too_many() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(1, 1, clock.clone());
        for i in 0..CLIENTS_MAX as u32 {
            assert!(limiter.allow(IpAddr::from(i.to_be_bytes())));
        }
        assert_eq!(limiter.clients(), CLIENTS_MAX);
        clock.advance(Duration::from_secs(2));
        assert!(limiter.allow("255.255.255.255".parse().unwrap()));
        assert!(limiter.clients() <= 2, "{} clients remembered", limiter.clients());
    }

    #[test]
    fn a_crowd_of_clients_is_scanned_at_most_once_a_second() {
        let clock = FakeRelativeClock::default();
        // Buckets refill in 0.1 s.
        let limiter = RateLimiter::with_clock(10, 1, clock.clone());
        let crowd = |limiter: &RateLimiter<FakeRelativeClock>, from: u32| {
            for i in from..from + CLIENTS_MAX as u32 {
                assert!(limiter.allow(IpAddr::from(i.to_be_bytes())));
            }
        };
        crowd(&limiter, 0);
        clock.advance(Duration::from_millis(500));
        assert!(limiter.allow("255.255.255.255".parse().unwrap()));
        assert!(limiter.clients() <= 2, "{} clients remembered", limiter.clients());
        // A new crowd at once: refilled after 0.5 s, but the last scan was 0.5 s ago.
        crowd(&limiter, 1 << 24);
        clock.advance(Duration::from_millis(500));
        assert!(limiter.allow("255.255.255.254".parse().unwrap()));
        assert!(limiter.clients() > CLIENTS_MAX, "{} clients remembered", limiter.clients());
        // A second after the last scan, the next request scans.
        clock.advance(Duration::from_millis(500));
        assert!(limiter.allow("255.255.255.253".parse().unwrap()));
        assert!(limiter.clients() <= 2, "{} clients remembered", limiter.clients());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(1, 2, clock.clone());
        let host = |suffix: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, suffix]);
        assert!(limiter.allow(host(1)));
        assert!(limiter.allow(host(2)));
        assert!(!limiter.allow(host(3)), "a third address of the same /64 shares its bucket");
        assert!(limiter.allow(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1])), "another /64");
        // An IPv4-mapped address is its IPv4 client.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limiter.allow(v4));
        assert!(limiter.allow(IpAddr::V6("::ffff:192.0.2.7".parse().unwrap())));
        assert!(!limiter.allow(v4));
        assert_eq!(limiter.clients(), 3);
    }
}
