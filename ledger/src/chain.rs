//! Blocks and the hash chain: genesis, block hashes, Merkle roots, and the verifier that
//! re-checks a chain offline and says where it first breaks.
//!
//! A block hash is SHA-256 of a fixed-width layout of the header, not of its protobuf encoding,
//! so that any implementation in any language can recompute it:
//!
//! ```text
//! "scf-block-v1" | version u32 | height u64 | prev_hash [32] | time_ms u64 | tx_root [32]
//!                | results_hash [32] | state_hash [32] | tx_count u32          (big-endian)
//! ```
//!
//! The transaction root is an RFC 6962 Merkle tree (leaves prefixed with 0x00, inner nodes with
//! 0x01) whose leaves are `SHA-256(tx_hash || SHA-256(signature))`: the transaction hash
//! identifies the transaction, and the signature is bound into the block hash too, so not one
//! byte of a stored transaction can change without changing the block's hash. A party can prove
//! its transaction is in a block with a logarithmic path.

use std::collections::BTreeMap;

use crate::crypto::{self, Hash32, PublicKeyBytes};
use crate::pb::{Block, BlockHeader, TxResult, tx_body::Command};
use crate::tx::DecodedTx;

/// The current block format version. Version 2 hashes the results' stable parts only
/// ([`results_hash`]); version 1 hashed their protobuf encoding, message text included, and is
/// no longer read (the changelog in README.md).
pub const BLOCK_VERSION: u32 = 2;

/// The party id of the registrar, fixed at genesis.
pub const REGISTRAR_ID: &str = "registrar";

/// What every replica of one ledger agrees on before the first block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// The chain id every transaction must carry.
    pub chain_id: String,
    /// The registrar's public key (party id [`REGISTRAR_ID`]).
    pub registrar_public_key: PublicKeyBytes,
    /// Ledger time at genesis; the first block's time is never earlier.
    pub time_ms: u64,
}

impl Genesis {
    /// The hash the first block points back to.
    pub fn hash(&self) -> Hash32 {
        crypto::sha256_parts(&[
            b"scf-genesis-v1",
            &u32::try_from(self.chain_id.len()).expect("chain id is short").to_be_bytes(),
            self.chain_id.as_bytes(),
            &self.registrar_public_key.to_bytes(),
            &self.time_ms.to_be_bytes(),
        ])
    }
}

/// The hash of a header; `None` if a hash field is not 32 bytes (a header this crate never
/// produces, so only a corrupted or forged block has one).
pub fn header_hash(header: &BlockHeader) -> Option<Hash32> {
    let field = |bytes: &[u8]| -> Option<[u8; 32]> { bytes.try_into().ok() };
    let prev_hash = field(&header.prev_hash)?;
    let tx_root = field(&header.tx_root)?;
    let results_hash = field(&header.results_hash)?;
    let state_hash = field(&header.state_hash)?;
    Some(crypto::sha256_parts(&[
        b"scf-block-v1",
        &header.version.to_be_bytes(),
        &header.height.to_be_bytes(),
        &prev_hash,
        &header.time_ms.to_be_bytes(),
        &tx_root,
        &results_hash,
        &state_hash,
        &header.tx_count.to_be_bytes(),
    ]))
}

/// The Merkle leaves of a block's transactions: `SHA-256(tx_hash || SHA-256(signature))` each.
pub fn tx_leaves(txs: &[crate::pb::SignedTx]) -> Vec<Hash32> {
    txs.iter()
        .map(|tx| crypto::sha256_parts(&[&crate::tx::tx_hash(tx), &crypto::sha256(&tx.signature)]))
        .collect()
}

/// RFC 6962 Merkle tree hash of `leaves` (see [`tx_leaves`]).
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    match leaves {
        [] => crypto::sha256(b""),
        [leaf] => crypto::sha256_parts(&[&[0u8], leaf]),
        _ => {
            // The left subtree holds the largest power of two strictly below the count.
            let split = leaves.len().next_power_of_two() / 2;
            let left = merkle_root(&leaves[..split]);
            let right = merkle_root(&leaves[split..]);
            crypto::sha256_parts(&[&[1u8], &left, &right])
        }
    }
}

