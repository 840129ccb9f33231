//! A running replica: one [`Node`] on its own thread, fed through bounded queues, with a clock,
//! a [`Transport`] and a handle that clients (the HTTP API, tests) call from any thread or task.
//!
//! The thread owns the node, its store and its transport's sending side; nothing else touches
//! them, so the Ready loop needs no locks. Each turn of the loop takes every raft message and
//! client request already waiting (up to a bound), ticks if a tick is due, proposes the queued
//! transactions as one batch unless the leader's proposals in flight are at their limit (then
//! they wait for the next entry, and the loop turns again as soon as one is applied), and runs
//! one Ready round: under load, many transactions share one log entry and one fsync (group
//! commit).
//!
//! Invariants:
//! - A client is answered exactly once per transaction: its committed result, or a
//!   [`SubmitError`] that says whether the transaction was certainly not applied (`NotLeader`,
//!   `Dropped`, `TooLarge`, `Overloaded`, `Busy`) or may have been (`Unknown`, `Timeout`,
//!   `Stopped`).
//! - An answer is sent only after the block holding the transaction is applied and synced on
//!   this replica, which (being the leader that proposed it) means a majority has it durably.
//! - Raft messages and client requests have separate queues, so a flood of requests cannot
//!   starve heartbeats, and neither queue grows without bound: a full queue refuses (`Busy`)
//!   or drops (raft messages, which Raft resends).
//! - A fatal node error stops the replica loudly; every waiting client gets `Stopped`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ledger::pb::{SignedTx, TxResult};
use ledger::{Ledger, StateStore};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::guard::Refusal;
use crate::node::Stepped;
use crate::node::{
    Members, MembershipChange, MembershipError, Node, NodeConfig, NodeError, NodeStatus, Outcome,
    ProposeError,
};
use crate::storage::LogStore;
use crate::transport::{Inbound, PeerRefusals, Sink, Transport};
use raft::eraftpb::ConfState;

/// Settings of a running replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The node's own settings.
    pub node: NodeConfig,
    /// Length of one raft tick. Elections start after `node.election_ticks` ticks of silence.
    pub tick: Duration,
    /// Client requests waiting for the replica's thread before new ones are refused (`Busy`).
    pub request_queue_max: usize,
    /// Raft messages waiting for the replica's thread before new ones are dropped.
    pub raft_queue_max: usize,
    /// Most raft messages and requests taken in one turn of the loop before running a Ready
    /// round; bounds how long a burst delays ticks and replies.
    pub turn_items_max: usize,
    /// How long a submitted transaction waits for its outcome before the client is answered
    /// [`SubmitError::Timeout`] (outcome unknown): a leader cut off from its peers cannot
    /// commit, and steps down without learning what became of its proposals.
    pub submit_timeout: Duration,
    /// How long a linearizable read waits for the leader's confirmation and for this replica to
    /// catch up before it fails with [`ReadError::Unavailable`].
    pub read_timeout: Duration,
    /// Where refused peer messages are counted; share it with the transport's
    /// ([`crate::transport::TcpConfig::refusals`]) so that `/metrics` shows both.
    pub refusals: Arc<PeerRefusals>,
}

impl ReplicaConfig {
    /// Defaults around `node`: 100 ms ticks (elections after 1 to 2 s of silence).
    pub fn new(node: NodeConfig) -> Self {
        Self {
            node,
            tick: Duration::from_millis(100),
            request_queue_max: 65_536,
            raft_queue_max: 16_384,
            turn_items_max: 4_096,
            submit_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(2),
            refusals: Arc::default(),
        }
    }
}

/// A transaction's place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Height of the block holding it.
    pub height: u64,
    /// Its result: applied, or rejected by the ledger's rules.
    pub result: TxResult,
}

/// How far a submission got when [`Replica::propose`] answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Its entry is in the leader's log on disk, at this index; not committed yet, so a leader
    /// change can still drop it (it is then never applied). Look it up by hash later.
    Durable {
        /// The log index of its entry.
        index: u64,
    },
    /// Already in a block (the entry committed in the same round it was written).
    Committed(Committed),
}

/// Why a submission has no committed result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The node's answer (not leader, dropped, too large, overloaded, unknown).
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// The replica's request queue is full; nothing was accepted. Retry later.
    #[error("the replica is busy; retry later")]
    Busy,
    /// No outcome within [`ReplicaConfig::submit_timeout`]: the transaction may still be
    /// applied (or may never be). Look it up by hash, or resubmit it: replay protection makes a
    /// second copy a rejection, never a second application.
    #[error("no outcome in time; the outcome is unknown")]
    Timeout,
    /// The replica stopped (shut down, or failed) before answering. If it had accepted the
    /// transaction, the outcome is unknown: look it up by hash.
    #[error("the replica stopped; the outcome is unknown")]
    Stopped,
}

