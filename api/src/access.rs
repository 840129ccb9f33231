//! Accounting for reads of private data: which reads are logged, with what purpose, and
//! `GET /v1/access-log`, where a party reads the accesses to its own records.
//!
//! Every answer that shows private data (a record read, a transaction's details, a supervision
//! report, a regulator's block view, an event stream) is first written to this replica's
//! access log ([`raft_node::access_log`]): who read, with which role and purpose, under whose
//! grant, what path, whose data and which records. The answer goes out only once its entry is
//! on disk: a read that could not be logged is refused (`503 access_log_unavailable`), never
//! answered unaccounted.
//!
//! A purpose is `?purpose=CODE` on the request, so that the read's signature covers it. A
//! regulator must give one of [`REGULATOR_PURPOSES`] on every private read; anyone else may
//! give one of [`PURPOSES`].

use std::sync::Arc;

use ledger::pb::Role;
use raft_node::access_log::{AccessLog, EVERY_PARTY, Entry, Logged};
use serde_json::{Value, json};
use warp::http::StatusCode;

use crate::auth::{Access, Reader};
use crate::error::ApiError;

/// The purposes a read may give, with what each means. The first five are a regulator's (one is
/// required of it, `403 purpose_required` otherwise); `business` is the only one anyone else
/// may give (`403 purpose_not_allowed` for the others).
pub const PURPOSES: [(&str, &str); 6] = [
    ("supervision", "routine supervision and reporting"),
    ("investigation", "an inquiry into a named party or case"),
    ("audit", "an audit engagement"),
    ("legal_order", "a court order or another legal demand"),
    ("complaint", "the handling of a complaint"),
    ("business", "a party's own business with the data"),
];

/// The purposes a regulator may give: [`PURPOSES`] but `business`.
pub const REGULATOR_PURPOSES: [&str; 5] =
    ["supervision", "investigation", "audit", "legal_order", "complaint"];

/// Most entries one `GET /v1/access-log` answers.
pub const ACCESS_LOG_LIMIT_MAX: usize = 1000;

/// `?purpose=` as given in `raw_query`: one of [`PURPOSES`], or absent; given at most once, so
/// that what is logged is all the request said. Keys are decoded as warp's query filter decodes
/// them (`application/x-www-form-urlencoded`), so `purpos%65=` is `purpose=` here as well.
pub fn parse_purpose(raw_query: &str) -> Result<Option<String>, ApiError> {
    let mut given = form_urlencoded::parse(raw_query.as_bytes())
        .filter(|(key, _)| key == "purpose")
        .map(|(_, value)| value.into_owned());
    let first = given.next();
    if given.next().is_some() {
        return Err(ApiError::bad_request("bad_purpose", "purpose is given once"));
    }
    match first {
        None => Ok(None),
        Some(code) if PURPOSES.iter().any(|(c, _)| *c == code) => Ok(Some(code)),
        Some(_) => Err(ApiError::bad_request(
            "bad_purpose",
            format!("purpose is one of {}", PURPOSES.map(|(c, _)| c).join(", ")),
        )),
    }
}

/// The purpose to log for `reader`: a regulator must have given one of [`REGULATOR_PURPOSES`];
/// anyone else may give `business` only (a party cannot claim a regulator's legal footing).
pub fn purpose_of(reader: &Reader, given: Option<&str>) -> Result<Option<String>, ApiError> {
    if reader.role != Role::Regulator {
        return match given {
            None | Some("business") => Ok(given.map(str::to_owned)),
            Some(code) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "purpose_not_allowed",
                format!("purpose {code} is a regulator's; a party's own reads give business"),
            )),
        };
    }
    match given {
        Some(code) if REGULATOR_PURPOSES.contains(&code) => Ok(Some(code.to_owned())),
        // 403: the reader is known, and may not read this without saying why.
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "purpose_required",
            format!(
                "a regulator's read of private data gives ?purpose= one of {}",
                REGULATOR_PURPOSES.join(", ")
            ),
        )),
    }
}

