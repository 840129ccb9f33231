//! The invariant checker: the domain contract's invariants over a snapshot of a ledger's state.
//!
//! It works on a [`Snapshot`] of records ([`Snapshot::from_store`]), so the same checks run
//! against the in-process run's state and against the state a cluster run replays from the
//! chain it read back from an observer ([`crate::remote`]).
//! Each violation is described in a sentence; an empty list means every invariant holds.

use std::collections::BTreeMap;

use ledger::pb::{
    Exposure, Financing, Invoice, InvoiceStatus, ObligorCredit, ReceivableToken, Shipment,
    TokenStatus,
};
use ledger::{StateStore, StoreError, query};
use rust_decimal::Decimal;

/// Every record the invariants speak about.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every invoice.
    pub invoices: Vec<Invoice>,
    /// Every token, retired ones included.
    pub tokens: Vec<ReceivableToken>,
    /// Every shipment.
    pub shipments: Vec<Shipment>,
    /// Every financing.
    pub financings: Vec<Financing>,
    /// Every obligor's credit lines.
    pub credit: Vec<ObligorCredit>,
    /// Every obligor's recorded unsettled totals.
    pub exposures: Vec<Exposure>,
}

impl Snapshot {
    /// Reads every record from a store.
    pub fn from_store<S: StateStore + ?Sized>(store: &S) -> Result<Self, StoreError> {
        Ok(Self {
            invoices: query::invoices(store)?,
            tokens: query::tokens(store)?,
            shipments: query::shipments(store)?,
            financings: query::financings(store)?,
            credit: query::all_credit(store)?,
            exposures: query::all_exposures(store)?,
        })
    }
}

/// An amount checked by [`unreadable_amounts`] first, so it always parses here.
fn amount(text: &str) -> Decimal {
    ledger::money::parse_amount(text).unwrap_or_default()
}

/// Every amount in the snapshot that is not a valid ledger amount (at most two decimals, at most
/// `AMOUNT_MAX`). The ledger only writes valid ones; any other is a violation in itself, and
/// once none is left the sums below cannot overflow.
fn unreadable_amounts(snapshot: &Snapshot) -> Vec<String> {
    let mut texts: Vec<(&str, &str)> = Vec::new();
    texts.extend(snapshot.invoices.iter().map(|i| (i.invoice_id.as_str(), i.amount.as_str())));
    texts.extend(snapshot.tokens.iter().map(|t| (t.token_id.as_str(), t.face_value.as_str())));
    texts.extend(snapshot.exposures.iter().map(|e| (e.obligor.as_str(), e.unsettled.as_str())));
    for credit in &snapshot.credit {
        texts.extend(credit.lines.iter().map(|l| (l.line_id.as_str(), l.limit.as_str())));
    }
    texts
        .into_iter()
        .filter(|(_, text)| ledger::money::parse_amount(text).is_err())
        .map(|(id, text)| {
            format!("{id} holds an amount that is not a valid ledger amount: {text:?}")
        })
        .collect()
}

