//! The replica: raft-rs's `RawNode` driven through its Ready loop over a [`LogStore`], applying
//! committed batches to the ledger and telling the proposer how each transaction ended.
//!
//! [`Node`] does no IO of its own and reads no clock: the caller passes time in, delivers raft
//! messages to [`Node::step`], ticks it, and sends the messages [`Node::handle_ready`] returns.
//! The same code runs under a tokio loop with RocksDB and TCP ([`crate::replica`]) and under the deterministic
//! cluster tests with [`crate::storage::MemLogStore`] and a simulated network.
//!
//! Invariants:
//! - The Ready loop follows raft-rs's documented order, with one permitted reordering: send
//!   messages; install a snapshot; append entries and the hard state; apply committed entries;
//!   sync once (group commit); send the messages that needed persistence; advance; persist the
//!   new commit index; apply what the light ready committed; advance apply. Appending before
//!   applying keeps the durable commit index at or above the durable applied index at every
//!   instant, which raft-rs requires on restart.
//! - A proposal's outcome is reported exactly once: committed with its block height and result,
//!   `Dropped` when another entry was committed at its index (then it was certainly not
//!   applied), or `Unknown` when a snapshot skipped over it. Until then the caller must treat
//!   the outcome as unknown.
//! - Only the leader proposes, and it stamps each batch with a ledger time never earlier than the
//!   last one it stamped or applied.

use std::collections::BTreeMap;

use ledger::StateStore as _;
use ledger::pb::{LogBatch, SignedTx, TxResult};
use ledger::store::keys;
use ledger::{Ledger, query};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType,
    HardState, Message, MessageType,
};
use raft::{RawNode, StateRole};

use crate::guard::{self, Refusal};
use crate::storage::{LogStore, LogStoreError};

/// Format version of [`LogBatch`] payloads this code writes and reads.
pub const LOG_BATCH_VERSION: u32 = 1;

/// Settings of one replica.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Raft id, unique in the cluster, never 0.
    pub id: u64,
    /// Ticks without a leader before an election (randomised up to twice this).
    pub election_ticks: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Most transactions in one log entry (at most `ledger::machine::BLOCK_TXS_MAX`: one entry
    /// is one block; a larger value is lowered to it).
    pub batch_txs_max: usize,
    /// Most transaction bytes in one log entry.
    pub batch_bytes_max: usize,
    /// Most transactions accepted but not yet applied; beyond it `submit` answers `Overloaded`.
    pub pending_txs_max: usize,
    /// Most of this leader's proposals appended and not yet applied here. While that many are
    /// in flight, new transactions wait in the queue and go out together in the next proposal
    /// once one is applied: under load a block gathers what arrived during a whole round
    /// (replication, commit, apply) instead of one Ready turn's worth, so the per-block costs
    /// (log and state syncs on every replica, raft messages, hashing) are shared by more
    /// transactions. Idle, a transaction is proposed at once. At least 1; 1 measured best on
    /// a loopback cluster (BENCHMARKS.md), where a round is a few milliseconds. The ceiling it
    /// sets is this many entries of at most `batch_txs_max` transactions per round; beyond
    /// that the queue grows to `pending_txs_max` and writes get `Overloaded`.
    pub proposals_in_flight_max: usize,
    /// Compact the log once this many entries are applied beyond its first index.
    pub compact_after_entries: u64,
    /// Seed of the election-timeout randomisation (raft-rs's own uses a thread RNG, which the
    /// node replaces so that a seeded cluster test replays exactly) and of the ReadIndex
    /// contexts. A real process should draw a fresh one at every start (`api::server` does).
    pub seed: u64,
}

impl NodeConfig {
    /// Sensible defaults for replica `id`.
    pub fn new(id: u64) -> Self {
        Self {
            id,
            election_ticks: 10,
            heartbeat_ticks: 3,
            batch_txs_max: 1_024,
            batch_bytes_max: 4 * 1024 * 1024,
            pending_txs_max: 20_000,
            proposals_in_flight_max: 1,
            compact_after_entries: 1_000,
            seed: id,
        }
    }
}

/// Why a transaction was not (or may not have been) applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This replica is not the leader; retry at the hinted one.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this replica last heard from, if any.
        leader_hint: Option<u64>,
    },
    /// The transaction is larger than any the ledger accepts (`ledger::tx::SIGNED_TX_BYTES_MAX`);
    /// it is refused here so it never takes space in the log or a block.
    #[error("transaction of {bytes} bytes is larger than the maximum")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Too many transactions are waiting; retry later.
    #[error("overloaded: {pending} transactions pending")]
    Overloaded {
        /// Transactions accepted and not yet applied.
        pending: usize,
    },
    /// The proposal was lost to a leader change: another entry was committed in its place, so it
    /// was certainly not applied and may be resubmitted.
    #[error("dropped by a leader change; not applied")]
    Dropped,
    /// The outcome cannot be known here (the replica caught up from a snapshot that covers the
    /// proposal); look the transaction up by hash.
    #[error("outcome unknown; look the transaction up by hash")]
    Unknown,
}

