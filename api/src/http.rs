//! The HTTP API (`../shared/spec/interface.md`): warp routes over a [`Replica`].
//!
//! Every answer is JSON; every failure is `{"error": {"code", "message", ...}}` with a fitting
//! 4xx or 5xx status, and no input reaches the replica before it decodes, names this chain and
//! carries a signature that verifies against its signer's key. Reads answer from this replica's
//! state and say its height in the `x-scf-height` header.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ledger::pb::{SignedTx, TxResult};
use ledger::{ChainVerifier, Genesis, query};
use raft::StateRole;
use raft_node::node::{MembershipChange, MembershipError, NodeStatus, ProposeError};
use raft_node::replica::{Accepted, Replica, SubmitError};
use serde_json::{Value, json};
use warp::http::{Response, StatusCode};
use warp::{Filter, Rejection};

use crate::auth::{Credentials, PARTY_HEADER, SIGNATURE_HEADER, TIME_HEADER};
use crate::blocks::Range;
use crate::config::{Config, Role};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::reads::{GrantReads, Record};

/// Header a follower sets when it forwards a write, so the write is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-scf-forwarded-by";
/// Header with the height of the state a read was answered from.
pub const HEIGHT_HEADER: &str = "x-scf-height";

/// The OpenAPI document of both listeners' routes, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Every route, (method, path template), of the public listener and then the admin listener:
/// what `docs/openapi.json` documents; `api/tests/it/openapi.rs` checks both against each other and
/// against the server.
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
    ("GET", "/v1/status"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/supervision/{report}"),
    ("GET", "/v1/events"),
    ("GET", "/"),
    ("GET", "/explorer/{file}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
];

/// The admin listener's routes (see [`ROUTES`]).
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/admin/members"),
    ("POST", "/v1/admin/members"),
    ("DELETE", "/v1/admin/members/{id}"),
    ("GET", "/v1/admin/faults"),
    ("PUT", "/v1/admin/faults"),
];

/// Blocks read from the replica per request while verifying the chain.
const AUDIT_CHUNK: usize = 256;

/// What every handler shares.
pub struct App {
    /// The replica.
    pub replica: Replica,
    /// The node's configuration.
    pub config: Arc<Config>,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// For forwarding writes to the leader.
    pub client: Client<Connector, Full<Bytes>>,
    /// Reads by grantees on this replica.
    pub grant_reads: GrantReads,
    /// Parsed signer keys and verified signatures, shared with the replica's ledger (which then
    /// does not verify a second time what this API verified).
    pub memos: ledger::Memos,
    /// The raft links the admin API may cut, when the node runs with `fault_injection`.
    pub cuts: Option<Arc<raft_node::transport::Cuts>>,
    /// What the raft port refused (connections and messages), for `/metrics`.
    pub refusals: Arc<raft_node::transport::PeerRefusals>,
    /// The open event streams (`GET /v1/events`).
    pub events: crate::events::Streams,
}

/// Every route's answer.
pub type Answer = Response<Bytes>;

/// How a follower reaches the leader's API: plain HTTP or HTTPS under the cluster CA.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(value.to_string()))
        .expect("a valid response")
}

