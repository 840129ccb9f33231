//! The public listener's routes (`../shared/spec/interface.md`) and the read handlers: a
//! transaction's outcome, blocks, status, the audit, parties, private records, supervision
//! reports, health and metrics. Writes are [`crate::write`]'s, the event stream
//! [`crate::events`]'s; every rejection while matching a route becomes a JSON error.
//!
//! No input reaches the node before it decodes, names this chain and carries a signature that
//! verifies against its signer's key.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledger::{ChainVerifier, query};
use serde_json::{Value, json};
use warp::http::{Response, StatusCode};
use warp::{Filter, Rejection};

use crate::access::Read;
use crate::app::{Answer, App, FORWARDED_HEADER, error_answer, json_answer, stopped, with_height};
use crate::auth::{
    Access, Credentials, NODE_HEADER, NONCE_HEADER, PARTY_HEADER, SIGNATURE_HEADER, SignatureCheck,
    TIME_HEADER,
};
use crate::blocks::Range;
use crate::config::Role;
use crate::error::ApiError;
use crate::node::{Consistency, RaftRole, Status};
use crate::reads::{FinancingFilter, Record};
use crate::views::{outcome_json, outcome_summary};
use crate::write::{read_body, submit};

/// The OpenAPI document of the public listener's routes, served at `/v1/openapi.json` (the
/// admin listener's is [`crate::admin::ADMIN_OPENAPI`]).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Every route, (method, path template), of the public listener: what `docs/openapi.json`
/// documents (the admin listener's are `crate::admin::ADMIN_ROUTES`, in
/// `docs/openapi-admin.json`); `api/tests/it/openapi.rs` checks each document against its list
/// and against the server.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/transactions"),
    ("GET", "/v1/transactions/{hash}"),
    ("GET", "/v1/blocks/{height}"),
    ("GET", "/v1/blocks"),
    ("GET", "/v1/parties/{id}"),
    ("GET", "/v1/parties/{id}/grants"),
    ("GET", "/v1/purchase-orders/{id}"),
    ("GET", "/v1/shipments/{id}"),
    ("GET", "/v1/invoices/{id}"),
    ("GET", "/v1/tokens/{id}"),
    ("GET", "/v1/tokens/{id}/lineage"),
    ("GET", "/v1/tokens"),
    ("GET", "/v1/offers/{id}"),
    ("GET", "/v1/financings"),
    ("GET", "/v1/status"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/supervision/{report}"),
    ("GET", "/v1/events"),
    ("GET", "/v1/access-log"),
    ("GET", "/"),
    ("GET", "/explorer/{file}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
];

/// Blocks read from the replica per request while verifying the chain.
const AUDIT_CHUNK: usize = 256;

/// The public API's routes, with every rejection turned into a JSON error.
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app = {
        let app = app.clone();
        warp::any().map(move || app.clone())
    };
    let body_max = app.config.http.body_bytes_max;
    let raw_query = || warp::query::raw().or(warp::any().map(String::new)).unify();
    let submit = warp::path!("v1" / "transactions")
        .and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(raw_query())
        .and(warp::header::optional::<String>(FORWARDED_HEADER))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with_app.clone())
        .then(move |query, raw_query, forwarded, length, body, app: Arc<App>| async move {
            let answer = async {
                match read_body(length, body, body_max).await {
                    Ok(body) => submit(app.clone(), query, raw_query, forwarded, body).await,
                    Err(error) => error_answer(&error),
                }
            };
            app.clone().timed("submit", answer).await
        })
        .boxed();
    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { app.clone().timed("status", status(app)).await })
        .boxed();
    let audit = warp::path!("v1" / "audit" / "verify")
        .and(warp::get())
        .and(with_app.clone())
        .and(warp::query::<HashMap<String, String>>())
        .then(|app: Arc<App>, query: HashMap<String, String>| async move {
            app.clone().timed("audit", audit(app, query)).await
        })
        .boxed();
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { app.clone().timed("healthz", health(app)).await })
        .boxed();
    let openapi = warp::path!("v1" / "openapi.json")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move {
            let answer = async {
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Bytes::from_static(OPENAPI.as_bytes()))
                    .expect("a valid response")
            };
            app.timed("openapi", answer).await
        })
        .boxed();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { app.clone().timed("metrics", metrics(app)).await })
        .boxed();
    let party = warp::path!("v1" / "parties" / String)
        .and(warp::get())
        .and(consistency())
        .and(with_app.clone())
        .then(|id, consistency, app: Arc<App>| async move {
            app.clone().timed("party", party(app, consistency, id)).await
        })
        .boxed();
    let credentials = warp::header::optional::<String>(PARTY_HEADER)
        .and(warp::header::optional::<String>(TIME_HEADER))
        .and(warp::header::optional::<String>(NONCE_HEADER))
        .and(warp::header::optional::<String>(NODE_HEADER))
        .and(warp::header::optional::<String>(SIGNATURE_HEADER))
        .and(warp::ext::optional::<SignatureCheck>())
        .map(|party, time, nonce, node, signature, check: Option<SignatureCheck>| {
            // This route reads credentials: the listener is told the signature is being
            // checked (the read may wait for the reader pool first).
            if let Some(check) = &check {
                check.checking();
            }
            Credentials { party, time, nonce, node, signature, check }
        });
    let path_and_query =
        warp::path::full().and(raw_query()).map(|path: warp::path::FullPath, query: String| {
            if query.is_empty() {
                path.as_str().to_owned()
            } else {
                format!("{}?{query}", path.as_str())
            }
        });
    let signed = consistency()
        .and(purpose())
        .and(credentials)
        .and(path_and_query)
        .and(with_app.clone())
        .map(|consistency, purpose, credentials, path_and_query, app| Signed {
            consistency,
            purpose,
            credentials,
            path_and_query,
            app,
        })
        .boxed();
    let transaction = warp::path!("v1" / "transactions" / String)
        .and(warp::get())
        .and(signed.clone())
        .then(|hash, signed: Signed| async move {
            signed.app.clone().timed("transaction", transaction(signed, hash)).await
        })
        .boxed();
    let block = warp::path!("v1" / "blocks" / String)
        .and_then(|height: String| async move {
            height.parse::<u64>().map(Range::One).map_err(|_| warp::reject::custom(BadHeight))
        })
        .or(warp::path!("v1" / "blocks").and(warp::query::<HashMap<String, String>>()).and_then(
            |query: HashMap<String, String>| async move {
                let from = query.get("from").map(String::as_str);
                let limit = query.get("limit").map(String::as_str);
                Range::parse(from, limit).map_err(|e| warp::reject::custom(BadRequest(e)))
            },
        ))
        .unify()
        .and(warp::get())
        .and(signed.clone())
        .then(|range, signed: Signed| async move {
            signed.app.clone().timed("blocks", blocks(signed, range)).await
        })
        .boxed();
    let supervision = warp::path!("v1" / "supervision" / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(signed.clone())
        .then(|name: String, query, signed: Signed| async move {
            signed.app.clone().timed("supervision", supervision(signed, name, query)).await
        })
        .boxed();
    let events = warp::path!("v1" / "events")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(warp::ext::optional::<crate::listen::ClientAddress>())
        .and(signed.clone())
        .then(|query, last_event_id, client, signed: Signed| async move {
            let Signed { credentials, path_and_query, purpose, app, .. } = signed;
            let opened = crate::events::open(
                app.clone(),
                credentials,
                path_and_query,
                purpose,
                query,
                last_event_id,
                client,
            )
            .await;
            match opened {
                Ok(stream) => {
                    app.metrics.request("events", stream.status().as_u16(), Duration::ZERO);
                    stream
                }
                Err(error) => {
                    let answer = app.timed("events", async { error_answer(&error) }).await;
                    warp::reply::Reply::into_response(answer)
                }
            }
        })
        .boxed();
    let access_log = warp::path!("v1" / "access-log")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(signed.clone())
        .then(|query, signed: Signed| async move {
            signed.app.clone().timed("access_log", access_log(signed, query)).await
        })
        .boxed();
    let explorer = warp::path::end()
        .map(|| "index.html".to_owned())
        .or(warp::path!("explorer" / String))
        .unify()
        .and(warp::get())
        .and(with_app.clone())
        .then(|name: String, app: Arc<App>| async move {
            let answer = async {
                crate::explorer::asset(&name).unwrap_or_else(|error| error_answer(&error))
            };
            app.timed("explorer", answer).await
        })
        .boxed();
    let private = warp::path!("v1" / "purchase-orders" / String)
        .map(Record::PurchaseOrder)
        .or(warp::path!("v1" / "shipments" / String).map(Record::Shipment))
        .unify()
        .or(warp::path!("v1" / "invoices" / String).map(Record::Invoice))
        .unify()
        .or(warp::path!("v1" / "tokens" / String).map(Record::Token))
        .unify()
        .or(warp::path!("v1" / "tokens" / String / "lineage").map(Record::Lineage))
        .unify()
        .or(warp::path!("v1" / "parties" / String / "grants").map(Record::Grants))
        .unify()
        .or(warp::path!("v1" / "offers" / String).map(Record::Offer))
        .unify()
        .or(warp::path!("v1" / "financings")
            .and(warp::query::<HashMap<String, String>>())
            .and_then(|query: HashMap<String, String>| async move {
                financing_filter(&query)
                    .map(Record::Financings)
                    .map_err(|e| warp::reject::custom(BadRequest(e)))
            }))
        .unify()
        .or(warp::path!("v1" / "tokens").and(warp::query::<HashMap<String, String>>()).and_then(
            |query: HashMap<String, String>| async move {
                match query.get("holder") {
                    Some(holder) if !holder.is_empty() => Ok(Record::TokensOf(holder.clone())),
                    _ => Err(warp::reject::custom(MissingHolder)),
                }
            },
        ))
        .unify()
        .and(warp::get())
        .and(signed)
        .then(|record, signed: Signed| async move {
            signed.app.clone().timed("record", private_read(signed, record)).await
        })
        .boxed();
    let answers = submit
        .or(transaction)
        .unify()
        .or(block)
        .unify()
        .or(status)
        .unify()
        .or(audit)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(party)
        .unify()
        .or(private)
        .unify()
        .or(supervision)
        .unify()
        .or(access_log)
        .unify()
        .or(explorer)
        .unify()
        .map(warp::reply::Reply::into_response);
    // The event stream's body is a stream, not the bytes of an `Answer`: every route's answer
    // becomes warp's response type.
    events
        .or(answers)
        .unify()
        .or(wrong_method(ROUTES))
        .unify()
        .recover(move |rejection| {
            let app = app.clone();
            // Refused while matching a route (no route, wrong method, a bad query or body
            // size): counted under the route "unmatched".
            async move {
                let answer = app.timed("unmatched", async { rejection_answer(rejection) }).await;
                Ok::<_, Infallible>(warp::reply::Reply::into_response(answer))
            }
        })
        .unify()
}

