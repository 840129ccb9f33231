//! What the ledger's fuzz targets share: a fixed chain to fuzz against, the layout that turns a
//! fuzz input into a block of signed transactions, and the checks each target makes.
//!
//! The targets (`fuzz_targets/`) are one line each and call [`check_decode`],
//! [`check_decode_then_apply`] and [`check_submission`], so that the seed generator (`examples/seeds.rs`) can run every
//! seed through exactly the same checks before the fuzzer sees it.
//!
//! Invariants: everything here is deterministic. Keys come from fixed seeds, times from fixed
//! constants, and no clock or random number is ever read, so a crashing input reproduces byte for
//! byte on any machine. A failed check is a panic, which libFuzzer reports as a crash.

use std::fmt::Debug;
use std::sync::OnceLock;

use ledger::client::{self, Identity};
use ledger::crypto::sha256;
use ledger::pb::{AccessScope, Block, Role, SignedTx, TxBody, TxResult};
use ledger::tx::{DecodeError, DecodedTx, SIGNED_TX_BYTES_MAX, TX_BODY_BYTES_MAX};
use ledger::{ChainVerifier, Ledger, MemStore, replay_chain};
use prost::Message;
pub use testkit::chain::{DAY_MS, T0_MS, doc};
use testkit::chain::{CAST, Chain, Driver, REGISTRAR, domain_state};

/// The chain id of the fixture chain.
pub const CHAIN_ID: &str = "scf-fuzz";
/// Most candidate transactions taken from one input: enough for transactions of one block to
/// interact (duplicates, a record created then used), few enough that an execution, which also
/// replays the chain from genesis, stays around a millisecond.
pub const FUZZ_BLOCK_TXS_MAX: usize = 16;

/// How many parties the fixture has: the registrar and testkit's cast.
pub const PARTY_COUNT: usize = 1 + CAST.len();

/// The fixture's parties in the order a candidate's party bits index them: the registrar, then
/// testkit's cast.
pub fn parties() -> impl Iterator<Item = (&'static str, Role)> {
    std::iter::once((REGISTRAR, Role::Registrar)).chain(CAST)
}

/// Index of a party in [`parties`], for seeds.
pub fn party_index(id: &str) -> usize {
    parties().position(|(p, _)| p == id).expect("seeds name fixture parties")
}

/// A small chain every `decode_then_apply` input is applied on top of: all parties registered, a
/// credit line, an order with invoiced shipments and an undelivered one, invoices open and
/// accepted, two live tokens (one under an open offer) and an access grant. It is built once per
/// process.
#[derive(Debug)]
pub struct Fixture {
    /// The rules of the fixture chain.
    pub ledger: Ledger,
    /// The state after the setup blocks.
    pub store: MemStore,
    /// The setup blocks, from height 1.
    pub blocks: Vec<Block>,
    /// A signature-checking verifier positioned after the setup blocks (cloned per execution so
    /// the setup's signatures are checked only once).
    pub verifier: ChainVerifier,
    /// The identities of [`parties`], in the same order.
    pub identities: Vec<Identity>,
    /// Ledger time at the tip of the setup chain.
    pub tip_time_ms: u64,
    /// The live token minted from `INV-1` (held by `sup1`, no offer on it).
    pub token_free: String,
    /// The live token minted from `INV-2` (held by `sup1`, under `offer_open`).
    pub token_offered: String,
    /// The open offer on `token_offered` to `bank1`, expiring a day after `T0_MS`.
    pub offer_open: String,
}

impl Fixture {
    /// The identity of a party by id.
    pub fn identity(&self, id: &str) -> &Identity {
        &self.identities[party_index(id)]
    }

    /// Every setup transaction, in chain order.
    pub fn setup_txs(&self) -> impl Iterator<Item = &SignedTx> {
        self.blocks.iter().flat_map(|b| &b.txs)
    }
}

/// The fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

