//! What every route shares: the [`App`] (node handle, configuration, counters, the forwarding
//! client), the answer helpers every handler uses, and reads of the node's state.
//!
//! Every answer is JSON; every failure is `{"error": {"code", "message", ...}}` with a fitting
//! 4xx or 5xx status ([`ApiError`]). Reads answer from this replica's state and say its height
//! in the `x-scf-height` header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ledger::Genesis;
use serde_json::Value;
use tokio::sync::watch;
use warp::http::{Response, StatusCode};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::node::{Consistency, NodeHandle, ReadError, Status};

/// Header a follower sets when it forwards a write, so the write is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-scf-forwarded-by";
/// Header with the height of the state a read was answered from.
pub const HEIGHT_HEADER: &str = "x-scf-height";
/// Most unsigned event streams open at once on one node.
pub const UNSIGNED_STREAMS_MAX: usize = 64;
/// Most event streams signed by parties other than regulators open at once on one node.
pub const PARTY_STREAMS_MAX: usize = 48;
/// Most event streams signed by regulators open at once on one node: slots nobody else can
/// take, so that a regulator's own feed is never crowded out.
pub const REGULATOR_STREAMS_MAX: usize = 16;
/// Most event streams open at once on one node.
pub const STREAMS_MAX: usize = UNSIGNED_STREAMS_MAX + PARTY_STREAMS_MAX + REGULATOR_STREAMS_MAX;
/// Most event streams one client (an address when unsigned, a party when signed) has open at
/// once on one node.
pub const STREAMS_PER_CLIENT_MAX: usize = 4;

/// What every handler shares.
pub struct App {
    /// The node.
    pub node: Arc<dyn NodeHandle>,
    /// The node's configuration.
    pub config: Arc<Config>,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// For forwarding writes to the leader.
    pub client: Client<Connector, Full<Bytes>>,
    /// This replica's log of the reads of private data it answered (and so its per-grant
    /// read counts).
    pub access_log: Arc<raft_node::access_log::AccessLog>,
    /// Parsed signer keys and verified signatures, shared with the replica's ledger (which then
    /// does not verify a second time what this API verified).
    pub memos: ledger::Memos,
    /// The raft links the admin API may cut, when the node runs with `fault_injection`.
    pub cuts: Option<Arc<raft_node::transport::Cuts>>,
    /// The open event streams (`GET /v1/events`).
    pub events: Streams,
    /// Checks signed reads, and remembers their nonces.
    pub auth: Arc<crate::auth::Authenticator>,
    /// The supervision reports computed at the newest height.
    pub reports: Arc<crate::supervision::ReportCache>,
    /// Where `GET /v1/audit/verify` got to: a verifier positioned after the last block an audit
    /// verified. An audit holds it while it runs (so one runs at a time) and goes on from there.
    pub audit: tokio::sync::Mutex<ledger::chain::ChainVerifier>,
}

/// The open event streams, in three pools that do not share slots (unsigned, signed by parties,
/// signed by regulators), and the node's HTTP shutdown signal, which ends every stream (a
/// graceful shutdown waits for open responses to end).
pub struct Streams {
    pub(crate) unsigned: Arc<StreamPool>,
    pub(crate) parties: Arc<StreamPool>,
    pub(crate) regulators: Arc<StreamPool>,
    pub(crate) stopping: watch::Receiver<bool>,
}

impl Streams {
    /// Streams that end when `stopping` turns true.
    pub fn new(stopping: watch::Receiver<bool>) -> Self {
        let pool = |what, max| Arc::new(StreamPool::new(what, max, STREAMS_PER_CLIENT_MAX));
        Streams {
            unsigned: pool("unsigned", UNSIGNED_STREAMS_MAX),
            parties: pool("signed by parties", PARTY_STREAMS_MAX),
            regulators: pool("signed by regulators", REGULATOR_STREAMS_MAX),
            stopping,
        }
    }
}

/// Slots for event streams: at most `max` open, at most `per_client_max` per client.
#[derive(Debug)]
pub struct StreamPool {
    what: &'static str,
    max: usize,
    per_client_max: usize,
    open: Mutex<PoolCounts>,
}

#[derive(Debug, Default)]
struct PoolCounts {
    total: usize,
    by_client: HashMap<String, usize>,
}

impl StreamPool {
    /// A pool of `max` slots, `per_client_max` per client, for streams described as `what`.
    pub fn new(what: &'static str, max: usize, per_client_max: usize) -> Self {
        StreamPool { what, max, per_client_max, open: Mutex::default() }
    }

    /// A slot for one more stream of `client`, or `503 too_many_streams` saying which limit.
    pub fn open(self: &Arc<Self>, client: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let theirs = open.by_client.get(client).copied().unwrap_or(0);
        let refusal = if theirs >= self.per_client_max {
            Some(format!(
                "you have {theirs} event streams open on this node, the most one client may; \
                 close one first"
            ))
        } else if open.total >= self.max {
            Some(format!(
                "this node serves at most {} event streams {}; retry later",
                self.max, self.what
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                message,
            ));
        }
        open.total += 1;
        *open.by_client.entry(client.to_owned()).or_insert(0) += 1;
        Ok(StreamSlot { pool: self.clone(), client: client.to_owned() })
    }

    /// Streams open now.
    pub fn open_now(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).total
    }
}

/// One open stream's slot in its pool: freed when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    pool: Arc<StreamPool>,
    client: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.pool.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total -= 1;
        if let Some(count) = open.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

/// Every route's answer.
pub type Answer = Response<Bytes>;

/// How a follower reaches the leader's API: plain HTTP or HTTPS under the cluster CA.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// `value` as a JSON answer.
pub fn json_answer(status: StatusCode, value: &Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(value.to_string()))
        .expect("a valid response")
}

/// `error` as its JSON answer.
pub fn error_answer(error: &ApiError) -> Answer {
    json_answer(error.status, &error.body())
}

/// `answer` with the height of the state it was read from.
pub fn with_height(mut answer: Answer, height: u64) -> Answer {
    answer.headers_mut().insert(HEIGHT_HEADER, height.into());
    answer
}

/// The answer while the replica has stopped.
pub fn stopped() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "replica_stopped", "the replica has stopped")
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Stopped => stopped(),
            ReadError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_unavailable",
                error.to_string(),
            ),
        }
    }
}

impl App {
    /// Runs `read` against this replica's state, after a ReadIndex round if asked to.
    pub async fn read<R, F>(&self, consistency: Consistency, read: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn ledger::StateStore) -> R + Send + 'static,
    {
        Ok(crate::node::read(&*self.node, consistency, read).await?)
    }

    /// Counts `answer` under `route` (its status, its time and, for a failure, its code).
    pub async fn timed(&self, route: &'static str, answer: impl Future<Output = Answer>) -> Answer {
        let started = Instant::now();
        let answer = answer.await;
        self.metrics.request(route, answer.status().as_u16(), started.elapsed());
        if answer.status().is_client_error() || answer.status().is_server_error() {
            // Refusals by reason: the code of the (small) JSON error body.
            if let Ok(body) = serde_json::from_slice::<Value>(answer.body()) {
                if let Some(code) = body["error"]["code"].as_str() {
                    self.metrics.error(code);
                }
            }
        }
        answer
    }

    /// The leader's HTTP URL as `status` knows it, or null.
    pub fn leader_url(&self, status: Option<&Status>) -> Value {
        status
            .and_then(|s| self.config.http_url(s.leader_id))
            .map_or(Value::Null, |url| Value::String(url.to_owned()))
    }
}
