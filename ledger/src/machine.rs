//! The state machine: one entry point, [`Ledger::apply_block`], turns a batch of signed
//! transactions and the leader-stamped ledger time into a block, one outcome per transaction, and
//! the write set that takes the state from one height to the next.
//!
//! Invariants this module keeps:
//! - It is pure: no clock (time comes in with the batch), no randomness, no IO beyond reads
//!   through [`StateStore`], no iteration over hash maps. The same store and batch always give
//!   the same block, outcomes and write set, byte for byte.
//! - A rejected transaction changes nothing but the block's record of it (and, when its signature
//!   verified, its replay-protection entry, and its entry in the rejection log `idx/reject/`):
//!   every command writes into a per-transaction overlay that is merged only when every rule
//!   passed.
//! - Ledger time never goes backwards: a proposed time earlier than the tip's is raised to it.
//! - Store failures are not outcomes: they abort the whole block with [`ApplyError`].

use std::collections::BTreeMap;

use prost::Message;
use rust_decimal::Decimal;

use crate::chain::{self, BLOCK_VERSION, Genesis, REGISTRAR_ID};
use crate::crypto::{self, Hash32, KeyMemo, PublicKeyBytes, VerifiedMemo};
use crate::money::{self, MoneyError};
use crate::pb::{tx_body::Command, *};
use crate::reject::{RecordKind, RejectReason, role_name};
use crate::store::{StateStore, StoreError, WriteSet, keys};
use crate::tx::DecodedTx;

/// How far ahead of ledger time `valid_until_ms` may be: one hour.
pub const VALID_UNTIL_AHEAD_MS_MAX: u64 = 3_600_000;
/// The latest maturity accepted, counted from ledger time: ten years.
pub const MATURITY_AHEAD_MS_MAX: u64 = 3_650 * money::DAY_MS;
/// Most lines in an order or a shipment.
pub const LINES_MAX: usize = 100;
/// Most shipments one invoice may cover.
pub const INVOICE_SHIPMENTS_MAX: usize = 100;
/// Most shipments recorded against one purchase order.
pub const ORDER_SHIPMENTS_MAX: usize = 1_000;
/// Most unexpired credit lines one bank may grant one obligor. Counted per bank, so that no bank
/// can fill an obligor's record and lock other banks out of lending to it.
pub const BANK_LINES_PER_OBLIGOR_MAX: usize = 16;
/// Largest quantity on one line.
pub const QUANTITY_MAX: u64 = 1_000_000_000;
/// Longest free text (names, reasons, payment references), in bytes.
pub const TEXT_BYTES_MAX: usize = 256;
/// Most transactions in one block.
pub const BLOCK_TXS_MAX: usize = 10_000;

/// Why a block could not be applied at all. Unlike a rejection, this stops the replica.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store has no chain tip: `Ledger::genesis_writes` was never committed to it.
    #[error("the store is not initialised with a genesis")]
    NotInitialised,
    /// More than [`BLOCK_TXS_MAX`] transactions.
    #[error("a block holds at most {BLOCK_TXS_MAX} transactions, got {0}")]
    TooManyTransactions(usize),
}

/// One applied block: what the node persists and what it tells clients.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedBlock {
    /// The block, with every transaction and its result.
    pub block: Block,
    /// Its hash.
    pub hash: Hash32,
    /// The new chain tip.
    pub tip: ChainTip,
    /// Every key the block changes, including the block itself and the tip; the caller commits
    /// it atomically.
    pub writes: WriteSet,
}

/// The ledger's rules for one chain. Holds the genesis and two memos that change no result
/// (parsed public keys, signatures verified ahead of it); all state is in the store.
#[derive(Debug, Clone)]
pub struct Ledger {
    genesis: Genesis,
    memos: Memos,
}

/// What a ledger remembers to save work, never to decide: see [`KeyMemo`] and
/// [`VerifiedMemo`]. Its clones share the memos.
#[derive(Debug, Clone, Default)]
pub struct Memos {
    /// Parsed signer keys.
    pub keys: KeyMemo,
    /// Signatures a node's API verified before proposing their transactions.
    pub verified: VerifiedMemo,
}

impl Ledger {
    /// The rules for the chain that `genesis` starts.
    pub fn new(genesis: Genesis) -> Self {
        Self { genesis, memos: Memos::default() }
    }

    /// The memos this ledger uses (its clones share them), for callers that check signatures
    /// ahead of the ledger, as a node's API does.
    pub fn memos(&self) -> &Memos {
        &self.memos
    }

    /// The genesis this ledger was built from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The writes that initialise an empty store: the registrar party and the tip at height 0.
    pub fn genesis_writes(&self) -> WriteSet {
        let mut writes = WriteSet::default();
        let registrar = Party {
            party_id: REGISTRAR_ID.to_owned(),
            name: "Registrar".to_owned(),
            role: Role::Registrar as i32,
            public_key: self.genesis.registrar_public_key.to_bytes().to_vec(),
            frozen: false,
            registered_at_ms: self.genesis.time_ms,
        };
        writes.put(keys::party(REGISTRAR_ID), registrar.encode_to_vec());
        let genesis_hash = self.genesis.hash();
        let tip = ChainTip {
            height: 0,
            last_block_hash: genesis_hash.to_vec(),
            state_hash: crypto::sha256_parts(&[&genesis_hash, &writes.state_digest()]).to_vec(),
            time_ms: self.genesis.time_ms,
        };
        writes.put(keys::TIP.to_vec(), tip.encode_to_vec());
        writes
    }

