//! Moving raft messages between replicas: the [`Transport`] boundary and its TCP implementation.
//!
//! Raft tolerates lost, late and repeated messages, so a transport never blocks the node and
//! never buffers without bound: [`Transport::send`] queues a message for its peer or drops it.
//! What it hears back (a message, an unreachable peer, a snapshot that could not be sent) goes
//! to the node's [`Inbound`] sink, which is also bounded and also drops when full.
//!
//! The TCP transport dials one connection to each peer for its outgoing messages and accepts one
//! from each peer for its incoming ones. With [`TcpConfig::tls`] set (every real deployment),
//! each connection is mutual TLS 1.3 under the cluster CA: the dialler checks that the listener
//! holds node `to`'s certificate, the listener that the dialler's certificate names the id its
//! `Hello` claims. A connection then starts with a [`Hello`] (format version, chain id, sender
//! and recipient ids); a connection from another chain, for another node, from an id that is not
//! a member, whose certificate names another id, or carrying a message that claims another
//! sender is closed and counted ([`PeerRefusals`]). Every frame is a 4-byte big-endian length
//! and that many bytes: the `Hello` in prost's encoding, then raft-rs's `Message`s in its own
//! protobuf encoding (raft-rs's `protobuf-codec`; see ARCHITECTURE.md).
//!
//! Invariants:
//! - `send` never blocks and never waits for the network; a full queue drops the message.
//! - A lost connection drops the queued messages, reports the peer unreachable (and any
//!   snapshot among them as failed, so the leader retries it), and is redialled with an
//!   exponential backoff bounded by [`TcpConfig::backoff_max`].
//! - Peers are dialled only at the addresses the node was given ([`Transport::add_peer`]: the
//!   configuration and committed membership changes). A `Hello` moves no address, except its
//!   sender's own, and only on a TLS connection whose certificate proves that sender and whose
//!   sender is a member ([`Inbound::PeerSeen`]): how a restarted replica finds an observer that
//!   joined at runtime. On plain TCP no `Hello` changes any address.
//! - No frame larger than [`TcpConfig::frame_bytes_max`] is sent or read, and a frame's memory
//!   grows with the bytes that actually arrive, not with the length its header announces.
//! - At most [`TcpConfig::connections_max`] accepted connections are open at once, one per
//!   member (a new one from the same member replaces the old); a connection that has not
//!   finished its handshake and `Hello` within [`TcpConfig::connect_timeout`], or that carries
//!   nothing for [`TcpConfig::idle_timeout`], is closed.
//! - While [`Cuts`] names a peer, no message goes to it or is taken from it (fault injection
//!   for the whole-system tests; empty, and so inert, unless an operator sets it).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::guard::Refusal;

/// Version of the peer protocol this code speaks.
pub const PEER_PROTOCOL_VERSION: u32 = 1;

/// What a transport hands to its node.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A raft message from a peer.
    Message(Message),
    /// Messages to this peer were lost (raft-rs's `report_unreachable`).
    Unreachable(u64),
    /// A snapshot sent to this peer was lost (raft-rs's `report_snapshot` with `Failure`).
    SnapshotFailed(u64),
    /// A snapshot was written to this peer's connection (raft-rs's `report_snapshot` with
    /// `Finish`): the leader goes back to probing it, and resends the snapshot if the peer did
    /// not install it after all.
    SnapshotSent(u64),
    /// A member connected over TLS, with a certificate that proves its id, and said where it
    /// listens (see [`Transport::learn_peer`]). Never sent for a plain TCP connection.
    PeerSeen(u64, SocketAddr),
}

/// Where a transport delivers what it receives. It returns `false` when the node's queue is
/// full or gone; the transport then drops the item.
pub type Sink = Arc<dyn Fn(Inbound) -> bool + Send + Sync>;

/// How raft messages leave a replica. Implemented over TCP by [`TcpTransport`] and by simulated
/// networks in tests.
pub trait Transport: Send + 'static {
    /// Queues `message` for `message.to` without blocking. A message for an unknown peer, or one
    /// that does not fit in the peer's queue, is dropped and reported back as
    /// [`Inbound::Unreachable`] (or [`Inbound::SnapshotFailed`]).
    fn send(&mut self, message: Message);

    /// Learns (or moves) the address of peer `id`.
    fn add_peer(&mut self, id: u64, address: SocketAddr);

    /// Forgets peer `id` and drops what is queued for it.
    fn remove_peer(&mut self, id: u64);

    /// Learns the address of peer `id` (replacing a different one it had), as announced by `id`
    /// itself on a connection whose certificate proves it (see [`Inbound::PeerSeen`]): how a
    /// replica that restarted finds a member that joined at runtime.
    fn learn_peer(&mut self, id: u64, address: SocketAddr);

    /// The replica's members changed (at start, and after each applied membership change):
    /// only members may connect, and a removed member's connection is closed.
    fn set_members(&mut self, members: &BTreeSet<u64>);

    /// Closes the connection peer `id` sends on (it sent a message no correct member sends);
    /// the peer may connect again.
    fn disconnect(&mut self, id: u64);
}