/// A read to log: filled in by the read that found the data, written by [`record`] as one
/// entry per owner whose data the answer held, each naming only that owner and its own
/// records: an owner learns who read its records, never who else's were read with them (a
/// carrier reading a shipment does not learn the buyer from the buyer's entry).
#[derive(Debug, Clone)]
pub struct Read {
    time_ms: u64,
    reader: String,
    role: String,
    purpose: Option<String>,
    /// The owner whose grant allowed the read: named on that owner's entry only.
    grant: Option<String>,
    path: String,
    /// Each owner, in the order found, with its records in the order found (no repeats).
    items: Vec<(String, Vec<String>)>,
    /// Every (owner, record) added, so that adding stays O(1) in a read of many records.
    seen: std::collections::HashSet<(String, String)>,
}

impl Read {
    /// `reader`'s read at `path` under `access`, of nothing yet: [`Read::add`] each record.
    pub fn new(reader: &Reader, purpose: Option<String>, access: &Access, path: &str) -> Self {
        let grant = match access {
            Access::Grantee { owner } => Some(owner.clone()),
            Access::Party | Access::Regulator => None,
        };
        Read {
            time_ms: crate::auth::now_ms(),
            reader: reader.party.clone(),
            role: ledger::reject::role_name(reader.role).to_owned(),
            purpose,
            grant,
            path: path.to_owned(),
            items: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }

    /// The answer held `record` (`kind:id`) of `owner` (an empty owner, as for a shipment
    /// whose order is missing, is nobody).
    pub fn add(&mut self, owner: &str, record: &str) {
        if owner.is_empty() || !self.seen.insert((owner.to_owned(), record.to_owned())) {
            return;
        }
        // The owners of one read are few (a token's two, a lineage's pieces'): a scan of them.
        match self.items.iter_mut().find(|(o, _)| o == owner) {
            Some((_, records)) => records.push(record.to_owned()),
            None => self.items.push((owner.to_owned(), vec![record.to_owned()])),
        }
    }

    /// [`Read::add`] for each of `owners`.
    pub fn add_all(&mut self, owners: &[&str], record: &str) {
        for owner in owners {
            self.add(owner, record);
        }
    }

    /// A read over every party's data (a regulator's report, block view or feed).
    pub fn everyone(reader: &Reader, purpose: Option<String>, path: &str, what: &str) -> Self {
        let mut read = Read::new(reader, purpose, &Access::Regulator, path);
        read.add(EVERY_PARTY, what);
        read
    }

    /// The entries: one per owner, in the order the owners were found.
    fn entries(self) -> Vec<Entry> {
        let Read { time_ms, reader, role, purpose, grant, path, items, .. } = self;
        (items.into_iter())
            .map(|(owner, records)| Entry {
                time_ms,
                reader: reader.clone(),
                role: role.clone(),
                purpose: purpose.clone(),
                grant: grant.clone().filter(|grantor| *grantor == owner),
                path: path.clone(),
                owners: vec![owner],
                records,
            })
            .collect()
    }
}

/// Writes `read` to the log before its answer goes out. Blocks on the disk off the async
/// threads. A failure refuses the read.
pub async fn record(log: &Arc<AccessLog>, read: Option<Read>) -> Result<(), ApiError> {
    record_all(log, read.into_iter().collect()).await
}

/// [`record`] for several reads answered together, in one write.
pub async fn record_all(log: &Arc<AccessLog>, reads: Vec<Read>) -> Result<(), ApiError> {
    let entries: Vec<Entry> = reads.into_iter().flat_map(Read::entries).collect();
    if entries.is_empty() {
        // Nobody's data (an empty list of financings): nothing to account for.
        return Ok(());
    }
    let log = log.clone();
    let written = tokio::task::spawn_blocking(move || log.append_all(entries)).await;
    match written {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(unavailable(&error.to_string())),
        Err(join) => Err(unavailable(&join.to_string())),
    }
}

fn unavailable(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "access_log_unavailable",
        format!("this replica cannot account for the read, so it does not answer it: {why}"),
    )
}

