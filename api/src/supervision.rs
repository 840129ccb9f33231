//! The supervision reads, `GET /v1/supervision/{exposure,concentration,maturity,financing,
//! rejections}`: the figures of `ledger::supervision` as JSON, from this replica's state, for a
//! signed request ([`crate::auth`]). A regulator sees the whole market (`"scope": "all"`); any
//! other party sees the rows about itself (`"scope": "own"`).
//!
//! A report is a pure function of the state at a height (its clock is ledger time, never the
//! wall clock), so [`ReportCache`] keeps the reports computed at the newest height: the same
//! report asked for again before the next block costs a lookup, not a scan of every token. The
//! request is still authenticated, checked and logged each time; only the figures are shared.
//! The concentration and financing reports are computed from the financing totals the cache
//! keeps too, brought to a new height by the financings of the blocks since
//! ([`ledger::supervision::FinancingTotals`]) rather than by a scan of every financing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;

use ledger::pb::Role;
use ledger::supervision::{self, FinancingTotals, Scope};
use ledger::{StateStore, query};
use serde_json::{Value, json};

use crate::access::Read;
use crate::auth::{self, Access, Authenticator, Credentials};
use crate::error::ApiError;
use crate::views;

/// Which supervision read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Most reports one [`ReportCache`] holds for regulators, and apart from them for all other
/// parties (each at most a few hundred KB: a rejections page of [`REJECTIONS_LIMIT_MAX`] rows is
/// the largest). Past it, a report is computed and not kept, so that varying the parameters
/// cannot grow the cache, and parties cannot fill the regulators' half; the reader pool still
/// bounds how many are computed at once.
pub const REPORTS_CACHED_MAX: usize = 32;

/// What a report's figures depend on besides the state: the report, whose rows (a party's, or
/// `None` for a regulator's whole market) and the parameters of that report alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReportKey {
    report: Report,
    party: Option<String>,
    /// `top`, `weeks` or `limit`, whichever the report takes (0 for the others).
    size: u64,
    code: Option<String>,
}

/// The reports computed at the newest height a reader saw (see the module's docs).
///
/// Invariant: every entry was computed from a view of the state at `height`. A view at a newer
/// height empties the cache first; a view at an older one (a read that started before the last
/// block) computes its report without reading or filling the cache.
pub struct ReportCache {
    at: Mutex<Cached>,
    /// The financing totals of the newest heights they were had for (at most [`TOTALS_KEPT`],
    /// oldest first), shared by the concentration and financing reports of every scope.
    /// Invariant: each is the totals of the state at its height.
    totals: Mutex<VecDeque<(u64, Arc<FinancingTotals>)>>,
    counters: ReportCounters,
}

/// What a [`ReportCache`] counts (see [`crate::metrics`]).
#[derive(Debug, Clone, Default)]
pub struct ReportCounters {
    /// Reports taken from the cache.
    pub cached: Counter,
    /// Reports computed.
    pub computed: Counter,
    /// Financing totals had by a scan of every financing.
    pub totals_scanned: Counter,
    /// Financing totals had from an earlier height's and the blocks since.
    pub totals_advanced: Counter,
    /// Financing totals already had at the height.
    pub totals_kept: Counter,
}

/// Blocks the financing totals are advanced by at most (reading each block's transactions);
/// farther behind, they are scanned anew.
const TOTALS_ADVANCE_MAX: u64 = 256;
/// Heights whose financing totals are kept: a read whose view is a few blocks behind another's
/// (they run at once on the reader pool) advances from an older one rather than scanning.
const TOTALS_KEPT: usize = 4;

/// The reports of one height: regulators' (the whole market) and parties' apart.
#[derive(Default)]
struct Cached {
    height: u64,
    market: HashMap<ReportKey, Arc<Value>>,
    parties: HashMap<ReportKey, Arc<Value>>,
}

impl Cached {
    fn half(&mut self, key: &ReportKey) -> &mut HashMap<ReportKey, Arc<Value>> {
        if key.party.is_none() { &mut self.market } else { &mut self.parties }
    }
}

impl ReportCache {
    /// An empty cache that counts in `counters`.
    pub fn new(counters: ReportCounters) -> Self {
        Self { at: Mutex::new(Cached::default()), totals: Mutex::new(VecDeque::new()), counters }
    }

    /// The financing totals of `state`, at `height`: the ones kept if they are of that height,
    /// else those of the newest kept height below it advanced by the blocks since (a financing
    /// never changes once written), else a scan. Kept among the newest [`TOTALS_KEPT`].
    fn financing_totals(
        &self,
        state: &dyn StateStore,
        height: u64,
    ) -> Result<Arc<FinancingTotals>, ApiError> {
        let base = {
            let kept = self.totals.lock().expect("the totals are never poisoned");
            kept.iter().rev().find(|(at, _)| *at <= height).cloned()
        };
        let totals = match base {
            Some((at, totals)) if at == height => {
                self.counters.totals_kept.inc();
                return Ok(totals);
            }
            Some((at, totals)) if height - at <= TOTALS_ADVANCE_MAX => {
                let mut advanced = FinancingTotals::clone(&totals);
                let mut complete = true;
                for block in at + 1..=height {
                    complete &= advanced.add_block(state, block)?;
                }
                if complete {
                    self.counters.totals_advanced.inc();
                    advanced
                } else {
                    self.counters.totals_scanned.inc();
                    FinancingTotals::scan(state)?
                }
            }
            _ => {
                self.counters.totals_scanned.inc();
                FinancingTotals::scan(state)?
            }
        };
        let totals = Arc::new(totals);
        let mut kept = self.totals.lock().expect("the totals are never poisoned");
        let at = kept.partition_point(|(at, _)| *at < height);
        if kept.get(at).is_none_or(|(other, _)| *other != height) {
            kept.insert(at, (height, totals.clone()));
            if kept.len() > TOTALS_KEPT {
                kept.pop_front();
            }
        }
        Ok(totals)
    }

