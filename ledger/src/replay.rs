//! Re-execution of a chain from genesis: the strongest audit a replica or a regulator can run.
//!
//! [`replay_chain`] applies every block's transactions, with the block's own time, to a fresh
//! in-memory state and checks that each block it builds is the block it was given: same results,
//! same state hash, same block hash. It verifies the hash links and every signature as a side
//! effect (the state machine checks signatures against the keys the replayed state holds).

use crate::chain::{BreakReason, ChainBreak, ChainVerifier, Genesis};
use crate::machine::Ledger;
use crate::pb::Block;
use crate::store::MemStore;

/// Replays `blocks` (from height 1, in order) and returns the final state, or where the chain
/// first breaks.
pub fn replay_chain<'b>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = &'b Block>,
) -> Result<MemStore, ChainBreak> {
    let ledger = Ledger::new(genesis.clone());
    let mut store = MemStore::new();
    store.commit(&ledger.genesis_writes());
    // The link checks first, so a broken link is reported as such rather than as a state
    // mismatch; signatures are left to the re-execution.
    let mut verifier = ChainVerifier::new(genesis, false);
    for block in blocks {
        let height = verifier.next_height();
        let hash = verifier.verify_block(block)?;
        let header = block.header.as_ref().expect("verify_block checked the header");
        let applied = ledger
            .apply_block(&store, header.time_ms, block.txs.clone())
            .map_err(|e| ChainBreak { height, reason: BreakReason::ReplayFailed(e.to_string()) })?;
        let replayed = applied.block.header.as_ref().expect("apply_block builds a header");
        for (index, (ours, theirs)) in applied.block.results.iter().zip(&block.results).enumerate()
        {
            if ours != theirs {
                return Err(ChainBreak { height, reason: BreakReason::ResultMismatch { index } });
            }
        }
        if replayed.state_hash != header.state_hash {
            return Err(ChainBreak { height, reason: BreakReason::StateHashMismatch });
        }
        if applied.hash != hash {
            return Err(ChainBreak { height, reason: BreakReason::BlockHashMismatch });
        }
        store.commit(&applied.writes);
    }
    Ok(store)
}
