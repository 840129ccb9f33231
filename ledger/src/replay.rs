//! Re-execution of a chain from genesis: the strongest audit a replica or a regulator can run.
//!
//! A [`Replayer`] applies every block's transactions, with the block's own time, to a fresh
//! in-memory state and checks that each block it builds is the block it was given: same results,
//! same state hash, same block hash. It verifies the hash links and every signature as a side
//! effect (the state machine checks signatures against the keys the replayed state holds).
//! Blocks are fed one at a time, so a chain read page by page never has to be held whole;
//! [`replay_chain`] replays a chain held in memory.

use crate::chain::{BreakReason, ChainBreak, ChainVerifier, Genesis};
use crate::machine::Ledger;
use crate::pb::Block;
use crate::store::MemStore;

/// Replays a chain block by block from genesis.
pub struct Replayer {
    ledger: Ledger,
    store: MemStore,
    verifier: ChainVerifier,
}

impl Replayer {
    /// A replayer at genesis.
    pub fn new(genesis: &Genesis) -> Self {
        let ledger = Ledger::new(genesis.clone());
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        // The link checks first, so a broken link is reported as such rather than as a state
        // mismatch; signatures are left to the re-execution.
        Self { ledger, store, verifier: ChainVerifier::new(genesis, false) }
    }

    /// A replayer that goes on from `store`, a state the caller trusts (its own, say), from the
    /// block after its tip. Signatures are still checked: re-execution checks each against
    /// the keys `store` holds. `None` if `store` has no well-formed tip.
    pub fn resume(genesis: &Genesis, store: MemStore) -> Option<Self> {
        let tip = crate::query::tip(&store).ok()??;
        let verifier = ChainVerifier::links_after(&tip)?;
        Some(Self { ledger: Ledger::new(genesis.clone()), store, verifier })
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.verifier.next_height()
    }

    /// Replays the next block; on a break the replayer must not be fed further.
    pub fn push(&mut self, block: &Block) -> Result<(), ChainBreak> {
        let height = self.verifier.next_height();
        let hash = self.verifier.verify_block(block)?;
        let header = block.header.as_ref().expect("verify_block checked the header");
        let applied = self
            .ledger
            .apply_block(&self.store, header.time_ms, block.txs.clone())
            .map_err(|e| ChainBreak { height, reason: BreakReason::ReplayFailed(e.to_string()) })?;
        let replayed = applied.block.header.as_ref().expect("apply_block builds a header");
        for (index, (ours, theirs)) in applied.block.results.iter().zip(&block.results).enumerate()
        {
            if !crate::chain::same_outcome(ours, theirs) {
                return Err(ChainBreak { height, reason: BreakReason::ResultMismatch { index } });
            }
        }
        if replayed.state_hash != header.state_hash {
            return Err(ChainBreak { height, reason: BreakReason::StateHashMismatch });
        }
        if applied.hash != hash {
            return Err(ChainBreak { height, reason: BreakReason::BlockHashMismatch });
        }
        self.store.commit(&applied.writes);
        Ok(())
    }

    /// The state replayed so far.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    /// The state replayed so far, owned.
    pub fn into_store(self) -> MemStore {
        self.store
    }
}

/// Replays `blocks` (from height 1, in order) and returns the final state, or where the chain
/// first breaks.
pub fn replay_chain<'b>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = &'b Block>,
) -> Result<MemStore, ChainBreak> {
    let mut replayer = Replayer::new(genesis);
    for block in blocks {
        replayer.push(block)?;
    }
    Ok(replayer.into_store())
}