/// A request whose path is one of `routes`' templates, but under other methods only.
#[derive(Debug)]
struct WrongMethod {
    /// The methods the path takes, for the `Allow` header.
    allow: String,
}

impl warp::reject::Reject for WrongMethod {}

/// Matches no request: it rejects each with [`WrongMethod`] when its path is a route of
/// `routes` under other methods (so the answer is `405` with an `Allow` header), and as not
/// found otherwise. Placed after every route, so that it only ever sees requests no route took.
pub(crate) fn wrong_method<T: Send + 'static>(
    routes: &'static [(&'static str, &'static str)],
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::path::full().and(warp::method()).and_then(
        move |path: warp::path::FullPath, method: warp::http::Method| async move {
            let allow: Vec<&str> = (routes.iter())
                .filter(|(_, template)| matches_template(template, path.as_str()))
                .map(|(method, _)| *method)
                .collect();
            if allow.is_empty() || allow.contains(&method.as_str()) {
                return Err::<T, _>(warp::reject::not_found());
            }
            Err(warp::reject::custom(WrongMethod { allow: allow.join(", ") }))
        },
    )
}

/// Whether `path` is an instance of `template` (`{name}` stands for one non-empty segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (template, path) = (template.split('/'), path.split('/'));
    template.clone().count() == path.clone().count()
        && template.zip(path).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') { !p.is_empty() } else { t == p }
        })
}

