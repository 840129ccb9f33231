//! JSON views of ledger records: ids and amounts as strings, hashes and keys as hex, enums by
//! name, times in ms since the Unix epoch.

use std::collections::BTreeMap;

use ledger::money::format_amount;
use ledger::pb::{
    AccessGrant, AccessScope, InvoiceStatus, Party, PurchaseOrder, ReceivableToken, Role, Shipment,
    TxResult,
};
use ledger::query::{self, Lineage};
use ledger::supervision;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A role's name.
pub fn role_name(role: i32) -> &'static str {
    match Role::try_from(role) {
        Ok(Role::Registrar) => "registrar",
        Ok(Role::Enterprise) => "enterprise",
        Ok(Role::Bank) => "bank",
        Ok(Role::Logistics) => "logistics",
        Ok(Role::Regulator) => "regulator",
        _ => "unspecified",
    }
}

/// A party (public).
pub fn party(party: &Party) -> Value {
    json!({
        "party_id": party.party_id,
        "name": party.name,
        "role": role_name(party.role),
        "public_key": hex::encode(&party.public_key),
        "frozen": party.frozen,
        "registered_at_ms": party.registered_at_ms,
    })
}

/// A purchase order.
pub fn purchase_order(order: &PurchaseOrder) -> Value {
    json!({
        "po_id": order.po_id,
        "buyer": order.buyer,
        "seller": order.seller,
        "currency": order.currency,
        "lines": order.lines.iter().map(|l| json!({
            "sku": l.sku, "quantity": l.quantity, "unit_price": l.unit_price,
        })).collect::<Vec<_>>(),
        "shipped": order.shipped.iter().map(|s| json!({
            "sku": s.sku, "quantity": s.quantity,
        })).collect::<Vec<_>>(),
        "shipment_ids": order.shipment_ids,
        "created_at_ms": order.created_at_ms,
    })
}

/// A shipment.
pub fn shipment(shipment: &Shipment) -> Value {
    let optional = |ms: u64| if ms == 0 { Value::Null } else { json!(ms) };
    json!({
        "shipment_id": shipment.shipment_id,
        "po_id": shipment.po_id,
        "lines": shipment.lines.iter().map(|l| json!({
            "sku": l.sku, "quantity": l.quantity,
        })).collect::<Vec<_>>(),
        "carrier": if shipment.carrier.is_empty() { Value::Null } else { json!(shipment.carrier) },
        "document_hash": hex::encode(&shipment.document_hash),
        "shipped_at_ms": shipment.shipped_at_ms,
        "delivered_at_ms": optional(shipment.delivered_at_ms),
        "carrier_attested_at_ms": optional(shipment.carrier_attested_at_ms),
        "invoice_id": if shipment.invoice_id.is_empty() { Value::Null } else { json!(shipment.invoice_id) },
    })
}

/// An invoice.
pub fn invoice(invoice: &ledger::pb::Invoice) -> Value {
    let status = match InvoiceStatus::try_from(invoice.status) {
        Ok(InvoiceStatus::Issued) => "issued",
        Ok(InvoiceStatus::Accepted) => "accepted",
        Ok(InvoiceStatus::Rejected) => "rejected",
        _ => "unspecified",
    };
    let text = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "invoice_id": invoice.invoice_id,
        "po_id": invoice.po_id,
        "seller": invoice.seller,
        "buyer": invoice.buyer,
        "shipment_ids": invoice.shipment_ids,
        "amount": invoice.amount,
        "currency": invoice.currency,
        "due_date_ms": invoice.due_date_ms,
        "document_hash": hex::encode(&invoice.document_hash),
        "status": status,
        "issued_at_ms": invoice.issued_at_ms,
        "token_id": text(&invoice.token_id),
        "maturity_ms": if invoice.maturity_ms == 0 { Value::Null } else { json!(invoice.maturity_ms) },
        "reject_reason": text(&invoice.reject_reason),
    })
}

