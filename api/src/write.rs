//! The write path: `POST /v1/transactions`. The body is read within its limits, parsed
//! ([`crate::wire`]), prechecked against this replica's state (undecodable, another chain, an
//! unknown signer, a bad signature, a resubmission), and each transaction left is submitted to
//! the node; a follower forwards the whole request to the leader, once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use ledger::pb::SignedTx;
use ledger::query;
use serde_json::{Value, json};
use warp::http::{Response, StatusCode};

use crate::app::{Answer, App, FORWARDED_HEADER, error_answer, json_answer, stopped};
use crate::config::Role;
use crate::error::ApiError;
use crate::node::{Accepted, Consistency, ProposeError, RaftRole, Status, SubmitError};
use crate::views::outcome_json;

/// Most bytes of a body over the limit read and thrown away before the answer (see
/// [`read_body`]).
const DRAIN_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Longest time spent throwing such a body away.
const DRAIN_TIME_MAX: Duration = Duration::from_secs(10);
/// Longest time a client may take to send a body within the limit (408 `body_timeout` beyond).
const BODY_TIME_MAX: Duration = Duration::from_secs(30);
/// Most bytes reserved for a body before any of it arrived.
const BODY_RESERVE_MAX: u64 = 64 * 1024;

/// Reads a request body of at most `limit` bytes. A body declared or found larger is answered
/// `413 body_too_large`, but only after it has been read and thrown away (up to
/// [`DRAIN_BYTES_MAX`] within [`DRAIN_TIME_MAX`]): a server that answers and closes while the
/// client is still sending resets the connection, and the client never reads the answer. A body
/// within the limit must arrive within [`BODY_TIME_MAX`], so a slow sender cannot hold a
/// connection and its buffer for ever.
pub async fn read_body<S, B>(declared: Option<u64>, body: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt as _;
    let Some(declared) = declared else {
        return Err(ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required",
        ));
    };
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is too large (at most {limit} bytes)"),
        )
    };
    let mut body = std::pin::pin!(body);
    if declared > limit {
        if declared <= DRAIN_BYTES_MAX {
            let _ = tokio::time::timeout(DRAIN_TIME_MAX, async {
                while let Some(Ok(_)) = body.next().await {}
            })
            .await;
        }
        return Err(too_large());
    }
    let read = async {
        let reserve = declared.min(BODY_RESERVE_MAX);
        let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            let mut chunk =
                chunk.map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
            if bytes.len() as u64 + chunk.remaining() as u64 > limit {
                return Err(too_large());
            }
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                bytes.extend_from_slice(piece);
                let read = piece.len();
                chunk.advance(read);
            }
        }
        Ok(Bytes::from(bytes))
    };
    tokio::time::timeout(BODY_TIME_MAX, read).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {} s", BODY_TIME_MAX.as_secs()),
        ))
    })
}

/// `POST /v1/transactions`: one `{"body", "signature"}` object or an array of them.
pub async fn submit(
    app: Arc<App>,
    query: HashMap<String, String>,
    raw_query: String,
    forwarded: Option<String>,
    body: Bytes,
) -> Answer {
    let wait = match query.get("wait").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return error_answer(&ApiError::bad_request("bad_query", "wait is true or false"));
        }
    };
    let status = app.node.status().await;
    if app.config.role == Role::Observer {
        return error_answer(
            &ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only_replica",
                "this replica is an observer; send writes to a voter",
            )
            .with("leader_hint", app.leader_url(status.as_ref())),
        );
    }
    let submission = match crate::wire::parse_submission(&body, app.config.http.batch_txs_max) {
        Ok(submission) => submission,
        Err(error) => return error_answer(&error.into()),
    };
    let (items, batch) = (submission.items, submission.batch);
    app.metrics.batch(items.len());
    // A follower forwards the whole request to the leader, once.
    let leading = status.as_ref().is_some_and(|s| s.role == RaftRole::Leader);
    if !leading {
        if forwarded.is_some() {
            return error_answer(
                &ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_leader",
                    "forwarded to a replica that no longer leads; retry",
                )
                .with("leader_hint", app.leader_url(status.as_ref())),
            );
        }
        return forward(&app, status.as_ref(), &raw_query, body).await;
    }
    let parsed: Vec<Result<SignedTx, ApiError>> =
        items.into_iter().map(|item| item.map_err(ApiError::from)).collect();
    let prechecked = precheck(&app, parsed).await;
    let mut answers = Vec::with_capacity(prechecked.len());
    let mut pending = tokio::task::JoinSet::new();
    for (index, item) in prechecked.into_iter().enumerate() {
        match item {
            Precheck::Done(answer) => answers.push((index, answer)),
            Precheck::Submit(tx) => {
                let app = app.clone();
                pending.spawn(async move { (index, submit_one(&app, tx, wait).await) });
            }
            Precheck::Verify(..) => unreachable!("precheck verifies every signature"),
        }
    }
    while let Some(joined) = pending.join_next().await {
        answers.push(joined.unwrap_or_else(|e| {
            (
                usize::MAX,
                Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())),
            )
        }));
    }
    answers.sort_by_key(|(index, _)| *index);
    if batch {
        let values: Vec<Value> = answers
            .into_iter()
            .map(|(_, answer)| answer.unwrap_or_else(|error| error.body()))
            .collect();
        json_answer(StatusCode::OK, &Value::Array(values))
    } else {
        match answers.pop() {
            Some((_, Ok(value))) if value["outcome"] == "pending" => {
                json_answer(StatusCode::ACCEPTED, &value)
            }
            Some((_, Ok(value))) => json_answer(StatusCode::OK, &value),
            Some((_, Err(error))) => error_answer(&error),
            None => error_answer(&ApiError::bad_request("empty_batch", "nothing to submit")),
        }
    }
}