/// Checks every invariant and returns the violations.
pub fn check(snapshot: &Snapshot) -> Vec<String> {
    let mut violations = unreadable_amounts(snapshot);
    if !violations.is_empty() {
        return violations;
    }
    let tokens: BTreeMap<&str, &ReceivableToken> =
        snapshot.tokens.iter().map(|t| (t.token_id.as_str(), t)).collect();
    let live = TokenStatus::Live as i32;
    let retired = TokenStatus::Retired as i32;

    // Conservation: for every accepted invoice, its unretired tokens sum to the invoice amount,
    // and every retired token's children sum to it.
    let mut by_invoice: BTreeMap<&str, Vec<&ReceivableToken>> = BTreeMap::new();
    for token in &snapshot.tokens {
        by_invoice.entry(token.invoice_id.as_str()).or_default().push(token);
    }
    for invoice in &snapshot.invoices {
        let family = by_invoice.remove(invoice.invoice_id.as_str()).unwrap_or_default();
        let roots = family.iter().filter(|t| t.parent_id.is_empty()).count();
        let accepted = invoice.status == InvoiceStatus::Accepted as i32;
        if roots != usize::from(accepted) {
            violations.push(format!(
                "invoice {} has {roots} root tokens, expected {}",
                invoice.invoice_id,
                usize::from(accepted)
            ));
        }
        if accepted {
            let total: Decimal =
                family.iter().filter(|t| t.status != retired).map(|t| amount(&t.face_value)).sum();
            if total != amount(&invoice.amount) {
                violations.push(format!(
                    "invoice {}: its tokens hold {total}, the invoice is {}",
                    invoice.invoice_id, invoice.amount
                ));
            }
        }
    }
    for invoice_id in by_invoice.keys() {
        violations.push(format!("tokens name a missing invoice {invoice_id}"));
    }
    for token in &snapshot.tokens {
        if token.status == retired {
            let children: Vec<Option<&&ReceivableToken>> =
                token.child_ids.iter().map(|id| tokens.get(id.as_str())).collect();
            let sum: Decimal = children.iter().flatten().map(|c| amount(&c.face_value)).sum();
            if children.len() != 2
                || children.iter().any(Option::is_none)
                || sum != amount(&token.face_value)
            {
                violations.push(format!(
                    "retired token {} is not split exactly into two children",
                    token.token_id
                ));
            }
        } else if !token.child_ids.is_empty() {
            violations.push(format!("token {} has children but is not retired", token.token_id));
        }
    }

    // A shipment is invoiced at most once, and only by an invoice that lists it.
    let mut invoiced: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for invoice in &snapshot.invoices {
        for shipment in &invoice.shipment_ids {
            invoiced.entry(shipment.as_str()).or_default().push(&invoice.invoice_id);
        }
    }
    for (shipment, by) in &invoiced {
        if by.len() > 1 {
            violations.push(format!("shipment {shipment} is invoiced by {by:?}"));
        }
    }
    for shipment in &snapshot.shipments {
        let listed = invoiced.get(shipment.shipment_id.as_str());
        let consistent = match (shipment.invoice_id.is_empty(), listed) {
            (true, None) => true,
            (false, Some(by)) => by == &vec![shipment.invoice_id.as_str()],
            _ => false,
        };
        if !consistent {
            violations.push(format!(
                "shipment {} and the invoices disagree on who invoiced it",
                shipment.shipment_id
            ));
        }
    }

    // A document hash is used once (shipments and invoices share one space).
    let mut documents: BTreeMap<&[u8], usize> = BTreeMap::new();
    for hash in snapshot
        .shipments
        .iter()
        .map(|s| &s.document_hash)
        .chain(snapshot.invoices.iter().map(|i| &i.document_hash))
    {
        *documents.entry(hash.as_slice()).or_default() += 1;
    }
    if let Some((hash, count)) = documents.iter().find(|(_, n)| **n > 1) {
        violations.push(format!("document hash {} is used {count} times", hex::encode(hash)));
    }

    // No double financing: a token is discounted at most once per change of holder.
    let mut financed: BTreeMap<&str, u64> = BTreeMap::new();
    for financing in &snapshot.financings {
        *financed.entry(financing.token_id.as_str()).or_default() += 1;
    }
    for (token_id, count) in financed {
        match tokens.get(token_id) {
            Some(token) if count <= token.holder_changes => {}
            Some(token) => violations.push(format!(
                "token {token_id} was discounted {count} times with only {} changes of holder",
                token.holder_changes
            )),
            None => violations.push(format!("financing names a missing token {token_id}")),
        }
    }

    // Exposure: each obligor's recorded unsettled value equals its live tokens and stays within
    // its credit lines (the simulator never lowers a line or lets one lapse, so the lines as they
    // stand bound every acceptance).
    let mut unsettled: BTreeMap<(&str, &str), Decimal> = BTreeMap::new();
    for token in snapshot.tokens.iter().filter(|t| t.status == live) {
        *unsettled.entry((&token.obligor, &token.currency)).or_default() +=
            amount(&token.face_value);
    }
    for exposure in &snapshot.exposures {
        let key = (exposure.obligor.as_str(), exposure.currency.as_str());
        let computed = unsettled.remove(&key).unwrap_or_default();
        if computed != amount(&exposure.unsettled) {
            violations.push(format!(
                "{} owes {computed} {} in live tokens but its exposure says {}",
                exposure.obligor, exposure.currency, exposure.unsettled
            ));
        }
        let limit: Decimal = snapshot
            .credit
            .iter()
            .filter(|c| c.obligor == exposure.obligor)
            .flat_map(|c| &c.lines)
            .filter(|l| l.currency == exposure.currency)
            .map(|l| amount(&l.limit))
            .sum();
        if computed > limit {
            violations.push(format!(
                "{} owes {computed} {}, above its lines of {limit}",
                exposure.obligor, exposure.currency
            ));
        }
    }
    for ((obligor, currency), value) in unsettled {
        violations.push(format!(
            "{obligor} owes {value} {currency} in live tokens but has no exposure record"
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inproc::SIM_CHAIN_ID;
    use crate::workload::{Workload, WorkloadConfig, apply_blocks, party_key};
    use ledger::pb::ReceivableToken;
    use ledger::{Genesis, Ledger, MemStore};
    use prost::Message;

    const T0_MS: u64 = 1_700_000_000_000;

    /// A store after `blocks` closed-loop blocks of the seeded workload.
    fn simulated_store(blocks: usize) -> MemStore {
        let config = WorkloadConfig::new(42, SIM_CHAIN_ID);
        let genesis = Genesis {
            chain_id: SIM_CHAIN_ID.into(),
            registrar_public_key: party_key(42, ledger::chain::REGISTRAR_ID).public_key(),
            time_ms: T0_MS,
        };
        let ledger = Ledger::new(genesis);
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let mut workload = Workload::new(config);
        let mut now_ms = T0_MS;
        for (planned, met, result) in
            apply_blocks(&mut workload, &ledger, &mut store, &mut now_ms, blocks, 64)
        {
            assert!(met, "{}: {}", planned.kind, result.reject_message);
        }
        store
    }

    /// The violations found in the seeded workload's store after `forge` has rewritten some of
    /// its records behind the ledger's back.
    fn violations_after(forge: impl FnOnce(&mut MemStore)) -> Vec<String> {
        let mut store = simulated_store(40);
        forge(&mut store);
        check(&Snapshot::from_store(&store).unwrap())
    }

    /// Fails unless one of `violations` mentions `needle`.
    #[track_caller]
    fn assert_reported(violations: &[String], needle: &str) {
        assert!(violations.iter().any(|v| v.contains(needle)), "{needle:?}: {violations:?}");
    }

    fn rewrite_token(store: &mut MemStore, change: impl Fn(&mut ReceivableToken) -> bool) {
        let tokens = query::tokens(store).unwrap();
        let mut token = tokens
            .into_iter()
            .find(|t| t.status == TokenStatus::Live as i32)
            .expect("a live token");
        assert!(change(&mut token));
        store.put_raw(ledger::store::keys::token(&token.token_id), token.encode_to_vec());
    }

    // Goal: the honest workload's state passes every check (and has tokens to check).
    #[test]
    fn honest_state_passes() {
        let store = simulated_store(40);
        let snapshot = Snapshot::from_store(&store).unwrap();
        assert!(snapshot.tokens.len() > 10 && !snapshot.financings.is_empty());
        assert_eq!(check(&snapshot), Vec::<String>::new());
    }

    // Goal: a token whose face value was inflated breaks conservation and the exposure check.
    #[test]
    fn inflated_token_is_caught() {
        let violations = violations_after(|store| {
            rewrite_token(store, |t| {
                t.face_value = format!("{}", amount(&t.face_value) + Decimal::ONE);
                true
            });
        });
        assert_reported(&violations, "its tokens hold");
        assert_reported(&violations, "exposure says");
    }

    // Goal: amounts that are not valid ledger amounts (here two near the Decimal maximum, whose
    // sum would overflow) are reported as violations, never a panic.
    #[test]
    fn unreadable_amounts_are_violations() {
        let violations = violations_after(|store| {
            let huge = "79228162514264337593543950335";
            for token in query::tokens(store).unwrap().into_iter().take(2) {
                let mut token = token;
                token.face_value = huge.into();
                store.put_raw(ledger::store::keys::token(&token.token_id), token.encode_to_vec());
            }
        });
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations.iter().all(|v| v.contains("not a valid ledger amount")));
    }

    // Goal: a second financing of a token without a change of holder is caught.
    #[test]
    fn double_financing_is_caught() {
        let violations = violations_after(|store| {
            let financing = query::financings(store).unwrap().remove(0);
            let token = query::token(store, &financing.token_id).unwrap().unwrap();
            for n in 0..token.holder_changes {
                let mut copy = financing.clone();
                copy.offer_id = format!("forged-{n}");
                store.put_raw(ledger::store::keys::financing(&copy.offer_id), copy.encode_to_vec());
            }
        });
        assert_reported(&violations, "discounted");
    }

    // Goal: a shipment claimed by two invoices (double invoicing) is caught.
    #[test]
    fn double_invoicing_is_caught() {
        let violations = violations_after(|store| {
            let mut invoices = query::invoices(store).unwrap();
            let first = invoices.remove(0);
            let mut second = invoices.remove(0);
            second.shipment_ids.push(first.shipment_ids[0].clone());
            store.put_raw(ledger::store::keys::invoice(&second.invoice_id), second.encode_to_vec());
        });
        assert_reported(&violations, "is invoiced by");
    }

    // Goal: an obligor whose live tokens exceed its credit lines (here, lines cut to 1.00 under
    // an existing exposure) is caught.
    #[test]
    fn exposure_above_credit_lines_is_caught() {
        let mut store = simulated_store(40);
        let exposed = query::all_exposures(&store)
            .unwrap()
            .into_iter()
            .find(|e| amount(&e.unsettled) > Decimal::ONE)
            .expect("an obligor with live tokens");
        let mut credit = query::all_credit(&store)
            .unwrap()
            .into_iter()
            .find(|c| c.obligor == exposed.obligor)
            .expect("its credit lines");
        for line in &mut credit.lines {
            line.limit = "1.00".into();
        }
        store.put_raw(ledger::store::keys::credit(&credit.obligor), credit.encode_to_vec());
        let violations = check(&Snapshot::from_store(&store).unwrap());
        assert!(
            violations
                .iter()
                .any(|v| v.contains(&exposed.obligor) && v.contains("above its lines")),
            "{violations:?}"
        );
    }
}