/// Builds the fixture at `T0_MS`, every transaction valid for a minute with a fresh nonce.
fn build_fixture() -> Fixture {
    let mut driver = Driver::new(CHAIN_ID);
    let mut first = driver.cast_registrations();
    let year = T0_MS + 365 * DAY_MS;
    let maturity = T0_MS + 90 * DAY_MS;
    first.push(
        driver.tx("bank1", client::grant_credit_line("L1", "core", "1000000.00", "EUR", year)),
    );
    let lines = [("WIDGET", 100, "1000.00"), ("GADGET", 50, "20.00")];
    first.push(driver.tx("core", client::create_purchase_order("PO-1", "sup1", &lines, "EUR")));
    for (ship, sku, quantity, carrier) in [
        ("SH-1", "WIDGET", 40, "carrier"),
        ("SH-2", "WIDGET", 10, ""),
        ("SH-3", "WIDGET", 10, ""),
        ("SH-4", "GADGET", 10, "carrier"),
    ] {
        let command = client::record_shipment(ship, "PO-1", &[(sku, quantity)], carrier, doc(ship));
        first.push(driver.tx("sup1", command));
    }
    for ship in ["SH-1", "SH-2", "SH-3"] {
        first.push(driver.tx("core", client::confirm_delivery(ship)));
    }
    for (inv, ship, amount) in
        [("INV-1", "SH-1", "40000.00"), ("INV-2", "SH-2", "10000.00"), ("INV-3", "SH-3", "10000")]
    {
        let command = client::issue_invoice(inv, "PO-1", &[ship], amount, maturity, doc(inv));
        first.push(driver.tx("sup1", command));
    }
    first.push(driver.tx("core", client::accept_invoice("INV-1", maturity)));
    first.push(driver.tx("core", client::accept_invoice("INV-2", maturity)));
    let results = setup_block(&mut driver, first);
    let created = |index_from_end: usize| results[results.len() - index_from_end].created_ids[0].clone();
    let (token_free, token_offered) = (created(2), created(1));

    let second = vec![
        driver.tx("sup1", client::offer_token(&token_offered, "bank1", "0.05", T0_MS + DAY_MS)),
        driver.tx("sup1", client::grant_access("bank1", AccessScope::Trade, year)),
    ];
    let offer_open = setup_block(&mut driver, second)[0].created_ids[0].clone();

    let identities = parties().map(|(id, _)| driver.identity(id).clone()).collect();
    let Chain { ledger, store, blocks, .. } = driver.chain;
    let mut verifier = ChainVerifier::new(ledger.genesis(), true);
    for block in &blocks {
        verifier.verify_block(block).expect("the setup chain verifies");
    }
    Fixture {
        ledger,
        store,
        blocks,
        verifier,
        identities,
        tip_time_ms: T0_MS,
        token_free,
        token_offered,
        offer_open,
    }
}

/// Applies a setup block at `T0_MS` and insists every transaction applied: the fixture is only
/// useful if it is the state its documentation describes.
fn setup_block(driver: &mut Driver, txs: Vec<SignedTx>) -> Vec<TxResult> {
    let results = driver.block(txs);
    for result in &results {
        assert!(result.applied, "setup transaction rejected: {}", result.reject_message);
    }
    results
}

// ----- the input layout of `decode_then_apply` -----

/// One candidate transaction of a `decode_then_apply` input. On the wire each is a chunk
/// `tag: u8, len: u16 little-endian, payload: [u8; len]` (a short payload is cut at the end of the
/// input). The tag's low two bits pick the kind, bits 2 to 4 the party, bit 5 a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// Kind 0: the payload is an encoded `SignedTx` envelope, submitted as it decodes (a payload
    /// that does not decode is no transaction at all and is dropped, as the node would).
    Envelope(Vec<u8>),
    /// Kind 1: the payload is a `TxBody`; its chain id and signer are set to the fixture's and
    /// the party's, its `valid_until_ms` to a minute after ledger time unless `keep_valid_until`,
    /// and it is re-encoded and signed with the party's real key. This is how the fuzzer reaches
    /// the command rules. A payload that is not a `TxBody` is signed as it is.
    Signed {
        /// Index into [`parties`].
        party: usize,
        /// Leave `valid_until_ms` as the payload has it (tag bit 5).
        keep_valid_until: bool,
        /// The body bytes.
        body: Vec<u8>,
    },
    /// Kind 2: the payload bytes are the body, signed unchanged with the party's key: wrong
    /// chains, unknown or mismatched signers and expired bodies come from here.
    SignedAsIs {
        /// Index into [`parties`].
        party: usize,
        /// The body bytes.
        body: Vec<u8>,
    },
    /// Kind 3: a repeat. An even byte resubmits an earlier candidate of this block (its half,
    /// modulo their number); an odd byte resubmits a setup transaction. Replay protection lives
    /// here.
    Repeat(u8),
}

