//! Read-only views over the committed state, for the API and for tests.
//!
//! Every function reads through [`StateStore`] and never writes. Views that depend on time
//! (overdue tokens, lapsed offers) use the chain tip's ledger time, never a clock, so two
//! replicas at the same height answer the same. Access control is the API's job; these functions
//! return whatever is asked.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use prost::Message;
use rust_decimal::Decimal;

use crate::machine::{corrupt, read, stored_amount};
use crate::pb::*;
use crate::store::{StateStore, StoreError, keys};

/// The chain tip, or `None` for a store without a genesis.
pub fn tip<S: StateStore + ?Sized>(store: &S) -> Result<Option<ChainTip>, StoreError> {
    read(store, keys::TIP)
}

/// Ledger time of the tip (0 before genesis).
pub fn ledger_time_ms<S: StateStore + ?Sized>(store: &S) -> Result<u64, StoreError> {
    Ok(tip(store)?.map_or(0, |t| t.time_ms))
}

/// A party by id.
pub fn party<S: StateStore + ?Sized>(store: &S, id: &str) -> Result<Option<Party>, StoreError> {
    read(store, &keys::party(id))
}

/// A purchase order by id.
pub fn purchase_order<S: StateStore + ?Sized>(
    store: &S,
    id: &str,
) -> Result<Option<PurchaseOrder>, StoreError> {
    read(store, &keys::purchase_order(id))
}

/// A shipment by id.
pub fn shipment<S: StateStore + ?Sized>(
    store: &S,
    id: &str,
) -> Result<Option<Shipment>, StoreError> {
    read(store, &keys::shipment(id))
}

/// An invoice by id.
pub fn invoice<S: StateStore + ?Sized>(store: &S, id: &str) -> Result<Option<Invoice>, StoreError> {
    read(store, &keys::invoice(id))
}

/// A token by id.
pub fn token<S: StateStore + ?Sized>(
    store: &S,
    id: &str,
) -> Result<Option<ReceivableToken>, StoreError> {
    read(store, &keys::token(id))
}

/// An offer by id.
pub fn offer<S: StateStore + ?Sized>(store: &S, id: &str) -> Result<Option<Offer>, StoreError> {
    read(store, &keys::offer(id))
}

/// The financing made through an offer.
pub fn financing<S: StateStore + ?Sized>(
    store: &S,
    offer_id: &str,
) -> Result<Option<Financing>, StoreError> {
    read(store, &keys::financing(offer_id))
}

/// Every financing, in offer id order.
pub fn financings<S: StateStore + ?Sized>(store: &S) -> Result<Vec<Financing>, StoreError> {
    scan_records(store, keys::FINANCING_PREFIX)
}

/// Every token, in id order (for audits and invariant checks).
pub fn tokens<S: StateStore + ?Sized>(store: &S) -> Result<Vec<ReceivableToken>, StoreError> {
    scan_records(store, keys::TOKEN_PREFIX)
}

/// Every invoice, in id order (for audits and invariant checks).
pub fn invoices<S: StateStore + ?Sized>(store: &S) -> Result<Vec<Invoice>, StoreError> {
    scan_records(store, keys::INVOICE_PREFIX)
}

/// Every shipment, in id order (for audits and invariant checks).
pub fn shipments<S: StateStore + ?Sized>(store: &S) -> Result<Vec<Shipment>, StoreError> {
    scan_records(store, keys::SHIPMENT_PREFIX)
}

/// Every obligor's credit lines, in obligor order (for audits and invariant checks).
pub fn all_credit<S: StateStore + ?Sized>(store: &S) -> Result<Vec<ObligorCredit>, StoreError> {
    scan_records(store, keys::CREDIT_PREFIX)
}

/// Every obligor's recorded unsettled totals (for audits and invariant checks).
pub fn all_exposures<S: StateStore + ?Sized>(store: &S) -> Result<Vec<Exposure>, StoreError> {
    scan_records(store, keys::EXPOSURE_PREFIX)
}

/// The credit lines granted to an obligor.
pub fn credit_lines<S: StateStore + ?Sized>(
    store: &S,
    obligor: &str,
) -> Result<Vec<CreditLine>, StoreError> {
    Ok(read::<ObligorCredit, _>(store, &keys::credit(obligor))?.map_or_else(Vec::new, |c| c.lines))
}

/// The access grants a party has made.
pub fn grants_by_owner<S: StateStore + ?Sized>(
    store: &S,
    owner: &str,
) -> Result<Vec<AccessGrant>, StoreError> {
    scan_records(store, &keys::grant_prefix(owner))
}