/// What became of a peer's message in [`Node::step`].
#[derive(Debug)]
#[must_use = "a refused message is counted and its sender's connection closed"]
pub enum Stepped {
    /// raft-rs took it.
    Taken,
    /// Refused before raft-rs saw it.
    Refused(Refusal),
    /// A snapshot whose state does not verify, refused before raft-rs saw it (counted as
    /// [`Refusal::SnapshotState`]). The replica keeps its own state and goes on; its leader,
    /// finding it still behind, sends a snapshot again.
    SnapshotRefused {
        /// The snapshot's index.
        index: u64,
        /// Why.
        reason: SnapshotRefusal,
    },
}

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotRefusal {
    /// Its data is not a state snapshot this version reads.
    #[error(transparent)]
    Undecodable(#[from] LogStoreError),
    /// Its state is not what its own blocks produce.
    #[error(transparent)]
    Unverified(#[from] VerifyError),
    /// Its chain is shorter than this replica's: installing it would roll the replica back.
    #[error("its chain ends at height {theirs}, below this replica's {ours}")]
    Behind {
        /// This replica's height.
        ours: u64,
        /// The snapshot's.
        theirs: u64,
    },
    /// Sent in this replica's term by a member that is not its leader.
    #[error("sent by {from}, not by {leader}, the leader of this term")]
    NotFromLeader {
        /// The sender.
        from: u64,
        /// This term's leader.
        leader: u64,
    },
    /// Its block at this replica's height is not this replica's block there: another chain.
    #[error("its block at height {height} is not this replica's")]
    Diverges {
        /// This replica's height.
        height: u64,
    },
}

/// A fatal failure of the replica: it must stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// raft-rs refused an operation that cannot fail in a correct node.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] LogStoreError),
    /// The ledger could not apply a committed batch.
    #[error("applying entry {index}: {source}")]
    Apply {
        /// The entry.
        index: u64,
        /// Why.
        source: ledger::ApplyError,
    },
    /// raft-rs restored a snapshot that [`Node::step`] did not verify (a path into raft-rs this
    /// node does not know of): it is not installed.
    #[error("raft-rs restored a snapshot at index {index} (term {term}) that was not verified")]
    UnverifiedSnapshot {
        /// The snapshot's index.
        index: u64,
        /// Its term.
        term: u64,
    },
    /// A committed entry does not decode: the log holds something no correct leader wrote.
    #[error("committed entry {index} is corrupt: {detail}")]
    CorruptEntry {
        /// The entry.
        index: u64,
        /// Why.
        detail: String,
    },
}

/// A change of the cluster's members, replicated through the log as a raft-rs `ConfChangeV2`
/// whose entry context carries the new member's peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Adds a learner: it receives every entry, never votes, never proposes.
    AddObserver {
        /// Its raft id.
        id: u64,
        /// Where it accepts peer connections (`ip:port`).
        address: String,
    },
    /// Adds a voter (or promotes an observer).
    AddVoter {
        /// Its raft id.
        id: u64,
        /// Where it accepts peer connections (`ip:port`).
        address: String,
    },
    /// Removes a member of either kind.
    Remove {
        /// Its raft id.
        id: u64,
    },
}

impl MembershipChange {
    fn id(&self) -> u64 {
        match self {
            Self::AddObserver { id, .. } | Self::AddVoter { id, .. } | Self::Remove { id } => *id,
        }
    }
}

/// Why a membership change was refused before it was proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader proposes.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this replica last heard from, if any.
        leader_hint: Option<u64>,
    },
    /// The change makes no sense against the current members.
    #[error("invalid membership change: {0}")]
    Invalid(String),
    /// Another change is still in progress (raft-rs allows one at a time); retry once it is
    /// applied.
    #[error("another membership change is in progress")]
    Busy,
}

/// A peer a replica must now reach at `address`, or (`None`) forget: the transport's side of an
/// applied membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChange {
    /// The peer's raft id.
    pub id: u64,
    /// Its address, or `None` when it was removed.
    pub address: Option<String>,
}

/// Checks `change` against the members `conf` before it is proposed.
fn check_membership(conf: &ConfState, change: &MembershipChange) -> Result<(), String> {
    let id = change.id();
    if id == 0 {
        return Err("raft id 0 is reserved".into());
    }
    let is_voter = conf.voters.contains(&id);
    let is_learner = conf.learners.contains(&id);
    match change {
        MembershipChange::AddObserver { address, .. }
        | MembershipChange::AddVoter { address, .. } => {
            address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| format!("address {address:?}: {e}"))?;
            if matches!(change, MembershipChange::AddObserver { .. }) && is_voter {
                return Err(format!("{id} is a voter; remove it before adding it as an observer"));
            }
            if matches!(change, MembershipChange::AddVoter { .. }) && is_voter {
                return Err(format!("{id} is already a voter"));
            }
            if matches!(change, MembershipChange::AddObserver { .. }) && is_learner {
                return Err(format!("{id} is already an observer"));
            }
        }
        MembershipChange::Remove { .. } => {
            if !is_voter && !is_learner {
                return Err(format!("{id} is not a member"));
            }
            if is_voter && conf.voters.len() == 1 {
                return Err(format!("{id} is the last voter"));
            }
        }
    }
    Ok(())
}

/// The end of one submitted transaction, reported once by [`Node::take_outcomes`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The transaction is in a block (applied or rejected by the ledger's rules: see `result`).
    Committed {
        /// The caller's ticket.
        ticket: u64,
        /// Height of its block.
        height: u64,
        /// Its result.
        result: TxResult,
    },
    /// The transaction was not applied.
    Failed {
        /// The caller's ticket.
        ticket: u64,
        /// Why.
        error: ProposeError,
    },
}

/// A replica's role in raft, as this crate reports it: raft-rs's own `StateRole` stays inside
/// the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRole {
    /// It leads: writes go to it.
    Leader,
    /// It is campaigning (or pre-campaigning).
    Candidate,
    /// It follows a leader (observers always do).
    Follower,
}

impl From<StateRole> for RaftRole {
    fn from(role: StateRole) -> Self {
        match role {
            StateRole::Leader => RaftRole::Leader,
            StateRole::Candidate | StateRole::PreCandidate => RaftRole::Candidate,
            StateRole::Follower => RaftRole::Follower,
        }
    }
}

/// What a replica reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Raft id.
    pub id: u64,
    /// Raft role.
    pub role: RaftRole,
    /// Whether it is a learner (observer) in the current configuration.
    pub observer: bool,
    /// The leader it knows of (0 for none).
    pub leader_id: u64,
    /// Raft term.
    pub term: u64,
    /// Raft commit index.
    pub commit_index: u64,
    /// Last applied log index.
    pub applied_index: u64,
    /// Ledger height.
    pub height: u64,
    /// Hash of the last block.
    pub last_block_hash: Vec<u8>,
    /// State hash after the last block.
    pub state_hash: Vec<u8>,
    /// Snapshots installed since the replica started.
    pub snapshots_installed: u64,
}

/// The members as of a replica's last applied entry, as this crate reports them (and a node's
/// initial members, as its configuration names them): callers name these, not raft-rs's
/// `ConfState`, which [`Members::conf_state`] builds for a new store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Voter ids.
    pub voters: Vec<u64>,
    /// Observer (learner) ids.
    pub observers: Vec<u64>,
}