/// A receivable token, with its state at ledger time `now_ms` (`overdue` is derived).
pub fn token(token: &ReceivableToken, now_ms: u64) -> Value {
    let text = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "token_id": token.token_id,
        "invoice_id": token.invoice_id,
        "obligor": token.obligor,
        "holder": token.holder,
        "face_value": token.face_value,
        "currency": token.currency,
        "maturity_ms": token.maturity_ms,
        "state": query::token_state(token, now_ms).as_str(),
        "parent_id": text(&token.parent_id),
        "child_ids": token.child_ids,
        "holder_changes": token.holder_changes,
        "open_offer_id": text(&token.open_offer_id),
    })
}

/// A token's lineage.
pub fn lineage(lineage: &Lineage, now_ms: u64) -> Value {
    json!({
        "token": token(&lineage.token, now_ms),
        "ancestors": lineage.ancestors.iter().map(|t| token(t, now_ms)).collect::<Vec<_>>(),
        "descendants": lineage.descendants.iter().map(|t| token(t, now_ms)).collect::<Vec<_>>(),
    })
}

/// A transaction body as JSON: its signer, command name and the command's fields (amounts as
/// strings, hashes and keys as hex, enums by name); `null` if the bytes do not decode.
pub fn decoded_body(body: &[u8]) -> Value {
    use ledger::pb::tx_body::Command;
    use prost::Message;
    let Ok(body) = ledger::pb::TxBody::decode(body) else { return Value::Null };
    let scope = |scope: i32| match ledger::pb::AccessScope::try_from(scope) {
        Ok(ledger::pb::AccessScope::All) => "all",
        Ok(ledger::pb::AccessScope::Trade) => "trade",
        Ok(ledger::pb::AccessScope::Receivables) => "receivables",
        Ok(ledger::pb::AccessScope::Credit) => "credit",
        _ => "unspecified",
    };
    let command = match &body.command {
        None => Value::Null,
        Some(Command::RegisterParty(c)) => json!({
            "party_id": c.party_id, "name": c.name, "role": role_name(c.role),
            "public_key": hex::encode(&c.public_key),
        }),
        Some(Command::RotateKey(c)) => json!({"new_public_key": hex::encode(&c.new_public_key)}),
        Some(Command::SetFrozen(c)) => json!({"party_id": c.party_id, "frozen": c.frozen}),
        Some(Command::GrantCreditLine(c)) => json!({
            "line_id": c.line_id, "obligor": c.obligor, "limit": c.limit,
            "currency": c.currency, "expires_at_ms": c.expires_at_ms,
        }),
        Some(Command::CreatePurchaseOrder(c)) => json!({
            "po_id": c.po_id, "seller": c.seller, "currency": c.currency,
            "lines": c.lines.iter().map(|l| json!({
                "sku": l.sku, "quantity": l.quantity, "unit_price": l.unit_price,
            })).collect::<Vec<_>>(),
        }),
        Some(Command::RecordShipment(c)) => json!({
            "shipment_id": c.shipment_id, "po_id": c.po_id, "carrier": c.carrier,
            "document_hash": hex::encode(&c.document_hash),
            "lines": c.lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity}))
                .collect::<Vec<_>>(),
        }),
        Some(Command::ConfirmDelivery(c)) => json!({"shipment_id": c.shipment_id}),
        Some(Command::IssueInvoice(c)) => json!({
            "invoice_id": c.invoice_id, "po_id": c.po_id, "shipment_ids": c.shipment_ids,
            "amount": c.amount, "due_date_ms": c.due_date_ms,
            "document_hash": hex::encode(&c.document_hash),
        }),
        Some(Command::AcceptInvoice(c)) => {
            json!({"invoice_id": c.invoice_id, "maturity_ms": c.maturity_ms})
        }
        Some(Command::RejectInvoice(c)) => json!({"invoice_id": c.invoice_id, "reason": c.reason}),
        Some(Command::TransferToken(c)) => {
            json!({"token_id": c.token_id, "to": c.to, "amount": c.amount})
        }
        Some(Command::OfferToken(c)) => json!({
            "token_id": c.token_id, "bank": c.bank, "max_annual_rate": c.max_annual_rate,
            "expires_at_ms": c.expires_at_ms,
        }),
        Some(Command::WithdrawOffer(c)) => json!({"offer_id": c.offer_id}),
        Some(Command::DiscountToken(c)) => {
            json!({"offer_id": c.offer_id, "annual_rate": c.annual_rate})
        }
        Some(Command::SettleToken(c)) => {
            json!({"token_id": c.token_id, "payment_reference": c.payment_reference})
        }
        Some(Command::GrantAccess(c)) => json!({
            "grantee": c.grantee, "scope": scope(c.scope), "expires_at_ms": c.expires_at_ms,
        }),
        Some(Command::RevokeAccess(c)) => json!({"grantee": c.grantee, "scope": scope(c.scope)}),
    };
    json!({
        "chain_id": body.chain_id,
        "signer": body.signer,
        "kind": body.command.as_ref().map(ledger::tx::command_name),
        "valid_until_ms": body.valid_until_ms,
        "nonce": body.nonce,
        "command": command,
    })
}

