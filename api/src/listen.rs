//! The HTTP accept loop, with the limits that protect a node from its clients: at most
//! `connections_max` open connections, and at most `connections_per_client_max` of them from one
//! client address (one more gets a `429 too_many_connections` and is closed), token buckets of
//! requests per client address that verified signed requests do not draw on ([`Budgets`],
//! `429 rate_limited`), and a deadline for a request's headers (a
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

use crate::auth::{Checked, SIGNATURE_HEADER, SignatureCheck};
use crate::error::ApiError;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most.
    pub connections_max: usize,
    /// Open connections from one client address ([`client_key`]) at most.
    pub connections_per_client_max: usize,
    /// Connections beyond those for signed readers ([`Standing::Signed`]).
    pub reserved_for_signed: usize,
    /// Connections beyond those for regulators ([`Standing::Regulators`]).
    pub reserved_for_regulators: usize,
    /// Unsigned requests per second per client address (0: no limit; see [`Budgets`]).
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

/// Reserved connections ([`Standing`]) one client address holds at most, so that one address
/// cannot take the reserve by opening connections and sending nothing.
pub const RESERVED_PER_CLIENT_MAX: usize = 4;
/// How long a reserved connection may take to send a request's headers, or stay idle between
/// requests: a reserved slot is not for holding.
const RESERVED_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a request on a reserved connection may run before a route that reads signatures
/// has taken its up ([`Checked::Checking`]): a signed read's route does so as it is routed.
const RESERVED_VERIFY_WITHIN: Duration = Duration::from_secs(2);
/// How long a request on a reserved connection may run before its signature has verified as
/// one of those the connection is kept for (the reader pool's queue included).
const RESERVED_CHECK_MAX: Duration = Duration::from_secs(10);

/// Whose requests a connection may carry, by the slots it was accepted on. The node serves
/// `connections_max` connections from anyone; beyond them, it keeps `reserved_for_signed`
/// for signed readers and then `reserved_for_regulators` for regulators, at most
/// [`RESERVED_PER_CLIENT_MAX`] of those from one address. A reserved connection is served only
/// while its requests are signed reads by those it is kept for: a request without a signature
/// or not a `GET` is refused, one whose route reads no signature is cut short after
/// [`RESERVED_VERIFY_WITHIN`] (one not verified as theirs after [`RESERVED_CHECK_MAX`]), after
/// one whose signature did not verify as theirs the connection is closed, and only a
/// regulator's event stream may hold one. So
/// unsigned clients filling every slot from many addresses do not keep a signed reader out, nor
/// parties a regulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Anyone's requests.
    Anyone,
    /// Requests signed by any party.
    Signed,
    /// Requests signed by a regulator.
    Regulators,
}

impl Standing {
    /// Whether a request whose signature fared so may go on on such a connection.
    pub fn keeps(self, checked: Checked) -> bool {
        match self {
            Standing::Anyone => true,
            Standing::Signed => {
                matches!(checked, Checked::Verified | Checked::VerifiedRegulator)
            }
            Standing::Regulators => checked == Checked::VerifiedRegulator,
        }
    }
}

/// Failed authentications per second one client address is allowed, in bursts of
/// [`FAILURES_BURST`]: a forged, stale or replayed signature costs the node a verification, so
/// it is charged to its address, at a rate no honest client reaches.
pub const FAILURES_PER_S: u32 = 10;
/// See [`FAILURES_PER_S`].
pub const FAILURES_BURST: u32 = 100;
/// How long a client's signed requests are refused, without a look at their signatures, once
/// it has spent its failures or (with signature headers on a route that reads none) its
/// requests.
const BARRED_FOR: Duration = Duration::from_secs(1);
/// Signed requests one client address has in flight on credit at most ([`Budgets`]); past
/// them, its signed requests pay up front as unsigned ones do. This bounds how many forged
/// signatures are verified before the first of them is charged.
pub const ON_CREDIT_PER_CLIENT_MAX: usize = 16;

