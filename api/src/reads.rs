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

impl Record {
    /// The record with its id percent-decoded (warp hands path segments over as sent: `a:b`
    /// may come as `a%3Ab`), or `400 bad_id` for an id no record can have: a malformed request,
    /// told apart from a missing record whoever asks, since its shape is no secret.
    fn decoded(&self) -> Result<Record, ApiError> {
        let fix = |id: &String| -> Result<String, ApiError> {
            let id = percent_decoded(id);
            check_id(&id)?;
            Ok(id)
        };
        Ok(match self {
            Record::PurchaseOrder(id) => Record::PurchaseOrder(fix(id)?),
            Record::Shipment(id) => Record::Shipment(fix(id)?),
            Record::Invoice(id) => Record::Invoice(fix(id)?),
            Record::Token(id) => Record::Token(fix(id)?),
            Record::Lineage(id) => Record::Lineage(fix(id)?),
            Record::TokensOf(id) => Record::TokensOf(id.clone()).checked(check_id(id))?,
            Record::Grants(id) => Record::Grants(fix(id)?),
            Record::Offer(id) => Record::Offer(fix(id)?),
            Record::Financings(filter) => Record::Financings(filter.clone()),
        })
    }

    fn checked(self, check: Result<(), ApiError>) -> Result<Record, ApiError> {
        check.map(|()| self)
    }
}