/// `GET /v1/financings`' query: `token=`, `bank=`, `seller=`, each an id if given, and nothing
/// else (besides `consistency`).
fn financing_filter(query: &HashMap<String, String>) -> Result<FinancingFilter, ApiError> {
    if let Some(name) = query
        .keys()
        .find(|k| !["token", "bank", "seller", "consistency", "purpose"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("GET /v1/financings takes token=, bank= and seller=, not {name}="),
        ));
    }
    let id = |name: &str| -> Result<Option<String>, ApiError> {
        match query.get(name) {
            None => Ok(None),
            Some(id) if ledger::machine::check_id("id", id).is_ok() => Ok(Some(id.clone())),
            Some(_) => Err(ApiError::bad_request("bad_query", format!("{name}= is not an id"))),
        }
    };
    Ok(FinancingFilter { token: id("token")?, bank: id("bank")?, seller: id("seller")? })
}

/// `GET /v1/tokens` without `?holder=`.
#[derive(Debug)]
struct MissingHolder;

impl warp::reject::Reject for MissingHolder {}

/// `GET /v1/blocks/{height}` with a height that is not a number.
#[derive(Debug)]
struct BadHeight;

impl warp::reject::Reject for BadHeight {}

/// A request refused while matching its route, with the answer to give.
#[derive(Debug)]
struct BadRequest(ApiError);