/// What a client address pays for its requests. An unsigned request takes a token from its
/// address's bucket before it is served. A request with `x-scf-signature` is charged once it
/// has been answered, or dropped (its client went away), by how its signature fared
/// ([`SignatureCheck`]): nothing to its address if it verified (its party's own budget was
/// charged; a regulator has none), a token of the address's failures if it was refused, a
/// token of its requests if nothing looked at it. An address that runs out is barred: its
/// signed requests are refused for [`BARRED_FOR`]. At most [`ON_CREDIT_PER_CLIENT_MAX`] of an
/// address's signed requests are in flight on credit; the others pay up front (and are charged
/// their failures all the same). So unsigned requests from an address cannot starve a party or
/// a regulator reading from the same address with up to that many reads at once, and a
/// signature header buys an unsigned client nothing.
pub struct Budgets<C: Clock = DefaultClock> {
    requests: RateLimiter<C>,
    failures: RateLimiter<C>,
    barred: Mutex<Barred>,
}

/// Addresses barred, each until when: at most [`CLIENTS_MAX`]. Past it (ten thousand addresses
/// barred within a second), signed requests from the others are charged up front, as unsigned
/// ones, until `full_until`. And the signed requests each address has in flight on credit
/// (at most one per open connection, so bounded by the connection limits).
#[derive(Debug, Default)]
struct Barred {
    until: HashMap<IpAddr, std::time::Instant>,
    full_until: Option<std::time::Instant>,
    /// When `until` was last swept for lapsed bars while full: at most once per
    /// [`FORGET_EVERY`], so a full list does not make every charge scan it.
    swept_at: Option<std::time::Instant>,
    on_credit: HashMap<IpAddr, usize>,
}

/// How [`Budgets::admit_signed`] let a signed request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// To be charged once answered ([`Budgets::settle`]).
    OnCredit,
    /// Charged to its address's requests already, as an unsigned one.
    Paid,
}

