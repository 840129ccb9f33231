//! The narrow handle the API holds on its node: submit, read the state, status, members, the
//! heights watch. [`raft_node::replica::Replica`] is the real one; [`memory::MemoryNode`] is an
//! in-memory single-replica ledger for the API's tests, the way raft-rs tests drive a harness
//! instead of a cluster.
//!
//! The trait is object-safe (`Arc<dyn NodeHandle>` in [`crate::app::App`]), so reads are boxed
//! closures; [`read`] wraps one to return its value. raft-rs's own types (`StateRole`,
//! `ConfState`) stop inside raft-node: the API sees raft-node's [`Status`], [`RaftRole`] and
//! [`Members`], re-exported here.

pub mod memory;

use std::future::Future;
use std::pin::Pin;

use ledger::StateStore;
use ledger::pb::SignedTx;
pub use raft_node::node::{
    Members, MembershipChange, MembershipError, NodeStatus as Status, ProposeError, RaftRole,
};
pub use raft_node::replica::{Accepted, Committed, SubmitError};
use tokio::sync::watch;

/// A boxed future, for the trait's methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A read of the state, boxed for the trait: see [`read`].
pub type ReadFn = raft_node::replica::Reader;

/// Where a read is answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// This replica's state as it is (the `x-scf-height` header says how far it is).
    Local,
    /// State at least as new as the leader's commit index when the read arrived (ReadIndex).
    Linearizable,
}

/// Why a read did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The node has stopped.
    #[error("the replica has stopped")]
    Stopped,
    /// No leader confirmed a linearizable read in time (an election, a partition), or this
    /// replica could not catch up in time. Nothing was read; retry.
    #[error("no linearizable read possible now (no leader, or this replica is behind)")]
    Unavailable,
}

/// What the API needs of its node. Once the node has stopped, every method answers as a
/// stopped replica does (`None`, `Stopped`, `Unavailable`, or `NotLeader` for a membership
/// change); none waits for ever.
pub trait NodeHandle: Send + Sync + 'static {
    /// The node's status, or `None` if it has stopped.
    fn status(&self) -> BoxFuture<'_, Option<Status>>;

    /// Submits a transaction. With `wait`, answers with its committed outcome; without, as soon
    /// as its entry is durable in the leader's log ([`Accepted::Durable`]).
    fn submit(&self, tx: SignedTx, wait: bool) -> BoxFuture<'_, Result<Accepted, SubmitError>>;

    /// Runs `read` against the state as of the last applied block (after a ReadIndex round for
    /// [`Consistency::Linearizable`]). `Err` if it could not run; then `read` was dropped.
    fn read(&self, consistency: Consistency, read: ReadFn) -> BoxFuture<'_, Result<(), ReadError>>;

    /// The applied ledger height, updated after every block; the sender goes when the node
    /// stops, which ends every wait with an error.
    fn heights(&self) -> watch::Receiver<u64>;

    /// The members, or `None` if it has stopped.
    fn members(&self) -> BoxFuture<'_, Option<Members>>;

    /// Proposes a membership change through the leader's log.
    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'_, Result<(), MembershipError>>;
}

/// Runs `read` on `node`'s state (see [`NodeHandle::read`]) and returns what it returned.
pub async fn read<R, F>(
    node: &dyn NodeHandle,
    consistency: Consistency,
    read: F,
) -> Result<R, ReadError>
where
    R: Send + 'static,
    F: FnOnce(&dyn StateStore) -> R + Send + 'static,
{
    let (boxed, answer) = raft_node::replica::reader(read);
    node.read(consistency, boxed).await?;
    answer.await.map_err(|_| ReadError::Stopped)
}

impl NodeHandle for raft_node::replica::Replica {
    fn status(&self) -> BoxFuture<'_, Option<Status>> {
        Box::pin(raft_node::replica::Replica::status(self))
    }

    fn submit(&self, tx: SignedTx, wait: bool) -> BoxFuture<'_, Result<Accepted, SubmitError>> {
        Box::pin(async move {
            if wait {
                raft_node::replica::Replica::submit(self, tx).await.map(Accepted::Committed)
            } else {
                self.propose(tx).await
            }
        })
    }

    fn read(&self, consistency: Consistency, read: ReadFn) -> BoxFuture<'_, Result<(), ReadError>> {
        Box::pin(async move {
            match consistency {
                Consistency::Local => {
                    raft_node::replica::Replica::read(self, read).await.ok_or(ReadError::Stopped)
                }
                Consistency::Linearizable => {
                    self.read_linearizable(read).await.map_err(|_| ReadError::Unavailable)
                }
            }
        })
    }

    fn heights(&self) -> watch::Receiver<u64> {
        raft_node::replica::Replica::heights(self)
    }

    fn members(&self) -> BoxFuture<'_, Option<Members>> {
        Box::pin(raft_node::replica::Replica::members(self))
    }

    fn change_membership(
        &self,
        change: MembershipChange,
    ) -> BoxFuture<'_, Result<(), MembershipError>> {
        Box::pin(raft_node::replica::Replica::change_membership(self, change))
    }
}