fn error_answer(error: &ApiError) -> Answer {
    json_answer(error.status, &error.body())
}

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
            timed(&app.clone(), "submit", answer).await
        });
    let transaction = warp::path!("v1" / "transactions" / String)
        .and(warp::get())
        .and(consistency())
        .and(with_app.clone())
        .then(|hash, consistency, app: Arc<App>| async move {
            timed(&app.clone(), "transaction", transaction(app, consistency, hash)).await
        });
    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { timed(&app.clone(), "status", status(app)).await });
    let audit = warp::path!("v1" / "audit" / "verify")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { timed(&app.clone(), "audit", audit(app)).await });
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { timed(&app.clone(), "healthz", health(app)).await });
    let openapi = warp::path!("v1" / "openapi.json").and(warp::get()).and(with_app.clone()).then(
        |app: Arc<App>| async move {
            let answer = async {
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Bytes::from_static(OPENAPI.as_bytes()))
                    .expect("a valid response")
            };
            timed(&app, "openapi", answer).await
        },
    );
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { timed(&app.clone(), "metrics", metrics(app)).await });
    let party = warp::path!("v1" / "parties" / String)
        .and(warp::get())
        .and(consistency())
        .and(with_app.clone())
        .then(|id, consistency, app: Arc<App>| async move {
            timed(&app.clone(), "party", party(app, consistency, id)).await
        });
    let credentials = warp::header::optional::<String>(PARTY_HEADER)
        .and(warp::header::optional::<String>(TIME_HEADER))
        .and(warp::header::optional::<String>(SIGNATURE_HEADER))
        .map(|party, time, signature| Credentials { party, time, signature });
    let path_and_query =
        warp::path::full().and(raw_query()).map(|path: warp::path::FullPath, query: String| {
            if query.is_empty() {
                path.as_str().to_owned()
            } else {
                format!("{}?{query}", path.as_str())
            }
        });
    let signed = consistency().and(credentials).and(path_and_query).and(with_app.clone()).map(
        |consistency, credentials, path_and_query, app| Signed {
            consistency,
            credentials,
            path_and_query,
            app,
        },
    );
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
            timed(&signed.app.clone(), "blocks", blocks(signed, range)).await
        });
    let supervision = warp::path!("v1" / "supervision" / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(signed.clone())
        .then(|name: String, query, signed: Signed| async move {
            timed(&signed.app.clone(), "supervision", supervision(signed, name, query)).await
        });
    let events = warp::path!("v1" / "events")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(signed.clone())
        .then(|query, last_event_id, signed: Signed| async move {
            let Signed { credentials, path_and_query, app, .. } = signed;
            let opened =
                crate::events::open(app.clone(), credentials, path_and_query, query, last_event_id)
                    .await;
            match opened {
                Ok(stream) => {
                    app.metrics.request("events", stream.status().as_u16(), Duration::ZERO);
                    stream
                }
                Err(error) => {
                    let answer = timed(&app, "events", async { error_answer(&error) }).await;
                    warp::reply::Reply::into_response(answer)
                }
            }
        });
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
            timed(&app, "explorer", answer).await
        });
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
            timed(&signed.app.clone(), "record", private_read(signed, record)).await
        });
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
        .or(explorer)
        .unify()
        .map(warp::reply::Reply::into_response);
    // The event stream's body is a stream, not the bytes of an `Answer`: every route's answer
    // becomes warp's response type.
    events
        .or(answers)
        .unify()
        .recover(move |rejection| {
            let app = app.clone();
            // Refused while matching a route (no route, wrong method, a bad query or body
            // size): counted under the route "unmatched".
            async move {
                let answer = timed(&app, "unmatched", async { rejection_answer(rejection) }).await;
                Ok::<_, Infallible>(warp::reply::Reply::into_response(answer))
            }
        })
        .unify()
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

/// Where a read is answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    /// This replica's state as it is (the `x-scf-height` header says how far it is).
    Local,
    /// State at least as new as the leader's commit index when the read arrived (ReadIndex).
    Linearizable,
}

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

/// A read's app, consistency and signed-request headers.
#[derive(Clone)]
struct Signed {
    consistency: Consistency,
    credentials: Credentials,
    path_and_query: String,
    app: Arc<App>,
}

/// Runs `read` against this replica's state, after a ReadIndex round if asked to.
async fn read_state<R, F>(app: &App, consistency: Consistency, read: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(&dyn ledger::StateStore) -> R + Send + 'static,
{
    match consistency {
        Consistency::Local => app.replica.read(read).await.ok_or_else(stopped),
        Consistency::Linearizable => app.replica.read_linearizable(read).await.map_err(|e| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "read_unavailable", e.to_string())
        }),
    }
}