enum Precheck {
    /// Answered without the replica: refused, or already on the chain (its first outcome).
    Done(Result<Value, ApiError>),
    /// Its signature is still to be checked against its signer's key (as stored).
    Verify(SignedTx, Box<ledger::tx::DecodedTx>, Vec<u8>),
    /// To be proposed.
    Submit(SignedTx),
}

/// Refuses what can never be applied (undecodable, another chain, an unknown signer, a
/// signature that does not verify) and answers resubmissions with their first outcome, all
/// from one read of this replica's state.
async fn precheck(app: &App, items: Vec<Result<SignedTx, ApiError>>) -> Vec<Precheck> {
    let chain_id = app.genesis.chain_id.clone();
    let count = items.len();
    let checked = app
        .read(Consistency::Local, move |state| {
            items
                .into_iter()
                .map(|item| {
                    let tx = match item {
                        Ok(tx) => tx,
                        Err(error) => return Precheck::Done(Err(error)),
                    };
                    match check_one(state, &chain_id, &tx) {
                        Ok(Lookup::New(decoded, key)) => Precheck::Verify(tx, decoded, key),
                        Ok(Lookup::Known(first)) => Precheck::Done(Ok(first)),
                        Err(error) => Precheck::Done(Err(error)),
                    }
                })
                .collect::<Vec<_>>()
        })
        .await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(error) => return (0..count).map(|_| Precheck::Done(Err(error.clone()))).collect(),
    };
    // Keys are parsed and signatures checked here, off the replica's thread: a batch of a
    // thousand would otherwise hold up its Ready loop (and its heartbeats) for tens of
    // milliseconds.
    let memos = app.memos.clone();
    let verified = tokio::task::spawn_blocking(move || {
        checked
            .into_iter()
            .map(|item| match item {
                Precheck::Verify(tx, decoded, key) => {
                    let key = match memos.keys.parse(&key) {
                        Ok(key) => key,
                        Err(e) => {
                            return Precheck::Done(Err(ApiError::storage(format!(
                                "{:?}'s stored key: {e}",
                                decoded.body.signer
                            ))));
                        }
                    };
                    match memos.verified.verify(&decoded.hash, &decoded.signature, &key) {
                        Ok(()) => Precheck::Submit(tx),
                        Err(_) => Precheck::Done(Err(ApiError::bad_request(
                            "bad_signature",
                            format!(
                                "the signature does not verify with {:?}'s key",
                                decoded.body.signer
                            ),
                        )
                        .with("tx_hash", Value::String(hex::encode(decoded.hash))))),
                    }
                }
                other => other,
            })
            .collect::<Vec<_>>()
    })
    .await;
    verified.unwrap_or_else(|_| (0..count).map(|_| Precheck::Done(Err(stopped()))).collect())
}

/// What the replica's state says about a new transaction.
enum Lookup {
    /// Already on the chain: its first outcome.
    Known(Value),
    /// Not yet: decoded, with its signer's current key as stored.
    New(Box<ledger::tx::DecodedTx>, Vec<u8>),
}

fn check_one(
    state: &dyn ledger::StateStore,
    chain_id: &str,
    tx: &SignedTx,
) -> Result<Lookup, ApiError> {
    let decoded = ledger::tx::DecodedTx::from_signed(tx).map_err(|e| match e {
        ledger::tx::DecodeError::TooLarge(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "transaction_too_large", e.to_string())
        }
        _ => ApiError::bad_request("malformed_transaction", e.to_string()),
    })?;
    if decoded.body.chain_id != chain_id {
        return Err(ApiError::bad_request(
            "wrong_chain",
            format!(
                "the transaction names chain {:?}, this is {chain_id:?}",
                decoded.body.chain_id
            ),
        ));
    }
    if let Some(record) = query::transaction(state, &decoded.hash)? {
        return Ok(Lookup::Known(outcome_json(record.height, &record.result)));
    }
    let party = query::party(state, &decoded.body.signer)?.ok_or_else(|| {
        ApiError::bad_request(
            "unknown_signer",
            format!("no party {:?} on this chain", decoded.body.signer),
        )
    })?;
    Ok(Lookup::New(Box::new(decoded), party.public_key))
}