impl Budgets {
    /// `requests_per_s` (0: unlimited) in bursts of `burst` per address.
    pub fn new(requests_per_s: u32, burst: u32) -> Self {
        Self::with_clock(requests_per_s, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Budgets<C> {
    /// [`Budgets::new`] on `clock`.
    pub fn with_clock(requests_per_s: u32, burst: u32, clock: C) -> Self {
        Budgets {
            requests: RateLimiter::with_clock(requests_per_s, burst, clock.clone()),
            failures: RateLimiter::with_clock(FAILURES_PER_S, FAILURES_BURST, clock),
            barred: Mutex::new(Barred::default()),
        }
    }

    /// Takes a token for an unsigned request from `client`, if it has one.
    pub fn admit_unsigned(&self, client: IpAddr) -> bool {
        self.requests.allow(client)
    }

    /// Whether a request with signature headers from `client` is served, and how it is paid.
    /// Each admitted one must be [`Budgets::settle`]d once.
    pub fn admit_signed(&self, client: IpAddr, now: std::time::Instant) -> Option<Admitted> {
        let client = client_key(client);
        let mut barred = self.barred.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match barred.until.get(&client) {
            Some(until) if now < *until => return None,
            Some(_) => {
                barred.until.remove(&client);
            }
            None => {}
        }
        let full = barred.full_until.is_some_and(|until| now < until);
        let in_flight = barred.on_credit.get(&client).copied().unwrap_or(0);
        if full || in_flight >= ON_CREDIT_PER_CLIENT_MAX {
            drop(barred);
            return self.requests.allow(client).then_some(Admitted::Paid);
        }
        barred.on_credit.insert(client, in_flight + 1);
        Some(Admitted::OnCredit)
    }

    /// Charges a signed request admitted as `admitted` by how its signature fared (`Not` if
    /// it was dropped before anything looked at it).
    pub fn settle(
        &self,
        client: IpAddr,
        admitted: Admitted,
        checked: Checked,
        now: std::time::Instant,
    ) {
        let client = client_key(client);
        if admitted == Admitted::OnCredit {
            let mut barred = self.barred.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = barred.on_credit.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    barred.on_credit.remove(&client);
                }
            }
        }
        let paid = match checked {
            Checked::Verified | Checked::VerifiedRegulator => true,
            // Dropped while its signature was being checked: charged as a failure, so that
            // leaving early is no cheaper than a forged signature.
            Checked::Failed | Checked::Checking => self.failures.allow(client),
            Checked::Not | Checked::OverBudget => {
                admitted == Admitted::Paid || self.requests.allow(client)
            }
        };
        if !paid {
            self.bar(client, now);
        }
    }

    /// Bars `client`'s signed requests for [`BARRED_FOR`].
    fn bar(&self, client: IpAddr, now: std::time::Instant) {
        let mut barred = self.barred.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let listed = barred.until.contains_key(&client);
        if !listed && barred.until.len() >= CLIENTS_MAX {
            let due = barred.swept_at.is_none_or(|at| now.duration_since(at) >= FORGET_EVERY);
            if due {
                barred.until.retain(|_, until| now < *until);
                barred.swept_at = Some(now);
            }
        }
        if listed || barred.until.len() < CLIENTS_MAX {
            barred.until.insert(client, now + BARRED_FOR);
        } else {
            barred.full_until = Some(now + BARRED_FOR);
        }
    }
}

/// A signed request's charge, settled when dropped: once the request is answered, and also
/// when its client goes away first (hyper then drops the request's future), so leaving early
/// does not escape it.
struct Settle {
    budgets: Arc<Budgets>,
    client: IpAddr,
    admitted: Admitted,
    check: SignatureCheck,
    /// Set once the route has answered: a signature still `Checking` then was taken up and not
    /// checked (the route refused the request first, or the replica could not serve it), and is
    /// charged as unread; `Checking` in a request dropped unanswered is charged as a failure.
    answered: bool,
}

impl Drop for Settle {
    fn drop(&mut self) {
        let checked = match self.check.outcome() {
            Checked::Checking if self.answered => Checked::Not,
            checked => checked,
        };
        self.budgets.settle(self.client, self.admitted, checked, std::time::Instant::now());
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
    let reserve_per_client = Arc::new(ClientConnections {
        open: Mutex::new(HashMap::new()),
        max: RESERVED_PER_CLIENT_MAX,
    });
    let pools = [
        (Standing::Anyone, limits.connections_max, limits.connections_per_client_max),
        (Standing::Signed, limits.reserved_for_signed, RESERVED_PER_CLIENT_MAX),
        (Standing::Regulators, limits.reserved_for_regulators, RESERVED_PER_CLIENT_MAX),
    ]
    .map(|(standing, slots, per_client_max)| Pool {
        standing,
        slots: Arc::new(Semaphore::new(slots)),
        // The two reserves count an address's connections together.
        per_client: if standing == Standing::Anyone {
            Arc::new(ClientConnections { open: Mutex::new(HashMap::new()), max: per_client_max })
        } else {
            reserve_per_client.clone()
        },
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
    let budgets = Arc::new(Budgets::new(limits.requests_per_s, limits.burst));
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
        let slots = admit(&pools, client);
        let (slots, standing) = match slots {
            Ok(admitted) => admitted,
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
        let budgets = budgets.clone();
        let refused = refused.clone();
        let handler = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddress(client));
            let mut service = service.clone();
            // A signed read is paid for by how its signature fares (see [`Budgets`]); anything
            // else (a write's signature is in its body), by its address, now. A reserved
            // connection carries signed reads only.
            let signed = request.headers().contains_key(SIGNATURE_HEADER)
                && request.method() == warp::http::Method::GET;
            let reserved = standing != Standing::Anyone;
            let admitted = if reserved && !signed {
                Err(Refusal::Reserved)
            } else if !signed {
                budgets.admit_unsigned(client).then_some(None).ok_or(Refusal::Rate)
            } else {
                match budgets.admit_signed(client, std::time::Instant::now()) {
                    None => Err(Refusal::Rate),
                    Some(admitted) => {
                        let check = SignatureCheck::default();
                        request.extensions_mut().insert(check.clone());
                        let budgets = budgets.clone();
                        Ok(Some(Settle { budgets, client, admitted, check, answered: false }))
                    }
                }
            };
            let refused = refused.clone();
            async move {
                let settle = match admitted {
                    Ok(settle) => settle,
                    Err(refusal) => {
                        refused(refusal.limit());
                        let mut response = error_response(&refusal.error());
                        if reserved {
                            close_after(&mut response);
                        }
                        return Ok::<_, std::convert::Infallible>(response);
                    }
                };
                let mut settle = settle;
                let check = settle.as_ref().map(|s| s.check.clone());
                let checked = || check.as_ref().map_or(Checked::Not, SignatureCheck::outcome);
                // Cut short by the node, not left by the client: charged as unread (a read
                // still queued for the reader pool never verifies anything).
                let cut_short = |settle: &mut Option<Settle>| {
                    if let Some(settle) = settle.as_mut() {
                        settle.answered = true;
                    }
                    refused(Refusal::Reserved.limit());
                    let mut response = error_response(&Refusal::Reserved.error());
                    close_after(&mut response);
                    Ok(response)
                };
                let call = service.call(request);
                let answered = if reserved {
                    // A reserved slot is not held by a request whose route reads no signature
                    // (a public route, slow or not): not taken up within RESERVED_VERIFY_WITHIN,
                    // it is cut short. One being checked runs on (it may wait for the reader
                    // pool) until RESERVED_CHECK_MAX, and the connection closes after it if it
                    // is not theirs.
                    tokio::pin!(call);
                    tokio::select! {
                        answered = &mut call => answered,
                        () = tokio::time::sleep(RESERVED_VERIFY_WITHIN) => {
                            if checked() == Checked::Not {
                                return cut_short(&mut settle);
                            }
                            let rest = RESERVED_CHECK_MAX.saturating_sub(RESERVED_VERIFY_WITHIN);
                            tokio::select! {
                                answered = &mut call => answered,
                                () = tokio::time::sleep(rest) => {
                                    if !standing.keeps(checked()) {
                                        return cut_short(&mut settle);
                                    }
                                    call.await
                                }
                            }
                        }
                    }
                } else {
                    call.await
                };
                if let Some(settle) = settle.as_mut() {
                    settle.answered = true;
                }
                let mut response = match answered {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // A reserved slot held by an event stream is held for good: a regulator's only.
                let held = reserved
                    && is_event_stream(&response)
                    && checked() != Checked::VerifiedRegulator;
                if held || !standing.keeps(checked()) {
                    // The request was served (and any read of it logged), but the slot is not
                    // its to keep: the connection closes after the answer. An event stream
                    // would hold the slot for good, so it is refused instead, unsent.
                    refused(Refusal::Reserved.limit());
                    if is_event_stream(&response) {
                        response = error_response(&Refusal::Reserved.error());
                    }
                    close_after(&mut response);
                }
                drop(settle);
                Ok(response)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        let header_timeout = match standing {
            Standing::Anyone => limits.header_timeout,
            Standing::Signed | Standing::Regulators => {
                limits.header_timeout.min(RESERVED_HEADER_TIMEOUT)
            }
        };
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        // A reserved slot is not for holding through a handshake either.
        let handshake_timeout = header_timeout;
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

/// One pool of connection slots ([`Standing`]).
struct Pool {
    standing: Standing,
    slots: Arc<Semaphore>,
    per_client: Arc<ClientConnections>,
}

/// Slots for a new connection from `client`: from the first pool with one free for it, so a
/// reserve is taken only once the pools before it are full (or full for this address). `Err`:
/// the limit and message of the first pool's refusal.
fn admit(
    pools: &[Pool],
    client: IpAddr,
) -> Result<(Slots, Standing), (&'static str, &'static str)> {
    let mut refusal = None;
    for pool in pools {
        match pool.slots.clone().try_acquire_owned() {
            Err(_) => {
                refusal.get_or_insert((
                    "too_many_connections",
                    "this node has as many connections open as it serves; retry later",
                ));
            }
            Ok(all) => match pool.per_client.try_open(client) {
                Some(slot) => return Ok((Slots { _all: all, _client: slot }, pool.standing)),
                None => {
                    refusal.get_or_insert((
                        "too_many_client_connections",
                        "this address has as many connections open as the node serves one \
                         client; close one, or retry later",
                    ));
                }
            },
        }
    }
    Err(refusal.expect("there is a pool"))
}

/// Why the listener refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Its address (or its address's failed signatures) spent its budget.
    Rate,
    /// It came on a reserved connection ([`Standing`]) that is not for it.
    Reserved,
}

impl Refusal {
    /// Its limit, for `refused` (metrics).
    fn limit(self) -> &'static str {
        match self {
            Refusal::Rate => "rate_limited",
            Refusal::Reserved => "reserved_connection",
        }
    }

    fn error(self) -> ApiError {
        match self {
            Refusal::Rate => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; slow down and retry",
            ),
            Refusal::Reserved => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "this node has as many connections open as it serves; this one was kept for \
                 signed readers (or regulators) and closes; retry later",
            ),
        }
    }
}

/// Marks `response` as the connection's last: hyper closes the connection once it is sent.
fn close_after(response: &mut warp::reply::Response) {
    response
        .headers_mut()
        .insert(warp::http::header::CONNECTION, warp::http::HeaderValue::from_static("close"));
}

/// Whether `response` is an event stream (`text/event-stream`), which holds its connection
/// for as long as it runs.
fn is_event_stream(response: &warp::reply::Response) -> bool {
    response
        .headers()
        .get(warp::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
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

    /// One signed request from `client` at `now` whose signature fares `checked`: whether it
    /// was admitted (and then settled).
    fn signed(
        budgets: &Budgets<FakeRelativeClock>,
        client: IpAddr,
        checked: Checked,
        now: std::time::Instant,
    ) -> bool {
        match budgets.admit_signed(client, now) {
            None => false,
            Some(admitted) => {
                budgets.settle(client, admitted, checked, now);
                true
            }
        }
    }

    // Goal: unsigned requests that spend an address's budget do not touch the signed requests
    // from the same address, which its parties pay for.
    #[test]
    fn an_unsigned_flood_leaves_signed_requests_alone() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(10, 5, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let now = std::time::Instant::now();
        assert!((0..5).all(|_| budgets.admit_unsigned(client)));
        assert!(!budgets.admit_unsigned(client), "the burst is spent");
        for checked in [Checked::Verified, Checked::VerifiedRegulator].repeat(500) {
            assert_eq!(budgets.admit_signed(client, now), Some(Admitted::OnCredit));
            budgets.settle(client, Admitted::OnCredit, checked, now);
        }
        assert!(!budgets.admit_unsigned(client), "verified requests gave it nothing back");
        assert!(budgets.barred.lock().unwrap().on_credit.is_empty(), "every one settled");
    }

    // Goal: forged signatures cost their address, and once it has spent its failures its
    // signed requests are refused unread for a while; other addresses are not.
    #[test]
    fn failed_signatures_bar_their_address_for_a_while() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(10, 5, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let now = std::time::Instant::now();
        for _ in 0..=FAILURES_BURST {
            assert!(signed(&budgets, client, Checked::Failed, now));
        }
        assert_eq!(budgets.admit_signed(client, now), None, "barred");
        assert!(signed(&budgets, other, Checked::Verified, now));
        assert!(budgets.admit_unsigned(client), "its unsigned budget is its own");
        clock.advance(BARRED_FOR);
        let later = now + BARRED_FOR;
        // Refilled by FAILURES_PER_S in that second: that many more, then barred again.
        for _ in 0..=FAILURES_PER_S {
            assert!(signed(&budgets, client, Checked::Failed, later));
        }
        assert_eq!(budgets.admit_signed(client, later), None);
    }

    // Goal: a request dropped (its client gone) while its signature was being checked costs a
    // failure, so leaving early is no cheaper than a forged signature.
    #[test]
    fn a_request_dropped_while_checked_costs_a_failure() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(10, 5, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let now = std::time::Instant::now();
        for _ in 0..=FAILURES_BURST {
            assert!(signed(&budgets, client, Checked::Checking, now));
        }
        assert_eq!(budgets.admit_signed(client, now), None, "barred");
        assert!(budgets.admit_unsigned(client), "its requests bucket was not what it spent");
    }

    // Goal: a signature header on a request that no signature check reads (a public route, or
    // one dropped before it was read) is charged to its address like an unsigned request, so
    // it buys no second budget.
    #[test]
    fn an_unread_signature_pays_as_unsigned() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(10, 5, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let now = std::time::Instant::now();
        assert!((0..3).all(|_| budgets.admit_unsigned(client)));
        assert!(signed(&budgets, client, Checked::Not, now));
        assert!(signed(&budgets, client, Checked::Not, now));
        assert!(!budgets.admit_unsigned(client), "the two took the rest of the burst");
        assert!(signed(&budgets, client, Checked::Not, now));
        assert_eq!(budgets.admit_signed(client, now), None);
    }

    // Goal: an address has at most ON_CREDIT_PER_CLIENT_MAX signed requests in flight on
    // credit; more pay up front, and their failures are charged all the same, so many forged
    // signatures at once are not all verified before the first is charged.
    #[test]
    fn few_signed_requests_are_in_flight_on_credit() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(10, 3, clock.clone());
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let now = std::time::Instant::now();
        for _ in 0..ON_CREDIT_PER_CLIENT_MAX {
            assert_eq!(budgets.admit_signed(client, now), Some(Admitted::OnCredit));
        }
        for _ in 0..3 {
            assert_eq!(budgets.admit_signed(client, now), Some(Admitted::Paid));
        }
        assert_eq!(budgets.admit_signed(client, now), None, "and up front its bucket is spent");
        for _ in 0..3 {
            budgets.settle(client, Admitted::Paid, Checked::Failed, now);
        }
        let on_credit = |budgets: &Budgets<_>| budgets.barred.lock().unwrap().on_credit.clone();
        assert_eq!(on_credit(&budgets)[&client], ON_CREDIT_PER_CLIENT_MAX, "paid: not on credit");
        budgets.settle(client, Admitted::OnCredit, Checked::Verified, now);
        assert_eq!(budgets.admit_signed(client, now), Some(Admitted::OnCredit), "one settled");
        for _ in 0..ON_CREDIT_PER_CLIENT_MAX {
            budgets.settle(client, Admitted::OnCredit, Checked::Verified, now);
        }
        assert!(budgets.barred.lock().unwrap().on_credit.is_empty());
        // The three paid ones' failures were charged: the burst has that many fewer left.
        for _ in 0..FAILURES_BURST - 3 {
            budgets.settle(client, Admitted::OnCredit, Checked::Failed, now);
        }
        assert!(budgets.barred.lock().unwrap().until.is_empty(), "not yet barred");
        budgets.settle(client, Admitted::OnCredit, Checked::Failed, now);
        assert_eq!(budgets.admit_signed(client, now), None, "barred at the burst");
    }

    // Goal: the list of barred addresses is bounded; once full, signed requests from the
    // others are charged up front, as unsigned ones, so a crowd buys nobody a free pass.
    #[test]
    fn a_full_bar_list_charges_signed_requests_up_front() {
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::with_clock(1, 1, clock.clone());
        let now = std::time::Instant::now();
        for i in 0..CLIENTS_MAX as u32 {
            let client = IpAddr::from(i.to_be_bytes());
            assert!(signed(&budgets, client, Checked::Not, now));
            assert!(signed(&budgets, client, Checked::Not, now));
            assert_eq!(budgets.admit_signed(client, now), None);
        }
        // One more to bar finds the list full: from then on for a while, signed requests pay
        // up front.
        let newcomer: IpAddr = "255.255.255.255".parse().unwrap();
        assert!(signed(&budgets, newcomer, Checked::Not, now));
        assert!(signed(&budgets, newcomer, Checked::Not, now));
        assert_eq!(budgets.admit_signed(newcomer, now), None, "its bucket is empty");
        let fresh: IpAddr = "255.255.255.254".parse().unwrap();
        assert_eq!(budgets.admit_signed(fresh, now), Some(Admitted::Paid), "full: paid now");
        assert_eq!(budgets.admit_signed(fresh, now), None, "its one token went up front");
        // Once the bars lapse, the list has room again.
        clock.advance(Duration::from_secs(2));
        let later = now + Duration::from_secs(2);
        assert!(signed(&budgets, newcomer, Checked::Not, later));
        assert!(signed(&budgets, newcomer, Checked::Not, later));
        assert_eq!(budgets.admit_signed(newcomer, later), None, "barred in the list");
        assert_eq!(budgets.barred.lock().unwrap().until.len(), 1);
    }
}