/// The admin API's routes (membership), served on their own, loopback-only listener.
pub fn admin_routes(app: Arc<App>) -> impl Filter<Extract = (Answer,), Error = Infallible> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let list = warp::path!("v1" / "admin" / "members")
        .and(warp::get())
        .and(with_app.clone())
        .then(members);
    let add = warp::path!("v1" / "admin" / "members")
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with_app.clone())
        .then(add_member);
    let remove = warp::path!("v1" / "admin" / "members" / u64)
        .and(warp::delete())
        .and(with_app.clone())
        .then(remove_member);
    let get_faults = warp::path!("v1" / "admin" / "faults")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { faults(&app, None) });
    let set_faults = warp::path!("v1" / "admin" / "faults")
        .and(warp::put())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with_app)
        .then(|body: Bytes, app: Arc<App>| async move { faults(&app, Some(body)) });
    list.or(add)
        .unify()
        .or(remove)
        .unify()
        .or(get_faults)
        .unify()
        .or(set_faults)
        .unify()
        .recover(|rejection| async move { Ok::<_, Infallible>(rejection_answer(rejection)) })
        .unify()
}

async fn timed(app: &App, route: &'static str, answer: impl Future<Output = Answer>) -> Answer {
    let started = Instant::now();
    let answer = answer.await;
    app.metrics.request(route, answer.status().as_u16(), started.elapsed());
    if answer.status().is_client_error() || answer.status().is_server_error() {
        // Refusals by reason: the code of the (small) JSON error body.
        if let Ok(body) = serde_json::from_slice::<Value>(answer.body()) {
            if let Some(code) = body["error"]["code"].as_str() {
                app.metrics.error(code);
            }
        }
    }
    answer
}

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
async fn read_body<S, B>(declared: Option<u64>, body: S, limit: u64) -> Result<Bytes, ApiError>
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