/// SHA-256 over the stable parts of the results, in transaction order: which transaction, whether
/// it applied, its reject code and the ids it created. The reject message is left out: it is
/// text for people, and an edit to it must not break the replay of existing chains.
///
/// ```text
/// "scf-results-v2" | count u32 | for each result:
///     len u32 | tx_hash | applied u8 | len u32 | reject_code | count u32 | (len u32 | id)...
/// ```
/// (big-endian; every variable field is length-prefixed, so no two result lists share bytes).
pub fn results_hash(results: &[TxResult]) -> Hash32 {
    use sha2::{Digest, Sha256};
    fn count(hasher: &mut Sha256, n: usize) {
        hasher.update(u32::try_from(n).expect("results are small").to_be_bytes());
    }
    fn bytes(hasher: &mut Sha256, field: &[u8]) {
        count(hasher, field.len());
        hasher.update(field);
    }
    let mut hasher = Sha256::new();
    hasher.update(b"scf-results-v2");
    count(&mut hasher, results.len());
    for result in results {
        bytes(&mut hasher, &result.tx_hash);
        hasher.update([u8::from(result.applied)]);
        bytes(&mut hasher, result.reject_code.as_bytes());
        count(&mut hasher, result.created_ids.len());
        for id in &result.created_ids {
            bytes(&mut hasher, id.as_bytes());
        }
    }
    hasher.finalize().into()
}

/// Whether two results say the same: every part [`results_hash`] covers, the message aside.
pub fn same_outcome(a: &TxResult, b: &TxResult) -> bool {
    a.tx_hash == b.tx_hash
        && a.applied == b.applied
        && a.reject_code == b.reject_code
        && a.created_ids == b.created_ids
}

/// Where and why a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain breaks at height {height}: {reason}")]
pub struct ChainBreak {
    /// The first height that does not verify.
    pub height: u64,
    /// Why.
    pub reason: BreakReason,
}

/// The ways a block can fail verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    /// The block has no header, or a hash field is not 32 bytes.
    #[error("malformed header")]
    MalformedHeader,
    /// An unknown block format version.
    #[error("unknown block version {0}")]
    UnknownVersion(u32),
    /// The height is not the one after the previous block.
    #[error("expected height {expected}, found {found}")]
    HeightGap {
        /// The height that should come next.
        expected: u64,
        /// The height found.
        found: u64,
    },
    /// `prev_hash` is not the previous block's hash.
    #[error("prev_hash does not match the previous block")]
    PrevHashMismatch,
    /// Ledger time went backwards.
    #[error("time {found} ms is before the previous block's {previous} ms")]
    TimeWentBackwards {
        /// The previous block's time.
        previous: u64,
        /// This block's time.
        found: u64,
    },
    /// Transaction and result counts disagree with each other or with the header.
    #[error("header counts {header} transactions, block has {txs} and {results} results")]
    CountMismatch {
        /// `tx_count`.
        header: u32,
        /// Transactions present.
        txs: usize,
        /// Results present.
        results: usize,
    },
    /// A result names another transaction's hash.
    #[error("result {index} does not belong to transaction {index}")]
    ResultHashMismatch {
        /// Position in the block.
        index: usize,
    },
    /// The Merkle root does not match the transactions.
    #[error("tx_root does not match the transactions")]
    TxRootMismatch,
    /// The results hash does not match the results.
    #[error("results_hash does not match the results")]
    ResultsHashMismatch,
    /// The block hash does not match the one expected (by the caller or a replay).
    #[error("block hash does not match")]
    BlockHashMismatch,
    /// Replaying the transactions gives another state hash.
    #[error("state_hash does not match a replay of the transactions")]
    StateHashMismatch,
    /// The block could not be replayed at all (too many transactions for one block).
    #[error("replay failed: {0}")]
    ReplayFailed(String),
    /// Replaying the transactions gives other results.
    #[error("result {index} does not match a replay of the transactions")]
    ResultMismatch {
        /// Position in the block.
        index: usize,
    },
    /// An applied transaction's signature does not verify against its signer's key.
    #[error("transaction {index} is marked applied but its signature does not verify")]
    SignatureInvalid {
        /// Position in the block.
        index: usize,
    },
    /// A transaction rejected for a bad signature has a signature that verifies.
    #[error("transaction {index} is marked bad_signature but its signature verifies")]
    FalseSignatureRejection {
        /// Position in the block.
        index: usize,
    },
}

