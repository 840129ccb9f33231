//! What a regulator supervises, computed from the committed state: exposure per obligor,
//! concentration of financing, the maturity ladder, financing per bank, and the log of rejected
//! transactions; and who a transaction involves (for the event stream's access rule).
//!
//! Like [`crate::query`], every function only reads, and what depends on time uses the chain
//! tip's ledger time, so two replicas at the same height give the same answers. [`Scope`] says
//! whose view is asked for: a regulator's ([`Scope::All`]) or one party's ([`Scope::Party`]),
//! which keeps only rows about that party. Who may ask for which scope is the API's rule.
//!
//! Amounts never mix currencies: every figure is per currency. These are full scans of the
//! records concerned (tokens, financings, the rejection log), sized for a dashboard refreshed
//! every few seconds, not for a hot path; the financing figures can also be kept from block to
//! block ([`FinancingTotals`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::ControlFlow;

use prost::Message;
use rust_decimal::Decimal;

use crate::machine::{corrupt, stored_amount};
use crate::pb::tx_body::Command;
use crate::pb::*;
use crate::query::{self, TokenState};
use crate::store::{StateStore, StoreError, keys};

/// A week, in ms.
pub const WEEK_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Whose view a supervision query answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Everything (a regulator).
    All,
    /// Only rows about this party.
    Party(&'a str),
}

impl Scope<'_> {
    fn sees(&self, parties: &[&str]) -> bool {
        match self {
            Scope::All => true,
            Scope::Party(party) => parties.contains(party),
        }
    }
}

/// One obligor's exposure in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureRow {
    /// The obligor (the buyer who owes the tokens).
    pub obligor: String,
    /// Its exposure: unsettled, overdue, credit limit, holders.
    pub exposure: query::ObligorExposure,
    /// Its live (unsettled, not retired) tokens, overdue ones included.
    pub live_tokens: usize,
}

impl ExposureRow {
    /// Unsettled face value as a fraction of the credit limit; `None` without a limit.
    pub fn credit_used(&self) -> Option<Decimal> {
        let limit = self.exposure.credit_limit;
        (!limit.is_zero()).then(|| self.exposure.unsettled / limit)
    }
}

/// Exposure per obligor and currency, in obligor order.
pub fn exposure<S: StateStore + ?Sized>(
    store: &S,
    scope: Scope<'_>,
) -> Result<Vec<ExposureRow>, StoreError> {
    let obligors: BTreeSet<String> = match scope {
        Scope::Party(party) => BTreeSet::from([party.to_owned()]),
        Scope::All => {
            let mut obligors: BTreeSet<String> =
                query::all_exposures(store)?.into_iter().map(|e| e.obligor).collect();
            obligors.extend(query::all_credit(store)?.into_iter().map(|c| c.obligor));
            obligors
        }
    };
    let now_ms = query::ledger_time_ms(store)?;
    let mut rows = Vec::new();
    for obligor in obligors {
        let tokens = query::tokens_by_obligor(store, &obligor)?;
        for exposure in query::exposure(store, &obligor)? {
            let live_tokens = tokens
                .iter()
                .filter(|t| t.currency == exposure.currency)
                .filter(|t| {
                    matches!(query::token_state(t, now_ms), TokenState::Live | TokenState::Overdue)
                })
                .count();
            rows.push(ExposureRow { obligor: obligor.clone(), exposure, live_tokens });
        }
    }
    Ok(rows)
}

/// A party's share of the financing in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The obligor or bank.
    pub party: String,
    /// Face value financed (discounted) where it is the obligor or the bank.
    pub financed: Decimal,
    /// `financed` as a fraction of everything financed in the currency; `None` in a party's
    /// scope, which does not see the whole.
    pub share: Option<Decimal>,
}

/// Concentration of financing in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concentration {
    /// Currency.
    pub currency: String,
    /// Face value financed in the scope (everything, for a regulator).
    pub financed_total: Decimal,
    /// Largest obligors by financed face value, largest first.
    pub obligors: Vec<Share>,
    /// Largest banks by financed face value, largest first.
    pub banks: Vec<Share>,
}

/// The `top` largest obligors and banks by financed face value, per currency.
pub fn concentration<S: StateStore + ?Sized>(
    store: &S,
    scope: Scope<'_>,
    top: usize,
) -> Result<Vec<Concentration>, StoreError> {
    Ok(FinancingTotals::scan(store)?.concentration(scope, top))
}

/// Face value falling due in one week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Weeks from ledger time: bucket `k` covers `[now + k weeks, now + k + 1 weeks)`.
    pub week: u64,
    /// Start (ledger time, ms).
    pub from_ms: u64,
    /// End, exclusive.
    pub to_ms: u64,
    /// Face value of live tokens maturing in it.
    pub face_value: Decimal,
    /// How many tokens.
    pub tokens: usize,
}