fn rejection_answer(rejection: Rejection) -> Answer {
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

fn leader_url(app: &App, status: Option<&NodeStatus>) -> Value {
    status
        .and_then(|s| app.config.http_url(s.leader_id))
        .map_or(Value::Null, |url| Value::String(url.to_owned()))
}

/// `POST /v1/transactions`: one `{"body", "signature"}` object or an array of them.
async fn submit(
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
    let status = app.replica.status().await;
    if app.config.role == Role::Observer {
        return error_answer(
            &ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only_replica",
                "this replica is an observer; send writes to a voter",
            )
            .with("leader_hint", leader_url(&app, status.as_ref())),
        );
    }
    let submission = match crate::wire::parse_submission(&body, app.config.http.batch_txs_max) {
        Ok(submission) => submission,
        Err(error) => return error_answer(&error.into()),
    };
    let (items, batch) = (submission.items, submission.batch);
    app.metrics.batch(items.len());
    // A follower forwards the whole request to the leader, once.
    let leading = status.as_ref().is_some_and(|s| s.role == StateRole::Leader);
    if !leading {
        if forwarded.is_some() {
            return error_answer(
                &ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_leader",
                    "forwarded to a replica that no longer leads; retry",
                )
                .with("leader_hint", leader_url(&app, status.as_ref())),
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
        .replica
        .read(move |state| {
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
    let Some(checked) = checked else {
        return (0..count).map(|_| Precheck::Done(Err(stopped()))).collect();
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
                            return Precheck::Done(Err(ApiError::new(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "storage_error",
                                format!("{:?}'s stored key: {e}", decoded.body.signer),
                            )));
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

pub(crate) fn stopped() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "replica_stopped", "the replica has stopped")
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
    let internal = |e: ledger::StoreError| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", e.to_string())
    };
    if let Some(record) = query::transaction(state, &decoded.hash).map_err(internal)? {
        return Ok(Lookup::Known(outcome_json(record.height, &record.result)));
    }
    let party = query::party(state, &decoded.body.signer).map_err(internal)?.ok_or_else(|| {
        ApiError::bad_request(
            "unknown_signer",
            format!("no party {:?} on this chain", decoded.body.signer),
        )
    })?;
    Ok(Lookup::New(Box::new(decoded), party.public_key))
}

pub(crate) fn outcome_json(height: u64, result: &TxResult) -> Value {
    let mut value = json!({
        "tx_hash": hex::encode(&result.tx_hash),
        "height": height,
        "outcome": if result.applied { "applied" } else { "rejected" },
    });
    if result.applied {
        value["created_ids"] = json!(result.created_ids);
    } else {
        value["reason"] = json!({"code": result.reject_code, "message": result.reject_message});
    }
    value
}

/// Proposes one prechecked transaction and answers with its outcome, or (`wait` false) as soon
/// as its entry is in the leader's log on disk: `{"tx_hash", "outcome": "pending", "log_index"}`.
async fn submit_one(app: &App, tx: SignedTx, wait: bool) -> Result<Value, ApiError> {
    let hash = ledger::tx::tx_hash(&tx);
    let committed = if wait {
        app.replica.submit(tx).await
    } else {
        match app.replica.propose(tx).await {
            Ok(Accepted::Durable { index }) => {
                app.metrics.outcome("pending");
                return Ok(json!({
                    "tx_hash": hex::encode(hash),
                    "outcome": "pending",
                    "log_index": index,
                }));
            }
            Ok(Accepted::Committed(committed)) => Ok(committed),
            Err(error) => Err(error),
        }
    };
    let committed = committed.map_err(|error| submit_error(app, &hash, error))?;
    let result = committed.result;
    app.metrics.outcome(if result.applied { "applied" } else { &result.reject_code });
    if !result.applied && result.reject_code == "duplicate_transaction" {
        // A concurrent copy got there first: answer with its outcome.
        let first = app
            .replica
            .read(move |state| query::transaction(state, &hash).ok().flatten())
            .await
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
async fn forward(app: &App, status: Option<&NodeStatus>, raw_query: &str, body: Bytes) -> Answer {
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

/// `GET /v1/transactions/{hash}`: where a transaction is and how it ended.
async fn transaction(app: Arc<App>, consistency: Consistency, hash: String) -> Answer {
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
    let found = read_state(&app, consistency, move |state| {
        let height = query::tip(state).ok().flatten().map_or(0, |t| t.height);
        (height, query::transaction(state, &hash).map_err(|e| e.to_string()))
    })
    .await;
    let answer = match found {
        Err(error) => Err(error),
        Ok((_, Err(e))) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", e))
        }
        Ok((height, Ok(None))) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such transaction on this replica (height {height})"),
        )),
        Ok((height, Ok(Some(record)))) => {
            let mut value = outcome_json(record.height, &record.result);
            value["index"] = json!(record.index);
            Ok((height, value))
        }
    };
    match answer {
        Ok((height, value)) => with_height(json_answer(StatusCode::OK, &value), height),
        Err(error) => error_answer(&error),
    }
}

fn with_height(mut answer: Answer, height: u64) -> Answer {
    answer.headers_mut().insert(HEIGHT_HEADER, height.into());
    answer
}

/// `GET /v1/blocks/{height}` and `GET /v1/blocks?from=H&limit=N` (see [`crate::blocks`]).
async fn blocks(signed: Signed, range: Range) -> Answer {
    let Signed { consistency, credentials, path_and_query, app } = signed;
    let found = read_state(&app, consistency, move |state| {
        crate::blocks::read(state, &credentials, &path_and_query, range)
    })
    .await;
    match found.and_then(|found| found) {
        Ok((value, height)) => with_height(json_answer(StatusCode::OK, &value), height),
        Err(error) => error_answer(&error),
    }
}

fn role_name(status: &NodeStatus) -> &'static str {
    if status.observer {
        return "observer";
    }
    match status.role {
        StateRole::Leader => "leader",
        StateRole::Candidate | StateRole::PreCandidate => "candidate",
        StateRole::Follower => "follower",
    }
}

/// `GET /v1/status`.
async fn status(app: Arc<App>) -> Answer {
    let Some(status) = app.replica.status().await else {
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
        // What every replica derives its chain from: enough to replay and verify it.
        "genesis": {
            "chain_id": app.genesis.chain_id,
            "registrar_public_key": hex::encode(app.genesis.registrar_public_key.to_bytes()),
            "time_ms": app.genesis.time_ms,
        },
    });
    with_height(json_answer(StatusCode::OK, &value), status.height)
}

/// `GET /v1/audit/verify`: re-verifies the chain from genesis (links, roots, results; on an
/// observer every signature too), reading blocks a chunk at a time so that the replica keeps
/// applying meanwhile, and verifying off the replica's thread.
async fn audit(app: Arc<App>) -> Answer {
    let signatures = app.config.role == Role::Observer;
    let mut verifier = ChainVerifier::new(&app.genesis, signatures);
    let Some(height) =
        app.replica.read(|state| query::tip(state).ok().flatten().map_or(0, |t| t.height)).await
    else {
        return error_answer(&stopped());
    };
    let mut next = 1;
    let mut first_bad = Value::Null;
    while next <= height {
        let chunk = app
            .replica
            .read(move |state| query::blocks(state, next, AUDIT_CHUNK).map_err(|e| e.to_string()))
            .await;
        let blocks = match chunk {
            None => return error_answer(&stopped()),
            Some(Err(e)) => {
                first_bad = json!({"height": next, "error": e});
                break;
            }
            Some(Ok(blocks)) if blocks.is_empty() => {
                first_bad = json!({"height": next, "error": "block missing"});
                break;
            }
            Some(Ok(blocks)) => blocks,
        };
        let (result, returned) = tokio::task::spawn_blocking(move || {
            let mut result = Ok(());
            for block in &blocks {
                if let Err(e) = verifier.verify_block(block) {
                    result = Err(e);
                    break;
                }
            }
            (result.map(|()| blocks.len()), verifier)
        })
        .await
        .expect("verification does not panic");
        verifier = returned;
        match result {
            Ok(count) => next += count as u64,
            Err(e) => {
                first_bad = json!({"height": e.height, "error": e.to_string()});
                break;
            }
        }
    }
    let verified_to = if first_bad.is_null() { height } else { next.saturating_sub(1) };
    let value = json!({
        "ok": first_bad.is_null(),
        "height": verified_to,
        "signatures_checked": signatures,
        "first_bad": first_bad,
    });
    with_height(json_answer(StatusCode::OK, &value), height)
}

/// `GET /v1/parties/{id}`: public (every party's key is needed to verify its signatures).
async fn party(app: Arc<App>, consistency: Consistency, id: String) -> Answer {
    let found = read_state(&app, consistency, move |state| {
        let height = query::tip(state).ok().flatten().map_or(0, |t| t.height);
        (height, query::party(state, &id).map_err(|e| e.to_string()))
    })
    .await;
    match found {
        Err(error) => error_answer(&error),
        Ok((_, Err(e))) => {
            error_answer(&ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", e))
        }
        Ok((_, Ok(None))) => {
            error_answer(&ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such party"))
        }
        Ok((height, Ok(Some(party)))) => {
            with_height(json_answer(StatusCode::OK, &crate::views::party(&party)), height)
        }
    }
}

/// A private read: authenticated and authorised against one view of the state.
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
    let Signed { consistency, credentials, path_and_query, app } = signed;
    let found = read_state(&app, consistency, move |state| {
        crate::supervision::read(state, &credentials, &path_and_query, report, &query)
    })
    .await;
    match found.and_then(|found| found) {
        Ok((value, height)) => with_height(json_answer(StatusCode::OK, &value), height),
        Err(error) => error_answer(&error),
    }
}

async fn private_read(signed: Signed, record: Record) -> Answer {
    let Signed { consistency, credentials, path_and_query, app } = signed;
    let counts = match &record {
        Record::Grants(owner) => Some(app.grant_reads.counts_of(owner)),
        _ => None,
    };
    let found = read_state(&app, consistency, move |state| {
        crate::reads::read(state, &credentials, &path_and_query, &record, counts)
    })
    .await;
    match found.and_then(|found| found) {
        Err(error) => error_answer(&error),
        Ok(found) => {
            app.grant_reads.record(&found.via_grant);
            with_height(json_answer(StatusCode::OK, &found.value), found.height)
        }
    }
}

/// `GET /healthz`: 200 while the replica's thread answers.
async fn health(app: Arc<App>) -> Answer {
    match app.replica.status().await {
        Some(_) => json_answer(StatusCode::OK, &json!({"ok": true})),
        None => error_answer(&stopped()),
    }
}

/// `GET /metrics`.
async fn metrics(app: Arc<App>) -> Answer {
    let status = app.replica.status().await;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Bytes::from(app.metrics.render(status.as_ref(), &app.refusals)))
        .expect("a valid response")
}

async fn members(app: Arc<App>) -> Answer {
    match app.replica.members().await {
        Some(conf) => {
            json_answer(StatusCode::OK, &json!({"voters": conf.voters, "observers": conf.learners}))
        }
        None => error_answer(&stopped()),
    }
}

async fn add_member(body: Bytes, app: Arc<App>) -> Answer {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Add {
        id: u64,
        role: Role,
        raft: String,
    }
    let add: Add = match serde_json::from_slice(&body) {
        Ok(add) => add,
        Err(e) => return error_answer(&ApiError::bad_request("malformed_json", e.to_string())),
    };
    let change = match add.role {
        Role::Observer => MembershipChange::AddObserver { id: add.id, address: add.raft },
        Role::Voter => MembershipChange::AddVoter { id: add.id, address: add.raft },
    };
    change_membership(&app, change).await
}

/// `GET` (with no body) and `PUT /v1/admin/faults`: the raft peers this node is cut off from.
/// `{"cut_peers": [ID, ...]}` replaces the set; `[]` heals.
fn faults(app: &App, body: Option<Bytes>) -> Answer {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Set {
        cut_peers: Vec<u64>,
    }
    let Some(cuts) = &app.cuts else {
        return error_answer(&ApiError::new(
            StatusCode::FORBIDDEN,
            "fault_injection_off",
            "this node runs without fault_injection (set it in the config, or pass \
             --fault-injection, on test clusters only)",
        ));
    };
    if let Some(body) = body {
        match serde_json::from_slice::<Set>(&body) {
            Ok(set) => {
                tracing::warn!(cut_peers = ?set.cut_peers, "fault injection: raft links cut");
                cuts.set(set.cut_peers);
            }
            Err(e) => return error_answer(&ApiError::bad_request("malformed_json", e.to_string())),
        }
    }
    json_answer(
        StatusCode::OK,
        &json!({"cut_peers": cuts.get(), "dropped_messages": cuts.dropped()}),
    )
}

async fn remove_member(id: u64, app: Arc<App>) -> Answer {
    change_membership(&app, MembershipChange::Remove { id }).await
}

async fn change_membership(app: &App, change: MembershipChange) -> Answer {
    match app.replica.change_membership(change).await {
        Ok(()) => json_answer(
            StatusCode::ACCEPTED,
            &json!({"proposed": true, "note": "watch GET /v1/admin/members for it to apply"}),
        ),
        Err(MembershipError::NotLeader { leader_hint }) => error_answer(
            &ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_leader",
                "membership changes go to the leader's admin API",
            )
            .with("leader_id", json!(leader_hint)),
        ),
        Err(MembershipError::Invalid(detail)) => {
            error_answer(&ApiError::bad_request("invalid_membership_change", detail))
        }
        Err(MembershipError::Busy) => error_answer(&ApiError::new(
            StatusCode::CONFLICT,
            "membership_change_in_progress",
            "another membership change is in progress; retry once it applied",
        )),
    }
}