/// Proposes one prechecked transaction and answers with its outcome, or (`wait` false) as soon
/// as its entry is in the leader's log on disk: `{"tx_hash", "outcome": "pending", "log_index"}`.
async fn submit_one(app: &App, tx: SignedTx, wait: bool) -> Result<Value, ApiError> {
    let hash = ledger::tx::tx_hash(&tx);
    let committed = match app.node.submit(tx, wait).await {
        Ok(Accepted::Durable { index }) => {
            app.metrics.outcome("pending");
            return Ok(json!({
                "tx_hash": hex::encode(hash),
                "outcome": "pending",
                "log_index": index,
            }));
        }
        Ok(Accepted::Committed(committed)) => committed,
        Err(error) => return Err(submit_error(app, &hash, error)),
    };
    let result = committed.result;
    app.metrics.outcome(if result.applied { "applied" } else { &result.reject_code });
    if !result.applied && result.reject_code == "duplicate_transaction" {
        // A concurrent copy got there first: answer with its outcome.
        let first = app
            .read(Consistency::Local, move |state| query::transaction(state, &hash).ok().flatten())
            .await
            .ok()
            .flatten();
        if let Some(first) = first {
            return Ok(outcome_json(first.height, &first.result));
        }
    }
    Ok(outcome_json(committed.height, &result))
}

/// What a failed submission tells the client: whether it may have been applied, and what to do.
fn submit_error(app: &App, hash: &ledger::crypto::Hash32, error: SubmitError) -> ApiError {
    let unknown = |message: &str| {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", message.to_owned())
            .with("tx_hash", Value::String(hex::encode(hash)))
    };
    match error {
        SubmitError::Propose(ProposeError::NotLeader { leader_hint }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_leader",
            "this replica stopped leading; retry",
        )
        .with(
            "leader_hint",
            leader_hint.and_then(|id| app.config.http_url(id)).map_or(Value::Null, |u| json!(u)),
        ),
        SubmitError::Propose(ProposeError::TooLarge { bytes }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "transaction_too_large",
            format!("{bytes} bytes"),
        ),
        SubmitError::Propose(ProposeError::Overloaded { .. }) | SubmitError::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many transactions are pending; retry later (nothing was applied)",
        ),
        SubmitError::Propose(ProposeError::Dropped) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "leader_changed",
            "the leader changed before the transaction committed; it was not applied: resubmit",
        ),
        SubmitError::Propose(ProposeError::Unknown) | SubmitError::Timeout => unknown(
            "the outcome is unknown: look the transaction up by hash, or resubmit it (a second \
             copy is never applied twice)",
        ),
        SubmitError::Stopped => unknown("the replica stopped; the outcome is unknown"),
    }
}

/// Sends the request on to the leader's HTTP API and relays its answer.
async fn forward(app: &App, status: Option<&Status>, raw_query: &str, body: Bytes) -> Answer {
    let Some(url) = status.and_then(|s| app.config.http_url(s.leader_id)) else {
        return error_answer(&ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "no leader is known (an election may be under way); retry",
        ));
    };
    // The query string goes on exactly as it came (still percent-encoded).
    let mut uri = format!("{}/v1/transactions", url.trim_end_matches('/'));
    if !raw_query.is_empty() {
        uri = format!("{uri}?{raw_query}");
    }
    let request = warp::http::Request::post(&uri)
        .header("content-type", "application/json")
        .header(FORWARDED_HEADER, app.config.node_id.to_string())
        .body(Full::new(body));
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            return error_answer(&ApiError::new(
                StatusCode::BAD_GATEWAY,
                "leader_unreachable",
                format!("the leader's URL {url:?} is not usable: {e}"),
            ));
        }
    };
    let limit = Duration::from_millis(app.config.raft.submit_timeout_ms) + Duration::from_secs(5);
    let relayed = tokio::time::timeout(limit, async {
        let response = app.client.request(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>(Response::from_parts(parts, bytes))
    })
    .await;
    match relayed {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => error_answer(&ApiError::new(
            StatusCode::BAD_GATEWAY,
            "leader_unreachable",
            format!("forwarding to the leader at {url} failed: {e}; the outcome is unknown"),
        )),
        Err(_) => error_answer(&ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "outcome_unknown",
            "the leader did not answer in time; look the transactions up by hash",
        )),
    }
}