impl warp::reject::Reject for BadRequest {}

/// `?consistency=local|linearizable` (default local).
fn consistency() -> impl Filter<Extract = (Consistency,), Error = Rejection> + Clone {
    warp::query::<HashMap<String, String>>().and_then(|query: HashMap<String, String>| async move {
        match query.get("consistency").map(String::as_str) {
            None | Some("local") => Ok(Consistency::Local),
            Some("linearizable") => Ok(Consistency::Linearizable),
            Some(_) => Err(warp::reject::custom(BadRequest(ApiError::bad_request(
                "bad_query",
                "consistency is local or linearizable",
            )))),
        }
    })
}

/// `?purpose=CODE`: why the read is made (see [`crate::access::PURPOSES`]).
fn purpose() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    let raw = warp::query::raw().or(warp::any().map(String::new)).unify();
    raw.and_then(|raw: String| async move {
        crate::access::parse_purpose(&raw).map_err(|error| warp::reject::custom(BadRequest(error)))
    })
}

/// A read's app, consistency, purpose and signed-request headers.
#[derive(Clone)]
struct Signed {
    consistency: Consistency,
    purpose: Option<String>,
    credentials: Credentials,
    path_and_query: String,
    app: Arc<App>,
}

pub(crate) fn rejection_answer(rejection: Rejection) -> Answer {
    if let Some(WrongMethod { allow }) = rejection.find::<WrongMethod>() {
        let error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route takes {allow} only"),
        );
        let mut answer = error_answer(&error);
        let allow = warp::http::HeaderValue::from_str(allow).expect("method names are ASCII");
        answer.headers_mut().insert(warp::http::header::ALLOW, allow);
        return answer;
    }
    let error = if rejection.is_not_found() {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_route",
            "no such route (the routes are listed at GET /v1/openapi.json)",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is too large")
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    } else if let Some(BadRequest(error)) = rejection.find::<BadRequest>() {
        error.clone()
    } else if rejection.find::<BadHeight>().is_some() {
        ApiError::bad_request("bad_height", "the height is a number")
    } else if rejection.find::<MissingHolder>().is_some() {
        ApiError::bad_request("bad_query", "GET /v1/tokens needs ?holder=PARTY_ID")
    } else if let Some(error) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request("bad_query", error.to_string())
    } else if let Some(error) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request("bad_header", error.to_string())
    } else {
        ApiError::bad_request("bad_request", format!("{rejection:?}"))
    };
    error_answer(&error)
}

