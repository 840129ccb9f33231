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
/// required of it); `business` is a party's own use of data it holds or was granted.
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

/// `?purpose=` as given: one of [`PURPOSES`], or absent.
pub fn parse_purpose(given: Option<&String>) -> Result<Option<String>, ApiError> {
    match given {
        None => Ok(None),
        Some(code) if PURPOSES.iter().any(|(c, _)| c == code) => Ok(Some(code.clone())),
        Some(_) => Err(ApiError::bad_request(
            "bad_purpose",
            format!("purpose is one of {}", PURPOSES.map(|(c, _)| c).join(", ")),
        )),
    }
}

/// The purpose to log for `reader`: a regulator must have given one of [`REGULATOR_PURPOSES`].
pub fn purpose_of(reader: &Reader, given: Option<&str>) -> Result<Option<String>, ApiError> {
    if reader.role != Role::Regulator {
        return Ok(given.map(str::to_owned));
    }
    match given {
        Some(code) if REGULATOR_PURPOSES.contains(&code) => Ok(Some(code.to_owned())),
        _ => Err(ApiError::bad_request(
            "purpose_required",
            format!(
                "a regulator's read of private data gives ?purpose= one of {}",
                REGULATOR_PURPOSES.join(", ")
            ),
        )),
    }
}

/// A read to log: filled in by the read that found the data, written by [`record`].
#[derive(Debug, Clone)]
pub struct Read {
    entry: Entry,
}

impl Read {
    /// `reader` read `records` of `owners` (deduplicated; empty ids dropped) at `path`, under
    /// `access`.
    pub fn new(
        reader: &Reader,
        purpose: Option<String>,
        access: &Access,
        path: &str,
        owners: &[&str],
        records: Vec<String>,
    ) -> Self {
        let mut listed: Vec<String> = Vec::new();
        for owner in owners.iter().filter(|o| !o.is_empty()) {
            if !listed.iter().any(|l| l == owner) {
                listed.push((*owner).to_owned());
            }
        }
        let grant = match access {
            Access::Grantee { owner } => Some(owner.clone()),
            Access::Party | Access::Regulator => None,
        };
        Read {
            entry: Entry {
                time_ms: crate::auth::now_ms(),
                reader: reader.party.clone(),
                role: ledger::reject::role_name(reader.role).to_owned(),
                purpose,
                grant,
                path: path.to_owned(),
                owners: listed,
                records,
            },
        }
    }

    /// A read over every party's data (a regulator's report, block view or feed).
    pub fn everyone(reader: &Reader, purpose: Option<String>, path: &str, what: String) -> Self {
        Read::new(reader, purpose, &Access::Regulator, path, &[EVERY_PARTY], vec![what])
    }

    /// Whether the read touched anybody's data (an empty list of financings touched none).
    fn touches_data(&self) -> bool {
        !self.entry.owners.is_empty()
    }
}

/// Writes `read` to the log before its answer goes out. Blocks on the disk off the async
/// threads. A failure refuses the read.
pub async fn record(log: &Arc<AccessLog>, read: Option<Read>) -> Result<(), ApiError> {
    let Some(read) = read.filter(Read::touches_data) else {
        return Ok(());
    };
    let log = log.clone();
    let written = tokio::task::spawn_blocking(move || log.append(read.entry)).await;
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

/// `GET /v1/access-log?from=SEQ&limit=N`: the entries concerning `reader` (every entry, for a
/// regulator), from `from` on.
pub fn answer(
    log: &AccessLog,
    reader: &Reader,
    from: u64,
    limit: usize,
) -> Result<Value, ApiError> {
    let owner = (reader.role != Role::Regulator).then_some(reader.party.as_str());
    // One more than asked, to say where the next page starts.
    let mut entries = log.entries(owner, from, limit + 1).map_err(|error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", error.to_string())
    })?;
    let next = (entries.len() > limit).then(|| entries.pop().map(|e| e.seq)).flatten();
    let listed: Vec<Value> = entries.iter().map(entry_json).collect();
    let mut value = head_json(log);
    value["node_id"] = json!(log.node_id());
    value["party"] = json!(reader.party);
    value["scope"] = json!(if owner.is_some() { "own" } else { "all" });
    value["entries"] = Value::Array(listed);
    value["next"] = json!(next);
    Ok(value)
}