/// Why a linearizable read has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No leader confirmed the read in time (an election, a partition), or the replica could
    /// not catch up in time, or it stopped. Nothing was read; retry.
    #[error("no linearizable read possible now (no leader, or this replica is behind)")]
    Unavailable,
}

/// A read of the ledger state, boxed so that it can cross to the replica's thread (and through
/// object-safe traits, such as the API's handle on its node): see [`reader`].
pub type Reader = Box<dyn FnOnce(&dyn StateStore) + Send>;

/// Boxes `read` for the replica's thread, with the channel its result comes back on.
pub fn reader<R, F>(read: F) -> (Reader, oneshot::Receiver<R>)
where
    R: Send + 'static,
    F: FnOnce(&dyn StateStore) -> R + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let reader: Reader = Box::new(move |state| {
        let _ = reply.send(read(state));
    });
    (reader, answer)
}

/// Where a submission's answer goes, and when.
enum Reply {
    /// At its outcome.
    Outcome(oneshot::Sender<Result<Committed, SubmitError>>),
    /// Once it is durably proposed (or has an outcome, if that comes first).
    Durable(oneshot::Sender<Result<Accepted, SubmitError>>),
}

impl Reply {
    fn fail(self, error: SubmitError) {
        match self {
            Reply::Outcome(reply) => drop(reply.send(Err(error))),
            Reply::Durable(reply) => drop(reply.send(Err(error))),
        }
    }
}

enum Request {
    Submit(SignedTx, Reply),
    Status(oneshot::Sender<NodeStatus>),
    Read(Reader),
    ReadLinearizable(Reader),
    ChangeMembership(MembershipChange, oneshot::Sender<Result<(), MembershipError>>),
    Members(oneshot::Sender<Members>),
    AddPeer(u64, SocketAddr),
}

/// The mailbox a transport delivers raft messages to.
fn sink(raft: mpsc::Sender<Inbound>) -> Sink {
    Arc::new(move |item| raft.try_send(item).is_ok())
}

/// The queues of a replica that is being assembled: create it first, give [`Mailbox::sink`] to
/// the transport, then [`Replica::start`] with both.
pub struct Mailbox {
    raft_sender: mpsc::Sender<Inbound>,
    raft: mpsc::Receiver<Inbound>,
    request_sender: mpsc::Sender<Request>,
    requests: mpsc::Receiver<Request>,
}

impl Mailbox {
    /// Queues bounded as `config` says.
    pub fn new(config: &ReplicaConfig) -> Self {
        let (raft_sender, raft) = mpsc::channel(config.raft_queue_max);
        let (request_sender, requests) = mpsc::channel(config.request_queue_max);
        Self { raft_sender, raft, request_sender, requests }
    }

    /// Where the transport delivers what it receives.
    pub fn sink(&self) -> Sink {
        sink(self.raft_sender.clone())
    }
}

/// A handle on a running replica; cheap to clone, usable from any thread or task.
#[derive(Clone)]
pub struct Replica {
    requests: mpsc::Sender<Request>,
    id: u64,
    heights: watch::Receiver<u64>,
    /// Where reads run when the store has views ([`LogStore::views`]): on the blocking pool,
    /// at most [`READERS_MAX`] at once, never on the replica's thread.
    readers: Option<Readers>,
}

/// Most reads that run at once off the replica's thread, per replica: a flood of reads queues
/// for these instead of taking every core from consensus.
pub const READERS_MAX: usize = 2;

/// The views reads run against, and the permits that bound them.
#[derive(Clone)]
struct Readers {
    views: Arc<dyn crate::storage::StateViews>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// Owns a replica's thread: [`ReplicaThread::stop`] or [`ReplicaThread::join`] ends it.
pub struct ReplicaThread {
    handle: Replica,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), NodeError>>>,
}