/// The first frame of every connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    /// [`PEER_PROTOCOL_VERSION`] of the dialling side.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The chain both sides must belong to.
    #[prost(string, tag = "2")]
    pub chain_id: String,
    /// Raft id of the dialling side; every message on the connection must be from it.
    #[prost(uint64, tag = "3")]
    pub from: u64,
    /// Raft id of the side dialled.
    #[prost(uint64, tag = "4")]
    pub to: u64,
    /// Where the dialling side accepts peer connections (`ip:port`).
    #[prost(string, tag = "5")]
    pub address: String,
}

/// The peers a transport is cut off from: a network partition made on demand, so that tests of
/// the whole system can split real processes without a proxy between them. A cut drops every
/// message to the peer (reported as unreachable, as a lost connection is) and every message
/// heard from it, on connections open or new, in both directions at this replica alone.
#[derive(Debug, Default)]
pub struct Cuts {
    peers: RwLock<BTreeSet<u64>>,
    /// Whether `peers` is non-empty: every message checks this alone while nothing is cut (a
    /// production node, always), so the switch costs the hot path one relaxed load, no lock.
    any: std::sync::atomic::AtomicBool,
    dropped: std::sync::atomic::AtomicU64,
}

impl Cuts {
    /// Replaces the set of peers cut off.
    pub fn set(&self, peers: impl IntoIterator<Item = u64>) {
        let mut cut = self.peers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *cut = peers.into_iter().collect();
        self.any.store(!cut.is_empty(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The peers cut off.
    pub fn get(&self) -> Vec<u64> {
        let peers = self.peers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.iter().copied().collect()
    }

    /// Messages dropped so far because of a cut, either way.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `peer` is cut off; counts the message about to be dropped if it is.
    fn drops(&self, peer: u64) -> bool {
        if !self.any.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let cut =
            self.peers.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&peer);
        if cut {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        cut
    }
}

/// What the transport and the node refused from peers, for `/metrics`. Shared by the transport
/// (connections) and the replica (messages, see [`crate::guard`]).
#[derive(Debug, Default)]
pub struct PeerRefusals {
    connections: [AtomicU64; ConnectionRefusal::ALL.len()],
    messages: [AtomicU64; Refusal::ALL.len()],
}

/// Why an accepted connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// The TLS handshake failed or took too long: no certificate, one from another CA, an
    /// expired one, a client that speaks no TLS.
    Handshake,
    /// The `Hello` was missing, late, malformed, of another chain or version, or for another
    /// node.
    Hello,
    /// The certificate does not name the id the `Hello` claims.
    Impersonation,
    /// The sender is not a member.
    Stranger,
    /// The raft port already had [`TcpConfig::connections_max`] connections open, or this
    /// client address [`HANDSHAKES_PER_IP_MAX`] in their handshake.
    TooManyConnections,
    /// A frame over the limit, one that does not parse, or a message claiming another sender.
    Frame,
}

impl ConnectionRefusal {
    /// Every reason, in a fixed order (for metrics).
    pub const ALL: [ConnectionRefusal; 6] = [
        ConnectionRefusal::Handshake,
        ConnectionRefusal::Hello,
        ConnectionRefusal::Impersonation,
        ConnectionRefusal::Stranger,
        ConnectionRefusal::TooManyConnections,
        ConnectionRefusal::Frame,
    ];

    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionRefusal::Handshake => "handshake",
            ConnectionRefusal::Hello => "hello",
            ConnectionRefusal::Impersonation => "impersonation",
            ConnectionRefusal::Stranger => "stranger",
            ConnectionRefusal::TooManyConnections => "too_many_connections",
            ConnectionRefusal::Frame => "frame",
        }
    }
}