    /// Applies a batch as the next block. `proposed_time_ms` is the leader's stamp; it is raised
    /// to the tip's time if earlier, so ledger time never goes backwards.
    pub fn apply_block<S: StateStore + ?Sized>(
        &self,
        store: &S,
        proposed_time_ms: u64,
        txs: Vec<SignedTx>,
    ) -> Result<AppliedBlock, ApplyError> {
        if txs.len() > BLOCK_TXS_MAX {
            return Err(ApplyError::TooManyTransactions(txs.len()));
        }
        let tip: ChainTip = read(store, keys::TIP)?.ok_or(ApplyError::NotInitialised)?;
        let now_ms = proposed_time_ms.max(tip.time_ms);
        let height = tip.height + 1;

        let mut overlay = Overlay::new(store);
        let mut results = Vec::with_capacity(txs.len());
        for (index, signed) in txs.iter().enumerate() {
            let index = u32::try_from(index).expect("BLOCK_TXS_MAX fits in u32");
            let result = self.apply_tx(&mut overlay, now_ms, height, index, signed)?;
            results.push(result);
        }

        let mut writes = overlay.into_writes();
        let prev_state_hash: Hash32 = tip
            .state_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(keys::TIP, "state hash is not 32 bytes"))?;
        let state_hash = crypto::sha256_parts(&[&prev_state_hash, &writes.state_digest()]);
        let header = BlockHeader {
            version: BLOCK_VERSION,
            height,
            prev_hash: tip.last_block_hash.clone(),
            time_ms: now_ms,
            tx_root: chain::merkle_root(&chain::tx_leaves(&txs)).to_vec(),
            results_hash: chain::results_hash(&results).to_vec(),
            state_hash: state_hash.to_vec(),
            tx_count: u32::try_from(txs.len()).expect("BLOCK_TXS_MAX fits in u32"),
        };
        let hash = chain::header_hash(&header)
            .ok_or_else(|| corrupt(keys::TIP, "last block hash is not 32 bytes"))?;
        let block = Block { header: Some(header), txs, results };
        let tip = ChainTip {
            height,
            last_block_hash: hash.to_vec(),
            state_hash: state_hash.to_vec(),
            time_ms: now_ms,
        };
        writes.put(keys::block(height), block.encode_to_vec());
        writes.put(keys::TIP.to_vec(), tip.encode_to_vec());
        Ok(AppliedBlock { block, hash, tip, writes })
    }

    /// Applies one transaction inside the block's overlay and returns its result.
    fn apply_tx<S: StateStore + ?Sized>(
        &self,
        overlay: &mut Overlay<'_, S>,
        now_ms: u64,
        height: u64,
        index: u32,
        signed: &SignedTx,
    ) -> Result<TxResult, StoreError> {
        let tx_hash = crate::tx::tx_hash(signed);
        let mut ctx = Ctx { overlay, now_ms, tx_hash, created: Vec::new(), authenticated: false };
        let outcome = ctx.run(&self.genesis, &self.memos, signed);
        let outcome = match outcome {
            Ok(()) => Ok(()),
            Err(Fail::Reject(reason)) => Err(reason),
            Err(Fail::Store(error)) => return Err(error),
        };
        let Ctx { overlay, authenticated, created, .. } = ctx;
        if outcome.is_err() {
            overlay.discard_tx();
        }
        // The replay-protection entry is written only for transactions whose signature verified:
        // otherwise anyone could burn a victim's transaction hash by submitting its body with a
        // broken signature ahead of it.
        if authenticated {
            let location = TxLocation { height, index, applied: outcome.is_ok() };
            overlay.put(keys::transaction(&tx_hash), &location);
        }
        if let Err(reason) = &outcome {
            // The supervision log: who attempted what. The body is decoded again only for the
            // rare rejected transaction; one that does not decode names no one.
            let body = TxBody::decode(signed.body.as_slice()).ok();
            let kind = body.as_ref().and_then(|b| b.command.as_ref()).map(crate::tx::command_name);
            let rejected = RejectedTx {
                height,
                index,
                time_ms: now_ms,
                tx_hash: tx_hash.to_vec(),
                signer: body.map(|b| b.signer).unwrap_or_default(),
                kind: kind.unwrap_or_default().to_owned(),
                code: reason.code().to_owned(),
                message: reason.to_string(),
                signature_verified: authenticated,
            };
            overlay.put(keys::rejection(height, index), &rejected);
        }
        overlay.commit_tx();
        Ok(match outcome {
            Ok(()) => TxResult {
                tx_hash: tx_hash.to_vec(),
                applied: true,
                reject_code: String::new(),
                reject_message: String::new(),
                created_ids: created,
            },
            Err(reason) => TxResult {
                tx_hash: tx_hash.to_vec(),
                applied: false,
                reject_code: reason.code().to_owned(),
                reject_message: reason.to_string(),
                created_ids: Vec::new(),
            },
        })
    }
}

/// Reads and decodes one record from a store.
pub(crate) fn read<M: Message + Default, S: StateStore + ?Sized>(
    store: &S,
    key: &[u8],
) -> Result<Option<M>, StoreError> {
    store
        .get(key)?
        .map(|bytes| M::decode(bytes.as_slice()).map_err(|e| corrupt(key, &e.to_string())))
        .transpose()
}

pub(crate) fn corrupt(key: &[u8], detail: &str) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: detail.to_owned(),
    }
}

/// Reads see the transaction's own writes, then the block's, then the committed store.
struct Overlay<'s, S: ?Sized> {
    base: &'s S,
    block: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    tx: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'s, S: StateStore + ?Sized> Overlay<'s, S> {
    fn new(base: &'s S) -> Self {
        Self { base, block: BTreeMap::new(), tx: BTreeMap::new() }
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.tx.get(key).or_else(|| self.block.get(key)) {
            return Ok(value.clone());
        }
        self.base.get(key)
    }

    fn get<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>, StoreError> {
        self.get_raw(key)?
            .map(|bytes| M::decode(bytes.as_slice()).map_err(|e| corrupt(key, &e.to_string())))
            .transpose()
    }

    fn put<M: Message>(&mut self, key: Vec<u8>, value: &M) {
        self.tx.insert(key, Some(value.encode_to_vec()));
    }

    fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.tx.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.tx.insert(key, None);
    }

    fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    fn discard_tx(&mut self) {
        self.tx.clear();
    }

    fn into_writes(self) -> WriteSet {
        debug_assert!(self.tx.is_empty(), "every transaction is committed or discarded");
        WriteSet { changes: self.block }
    }
}

/// A rule either rejects the transaction or hits a store failure; `?` carries both.
enum Fail {
    Reject(RejectReason),
    Store(StoreError),
}

