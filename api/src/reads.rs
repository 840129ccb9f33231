//! The record reads of the interface contract: parties (public) and the private records
//! (purchase orders, shipments, invoices, tokens, lineages, tokens by holder), each answered from
//! this replica's state after a signed-request check ([`crate::auth`]), with the replica's height
//! in the `x-scf-height` header. Every read that finds data is returned with its access-log
//! entry ([`crate::access`]), which the route writes before it answers; the owner sees the
//! per-grant counts of that log with its grants.

use std::collections::BTreeMap;

use ledger::pb::AccessScope;
use ledger::{StateStore, query};
use serde_json::{Value, json};
use warp::http::StatusCode;

use crate::access::{self, Read};
use crate::auth::{self, Access, Authenticator, Credentials, Reader};
use crate::error::ApiError;
use crate::views;

/// Which record a private read asks for.
#[derive(Debug, Clone)]
pub enum Record {
    /// `GET /v1/purchase-orders/{id}`.
    PurchaseOrder(String),
    /// `GET /v1/shipments/{id}`.
    Shipment(String),
    /// `GET /v1/invoices/{id}`.
    Invoice(String),
    /// `GET /v1/tokens/{id}`.
    Token(String),
    /// `GET /v1/tokens/{id}/lineage`.
    Lineage(String),
    /// `GET /v1/tokens?holder=ID`.
    TokensOf(String),
    /// `GET /v1/parties/{id}/grants`: the grants a party gave, with read counts.
    Grants(String),
    /// `GET /v1/offers/{id}`.
    Offer(String),
    /// `GET /v1/financings?token=&bank=&seller=`: the financings the reader may see, narrowed
    /// by any of the three.
    Financings(FinancingFilter),
}

/// What `GET /v1/financings` narrows to (each `None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinancingFilter {
    /// `token=`: financings of this token.
    pub token: Option<String>,
    /// `bank=`: by this bank.
    pub bank: Option<String>,
    /// `seller=`: sold by this party.
    pub seller: Option<String>,
}

/// Whether `reader` sees a sale's terms: its seller, its bank and regulators do, nobody else
/// (not the obligor, not a later holder, not a grantee: the rate is the two parties' business).
fn sees_financing(reader: &Reader, seller: &str, bank: &str) -> bool {
    reader.role == ledger::pb::Role::Regulator || reader.party == seller || reader.party == bank
}

/// The record a lookup found. A missing record is `not_found` to a regulator and 403 to anyone
/// else, the answer a stranger gets for a record that exists: a party cannot probe for ids.
fn found<T>(record: Result<Option<T>, ledger::StoreError>, reader: &Reader) -> Result<T, ApiError> {
    record?.ok_or_else(|| {
        if reader.role == ledger::pb::Role::Regulator {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such record")
        } else {
            auth::forbidden()
        }
    })
}

/// What one read found: the answer, and its access-log entry.
pub struct Found {
    /// The JSON answer.
    pub value: Value,
    /// The replica's height.
    pub height: u64,
    /// What to log before answering.
    pub read: Read,
}