impl PeerRefusals {
    /// Counts a closed connection.
    pub fn connection(&self, why: ConnectionRefusal) {
        let slot = ConnectionRefusal::ALL.iter().position(|r| *r == why).expect("listed");
        self.connections[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused message.
    pub fn message(&self, why: Refusal) {
        let slot = Refusal::ALL.iter().position(|r| *r == why).expect("listed");
        self.messages[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Closed connections by reason, every reason listed.
    pub fn connections(&self) -> Vec<(&'static str, u64)> {
        (ConnectionRefusal::ALL.iter().zip(&self.connections))
            .map(|(why, count)| (why.name(), count.load(Ordering::Relaxed)))
            .collect()
    }

    /// Refused messages by reason, every reason listed.
    pub fn messages(&self) -> Vec<(&'static str, u64)> {
        (Refusal::ALL.iter().zip(&self.messages))
            .map(|(why, count)| (why.name(), count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Settings of a [`TcpTransport`].
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// This replica's raft id.
    pub id: u64,
    /// The chain id peers must present.
    pub chain_id: String,
    /// Messages queued per peer before new ones are dropped.
    pub queue_messages_max: usize,
    /// Largest frame sent or accepted. A snapshot is one frame, so this bounds the ledger state
    /// a replica can send to a lagging peer.
    pub frame_bytes_max: usize,
    /// Time allowed to connect, or to receive the `Hello` of an accepted connection.
    pub connect_timeout: Duration,
    /// First pause before redialling a peer; doubles after each failure up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest pause before redialling; a connection that lasted this long resets the backoff.
    pub backoff_max: Duration,
    /// Time allowed to write a batch of messages before the connection is deemed dead.
    pub write_timeout: Duration,
    /// Peers cut off (see [`Cuts`]); shared with whoever injects the faults.
    pub cuts: Arc<Cuts>,
    /// Mutual TLS on every link: the cluster CA, this node's certificate and its key, re-read
    /// for each new connection (replacing the files rotates them). `None` is plain TCP, which
    /// trusts whoever reaches the port: loopback tests, and `--insecure-peer-network`.
    pub tls: Option<tls::TlsFiles>,
    /// Most accepted connections open at once; one more is closed at once.
    pub connections_max: usize,
    /// An accepted connection that carries nothing for this long is closed (its dialler
    /// redials when it has something to say).
    pub idle_timeout: Duration,
    /// What was refused, for `/metrics`.
    pub refusals: Arc<PeerRefusals>,
}

impl TcpConfig {
    /// Defaults for replica `id` of chain `chain_id`.
    pub fn new(id: u64, chain_id: &str) -> Self {
        Self {
            id,
            chain_id: chain_id.to_owned(),
            queue_messages_max: 4_096,
            frame_bytes_max: 256 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            write_timeout: Duration::from_secs(10),
            cuts: Arc::default(),
            tls: None,
            connections_max: 128,
            idle_timeout: Duration::from_secs(120),
            refusals: Arc::default(),
        }
    }
}

/// Binds a listener for peer connections with `SO_REUSEADDR`, so a restarted replica gets its
/// old port back even while connections of its previous life linger in `TIME_WAIT`.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

struct Peer {
    address: SocketAddr,
    queue: mpsc::Sender<Message>,
    task: tokio::task::JoinHandle<()>,
}

/// What the accepting side shares with the transport.
struct Accepting {
    config: Arc<TcpConfig>,
    sink: Sink,
    /// Ids that may connect: the members, and the peers the node was given; any id while
    /// `joined` is false (see [`Transport::set_members`]).
    members: RwLock<Allowed>,
    /// Connections in their handshake, by client address (see [`HANDSHAKES_PER_IP_MAX`]).
    handshaking: Mutex<HashMap<std::net::IpAddr, usize>>,
    /// The open accepted connection of each peer, woken to close it.
    inbound: Mutex<HashMap<u64, Arc<Notify>>>,
}

/// Who may connect.
#[derive(Debug, Default)]
struct Allowed {
    ids: BTreeSet<u64>,
    /// Whether this replica is among its members. Until it is (it was added at runtime and has
    /// not applied that change yet), it knows only the initial members while its leader may be
    /// one added since, so any id may connect: over TLS, one its certificate proves.
    joined: bool,
}

/// Connections from one address that may be in their handshake at once: a client that opens
/// connections and never finishes them holds at most this many of the `connections_max`
/// slots, so members (who finish theirs at once) still get in.
const HANDSHAKES_PER_IP_MAX: usize = 8;

impl Accepting {
    fn is_member(&self, id: u64) -> bool {
        let allowed = self.members.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        !allowed.joined || allowed.ids.contains(&id)
    }

    /// Counts a connection from `ip` into its handshake, unless `ip` has the most already.
    fn start_handshake(&self, ip: std::net::IpAddr) -> bool {
        let mut handshaking =
            self.handshaking.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = handshaking.entry(ip).or_default();
        if *count >= HANDSHAKES_PER_IP_MAX {
            return false;
        }
        *count += 1;
        true
    }

    fn end_handshake(&self, ip: std::net::IpAddr) {
        let mut handshaking =
            self.handshaking.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = handshaking.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                handshaking.remove(&ip);
            }
        }
    }

    /// Registers `id`'s new connection, closing the one it replaces.
    fn open(&self, id: u64) -> Arc<Notify> {
        let close = Arc::new(Notify::new());
        let mut inbound = self.inbound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = inbound.insert(id, close.clone()) {
            old.notify_one();
        }
        close
    }

    /// Forgets `id`'s connection if it is still `close`'s.
    fn closed(&self, id: u64, close: &Arc<Notify>) {
        let mut inbound = self.inbound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inbound.get(&id).is_some_and(|open| Arc::ptr_eq(open, close)) {
            inbound.remove(&id);
        }
    }

    fn disconnect(&self, id: u64) {
        let inbound = self.inbound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(close) = inbound.get(&id) {
            close.notify_one();
        }
    }
}

/// Raft messages over TCP (or TLS). Dropping it stops every task it started.
pub struct TcpTransport {
    config: Arc<TcpConfig>,
    runtime: tokio::runtime::Handle,
    sink: Sink,
    peers: HashMap<u64, Peer>,
    accepting: Arc<Accepting>,
    /// The members last set, kept apart from the peers' ids so that either can change.
    members: BTreeSet<u64>,
    listener: tokio::task::JoinHandle<()>,
    local_address: SocketAddr,
}

impl TcpTransport {
    /// Starts accepting peer connections on `listener` (see [`bind`]) and delivering what they
    /// carry to `sink`. Tasks run on `runtime`.
    pub fn start(
        config: TcpConfig,
        listener: TcpListener,
        runtime: tokio::runtime::Handle,
        sink: Sink,
    ) -> std::io::Result<Self> {
        let local_address = listener.local_addr()?;
        let config = Arc::new(config);
        let accepting = Arc::new(Accepting {
            config: config.clone(),
            sink: sink.clone(),
            members: RwLock::default(),
            handshaking: Mutex::default(),
            inbound: Mutex::default(),
        });
        let listener = runtime.spawn(accept_loop(listener, accepting.clone()));
        Ok(Self {
            config,
            runtime,
            sink,
            peers: HashMap::new(),
            accepting,
            members: BTreeSet::new(),
            listener,
            local_address,
        })
    }

    /// The address peers dial.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Who may connect: the members and the peers this transport dials.
    fn allow(&self) {
        let ids = self.members.iter().chain(self.peers.keys()).copied().collect();
        let joined = self.members.contains(&self.config.id);
        *self.accepting.members.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Allowed { ids, joined };
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, message: Message) {
        // raft-rs forwards a read-index request to the leader in its requester's name; the
        // receiver would close this connection for a message that names another sender, so
        // such a message is dropped here instead (the requester's read times out and retries).
        if message.from != self.config.id {
            return;
        }
        let to = message.to;
        let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
        let queued = !self.config.cuts.drops(to)
            && self.peers.get(&to).is_some_and(|peer| peer.queue.try_send(message).is_ok());
        if !queued {
            (self.sink)(Inbound::Unreachable(to));
            if is_snapshot {
                (self.sink)(Inbound::SnapshotFailed(to));
            }
        }
    }

    fn add_peer(&mut self, id: u64, address: SocketAddr) {
        if id == self.config.id {
            return;
        }
        if let Some(peer) = self.peers.remove(&id) {
            peer.task.abort();
        }
        let (queue, messages) = mpsc::channel(self.config.queue_messages_max);
        let hello = Hello {
            version: PEER_PROTOCOL_VERSION,
            chain_id: self.config.chain_id.clone(),
            from: self.config.id,
            to: id,
            address: self.local_address.to_string(),
        };
        let task = self.runtime.spawn(dial_loop(
            hello,
            address,
            messages,
            self.config.clone(),
            self.sink.clone(),
        ));
        self.peers.insert(id, Peer { address, queue, task });
        self.allow();
    }

    fn remove_peer(&mut self, id: u64) {
        if let Some(peer) = self.peers.remove(&id) {
            peer.task.abort();
        }
        self.allow();
        if !self.accepting.is_member(id) {
            self.accepting.disconnect(id);
        }
    }

    fn learn_peer(&mut self, id: u64, address: SocketAddr) {
        if self.peers.get(&id).is_none_or(|peer| peer.address != address) {
            self.add_peer(id, address);
        }
    }

    fn set_members(&mut self, members: &BTreeSet<u64>) {
        let gone: Vec<u64> = self.members.difference(members).copied().collect();
        self.members = members.clone();
        self.allow();
        for id in gone {
            if !self.accepting.is_member(id) {
                self.accepting.disconnect(id);
            }
        }
    }

    fn disconnect(&mut self, id: u64) {
        self.accepting.disconnect(id);
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.listener.abort();
        for peer in self.peers.values() {
            peer.task.abort();
        }
    }
}

/// A peer connection: TLS over TCP, or plain TCP.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

/// Encodes one frame: length, then bytes.
fn frame(bytes: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let length = u32::try_from(bytes.len())
        .ok()
        .filter(|_| bytes.len() <= limit)
        .ok_or_else(|| invalid(format!("a frame of {} bytes is over the limit", bytes.len())))?;
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(out)
}

/// The first allocation for a frame's bytes; the buffer then grows as they arrive.
const FRAME_CHUNK_BYTES: usize = 64 * 1024;

/// Reads one frame of at most `limit` bytes. The buffer grows with what arrives, so a header
/// that announces a large frame and then sends nothing costs nothing.
async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let length = usize::try_from(stream.read_u32().await?).map_err(|e| invalid(e.to_string()))?;
    if length > limit {
        return Err(invalid(format!("a frame of {length} bytes is over the limit of {limit}")));
    }
    let mut bytes = Vec::with_capacity(length.min(FRAME_CHUNK_BYTES));
    let read = (&mut *stream).take(length as u64).read_to_end(&mut bytes).await?;
    if read != length {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    Ok(bytes)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Keeps a connection to one peer open and sends what is queued for it. The connection is
/// dialled at once, not on the first message, so the peer learns this replica's address (the
/// `Hello`) as soon as both are up; the peer never writes back, so a read that ends means the
/// peer closed or restarted, and the connection is redialled at once.
async fn dial_loop(
    hello: Hello,
    address: SocketAddr,
    mut messages: mpsc::Receiver<Message>,
    config: Arc<TcpConfig>,
    sink: Sink,
) {
    let to = hello.to;
    let mut backoff = config.backoff_min;
    loop {
        let connected = tokio::time::timeout(config.connect_timeout, async {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let stream: Box<dyn PeerStream> = match &config.tls {
                // The listener must hold node `to`'s certificate, or the handshake fails.
                Some(files) => {
                    let connector = files.peer_connector().map_err(std::io::Error::other)?;
                    Box::new(connector.connect(tls::node_server_name(to), stream).await?)
                }
                None => Box::new(stream),
            };
            let mut writer = BufWriter::new(stream);
            writer.write_all(&frame(&prost::Message::encode_to_vec(&hello), 1024)?).await?;
            writer.flush().await?;
            Ok::<_, std::io::Error>(writer)
        })
        .await;
        let mut writer = match connected {
            Ok(Ok(writer)) => writer,
            _ => {
                lose(to, &mut messages, &sink, false);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff_max);
                continue;
            }
        };
        let connected_at = tokio::time::Instant::now();
        let mut probe = [0u8; 1];
        loop {
            tokio::select! {
                message = messages.recv() => {
                    let Some(message) = message else { return };
                    let written = tokio::time::timeout(
                        config.write_timeout,
                        write_batch(&mut writer, message, &mut messages, &config),
                    )
                    .await;
                    match written {
                        Ok(Ok(snapshots)) => {
                            for _ in 0..snapshots {
                                sink(Inbound::SnapshotSent(to));
                            }
                        }
                        // What failed may or may not have arrived; Raft copes either way, once
                        // told (a snapshot must be reported, or the leader waits for it forever).
                        Ok(Err(failure)) => {
                            lose(to, &mut messages, &sink, true);
                            if failure.snapshot {
                                sink(Inbound::SnapshotFailed(to));
                            }
                            break;
                        }
                        // A peer that stopped reading (a half-open link, a paused process).
                        Err(_) => {
                            lose(to, &mut messages, &sink, true);
                            sink(Inbound::SnapshotFailed(to));
                            break;
                        }
                    }
                }
                // The peer sends nothing on this connection: any read result means it is gone.
                _ = writer.get_mut().read(&mut probe) => {
                    lose(to, &mut messages, &sink, false);
                    break;
                }
            }
        }
        // A connection that ended quickly (a peer that accepts and closes: another chain, a
        // wrong id) is retried with the backoff, not at once; one that lasted resets it.
        if connected_at.elapsed() >= config.backoff_max {
            backoff = config.backoff_min;
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.backoff_max);
        }
    }
}

/// A batch write that failed.
struct WriteFailure {
    /// Whether a snapshot was among the messages taken for it.
    snapshot: bool,
}

/// Writes `first` and whatever else is already queued, then flushes once. Returns how many
/// snapshots it wrote.
async fn write_batch(
    writer: &mut BufWriter<Box<dyn PeerStream>>,
    first: Message,
    messages: &mut mpsc::Receiver<Message>,
    config: &TcpConfig,
) -> Result<usize, WriteFailure> {
    let mut snapshots = 0;
    let mut message = first;
    loop {
        let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
        snapshots += usize::from(is_snapshot);
        let failure = WriteFailure { snapshot: snapshots > 0 };
        let bytes = match message.write_to_bytes() {
            Ok(bytes) => bytes,
            Err(_) => return Err(failure),
        };
        let Ok(framed) = frame(&bytes, config.frame_bytes_max) else { return Err(failure) };
        if writer.write_all(&framed).await.is_err() {
            return Err(failure);
        }
        match messages.try_recv() {
            Ok(more) => message = more,
            Err(_) => break,
        }
    }
    writer.flush().await.map_err(|_| WriteFailure { snapshot: snapshots > 0 })?;
    Ok(snapshots)
}

/// Drops everything queued for peer `to` and tells the node if anything was lost (`lost`: a
/// message already taken from the queue was).
fn lose(to: u64, messages: &mut mpsc::Receiver<Message>, sink: &Sink, mut lost: bool) {
    let mut snapshot_lost = false;
    while let Ok(message) = messages.try_recv() {
        lost = true;
        snapshot_lost |= message.get_msg_type() == MessageType::MsgSnapshot;
    }
    if lost {
        sink(Inbound::Unreachable(to));
    }
    if snapshot_lost {
        sink(Inbound::SnapshotFailed(to));
    }
}

async fn accept_loop(listener: TcpListener, accepting: Arc<Accepting>) {
    // Owning the connections' tasks here means aborting this task closes them all.
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(accepting.config.connections_max));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) if accepting.start_handshake(peer.ip()) => {
                        let accepting = accepting.clone();
                        connections.spawn(async move {
                            serve_connection(stream, peer.ip(), &accepting).await;
                            drop(slot);
                        });
                    }
                    _ => accepting.config.refusals.connection(ConnectionRefusal::TooManyConnections),
                },
                // Out of file descriptors, say: pause rather than spin.
                Err(_) => tokio::time::sleep(accepting.config.backoff_max).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads one peer's messages until it closes or misbehaves, counting why it was closed.
async fn serve_connection(stream: TcpStream, peer_ip: std::net::IpAddr, accepting: &Accepting) {
    let config = &accepting.config;
    let opened = tokio::time::timeout(config.connect_timeout, open(stream, config)).await;
    accepting.end_handshake(peer_ip);
    let (mut stream, hello, proven) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(why)) => return config.refusals.connection(why),
        Err(_) => return config.refusals.connection(ConnectionRefusal::Handshake),
    };
    if !accepting.is_member(hello.from) {
        return config.refusals.connection(ConnectionRefusal::Stranger);
    }
    // Only a member that proved its id may say where it listens (see the module invariants).
    if proven {
        if let Ok(mut address) = hello.address.parse::<SocketAddr>() {
            // A peer listening on 0.0.0.0 is reachable at the address it connected from.
            if address.ip().is_unspecified() {
                address.set_ip(peer_ip);
            }
            (accepting.sink)(Inbound::PeerSeen(hello.from, address));
        }
    }
    let close = accepting.open(hello.from);
    let why = receive(&mut stream, &hello, config, &accepting.sink, &close).await;
    accepting.closed(hello.from, &close);
    if let Some(why) = why {
        config.refusals.connection(why);
    }
}

