//! An in-memory ledger behind the [`NodeHandle`] trait: one replica that leads, applies every
//! submission at once as a block of its own, and never loses leadership; with
//! [`MemoryNode::observer`], observers that share its state (always caught up).
//!
//! It runs the real ledger ([`ledger::Ledger::apply_block`] over a [`MemStore`]), so every rule,
//! signature check and record is the one a cluster has; only consensus and storage are left
//! out. The API's tests use it for everything that does not need consensus (forwarding,
//! elections, membership and durability are tested against real nodes).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ledger::pb::SignedTx;
use ledger::{Genesis, Ledger, MemStore, query};
use tokio::sync::watch;

use super::{
    Accepted, BoxFuture, Committed, Consistency, Members, MembershipChange, MembershipError,
    NodeHandle, RaftRole, ReadError, ReadFn, Status, SubmitError,
};

/// What the leader and its observers share.
struct Shared {
    leader: u64,
    ledger: Ledger,
    /// The state, or `None` once stopped.
    state: Mutex<Option<MemStore>>,
    /// The applied height's watch, or `None` once stopped (dropping it ends every wait).
    heights: Mutex<Option<watch::Sender<u64>>>,
    observers: Mutex<Vec<u64>>,
}

/// An in-memory replica: see the module documentation.
#[derive(Clone)]
pub struct MemoryNode {
    id: u64,
    observer: bool,
    shared: Arc<Shared>,
}

impl MemoryNode {
    /// A leader with id `id` of a new chain from `genesis`.
    pub fn new(id: u64, genesis: Genesis) -> Self {
        let ledger = Ledger::new(genesis);
        let mut state = MemStore::new();
        state.commit(&ledger.genesis_writes());
        let shared = Shared {
            leader: id,
            ledger,
            state: Mutex::new(Some(state)),
            heights: Mutex::new(Some(watch::Sender::new(0))),
            observers: Mutex::new(Vec::new()),
        };
        Self { id, observer: false, shared: Arc::new(shared) }
    }

    /// An observer with id `id` of this node's chain, sharing its state.
    pub fn observer(&self, id: u64) -> Self {
        self.shared.observers.lock().expect("observers lock").push(id);
        Self { id, observer: true, shared: self.shared.clone() }
    }

    /// The memos of its ledger (shared with the API, which then does not verify twice).
    pub fn memos(&self) -> &ledger::Memos {
        self.shared.ledger.memos()
    }

    /// Stops the node (and its observers): every call then answers as a stopped replica does,
    /// and every heights watch ends.
    pub fn stop(&self) {
        self.shared.state.lock().expect("state lock").take();
        self.shared.heights.lock().expect("heights lock").take();
    }

    fn stopped(&self) -> bool {
        self.shared.state.lock().expect("state lock").is_none()
    }

    fn apply(&self, tx: SignedTx) -> Result<Committed, SubmitError> {
        let mut guard = self.shared.state.lock().expect("state lock");
        let state = guard.as_mut().ok_or(SubmitError::Stopped)?;
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let now_ms = u64::try_from(now_ms).unwrap_or(u64::MAX);
        let applied = match self.shared.ledger.apply_block(&*state, now_ms, vec![tx]) {
            Ok(applied) => applied,
            Err(error) => {
                // The real replica stops on an apply error (its state would diverge); so does
                // this one.
                tracing::error!(%error, "in-memory node: applying a block failed; stopping");
                guard.take();
                self.shared.heights.lock().expect("heights lock").take();
                return Err(SubmitError::Stopped);
            }
        };
        state.commit(&applied.writes);
        let height = applied.tip.height;
        let result = applied.block.results.into_iter().next().ok_or(SubmitError::Stopped)?;
        drop(guard);
        if let Some(heights) = &*self.shared.heights.lock().expect("heights lock") {
            heights.send_replace(height);
        }
        Ok(Committed { height, result })
    }
}

impl NodeHandle for MemoryNode {
    fn status(&self) -> BoxFuture<'_, Option<Status>> {
        Box::pin(async move {
            let guard = self.shared.state.lock().expect("state lock");
            let tip = query::tip(guard.as_ref()?).ok().flatten()?;
            Some(Status {
                id: self.id,
                role: if self.observer { RaftRole::Follower } else { RaftRole::Leader },
                observer: self.observer,
                leader_id: self.shared.leader,
                term: 1,
                commit_index: tip.height,
                applied_index: tip.height,
                height: tip.height,
                last_block_hash: tip.last_block_hash,
                state_hash: tip.state_hash,
                snapshots_installed: 0,
            })
        })
    }

    fn submit(&self, tx: SignedTx, _wait: bool) -> BoxFuture<'_, Result<Accepted, SubmitError>> {
        // Applied at once: the outcome is known when the entry would be durable.
        Box::pin(async move { self.apply(tx).map(Accepted::Committed) })
    }

    fn read(&self, consistency: Consistency, read: ReadFn) -> BoxFuture<'_, Result<(), ReadError>> {
        Box::pin(async move {
            // One replica: its state is the committed state, local and linearizable alike.
            let guard = self.shared.state.lock().expect("state lock");
            let stopped = match consistency {
                Consistency::Local => ReadError::Stopped,
                // A stopped replica's ReadIndex round never completes: it says unavailable.
                Consistency::Linearizable => ReadError::Unavailable,
            };
            let state = guard.as_ref().ok_or(stopped)?;
            read(state);
            Ok(())
        })
    }

    fn heights(&self) -> watch::Receiver<u64> {
        match &*self.shared.heights.lock().expect("heights lock") {
            Some(heights) => heights.subscribe(),
            // A watch whose sender is gone, as a stopped replica's is.
            None => watch::channel(0).1,
        }
    }

    fn members(&self) -> BoxFuture<'_, Option<Members>> {
        Box::pin(async move {
            if self.stopped() {
                return None;
            }
            let observers = self.shared.observers.lock().expect("observers lock").clone();
            Some(Members { voters: vec![self.shared.leader], observers })
        })
    }

    fn change_membership(&self, _: MembershipChange) -> BoxFuture<'_, Result<(), MembershipError>> {
        Box::pin(async move {
            if self.stopped() {
                return Err(MembershipError::NotLeader { leader_hint: None });
            }
            Err(MembershipError::Invalid("an in-memory node's members are fixed".to_owned()))
        })
    }
}