/// An offer to a bank, with whether it has lapsed at ledger time `now_ms` (an open offer past
/// its expiry can no longer be discounted).
pub fn offer(offer: &ledger::pb::Offer, now_ms: u64) -> Value {
    use ledger::pb::OfferStatus;
    let status = match OfferStatus::try_from(offer.status) {
        Ok(OfferStatus::Open) => "open",
        Ok(OfferStatus::Withdrawn) => "withdrawn",
        Ok(OfferStatus::Discounted) => "discounted",
        Ok(OfferStatus::Closed) => "closed",
        Ok(OfferStatus::Unspecified) | Err(_) => "unspecified",
    };
    json!({
        "offer_id": offer.offer_id,
        "token_id": offer.token_id,
        "holder": offer.holder,
        "bank": offer.bank,
        "max_annual_rate": offer.max_annual_rate,
        "expires_at_ms": offer.expires_at_ms,
        "status": status,
        "lapsed": status == "open" && offer.expires_at_ms <= now_ms,
        "created_at_ms": offer.created_at_ms,
    })
}

/// A financing: a token discounted at a bank.
pub fn financing(financing: &ledger::pb::Financing) -> Value {
    json!({
        "offer_id": financing.offer_id,
        "token_id": financing.token_id,
        "seller": financing.seller,
        "bank": financing.bank,
        "obligor": financing.obligor,
        "face_value": financing.face_value,
        "currency": financing.currency,
        "annual_rate": financing.annual_rate,
        "days": financing.days,
        "proceeds": financing.proceeds,
        "financed_at_ms": financing.financed_at_ms,
    })
}

/// A transaction's hash, height and whether it applied: what anyone may know of it.
pub fn outcome_summary(height: u64, result: &TxResult) -> Value {
    json!({
        "tx_hash": hex::encode(&result.tx_hash),
        "height": height,
        "outcome": if result.applied { "applied" } else { "rejected" },
    })
}

/// A transaction's outcome: applied (with the ids it created) or rejected (with the reason).
pub fn outcome_json(height: u64, result: &TxResult) -> Value {
    let mut value = outcome_summary(height, result);
    if result.applied {
        value["created_ids"] = json!(result.created_ids);
    } else {
        value["reason"] = json!({"code": result.reject_code, "message": result.reject_message});
    }
    value
}

/// A fraction with four decimal places (`"0.4120"`).
fn fraction(value: Decimal) -> String {
    let mut value = value.round_dp(4);
    value.rescale(4);
    value.to_string()
}

/// Each of `rows` through `view`, as a JSON array.
fn each<T>(rows: &[T], view: impl Fn(&T) -> Value) -> Value {
    Value::Array(rows.iter().map(view).collect())
}

/// `GET /v1/supervision/exposure`: exposure per obligor.
pub fn exposure(rows: &[supervision::ExposureRow]) -> Value {
    let obligors = each(rows, |row| {
        json!({
            "obligor": row.obligor,
            "currency": row.exposure.currency,
            "unsettled": format_amount(row.exposure.unsettled),
            "overdue": format_amount(row.exposure.overdue),
            "credit_limit": format_amount(row.exposure.credit_limit),
            "credit_used": row.credit_used().map(fraction),
            "holders": row.exposure.holders,
            "live_tokens": row.live_tokens,
        })
    });
    json!({ "obligors": obligors })
}

