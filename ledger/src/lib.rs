//! The scf-ledger state machine: supply-chain goods movements and receivable tokens.
//!
//! This crate is the pure core of the ledger. It defines the wire format (`proto/`), signs and
//! verifies transactions, applies batches of them to the state with the rules of the domain
//! contract, builds hash-chained blocks, and answers queries over the state. It never does IO of
//! its own, never reads a clock, never draws a random number and never iterates a hash map: the
//! node (`raft-node`) owns all of that and feeds this crate committed batches with their
//! leader-stamped time.
//!
//! Layout:
//! - [`pb`]: the prost types generated from `proto/scf/v1/ledger.proto`.
//! - [`client`]: a signing identity and one constructor per command, for clients.
//! - [`crypto`]: SHA-256, secp256k1 keys and signatures.
//! - [`money`]: amounts, rates, currencies and the discount formula.
//! - [`tx`]: building, signing and total decoding of transactions.
//! - [`machine`]: [`Ledger::apply_block`], the one entry point that changes state.
//! - [`reject`]: the typed reasons a transaction is rejected.
//! - [`chain`]: genesis, block hashes, Merkle roots and the chain verifier.
//! - [`store`]: the storage trait the state lives behind, and its in-memory twin.
//! - [`query`]: read-only views over the state for the API.
//! - [`replay`]: re-execution of a chain from genesis, the strongest audit.

pub mod chain;
pub mod client;
pub mod crypto;
pub mod machine;
pub mod money;
pub mod query;
pub mod reject;
pub mod replay;
pub mod store;
pub mod supervision;
pub mod tx;

/// Types generated from `proto/scf/v1/ledger.proto`.
// Generated code: its documentation is the .proto file's comments, and its shape is prost's, so
// neither rustdoc's nor clippy's lints are ours to satisfy here.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/scf.v1.rs"));
}

pub use chain::{ChainBreak, ChainVerifier, Genesis};
pub use machine::{AppliedBlock, ApplyError, Ledger, Memos};
pub use reject::RejectReason;
pub use replay::{Replayer, replay_chain};
pub use store::{MemStore, StateStore, StoreError, WriteSet};
