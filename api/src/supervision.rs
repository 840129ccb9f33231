//! The supervision reads, `GET /v1/supervision/{exposure,concentration,maturity,financing,
//! rejections}`: the figures of `ledger::supervision` as JSON, from this replica's state, for a
//! signed request ([`crate::auth`]). A regulator sees the whole market (`"scope": "all"`); any
//! other party sees the rows about itself (`"scope": "own"`).

use std::collections::HashMap;

use ledger::money::format_amount;
use ledger::pb::Role;
use ledger::supervision::{self, Scope};
use ledger::{StateStore, query};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use warp::http::StatusCode;

use crate::auth::{self, Credentials};
use crate::error::ApiError;

/// Which supervision read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Exposure per obligor.
    Exposure,
    /// Largest obligors and banks by financed face value.
    Concentration,
    /// Face value falling due per week.
    Maturity,
    /// Financing per bank.
    Financing,
    /// The log of rejected transactions.
    Rejections,
}

impl Report {
    /// The report named by the last path segment.
    pub fn from_name(name: &str) -> Option<Report> {
        Some(match name {
            "exposure" => Report::Exposure,
            "concentration" => Report::Concentration,
            "maturity" => Report::Maturity,
            "financing" => Report::Financing,
            "rejections" => Report::Rejections,
            _ => return None,
        })
    }
}

/// Most rows of `top`, weeks of the ladder, and recent rejections one answer holds.
pub const TOP_MAX: usize = 100;
/// See [`TOP_MAX`].
pub const WEEKS_MAX: u64 = 104;
/// See [`TOP_MAX`].
pub const REJECTIONS_LIMIT_MAX: usize = 1000;

fn storage(e: ledger::StoreError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", e.to_string())
}

/// `?name=N` within `1..=max` (or `0..=max` when `zero_ok`), `default` when absent.
fn number(
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::bad_request(
                "bad_query",
                format!("{name} is a whole number from 0 to {max}"),
            )),
        },
    }
}

/// A fraction with four decimal places (`"0.4120"`).
fn fraction(value: Decimal) -> String {
    let mut value = value.round_dp(4);
    value.rescale(4);
    value.to_string()
}

/// Authenticates the request and computes `report` from one view of the state.
pub fn read(
    state: &dyn StateStore,
    credentials: &Credentials,
    path_and_query: &str,
    report: Report,
    query: &HashMap<String, String>,
) -> Result<(Value, u64), ApiError> {
    let now_ms = auth::now_ms();
    let reader = auth::authenticate(state, credentials, "GET", path_and_query, b"", now_ms)?;
    let scope =
        if reader.role == Role::Regulator { Scope::All } else { Scope::Party(&reader.party) };
    let tip = query::tip(state).map_err(storage)?.unwrap_or_default();
    let mut value = match report {
        Report::Exposure => {
            let rows = supervision::exposure(state, scope).map_err(storage)?;
            let obligors: Vec<Value> = rows
                .iter()
                .map(|row| {
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
                })
                .collect();
            json!({ "obligors": obligors })
        }
        Report::Concentration => {
            let top = number(query, "top", 10, TOP_MAX as u64)?;
            let top = usize::try_from(top).unwrap_or(TOP_MAX);
            let rows = supervision::concentration(state, scope, top).map_err(storage)?;
            let shares = |shares: &[supervision::Share]| -> Vec<Value> {
                shares
                    .iter()
                    .map(|s| {
                        json!({
                            "party": s.party,
                            "financed": format_amount(s.financed),
                            "share": s.share.map(fraction),
                        })
                    })
                    .collect()
            };
            let currencies: Vec<Value> = rows
                .iter()
                .map(|c| {
                    json!({
                        "currency": c.currency,
                        "financed_total": format_amount(c.financed_total),
                        "obligors": shares(&c.obligors),
                        "banks": shares(&c.banks),
                    })
                })
                .collect();
            json!({ "currencies": currencies })
        }
        Report::Maturity => {
            let weeks = number(query, "weeks", 12, WEEKS_MAX)?.max(1);
            let ladders = supervision::maturity_ladder(state, scope, weeks).map_err(storage)?;
            let currencies: Vec<Value> = ladders
                .iter()
                .map(|l| {
                    let buckets: Vec<Value> = l
                        .buckets
                        .iter()
                        .map(|b| {
                            json!({
                                "week": b.week,
                                "from_ms": b.from_ms,
                                "to_ms": b.to_ms,
                                "face_value": format_amount(b.face_value),
                                "tokens": b.tokens,
                            })
                        })
                        .collect();
                    json!({
                        "currency": l.currency,
                        "overdue": format_amount(l.overdue),
                        "overdue_tokens": l.overdue_tokens,
                        "buckets": buckets,
                        "later": format_amount(l.later),
                        "later_tokens": l.later_tokens,
                    })
                })
                .collect();
            json!({ "weeks": weeks, "currencies": currencies })
        }
        Report::Financing => {
            let rows = supervision::financing_by_bank(state, scope).map_err(storage)?;
            let banks: Vec<Value> = rows
                .iter()
                .map(|b| {
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
                })
                .collect();
            json!({ "banks": banks })
        }
        Report::Rejections => {
            let limit = number(query, "limit", 50, REJECTIONS_LIMIT_MAX as u64)?;
            let limit = usize::try_from(limit).unwrap_or(REJECTIONS_LIMIT_MAX);
            let code = query.get("code").map(String::as_str).filter(|c| !c.is_empty());
            let log = supervision::rejections(state, scope, code, limit).map_err(storage)?;
            let by_code: Vec<Value> = log
                .by_code
                .iter()
                .map(|(code, count)| json!({"code": code, "count": count}))
                .collect();
            let recent: Vec<Value> = log
                .recent
                .iter()
                .map(|r| {
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
                })
                .collect();
            json!({ "total": log.total, "by_code": by_code, "recent": recent })
        }
    };
    value["height"] = json!(tip.height);
    value["time_ms"] = json!(tip.time_ms);
    value["scope"] = json!(if scope == Scope::All { "all" } else { "own" });
    Ok((value, tip.height))
}