/// The handshake (TLS when configured) and the `Hello` of an accepted connection. Returns the
/// stream, the `Hello`, and whether a certificate proved that its sender is `hello.from`.
async fn open(
    stream: TcpStream,
    config: &TcpConfig,
) -> Result<(Box<dyn PeerStream>, Hello, bool), ConnectionRefusal> {
    let _ = stream.set_nodelay(true);
    let Some(files) = &config.tls else {
        let mut stream = stream;
        let hello = read_hello(&mut stream, config).await?;
        return Ok((Box::new(stream), hello, false));
    };
    // Built per connection: replaced certificate files take effect on the next one.
    let acceptor = files.peer_acceptor().map_err(|_| ConnectionRefusal::Handshake)?;
    let mut stream = acceptor.accept(stream).await.map_err(|_| ConnectionRefusal::Handshake)?;
    let hello = read_hello(&mut stream, config).await?;
    // The handshake proved the chain leads to the cluster CA; this binds it to the id claimed.
    if !tls::peer_is_node(stream.get_ref().1, hello.from) {
        return Err(ConnectionRefusal::Impersonation);
    }
    Ok((Box::new(stream), hello, true))
}

/// Reads and checks the first frame of an accepted connection.
async fn read_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    config: &TcpConfig,
) -> Result<Hello, ConnectionRefusal> {
    let hello = read_frame(stream, 1024).await.map_err(|_| ConnectionRefusal::Hello)?;
    let hello = <Hello as prost::Message>::decode(hello.as_slice())
        .map_err(|_| ConnectionRefusal::Hello)?;
    if hello.version != PEER_PROTOCOL_VERSION
        || hello.chain_id != config.chain_id
        || hello.to != config.id
        || hello.from == config.id
    {
        return Err(ConnectionRefusal::Hello);
    }
    Ok(hello)
}