/// `GET /v1/transactions/{hash}`: where a transaction is and whether it applied, to anyone;
/// why it was rejected, or what it created, only to a signed reader who is its signer, a party
/// it involves (`ledger::supervision::involved`) or a regulator. A rejection's text says what
/// the ledger holds about others (a party's credit, say), and an id it created is not every
/// reader's to know.
async fn transaction(signed: Signed, hash: String) -> Answer {
    let hash = match hex::decode(&hash) {
        Ok(hash) if hash.len() == 32 => hash,
        // A hash that cannot be one is bad input, not a transaction this replica lacks.
        _ => {
            return error_answer(&ApiError::bad_request(
                "bad_hex",
                "a transaction hash is 64 hex digits (SHA-256 of the body)",
            ));
        }
    };
    let Signed { consistency, purpose, credentials, path_and_query, app } = signed;
    let auth = app.auth.clone();
    let found = app
        .read(consistency, move |state| -> Result<(u64, Value, Option<Read>), ApiError> {
            let reader = if credentials.present() {
                let now_ms = crate::auth::now_ms();
                Some(auth.authenticate(state, &credentials, "GET", &path_and_query, b"", now_ms)?)
            } else {
                None
            };
            let height = query::tip(state)?.map_or(0, |t| t.height);
            let Some(record) = query::transaction(state, &hash)? else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no such transaction on this replica (height {height})"),
                ));
            };
            // The details go to the signer, the parties it involves and regulators. A
            // regulator's read is logged as a read of every involved party's data; a party's
            // in its own log only, as its event stream is (`events::Cursor::log`): an entry in a
            // counterparty's log would tell it of the reader's part in the transaction.
            let read = match &reader {
                None => None,
                Some(reader) => {
                    let body = <ledger::pb::TxBody as prost::Message>::decode(&record.tx.body[..])
                        .map_err(ApiError::storage)?;
                    let involved =
                        ledger::supervision::involved(state, &body, record.result.applied)?;
                    let owners: Vec<&str> = involved.iter().map(String::as_str).collect();
                    let regulator = reader.role == ledger::pb::Role::Regulator;
                    if regulator || owners.contains(&reader.party.as_str()) {
                        let purpose = crate::access::purpose_of(reader, purpose.as_deref())?;
                        let access = if regulator { Access::Regulator } else { Access::Party };
                        let what = format!("transaction:{}", hex::encode(&hash));
                        let mut read = Read::new(reader, purpose, &access, &path_and_query);
                        if regulator {
                            read.add_all(&owners, &what);
                        } else {
                            read.add(&reader.party, &what);
                        }
                        Some(read)
                    } else {
                        None
                    }
                }
            };
            let mut value = if read.is_some() {
                outcome_json(record.height, &record.result)
            } else {
                outcome_summary(record.height, &record.result)
            };
            value["index"] = json!(record.index);
            Ok((height, value, read))
        })
        .await;
    match found.and_then(|found| found) {
        Ok((height, value, read)) => match crate::access::record(&app.access_log, read).await {
            Ok(()) => with_height(json_answer(StatusCode::OK, &value), height),
            Err(error) => error_answer(&error),
        },
        Err(error) => error_answer(&error),
    }
}

