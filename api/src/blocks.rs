//! Block reads: `GET /v1/blocks/{height}` and `GET /v1/blocks?from=H&limit=N`.
//!
//! A block's header and the hashes of its transactions are public: anyone can follow the chain
//! and check that a transaction they hold is in it. The transactions themselves (bodies,
//! signatures, results) name parties, amounts and goods, so they are shown only to a regulator,
//! on a signed request ([`crate::auth`]). A signed request by anyone else gets the public view;
//! a request with a bad signature gets 401.

use ledger::pb::{Block, Role};
use ledger::{StateStore, query};
use serde_json::{Value, json};
use warp::http::StatusCode;

use crate::access::Read;
use crate::auth::{self, Authenticator, Credentials};
use crate::error::ApiError;

/// Most blocks one `GET /v1/blocks?from=` answers.
pub const BLOCKS_LIMIT_MAX: usize = 1000;
/// How many it answers without `limit`.
pub const BLOCKS_LIMIT_DEFAULT: usize = 100;
/// Most blocks with their transactions (a regulator's request) one answer holds: a block has up
/// to `ledger::BLOCK_TXS_MAX` transactions.
pub const FULL_BLOCKS_LIMIT_MAX: usize = 20;

/// Which blocks a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// One block.
    One(u64),
    /// Up to `limit` blocks from height `from`.
    From {
        /// First height (1 or more).
        from: u64,
        /// How many at most.
        limit: usize,
    },
}

impl Range {
    /// Parses `?from=H&limit=N` (both optional: from 1, the default limit).
    pub fn parse(from: Option<&str>, limit: Option<&str>) -> Result<Range, ApiError> {
        let from = match from {
            None => 1,
            Some(text) => match text.parse::<u64>() {
                Ok(from) if from >= 1 => from,
                _ => return Err(ApiError::bad_request("bad_query", "from is a height, 1 or more")),
            },
        };
        let limit = match limit {
            None => BLOCKS_LIMIT_DEFAULT,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=BLOCKS_LIMIT_MAX).contains(&limit) => limit,
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_query",
                        format!("limit is a number from 1 to {BLOCKS_LIMIT_MAX}"),
                    ));
                }
            },
        };
        Ok(Range::From { from, limit })
    }
}

/// Answers a block read from one view of the state: the JSON, the replica's height, and for a
/// regulator's full view (every party's transactions) its access-log entry.
pub fn read(
    state: &dyn StateStore,
    auth: &Authenticator,
    credentials: &Credentials,
    path_and_query: &str,
    purpose: Option<String>,
    range: Range,
) -> Result<(Value, u64, Option<Read>), ApiError> {
    let mut read = None;
    if credentials.present() {
        let now_ms = auth::now_ms();
        let reader = auth.authenticate(state, credentials, "GET", path_and_query, b"", now_ms)?;
        if reader.role == Role::Regulator {
            let purpose = crate::access::purpose_of(&reader, purpose.as_deref())?;
            let what = match range {
                Range::One(height) => format!("block:{height}"),
                Range::From { from, .. } => format!("blocks:{from}"),
            };
            read = Some(Read::everyone(&reader, purpose, path_and_query, &what));
        }
    }
    let full = read.is_some();
    let tip = query::tip(state)?.map_or(0, |t| t.height);
    match range {
        Range::One(height) => {
            let block = query::block(state, height)?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no block {height}; this replica is at height {tip}"),
                )
            })?;
            Ok((view(&block, full), tip, read))
        }
        Range::From { from, limit } => {
            let limit = if full { limit.min(FULL_BLOCKS_LIMIT_MAX) } else { limit };
            let blocks = query::blocks(state, from, limit)?;
            let last = blocks.last().and_then(|b| b.header.as_ref()).map(|h| h.height);
            let next = match last {
                Some(last) if last < tip => json!(last + 1),
                Some(_) => Value::Null,
                // Nothing at `from`: past the tip, the next block will be there.
                None => Value::Null,
            };
            let blocks: Vec<Value> = blocks.iter().map(|b| view(b, full)).collect();
            Ok((json!({"blocks": blocks, "next": next, "height": tip}), tip, read))
        }
    }
}

/// A block as JSON: its header and transaction hashes, and with `full` the transactions.
pub fn view(block: &Block, full: bool) -> Value {
    let header = block.header.clone().unwrap_or_default();
    let hash = ledger::chain::header_hash(&header).map(hex::encode);
    let tx_hashes: Vec<String> =
        block.txs.iter().map(|tx| hex::encode(ledger::tx::tx_hash(tx))).collect();
    let mut value = json!({
        "version": header.version,
        "height": header.height,
        "block_hash": hash,
        "prev_hash": hex::encode(&header.prev_hash),
        "time_ms": header.time_ms,
        "tx_root": hex::encode(&header.tx_root),
        "results_hash": hex::encode(&header.results_hash),
        "state_hash": hex::encode(&header.state_hash),
        "tx_count": header.tx_count,
        "tx_hashes": tx_hashes,
    });
    if full {
        let transactions: Vec<Value> = block
            .txs
            .iter()
            .zip(&block.results)
            .map(|(tx, result)| {
                let mut item = crate::views::outcome_json(header.height, result);
                item["body"] = json!(hex::encode(&tx.body));
                item["signature"] = json!(hex::encode(&tx.signature));
                item["decoded"] = crate::views::decoded_body(&tx.body);
                item
            })
            .collect();
        value["transactions"] = Value::Array(transactions);
    }
    value
}
