//! What every route shares: the [`App`] (node handle, configuration, counters, the forwarding
//! client), the answer helpers every handler uses, and reads of the node's state.
//!
//! Every answer is JSON; every failure is `{"error": {"code", "message", ...}}` with a fitting
//! 4xx or 5xx status ([`ApiError`]). Reads answer from this replica's state and say its height
//! in the `x-scf-height` header.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ledger::Genesis;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use warp::http::{Response, StatusCode};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::node::{Consistency, NodeHandle, ReadError, Status};
use crate::reads::GrantReads;

/// Header a follower sets when it forwards a write, so the write is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-scf-forwarded-by";
/// Header with the height of the state a read was answered from.
pub const HEIGHT_HEADER: &str = "x-scf-height";
/// Most event streams open at once on one node.
pub const STREAMS_MAX: usize = 128;

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
    /// Reads by grantees on this replica.
    pub grant_reads: GrantReads,
    /// Parsed signer keys and verified signatures, shared with the replica's ledger (which then
    /// does not verify a second time what this API verified).
    pub memos: ledger::Memos,
    /// The raft links the admin API may cut, when the node runs with `fault_injection`.
    pub cuts: Option<Arc<raft_node::transport::Cuts>>,
    /// The open event streams (`GET /v1/events`).
    pub events: Streams,
}

/// The open event streams' permits, and the node's HTTP shutdown signal, which ends every
/// stream (a graceful shutdown waits for open responses to end).
pub struct Streams {
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) stopping: watch::Receiver<bool>,
}

impl Streams {
    /// Streams that end when `stopping` turns true.
    pub fn new(stopping: watch::Receiver<bool>) -> Self {
        Streams { permits: Arc::new(Semaphore::new(STREAMS_MAX)), stopping }
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