/// Re-verifies blocks one after another, from genesis: heights, hash links, time, Merkle roots,
/// results hashes and, when asked, every signature.
///
/// Signatures are checked against the key each signer had at that point of the chain, which the
/// verifier tracks from applied `RegisterParty` (signed by the registrar, for a new id) and
/// `RotateKey` (by a known party) transactions; it needs no state beyond that.
///
/// What this does not prove: that the `applied` flags and codes are the ones the rules give. A
/// forger who controls the block producer can mark a rejected transaction applied and recompute
/// every hash; only re-executing the chain ([`crate::replay_chain`]) catches that, and the state
/// hash can only be checked that way too. Observers and audits must replay.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_height: u64,
    prev_hash: Hash32,
    prev_time_ms: u64,
    check_signatures: bool,
    /// The current key of every party, as of the last verified block.
    keys: BTreeMap<String, PublicKeyBytes>,
}

impl ChainVerifier {
    /// A verifier positioned before block 1.
    pub fn new(genesis: &Genesis, check_signatures: bool) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(REGISTRAR_ID.to_owned(), genesis.registrar_public_key);
        Self {
            next_height: 1,
            prev_hash: genesis.hash(),
            prev_time_ms: genesis.time_ms,
            check_signatures,
            keys,
        }
    }

    /// A verifier positioned after `tip`, checking links only (heights, hashes, time, counts,
    /// roots, results hash): it has not seen the key changes before `tip`, so it checks no
    /// signature. For a replay that goes on from a state it trusts ([`crate::Replayer::resume`]).
    /// `None` if the tip's hash is not 32 bytes.
    pub fn links_after(tip: &crate::pb::ChainTip) -> Option<Self> {
        Some(Self {
            next_height: tip.height + 1,
            prev_hash: tip.last_block_hash.as_slice().try_into().ok()?,
            prev_time_ms: tip.time_ms,
            check_signatures: false,
            keys: BTreeMap::new(),
        })
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.next_height
    }

    /// The hash of the last verified block (the genesis hash before any).
    pub fn last_hash(&self) -> Hash32 {
        self.prev_hash
    }

    /// Verifies the next block and returns its hash.
    pub fn verify_block(&mut self, block: &Block) -> Result<Hash32, ChainBreak> {
        let fail = |reason| ChainBreak { height: self.next_height, reason };
        let header = block.header.as_ref().ok_or_else(|| fail(BreakReason::MalformedHeader))?;
        let hash = header_hash(header).ok_or_else(|| fail(BreakReason::MalformedHeader))?;
        if header.version != BLOCK_VERSION {
            return Err(fail(BreakReason::UnknownVersion(header.version)));
        }
        if header.height != self.next_height {
            return Err(fail(BreakReason::HeightGap {
                expected: self.next_height,
                found: header.height,
            }));
        }
        if header.prev_hash != self.prev_hash {
            return Err(fail(BreakReason::PrevHashMismatch));
        }
        if header.time_ms < self.prev_time_ms {
            return Err(fail(BreakReason::TimeWentBackwards {
                previous: self.prev_time_ms,
                found: header.time_ms,
            }));
        }
        let count_ok = usize::try_from(header.tx_count).is_ok_and(|n| n == block.txs.len())
            && block.txs.len() == block.results.len();
        if !count_ok {
            return Err(fail(BreakReason::CountMismatch {
                header: header.tx_count,
                txs: block.txs.len(),
                results: block.results.len(),
            }));
        }
        for (index, (tx, result)) in block.txs.iter().zip(&block.results).enumerate() {
            if result.tx_hash != crate::tx::tx_hash(tx) {
                return Err(fail(BreakReason::ResultHashMismatch { index }));
            }
        }
        if header.tx_root != merkle_root(&tx_leaves(&block.txs)) {
            return Err(fail(BreakReason::TxRootMismatch));
        }
        if header.results_hash != results_hash(&block.results) {
            return Err(fail(BreakReason::ResultsHashMismatch));
        }
        // Signatures last: they are the expensive part, and key tracking must see every applied
        // transaction of the block in order.
        let mut keys = self.keys.clone();
        for (index, (tx, result)) in block.txs.iter().zip(&block.results).enumerate() {
            let decoded = DecodedTx::from_signed(tx).ok();
            if self.check_signatures {
                check_signature(&keys, decoded.as_ref(), result)
                    .map_err(|reason| fail(reason(index)))?;
            }
            if result.applied {
                if let Some(decoded) = &decoded {
                    track_key(&mut keys, decoded);
                }
            }
        }
        self.keys = keys;
        self.next_height += 1;
        self.prev_hash = hash;
        self.prev_time_ms = header.time_ms;
        Ok(hash)
    }
}