impl Replica {
    /// Starts a replica over `store` on a thread of its own, named after its id.
    pub fn start<L, T>(
        config: ReplicaConfig,
        store: L,
        ledger: Ledger,
        mut transport: T,
        mailbox: Mailbox,
    ) -> Result<ReplicaThread, NodeError>
    where
        L: LogStore + Send + 'static,
        T: Transport,
    {
        let id = config.node.id;
        let readers = store.views().map(|views| Readers {
            views,
            permits: Arc::new(tokio::sync::Semaphore::new(READERS_MAX)),
        });
        let node = Node::new(config.node.clone(), store, ledger)?;
        let (heights_sender, heights) = watch::channel(node.status().height);
        let Mailbox { raft, requests, request_sender, .. } = mailbox;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("replica-{id}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("a current-thread runtime with a timer");
                let result = runtime.block_on(run(
                    config,
                    node,
                    &mut transport,
                    (raft, requests),
                    heights_sender,
                    stopped,
                ));
                if let Err(error) = &result {
                    eprintln!("replica {id} stopped: {error}");
                }
                result
            })
            .expect("spawning a replica thread");
        Ok(ReplicaThread {
            handle: Replica { requests: request_sender, id, heights, readers },
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The replica's raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The ledger height this replica has applied, updated after every step that applied
    /// something (a snapshot included): wait on it with `changed()` to follow the chain. The
    /// sender is dropped when the replica stops, which ends every wait with an error.
    pub fn heights(&self) -> watch::Receiver<u64> {
        self.heights.clone()
    }

    /// Submits a transaction and waits for its outcome. See [`SubmitError`] for what each
    /// failure says about whether it was applied.
    pub async fn submit(&self, tx: SignedTx) -> Result<Committed, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send_submit(tx, Reply::Outcome(reply))?;
        answer.await.unwrap_or(Err(SubmitError::Stopped))
    }

    /// Submits a transaction and answers once its entry is in the leader's log on disk (see
    /// [`Accepted`]), without waiting for it to commit. The failures are those of
    /// [`Replica::submit`].
    pub async fn propose(&self, tx: SignedTx) -> Result<Accepted, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.send_submit(tx, Reply::Durable(reply))?;
        answer.await.unwrap_or(Err(SubmitError::Stopped))
    }