/// `text` with its `%XX` escapes decoded; a malformed escape or non-UTF-8 result is left as
/// it came (and then fails [`check_id`]).
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escape {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// `400 bad_id` unless `id` is one a record can have (`ledger::machine::check_id`).
pub fn check_id(id: &str) -> Result<(), ApiError> {
    ledger::machine::check_id("id", id)
        .map_err(|_| ApiError::bad_request("bad_id", "an id is 1 to 64 of A-Z a-z 0-9 . _ : -"))
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
    let record = &record.decoded()?;
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
    // Each arm: the answer, the access that allowed it, and (owner, record) for every record
    // of someone's that the answer holds.
    type Items = Vec<(String, String)>;
    let pairs = |owners: &[&str], record: String| -> Items {
        owners.iter().map(|o| ((*o).to_owned(), record.clone())).collect()
    };
    let (value, access, items): (Value, Access, Items) = match record {
        Record::PurchaseOrder(id) => {
            let order = found(query::purchase_order(state, id), &reader)?;
            let owners = [order.buyer.as_str(), &order.seller];
            let access = check(&owners, AccessScope::Trade)?;
            let items = pairs(&owners, format!("purchase_order:{id}"));
            (views::purchase_order(&order), access, items)
        }
        Record::Shipment(id) => {
            let shipment = found(query::shipment(state, id), &reader)?;
            let order = query::purchase_order(state, &shipment.po_id)?;
            let (buyer, seller) =
                order.as_ref().map_or(("", ""), |o| (o.buyer.as_str(), o.seller.as_str()));
            let owners = [buyer, seller, &shipment.carrier];
            let access = check(&owners, AccessScope::Trade)?;
            let items = pairs(&owners, format!("shipment:{id}"));
            (views::shipment(&shipment), access, items)
        }
        Record::Invoice(id) => {
            let invoice = found(query::invoice(state, id), &reader)?;
            let owners = [invoice.seller.as_str(), &invoice.buyer];
            let access = check(&owners, AccessScope::Trade)?;
            let items = pairs(&owners, format!("invoice:{id}"));
            (views::invoice(&invoice), access, items)
        }
        Record::Token(id) => {
            let token = found(query::token(state, id), &reader)?;
            let owners = [token.holder.as_str(), &token.obligor];
            let access = check(&owners, AccessScope::Receivables)?;
            let items = pairs(&owners, format!("token:{id}"));
            (views::token(&token, ledger_now), access, items)
        }
        Record::Lineage(id) => {
            let lineage = found(query::lineage(state, id), &reader)?;
            // The holder of the piece asked for sees where it came from and what it split
            // into: provenance is what a bank checks before it finances a piece.
            let token = &lineage.token;
            let access = check(&[&token.holder, &token.obligor], AccessScope::Receivables)?;
            let mut value = views::lineage(&lineage, ledger_now);
            // Every piece of the tree is shown: each is a read of its holder's and its
            // obligor's token.
            let tree: Vec<_> = (lineage.ancestors.iter())
                .chain([&lineage.token])
                .chain(&lineage.descendants)
                .collect();
            let mut items = Items::new();
            for piece in &tree {
                let record = format!("token:{}", piece.token_id);
                items.extend(pairs(&[&piece.holder, &piece.obligor], record));
            }
            // The discounts of the tree's pieces, each shown to the parties of that sale (the
            // seller and the bank) and to regulators: its rate is their business, not the
            // obligor's or a later holder's.
            let ids: Vec<&str> = tree.iter().map(|t| t.token_id.as_str()).collect();
            let mut financings = Vec::new();
            for sale in query::financings(state)?
                .iter()
                .filter(|f| ids.contains(&f.token_id.as_str()))
                .filter(|f| sees_financing(&reader, &f.seller, &f.bank))
            {
                let record = format!("financing:{}", sale.token_id);
                items.extend(pairs(&[&sale.seller, &sale.bank], record));
                financings.push(views::financing(sale));
            }
            value["financings"] = Value::Array(financings);
            (value, access, items)
        }
        Record::TokensOf(holder) => {
            let access = check(&[holder], AccessScope::Receivables)?;
            let tokens = query::tokens_by_holder(state, holder)?;
            let mut items = Items::new();
            for token in &tokens {
                items.extend(pairs(&[holder, &token.obligor], format!("token:{}", token.token_id)));
            }
            if tokens.is_empty() {
                // That the holder holds nothing is the holder's to know, too.
                items.extend(pairs(&[holder], format!("tokens_of:{holder}")));
            }
            let tokens: Vec<Value> = tokens.iter().map(|t| views::token(t, ledger_now)).collect();
            (json!({"holder": holder, "tokens": tokens}), access, items)
        }
        Record::Offer(id) => {
            // An offer's terms, like a sale's, are its holder's, its bank's and regulators'.
            let offer = found(query::offer(state, id), &reader)?;
            if !sees_financing(&reader, &offer.holder, &offer.bank) {
                return Err(auth::forbidden());
            }
            let items = pairs(&[&offer.holder, &offer.bank], format!("offer:{id}"));
            (views::offer(&offer, ledger_now), own(), items)
        }
        Record::Financings(filter) => {
            let mut items = Items::new();
            let mut financings = Vec::new();
            for sale in query::financings(state)?
                .iter()
                .filter(|f| sees_financing(&reader, &f.seller, &f.bank))
                .filter(|f| filter.token.as_ref().is_none_or(|t| *t == f.token_id))
                .filter(|f| filter.bank.as_ref().is_none_or(|b| *b == f.bank))
                .filter(|f| filter.seller.as_ref().is_none_or(|s| *s == f.seller))
            {
                // The view names the obligor too: its debt was sold.
                let record = format!("financing:{}", sale.token_id);
                items.extend(pairs(&[&sale.seller, &sale.bank, &sale.obligor], record));
                financings.push(views::financing(sale));
            }
            (json!({"financings": financings}), own(), items)
        }
        Record::Grants(owner) => {
            // Only the owner itself or a regulator: a grantee does not see the others.
            if reader.party != *owner && reader.role != ledger::pb::Role::Regulator {
                return Err(auth::forbidden());
            }
            let reads = grant_reads.unwrap_or_default();
            let grants = query::grants_by_owner(state, owner)?;
            let value = views::grants(owner, &grants, &reads, ledger_now);
            (value, own(), pairs(&[owner], format!("grants:{owner}")))
        }
    };
    let mut read = Read::new(&reader, purpose, &access, path_and_query);
    for (owner, record) in &items {
        read.add(owner, record);
    }
    Ok(Found { value, height: tip.height, read })
}