/// The maturity ladder of one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Currency.
    pub currency: String,
    /// Face value of overdue tokens (past maturity, unsettled).
    pub overdue: Decimal,
    /// How many overdue tokens.
    pub overdue_tokens: usize,
    /// One bucket per week ahead.
    pub buckets: Vec<Bucket>,
    /// Face value maturing after the last bucket.
    pub later: Decimal,
    /// How many tokens mature after the last bucket.
    pub later_tokens: usize,
}

/// Face value of live tokens falling due per week for `weeks` weeks, per currency. A party sees
/// the tokens it holds or owes.
pub fn maturity_ladder<S: StateStore + ?Sized>(
    store: &S,
    scope: Scope<'_>,
    weeks: u64,
) -> Result<Vec<Ladder>, StoreError> {
    let now_ms = query::ledger_time_ms(store)?;
    let mut ladders: BTreeMap<String, Ladder> = BTreeMap::new();
    for token in query::tokens(store)? {
        let state = query::token_state(&token, now_ms);
        if !matches!(state, TokenState::Live | TokenState::Overdue)
            || !scope.sees(&[&token.holder, &token.obligor])
        {
            continue;
        }
        let face = stored_amount(&token.face_value)?;
        let ladder = ladders.entry(token.currency.clone()).or_insert_with(|| Ladder {
            currency: token.currency.clone(),
            overdue: Decimal::ZERO,
            overdue_tokens: 0,
            buckets: (0..weeks)
                .map(|week| Bucket {
                    week,
                    from_ms: now_ms.saturating_add(week.saturating_mul(WEEK_MS)),
                    to_ms: now_ms.saturating_add((week + 1).saturating_mul(WEEK_MS)),
                    face_value: Decimal::ZERO,
                    tokens: 0,
                })
                .collect(),
            later: Decimal::ZERO,
            later_tokens: 0,
        });
        if state == TokenState::Overdue {
            ladder.overdue += face;
            ladder.overdue_tokens += 1;
            continue;
        }
        let week = (token.maturity_ms - now_ms) / WEEK_MS;
        match ladder.buckets.get_mut(usize::try_from(week).unwrap_or(usize::MAX)) {
            Some(bucket) => {
                bucket.face_value += face;
                bucket.tokens += 1;
            }
            None => {
                ladder.later += face;
                ladder.later_tokens += 1;
            }
        }
    }
    Ok(ladders.into_values().collect())
}

/// What one bank financed in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankFinancing {
    /// The bank.
    pub bank: String,
    /// Currency.
    pub currency: String,
    /// Tokens discounted.
    pub count: usize,
    /// Their face value.
    pub face_value: Decimal,
    /// What the bank paid for them.
    pub proceeds: Decimal,
    /// Face-value-weighted average annual discount rate.
    pub average_rate: Decimal,
    /// Average whole days from discount to maturity.
    pub average_days: u64,
}

impl BankFinancing {
    /// Face value less proceeds: the bank's discount.
    pub fn discount(&self) -> Decimal {
        self.face_value - self.proceeds
    }
}

/// Financing per bank and currency, in bank order. A party sees the financings where it is the
/// bank or the seller: a sale's terms are theirs, not the obligor's (who pays face value
/// whoever holds the token).
pub fn financing_by_bank<S: StateStore + ?Sized>(
    store: &S,
    scope: Scope<'_>,
) -> Result<Vec<BankFinancing>, StoreError> {
    Ok(FinancingTotals::scan(store)?.financing_by_bank(scope))
}

/// Whom one financing concerns: currency, bank, seller, obligor.
type FinancingParties = (String, String, String, String);

/// The sums of a set of financings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sum {
    count: usize,
    face: Decimal,
    proceeds: Decimal,
    /// Σ rate x face.
    weighted: Decimal,
    days: u64,
}

impl Sum {
    fn add(&mut self, other: &Sum) {
        self.count += other.count;
        self.face += other.face;
        self.proceeds += other.proceeds;
        self.weighted += other.weighted;
        self.days += other.days;
    }
}

/// The ledger's financings summed per currency, bank, seller and obligor: every figure of
/// [`concentration`] and [`financing_by_bank`], for any scope, from a map the size of the
/// distinct (currency, bank, seller, obligor) tuples rather than of the financings. A financing
/// is written once (`DiscountToken`) and never changes or goes, so the totals after a block are
/// those before it plus the block's new financings ([`FinancingTotals::add_block`]): the API
/// keeps them from height to height instead of scanning every financing for each report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinancingTotals {
    sums: BTreeMap<FinancingParties, Sum>,
}

impl FinancingTotals {
    /// The totals of every financing in `store`.
    pub fn scan<S: StateStore + ?Sized>(store: &S) -> Result<Self, StoreError> {
        let mut totals = FinancingTotals::default();
        for financing in query::financings(store)? {
            totals.add(&financing)?;
        }
        Ok(totals)
    }