/// Whether `grantee` may read `owner`'s records of `scope` now (a grant of that scope or of
/// `ACCESS_SCOPE_ALL`, not expired at ledger time).
pub fn has_access<S: StateStore + ?Sized>(
    store: &S,
    owner: &str,
    grantee: &str,
    scope: AccessScope,
) -> Result<bool, StoreError> {
    let now_ms = ledger_time_ms(store)?;
    for candidate in [scope, AccessScope::All] {
        let grant: Option<AccessGrant> =
            read(store, &keys::grant(owner, grantee, candidate as i32))?;
        if grant.is_some_and(|g| g.expires_at_ms > now_ms) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Tokens a party holds (live and settled; split tokens are replaced by their children).
pub fn tokens_by_holder<S: StateStore + ?Sized>(
    store: &S,
    holder: &str,
) -> Result<Vec<ReceivableToken>, StoreError> {
    tokens_by_index(store, &keys::holder_prefix(holder))
}

/// Tokens owed by an obligor (live and settled).
pub fn tokens_by_obligor<S: StateStore + ?Sized>(
    store: &S,
    obligor: &str,
) -> Result<Vec<ReceivableToken>, StoreError> {
    tokens_by_index(store, &keys::obligor_prefix(obligor))
}

fn tokens_by_index<S: StateStore + ?Sized>(
    store: &S,
    prefix: &[u8],
) -> Result<Vec<ReceivableToken>, StoreError> {
    let mut ids = Vec::new();
    store.scan_prefix(prefix, &mut |key, _| {
        ids.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        ControlFlow::Continue(())
    })?;
    let mut tokens = Vec::with_capacity(ids.len());
    for id in ids {
        tokens.push(
            token(store, &id)?.ok_or_else(|| corrupt(prefix, "index names a missing token"))?,
        );
    }
    Ok(tokens)
}

/// The state of a token as a reader sees it, with overdue derived from ledger time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Live and before maturity.
    Live,
    /// Live, unsettled and past maturity.
    Overdue,
    /// Split into children.
    Retired,
    /// Paid by the obligor.
    Settled,
}

impl TokenState {
    /// The name used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Live => "live",
            TokenState::Overdue => "overdue",
            TokenState::Retired => "retired",
            TokenState::Settled => "settled",
        }
    }
}

/// A token's derived state at ledger time `now_ms`.
pub fn token_state(token: &ReceivableToken, now_ms: u64) -> TokenState {
    match TokenStatus::try_from(token.status) {
        Ok(TokenStatus::Retired) => TokenState::Retired,
        Ok(TokenStatus::Settled) => TokenState::Settled,
        _ if now_ms >= token.maturity_ms => TokenState::Overdue,
        _ => TokenState::Live,
    }
}

/// A token with its ancestors and descendants.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// The token asked for.
    pub token: ReceivableToken,
    /// From the token minted at acceptance down to the parent.
    pub ancestors: Vec<ReceivableToken>,
    /// Every token split from this one, breadth first.
    pub descendants: Vec<ReceivableToken>,
}

/// A token's lineage.
pub fn lineage<S: StateStore + ?Sized>(store: &S, id: &str) -> Result<Option<Lineage>, StoreError> {
    let Some(start) = token(store, id)? else { return Ok(None) };
    let mut ancestors = Vec::new();
    let mut parent_id = start.parent_id.clone();
    while !parent_id.is_empty() {
        let parent = token(store, &parent_id)?
            .ok_or_else(|| corrupt(&keys::token(&parent_id), "missing parent"))?;
        parent_id = parent.parent_id.clone();
        ancestors.push(parent);
    }
    ancestors.reverse();
    let mut descendants = Vec::new();
    let mut queue: VecDeque<String> = start.child_ids.iter().cloned().collect();
    while let Some(child_id) = queue.pop_front() {
        let child = token(store, &child_id)?
            .ok_or_else(|| corrupt(&keys::token(&child_id), "missing child"))?;
        queue.extend(child.child_ids.iter().cloned());
        descendants.push(child);
    }
    Ok(Some(Lineage { token: start, ancestors, descendants }))
}

/// The goods behind an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct GoodsEvidence {
    /// The invoice.
    pub invoice: Invoice,
    /// Its purchase order.
    pub order: PurchaseOrder,
    /// The delivered shipments it covers.
    pub shipments: Vec<Shipment>,
}

/// An invoice's goods evidence: its order and shipments.
pub fn goods_evidence<S: StateStore + ?Sized>(
    store: &S,
    invoice_id: &str,
) -> Result<Option<GoodsEvidence>, StoreError> {
    let Some(invoice) = invoice(store, invoice_id)? else { return Ok(None) };
    let order = purchase_order(store, &invoice.po_id)?
        .ok_or_else(|| corrupt(&keys::invoice(invoice_id), "missing purchase order"))?;
    let mut shipments = Vec::with_capacity(invoice.shipment_ids.len());
    for id in &invoice.shipment_ids {
        shipments.push(
            shipment(store, id)?.ok_or_else(|| corrupt(&keys::shipment(id), "missing shipment"))?,
        );
    }
    Ok(Some(GoodsEvidence { invoice, order, shipments }))
}

