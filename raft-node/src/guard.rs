//! The checks every raft message from a peer passes before it reaches raft-rs.
//!
//! raft-rs trusts its input: it `panic!`s (through `fatal!`) on a heartbeat that commits past
//! the end of the log, on entries that are not contiguous and overwrite committed ones, on a
//! snapshot whose members it cannot restore, and it adopts any term it hears. A correct peer
//! never sends such a message, so [`check`] refuses each of them, together with messages that
//! no member in the sender's role sends (a proposal, a local message, a vote from an observer,
//! an append from a non-voter). The transport has already bound the sender to the connection's
//! certificate; this module knows nothing of sockets and reads no clock: it is a pure function
//! of the message and of what the replica knows (its id, its log's last index, the members).
//!
//! Invariant: a message [`check`] lets through cannot make raft-rs panic for the reasons above;
//! the deterministic cluster test runs every honest message through it (so it refuses none of
//! them), and the unit tests below feed it each forged shape.

use std::collections::BTreeSet;

use raft::eraftpb::{ConfState, Message, MessageType};

/// Terms at or above this are refused: no real cluster gets there (one election a millisecond
/// for 290 million years), and raft-rs's `term + 1` must never overflow.
pub const TERM_MAX: u64 = 1 << 63;

/// What a replica knows when it checks a message.
#[derive(Debug, Clone)]
pub struct View {
    /// This replica's id.
    pub id: u64,
    /// This replica's current term. Messages of earlier terms are ignored by raft-rs whatever
    /// they carry (it answers some of them, reading nothing else), so the checks of their
    /// contents apply from this term on: a delayed honest message of an old term may well
    /// acknowledge entries a later leader cut from this log.
    pub term: u64,
    /// The last index of this replica's log.
    pub last_index: u64,
    /// Voters of the current configuration (incoming and outgoing, in a joint one).
    pub voters: BTreeSet<u64>,
    /// Learners (observers), including those a joint configuration is about to add.
    pub learners: BTreeSet<u64>,
    /// Whether this replica is among its own members. One that is not yet (it was just added
    /// at runtime and has not caught up to the change) knows only the initial members, while
    /// its leader may be a member added since: it hears any sender (the transport has bound
    /// each to its certificate), treated as a voter.
    pub joined: bool,
}

impl View {
    /// The members of `conf`, for replica `id` at `term` whose log ends at `last_index`.
    pub fn new(id: u64, term: u64, last_index: u64, conf: &ConfState) -> Self {
        let voters: BTreeSet<u64> =
            conf.voters.iter().chain(&conf.voters_outgoing).copied().collect();
        let learners: BTreeSet<u64> =
            conf.learners.iter().chain(&conf.learners_next).copied().collect();
        let joined = voters.contains(&id) || learners.contains(&id);
        Self { id, term, last_index, voters, learners, joined }
    }
}