/// `GET /v1/blocks/{height}` and `GET /v1/blocks?from=H&limit=N` (see [`crate::blocks`]).
async fn blocks(signed: Signed, range: Range) -> Answer {
    let Signed { consistency, purpose, credentials, path_and_query, app } = signed;
    let auth = app.auth.clone();
    let found = app
        .read(consistency, move |state| {
            crate::blocks::read(state, &auth, &credentials, &path_and_query, purpose, range)
        })
        .await;
    answer_logged(&app, found).await
}

fn role_name(status: &Status) -> &'static str {
    if status.observer {
        return "observer";
    }
    match status.role {
        RaftRole::Leader => "leader",
        RaftRole::Candidate => "candidate",
        RaftRole::Follower => "follower",
    }
}

/// `GET /v1/status`.
async fn status(app: Arc<App>) -> Answer {
    let Some(status) = app.node.status().await else {
        return error_answer(&stopped());
    };
    let value = json!({
        "node_id": status.id,
        "role": role_name(&status),
        "leader_id": if status.leader_id == 0 { Value::Null } else { json!(status.leader_id) },
        "term": status.term,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "height": status.height,
        "last_block_hash": hex::encode(&status.last_block_hash),
        "state_hash": hex::encode(&status.state_hash),
        "snapshots_installed": status.snapshots_installed,
        // The head of this replica's access log: a reader who kept it can tell later whether
        // an entry before it was removed.
        "access_log": crate::access::head_json(&app.access_log),
        // What every replica derives its chain from: enough to replay and verify it.
        "genesis": {
            "chain_id": app.genesis.chain_id,
            "registrar_public_key": hex::encode(app.genesis.registrar_public_key.to_bytes()),
            "time_ms": app.genesis.time_ms,
        },
    });
    with_height(json_answer(StatusCode::OK, &value), status.height)
}

/// A verifier at genesis, as `GET /v1/audit/verify` starts with: on an observer it checks every
/// signature too.
pub(crate) fn audit_from_genesis(genesis: &ledger::Genesis, role: Role) -> ChainVerifier {
    ChainVerifier::new(genesis, role == Role::Observer)
}

/// `GET /v1/audit/verify[?from=1]`: verifies the chain (links, roots, results; on an observer
/// every signature too) from where the last audit of this process stopped, or from genesis with
/// `from=1`, up to the tip. Blocks are read a chunk at a time, so the replica keeps applying
/// meanwhile, and verified off the replica's thread. One audit runs at a time: the others wait
/// for it, then go on from where it stopped. A verifier at height H needs every key change
/// before H, which only the blocks from genesis give, so 1 is the only restart point.
async fn audit(app: Arc<App>, query: HashMap<String, String>) -> Answer {
    let restart = match query.get("from").map(String::as_str) {
        None => false,
        Some("1") => true,
        Some(_) => {
            let why =
                "from is 1: an audit restarts from genesis, or goes on where the last stopped";
            return error_answer(&ApiError::bad_request("bad_query", why));
        }
    };
    let mut progress = app.audit.lock().await;
    if restart {
        *progress = audit_from_genesis(&app.genesis, app.config.role);
    }
    // A copy runs: an audit dropped half-way (its client gone) leaves behind the verifier of
    // its last whole chunk, never one half-updated.
    let mut verifier = progress.clone();
    let signatures = app.config.role == Role::Observer;
    let from = verifier.next_height();
    let tip = app
        .read(Consistency::Local, |state| query::tip(state).ok().flatten().map_or(0, |t| t.height));
    let height = match tip.await {
        Ok(height) => height,
        Err(error) => {
            *progress = verifier;
            return error_answer(&error);
        }
    };
    let mut first_bad = Value::Null;
    while verifier.next_height() <= height {
        let next = verifier.next_height();
        let chunk = app
            .read(Consistency::Local, move |state| query::blocks(state, next, AUDIT_CHUNK))
            .await;
        let blocks = match chunk {
            Err(error) => {
                *progress = verifier;
                return error_answer(&error);
            }
            Ok(Err(e)) => {
                first_bad = json!({"height": next, "error": e.to_string()});
                break;
            }
            Ok(Ok(blocks)) if blocks.is_empty() => {
                first_bad = json!({"height": next, "error": "block missing"});
                break;
            }
            Ok(Ok(blocks)) => blocks,
        };
        // A failed block leaves the verifier before it (`verify_block` changes nothing then),
        // so the next audit checks it again and fails again.
        let (result, returned) = tokio::task::spawn_blocking(move || {
            let failed = blocks.iter().find_map(|block| verifier.verify_block(block).err());
            (failed, verifier)
        })
        .await
        .expect("verification does not panic");
        verifier = returned;
        // Kept after every chunk: an audit dropped later leaves this much done.
        *progress = verifier.clone();
        if let Some(e) = result {
            first_bad = json!({"height": e.height, "error": e.to_string()});
            break;
        }
    }
    let verified_to = verifier.next_height() - 1;
    *progress = verifier;
    drop(progress);
    let value = json!({
        "ok": first_bad.is_null(),
        "from": from,
        "height": verified_to,
        "signatures_checked": signatures,
        "first_bad": first_bad,
    });
    with_height(json_answer(StatusCode::OK, &value), height)
}