/// One obligor's exposure in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligorExposure {
    /// Currency.
    pub currency: String,
    /// Face value of live (unsettled) tokens.
    pub unsettled: Decimal,
    /// Part of `unsettled` past maturity.
    pub overdue: Decimal,
    /// Sum of unexpired credit lines.
    pub credit_limit: Decimal,
    /// Distinct holders of its live tokens.
    pub holders: usize,
}

/// An obligor's exposure per currency, at ledger time.
pub fn exposure<S: StateStore + ?Sized>(
    store: &S,
    obligor: &str,
) -> Result<Vec<ObligorExposure>, StoreError> {
    let now_ms = ledger_time_ms(store)?;
    let recorded: Vec<Exposure> = scan_records(store, &keys::exposure_prefix(obligor))?;
    let lines = credit_lines(store, obligor)?;
    let tokens = tokens_by_obligor(store, obligor)?;
    let mut currencies: Vec<String> = recorded.iter().map(|e| e.currency.clone()).collect();
    currencies.extend(lines.iter().map(|l| l.currency.clone()));
    currencies.sort();
    currencies.dedup();
    let mut out = Vec::with_capacity(currencies.len());
    for currency in currencies {
        let unsettled = recorded
            .iter()
            .find(|e| e.currency == currency)
            .map(|e| stored_amount(&e.unsettled))
            .transpose()?
            .unwrap_or_default();
        let mut credit_limit = Decimal::ZERO;
        for line in lines.iter().filter(|l| l.currency == currency && l.expires_at_ms > now_ms) {
            credit_limit += stored_amount(&line.limit)?;
        }
        let mut overdue = Decimal::ZERO;
        let mut holders: Vec<&str> = Vec::new();
        for token in tokens.iter().filter(|t| t.currency == currency) {
            let state = token_state(token, now_ms);
            if state == TokenState::Overdue {
                overdue += stored_amount(&token.face_value)?;
            }
            if matches!(state, TokenState::Live | TokenState::Overdue)
                && !holders.contains(&token.holder.as_str())
            {
                holders.push(&token.holder);
            }
        }
        out.push(ObligorExposure {
            currency,
            unsettled,
            overdue,
            credit_limit,
            holders: holders.len(),
        });
    }
    Ok(out)
}

/// A block by height.
pub fn block<S: StateStore + ?Sized>(store: &S, height: u64) -> Result<Option<Block>, StoreError> {
    read(store, &keys::block(height))
}

/// Up to `limit` blocks from height `from`, in order.
pub fn blocks<S: StateStore + ?Sized>(
    store: &S,
    from: u64,
    limit: usize,
) -> Result<Vec<Block>, StoreError> {
    let mut out = Vec::new();
    let mut height = from.max(1);
    while out.len() < limit {
        match block(store, height)? {
            Some(block) => out.push(block),
            None => break,
        }
        height += 1;
    }
    Ok(out)
}

/// A transaction found by hash, with where it landed and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRecord {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// The transaction as submitted.
    pub tx: SignedTx,
    /// Its result.
    pub result: TxResult,
}

/// A transaction by hash. Only transactions whose signature verified are indexed (see
/// `machine`); an unauthenticated rejection is in its block but not findable by hash.
pub fn transaction<S: StateStore + ?Sized>(
    store: &S,
    hash: &[u8],
) -> Result<Option<TxRecord>, StoreError> {
    let Some(location) = read::<TxLocation, _>(store, &keys::transaction(hash))? else {
        return Ok(None);
    };
    let block = block(store, location.height)?
        .ok_or_else(|| corrupt(&keys::transaction(hash), "indexed block is missing"))?;
    let index = usize::try_from(location.index).expect("u32 fits in usize");
    let (Some(tx), Some(result)) = (block.txs.get(index), block.results.get(index)) else {
        return Err(corrupt(&keys::transaction(hash), "index points past the block"));
    };
    Ok(Some(TxRecord {
        height: location.height,
        index: location.index,
        tx: tx.clone(),
        result: result.clone(),
    }))
}

fn scan_records<M: Message + Default, S: StateStore + ?Sized>(
    store: &S,
    prefix: &[u8],
) -> Result<Vec<M>, StoreError> {
    let mut out = Vec::new();
    let mut failure = None;
    store.scan_prefix(prefix, &mut |key, value| match M::decode(value) {
        Ok(record) => {
            out.push(record);
            ControlFlow::Continue(())
        }
        Err(e) => {
            failure = Some(corrupt(key, &e.to_string()));
            ControlFlow::Break(())
        }
    })?;
    failure.map_or(Ok(out), Err)
}