/// Why a message was refused. Each is counted in `/metrics` under its [`Refusal::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum Refusal {
    /// Addressed to another replica.
    #[error("addressed to another replica")]
    WrongRecipient,
    /// From a replica that is not a member.
    #[error("the sender is not a member")]
    NotAMember,
    /// A message type raft-rs only makes locally, or a proposal (clients propose through their
    /// own replica's API, never through a peer).
    #[error("a local message or a proposal, from a peer")]
    LocalOnly,
    /// A message only voters send (votes, appends, heartbeats, snapshots), from a learner.
    #[error("a voter's message from a learner")]
    RoleForbids,
    /// A term no cluster reaches, or term 0 on a message that always carries its sender's term
    /// (raft-rs takes term 0 for a local message and skips every term check).
    #[error("an implausible term")]
    Term,
    /// A heartbeat that commits beyond this replica's log (raft-rs would panic).
    #[error("a commit index beyond this replica's log")]
    CommitBeyondLog,
    /// Entries that are not the contiguous run after the message's index, or whose terms go
    /// backwards or exceed the message's term (raft-rs could overwrite committed entries).
    #[error("entries out of order")]
    Entries,
    /// An acknowledgement of entries this leader never had.
    #[error("an acknowledgement beyond this replica's log")]
    AckBeyondLog,
    /// A snapshot whose metadata no leader makes: index 0, a term above the message's, or
    /// members raft-rs cannot restore (no voter, an id both voter and learner, id 0).
    #[error("a malformed snapshot")]
    Snapshot,
    /// A snapshot whose data does not decode, that another member than this term's leader sent,
    /// that does not extend this replica's chain, or whose state is not what its blocks produce
    /// replayed from this replica's own state ([`crate::node::verify_extension`]). Refused by
    /// the node, after the guard.
    #[error("a snapshot whose state does not verify")]
    SnapshotState,
    /// A read-index request that is not what raft-rs sends (term 0, one entry: its context), or
    /// an acknowledgement that asks for a snapshot (this project's replicas never do).
    #[error("a malformed request")]
    Request,
}

impl Refusal {
    /// Every refusal, in a fixed order (for metrics).
    pub const ALL: [Refusal; 11] = [
        Refusal::WrongRecipient,
        Refusal::NotAMember,
        Refusal::LocalOnly,
        Refusal::RoleForbids,
        Refusal::Term,
        Refusal::CommitBeyondLog,
        Refusal::Entries,
        Refusal::AckBeyondLog,
        Refusal::Snapshot,
        Refusal::SnapshotState,
        Refusal::Request,
    ];

    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::WrongRecipient => "wrong_recipient",
            Refusal::NotAMember => "not_a_member",
            Refusal::LocalOnly => "local_only",
            Refusal::RoleForbids => "role_forbids",
            Refusal::Term => "term",
            Refusal::CommitBeyondLog => "commit_beyond_log",
            Refusal::Entries => "entries",
            Refusal::AckBeyondLog => "ack_beyond_log",
            Refusal::Snapshot => "snapshot",
            Refusal::SnapshotState => "snapshot_state",
            Refusal::Request => "request",
        }
    }
}

/// Whether `message`, from a peer, may be stepped into raft-rs on the replica `view` describes.
pub fn check(message: &Message, view: &View) -> Result<(), Refusal> {
    use MessageType::*;
    if message.to != view.id {
        return Err(Refusal::WrongRecipient);
    }
    let from = message.from;
    let member = view.voters.contains(&from) || view.learners.contains(&from);
    if from == view.id || from == 0 || (view.joined && !member) {
        return Err(Refusal::NotAMember);
    }
    let voter = view.voters.contains(&from) || !view.joined;
    let kind = message.get_msg_type();
    // raft-rs sends every message with its term but a proposal and a read-index request, and
    // it takes one with term 0 for a local message: it would skip every term check.
    if message.term >= TERM_MAX || (message.term == 0 && kind != MsgReadIndex) {
        return Err(Refusal::Term);
    }
    let current = message.term >= view.term;
    match kind {
        // Leadership transfer is local too here: no replica of this project asks for one, and
        // raft-rs panics forwarding one that carries a term.
        MsgHup | MsgBeat | MsgUnreachable | MsgSnapStatus | MsgCheckQuorum | MsgPropose
        | MsgTransferLeader => Err(Refusal::LocalOnly),
        // raft-rs forwards it to the leader (panicking if it carries a term) and reads its
        // first entry (panicking if there is none).
        MsgReadIndex if message.term != 0 || message.entries.len() != 1 => Err(Refusal::Request),
        // What a leader or a candidate sends: only a voter can be either.
        MsgAppend
        | MsgHeartbeat
        | MsgSnapshot
        | MsgTimeoutNow
        | MsgReadIndexResp
        | MsgRequestVote
        | MsgRequestPreVote
        | MsgRequestVoteResponse
        | MsgRequestPreVoteResponse
            if !voter =>
        {
            Err(Refusal::RoleForbids)
        }
        MsgHeartbeat if current && message.commit > view.last_index => {
            Err(Refusal::CommitBeyondLog)
        }
        MsgAppend if current => check_entries(message),
        MsgAppendResponse if message.request_snapshot != 0 => Err(Refusal::Request),
        MsgAppendResponse if current && !message.reject && message.index > view.last_index => {
            Err(Refusal::AckBeyondLog)
        }
        MsgSnapshot if current => check_snapshot(message),
        _ => Ok(()),
    }
}