const KIND_ENVELOPE: u8 = 0;
const KIND_SIGNED: u8 = 1;
const KIND_SIGNED_AS_IS: u8 = 2;
const KIND_REPEAT: u8 = 3;
const KEEP_VALID_UNTIL: u8 = 0x20;

/// The proposed block time a time byte stands for: below 128, minutes after a second before the
/// tip (so byte 0 also checks that an earlier time is raised to the tip's); from 128 on, whole
/// days after the tip, far enough to pass the fixture's offer expiry and token maturity.
pub fn proposed_time_ms(tip_time_ms: u64, time_byte: u8) -> u64 {
    if time_byte < 128 {
        tip_time_ms - 1_000 + u64::from(time_byte) * 60_000
    } else {
        tip_time_ms + u64::from(time_byte - 128) * DAY_MS
    }
}

/// Encodes an input for `decode_then_apply` (used by the seed generator).
pub fn encode_input(time_byte: u8, candidates: &[Candidate]) -> Vec<u8> {
    let mut out = vec![time_byte];
    for candidate in candidates {
        let (tag, payload) = match candidate {
            Candidate::Envelope(bytes) => (KIND_ENVELOPE, bytes.clone()),
            Candidate::Signed { party, keep_valid_until, body } => {
                let flag = if *keep_valid_until { KEEP_VALID_UNTIL } else { 0 };
                (KIND_SIGNED | party_bits(*party) | flag, body.clone())
            }
            Candidate::SignedAsIs { party, body } => {
                (KIND_SIGNED_AS_IS | party_bits(*party), body.clone())
            }
            Candidate::Repeat(byte) => (KIND_REPEAT, vec![*byte]),
        };
        let len = u16::try_from(payload.len()).expect("seed payloads are small");
        out.push(tag);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out
}

fn party_bits(party: usize) -> u8 {
    u8::try_from(party % PARTY_COUNT).expect("fewer than 8 parties") << 2
}

/// Splits an input into its time byte and candidates; never fails, whatever the bytes.
pub fn parse_input(data: &[u8]) -> (u8, Vec<Candidate>) {
    let Some((&time_byte, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut candidates = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        if candidates.len() == FUZZ_BLOCK_TXS_MAX {
            break;
        }
        let (len, tail) = match tail {
            [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let (payload, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let party = usize::from((tag >> 2) & 0x07);
        candidates.push(match tag & 0x03 {
            KIND_ENVELOPE => Candidate::Envelope(payload.to_vec()),
            KIND_SIGNED => Candidate::Signed {
                party,
                keep_valid_until: tag & KEEP_VALID_UNTIL != 0,
                body: payload.to_vec(),
            },
            KIND_SIGNED_AS_IS => Candidate::SignedAsIs { party, body: payload.to_vec() },
            _ => Candidate::Repeat(payload.first().copied().unwrap_or(0)),
        });
    }
    (time_byte, candidates)
}

/// Turns an input into the proposed time and the transactions of one block.
pub fn block_from_input(fixture: &Fixture, data: &[u8]) -> (u64, Vec<SignedTx>) {
    let (time_byte, candidates) = parse_input(data);
    let proposed_ms = proposed_time_ms(fixture.tip_time_ms, time_byte);
    // The ledger raises an earlier proposal to the tip's time; the fix-ups must use the time the
    // ledger will use.
    let now_ms = proposed_ms.max(fixture.tip_time_ms);
    let mut txs: Vec<SignedTx> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let tx = match candidate {
            Candidate::Envelope(bytes) => match SignedTx::decode(bytes.as_slice()) {
                Ok(signed) => signed,
                Err(_) => continue,
            },
            Candidate::Signed { party, keep_valid_until, body } => {
                let identity = &fixture.identities[party];
                match TxBody::decode(body.as_slice()) {
                    Ok(mut decoded) => {
                        decoded.chain_id.clone_from(&identity.chain_id);
                        decoded.signer.clone_from(&identity.party_id);
                        if !keep_valid_until {
                            decoded.valid_until_ms = now_ms + 60_000;
                        }
                        ledger::tx::sign(&decoded, &identity.key)
                    }
                    Err(_) => sign_raw(identity, body),
                }
            }
            Candidate::SignedAsIs { party, body } => sign_raw(&fixture.identities[party], body),
            Candidate::Repeat(byte) => {
                let index = usize::from(byte >> 1);
                if byte & 1 == 0 && !txs.is_empty() {
                    txs[index % txs.len()].clone()
                } else {
                    let setup: Vec<&SignedTx> = fixture.setup_txs().collect();
                    setup[index % setup.len()].clone()
                }
            }
        };
        txs.push(tx);
    }
    (proposed_ms, txs)
}

fn sign_raw(identity: &Identity, body: Vec<u8>) -> SignedTx {
    let signature = identity.key.sign(&body).to_bytes().to_vec();
    SignedTx { body, signature }
}

// ----- the checks -----

/// The `decode` target: arbitrary bytes at every decoder of the wire format.
///
/// `DecodedTx::decode` must give a value or a typed error and agree with decoding the envelope
/// first; an accepted transaction must re-encode to itself. Every prost message that decodes must
/// re-encode canonically: decoding the canonical bytes gives the same message and re-encoding
/// them gives the same bytes (byte equality with the *input* is not a property: prost drops
/// unknown fields and accepts non-minimal varints). A decoded `Block` is also handed to the
/// chain verifier and to a replay from genesis, which must answer with a `ChainBreak`, never a
/// panic.
pub fn check_decode(data: &[u8]) {
    check_decoded_tx(data);
    round_trip::<SignedTx>(data);
    round_trip::<TxBody>(data);
    if let Some(block) = round_trip::<Block>(data) {
        let fixture = fixture();
        let mut verifier = ChainVerifier::new(fixture.ledger.genesis(), true);
        let _ = verifier.verify_block(&block);
        let mut after_setup = fixture.verifier.clone();
        let _ = after_setup.verify_block(&block);
        let _ = replay_chain(fixture.ledger.genesis(), [&block]);
    }
}

fn check_decoded_tx(data: &[u8]) {
    let outcome = DecodedTx::decode(data);
    if data.len() > SIGNED_TX_BYTES_MAX {
        assert_eq!(outcome, Err(DecodeError::TooLarge(data.len())));
        return;
    }
    let envelope = SignedTx::decode(data);
    match &envelope {
        Ok(signed) => assert_eq!(outcome, DecodedTx::from_signed(signed)),
        Err(_) => assert!(matches!(outcome, Err(DecodeError::Envelope(_))), "{outcome:?}"),
    }
    match outcome {
        Ok(decoded) => {
            let signed = envelope.expect("an accepted transaction has an envelope");
            assert_eq!(decoded.hash, sha256(&signed.body));
            assert_eq!(decoded.signature.to_bytes().as_slice(), signed.signature.as_slice());
            assert!(decoded.body.command.is_some());
            // Re-encode from the decoded parts: the body bytes are carried, never re-encoded.
            let rebuilt = SignedTx {
                body: signed.body.clone(),
                signature: decoded.signature.to_bytes().to_vec(),
            };
            assert_eq!(DecodedTx::decode(&rebuilt.encode_to_vec()).as_ref(), Ok(&decoded));
        }
        Err(DecodeError::TooLarge(len)) => assert!(len > TX_BODY_BYTES_MAX),
        Err(_) => {}
    }
}

/// Decodes `data` as `M`; if it decodes, checks the canonical re-encoding and returns it.
fn round_trip<M: Message + Default + PartialEq + Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let canonical = message.encode_to_vec();
    assert_eq!(canonical.len(), message.encoded_len());
    let again = M::decode(canonical.as_slice()).expect("a canonical encoding decodes");
    assert_eq!(again, message);
    assert_eq!(again.encode_to_vec(), canonical);
    Some(message)
}

/// The `decode_then_apply` target: the input becomes one block applied on the fixture chain.
///
/// Checks that applying never fails on a memory store and never panics; that there is one result
/// per transaction, naming its hash, typed (a rejection has a code and created nothing); that the
/// block survives its own encoding, verifies with signatures after the setup chain, and replays
/// from genesis to the same state; and that the rejected transactions changed nothing: applying
/// only the accepted ones gives the same domain state and the same results for them. Returns the
/// results for the seed generator's report.
pub fn check_decode_then_apply(data: &[u8]) -> Vec<TxResult> {
    let fixture = fixture();
    let (proposed_ms, txs) = block_from_input(fixture, data);
    let applied = fixture
        .ledger
        .apply_block(&fixture.store, proposed_ms, txs.clone())
        .expect("a memory store never fails and a fuzz block is far below the size limit");
    let results = &applied.block.results;
    assert_eq!(results.len(), txs.len(), "one result per transaction");
    for (tx, result) in txs.iter().zip(results) {
        assert_eq!(result.tx_hash, sha256(&tx.body));
        if result.applied {
            assert!(result.reject_code.is_empty() && result.reject_message.is_empty());
            assert!(DecodedTx::from_signed(tx).is_ok(), "an applied transaction decodes");
        } else {
            assert!(
                !result.reject_code.is_empty()
                    && result.reject_code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "reject code {:?}",
                result.reject_code
            );
            assert!(result.created_ids.is_empty(), "a rejection created {:?}", result.created_ids);
        }
    }

    let encoded = applied.block.encode_to_vec();
    let block = Block::decode(encoded.as_slice()).expect("an applied block decodes");
    assert_eq!(block, applied.block);
    let hash = fixture.verifier.clone().verify_block(&block).expect("the block verifies");
    assert_eq!(hash, applied.hash);

    let mut after = fixture.store.clone();
    after.commit(&applied.writes);
    let replayed = replay_chain(fixture.ledger.genesis(), fixture.blocks.iter().chain([&block]))
        .expect("the chain replays from genesis");
    assert_eq!(replayed.entries(), after.entries(), "a replay reaches the same state");

    let accepted: Vec<SignedTx> =
        txs.iter().zip(results).filter(|(_, r)| r.applied).map(|(tx, _)| tx.clone()).collect();
    if accepted.len() == txs.len() {
        // Nothing was rejected: the block of accepted transactions is this block.
        return applied.block.results;
    }
    let alone = fixture
        .ledger
        .apply_block(&fixture.store, proposed_ms, accepted)
        .expect("a memory store never fails");
    let accepted_results: Vec<&TxResult> = results.iter().filter(|r| r.applied).collect();
    assert_eq!(alone.block.results.iter().collect::<Vec<_>>(), accepted_results);
    let mut after_alone = fixture.store.clone();
    after_alone.commit(&alone.writes);
    assert_eq!(domain_state(&after), domain_state(&after_alone), "a rejection changed the state");
    applied.block.results
}

/// The node's parser of submission bodies, compiled from the API's own source file, so that
/// what is fuzzed is what `scf-node` runs without building the node (RocksDB) here.
#[path = "../../../api/src/wire.rs"]
pub mod wire;

/// Most items in a batch for the fuzzed parser (the node's is configurable).
pub const SUBMISSION_BATCH_MAX: usize = 16;

/// Checks the submission parser on `data` (the body of `POST /v1/transactions`): it does not
/// panic; a submission it takes has between one and [`SUBMISSION_BATCH_MAX`] items (one for a
/// lone object); every transaction it parsed re-encodes to an item that parses back to the same
/// transaction; a refusal names a code; and it answers the same bytes the same way twice.
pub fn check_submission(data: &[u8]) {
    let first = wire::parse_submission(data, SUBMISSION_BATCH_MAX);
    match &first {
        Err(error) => assert!(!error.code.is_empty() && !error.message.is_empty()),
        Ok(submission) => {
            assert!((1..=SUBMISSION_BATCH_MAX).contains(&submission.items.len()));
            assert!(submission.batch || submission.items.len() == 1);
            for item in &submission.items {
                match item {
                    Ok(tx) => {
                        let again = wire::parse_item(&wire::item_json(tx));
                        assert_eq!(again.as_ref(), Ok(tx), "a parsed transaction re-encodes");
                    }
                    Err(error) => assert!(!error.code.is_empty() && !error.message.is_empty()),
                }
            }
        }
    }
    let second = wire::parse_submission(data, SUBMISSION_BATCH_MAX);
    assert_eq!(format!("{first:?}"), format!("{second:?}"), "the parser is deterministic");
}