/// One entry as JSON: every field its hash covers, and the hash.
pub fn entry_json(logged: &Logged) -> Value {
    let entry = &logged.entry;
    json!({
        "node_id": logged.node_id,
        "seq": logged.seq,
        "prev": hex::encode(logged.prev),
        "time_ms": entry.time_ms,
        "reader": entry.reader,
        "role": entry.role,
        "purpose": entry.purpose,
        "grant": entry.grant,
        "path": entry.path,
        "owners": entry.owners,
        "records": entry.records,
        "hash": hex::encode(logged.hash),
    })
}

/// The chain's head as JSON, for `/v1/status` and the log's answers.
pub fn head_json(log: &AccessLog) -> Value {
    let head = log.head();
    json!({"length": head.entries, "head": hex::encode(head.hash)})
}

/// Which page of the access log: the entries from `from` on, the oldest of them; or, with
/// `before`, the newest of them below `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// `from=SEQ` (default 1): no entry below it.
    pub from: u64,
    /// `before=SEQ`: no entry from it on, and the newest rather than the oldest (any seq past
    /// the head: the newest of all).
    pub before: Option<u64>,
}

/// `GET /v1/access-log?from=SEQ&before=SEQ&limit=N`: the entries concerning `reader` (every
/// entry, for a regulator) on `page`, oldest first, with where the pages after and before it
/// start (`next`, a `from`; `earlier`, a `before`; `null` when there are no such entries).
pub fn answer(
    log: &AccessLog,
    reader: &Reader,
    page: Page,
    limit: usize,
) -> Result<Value, ApiError> {
    let owner = (reader.role != Role::Regulator).then_some(reader.party.as_str());
    let storage = |error: raft_node::access_log::AccessLogError| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", error.to_string())
    };
    let (entries, high, low) = match page.before {
        None => (log.entries(owner, page.from, limit).map_err(storage)?, page.from, page.from),
        Some(before) => {
            let mut entries = log.entries_before(owner, before, limit).map_err(storage)?;
            entries.retain(|e| e.seq >= page.from);
            (entries, page.from.max(before), page.from.min(before))
        }
    };
    // Where the pages after and before this one start, from the log's index (no file read).
    let after = entries.last().map_or(high, |e| e.seq.saturating_add(1));
    let next = log.first_from(owner, after);
    let low = entries.first().map_or(low, |e| e.seq);
    let earlier = log.any_before(owner, low).then_some(low);
    let listed: Vec<Value> = entries.iter().map(entry_json).collect();
    let mut value = head_json(log);
    value["node_id"] = json!(log.node_id());
    value["party"] = json!(reader.party);
    value["scope"] = json!(if owner.is_some() { "own" } else { "all" });
    value["entries"] = Value::Array(listed);
    value["next"] = json!(next);
    value["earlier"] = json!(earlier);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::parse_purpose;

    // Goal: the purpose check sees the keys the handler's query filter sees, escapes decoded,
    // so a second purpose cannot hide behind `%65`; an escaped value is the code it decodes to.
    #[test]
    fn purpose_keys_and_values_are_decoded_before_they_are_counted() {
        assert_eq!(parse_purpose("").unwrap(), None);
        assert_eq!(parse_purpose("from=1").unwrap(), None);
        assert_eq!(parse_purpose("purpos%65=audit").unwrap().as_deref(), Some("audit"));
        assert_eq!(parse_purpose("purpose=a%75dit").unwrap().as_deref(), Some("audit"));
        for twice in ["purpose=audit&purpose=audit", "purpose=audit&purpos%65=investigation"] {
            assert_eq!(parse_purpose(twice).unwrap_err().code, "bad_purpose", "{twice}");
        }
        assert_eq!(parse_purpose("purpose=audit+").unwrap_err().code, "bad_purpose");
        assert_eq!(parse_purpose("purpose=").unwrap_err().code, "bad_purpose");
    }
}