/// An append's entries must be the run `index + 1, index + 2, ...`, with terms that never go
/// backwards, never before the term of the entry they follow, and never past the leader's term.
fn check_entries(message: &Message) -> Result<(), Refusal> {
    let mut term = message.log_term;
    for (offset, entry) in (1u64..).zip(message.entries.iter()) {
        let in_place = message.index.checked_add(offset) == Some(entry.index);
        if !in_place || entry.term < term || entry.term > message.term {
            return Err(Refusal::Entries);
        }
        term = entry.term;
    }
    if message.log_term > message.term {
        return Err(Refusal::Entries);
    }
    Ok(())
}

/// A snapshot's metadata must be one a leader could have made (its data is the node's concern:
/// observers replay it, see `node.rs`).
fn check_snapshot(message: &Message) -> Result<(), Refusal> {
    let Some(snapshot) = message.snapshot.as_ref() else { return Err(Refusal::Snapshot) };
    let Some(meta) = snapshot.metadata.as_ref() else { return Err(Refusal::Snapshot) };
    if meta.index == 0 || meta.term == 0 || meta.term > message.term {
        return Err(Refusal::Snapshot);
    }
    let Some(conf) = meta.conf_state.as_ref() else { return Err(Refusal::Snapshot) };
    // raft-rs restores these as a configuration, and panics on one it cannot build.
    let lists = [&conf.voters, &conf.learners, &conf.voters_outgoing, &conf.learners_next];
    let distinct_and_nonzero = lists.iter().all(|list| {
        let set: BTreeSet<u64> = list.iter().copied().collect();
        set.len() == list.len() && !set.contains(&0)
    });
    let well_formed = distinct_and_nonzero
        && !conf.voters.is_empty()
        && conf.voters.iter().all(|id| !conf.learners.contains(id))
        && conf.voters_outgoing.iter().all(|id| !conf.learners.contains(id))
        // Only a joint configuration leaves by itself.
        && (!conf.auto_leave || !conf.voters_outgoing.is_empty())
        // A learner-to-be is a voter being demoted by the joint change.
        && conf.learners_next.iter().all(|id| {
            conf.voters_outgoing.contains(id)
                && !conf.voters.contains(id)
                && !conf.learners.contains(id)
        });
    if !well_formed {
        return Err(Refusal::Snapshot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, Snapshot, SnapshotMetadata};

    fn view() -> View {
        let conf = ConfState { voters: vec![1, 2, 3], learners: vec![4], ..Default::default() };
        View::new(2, 5, 100, &conf)
    }

    fn message(kind: MessageType, from: u64) -> Message {
        let mut message = Message { from, to: 2, term: 5, ..Default::default() };
        message.set_msg_type(kind);
        message
    }

    fn entries(first: u64, terms: &[u64]) -> Vec<Entry> {
        (first..)
            .zip(terms)
            .map(|(index, term)| Entry { index, term: *term, ..Default::default() })
            .collect()
    }

    fn snapshot(index: u64, term: u64, conf: ConfState) -> Message {
        let mut message = message(MessageType::MsgSnapshot, 1);
        message.snapshot = Some(Snapshot {
            metadata: Some(SnapshotMetadata {
                index,
                term,
                conf_state: Some(conf).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into();
        message
    }

    // Goal: what honest peers send passes: a leader's appends, heartbeats and snapshots, a
    // follower's responses and votes, an observer's responses.
    #[test]
    fn honest_messages_pass() {
        let view = view();
        let mut append = message(MessageType::MsgAppend, 1);
        (append.index, append.log_term, append.commit) = (100, 4, 100);
        append.entries = entries(101, &[4, 5, 5]).into();
        assert_eq!(check(&append, &view), Ok(()));
        let mut heartbeat = message(MessageType::MsgHeartbeat, 1);
        heartbeat.commit = 100;
        assert_eq!(check(&heartbeat, &view), Ok(()));
        let mut ack = message(MessageType::MsgAppendResponse, 4);
        ack.index = 100;
        assert_eq!(check(&ack, &view), Ok(()));
        assert_eq!(check(&message(MessageType::MsgRequestPreVote, 3), &view), Ok(()));
        assert_eq!(check(&message(MessageType::MsgHeartbeatResponse, 4), &view), Ok(()));
        let conf = ConfState { voters: vec![1, 2, 3], learners: vec![4], ..Default::default() };
        assert_eq!(check(&snapshot(5_000, 5, conf), &view), Ok(()));
    }

    // Goal: a heartbeat that commits past the log, the one that made raft-rs panic, is refused;
    // a delayed acknowledgement of an earlier term, which raft-rs ignores, passes.
    #[test]
    fn a_commit_beyond_the_log_is_refused() {
        let mut heartbeat = message(MessageType::MsgHeartbeat, 1);
        heartbeat.term = 6;
        heartbeat.commit = 1_000_000_000_000;
        assert_eq!(check(&heartbeat, &view()), Err(Refusal::CommitBeyondLog));
        let mut stale = message(MessageType::MsgAppendResponse, 3);
        (stale.term, stale.index) = (4, 150);
        assert_eq!(check(&stale, &view()), Ok(()));
    }

    // Goal: entries out of place, with terms going backwards or past the leader's, are refused.
    #[test]
    fn entries_out_of_order_are_refused() {
        let view = view();
        let mut append = message(MessageType::MsgAppend, 1);
        (append.index, append.log_term) = (100, 4);
        for bad in [entries(5, &[1]), entries(101, &[5, 4]), entries(101, &[6]), entries(102, &[5])]
        {
            append.entries = bad.into();
            assert_eq!(check(&append, &view), Err(Refusal::Entries));
        }
        append.entries = Vec::new().into();
        append.index = u64::MAX;
        append.entries = vec![Entry { index: 0, term: 5, ..Default::default() }].into();
        assert_eq!(check(&append, &view), Err(Refusal::Entries));
    }

    // Goal: strangers, observers acting as voters, local messages and absurd terms are refused.
    #[test]
    fn senders_and_kinds_are_checked() {
        let view = view();
        assert_eq!(check(&message(MessageType::MsgHeartbeat, 9), &view), Err(Refusal::NotAMember));
        assert_eq!(check(&message(MessageType::MsgHeartbeat, 2), &view), Err(Refusal::NotAMember));
        let mut elsewhere = message(MessageType::MsgHeartbeat, 1);
        elsewhere.to = 3;
        assert_eq!(check(&elsewhere, &view), Err(Refusal::WrongRecipient));
        for kind in [MessageType::MsgAppend, MessageType::MsgRequestVote, MessageType::MsgSnapshot]
        {
            assert_eq!(check(&message(kind, 4), &view), Err(Refusal::RoleForbids));
        }
        for kind in [
            MessageType::MsgHup,
            MessageType::MsgPropose,
            MessageType::MsgBeat,
            MessageType::MsgTransferLeader,
        ] {
            assert_eq!(check(&message(kind, 1), &view), Err(Refusal::LocalOnly));
        }
        let mut absurd = message(MessageType::MsgRequestVote, 3);
        absurd.term = u64::MAX;
        assert_eq!(check(&absurd, &view), Err(Refusal::Term));
        let mut ack = message(MessageType::MsgAppendResponse, 3);
        ack.index = 101;
        assert_eq!(check(&ack, &view), Err(Refusal::AckBeyondLog));
        ack.reject = true;
        assert_eq!(check(&ack, &view), Ok(()));
    }

    // Goal: term 0, which raft-rs takes for a local message and so skips every term check on,
    // is refused on everything but a read-index request, and that must be the one raft-rs
    // sends (term 0, one entry); an acknowledgement asking for a snapshot is refused.
    #[test]
    fn term_zero_and_malformed_requests_are_refused() {
        let view = view();
        for kind in [
            MessageType::MsgHeartbeat,
            MessageType::MsgAppend,
            MessageType::MsgSnapshot,
            MessageType::MsgRequestVote,
            MessageType::MsgReadIndexResp,
        ] {
            let mut zero = message(kind, 1);
            zero.term = 0;
            assert_eq!(check(&zero, &view), Err(Refusal::Term), "{kind:?}");
        }
        let mut read = message(MessageType::MsgReadIndex, 4);
        read.term = 0;
        assert_eq!(check(&read, &view), Err(Refusal::Request));
        read.entries = vec![Entry::default()].into();
        assert_eq!(check(&read, &view), Ok(()));
        read.term = 5;
        assert_eq!(check(&read, &view), Err(Refusal::Request));
        let mut ack = message(MessageType::MsgAppendResponse, 3);
        (ack.reject, ack.request_snapshot) = (true, 7);
        assert_eq!(check(&ack, &view), Err(Refusal::Request));
    }

    // Goal: a replica not yet among its own members (just added, catching up) hears a leader
    // it does not know of yet, still never from itself or id 0.
    #[test]
    fn a_replica_that_has_not_joined_hears_any_sender() {
        let conf = ConfState { voters: vec![1, 2, 3], ..Default::default() };
        let view = View::new(5, 5, 0, &conf);
        let mut heartbeat = message(MessageType::MsgHeartbeat, 7);
        heartbeat.to = 5;
        assert_eq!(check(&heartbeat, &view), Ok(()));
        heartbeat.from = 5;
        assert_eq!(check(&heartbeat, &view), Err(Refusal::NotAMember));
        heartbeat.from = 0;
        assert_eq!(check(&heartbeat, &view), Err(Refusal::NotAMember));
    }

    // Goal: snapshots whose metadata raft-rs cannot restore, or no leader makes, are refused.
    #[test]
    fn malformed_snapshots_are_refused() {
        let view = view();
        let good = ConfState { voters: vec![1, 2, 3], ..Default::default() };
        assert_eq!(check(&snapshot(0, 5, good.clone()), &view), Err(Refusal::Snapshot));
        assert_eq!(check(&snapshot(10, 6, good.clone()), &view), Err(Refusal::Snapshot));
        let no_voter = ConfState { learners: vec![4], ..Default::default() };
        let both = ConfState { voters: vec![1, 2], learners: vec![2], ..Default::default() };
        let zero = ConfState { voters: vec![0, 1], ..Default::default() };
        let twice = ConfState { voters: vec![1, 1], ..Default::default() };
        let leaving_alone = ConfState { voters: vec![1], auto_leave: true, ..Default::default() };
        let outgoing_learner = ConfState {
            voters: vec![1],
            voters_outgoing: vec![1, 2],
            learners: vec![2],
            ..Default::default()
        };
        for conf in [no_voter, both, zero, twice, leaving_alone, outgoing_learner] {
            assert_eq!(check(&snapshot(10, 5, conf), &view), Err(Refusal::Snapshot));
        }
        let mut bare = message(MessageType::MsgSnapshot, 1);
        bare.snapshot = None.into();
        assert_eq!(check(&bare, &view), Err(Refusal::Snapshot));
    }
}