    /// Adds the financings block `height` created, read from `store` (the state at that height
    /// or any later one: a financing never changes). `Ok(false)` if `store` has no such block.
    pub fn add_block<S: StateStore + ?Sized>(
        &mut self,
        store: &S,
        height: u64,
    ) -> Result<bool, StoreError> {
        let Some(block) = query::block(store, height)? else { return Ok(false) };
        for (tx, result) in block.txs.iter().zip(&block.results) {
            if !result.applied {
                continue;
            }
            let body = TxBody::decode(&tx.body[..])
                .map_err(|e| corrupt(&keys::block(height), &e.to_string()))?;
            if let Some(Command::DiscountToken(c)) = &body.command {
                let financing = query::financing(store, &c.offer_id)?.ok_or_else(|| {
                    corrupt(&keys::financing(&c.offer_id), "an applied discount has no financing")
                })?;
                self.add(&financing)?;
            }
        }
        Ok(true)
    }

    /// Adds one financing.
    pub fn add(&mut self, financing: &Financing) -> Result<(), StoreError> {
        let face = stored_amount(&financing.face_value)?;
        let proceeds = stored_amount(&financing.proceeds)?;
        let rate: Decimal = financing.annual_rate.parse().map_err(|_| {
            corrupt(&keys::financing(&financing.offer_id), "annual rate is not a decimal")
        })?;
        let key = (
            financing.currency.clone(),
            financing.bank.clone(),
            financing.seller.clone(),
            financing.obligor.clone(),
        );
        let one = Sum { count: 1, face, proceeds, weighted: rate * face, days: financing.days };
        self.sums.entry(key).or_default().add(&one);
        Ok(())
    }

    /// [`concentration`] of these financings.
    pub fn concentration(&self, scope: Scope<'_>, top: usize) -> Vec<Concentration> {
        type Totals = BTreeMap<String, Decimal>;
        let mut by_currency: BTreeMap<&str, (Decimal, Totals, Totals)> = BTreeMap::new();
        for ((currency, bank, _seller, obligor), sum) in &self.sums {
            let entry = by_currency.entry(currency).or_default();
            if scope.sees(&[obligor, bank]) {
                entry.0 += sum.face;
            }
            if scope.sees(&[obligor]) {
                *entry.1.entry(obligor.clone()).or_default() += sum.face;
            }
            if scope.sees(&[bank]) {
                *entry.2.entry(bank.clone()).or_default() += sum.face;
            }
        }
        let ranked = |totals: Totals, whole: Decimal| -> Vec<Share> {
            let mut shares: Vec<Share> = totals
                .into_iter()
                .map(|(party, financed)| Share {
                    share: (scope == Scope::All && !whole.is_zero()).then(|| financed / whole),
                    party,
                    financed,
                })
                .collect();
            // Largest first; ties by party id, so every replica ranks alike.
            shares.sort_by(|a, b| b.financed.cmp(&a.financed).then_with(|| a.party.cmp(&b.party)));
            shares.truncate(top);
            shares
        };
        by_currency
            .into_iter()
            .filter(|(_, (total, _, _))| !total.is_zero())
            .map(|(currency, (total, obligors, banks))| Concentration {
                currency: currency.to_owned(),
                financed_total: total,
                obligors: ranked(obligors, total),
                banks: ranked(banks, total),
            })
            .collect()
    }

    /// [`financing_by_bank`] of these financings.
    pub fn financing_by_bank(&self, scope: Scope<'_>) -> Vec<BankFinancing> {
        let mut sums: BTreeMap<(&str, &str), Sum> = BTreeMap::new();
        for ((currency, bank, seller, _obligor), sum) in &self.sums {
            if scope.sees(&[bank, seller]) {
                sums.entry((bank, currency)).or_default().add(sum);
            }
        }
        sums.into_iter()
            .map(|((bank, currency), sum)| BankFinancing {
                bank: bank.to_owned(),
                currency: currency.to_owned(),
                count: sum.count,
                face_value: sum.face,
                proceeds: sum.proceeds,
                average_rate: if sum.face.is_zero() {
                    Decimal::ZERO
                } else {
                    (sum.weighted / sum.face).round_dp(6)
                },
                average_days: sum.days / u64::try_from(sum.count.max(1)).unwrap_or(1),
            })
            .collect()
    }
}

/// The log of rejected transactions, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejections {
    /// Every rejection in the scope.
    pub total: u64,
    /// Counts by rejection code, largest first.
    pub by_code: Vec<(String, u64)>,
    /// The latest `limit`, newest first.
    pub recent: Vec<RejectedTx>,
}