/// Delivers the connection's messages until it ends. Returns why it was refused, or `None` for
/// an orderly end (the peer closed, or a newer connection of the same peer replaced it).
async fn receive(
    stream: &mut Box<dyn PeerStream>,
    hello: &Hello,
    config: &TcpConfig,
    sink: &Sink,
    close: &Notify,
) -> Option<ConnectionRefusal> {
    loop {
        let bytes = tokio::select! {
            read = tokio::time::timeout(config.idle_timeout, read_frame(stream, config.frame_bytes_max)) => match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(ConnectionRefusal::Frame);
                }
                Ok(Err(_)) => return None,
                // Not a refusal: an idle link between followers is normal, and its dialler
                // connects again when it has something to say.
                Err(_) => return None,
            },
            () = close.notified() => return None,
        };
        let Ok(message) = Message::parse_from_bytes(&bytes) else {
            return Some(ConnectionRefusal::Frame);
        };
        if message.from != hello.from || message.to != config.id {
            return Some(ConnectionRefusal::Frame);
        }
        if config.cuts.drops(hello.from) {
            continue;
        }
        // A full node queue drops the message; Raft will resend what matters.
        sink(Inbound::Message(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collecting_sink() -> (Sink, Arc<Mutex<Vec<Inbound>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let sink: Sink = Arc::new(move |item| {
            sink_got.lock().unwrap().push(item);
            true
        });
        (sink, got)
    }

    fn message(from: u64, to: u64, term: u64) -> Message {
        Message { msg_type: MessageType::MsgHeartbeat, from, to, term, ..Default::default() }
    }

    /// What arrived, without the `PeerSeen` announcements.
    fn arrived(got: &Arc<Mutex<Vec<Inbound>>>) -> Vec<Inbound> {
        let got = got.lock().unwrap();
        got.iter().filter(|i| !matches!(i, Inbound::PeerSeen(..))).cloned().collect()
    }

    async fn wait_for(got: &Arc<Mutex<Vec<Inbound>>>, count: usize) -> Vec<Inbound> {
        for _ in 0..500 {
            if arrived(got).len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        arrived(got)
    }

    /// Points `from` at replica 2, listening where `two` does, and sends it `message`.
    fn send_to_two(from: &mut TcpTransport, two: &TcpTransport, message: Message) {
        from.add_peer(2, two.local_address());
        from.send(message);
    }

    fn start(id: u64, chain: &str) -> (TcpTransport, Arc<Mutex<Vec<Inbound>>>) {
        start_with(TcpConfig::new(id, chain))
    }

    fn start_with(config: TcpConfig) -> (TcpTransport, Arc<Mutex<Vec<Inbound>>>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (sink, got) = collecting_sink();
        let mut transport =
            TcpTransport::start(config, listener, tokio::runtime::Handle::current(), sink).unwrap();
        // Ids 1 to 4 are the members (and so may connect), this one among them.
        transport.set_members(&(1..=4).collect());
        (transport, got)
    }

    /// Certificates for nodes 1 to 4 under one CA, in a directory of their own.
    fn certificates(name: &str) -> tls::ClusterCerts {
        let dir = std::env::temp_dir().join(format!(
            "scf-transport-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        tls::issue_cluster(&dir, &[1, 2, 3, 4], &[]).unwrap()
    }

    fn start_tls(id: u64, certs: &tls::ClusterCerts) -> (TcpTransport, Arc<Mutex<Vec<Inbound>>>) {
        start_with(TcpConfig { tls: Some(certs.nodes[&id].clone()), ..TcpConfig::new(id, "c") })
    }

    // Goal: messages arrive in order, intact, from the sender they name.
    #[tokio::test]
    async fn messages_cross_in_order() {
        let (mut one, _) = start(1, "c");
        let (two, got) = start(2, "c");
        one.add_peer(2, two.local_address());
        for term in 1..=100 {
            one.send(message(1, 2, term));
        }
        let got = wait_for(&got, 100).await;
        let expected: Vec<_> = (1..=100).map(|t| Inbound::Message(message(1, 2, t))).collect();
        assert_eq!(got, expected);
    }

    // Goal: a peer of another chain, or one that names another recipient, is not heard.
    #[tokio::test]
    async fn strangers_are_not_heard() {
        let (mut other_chain, _) = start(1, "other");
        let (two, got) = start(2, "c");
        send_to_two(&mut other_chain, &two, message(1, 2, 1));
        // Messages forged with another sender on an honest connection are refused too.
        let (mut forger, _) = start(3, "c");
        send_to_two(&mut forger, &two, message(1, 2, 1));
        // A control message proves the connection path works, so the silence above is a refusal.
        let (mut honest, _) = start(4, "c");
        send_to_two(&mut honest, &two, message(4, 2, 7));
        let got = wait_for(&got, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(got, vec![Inbound::Message(message(4, 2, 7))]);
    }

    // Goal: with the peer down, messages are dropped and reported; once it is up again at the
    // same address (a restart), the link resumes by itself.
    #[tokio::test]
    async fn a_restarted_peer_is_redialled() {
        let (mut one, reports) = start(1, "c");
        let (two, _) = start(2, "c");
        let address = two.local_address();
        one.add_peer(2, address);
        drop(two);
        tokio::time::sleep(Duration::from_millis(50)).await;
        one.send(message(1, 2, 1));
        let reports = wait_for(&reports, 1).await;
        assert_eq!(reports[0], Inbound::Unreachable(2));

        let (sink, got) = collecting_sink();
        let _two = TcpTransport::start(
            TcpConfig::new(2, "c"),
            bind(address).unwrap(),
            tokio::runtime::Handle::current(),
            sink,
        )
        .unwrap();
        let mut received = Vec::new();
        for term in 2..500 {
            one.send(message(1, 2, term));
            tokio::time::sleep(Duration::from_millis(10)).await;
            received = arrived(&got);
            if !received.is_empty() {
                break;
            }
        }
        assert!(!received.is_empty(), "the link never came back");
    }

    // Goal: a snapshot that cannot be sent is reported as failed, so the leader retries it
    // instead of waiting for it forever.
    #[tokio::test]
    async fn lost_snapshots_are_reported() {
        let (mut one, reports) = start(1, "c");
        let mut snapshot = message(1, 9, 1);
        snapshot.set_msg_type(MessageType::MsgSnapshot);
        one.send(snapshot);
        let reports = wait_for(&reports, 2).await;
        assert_eq!(reports, vec![Inbound::Unreachable(9), Inbound::SnapshotFailed(9)]);
    }

    // Goal: an oversized frame closes the connection instead of allocating it.
    #[tokio::test]
    async fn oversized_frames_are_refused() {
        let (two, got) = start(2, "c");
        let mut stream = TcpStream::connect(two.local_address()).await.unwrap();
        let hello = Hello {
            version: PEER_PROTOCOL_VERSION,
            chain_id: "c".into(),
            from: 1,
            to: 2,
            address: String::new(),
        };
        stream
            .write_all(&frame(&prost::Message::encode_to_vec(&hello), 1024).unwrap())
            .await
            .unwrap();
        stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the connection stayed open");
        assert!(got.lock().unwrap().is_empty());
    }

    // Goal: over mutual TLS, a member that connects announces where it listens, so a replica
    // that never had its address (it joined later, or this side restarted) can reach it, and
    // its messages cross; over plain TCP nobody's announcement is taken.
    #[tokio::test]
    async fn members_over_tls_announce_their_address() {
        let certs = certificates("announce");
        let (mut one, _) = start_tls(1, &certs);
        let (two, got) = start_tls(2, &certs);
        send_to_two(&mut one, &two, message(1, 2, 3));
        let arrived = wait_for(&got, 1).await;
        assert_eq!(arrived, [Inbound::Message(message(1, 2, 3))]);
        assert_eq!(got.lock().unwrap().first(), Some(&Inbound::PeerSeen(1, one.local_address())));

        let (mut plain_one, _) = start(1, "c");
        let (plain_two, plain_got) = start(2, "c");
        plain_one.add_peer(2, plain_two.local_address());
        plain_one.send(message(1, 2, 4));
        assert_eq!(wait_for(&plain_got, 1).await, [Inbound::Message(message(1, 2, 4))]);
        let announced =
            plain_got.lock().unwrap().iter().any(|i| matches!(i, Inbound::PeerSeen(..)));
        assert!(!announced, "a plain TCP Hello moved an address");
    }

    // Goal: over TLS, a member's certificate cannot speak for another id: a dialler holding node
    // 3's certificate that says it is node 1 is not heard, while node 3 speaking as itself is.
    #[tokio::test]
    async fn a_certificate_speaks_only_for_its_id() {
        let certs = certificates("impersonation");
        let (two, got) = start_tls(2, &certs);
        // Node 3's files, in a transport that says it is node 1.
        let forger_config =
            TcpConfig { tls: Some(certs.nodes[&3].clone()), ..TcpConfig::new(1, "c") };
        let (mut forger, _) = start_with(forger_config);
        send_to_two(&mut forger, &two, message(1, 2, 1));
        let (mut three, _) = start_tls(3, &certs);
        send_to_two(&mut three, &two, message(3, 2, 7));
        assert_eq!(wait_for(&got, 1).await, [Inbound::Message(message(3, 2, 7))]);
        let refused = || {
            two.config.refusals.connections().into_iter().find(|(name, _)| *name == "impersonation")
        };
        for _ in 0..500 {
            if refused().is_some_and(|(_, count)| count > 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused().is_some_and(|(_, count)| count > 0), "no impersonation was refused");
        assert_eq!(arrived(&got), [Inbound::Message(message(3, 2, 7))]);
    }

    // Goal: an id that is not a member cannot connect, and the members' set can change.
    #[tokio::test]
    async fn strangers_are_refused_until_they_are_members() {
        let (mut nine, _) = start(9, "c");
        let (mut two, got) = start(2, "c");
        send_to_two(&mut nine, &two, message(9, 2, 1));
        let (mut one, _) = start(1, "c");
        send_to_two(&mut one, &two, message(1, 2, 2));
        assert_eq!(wait_for(&got, 1).await, [Inbound::Message(message(1, 2, 2))]);
        two.set_members(&[1, 2, 9].into_iter().collect());
        let mut received = Vec::new();
        for term in 3..500 {
            nine.send(message(9, 2, term));
            tokio::time::sleep(Duration::from_millis(10)).await;
            received = arrived(&got);
            if received.len() > 1 {
                break;
            }
        }
        assert!(
            matches!(received.get(1), Some(Inbound::Message(m)) if m.from == 9),
            "{received:?}"
        );
    }

    // Goal: a cut drops messages both ways, on a connection already open, and lifting it lets
    // them through again.
    #[tokio::test]
    async fn cuts_drop_both_ways_until_lifted() {
        let (mut one, one_got) = start(1, "c");
        let two_config = TcpConfig::new(2, "c");
        let two_cuts = two_config.cuts.clone();
        let (two, two_got) = start_with(two_config);
        send_to_two(&mut one, &two, message(1, 2, 1));
        assert_eq!(wait_for(&two_got, 1).await, [Inbound::Message(message(1, 2, 1))]);

        // The receiver cuts the sender: what arrives on the open connection is dropped.
        two_cuts.set([1]);
        for term in 2..=11 {
            one.send(message(1, 2, term));
        }
        for _ in 0..500 {
            if two_cuts.dropped() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(two_cuts.dropped(), 10);
        two_cuts.set([]);
        one.send(message(1, 2, 12));
        let got = wait_for(&two_got, 2).await;
        assert_eq!(got, [Inbound::Message(message(1, 2, 1)), Inbound::Message(message(1, 2, 12))]);

        // The sender cuts the receiver: the message is reported lost at once.
        one.config.cuts.set([2]);
        one.send(message(1, 2, 13));
        assert_eq!(arrived(&one_got), [Inbound::Unreachable(2)]);
        assert_eq!(one.config.cuts.get(), [2]);
    }
}