/// `GET /v1/parties/{id}`: public (every party's key is needed to verify its signatures).
async fn party(app: Arc<App>, consistency: Consistency, id: String) -> Answer {
    let id = crate::reads::percent_decoded(&id);
    if let Err(error) = crate::reads::check_id(&id) {
        return error_answer(&error);
    }
    let found = app
        .read(consistency, move |state| {
            let height = query::tip(state).ok().flatten().map_or(0, |t| t.height);
            (height, query::party(state, &id).map_err(|e| e.to_string()))
        })
        .await;
    match found {
        Err(error) => error_answer(&error),
        Ok((_, Err(e))) => error_answer(&ApiError::storage(e)),
        Ok((_, Ok(None))) => {
            error_answer(&ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such party"))
        }
        Ok((height, Ok(Some(party)))) => {
            with_height(json_answer(StatusCode::OK, &crate::views::party(&party)), height)
        }
    }
}

/// `GET /v1/supervision/{report}`.
async fn supervision(signed: Signed, name: String, query: HashMap<String, String>) -> Answer {
    let Some(report) = crate::supervision::Report::from_name(&name) else {
        return error_answer(&ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the supervision reports are exposure, concentration, maturity, financing and \
             rejections",
        ));
    };
    let Signed { consistency, purpose, credentials, path_and_query, app } = signed;
    let (auth, reports) = (app.auth.clone(), app.reports.clone());
    let found = app
        .read(consistency, move |state| {
            let purpose = purpose.as_deref();
            let path = &path_and_query;
            let (credentials, query) = (&credentials, &query);
            crate::supervision::read(
                state,
                &reports,
                &auth,
                credentials,
                path,
                purpose,
                report,
                query,
            )
        })
        .await;
    answer_logged(&app, found).await
}

