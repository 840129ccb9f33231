//! Moving raft messages between replicas: the [`Transport`] boundary and its TCP implementation.
//!
//! Raft tolerates lost, late and repeated messages, so a transport never blocks the node and
//! never buffers without bound: [`Transport::send`] queues a message for its peer or drops it.
//! What it hears back (a message, an unreachable peer, a snapshot that could not be sent) goes
//! to the node's [`Inbound`] sink, which is also bounded and also drops when full.
//!
//! The TCP transport dials one connection to each peer for its outgoing messages and accepts one
//! from each peer for its incoming ones. A connection starts with a [`Hello`] (format version,
//! chain id, sender and recipient ids); a connection from another chain, for another node, or
//! carrying a message that claims another sender is closed. Every frame is a 4-byte big-endian
//! length and that many bytes: the `Hello` in prost's encoding, then raft-rs's `Message`s in
//! its own protobuf encoding (raft-rs's `protobuf-codec`; see ARCHITECTURE.md).
//!
//! Invariants:
//! - `send` never blocks and never waits for the network; a full queue drops the message.
//! - A lost connection drops the queued messages, reports the peer unreachable (and any
//!   snapshot among them as failed, so the leader retries it), and is redialled with an
//!   exponential backoff bounded by [`TcpConfig::backoff_max`].
//! - No frame larger than [`TcpConfig::frame_bytes_max`] is sent or read.
//! - While [`Cuts`] names a peer, no message goes to it or is taken from it (fault injection
//!   for the whole-system tests; empty, and so inert, unless an operator sets it).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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
    /// A peer connected and said where it listens (see [`Transport::learn_peer`]).
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

    /// Learns the address of peer `id` (replacing a different one it had). This is how
    /// replicas that restarted, moved, or joined after the others were configured become
    /// reachable: each peer announces its listen address when it connects.
    fn learn_peer(&mut self, id: u64, address: SocketAddr);
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

/// Raft messages over TCP. Dropping it stops every task it started.
pub struct TcpTransport {
    config: Arc<TcpConfig>,
    runtime: tokio::runtime::Handle,
    sink: Sink,
    peers: HashMap<u64, Peer>,
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
        let listener = runtime.spawn(accept_loop(listener, config.clone(), sink.clone()));
        Ok(Self { config, runtime, sink, peers: HashMap::new(), listener, local_address })
    }

    /// The address peers dial.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, message: Message) {
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
        self.remove_peer(id);
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
    }

    fn remove_peer(&mut self, id: u64) {
        if let Some(peer) = self.peers.remove(&id) {
            peer.task.abort();
        }
    }

    fn learn_peer(&mut self, id: u64, address: SocketAddr) {
        if self.peers.get(&id).is_none_or(|peer| peer.address != address) {
            self.add_peer(id, address);
        }
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

/// Reads one frame of at most `limit` bytes.
async fn read_frame(stream: &mut TcpStream, limit: usize) -> std::io::Result<Vec<u8>> {
    let length = usize::try_from(stream.read_u32().await?).map_err(|e| invalid(e.to_string()))?;
    if length > limit {
        return Err(invalid(format!("a frame of {length} bytes is over the limit of {limit}")));
    }
    let mut bytes = vec![0; length];
    stream.read_exact(&mut bytes).await?;
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
    writer: &mut BufWriter<TcpStream>,
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

async fn accept_loop(listener: TcpListener, config: Arc<TcpConfig>, sink: Sink) {
    // Owning the connections' tasks here means aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, config.clone(), sink.clone()));
                }
                // Out of file descriptors, say: pause rather than spin.
                Err(_) => tokio::time::sleep(config.backoff_max).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads one peer's messages until it closes or misbehaves.
async fn serve_connection(mut stream: TcpStream, config: Arc<TcpConfig>, sink: Sink) {
    let hello = tokio::time::timeout(config.connect_timeout, read_frame(&mut stream, 1024)).await;
    let Ok(Ok(hello)) = hello else { return };
    let Ok(hello) = <Hello as prost::Message>::decode(hello.as_slice()) else { return };
    if hello.version != PEER_PROTOCOL_VERSION
        || hello.chain_id != config.chain_id
        || hello.to != config.id
        || hello.from == config.id
    {
        return;
    }
    if let Ok(mut address) = hello.address.parse::<SocketAddr>() {
        // A peer listening on 0.0.0.0 is reachable at the address it connected from.
        if address.ip().is_unspecified() {
            if let Ok(peer) = stream.peer_addr() {
                address.set_ip(peer.ip());
            }
        }
        sink(Inbound::PeerSeen(hello.from, address));
    }
    while let Ok(bytes) = read_frame(&mut stream, config.frame_bytes_max).await {
        let Ok(message) = Message::parse_from_bytes(&bytes) else { return };
        if message.from != hello.from || message.to != config.id {
            return;
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

    fn start(id: u64, chain: &str) -> (TcpTransport, Arc<Mutex<Vec<Inbound>>>) {
        start_with(TcpConfig::new(id, chain))
    }

    fn start_with(config: TcpConfig) -> (TcpTransport, Arc<Mutex<Vec<Inbound>>>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (sink, got) = collecting_sink();
        let transport =
            TcpTransport::start(config, listener, tokio::runtime::Handle::current(), sink).unwrap();
        (transport, got)
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
        other_chain.add_peer(2, two.local_address());
        other_chain.send(message(1, 2, 1));
        // Messages forged with another sender on an honest connection are refused too.
        let (mut forger, _) = start(3, "c");
        forger.add_peer(2, two.local_address());
        forger.send(message(1, 2, 1));
        // A control message proves the connection path works, so the silence above is a refusal.
        let (mut honest, _) = start(4, "c");
        honest.add_peer(2, two.local_address());
        honest.send(message(4, 2, 7));
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

    // Goal: a peer that connects announces where it listens, so a replica that never had its
    // address (it joined later, or this side restarted) can reach it.
    #[tokio::test]
    async fn peers_announce_their_address() {
        let (mut one, _) = start(1, "c");
        let (two, got) = start(2, "c");
        one.add_peer(2, two.local_address());
        for _ in 0..500 {
            if !got.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(got.lock().unwrap().first(), Some(&Inbound::PeerSeen(1, one.local_address())));
    }

    // Goal: a cut drops messages both ways, on a connection already open, and lifting it lets
    // them through again.
    #[tokio::test]
    async fn cuts_drop_both_ways_until_lifted() {
        let (mut one, one_got) = start(1, "c");
        let two_config = TcpConfig::new(2, "c");
        let two_cuts = two_config.cuts.clone();
        let (two, two_got) = start_with(two_config);
        one.add_peer(2, two.local_address());
        one.send(message(1, 2, 1));
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