impl Members {
    /// The members `conf` names (in a joint configuration, the incoming ones).
    pub(crate) fn of(conf: ConfState) -> Self {
        Self { voters: conf.voters, observers: conf.learners }
    }

    /// These members as raft-rs's configuration (what a new store starts with).
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.clone(),
            learners: self.observers.clone(),
            ..Default::default()
        }
    }
}

/// Why [`verify_state`] refused a state: what in it does not match its own blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The state could not be read.
    #[error("reading the state: {0}")]
    Store(#[source] ledger::StoreError),
    /// The state has no chain tip, so no height to verify up to.
    #[error("the state has no chain tip")]
    NoTip,
    /// The tip's height does not fit this machine's `usize`.
    #[error("height {height} is beyond this machine's reach")]
    HeightTooLarge {
        /// The tip's height.
        height: u64,
    },
    /// Fewer blocks than the tip's height: one is missing.
    #[error("{found} blocks for height {height}")]
    MissingBlocks {
        /// Blocks found, counting up from height 1.
        found: usize,
        /// The tip's height.
        height: u64,
    },
    /// The blocks do not verify as a chain from genesis.
    #[error(transparent)]
    Chain(#[from] ledger::ChainBreak),
    /// The blocks verify, but replaying them gives another state.
    #[error("the state is not what its blocks produce")]
    StateMismatch,
    /// The state to go on from has no well-formed chain tip.
    #[error("the state to replay from has no chain tip")]
    BaseWithoutTip,
}

/// Re-executes every block a state holds from genesis (every signature checked against the keys
/// of its time, every result and state hash compared) and requires the result to be that state,
/// key for key: the domain records, the blocks, and the indexes derived from them (`idx/`)
/// alike; only the wording of reject messages may differ ([`same_record`]). A replica checks a
/// snapshot with [`verify_extension`], from its own state, after checking that the snapshot
/// extends its own chain (a state this checks may still be an earlier one).
pub fn verify_state(ledger: &Ledger, state: &ledger::MemStore) -> Result<(), VerifyError> {
    let mut genesis = ledger::MemStore::new();
    genesis.commit(&ledger.genesis_writes());
    verify_extension(ledger, genesis, state)
}

/// [`verify_state`] for a state whose chain extends `base`'s, a state the caller trusts (its
/// own): only the blocks above `base`'s tip are re-executed, from `base`, and the result must
/// be `state`. The caller checks that `state`'s chain holds `base`'s tip block: the cost is then
/// the new blocks and two passes over the state, not the whole history.
pub fn verify_extension(
    ledger: &Ledger,
    base: ledger::MemStore,
    state: &ledger::MemStore,
) -> Result<(), VerifyError> {
    let tip = query::tip(state).map_err(VerifyError::Store)?.ok_or(VerifyError::NoTip)?;
    let mut replayer =
        ledger::Replayer::resume(ledger.genesis(), base).ok_or(VerifyError::BaseWithoutTip)?;
    let first = replayer.next_height();
    // `first` is at least 1: the blocks from `first` to the tip's height.
    let count = tip.height.saturating_sub(first - 1);
    let count =
        usize::try_from(count).map_err(|_| VerifyError::HeightTooLarge { height: tip.height })?;
    let blocks = query::blocks(state, first, count).map_err(VerifyError::Store)?;
    if blocks.len() != count {
        let found = usize::try_from(first - 1).unwrap_or(usize::MAX).saturating_add(blocks.len());
        return Err(VerifyError::MissingBlocks { found, height: tip.height });
    }
    for block in &blocks {
        replayer.push(block)?;
    }
    let (ours, theirs) = (replayer.store().entries(), state.entries());
    let same = ours.len() == theirs.len()
        && ours.iter().zip(theirs).all(|((k1, v1), (k2, v2))| k1 == k2 && same_record(k1, v1, v2));
    if !same {
        return Err(VerifyError::StateMismatch);
    }
    Ok(())
}

/// Whether two values of `key` say the same: byte for byte, except for the reject messages in
/// blocks and in the rejection log, which are text for people that another version may word
/// differently (the results hash leaves them out too: `ledger::chain::results_hash`).
fn same_record(key: &[u8], ours: &[u8], theirs: &[u8]) -> bool {
    use ledger::pb::{Block, RejectedTx};
    fn decoded<M: prost::Message + Default>(bytes: &[u8], blank: fn(&mut M)) -> Option<M> {
        let mut record = M::decode(bytes).ok()?;
        // Only the canonical encoding: prost would drop unknown or repeated fields unseen.
        if record.encode_to_vec() != bytes {
            return None;
        }
        blank(&mut record);
        Some(record)
    }
    if ours == theirs {
        return true;
    }
    if key.starts_with(keys::BLOCK_PREFIX) {
        let blank =
            |block: &mut Block| block.results.iter_mut().for_each(|r| r.reject_message.clear());
        let ours = decoded(ours, blank);
        return ours.is_some() && ours == decoded(theirs, blank);
    }
    if key.starts_with(keys::REJECTION_PREFIX) {
        let blank = |rejected: &mut RejectedTx| rejected.message.clear();
        let ours = decoded(ours, blank);
        return ours.is_some() && ours == decoded(theirs, blank);
    }
    false
}

/// A proposal in flight: the term it was proposed in and who waits for it. It is keyed by the
/// log index it was appended at; by Raft's log matching property, the entry committed at that
/// index is this proposal exactly when its term is this term. (Proposal ids would not do: they
/// restart with the process, and entries from before a restart may still commit.)
#[derive(Debug)]
struct InFlight {
    term: u64,
    tickets: Vec<u64>,
    /// Whether [`Node::take_durable`] has reported the entry as written to this node's log.
    reported_durable: bool,
}

/// One replica. See the module documentation.
pub struct Node<L: LogStore> {
    raw: RawNode<L>,
    ledger: Ledger,
    config: NodeConfig,
    rng: u64,
    /// (term, role, leader) after the last raft call, to notice when raft-rs re-randomised the
    /// election timeout.
    raft_shape: (u64, StateRole, u64),
    /// Transactions accepted by the leader, waiting for the next proposal.
    queue: Vec<(u64, SignedTx)>,
    next_proposal_id: u64,
    /// Proposals by the log index they were appended at.
    in_flight: BTreeMap<u64, InFlight>,
    pending_txs: usize,
    last_time_ms: u64,
    outcomes: Vec<Outcome>,
    /// Tickets whose entries reached this (leading) node's durable log: (ticket, log index).
    durable: Vec<(u64, u64)>,
    peer_changes: Vec<PeerChange>,
    /// Distinguishes this process's ReadIndex requests from those of other replicas and of this
    /// replica's earlier lives: raft-rs ignores a request whose context is already pending and
    /// answers whoever asked first, so contexts must never repeat.
    read_nonce: u64,
    /// Linearizable reads whose read index is known: (index, ticket), waiting to be applied.
    reads_waiting: Vec<(u64, u64)>,
    /// Tickets of linearizable reads that may now run.
    reads_ready: Vec<u64>,
    snapshots_installed: u64,
    /// (index, term) of the snapshots `step` verified since the last Ready round: the only ones
    /// a Ready may install.
    verified_snapshots: Vec<(u64, u64)>,
}

impl<L: LogStore> Node<L> {
    /// Starts (or restarts) a replica over `store`.
    pub fn new(mut config: NodeConfig, store: L, ledger: Ledger) -> Result<Self, NodeError> {
        // A batch larger than a block could never be applied, on any replica.
        config.batch_txs_max = config.batch_txs_max.clamp(1, ledger::machine::BLOCK_TXS_MAX);
        config.proposals_in_flight_max = config.proposals_in_flight_max.max(1);
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied: store.applied_index(),
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let last_time_ms = query::ledger_time_ms(store.state()).unwrap_or(0);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&raft_config, store, &logger)?;
        let mut node = Self {
            raw,
            ledger,
            rng: config.seed ^ 0x5DEE_CE66_D1CE_4E5B,
            config,
            raft_shape: (u64::MAX, StateRole::Follower, u64::MAX),
            queue: Vec::new(),
            next_proposal_id: 1,
            in_flight: BTreeMap::new(),
            pending_txs: 0,
            last_time_ms,
            outcomes: Vec::new(),
            durable: Vec::new(),
            peer_changes: Vec::new(),
            read_nonce: 0,
            reads_waiting: Vec::new(),
            verified_snapshots: Vec::new(),
            reads_ready: Vec::new(),
            snapshots_installed: 0,
        };
        node.read_nonce = node.next_random();
        node.fix_election_timeout();
        Ok(node)
    }

    /// The replica's store.
    pub fn store(&self) -> &L {
        self.raw.store()
    }

    /// The Raft id.
    pub fn id(&self) -> u64 {
        self.config.id
    }

    /// How many snapshots this replica installed since it started.
    pub fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed
    }

    /// Whether this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this replica knows of, if any.
    pub fn leader_hint(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|id| *id != 0)
    }

    /// The ledger height applied (0 before genesis).
    pub fn height(&self) -> Result<u64, NodeError> {
        let tip = query::tip(self.store().state()).map_err(LogStoreError::State)?;
        Ok(tip.map_or(0, |t| t.height))
    }

    /// Status for `/v1/status`.
    pub fn status(&self) -> NodeStatus {
        let tip = query::tip(self.store().state()).ok().flatten().unwrap_or_default();
        let conf = self.raw.raft.prs().conf();
        NodeStatus {
            id: self.config.id,
            role: self.raw.raft.state.into(),
            observer: conf.learners().contains(&self.config.id),
            leader_id: self.raw.raft.leader_id,
            term: self.raw.raft.term,
            commit_index: self.raw.raft.raft_log.committed,
            applied_index: self.store().applied_index(),
            height: tip.height,
            last_block_hash: tip.last_block_hash,
            state_hash: tip.state_hash,
            snapshots_installed: self.snapshots_installed,
        }
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.fix_election_timeout();
    }

    /// Starts an election now (for tests and for bootstrapping a one-node cluster).
    pub fn campaign(&mut self) -> Result<(), NodeError> {
        self.raw.campaign()?;
        self.fix_election_timeout();
        Ok(())
    }

    /// Delivers a raft message from a peer, after [`guard::check`]: a message no correct member
    /// sends (a proposal, a commit beyond this log, entries out of order, a vote from an
    /// observer, a stranger's...) is refused and never reaches raft-rs, which would panic on
    /// some of them. The caller counts the refusal and closes the sender's connection.
    pub fn step(&mut self, message: Message) -> Result<Stepped, NodeError> {
        let view = guard::View::new(
            self.config.id,
            self.raw.raft.term,
            self.raw.raft.raft_log.last_index(),
            &self.raw.raft.prs().conf().to_conf_state(),
        );
        if let Err(refusal) = guard::check(&message, &view) {
            return Ok(Stepped::Refused(refusal));
        }
        if message.get_msg_type() == MessageType::MsgSnapshot && message.term >= self.raw.raft.term
        {
            // raft-rs restores a snapshot of the current term from its commit index on (one at
            // the commit index too, when its term differs there); one below it is ignored.
            let snapshot = message.get_snapshot();
            let (index, term) = (snapshot.get_metadata().index, snapshot.get_metadata().term);
            // Within a term only its leader sends snapshots: another member's is refused unread.
            let leader = self.raw.raft.leader_id;
            if message.term == self.raw.raft.term && leader != 0 && message.from != leader {
                let reason = SnapshotRefusal::NotFromLeader { from: message.from, leader };
                return Ok(Stepped::SnapshotRefused { index, reason });
            }
            if index >= self.raw.raft.raft_log.committed {
                if let Err(reason) = self.verify_snapshot(snapshot)? {
                    return Ok(Stepped::SnapshotRefused { index, reason });
                }
                self.verified_snapshots.push((index, term));
            }
        }
        // A message raft-rs refuses (a stale one, ...) is the network's fault, not this
        // replica's; only a failing store is fatal.
        if let Err(raft::Error::Store(error)) = self.raw.step(message) {
            return Err(raft::Error::Store(error).into());
        }
        self.fix_election_timeout();
        Ok(Stepped::Taken)
    }

    /// Tells raft-rs that messages to `peer` were lost, so a leader probes it again instead of
    /// streaming entries into the void.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// Tells raft-rs what became of a snapshot sent to `peer`: written to the connection
    /// (`delivered`), or lost. Either way a leader goes back to probing the peer, and sends the
    /// snapshot again if it is still needed; without a report it would wait for it forever.
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status =
            if delivered { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
        self.raw.report_snapshot(peer, status);
    }

    /// Accepts a transaction for the next proposal (leader only). Its outcome arrives later
    /// through [`Node::take_outcomes`] under `ticket`.
    pub fn submit(&mut self, ticket: u64, tx: SignedTx) -> Result<(), ProposeError> {
        if !self.is_leader() {
            return Err(ProposeError::NotLeader { leader_hint: self.leader_hint() });
        }
        let bytes = tx.body.len() + tx.signature.len();
        if bytes > ledger::tx::SIGNED_TX_BYTES_MAX {
            return Err(ProposeError::TooLarge { bytes });
        }
        if self.pending_txs >= self.config.pending_txs_max {
            return Err(ProposeError::Overloaded { pending: self.pending_txs });
        }
        self.queue.push((ticket, tx));
        self.pending_txs += 1;
        Ok(())
    }

    /// Proposes the queued transactions as log entries stamped with `now_ms` (raised to the last
    /// stamped time if earlier), bounded by the batch limits, while fewer than
    /// [`NodeConfig::proposals_in_flight_max`] of its proposals wait to be applied; the rest
    /// stay queued for a later flush.
    pub fn flush(&mut self, now_ms: u64) -> Result<(), NodeError> {
        if self.queue.is_empty() {
            return Ok(());
        }
        if !self.is_leader() {
            let hint = self.leader_hint();
            for (ticket, _) in std::mem::take(&mut self.queue) {
                self.fail(ticket, ProposeError::NotLeader { leader_hint: hint });
            }
            return Ok(());
        }
        if self.proposals_in_flight() >= self.config.proposals_in_flight_max {
            return Ok(());
        }
        let time_ms = now_ms.max(self.last_time_ms);
        let mut queue = std::mem::take(&mut self.queue).into_iter().peekable();
        let mut room = self.config.proposals_in_flight_max - self.proposals_in_flight();
        while queue.peek().is_some() && room > 0 {
            let mut tickets = Vec::new();
            let mut txs = Vec::new();
            let mut bytes = 0;
            while let Some((_, tx)) = queue.peek() {
                let size = tx.body.len() + tx.signature.len();
                if !txs.is_empty()
                    && (txs.len() >= self.config.batch_txs_max
                        || bytes + size > self.config.batch_bytes_max)
                {
                    break;
                }
                let (ticket, tx) = queue.next().expect("peeked");
                bytes += size;
                tickets.push(ticket);
                txs.push(tx);
            }
            let proposal_id = self.next_proposal_id;
            self.next_proposal_id += 1;
            let batch = LogBatch {
                version: LOG_BATCH_VERSION,
                proposer: self.config.id,
                proposal_id,
                time_ms,
                txs,
            };
            match self.raw.propose(Vec::new(), batch.encode_to_vec()) {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    let term = self.raw.raft.term;
                    let in_flight = InFlight { term, tickets, reported_durable: false };
                    room -= 1;
                    if let Some(replaced) = self.in_flight.insert(index, in_flight) {
                        // A proposal of an earlier term whose entry was cut from this log. Raft
                        // never cuts a committed entry, so it was not applied anywhere
                        // (`resolve_proposals` answers the same case alike).
                        for ticket in replaced.tickets {
                            self.fail(ticket, ProposeError::Dropped);
                        }
                    }
                }
                Err(raft::Error::ProposalDropped) => {
                    for ticket in tickets {
                        self.fail(ticket, ProposeError::Dropped);
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.queue = queue.collect();
        self.last_time_ms = time_ms;
        Ok(())
    }

    /// This node's proposals of the current term appended to its log and not yet applied here
    /// (at most [`NodeConfig::proposals_in_flight_max`]). Proposals of earlier terms do not
    /// count: their entries may have been cut from the log and never be applied, and a leader
    /// that waited for them would stall; a current-term entry of a leader cannot be cut while
    /// it leads, so each one is applied or the node stops leading.
    pub fn proposals_in_flight(&self) -> usize {
        let term = self.raw.raft.term;
        self.in_flight.values().filter(|proposal| proposal.term == term).count()
    }

    /// Whether [`Node::flush`] would propose something now: transactions are queued, this node
    /// leads, and its proposals in flight are below the limit.
    pub fn can_propose(&self) -> bool {
        !self.queue.is_empty()
            && self.is_leader()
            && self.proposals_in_flight() < self.config.proposals_in_flight_max
    }

    /// The members as of the last applied entry.
    pub fn members(&self) -> ConfState {
        self.raw.raft.prs().conf().to_conf_state()
    }

    /// Proposes a membership change (leader only). It takes effect when its entry is applied:
    /// watch [`Node::members`]. raft-rs runs one change at a time.
    pub fn propose_membership(&mut self, change: &MembershipChange) -> Result<(), MembershipError> {
        if !self.is_leader() {
            return Err(MembershipError::NotLeader { leader_hint: self.leader_hint() });
        }
        check_membership(&self.members(), change).map_err(MembershipError::Invalid)?;
        // raft-rs would turn a second pending change into an empty entry and still return Ok.
        if self.raw.raft.has_pending_conf() {
            return Err(MembershipError::Busy);
        }
        let (kind, address) = match change {
            MembershipChange::AddObserver { address, .. } => {
                (ConfChangeType::AddLearnerNode, address.as_str())
            }
            MembershipChange::AddVoter { address, .. } => {
                (ConfChangeType::AddNode, address.as_str())
            }
            MembershipChange::Remove { .. } => (ConfChangeType::RemoveNode, ""),
        };
        let single =
            ConfChangeSingle { node_id: change.id(), change_type: kind, ..Default::default() };
        let mut conf_change = ConfChangeV2::default();
        conf_change.set_changes(vec![single].into());
        match self.raw.propose_conf_change(address.as_bytes().to_vec(), conf_change) {
            Ok(()) => Ok(()),
            Err(raft::Error::ProposalDropped) => Err(MembershipError::Busy),
            Err(error) => Err(MembershipError::Invalid(error.to_string())),
        }
    }

    /// Starts a linearizable read (raft's ReadIndex): once the leader confirms it still leads
    /// and this replica has applied up to the leader's commit index as of now, `ticket` comes
    /// out of [`Node::take_ready_reads`], and a read of the local state then sees every write
    /// acknowledged before the call. Works on followers and observers (raft-rs forwards the
    /// request to the leader). Without a leader raft-rs drops the request silently: the caller
    /// bounds the wait.
    pub fn read_index(&mut self, ticket: u64) {
        self.raw.read_index(self.read_context(ticket));
    }

    /// The ReadIndex context of `ticket`: replica id, process nonce, ticket.
    fn read_context(&self, ticket: u64) -> Vec<u8> {
        [self.config.id, self.read_nonce, ticket].iter().flat_map(|n| n.to_be_bytes()).collect()
    }

    /// Tickets of linearizable reads that may run now.
    pub fn take_ready_reads(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.reads_ready)
    }

    /// Peers added or removed by membership changes applied since the last call.
    pub fn take_peer_changes(&mut self) -> Vec<PeerChange> {
        std::mem::take(&mut self.peer_changes)
    }

    /// Outcomes that became known since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// Submitted transactions whose entry is now in this node's log on disk, as (ticket, log
    /// index), each reported once and always before the same ticket's outcome. Such an entry
    /// is not committed yet: a leader change before it replicates can still drop it.
    pub fn take_durable(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.durable)
    }

    fn fail(&mut self, ticket: u64, error: ProposeError) {
        self.pending_txs = self.pending_txs.saturating_sub(1);
        self.outcomes.push(Outcome::Failed { ticket, error });
    }

    /// Runs one round of the Ready loop and returns the messages to send.
    pub fn handle_ready(&mut self) -> Result<Vec<Message>, NodeError> {
        let mut outbox = Vec::new();
        if !self.raw.has_ready() {
            return Ok(outbox);
        }
        let mut ready = self.raw.ready();
        outbox.extend(ready.take_messages());
        for read in ready.take_read_states() {
            // Only contexts this process made (see `read_context`) are its reads.
            let context = read.request_ctx.as_slice();
            if context.len() == 24 {
                let ticket = u64::from_be_bytes(context[16..].try_into().expect("8 bytes"));
                if context == self.read_context(ticket).as_slice() {
                    self.reads_waiting.push((read.index, ticket));
                }
            }
        }
        let verified = std::mem::take(&mut self.verified_snapshots);
        if !ready.snapshot().is_empty() {
            // Verified in `step`, before raft-rs took it. A snapshot that reached raft-rs some
            // other way is not installed: the replica stops rather than take it on trust.
            let meta = ready.snapshot().get_metadata();
            if !verified.contains(&(meta.index, meta.term)) {
                return Err(NodeError::UnverifiedSnapshot { index: meta.index, term: meta.term });
            }
            crash_point!("raft::snapshot::before_install");
            self.raw.mut_store().install_snapshot(ready.snapshot())?;
            crash_point!("raft::snapshot::after_install");
            self.snapshots_installed += 1;
            self.after_snapshot();
        }
        // The new entries and hard state are written (buffered) before the committed entries are
        // applied: every apply is a synced write that makes them durable too, so the durable
        // commit index is never behind the durable applied index. raft-rs refuses to restart
        // from a disk where it is (found by the cluster test's crashes inside a Ready round).
        let committed = ready.take_committed_entries();
        let store = self.raw.mut_store();
        store.append(ready.entries())?;
        if !ready.entries().is_empty() {
            crash_point!("raft::append::before_hard_state");
        }
        if let Some(hard_state) = ready.hs() {
            store.set_hard_state(hard_state)?;
        }
        self.apply_entries(committed)?;
        self.raw.mut_store().sync()?;
        // The entries this node proposed are on disk now; their outcomes come no earlier than
        // the light ready below (a one-voter cluster commits them there).
        let store = self.raw.store();
        let last_index = raft::Storage::last_index(store)?;
        for (index, in_flight) in self.in_flight.range_mut(..=last_index) {
            if !in_flight.reported_durable
                && raft::Storage::term(store, *index).ok() == Some(in_flight.term)
            {
                in_flight.reported_durable = true;
                self.durable.extend(in_flight.tickets.iter().map(|ticket| (*ticket, *index)));
            }
        }
        outbox.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let hard_state = HardState { commit, ..self.raw.raft.hard_state() };
            self.raw.mut_store().set_hard_state(&hard_state)?;
        }
        outbox.extend(light.take_messages());
        self.apply_entries(light.take_committed_entries())?;
        self.raw.advance_apply();
        let applied = self.store().applied_index();
        let (ready_now, waiting) = self.reads_waiting.drain(..).partition(|(i, _)| *i <= applied);
        self.reads_waiting = waiting;
        self.reads_ready.extend(ready_now.into_iter().map(|(_, ticket): (u64, u64)| ticket));
        self.fix_election_timeout();
        self.maybe_compact()?;
        Ok(outbox)
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        for entry in entries {
            let (index, term) = (entry.index, entry.term);
            let mut outcome = None;
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    // The empty entry a new leader appends to commit its term.
                    self.raw.mut_store().apply(index, &ledger::WriteSet::default(), None)?;
                }
                EntryType::EntryNormal => {
                    outcome = Some(self.apply_batch(index, &entry.data)?);
                    crash_point!("raft::apply::before_outcome");
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let corrupt = |e: protobuf::ProtobufError| NodeError::CorruptEntry {
                        index,
                        detail: e.to_string(),
                    };
                    let change = if entry.get_entry_type() == EntryType::EntryConfChange {
                        // Nothing here proposes v1 changes; read them as the one change each is.
                        let v1 = ConfChange::parse_from_bytes(&entry.data).map_err(corrupt)?;
                        let single = ConfChangeSingle {
                            node_id: v1.node_id,
                            change_type: v1.get_change_type(),
                            ..Default::default()
                        };
                        let mut v2 = ConfChangeV2::default();
                        v2.set_changes(vec![single].into());
                        v2
                    } else {
                        ConfChangeV2::parse_from_bytes(&entry.data).map_err(corrupt)?
                    };
                    // raft-rs checks the change before touching anything; one it refuses is
                    // refused alike by every replica at this index, so the members stay as they
                    // are (raft-rs: "in which case no call must take place") and the log goes on.
                    let conf_state = match self.raw.apply_conf_change(&change) {
                        Ok(conf_state) => {
                            let address = String::from_utf8_lossy(&entry.context).into_owned();
                            for single in change.get_changes() {
                                let address = match single.get_change_type() {
                                    ConfChangeType::RemoveNode => None,
                                    _ => Some(address.clone()),
                                };
                                self.peer_changes.push(PeerChange { id: single.node_id, address });
                            }
                            conf_state
                        }
                        Err(_) => self.members(),
                    };
                    self.raw.mut_store().apply(
                        index,
                        &ledger::WriteSet::default(),
                        Some(&conf_state),
                    )?;
                }
            }
            self.resolve_proposals(index, term, outcome);
        }
        Ok(())
    }

    /// Applies one batch and returns its block height and results.
    fn apply_batch(&mut self, index: u64, data: &[u8]) -> Result<(u64, Vec<TxResult>), NodeError> {
        let batch = LogBatch::decode(data)
            .map_err(|e| NodeError::CorruptEntry { index, detail: e.to_string() })?;
        if batch.version != LOG_BATCH_VERSION {
            return Err(NodeError::CorruptEntry {
                index,
                detail: format!("unknown batch version {}", batch.version),
            });
        }
        let applied = self
            .ledger
            .apply_block(self.raw.store().state(), batch.time_ms, batch.txs)
            .map_err(|source| NodeError::Apply { index, source })?;
        crash_point!("raft::apply::before_store");
        self.raw.mut_store().apply(index, &applied.writes, None)?;
        self.last_time_ms = self.last_time_ms.max(applied.tip.time_ms);
        Ok((applied.tip.height, applied.block.results))
    }

    /// Settles the proposals the entry at `index` (of `term`) decides: the one proposed there in
    /// that term is committed with `outcome`; any other proposed at or below `index` lost its
    /// place to another entry and was certainly not applied.
    fn resolve_proposals(&mut self, index: u64, term: u64, outcome: Option<(u64, Vec<TxResult>)>) {
        while let Some(entry) = self.in_flight.first_entry() {
            if *entry.key() > index {
                break;
            }
            let proposed_at = *entry.key();
            let in_flight = entry.remove();
            match &outcome {
                Some((height, results)) if proposed_at == index && in_flight.term == term => {
                    for (ticket, result) in
                        in_flight.tickets.into_iter().zip(results.iter().cloned())
                    {
                        self.pending_txs = self.pending_txs.saturating_sub(1);
                        self.outcomes.push(Outcome::Committed { ticket, height: *height, result });
                    }
                }
                _ => {
                    for ticket in in_flight.tickets {
                        self.fail(ticket, ProposeError::Dropped);
                    }
                }
            }
        }
    }

    /// After installing a snapshot, proposals it covers can no longer be matched to their entry:
    /// the installed state has their outcome, but this node cannot tell which it was. They are
    /// reported as unknown so the caller looks the transactions up by hash.
    fn after_snapshot(&mut self) {
        let applied = self.store().applied_index();
        while let Some(entry) = self.in_flight.first_entry() {
            if *entry.key() > applied {
                break;
            }
            for ticket in entry.remove().tickets {
                self.pending_txs = self.pending_txs.saturating_sub(1);
                self.outcomes.push(Outcome::Failed { ticket, error: ProposeError::Unknown });
            }
        }
        self.last_time_ms =
            self.last_time_ms.max(query::ledger_time_ms(self.store().state()).unwrap_or(0));
    }

    /// Whether `snapshot` may replace this replica's state: it decodes, it extends this
    /// replica's own chain (the same block at this replica's height: an honest leader's chain
    /// does, and an earlier state, replayed faithfully, would roll the replica back), and its
    /// state is what its blocks produce. The outer error is this replica's own store failing.
    fn verify_snapshot(
        &self,
        snapshot: &raft::eraftpb::Snapshot,
    ) -> Result<Result<(), SnapshotRefusal>, NodeError> {
        // A replica that joined with an empty disk has no chain yet: anything extends it.
        let own =
            query::tip(self.store().state()).map_err(LogStoreError::State)?.unwrap_or_default();
        let state = match crate::storage::decode_state(snapshot.get_data()) {
            Ok(state) => state,
            Err(error) => return Ok(Err(error.into())),
        };
        let theirs = match query::tip(&state) {
            Ok(Some(tip)) => tip,
            Ok(None) => return Ok(Err(VerifyError::NoTip.into())),
            Err(error) => return Ok(Err(VerifyError::Store(error).into())),
        };
        if theirs.height < own.height {
            return Ok(Err(SnapshotRefusal::Behind { ours: own.height, theirs: theirs.height }));
        }
        if own.height > 0 {
            let block = query::block(&state, own.height).ok().flatten();
            let hash = block.and_then(|b| b.header).and_then(|h| ledger::chain::header_hash(&h));
            if hash.as_ref().map(|h| h.as_slice()) != Some(own.last_block_hash.as_slice()) {
                return Ok(Err(SnapshotRefusal::Diverges { height: own.height }));
            }
        }
        // The snapshot's chain holds this replica's tip block, and each block names the hash
        // of the one before: below the tip it is this replica's own chain, verified when it was
        // applied. Only the blocks above are replayed, from this replica's own state.
        let mut base = ledger::MemStore::new();
        if own.height == 0 && own.last_block_hash.is_empty() {
            base.commit(&self.ledger.genesis_writes());
        } else {
            self.store()
                .state()
                .scan_prefix(b"", &mut |key, value| {
                    base.put_raw(key.to_vec(), value.to_vec());
                    std::ops::ControlFlow::Continue(())
                })
                .map_err(LogStoreError::State)?;
        }
        Ok(verify_extension(&self.ledger, base, &state).map_err(SnapshotRefusal::from))
    }

    fn maybe_compact(&mut self) -> Result<(), NodeError> {
        let store = self.raw.store();
        let applied = store.applied_index();
        let first = raft::Storage::first_index(store)?;
        if applied >= first + self.config.compact_after_entries {
            self.raw.mut_store().compact(applied)?;
        }
        Ok(())
    }

    /// The next number of the node's seeded generator (SplitMix64).
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Replaces raft-rs's thread-random election timeout with one from the node's seeded
    /// generator whenever raft-rs may have re-drawn it (on every change of term, role or leader).
    fn fix_election_timeout(&mut self) {
        let raft = &self.raw.raft;
        let shape = (raft.term, raft.state, raft.leader_id);
        if shape == self.raft_shape {
            return;
        }
        self.raft_shape = shape;
        let z = self.next_random();
        let low = self.config.election_ticks;
        let span = u64::try_from(self.config.election_ticks).expect("small");
        let timeout = low + usize::try_from(z % span).expect("small");
        self.raw.raft.set_randomized_election_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::MemStore;
    use ledger::pb::Role;
    use testkit::chain::{Driver, REGISTRAR, party_registration};

    /// A chain of four blocks: a registration in each of three, and a rejected registration
    /// (an id taken) in the fourth, so that the state has a rejection-log entry (`idx/`).
    fn chain() -> (Ledger, MemStore) {
        let mut driver = Driver::new("t");
        for i in 0..3 {
            driver.ok(REGISTRAR, party_registration("verify", i));
        }
        driver.rejects(REGISTRAR, party_registration("verify", 1), "already_exists");
        (driver.chain.ledger, driver.chain.store)
    }

    /// `state` with `change` made to a copy of its entries.
    fn altered(state: &MemStore, change: impl FnOnce(&mut BTreeMap<Vec<u8>, Vec<u8>>)) -> MemStore {
        let mut entries = state.entries().clone();
        change(&mut entries);
        let mut altered = MemStore::new();
        for (key, value) in entries {
            altered.put_raw(key, value);
        }
        altered
    }

    // Goal: a snapshot of a chain that extends a replica's own is replayed from the replica's
    // state, its new blocks only, and verifies exactly when a replay from genesis does.
    #[test]
    fn a_snapshot_is_replayed_from_the_replicas_own_state() {
        let mut driver = Driver::new("t");
        driver.ok(REGISTRAR, party_registration("verify", 0));
        let base = driver.chain.store.clone();
        driver.ok(REGISTRAR, party_registration("verify", 1));
        driver.rejects(REGISTRAR, party_registration("verify", 1), "already_exists");
        let (ledger, state) = (driver.chain.ledger, driver.chain.store);
        assert_eq!(verify_extension(&ledger, base.clone(), &state), Ok(()));
        let forged = altered(&state, |e| {
            e.insert(b"party/ghost".to_vec(), Vec::new());
        });
        assert_eq!(
            verify_extension(&ledger, base.clone(), &forged),
            Err(VerifyError::StateMismatch)
        );
        // A tip at the end of the integers is a refusal, not an overflow.
        let mut tip = query::tip(&state).unwrap().unwrap();
        tip.height = u64::MAX;
        let endless = altered(&state, |e| {
            e.insert(keys::TIP.to_vec(), tip.encode_to_vec());
        });
        assert!(matches!(
            verify_extension(&ledger, base.clone(), &endless),
            Err(VerifyError::MissingBlocks { .. })
        ));
        let short = altered(&state, |e| {
            e.remove(&keys::block(3));
        });
        assert_eq!(
            verify_extension(&ledger, base, &short),
            Err(VerifyError::MissingBlocks { found: 2, height: 3 })
        );
    }

    // Goal: an honest state verifies; one key extra, missing or changed, in the domain state or
    // in the indexes derived from the blocks (`idx/`), is refused, and so is a block missing: no
    // replica adopts a forged snapshot, and no derived index is taken on trust.
    #[test]
    fn snapshot_states_are_verified_by_replay() {
        let (ledger, state) = chain();
        assert_eq!(verify_state(&ledger, &state), Ok(()));
        let rejection = keys::rejection(4, 0);
        assert!(state.entries().contains_key(&rejection), "the chain has a rejection logged");
        let party = keys::party("p-1");
        let mut regulator = query::party(&state, "p-1").unwrap().unwrap();
        regulator.role = Role::Regulator as i32;
        let mut invented =
            ledger::pb::RejectedTx::decode(state.entries()[&rejection].as_slice()).unwrap();
        invented.signature_verified = !invented.signature_verified;

        // The same rejection with an unknown field appended (field 15, varint 1): prost would
        // decode it to the same record.
        let mut padded = state.entries()[&rejection].clone();
        padded.extend([0x78, 0x01]);
        let forgeries: [(&str, MemStore); 7] = [
            (
                "a non-canonical rejection",
                altered(&state, |e| {
                    e.insert(rejection.clone(), padded.clone());
                }),
            ),
            (
                "a changed record",
                altered(&state, |e| {
                    e.insert(party.clone(), regulator.encode_to_vec());
                }),
            ),
            (
                "an extra record",
                altered(&state, |e| {
                    e.insert(b"party/ghost".to_vec(), Vec::new());
                }),
            ),
            (
                "a missing record",
                altered(&state, |e| {
                    e.remove(&party);
                }),
            ),
            (
                "a changed rejection",
                altered(&state, |e| {
                    e.insert(rejection.clone(), invented.encode_to_vec());
                }),
            ),
            (
                "an extra rejection",
                altered(&state, |e| {
                    e.insert(keys::rejection(2, 0), invented.encode_to_vec());
                }),
            ),
            (
                "a missing rejection",
                altered(&state, |e| {
                    e.remove(&rejection);
                }),
            ),
        ];
        for (what, forged) in &forgeries {
            assert_eq!(verify_state(&ledger, forged), Err(VerifyError::StateMismatch), "{what}");
        }

        // Reject messages are text for people: another version's wording of them verifies.
        let reworded = altered(&state, |e| {
            let mut block = ledger::pb::Block::decode(e[&keys::block(4)].as_slice()).unwrap();
            block.results[0].reject_message = "worded otherwise".into();
            e.insert(keys::block(4), block.encode_to_vec());
            let mut logged = ledger::pb::RejectedTx::decode(e[&rejection].as_slice()).unwrap();
            logged.message = "worded otherwise".into();
            e.insert(rejection.clone(), logged.encode_to_vec());
        });
        assert_eq!(verify_state(&ledger, &reworded), Ok(()));

        let missing = altered(&state, |e| {
            e.remove(&keys::block(2));
        });
        assert_eq!(
            verify_state(&ledger, &missing),
            Err(VerifyError::MissingBlocks { found: 1, height: 4 })
        );
    }
}