/// `GET /v1/supervision/concentration`: the largest obligors and banks per currency.
pub fn concentration(rows: &[supervision::Concentration]) -> Value {
    let shares = |shares: &[supervision::Share]| {
        each(shares, |s| {
            json!({
                "party": s.party,
                "financed": format_amount(s.financed),
                "share": s.share.map(fraction),
            })
        })
    };
    let currencies = each(rows, |c| {
        json!({
            "currency": c.currency,
            "financed_total": format_amount(c.financed_total),
            "obligors": shares(&c.obligors),
            "banks": shares(&c.banks),
        })
    });
    json!({ "currencies": currencies })
}

/// `GET /v1/supervision/maturity`: face value falling due per week, per currency.
pub fn maturity(weeks: u64, ladders: &[supervision::Ladder]) -> Value {
    let currencies = each(ladders, |l| {
        let buckets = each(&l.buckets, |b| {
            json!({
                "week": b.week,
                "from_ms": b.from_ms,
                "to_ms": b.to_ms,
                "face_value": format_amount(b.face_value),
                "tokens": b.tokens,
            })
        });
        json!({
            "currency": l.currency,
            "overdue": format_amount(l.overdue),
            "overdue_tokens": l.overdue_tokens,
            "buckets": buckets,
            "later": format_amount(l.later),
            "later_tokens": l.later_tokens,
        })
    });
    json!({ "weeks": weeks, "currencies": currencies })
}

/// `GET /v1/supervision/financing`: financing per bank and currency.
pub fn financing_by_bank(rows: &[supervision::BankFinancing]) -> Value {
    let banks = each(rows, |b| {
        json!({
            "bank": b.bank,
            "currency": b.currency,
            "count": b.count,
            "face_value": format_amount(b.face_value),
            "proceeds": format_amount(b.proceeds),
            "discount": format_amount(b.discount()),
            "average_rate": b.average_rate.normalize().to_string(),
            "average_days": b.average_days,
        })
    });
    json!({ "banks": banks })
}

/// `GET /v1/supervision/rejections`: counts by code and the latest rejections.
pub fn rejections(log: &supervision::Rejections) -> Value {
    let by_code = each(&log.by_code, |(code, count)| json!({"code": code, "count": count}));
    let recent = each(&log.recent, |r| {
        json!({
            "height": r.height,
            "index": r.index,
            "time_ms": r.time_ms,
            "tx_hash": hex::encode(&r.tx_hash),
            "signer": r.signer,
            "kind": r.kind,
            "code": r.code,
            "message": r.message,
            "signature_verified": r.signature_verified,
        })
    });
    json!({ "total": log.total, "by_code": by_code, "recent": recent })
}

/// An access scope's name.
pub fn scope_name(scope: i32) -> &'static str {
    match AccessScope::try_from(scope) {
        Ok(AccessScope::All) => "all",
        Ok(AccessScope::Trade) => "trade",
        Ok(AccessScope::Receivables) => "receivables",
        Ok(AccessScope::Credit) => "credit",
        _ => "unspecified",
    }
}

/// `GET /v1/parties/{owner}/grants`: the grants `owner` gave, each with the reads made under it
/// on this replica (`reads`, by grantee).
pub fn grants(
    owner: &str,
    grants: &[AccessGrant],
    reads: &BTreeMap<String, u64>,
    ledger_now_ms: u64,
) -> Value {
    let grants = each(grants, |g| {
        json!({
            "grantee": g.grantee,
            "scope": scope_name(g.scope),
            "expires_at_ms": g.expires_at_ms,
            "granted_at_ms": g.granted_at_ms,
            "active": g.expires_at_ms > ledger_now_ms,
            "reads_on_this_replica": reads.get(&g.grantee).copied().unwrap_or(0),
        })
    });
    json!({"owner": owner, "grants": grants})
}