impl From<RejectReason> for Fail {
    fn from(reason: RejectReason) -> Self {
        Fail::Reject(reason)
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

type Rule<T = ()> = Result<T, Fail>;

fn reject<T>(reason: RejectReason) -> Rule<T> {
    Err(Fail::Reject(reason))
}

/// Only `party_id` may sign this command on the record `kind` `id`, whose parties are
/// `parties`: `who` says who may, for the rejection. The rejection is `Unauthorized` only for a
/// signer that knows the record anyway (one of its parties, or a regulator); anyone else is
/// told it is `NotFound`, exactly as if it did not exist, so that a stranger cannot learn
/// through writes which ids are taken.
fn require_signer(
    signer: &Party,
    party_id: &str,
    record: (RecordKind, &str, &[&str]),
    who: &str,
) -> Rule {
    if signer.party_id == party_id {
        return Ok(());
    }
    let (kind, id, parties) = record;
    let knows =
        parties.contains(&signer.party_id.as_str()) || signer.role == Role::Regulator as i32;
    if knows { reject(RejectReason::Unauthorized(who.into())) } else { reject(not_found(kind, id)) }
}

/// Only an open offer may be withdrawn or discounted.
fn require_open(offer: &Offer) -> Rule {
    if offer.status != OfferStatus::Open as i32 {
        return reject(RejectReason::OfferNotOpen(offer.offer_id.clone()));
    }
    Ok(())
}

/// Only a live token may move or settle (not retired by a split, not settled).
fn require_live(token: &ReceivableToken) -> Rule {
    if token.status != TokenStatus::Live as i32 {
        return reject(RejectReason::TokenNotLive(token.token_id.clone()));
    }
    Ok(())
}

/// What one transaction's rules work with.
struct Ctx<'o, 's, S: ?Sized> {
    overlay: &'o mut Overlay<'s, S>,
    now_ms: u64,
    tx_hash: Hash32,
    /// Ids the transaction created, reported in its result.
    created: Vec<String>,
    /// Whether the signature verified against the signer's current key.
    authenticated: bool,
}

impl<S: StateStore + ?Sized> Ctx<'_, '_, S> {
    /// The envelope checks, then the command's rules.
    fn run(&mut self, genesis: &Genesis, memos: &Memos, signed: &SignedTx) -> Rule {
        let decoded =
            DecodedTx::from_signed(signed).map_err(|e| RejectReason::Malformed(e.ledger_text()))?;
        let body = &decoded.body;
        if body.chain_id != genesis.chain_id {
            return reject(RejectReason::WrongChain {
                expected: genesis.chain_id.clone(),
                got: body.chain_id.clone(),
            });
        }
        if let Some(location) = self.overlay.get::<TxLocation>(&keys::transaction(&decoded.hash))? {
            return reject(RejectReason::Duplicate { height: location.height });
        }
        let signer = self
            .find_party(&body.signer)?
            .ok_or_else(|| RejectReason::UnknownSigner(body.signer.clone()))?;
        let key = memos
            .keys
            .parse(&signer.public_key)
            .map_err(|_| corrupt(&keys::party(&signer.party_id), "stored public key is invalid"))?;
        if memos.verified.verify_again(&decoded.hash, &decoded.signature, &key).is_err() {
            return reject(RejectReason::BadSignature);
        }
        self.authenticated = true;
        if signer.frozen {
            return reject(RejectReason::SignerFrozen(signer.party_id));
        }
        if body.valid_until_ms < self.now_ms {
            return reject(RejectReason::Expired {
                valid_until_ms: body.valid_until_ms,
                now_ms: self.now_ms,
            });
        }
        if body.valid_until_ms > self.now_ms.saturating_add(VALID_UNTIL_AHEAD_MS_MAX) {
            return reject(RejectReason::ValidUntilTooFar {
                valid_until_ms: body.valid_until_ms,
                now_ms: self.now_ms,
            });
        }
        match decoded.command() {
            Command::RegisterParty(c) => self.register_party(&signer, c),
            Command::RotateKey(c) => self.rotate_key(signer, c),
            Command::SetFrozen(c) => self.set_frozen(&signer, c),
            Command::GrantCreditLine(c) => self.grant_credit_line(&signer, c),
            Command::CreatePurchaseOrder(c) => self.create_purchase_order(&signer, c),
            Command::RecordShipment(c) => self.record_shipment(&signer, c),
            Command::ConfirmDelivery(c) => self.confirm_delivery(&signer, c),
            Command::IssueInvoice(c) => self.issue_invoice(&signer, c),
            Command::AcceptInvoice(c) => self.accept_invoice(&signer, c),
            Command::RejectInvoice(c) => self.reject_invoice(&signer, c),
            Command::TransferToken(c) => self.transfer_token(&signer, c),
            Command::OfferToken(c) => self.offer_token(&signer, c),
            Command::WithdrawOffer(c) => self.withdraw_offer(&signer, c),
            Command::DiscountToken(c) => self.discount_token(&signer, c),
            Command::SettleToken(c) => self.settle_token(&signer, c),
            Command::GrantAccess(c) => self.grant_access(&signer, c),
            Command::RevokeAccess(c) => self.revoke_access(&signer, c),
        }
    }

    // ----- reading records -----

    fn find_party(&self, id: &str) -> Rule<Option<Party>> {
        // An id that could not be a key is simply not found; it never reaches the store.
        if check_id("party_id", id).is_err() {
            return Ok(None);
        }
        Ok(self.overlay.get(&keys::party(id))?)
    }

    /// A party that must exist and not be frozen.
    fn unfrozen_party(&self, id: &str) -> Rule<Party> {
        let party = self.find_party(id)?.ok_or_else(|| not_found(RecordKind::Party, id))?;
        if party.frozen {
            return reject(RejectReason::PartyFrozen(party.party_id));
        }
        Ok(party)
    }

    /// A frozen holder's tokens cannot move, by its own hand or anyone else's.
    fn require_holder_unfrozen(&self, token: &ReceivableToken) -> Rule {
        self.unfrozen_party(&token.holder)?;
        Ok(())
    }

    /// A party named by the command: it must exist, have one of `roles`, and not be frozen.
    fn counterparty(&self, field: &'static str, id: &str, roles: &[Role]) -> Rule<Party> {
        check_id(field, id)?;
        let party = self.find_party(id)?.ok_or_else(|| not_found(RecordKind::Party, id))?;
        require_role(&party, roles)?;
        if party.frozen {
            return reject(RejectReason::PartyFrozen(party.party_id));
        }
        Ok(party)
    }

    fn load<M: Message + Default>(
        &self,
        kind: RecordKind,
        field: &'static str,
        id: &str,
        key: Vec<u8>,
    ) -> Rule<M> {
        check_id(field, id)?;
        self.overlay.get(&key)?.ok_or_else(|| Fail::Reject(not_found(kind, id)))
    }

    fn purchase_order(&self, id: &str) -> Rule<PurchaseOrder> {
        self.load(RecordKind::PurchaseOrder, "po_id", id, keys::purchase_order(id))
    }

    fn shipment(&self, id: &str) -> Rule<Shipment> {
        self.load(RecordKind::Shipment, "shipment_id", id, keys::shipment(id))
    }

    fn invoice(&self, id: &str) -> Rule<Invoice> {
        self.load(RecordKind::Invoice, "invoice_id", id, keys::invoice(id))
    }

    fn token(&self, id: &str) -> Rule<ReceivableToken> {
        self.load(RecordKind::Token, "token_id", id, keys::token(id))
    }

    fn offer(&self, id: &str) -> Rule<Offer> {
        self.load(RecordKind::Offer, "offer_id", id, keys::offer(id))
    }

    /// Refuses a new record whose key is taken.
    fn must_be_new(&self, kind: RecordKind, field: &'static str, id: &str, key: &[u8]) -> Rule {
        check_id(field, id)?;
        if self.overlay.get_raw(key)?.is_some() {
            return reject(RejectReason::AlreadyExists { kind, id: id.to_owned() });
        }
        Ok(())
    }

    fn check_document_unused(&self, hash: &[u8]) -> Rule {
        if hash.len() != 32 {
            return reject(RejectReason::InvalidDocumentHash);
        }
        if self.overlay.get_raw(&keys::document(hash))?.is_some() {
            return reject(RejectReason::DocumentHashUsed);
        }
        Ok(())
    }

    /// A fresh id for a record the ledger creates (tokens, offers), derived from this
    /// transaction's hash so every replica derives the same one.
    fn derive_id(
        &mut self,
        prefix: &str,
        kind: RecordKind,
        key: fn(&str) -> Vec<u8>,
    ) -> Rule<String> {
        let n = u8::try_from(self.created.len()).expect("a transaction creates at most two ids");
        let id = crate::tx::derived_id(prefix, &self.tx_hash, n);
        // A 128-bit collision is not expected in the life of the universe; if it ever happened the
        // transaction is refused rather than overwriting a record.
        if self.overlay.get_raw(&key(&id))?.is_some() {
            return reject(RejectReason::AlreadyExists { kind, id });
        }
        self.created.push(id.clone());
        Ok(id)
    }

    // ----- parties -----

    fn register_party(&mut self, signer: &Party, c: &RegisterParty) -> Rule {
        require_role(signer, &[Role::Registrar])?;
        self.must_be_new(RecordKind::Party, "party_id", &c.party_id, &keys::party(&c.party_id))?;
        check_text("name", &c.name)?;
        let role = Role::try_from(c.role)
            .map_err(|_| RejectReason::InvalidArgument(format!("unknown role {}", c.role)))?;
        if matches!(role, Role::Unspecified | Role::Registrar) {
            return reject(RejectReason::InvalidArgument(format!(
                "role must be enterprise, bank, logistics or regulator, not {}",
                role_name(role)
            )));
        }
        let key =
            PublicKeyBytes::parse(&c.public_key).map_err(|_| RejectReason::InvalidPublicKey)?;
        let party = Party {
            party_id: c.party_id.clone(),
            name: c.name.clone(),
            role: role as i32,
            public_key: key.to_bytes().to_vec(),
            frozen: false,
            registered_at_ms: self.now_ms,
        };
        self.overlay.put(keys::party(&c.party_id), &party);
        Ok(())
    }

    fn rotate_key(&mut self, mut signer: Party, c: &RotateKey) -> Rule {
        let key =
            PublicKeyBytes::parse(&c.new_public_key).map_err(|_| RejectReason::InvalidPublicKey)?;
        signer.public_key = key.to_bytes().to_vec();
        self.overlay.put(keys::party(&signer.party_id), &signer);
        Ok(())
    }

    fn set_frozen(&mut self, signer: &Party, c: &SetFrozen) -> Rule {
        require_role(signer, &[Role::Registrar, Role::Regulator])?;
        check_id("party_id", &c.party_id)?;
        let mut party = self
            .find_party(&c.party_id)?
            .ok_or_else(|| not_found(RecordKind::Party, &c.party_id))?;
        if party.role == Role::Registrar as i32 {
            return reject(RejectReason::Unauthorized("the registrar cannot be frozen".into()));
        }
        if party.party_id == signer.party_id {
            return reject(RejectReason::SameParty("a party cannot freeze itself".into()));
        }
        party.frozen = c.frozen;
        self.overlay.put(keys::party(&party.party_id), &party);
        Ok(())
    }

    // ----- credit -----

    fn grant_credit_line(&mut self, signer: &Party, c: &GrantCreditLine) -> Rule {
        require_role(signer, &[Role::Bank])?;
        check_id("line_id", &c.line_id)?;
        let obligor = self.counterparty("obligor", &c.obligor, &[Role::Enterprise])?;
        let limit = amount("limit", &c.limit, false)?;
        check_currency(&c.currency)?;
        self.check_future("expires_at_ms", c.expires_at_ms, None)?;
        let key = keys::credit(&obligor.party_id);
        let mut credit: ObligorCredit = self.overlay.get(&key)?.unwrap_or_else(|| ObligorCredit {
            obligor: obligor.party_id.clone(),
            lines: Vec::new(),
        });
        let line = CreditLine {
            bank: signer.party_id.clone(),
            line_id: c.line_id.clone(),
            limit: money::format_amount(limit),
            currency: c.currency.clone(),
            expires_at_ms: c.expires_at_ms,
            granted_at_ms: self.now_ms,
        };
        match credit.lines.iter_mut().find(|l| l.bank == line.bank && l.line_id == line.line_id) {
            Some(existing) if existing.currency != line.currency => {
                return reject(RejectReason::CurrencyMismatch(format!(
                    "line {:?} is in {}, cannot be re-granted in {}",
                    line.line_id, existing.currency, line.currency
                )));
            }
            Some(existing) => *existing = line,
            None => {
                // Lapsed lines are dropped when a new one arrives so the record stays bounded.
                let now_ms = self.now_ms;
                credit.lines.retain(|l| l.expires_at_ms > now_ms);
                let granted_by_bank = credit.lines.iter().filter(|l| l.bank == line.bank).count();
                if granted_by_bank >= BANK_LINES_PER_OBLIGOR_MAX {
                    return reject(RejectReason::InvalidArgument(format!(
                        "a bank may grant one obligor at most {BANK_LINES_PER_OBLIGOR_MAX} unexpired credit lines"
                    )));
                }
                credit.lines.push(line);
            }
        }
        self.overlay.put(key, &credit);
        Ok(())
    }

    // ----- goods -----

    fn create_purchase_order(&mut self, signer: &Party, c: &CreatePurchaseOrder) -> Rule {
        require_role(signer, &[Role::Enterprise])?;
        let key = keys::purchase_order(&c.po_id);
        self.must_be_new(RecordKind::PurchaseOrder, "po_id", &c.po_id, &key)?;
        let seller = self.counterparty("seller", &c.seller, &[Role::Enterprise])?;
        if seller.party_id == signer.party_id {
            return reject(RejectReason::SameParty("buyer and seller must differ".into()));
        }
        check_currency(&c.currency)?;
        check_count("lines", c.lines.len(), LINES_MAX)?;
        let mut lines = Vec::with_capacity(c.lines.len());
        for line in &c.lines {
            check_id("sku", &line.sku)?;
            if lines.iter().any(|l: &OrderLine| l.sku == line.sku) {
                return reject(RejectReason::InvalidArgument(format!(
                    "sku {:?} appears twice",
                    line.sku
                )));
            }
            check_quantity(line.quantity)?;
            let price = amount("unit_price", &line.unit_price, false)?;
            lines.push(OrderLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: money::format_amount(price),
            });
        }
        let shipped =
            lines.iter().map(|l| ShippedQuantity { sku: l.sku.clone(), quantity: 0 }).collect();
        let order = PurchaseOrder {
            po_id: c.po_id.clone(),
            buyer: signer.party_id.clone(),
            seller: seller.party_id,
            lines,
            currency: c.currency.clone(),
            shipped,
            shipment_ids: Vec::new(),
            created_at_ms: self.now_ms,
        };
        self.overlay.put(key, &order);
        Ok(())
    }

    fn record_shipment(&mut self, signer: &Party, c: &RecordShipment) -> Rule {
        let key = keys::shipment(&c.shipment_id);
        self.must_be_new(RecordKind::Shipment, "shipment_id", &c.shipment_id, &key)?;
        let mut order = self.purchase_order(&c.po_id)?;
        let record =
            (RecordKind::PurchaseOrder, order.po_id.as_str(), &[&*order.buyer, &order.seller][..]);
        require_signer(signer, &order.seller, record, "only the order's seller records shipments")?;
        if order.shipment_ids.len() >= ORDER_SHIPMENTS_MAX {
            return reject(RejectReason::InvalidArgument(format!(
                "an order takes at most {ORDER_SHIPMENTS_MAX} shipments"
            )));
        }
        check_count("lines", c.lines.len(), LINES_MAX)?;
        let mut seen: Vec<&str> = Vec::with_capacity(c.lines.len());
        for line in &c.lines {
            check_id("sku", &line.sku)?;
            if seen.contains(&line.sku.as_str()) {
                return reject(RejectReason::InvalidArgument(format!(
                    "sku {:?} appears twice",
                    line.sku
                )));
            }
            seen.push(&line.sku);
            check_quantity(line.quantity)?;
            let position = order
                .lines
                .iter()
                .position(|l| l.sku == line.sku)
                .ok_or_else(|| RejectReason::UnknownSku(line.sku.clone()))?;
            let ordered = order.lines[position].quantity;
            let shipped = &mut order.shipped[position];
            let total = shipped.quantity + line.quantity;
            if total > ordered {
                return reject(RejectReason::OverShipment {
                    sku: line.sku.clone(),
                    shipped: total,
                    ordered,
                });
            }
            shipped.quantity = total;
        }
        if !c.carrier.is_empty() {
            self.counterparty("carrier", &c.carrier, &[Role::Logistics])?;
        }
        self.check_document_unused(&c.document_hash)?;
        order.shipment_ids.push(c.shipment_id.clone());
        let shipment = Shipment {
            shipment_id: c.shipment_id.clone(),
            po_id: c.po_id.clone(),
            lines: c.lines.clone(),
            carrier: c.carrier.clone(),
            document_hash: c.document_hash.clone(),
            shipped_at_ms: self.now_ms,
            delivered_at_ms: 0,
            carrier_attested_at_ms: 0,
            invoice_id: String::new(),
        };
        self.overlay.put_raw(keys::document(&c.document_hash), key.clone());
        self.overlay.put(keys::purchase_order(&order.po_id), &order);
        self.overlay.put(key, &shipment);
        Ok(())
    }

    fn confirm_delivery(&mut self, signer: &Party, c: &ConfirmDelivery) -> Rule {
        let mut shipment = self.shipment(&c.shipment_id)?;
        let order = self.purchase_order(&shipment.po_id)?;
        if signer.party_id == order.buyer {
            if shipment.delivered_at_ms != 0 {
                return reject(RejectReason::AlreadyDelivered(shipment.shipment_id));
            }
            shipment.delivered_at_ms = self.now_ms;
        } else if !shipment.carrier.is_empty() && signer.party_id == shipment.carrier {
            if shipment.carrier_attested_at_ms != 0 {
                return reject(RejectReason::AlreadyDelivered(shipment.shipment_id));
            }
            shipment.carrier_attested_at_ms = self.now_ms;
        } else {
            // The seller knows the shipment; anyone else is told there is none.
            let record = (RecordKind::Shipment, c.shipment_id.as_str(), &[&*order.seller][..]);
            return require_signer(
                signer,
                &order.buyer,
                record,
                "only the buyer (or the named carrier, as an attestation) confirms delivery",
            );
        }
        self.overlay.put(keys::shipment(&shipment.shipment_id), &shipment);
        Ok(())
    }

    // ----- invoices -----

    fn issue_invoice(&mut self, signer: &Party, c: &IssueInvoice) -> Rule {
        let key = keys::invoice(&c.invoice_id);
        self.must_be_new(RecordKind::Invoice, "invoice_id", &c.invoice_id, &key)?;
        let order = self.purchase_order(&c.po_id)?;
        let record =
            (RecordKind::PurchaseOrder, order.po_id.as_str(), &[&*order.buyer, &order.seller][..]);
        require_signer(signer, &order.seller, record, "only the order's seller invoices it")?;
        check_count("shipment_ids", c.shipment_ids.len(), INVOICE_SHIPMENTS_MAX)?;
        let amount_value = amount("amount", &c.amount, true)?;
        if c.due_date_ms == 0 {
            return reject(RejectReason::InvalidTime {
                field: "due_date_ms",
                detail: "must be set".into(),
            });
        }
        let mut delivered = Decimal::ZERO;
        let mut shipments = Vec::with_capacity(c.shipment_ids.len());
        for id in &c.shipment_ids {
            if shipments.iter().any(|s: &Shipment| &s.shipment_id == id) {
                return reject(RejectReason::InvalidArgument(format!(
                    "shipment {id:?} appears twice"
                )));
            }
            let shipment = self.shipment(id)?;
            if shipment.po_id != order.po_id {
                return reject(RejectReason::ShipmentNotInOrder {
                    shipment: id.clone(),
                    po: order.po_id.clone(),
                });
            }
            if !shipment.invoice_id.is_empty() {
                return reject(RejectReason::AlreadyInvoiced {
                    shipment: id.clone(),
                    invoice: shipment.invoice_id.clone(),
                });
            }
            if shipment.delivered_at_ms == 0 {
                return reject(RejectReason::NotDelivered(id.clone()));
            }
            for line in &shipment.lines {
                let price = order
                    .lines
                    .iter()
                    .find(|l| l.sku == line.sku)
                    .map(|l| stored_amount(&l.unit_price))
                    .ok_or_else(|| corrupt(&keys::shipment(id), "sku missing from its order"))??;
                let value = price
                    .checked_mul(Decimal::from(line.quantity))
                    .and_then(|v| delivered.checked_add(v))
                    .ok_or_else(|| {
                        RejectReason::InvalidArgument("the delivered value is too large".into())
                    })?;
                delivered = value;
            }
            shipments.push(shipment);
        }
        if amount_value > delivered {
            return reject(RejectReason::AmountExceedsDeliveredValue {
                amount: money::format_amount(amount_value),
                delivered: money::format_amount(delivered),
            });
        }
        self.check_document_unused(&c.document_hash)?;
        for mut shipment in shipments {
            shipment.invoice_id = c.invoice_id.clone();
            self.overlay.put(keys::shipment(&shipment.shipment_id), &shipment);
        }
        let invoice = Invoice {
            invoice_id: c.invoice_id.clone(),
            po_id: order.po_id.clone(),
            seller: order.seller.clone(),
            buyer: order.buyer.clone(),
            shipment_ids: c.shipment_ids.clone(),
            amount: money::format_amount(amount_value),
            currency: order.currency.clone(),
            due_date_ms: c.due_date_ms,
            document_hash: c.document_hash.clone(),
            status: InvoiceStatus::Issued as i32,
            issued_at_ms: self.now_ms,
            token_id: String::new(),
            maturity_ms: 0,
            reject_reason: String::new(),
        };
        self.overlay.put_raw(keys::document(&c.document_hash), key.clone());
        self.overlay.put(key, &invoice);
        Ok(())
    }

    fn open_invoice_of_buyer(&self, signer: &Party, id: &str) -> Rule<Invoice> {
        let invoice = self.invoice(id)?;
        let record = (
            RecordKind::Invoice,
            invoice.invoice_id.as_str(),
            &[&*invoice.buyer, &invoice.seller][..],
        );
        require_signer(
            signer,
            &invoice.buyer,
            record,
            "only the invoice's buyer accepts or rejects it",
        )?;
        if invoice.status != InvoiceStatus::Issued as i32 {
            return reject(RejectReason::InvoiceNotOpen(invoice.invoice_id));
        }
        Ok(invoice)
    }

    fn accept_invoice(&mut self, signer: &Party, c: &AcceptInvoice) -> Rule {
        let mut invoice = self.open_invoice_of_buyer(signer, &c.invoice_id)?;
        self.check_future("maturity_ms", c.maturity_ms, Some(MATURITY_AHEAD_MS_MAX))?;
        let face = stored_amount(&invoice.amount)?;
        let exposure_key = keys::exposure(&invoice.buyer, &invoice.currency);
        let mut exposure: Exposure = self.overlay.get(&exposure_key)?.unwrap_or_else(|| Exposure {
            obligor: invoice.buyer.clone(),
            currency: invoice.currency.clone(),
            unsettled: money::format_amount(Decimal::ZERO),
        });
        let needed = stored_amount(&exposure.unsettled)? + face;
        let limit = self.credit_limit(&invoice.buyer, &invoice.currency)?;
        if needed > limit {
            return reject(RejectReason::CreditLimitExceeded {
                obligor: invoice.buyer.clone(),
                currency: invoice.currency.clone(),
                needed: money::format_amount(needed),
                limit: money::format_amount(limit),
            });
        }
        let token_id = self.derive_id("tk", RecordKind::Token, keys::token)?;
        let token = ReceivableToken {
            token_id: token_id.clone(),
            invoice_id: invoice.invoice_id.clone(),
            obligor: invoice.buyer.clone(),
            holder: invoice.seller.clone(),
            face_value: invoice.amount.clone(),
            currency: invoice.currency.clone(),
            maturity_ms: c.maturity_ms,
            status: TokenStatus::Live as i32,
            parent_id: String::new(),
            child_ids: Vec::new(),
            holder_changes: 0,
            open_offer_id: String::new(),
            created_at_ms: self.now_ms,
            settled_at_ms: 0,
            payment_reference: String::new(),
            settled_to: String::new(),
        };
        self.put_new_token(&token);
        exposure.unsettled = money::format_amount(needed);
        self.overlay.put(exposure_key, &exposure);
        invoice.status = InvoiceStatus::Accepted as i32;
        invoice.token_id = token_id;
        invoice.maturity_ms = c.maturity_ms;
        self.overlay.put(keys::invoice(&invoice.invoice_id), &invoice);
        Ok(())
    }

    /// Sum of the obligor's unexpired credit lines in `currency`, capped at
    /// [`money::AMOUNT_MAX`]: an obligor's unsettled face value per currency never exceeds the
    /// largest amount, so every stored total stays a valid amount (a total the ledger could not
    /// read back would halt every replica).
    fn credit_limit(&self, obligor: &str, currency: &str) -> Rule<Decimal> {
        let credit: Option<ObligorCredit> = self.overlay.get(&keys::credit(obligor))?;
        let mut limit = Decimal::ZERO;
        for line in credit.iter().flat_map(|c| &c.lines) {
            if line.currency == currency && line.expires_at_ms > self.now_ms {
                limit += stored_amount(&line.limit)?;
            }
        }
        Ok(limit.min(money::AMOUNT_MAX))
    }

    fn reject_invoice(&mut self, signer: &Party, c: &RejectInvoice) -> Rule {
        let mut invoice = self.open_invoice_of_buyer(signer, &c.invoice_id)?;
        check_text("reason", &c.reason)?;
        invoice.status = InvoiceStatus::Rejected as i32;
        invoice.reject_reason = c.reason.clone();
        self.overlay.put(keys::invoice(&invoice.invoice_id), &invoice);
        Ok(())
    }

    // ----- tokens -----

    fn put_new_token(&mut self, token: &ReceivableToken) {
        self.overlay.put_raw(keys::holder_index(&token.holder, &token.token_id), Vec::new());
        self.overlay.put_raw(keys::obligor_index(&token.obligor, &token.token_id), Vec::new());
        self.overlay.put(keys::token(&token.token_id), token);
    }

    fn change_holder(&mut self, token: &mut ReceivableToken, holder: &str) {
        self.overlay.delete(keys::holder_index(&token.holder, &token.token_id));
        self.overlay.put_raw(keys::holder_index(holder, &token.token_id), Vec::new());
        token.holder = holder.to_owned();
        token.holder_changes += 1;
    }

    /// The open offer on a token, if it has one that has not lapsed.
    fn open_offer(&self, token: &ReceivableToken) -> Rule<Option<Offer>> {
        if token.open_offer_id.is_empty() {
            return Ok(None);
        }
        let offer = self.offer(&token.open_offer_id)?;
        Ok((offer.status == OfferStatus::Open as i32 && offer.expires_at_ms > self.now_ms)
            .then_some(offer))
    }

    /// A token the signer holds and may move now: live, before maturity, not under offer, its
    /// holder not frozen (the signer is checked frozen by the envelope).
    fn movable_token_of(&self, signer: &Party, id: &str) -> Rule<ReceivableToken> {
        let token = self.token(id)?;
        let record =
            (RecordKind::Token, token.token_id.as_str(), &[&*token.holder, &token.obligor][..]);
        require_signer(signer, &token.holder, record, "only the token's holder may move it")?;
        require_live(&token)?;
        if self.now_ms >= token.maturity_ms {
            return reject(RejectReason::TokenMatured(token.token_id));
        }
        if let Some(offer) = self.open_offer(&token)? {
            return reject(RejectReason::TokenUnderOffer {
                token: token.token_id,
                offer: offer.offer_id,
            });
        }
        Ok(token)
    }

    fn transfer_token(&mut self, signer: &Party, c: &TransferToken) -> Rule {
        let mut token = self.movable_token_of(signer, &c.token_id)?;
        let to = self.counterparty("to", &c.to, &[Role::Enterprise, Role::Bank])?;
        if to.party_id == signer.party_id {
            return reject(RejectReason::SameParty(
                "a token cannot be transferred to its holder".into(),
            ));
        }
        // A claim of the obligor on itself means nothing; an obligor that pays early settles.
        if to.party_id == token.obligor {
            return reject(RejectReason::SameParty(
                "a token cannot be transferred to its obligor; the obligor settles it instead"
                    .into(),
            ));
        }
        let value = amount("amount", &c.amount, true)?;
        let face = stored_amount(&token.face_value)?;
        if value > face {
            return reject(RejectReason::AmountExceedsFaceValue {
                amount: money::format_amount(value),
                face_value: token.face_value.clone(),
            });
        }
        if value == face {
            self.change_holder(&mut token, &to.party_id);
            token.open_offer_id.clear();
            self.overlay.put(keys::token(&token.token_id), &token);
            return Ok(());
        }
        // A split: the parent retires and two children carry the value, together exactly the
        // parent's face value.
        let sent_id = self.derive_id("tk", RecordKind::Token, keys::token)?;
        let kept_id = self.derive_id("tk", RecordKind::Token, keys::token)?;
        let child = |id: &str, holder: &str, face_value: Decimal| ReceivableToken {
            token_id: id.to_owned(),
            invoice_id: token.invoice_id.clone(),
            obligor: token.obligor.clone(),
            holder: holder.to_owned(),
            face_value: money::format_amount(face_value),
            currency: token.currency.clone(),
            maturity_ms: token.maturity_ms,
            status: TokenStatus::Live as i32,
            parent_id: token.token_id.clone(),
            child_ids: Vec::new(),
            holder_changes: 0,
            open_offer_id: String::new(),
            created_at_ms: self.now_ms,
            settled_at_ms: 0,
            payment_reference: String::new(),
            settled_to: String::new(),
        };
        let sent = child(&sent_id, &to.party_id, value);
        let kept = child(&kept_id, &signer.party_id, face - value);
        self.put_new_token(&sent);
        self.put_new_token(&kept);
        self.overlay.delete(keys::holder_index(&token.holder, &token.token_id));
        self.overlay.delete(keys::obligor_index(&token.obligor, &token.token_id));
        token.status = TokenStatus::Retired as i32;
        token.child_ids = vec![sent_id, kept_id];
        token.open_offer_id.clear();
        self.overlay.put(keys::token(&token.token_id), &token);
        Ok(())
    }

    fn offer_token(&mut self, signer: &Party, c: &OfferToken) -> Rule {
        let mut token = self.movable_token_of(signer, &c.token_id)?;
        let bank = self.counterparty("bank", &c.bank, &[Role::Bank])?;
        if bank.party_id == signer.party_id {
            return reject(RejectReason::SameParty("a bank cannot offer a token to itself".into()));
        }
        let max_rate = rate("max_annual_rate", &c.max_annual_rate)?;
        self.check_future("expires_at_ms", c.expires_at_ms, None)?;
        if c.expires_at_ms > token.maturity_ms {
            return reject(RejectReason::InvalidTime {
                field: "expires_at_ms",
                detail: "an offer must expire no later than the token's maturity".into(),
            });
        }
        let offer_id = self.derive_id("of", RecordKind::Offer, keys::offer)?;
        let offer = Offer {
            offer_id: offer_id.clone(),
            token_id: token.token_id.clone(),
            holder: signer.party_id.clone(),
            bank: bank.party_id,
            max_annual_rate: max_rate.to_string(),
            expires_at_ms: c.expires_at_ms,
            status: OfferStatus::Open as i32,
            created_at_ms: self.now_ms,
        };
        token.open_offer_id = offer_id.clone();
        self.overlay.put(keys::offer(&offer_id), &offer);
        self.overlay.put(keys::token(&token.token_id), &token);
        Ok(())
    }

    fn withdraw_offer(&mut self, signer: &Party, c: &WithdrawOffer) -> Rule {
        let mut offer = self.offer(&c.offer_id)?;
        let record =
            (RecordKind::Offer, offer.offer_id.as_str(), &[&*offer.holder, &offer.bank][..]);
        require_signer(
            signer,
            &offer.holder,
            record,
            "only the party that made the offer withdraws it",
        )?;
        require_open(&offer)?;
        let mut token = self.token(&offer.token_id)?;
        offer.status = OfferStatus::Withdrawn as i32;
        if token.open_offer_id == offer.offer_id {
            token.open_offer_id.clear();
            self.overlay.put(keys::token(&token.token_id), &token);
        }
        self.overlay.put(keys::offer(&offer.offer_id), &offer);
        Ok(())
    }

    fn discount_token(&mut self, signer: &Party, c: &DiscountToken) -> Rule {
        let mut offer = self.offer(&c.offer_id)?;
        let record =
            (RecordKind::Offer, offer.offer_id.as_str(), &[&*offer.holder, &offer.bank][..]);
        require_signer(
            signer,
            &offer.bank,
            record,
            "only the bank the offer names may discount it",
        )?;
        require_open(&offer)?;
        if offer.expires_at_ms <= self.now_ms {
            return reject(RejectReason::OfferExpired(offer.offer_id));
        }
        let annual_rate = rate("annual_rate", &c.annual_rate)?;
        let max_rate = Decimal::from_str_exact(&offer.max_annual_rate)
            .map_err(|e| corrupt(&keys::offer(&offer.offer_id), &e.to_string()))?;
        if annual_rate > max_rate {
            return reject(RejectReason::RateAboveOffer {
                rate: annual_rate.to_string(),
                max: offer.max_annual_rate,
            });
        }
        let mut token = self.token(&offer.token_id)?;
        // An open, unexpired offer pins its token: it cannot have moved, split or settled (settling
        // closes the offer). These checks keep that true even if a rule elsewhere changes.
        if token.status != TokenStatus::Live as i32 || token.open_offer_id != offer.offer_id {
            return reject(RejectReason::TokenNotLive(token.token_id));
        }
        if token.holder != offer.holder {
            return reject(RejectReason::Unauthorized(
                "the token changed hands since the offer".into(),
            ));
        }
        if self.now_ms >= token.maturity_ms {
            return reject(RejectReason::TokenMatured(token.token_id));
        }
        self.require_holder_unfrozen(&token)?;
        let face = stored_amount(&token.face_value)?;
        let days = money::whole_days(self.now_ms, token.maturity_ms);
        let proceeds = money::discount_proceeds(face, annual_rate, days)
            .ok_or(RejectReason::NonPositiveProceeds)?;
        let financing = Financing {
            offer_id: offer.offer_id.clone(),
            token_id: token.token_id.clone(),
            seller: token.holder.clone(),
            bank: signer.party_id.clone(),
            face_value: token.face_value.clone(),
            currency: token.currency.clone(),
            annual_rate: annual_rate.to_string(),
            days,
            proceeds: money::format_amount(proceeds),
            financed_at_ms: self.now_ms,
            obligor: token.obligor.clone(),
        };
        self.change_holder(&mut token, &signer.party_id);
        token.open_offer_id.clear();
        offer.status = OfferStatus::Discounted as i32;
        self.overlay.put(keys::financing(&offer.offer_id), &financing);
        self.overlay.put(keys::offer(&offer.offer_id), &offer);
        self.overlay.put(keys::token(&token.token_id), &token);
        Ok(())
    }

    fn settle_token(&mut self, signer: &Party, c: &SettleToken) -> Rule {
        let mut token = self.token(&c.token_id)?;
        let record =
            (RecordKind::Token, token.token_id.as_str(), &[&*token.holder, &token.obligor][..]);
        require_signer(signer, &token.obligor, record, "only the token's obligor settles it")?;
        require_live(&token)?;
        check_text("payment_reference", &c.payment_reference)?;
        self.require_holder_unfrozen(&token)?;
        // An offer still open on the token ends with it: there is nothing left to finance.
        if !token.open_offer_id.is_empty() {
            let mut offer = self.offer(&token.open_offer_id)?;
            if offer.status == OfferStatus::Open as i32 {
                offer.status = OfferStatus::Closed as i32;
                self.overlay.put(keys::offer(&offer.offer_id), &offer);
            }
            token.open_offer_id.clear();
        }
        let exposure_key = keys::exposure(&token.obligor, &token.currency);
        let mut exposure: Exposure = self.overlay.get(&exposure_key)?.ok_or_else(|| {
            corrupt(&exposure_key, "a live token's obligor has no exposure record")
        })?;
        let remaining = stored_amount(&exposure.unsettled)? - stored_amount(&token.face_value)?;
        if remaining < Decimal::ZERO {
            return Err(corrupt(&exposure_key, "unsettled exposure would go negative").into());
        }
        exposure.unsettled = money::format_amount(remaining);
        self.overlay.put(exposure_key, &exposure);
        token.status = TokenStatus::Settled as i32;
        token.settled_at_ms = self.now_ms;
        token.settled_to = token.holder.clone();
        token.payment_reference = c.payment_reference.clone();
        self.overlay.put(keys::token(&token.token_id), &token);
        Ok(())
    }

    // ----- access -----

    fn grant_access(&mut self, signer: &Party, c: &GrantAccess) -> Rule {
        let grantee = self.counterparty(
            "grantee",
            &c.grantee,
            &[Role::Enterprise, Role::Bank, Role::Logistics, Role::Regulator],
        )?;
        if grantee.party_id == signer.party_id {
            return reject(RejectReason::SameParty("a party cannot grant access to itself".into()));
        }
        let scope = access_scope(c.scope)?;
        self.check_future("expires_at_ms", c.expires_at_ms, None)?;
        let grant = AccessGrant {
            owner: signer.party_id.clone(),
            grantee: grantee.party_id.clone(),
            scope: scope as i32,
            expires_at_ms: c.expires_at_ms,
            granted_at_ms: self.now_ms,
        };
        self.overlay.put(keys::grant(&signer.party_id, &grantee.party_id, scope as i32), &grant);
        Ok(())
    }

    fn revoke_access(&mut self, signer: &Party, c: &RevokeAccess) -> Rule {
        check_id("grantee", &c.grantee)?;
        let scope = access_scope(c.scope)?;
        let key = keys::grant(&signer.party_id, &c.grantee, scope as i32);
        if self.overlay.get_raw(&key)?.is_none() {
            return reject(not_found(
                RecordKind::AccessGrant,
                &format!("{}/{}", c.grantee, scope.as_str_name()),
            ));
        }
        self.overlay.delete(key);
        Ok(())
    }

    /// A time that must lie after ledger time (and at most `ahead_max` after it).
    fn check_future(&self, field: &'static str, time_ms: u64, ahead_max: Option<u64>) -> Rule {
        if time_ms <= self.now_ms {
            return reject(RejectReason::InvalidTime {
                field,
                detail: format!("{time_ms} ms is not after ledger time {} ms", self.now_ms),
            });
        }
        if let Some(ahead_max) = ahead_max {
            if time_ms - self.now_ms > ahead_max {
                return reject(RejectReason::InvalidTime {
                    field,
                    detail: format!(
                        "must be at most {} days after ledger time",
                        ahead_max / money::DAY_MS
                    ),
                });
            }
        }
        Ok(())
    }
}

// ----- argument checks shared by the rules -----

/// Ids are 1 to 64 characters of `A-Z a-z 0-9 . _ : -`: no `/`, so an id never breaks a key.
pub fn check_id(field: &'static str, id: &str) -> Result<(), RejectReason> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok { Ok(()) } else { Err(RejectReason::InvalidId { field }) }
}

fn check_text(field: &'static str, text: &str) -> Result<(), RejectReason> {
    // ASCII rules only: Unicode property tables change between toolchains, and replicas built
    // with different ones must still agree.
    let blank = text.bytes().all(|b| b.is_ascii_whitespace());
    let control = text.bytes().any(|b| b.is_ascii_control());
    if blank || text.len() > TEXT_BYTES_MAX || control {
        return Err(RejectReason::InvalidArgument(format!(
            "{field} must be 1 to {TEXT_BYTES_MAX} bytes of printable text"
        )));
    }
    Ok(())
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), RejectReason> {
    if count == 0 || count > max {
        return Err(RejectReason::InvalidArgument(format!("{field} must have 1 to {max} entries")));
    }
    Ok(())
}

fn check_quantity(quantity: u64) -> Result<(), RejectReason> {
    if quantity == 0 || quantity > QUANTITY_MAX {
        return Err(RejectReason::InvalidArgument(format!("quantity must be 1 to {QUANTITY_MAX}")));
    }
    Ok(())
}

fn check_currency(code: &str) -> Result<(), RejectReason> {
    money::check_currency(code).map_err(|_| RejectReason::InvalidCurrency(code.to_owned()))
}

fn amount(field: &'static str, text: &str, positive: bool) -> Result<Decimal, RejectReason> {
    let parsed =
        if positive { money::parse_positive_amount(text) } else { money::parse_amount(text) };
    parsed.map_err(|e: MoneyError| RejectReason::InvalidAmount { field, detail: e.to_string() })
}

fn rate(field: &'static str, text: &str) -> Result<Decimal, RejectReason> {
    money::parse_rate(text).map_err(|_| RejectReason::InvalidRate { field })
}

/// An amount the ledger itself wrote (every stored amount and total is at most
/// [`money::AMOUNT_MAX`]); failing to parse it means the state is corrupt.
pub(crate) fn stored_amount(text: &str) -> Result<Decimal, StoreError> {
    money::parse_amount(text).map_err(|e| StoreError::Corrupt {
        key: "(a stored amount)".into(),
        detail: format!("{text:?}: {e}"),
    })
}

fn access_scope(value: i32) -> Result<AccessScope, RejectReason> {
    match AccessScope::try_from(value) {
        Ok(AccessScope::Unspecified) | Err(_) => {
            Err(RejectReason::InvalidArgument(format!("unknown access scope {value}")))
        }
        Ok(scope) => Ok(scope),
    }
}

fn require_role(party: &Party, roles: &[Role]) -> Result<(), RejectReason> {
    if roles.iter().any(|r| *r as i32 == party.role) {
        return Ok(());
    }
    let expected = match roles {
        [Role::Registrar] => "registrar",
        [Role::Enterprise] => "enterprise",
        [Role::Bank] => "bank",
        [Role::Logistics] => "logistics carrier",
        [Role::Registrar, Role::Regulator] => "registrar or regulator",
        [Role::Enterprise, Role::Bank] => "enterprise or bank",
        _ => "party of another role",
    };
    Err(RejectReason::WrongRole { party: party.party_id.clone(), expected })
}

fn not_found(kind: RecordKind, id: &str) -> RejectReason {
    RejectReason::NotFound { kind, id: id.to_owned() }
}