type ReasonAt = fn(usize) -> BreakReason;

fn check_signature(
    keys: &BTreeMap<String, PublicKeyBytes>,
    decoded: Option<&DecodedTx>,
    result: &TxResult,
) -> Result<(), ReasonAt> {
    let verifies = |decoded: &DecodedTx| {
        keys.get(&decoded.body.signer)
            .is_some_and(|key| decoded.signature.verify(&decoded.hash, key).is_ok())
    };
    if result.applied {
        match decoded {
            Some(decoded) if verifies(decoded) => Ok(()),
            _ => Err(|index| BreakReason::SignatureInvalid { index }),
        }
    } else if result.reject_code == "bad_signature" && decoded.is_some_and(verifies) {
        Err(|index| BreakReason::FalseSignatureRejection { index })
    } else {
        Ok(())
    }
}

/// Follows key changes the way the rules allow them, so that a block producer who marks an
/// unauthorised registration as applied does not thereby teach the verifier a new key.
fn track_key(keys: &mut BTreeMap<String, PublicKeyBytes>, decoded: &DecodedTx) {
    match decoded.command() {
        Command::RegisterParty(register)
            if decoded.body.signer == REGISTRAR_ID && !keys.contains_key(&register.party_id) =>
        {
            if let Ok(key) = PublicKeyBytes::parse(&register.public_key) {
                keys.insert(register.party_id.clone(), key);
            }
        }
        Command::RotateKey(rotate) if keys.contains_key(&decoded.body.signer) => {
            if let Ok(key) = PublicKeyBytes::parse(&rotate.new_public_key) {
                keys.insert(decoded.body.signer.clone(), key);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the Merkle root follows RFC 6962 on small trees (checked by hand-built trees).
    #[test]
    fn merkle_shapes() {
        let leaf = |b: u8| [b; 32];
        let h_leaf = |l: &Hash32| crypto::sha256_parts(&[&[0u8], l]);
        let node = |l: &Hash32, r: &Hash32| crypto::sha256_parts(&[&[1u8], l, r]);
        assert_eq!(merkle_root(&[]), crypto::sha256(b""));
        assert_eq!(merkle_root(&[leaf(1)]), h_leaf(&leaf(1)));
        let two = node(&h_leaf(&leaf(1)), &h_leaf(&leaf(2)));
        assert_eq!(merkle_root(&[leaf(1), leaf(2)]), two);
        // Three leaves: the left subtree takes two, the right one.
        let three = node(&two, &h_leaf(&leaf(3)));
        assert_eq!(merkle_root(&[leaf(1), leaf(2), leaf(3)]), three);
        // Order matters.
        assert_ne!(merkle_root(&[leaf(2), leaf(1)]), two);
    }
}