/// The rejected transactions, optionally of one code: counts by code and the latest `limit`. A
/// party sees the attempts that name it as signer (forgeries in its name included).
pub fn rejections<S: StateStore + ?Sized>(
    store: &S,
    scope: Scope<'_>,
    code: Option<&str>,
    limit: usize,
) -> Result<Rejections, StoreError> {
    let mut total = 0;
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    let mut recent: VecDeque<RejectedTx> = VecDeque::with_capacity(limit.min(1024));
    let mut failure = None;
    store.scan_prefix(keys::REJECTION_PREFIX, &mut |key, value| {
        let rejected = match RejectedTx::decode(value) {
            Ok(rejected) => rejected,
            Err(e) => {
                failure = Some(corrupt(key, &e.to_string()));
                return ControlFlow::Break(());
            }
        };
        if !scope.sees(&[&rejected.signer]) || code.is_some_and(|c| c != rejected.code) {
            return ControlFlow::Continue(());
        }
        total += 1;
        *by_code.entry(rejected.code.clone()).or_default() += 1;
        if limit > 0 {
            if recent.len() == limit {
                recent.pop_front();
            }
            recent.push_back(rejected);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let mut by_code: Vec<(String, u64)> = by_code.into_iter().collect();
    by_code.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Rejections { total, by_code, recent: recent.into_iter().rev().collect() })
}

/// The parties a transaction involves: its signer, the parties its command names, and, when it
/// was `applied`, the parties of the records it acts on (as they are in `store`; the ones used
/// here never change once set, except a token's holder, read for a settlement, which is final).
/// A rejected transaction involves only its signer and the parties it names: otherwise anyone
/// could learn who stands behind a record by sending a doomed transaction about it. Sorted,
/// without duplicates or empty ids.
pub fn involved<S: StateStore + ?Sized>(
    store: &S,
    body: &TxBody,
    applied: bool,
) -> Result<Vec<String>, StoreError> {
    let mut parties = vec![body.signer.clone()];
    named(body, &mut parties);
    if applied {
        of_records(store, body, &mut parties)?;
    }
    parties.retain(|p| !p.is_empty());
    parties.sort();
    parties.dedup();
    Ok(parties)
}

/// The parties of the records an applied command acted on.
fn of_records<S: StateStore + ?Sized>(
    store: &S,
    body: &TxBody,
    parties: &mut Vec<String>,
) -> Result<(), StoreError> {
    let order_parties = |parties: &mut Vec<String>, po_id: &str| -> Result<(), StoreError> {
        if let Some(order) = query::purchase_order(store, po_id)? {
            parties.extend([order.buyer, order.seller]);
        }
        Ok(())
    };
    match &body.command {
        Some(Command::RecordShipment(c)) => order_parties(parties, &c.po_id)?,
        Some(Command::ConfirmDelivery(c)) => {
            if let Some(shipment) = query::shipment(store, &c.shipment_id)? {
                parties.push(shipment.carrier);
                order_parties(parties, &shipment.po_id)?;
            }
        }
        Some(Command::IssueInvoice(c)) => order_parties(parties, &c.po_id)?,
        Some(Command::AcceptInvoice(AcceptInvoice { invoice_id, .. }))
        | Some(Command::RejectInvoice(RejectInvoice { invoice_id, .. })) => {
            if let Some(invoice) = query::invoice(store, invoice_id)? {
                parties.extend([invoice.seller, invoice.buyer]);
            }
        }
        Some(Command::TransferToken(c)) => {
            if let Some(token) = query::token(store, &c.token_id)? {
                parties.push(token.obligor);
            }
        }
        Some(Command::WithdrawOffer(WithdrawOffer { offer_id }))
        | Some(Command::DiscountToken(DiscountToken { offer_id, .. })) => {
            if let Some(offer) = query::offer(store, offer_id)? {
                parties.extend([offer.holder, offer.bank]);
            }
        }
        Some(Command::SettleToken(c)) => {
            if let Some(token) = query::token(store, &c.token_id)? {
                parties.extend([token.holder, token.obligor]);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The parties a command names itself.
fn named(body: &TxBody, parties: &mut Vec<String>) {
    match &body.command {
        Some(Command::RegisterParty(c)) => parties.push(c.party_id.clone()),
        Some(Command::SetFrozen(c)) => parties.push(c.party_id.clone()),
        Some(Command::GrantCreditLine(c)) => parties.push(c.obligor.clone()),
        Some(Command::CreatePurchaseOrder(c)) => parties.push(c.seller.clone()),
        Some(Command::RecordShipment(c)) => parties.push(c.carrier.clone()),
        Some(Command::TransferToken(c)) => parties.push(c.to.clone()),
        Some(Command::OfferToken(c)) => parties.push(c.bank.clone()),
        Some(Command::GrantAccess(c)) => parties.push(c.grantee.clone()),
        Some(Command::RevokeAccess(c)) => parties.push(c.grantee.clone()),
        _ => {}
    }
}