    fn get_or_compute(
        &self,
        height: u64,
        key: ReportKey,
        compute: impl FnOnce() -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let (current, hit) = {
            let mut at = self.at.lock().expect("the report cache is never poisoned");
            if height > at.height {
                *at = Cached { height, ..Cached::default() };
            }
            let current = height == at.height;
            (current, current.then(|| at.half(&key).get(&key).cloned()).flatten())
        };
        if let Some(value) = hit {
            // Copied out of the lock: a large report does not hold up the other readers.
            self.counters.cached.inc();
            return Ok(Value::clone(&value));
        }
        // Computed outside the lock: two readers that miss together both compute (the reader
        // pool bounds how many), and neither waits for the other's scan.
        let value = compute()?;
        self.counters.computed.inc();
        if current {
            let shared = Arc::new(value.clone());
            let mut at = self.at.lock().expect("the report cache is never poisoned");
            if at.height == height {
                let half = at.half(&key);
                if half.len() < REPORTS_CACHED_MAX {
                    half.insert(key, shared);
                }
            }
        }
        Ok(value)
    }
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

/// Authenticates the request and computes `report` from one view of the state (or takes it
/// from `cache`, if it was computed at the same height).
#[allow(clippy::too_many_arguments)]
pub fn read(
    state: &dyn StateStore,
    cache: &ReportCache,
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
    let scope =
        if reader.role == Role::Regulator { Scope::All } else { Scope::Party(&reader.party) };
    let tip = query::tip(state)?.unwrap_or_default();
    let top = usize::try_from(number(query, "top", 10, TOP_MAX as u64)?).unwrap_or(TOP_MAX);
    let weeks = number(query, "weeks", 12, WEEKS_MAX)?.max(1);
    let limit = number(query, "limit", 50, REJECTIONS_LIMIT_MAX as u64)?;
    let limit = usize::try_from(limit).unwrap_or(REJECTIONS_LIMIT_MAX);
    let code = query.get("code").map(String::as_str).filter(|c| !c.is_empty());
    let key = ReportKey {
        report,
        party: match scope {
            Scope::All => None,
            Scope::Party(party) => Some(party.to_owned()),
        },
        size: match report {
            Report::Concentration => top as u64,
            Report::Maturity => weeks,
            Report::Rejections => limit as u64,
            Report::Exposure | Report::Financing => 0,
        },
        code: code.filter(|_| report == Report::Rejections).map(str::to_owned),
    };
    let mut value = cache.get_or_compute(tip.height, key, || {
        Ok(match report {
            Report::Exposure => views::exposure(&supervision::exposure(state, scope)?),
            Report::Concentration => {
                let totals = cache.financing_totals(state, tip.height)?;
                views::concentration(&totals.concentration(scope, top))
            }
            Report::Maturity => {
                views::maturity(weeks, &supervision::maturity_ladder(state, scope, weeks)?)
            }
            Report::Financing => {
                let totals = cache.financing_totals(state, tip.height)?;
                views::financing_by_bank(&totals.financing_by_bank(scope))
            }
            Report::Rejections => {
                views::rejections(&supervision::rejections(state, scope, code, limit)?)
            }
        })
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(report: Report, party: Option<&str>, size: u64) -> ReportKey {
        ReportKey { report, party: party.map(str::to_owned), size, code: None }
    }

    // Goal: parties asking for ever new reports fill their own half of the cache only; the
    // regulators' reports stay cached, and past the cap a report is computed, not kept.
    #[test]
    fn parties_cannot_crowd_the_regulators_reports_out_of_the_cache() {
        let cache = ReportCache::new(ReportCounters::default());
        let computed = || cache.counters.computed.get();
        let market = key(Report::Concentration, None, 10);
        cache.get_or_compute(5, market.clone(), || Ok(json!("market"))).unwrap();
        for party in 0..2 * REPORTS_CACHED_MAX as u64 {
            let own = key(Report::Maturity, Some(&format!("p{party}")), party);
            cache.get_or_compute(5, own, || Ok(json!(party))).unwrap();
        }
        assert_eq!(computed(), 1 + 2 * REPORTS_CACHED_MAX as u64);
        let answer = cache.get_or_compute(5, market.clone(), || panic!("computed again"));
        assert_eq!(answer.unwrap(), json!("market"));
        // The first parties' reports were kept; the ones past the cap were not.
        let first = key(Report::Maturity, Some("p0"), 0);
        assert_eq!(cache.get_or_compute(5, first, || panic!("p0 computed again")).unwrap(), 0);
        let last = 2 * REPORTS_CACHED_MAX as u64 - 1;
        let late = key(Report::Maturity, Some(&format!("p{last}")), last);
        cache.get_or_compute(5, late, || Ok(json!(last))).unwrap();
        assert_eq!(computed(), 2 + 2 * REPORTS_CACHED_MAX as u64, "a late one is not kept");
        // A new height empties both halves.
        cache.get_or_compute(6, market, || Ok(json!("newer"))).unwrap();
        assert_eq!(computed(), 3 + 2 * REPORTS_CACHED_MAX as u64);
        let at = cache.at.lock().unwrap();
        assert_eq!((at.height, at.market.len(), at.parties.len()), (6, 1, 0));
    }
}