/// `GET /v1/access-log?from=SEQ&before=SEQ&limit=N`: the accesses to the reader's
/// records on this replica (every entry, to a regulator, which must give a purpose, and whose
/// look is logged).
async fn access_log(signed: Signed, query: HashMap<String, String>) -> Answer {
    let page = (|| {
        if let Some(name) = query
            .keys()
            .find(|k| !["from", "before", "limit", "consistency", "purpose"].contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("the access log takes from=, before=, limit= and purpose=, not {name}="),
            ));
        }
        let seq = |name: &str| match query.get(name) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().ok().filter(|&n| n >= 1).map(Some).ok_or_else(|| {
                ApiError::bad_request("bad_query", format!("{name} is an entry's seq, 1 or more"))
            }),
        };
        let start = crate::access::Page { from: seq("from")?.unwrap_or(1), before: seq("before")? };
        let max = crate::access::ACCESS_LOG_LIMIT_MAX;
        let limit = match query.get("limit") {
            None => 100,
            Some(text) => {
                text.parse::<usize>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    ApiError::bad_request("bad_query", format!("limit is a number from 1 to {max}"))
                })?
            }
        };
        Ok((start, limit))
    })();
    let (start, limit) = match page {
        Ok(page) => page,
        Err(error) => return error_answer(&error),
    };
    let Signed { consistency, purpose, credentials, path_and_query, app } = signed;
    let auth = app.auth.clone();
    let path = path_and_query.clone();
    let checked = app
        .read(consistency, move |state| {
            let now_ms = crate::auth::now_ms();
            let reader = auth.authenticate(state, &credentials, "GET", &path, b"", now_ms)?;
            let purpose = crate::access::purpose_of(&reader, purpose.as_deref())?;
            Ok::<_, ApiError>((reader, purpose))
        })
        .await;
    let (reader, purpose) = match checked.and_then(|checked| checked) {
        Ok(checked) => checked,
        Err(error) => return error_answer(&error),
    };
    // A regulator's look at the whole log is a read of every party's accounting: logged. A
    // party's look at its own is not (the log would grow with every look at it).
    if reader.role == ledger::pb::Role::Regulator {
        let read = Read::everyone(&reader, purpose, &path_and_query, "access_log");
        if let Err(error) = crate::access::record(&app.access_log, Some(read)).await {
            return error_answer(&error);
        }
    }
    let log = app.access_log.clone();
    let listed =
        tokio::task::spawn_blocking(move || crate::access::answer(&log, &reader, start, limit))
            .await;
    match listed {
        Ok(Ok(value)) => json_answer(StatusCode::OK, &value),
        Ok(Err(error)) => error_answer(&error),
        Err(join) => error_answer(&ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            join.to_string(),
        )),
    }
}

/// What a logged read found: its answer, the replica's height, and what to log.
type LoggedRead = Result<(Value, u64, Option<Read>), ApiError>;

/// Answers a read that found `(value, height, read)`, once `read` is in the access log.
async fn answer_logged(app: &Arc<App>, found: Result<LoggedRead, ApiError>) -> Answer {
    match found.and_then(|found| found) {
        Ok((value, height, read)) => match crate::access::record(&app.access_log, read).await {
            Ok(()) => with_height(json_answer(StatusCode::OK, &value), height),
            Err(error) => error_answer(&error),
        },
        Err(error) => error_answer(&error),
    }
}

/// A private read: authenticated and authorised against one view of the state.
async fn private_read(signed: Signed, record: Record) -> Answer {
    let Signed { consistency, purpose, credentials, path_and_query, app } = signed;
    let auth = app.auth.clone();
    let counts = match &record {
        // The counts are by the owner's id as the ledger spells it (the path may escape it).
        Record::Grants(owner) => {
            Some(app.access_log.grant_reads(&crate::reads::percent_decoded(owner)))
        }
        _ => None,
    };
    let found = app
        .read(consistency, move |state| {
            let purpose = purpose.as_deref();
            let path = &path_and_query;
            crate::reads::read(state, &auth, &credentials, path, purpose, &record, counts)
                .map(|found| (found.value, found.height, Some(found.read)))
        })
        .await;
    answer_logged(&app, found).await
}

/// `GET /healthz`: 200 while the replica's thread answers.
async fn health(app: Arc<App>) -> Answer {
    match app.node.status().await {
        Some(_) => json_answer(StatusCode::OK, &json!({"ok": true})),
        None => error_answer(&stopped()),
    }
}

/// `GET /metrics`.
async fn metrics(app: Arc<App>) -> Answer {
    let status = app.node.status().await;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", crate::metrics::CONTENT_TYPE)
        .body(Bytes::from(app.metrics.render(status.as_ref())))
        .expect("a valid response")
}