    fn send_submit(&self, tx: SignedTx, reply: Reply) -> Result<(), SubmitError> {
        self.requests.try_send(Request::Submit(tx, reply)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SubmitError::Busy,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
        })
    }

    /// The replica's status, or `None` if it has stopped.
    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Status(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Runs `read` against the ledger state as of the replica's last applied entry (or a later
    /// one), or returns `None` if it has stopped. With a store that has views (RocksDB), the
    /// read runs on the blocking pool against a snapshot, at most [`READERS_MAX`] at once, and
    /// the replica's thread never waits for it; otherwise on the replica's thread.
    pub async fn read<R, F>(&self, read: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StateStore) -> R + Send + 'static,
    {
        let (reader, answer) = reader(read);
        match &self.readers {
            Some(readers) => {
                if self.requests.is_closed() {
                    return None;
                }
                let permit = readers.permits.clone().acquire_owned().await.ok()?;
                let views = readers.views.clone();
                let ran = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let mut reader = Some(reader);
                    views.read(&mut |state| {
                        if let Some(reader) = reader.take() {
                            reader(state);
                        }
                    })
                });
                if !ran.await.unwrap_or(false) {
                    return None;
                }
            }
            None => self.requests.send(Request::Read(reader)).await.ok()?,
        }
        answer.await.ok()
    }

    /// Runs `read` like [`Replica::read`], but only once the state it sees includes every
    /// transaction acknowledged by any replica before the call (raft's ReadIndex: the leader
    /// confirms its leadership with a quorum, and this replica applies up to the leader's commit
    /// index first). Works on observers too.
    pub async fn read_linearizable<R, F>(&self, read: F) -> Result<R, ReadError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StateStore) -> R + Send + 'static,
    {
        if self.readers.is_some() {
            // The replica's thread only says when the read index is applied; the read itself
            // then runs off it, against a view at least that new.
            let (ready, applied) = reader(|_| ());
            self.requests
                .send(Request::ReadLinearizable(ready))
                .await
                .map_err(|_| ReadError::Unavailable)?;
            applied.await.map_err(|_| ReadError::Unavailable)?;
            return self.read(read).await.ok_or(ReadError::Unavailable);
        }
        let (reader, answer) = reader(read);
        self.requests
            .send(Request::ReadLinearizable(reader))
            .await
            .map_err(|_| ReadError::Unavailable)?;
        answer.await.map_err(|_| ReadError::Unavailable)
    }

    /// Proposes a membership change through the leader's log (this replica must lead). It takes
    /// effect when applied: watch [`Replica::members`].
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), MembershipError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || MembershipError::NotLeader { leader_hint: None };
        self.requests
            .send(Request::ChangeMembership(change, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// The members as of this replica's last applied entry, or `None` if it stopped.
    pub async fn members(&self) -> Option<Members> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Members(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Tells the replica's transport where peer `id` listens.
    pub async fn add_peer(&self, id: u64, address: SocketAddr) -> bool {
        self.requests.send(Request::AddPeer(id, address)).await.is_ok()
    }

    /// Resolves when the replica's thread has ended, by a stop or by a fatal error (the
    /// process should then exit: a replica that is gone must not linger answering 503).
    pub async fn stopped(&self) {
        self.requests.closed().await;
    }
}

impl ReplicaThread {
    /// A handle for clients.
    pub fn handle(&self) -> Replica {
        self.handle.clone()
    }

    /// Asks the replica to stop and waits for its thread. Everything it acknowledged is
    /// already durable; clients still waiting get [`SubmitError::Stopped`].
    pub fn stop(mut self) -> Result<(), NodeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join_inner()
    }

    /// Waits for the replica's thread to end (it ends by itself only on a fatal error).
    pub fn join(mut self) -> Result<(), NodeError> {
        self.join_inner()
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join_inner(&mut self) -> Result<(), NodeError> {
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Ok(()),
        }
    }
}

impl Drop for ReplicaThread {
    /// Stops the replica without waiting for its thread.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Every id in `conf`, voters and learners, incoming and outgoing.
fn member_ids(conf: &ConfState) -> std::collections::BTreeSet<u64> {
    (conf.voters.iter().chain(&conf.voters_outgoing))
        .chain(conf.learners.iter().chain(&conf.learners_next))
        .copied()
        .collect()
}

/// Wall-clock milliseconds since the Unix epoch: the leader's proposal for ledger time (the node
/// keeps it monotonic).
fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

struct Loop<'a, L: LogStore, T: Transport> {
    node: Node<L>,
    transport: &'a mut T,
    /// Clients waiting for an outcome, by ticket, with their deadline.
    waiting: HashMap<u64, (Reply, Instant)>,
    submit_timeout: Duration,
    /// Linearizable reads by ticket, with their deadline.
    reads: HashMap<u64, (Reader, Instant)>,
    read_timeout: Duration,
    next_ticket: u64,
    refusals: Arc<PeerRefusals>,
    /// The members the transport was last told of.
    members: std::collections::BTreeSet<u64>,
}

async fn run<L: LogStore, T: Transport>(
    config: ReplicaConfig,
    node: Node<L>,
    transport: &mut T,
    (mut raft, mut requests): (mpsc::Receiver<Inbound>, mpsc::Receiver<Request>),
    heights: watch::Sender<u64>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), NodeError> {
    let mut applied = node.store().applied_index();
    let mut this = Loop {
        node,
        transport,
        waiting: HashMap::new(),
        submit_timeout: config.submit_timeout,
        reads: HashMap::new(),
        read_timeout: config.read_timeout,
        next_ticket: 1,
        refusals: config.refusals.clone(),
        members: std::collections::BTreeSet::new(),
    };
    this.update_members();
    let mut next_tick = Instant::now() + config.tick;
    loop {
        tokio::select! {
            biased;
            // A stop request, or the owner gone.
            _ = &mut stop => break,
            Some(item) = raft.recv() => this.inbound(item)?,
            request = requests.recv() => match request {
                Some(request) => this.request(request),
                None => break,
            },
            () = tokio::time::sleep_until(next_tick) => {}
            // Transactions held back while the proposals in flight were at their limit, now
            // that the last turn applied one: propose them at once rather than at the next
            // message or tick.
            () = std::future::ready(()), if this.node.can_propose() => {}
        }
        for _ in 0..config.turn_items_max {
            match raft.try_recv() {
                Ok(item) => this.inbound(item)?,
                Err(_) => break,
            }
        }
        for _ in 0..config.turn_items_max {
            match requests.try_recv() {
                Ok(request) => this.request(request),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            this.node.tick();
            // After a stall, tick once and resume the cadence rather than fire a burst.
            next_tick = (next_tick + config.tick).max(now);
        }
        this.node.flush(now_ms())?;
        for message in this.node.handle_ready()? {
            this.transport.send(message);
        }
        this.answer();
        this.after_apply(now);
        let now_applied = this.node.store().applied_index();
        if now_applied != applied {
            applied = now_applied;
            let height = this.node.height()?;
            heights.send_if_modified(|seen| std::mem::replace(seen, height) != height);
        }
    }
    Ok(())
}

impl<L: LogStore, T: Transport> Loop<'_, L, T> {
    fn inbound(&mut self, item: Inbound) -> Result<(), NodeError> {
        match item {
            Inbound::Message(message) => {
                let from = message.from;
                match self.node.step(message)? {
                    Stepped::Taken => {}
                    Stepped::Refused(why) => {
                        self.refusals.message(why);
                        self.transport.disconnect(from);
                    }
                    Stepped::SnapshotRefused { index, reason } => {
                        eprintln!(
                            "replica {}: refused the snapshot at index {index} from {from}: \
                             {reason}",
                            self.node.id()
                        );
                        self.refusals.message(Refusal::SnapshotState);
                        self.transport.disconnect(from);
                    }
                }
            }
            Inbound::Unreachable(peer) => self.node.report_unreachable(peer),
            Inbound::SnapshotFailed(peer) => self.node.report_snapshot(peer, false),
            Inbound::SnapshotSent(peer) => self.node.report_snapshot(peer, true),
            // Checked again here: the member may have been removed since the transport sent it.
            Inbound::PeerSeen(peer, address) => {
                if self.members.contains(&peer) || !self.members.contains(&self.node.id()) {
                    self.transport.learn_peer(peer, address);
                }
            }
        }
        Ok(())
    }

    fn request(&mut self, request: Request) {
        match request {
            Request::Submit(tx, reply) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                match self.node.submit(ticket, tx) {
                    Ok(()) => {
                        self.waiting.insert(ticket, (reply, Instant::now() + self.submit_timeout));
                    }
                    Err(error) => reply.fail(error.into()),
                }
            }
            Request::Status(reply) => {
                let _ = reply.send(self.node.status());
            }
            Request::Read(read) => read(self.node.store().state()),
            Request::ReadLinearizable(read) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.reads.insert(ticket, (read, Instant::now() + self.read_timeout));
                self.node.read_index(ticket);
            }
            Request::ChangeMembership(change, reply) => {
                let _ = reply.send(self.node.propose_membership(&change));
            }
            Request::Members(reply) => {
                let _ = reply.send(Members::of(self.node.members()));
            }
            Request::AddPeer(id, address) => self.transport.add_peer(id, address),
        }
    }

    /// Runs the linearizable reads that may run, fails the late ones, and points the transport
    /// at the peers membership changes added or removed.
    fn after_apply(&mut self, now: Instant) {
        for ticket in self.node.take_ready_reads() {
            if let Some((read, _)) = self.reads.remove(&ticket) {
                read(self.node.store().state());
            }
        }
        // Dropping a reader drops its reply channel: the caller gets `Unavailable`.
        self.reads.retain(|_, (_, deadline)| *deadline > now);
        // After every turn: a snapshot changes the members without a membership entry.
        self.update_members();
        for change in self.node.take_peer_changes() {
            if change.id == self.node.id() {
                continue;
            }
            match change.address.map(|a| a.parse::<SocketAddr>()) {
                Some(Ok(address)) => self.transport.add_peer(change.id, address),
                // An address the proposer checked but that does not parse here cannot happen;
                // the peer then stays unreachable until it connects and announces itself.
                Some(Err(_)) => {}
                None => self.transport.remove_peer(change.id),
            }
        }
    }

    /// Tells the transport the members, if they changed.
    fn update_members(&mut self) {
        let members = member_ids(&self.node.members());
        if members != self.members {
            self.transport.set_members(&members);
            self.members = members;
        }
    }

    fn answer(&mut self) {
        for (ticket, index) in self.node.take_durable() {
            // Those waiting for the outcome keep waiting.
            if !matches!(self.waiting.get(&ticket), Some((Reply::Durable(_), _))) {
                continue;
            }
            if let Some((Reply::Durable(reply), _)) = self.waiting.remove(&ticket) {
                let _ = reply.send(Ok(Accepted::Durable { index }));
            }
        }
        for outcome in self.node.take_outcomes() {
            let (ticket, answer) = match outcome {
                Outcome::Committed { ticket, height, result } => {
                    (ticket, Ok(Committed { height, result }))
                }
                Outcome::Failed { ticket, error } => (ticket, Err(SubmitError::from(error))),
            };
            match self.waiting.remove(&ticket) {
                Some((Reply::Outcome(reply), _)) => drop(reply.send(answer)),
                Some((Reply::Durable(reply), _)) => {
                    drop(reply.send(answer.map(Accepted::Committed)));
                }
                None => {}
            }
        }
        // The node keeps tracking a timed-out proposal (its entry may still commit or lose its
        // place); only the client stops waiting.
        let now = Instant::now();
        let expired: Vec<u64> = (self.waiting.iter())
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(ticket, _)| *ticket)
            .collect();
        for ticket in expired {
            if let Some((reply, _)) = self.waiting.remove(&ticket) {
                reply.fail(SubmitError::Timeout);
            }
        }
    }
}