/// Authenticates the request and reads `record`, all against one view of the state.
pub fn read(
    state: &dyn StateStore,
    authenticator: &Authenticator,
    credentials: &Credentials,
    path_and_query: &str,
    purpose: Option<&str>,
    record: &Record,
    grant_reads: Option<BTreeMap<String, u64>>,
) -> Result<Found, ApiError> {
    let now_ms = auth::now_ms();
    let reader =
        authenticator.authenticate(state, credentials, "GET", path_and_query, b"", now_ms)?;
    let purpose = access::purpose_of(&reader, purpose)?;
    let tip = query::tip(state)?.unwrap_or_default();
    let ledger_now = tip.time_ms;
    let check = |owners: &[&str], scope| -> Result<Access, ApiError> {
        auth::may_read(state, &reader, owners, scope)?.ok_or_else(auth::forbidden)
    };
    let own = || {
        if reader.role == ledger::pb::Role::Regulator { Access::Regulator } else { Access::Party }
    };
    // Each arm: the answer, the access that allowed it, whose data it shows and which records.
    let (value, access, owners, records): (Value, Access, Vec<String>, Vec<String>) = match record {
        Record::PurchaseOrder(id) => {
            let order = found(query::purchase_order(state, id), &reader)?;
            let access = check(&[&order.buyer, &order.seller], AccessScope::Trade)?;
            let owners = vec![order.buyer.clone(), order.seller.clone()];
            (views::purchase_order(&order), access, owners, vec![format!("purchase_order:{id}")])
        }
        Record::Shipment(id) => {
            let shipment = found(query::shipment(state, id), &reader)?;
            let order = query::purchase_order(state, &shipment.po_id)?;
            let (buyer, seller) =
                order.as_ref().map_or(("", ""), |o| (o.buyer.as_str(), o.seller.as_str()));
            let access = check(&[buyer, seller, &shipment.carrier], AccessScope::Trade)?;
            let owners = vec![buyer.to_owned(), seller.to_owned(), shipment.carrier.clone()];
            (views::shipment(&shipment), access, owners, vec![format!("shipment:{id}")])
        }
        Record::Invoice(id) => {
            let invoice = found(query::invoice(state, id), &reader)?;
            let access = check(&[&invoice.seller, &invoice.buyer], AccessScope::Trade)?;
            let owners = vec![invoice.seller.clone(), invoice.buyer.clone()];
            (views::invoice(&invoice), access, owners, vec![format!("invoice:{id}")])
        }
        Record::Token(id) => {
            let token = found(query::token(state, id), &reader)?;
            let access = check(&[&token.holder, &token.obligor], AccessScope::Receivables)?;
            let owners = vec![token.holder.clone(), token.obligor.clone()];
            (views::token(&token, ledger_now), access, owners, vec![format!("token:{id}")])
        }
        Record::Lineage(id) => {
            let lineage = found(query::lineage(state, id), &reader)?;
            // The holder of the piece asked for sees where it came from and what it split
            // into: provenance is what a bank checks before it finances a piece.
            let token = &lineage.token;
            let access = check(&[&token.holder, &token.obligor], AccessScope::Receivables)?;
            let mut owners = vec![token.holder.clone(), token.obligor.clone()];
            let mut value = views::lineage(&lineage, ledger_now);
            // The discounts of the tree's pieces, each shown to the parties of that sale (the
            // seller and the bank) and to regulators: its rate is their business, not the
            // obligor's or a later holder's.
            let ids: Vec<&str> = (lineage.ancestors.iter())
                .chain([&lineage.token])
                .chain(&lineage.descendants)
                .map(|t| t.token_id.as_str())
                .collect();
            let mut financings = Vec::new();
            for sale in query::financings(state)?
                .iter()
                .filter(|f| ids.contains(&f.token_id.as_str()))
                .filter(|f| sees_financing(&reader, &f.seller, &f.bank))
            {
                owners.extend([sale.seller.clone(), sale.bank.clone()]);
                financings.push(views::financing(sale));
            }
            value["financings"] = Value::Array(financings);
            (value, access, owners, vec![format!("lineage:{id}")])
        }
        Record::TokensOf(holder) => {
            let access = check(&[holder], AccessScope::Receivables)?;
            let tokens = query::tokens_by_holder(state, holder)?;
            let tokens: Vec<Value> = tokens.iter().map(|t| views::token(t, ledger_now)).collect();
            let value = json!({"holder": holder, "tokens": tokens});
            (value, access, vec![holder.clone()], vec![format!("tokens_of:{holder}")])
        }
        Record::Offer(id) => {
            // An offer's terms, like a sale's, are its holder's, its bank's and regulators'.
            let offer = found(query::offer(state, id), &reader)?;
            if !sees_financing(&reader, &offer.holder, &offer.bank) {
                return Err(auth::forbidden());
            }
            let owners = vec![offer.holder.clone(), offer.bank.clone()];
            (views::offer(&offer, ledger_now), own(), owners, vec![format!("offer:{id}")])
        }
        Record::Financings(filter) => {
            let mut owners = Vec::new();
            let mut records = Vec::new();
            let mut financings = Vec::new();
            for sale in query::financings(state)?
                .iter()
                .filter(|f| sees_financing(&reader, &f.seller, &f.bank))
                .filter(|f| filter.token.as_ref().is_none_or(|t| *t == f.token_id))
                .filter(|f| filter.bank.as_ref().is_none_or(|b| *b == f.bank))
                .filter(|f| filter.seller.as_ref().is_none_or(|s| *s == f.seller))
            {
                owners.extend([sale.seller.clone(), sale.bank.clone()]);
                records.push(format!("financing:{}", sale.token_id));
                financings.push(views::financing(sale));
            }
            (json!({"financings": financings}), own(), owners, records)
        }
        Record::Grants(owner) => {
            // Only the owner itself or a regulator: a grantee does not see the others.
            if reader.party != *owner && reader.role != ledger::pb::Role::Regulator {
                return Err(auth::forbidden());
            }
            let reads = grant_reads.unwrap_or_default();
            let grants = query::grants_by_owner(state, owner)?;
            let value = views::grants(owner, &grants, &reads, ledger_now);
            (value, own(), vec![owner.clone()], vec![format!("grants:{owner}")])
        }
    };
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    let read = Read::new(&reader, purpose, &access, path_and_query, &owners, records);
    Ok(Found { value, height: tip.height, read })
}
