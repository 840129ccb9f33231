//! The supervision reads, `GET /v1/supervision/{exposure,concentration,maturity,financing,
//! rejections}`: the figures of `ledger::supervision` as JSON, from this replica's state, for a
//! signed request ([`crate::auth`]). A regulator sees the whole market (`"scope": "all"`); any
//! other party sees the rows about itself (`"scope": "own"`).

use std::collections::HashMap;

use ledger::pb::Role;
use ledger::supervision::{self, Scope};
use ledger::{StateStore, query};
use serde_json::{Value, json};

use crate::access::Read;
use crate::auth::{self, Access, Authenticator, Credentials};
use crate::error::ApiError;
use crate::views;

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
    /// Its name, the last path segment.
    pub fn name(self) -> &'static str {
        match self {
            Report::Exposure => "exposure",
            Report::Concentration => "concentration",
            Report::Maturity => "maturity",
            Report::Financing => "financing",
            Report::Rejections => "rejections",
        }
    }

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

/// Authenticates the request and computes `report` from one view of the state.
pub fn read(
    state: &dyn StateStore,
    authenticator: &Authenticator,
    credentials: &Credentials,
    path_and_query: &str,
    purpose: Option<&str>,
    report: Report,
    query: &HashMap<String, String>,
) -> Result<(Value, u64, Option<Read>), ApiError> {
    let now_ms = auth::now_ms();
    let reader =
        authenticator.authenticate(state, credentials, "GET", path_and_query, b"", now_ms)?;
    let purpose = crate::access::purpose_of(&reader, purpose)?;
    // Every parameter is checked whichever report it is for (`weeks=null` on the exposure
    // report is as wrong as on the ladder), and no other is taken.
    if let Some(name) = query.keys().find(|k| {
        !["top", "weeks", "limit", "code", "consistency", "purpose"].contains(&k.as_str())
    }) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("the reports take top, weeks, limit, code and purpose, not {name}"),
        ));
    }
    number(query, "top", 10, TOP_MAX as u64)?;
    number(query, "weeks", 12, WEEKS_MAX)?;
    number(query, "limit", 50, REJECTIONS_LIMIT_MAX as u64)?;
    let scope =
        if reader.role == Role::Regulator { Scope::All } else { Scope::Party(&reader.party) };
    let tip = query::tip(state)?.unwrap_or_default();
    let mut value = match report {
        Report::Exposure => views::exposure(&supervision::exposure(state, scope)?),
        Report::Concentration => {
            let top = number(query, "top", 10, TOP_MAX as u64)?;
            let top = usize::try_from(top).unwrap_or(TOP_MAX);
            views::concentration(&supervision::concentration(state, scope, top)?)
        }
        Report::Maturity => {
            let weeks = number(query, "weeks", 12, WEEKS_MAX)?.max(1);
            views::maturity(weeks, &supervision::maturity_ladder(state, scope, weeks)?)
        }
        Report::Financing => {
            views::financing_by_bank(&supervision::financing_by_bank(state, scope)?)
        }
        Report::Rejections => {
            let limit = number(query, "limit", 50, REJECTIONS_LIMIT_MAX as u64)?;
            let limit = usize::try_from(limit).unwrap_or(REJECTIONS_LIMIT_MAX);
            let code = query.get("code").map(String::as_str).filter(|c| !c.is_empty());
            views::rejections(&supervision::rejections(state, scope, code, limit)?)
        }
    };
    value["height"] = json!(tip.height);
    value["time_ms"] = json!(tip.time_ms);
    value["scope"] = json!(if scope == Scope::All { "all" } else { "own" });
    // A regulator's report covers every party; a party's own covers its own figures.
    let what = format!("report:{}", report.name());
    let read = match scope {
        Scope::All => Read::everyone(&reader, purpose, path_and_query, &what),
        Scope::Party(party) => {
            let mut read = Read::new(&reader, purpose, &Access::Party, path_and_query);
            read.add(party, &what);
            read
        }
    };
    Ok((value, tip.height, Some(read)))
}
