//! The baseline: an etcd cluster driven by the same harness as a run against scf-node, with
//! plain puts.
//!
//! It answers "what does a replicated, fsync'd key-value store do on this machine with this
//! client?", so that the ledger's figures can be read as a ratio. The load is the same as
//! [`crate::remote`]'s: closed loop (a fixed number of requests in flight) or open loop (a fixed
//! rate, latency from when each request was due), an unmeasured warm-up, latency in an HDR
//! histogram, the same HTTP client. A request is one put (`POST /v3/kv/put` on etcd's JSON
//! gateway), or with `batch` > 1 one transaction of that many puts (`POST /v3/kv/txn`). Every
//! request goes to the leader, as the ledger's writes do. Nothing is signed, validated or
//! checked after the run: that is the point of the comparison.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{Answer, Http};
use crate::remote::Load;
use crate::report::LatencyMs;
use crate::stats::{Progress, Stats};

/// etcd's default limit on operations in one transaction (`--max-txn-ops`).
pub const ETCD_TXN_OPS_MAX: usize = 128;

/// Settings of a baseline run.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`http://127.0.0.1:2379`, ...).
    pub endpoints: Vec<String>,
    /// Measured window.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// Closed or open loop, in requests (closed) or puts per second (open).
    pub load: Load,
    /// Puts per request: 1 sends plain puts, more sends transactions of that many puts.
    pub batch: usize,
    /// Bytes of each value.
    pub value_bytes: usize,
    /// Show progress on stderr.
    pub progress: bool,
}

/// What a baseline run measured.
#[derive(Debug, Clone, Serialize)]
pub struct EtcdReport {
    /// `etcd`.
    pub mode: String,
    /// The member written to (the leader when the run started).
    pub endpoint: String,
    /// The members' etcd version.
    pub version: String,
    /// How load was applied.
    pub load: String,
    /// Puts per request.
    pub submission: String,
    /// Bytes of each value (keys are `scf-baseline/` and 12 digits).
    pub value_bytes: usize,
    /// Length of the measured window.
    pub duration_s: f64,
    /// Puts acknowledged in the window.
    pub puts: u64,
    /// Requests that failed (no answer, or not a 200), warm-up included.
    pub errors: u64,
    /// Acknowledged puts per second of the window.
    pub puts_per_s: f64,
    /// Request-to-acknowledgement latency of the window.
    pub latency_ms: LatencyMs,
    /// Open loop only: puts that were due but not sent (too many requests unanswered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsent: Option<u64>,
    /// The first errors, described.
    pub first_errors: Vec<String>,
}

impl EtcdReport {
    /// The report as a human table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<28} {v}\n"));
        line(
            "mode",
            format!("{} {} (plain puts, no signatures or rules)", self.mode, self.version),
        );
        line("written to", self.endpoint.clone());
        line("load", self.load.clone());
        line("submission", self.submission.clone());
        line("value size", format!("{} bytes", self.value_bytes));
        line("measured window", format!("{:.1} s", self.duration_s));
        line("puts acknowledged", self.puts.to_string());
        line("errors", self.errors.to_string());
        if let Some(unsent) = self.unsent {
            line("due but not sent", unsent.to_string());
        }
        line("throughput", format!("{:.0} puts/s", self.puts_per_s));
        line("latency p50/p90/p99/max", self.latency_ms.to_string());
        for error in &self.first_errors {
            line("error", error.clone());
        }
        out
    }
}

/// etcd encodes 64-bit integers as JSON strings; older gateways may send numbers.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// How long a cluster just started gets to elect a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The endpoint whose member is the leader, and the cluster's version; waits (bounded) for a
/// cluster that is still electing one.
async fn find_leader(http: &Http, endpoints: &[String]) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + LEADER_TIMEOUT;
    loop {
        let mut said = Vec::new();
        for url in endpoints {
            let status = format!("{}/v3/maintenance/status", url.trim_end_matches('/'));
            match http.request("POST", &status, &[], b"{}".to_vec()).await {
                Ok(Answer { status: 200, body }) => {
                    let member = id_of(&body["header"]["member_id"]);
                    let leader = id_of(&body["leader"]);
                    let version = body["version"].as_str().unwrap_or("(unknown)").to_owned();
                    if member.is_some() && member == leader {
                        return Ok((url.clone(), version));
                    }
                    said.push(format!("{url}: not the leader"));
                }
                Ok(answer) => said.push(format!("{url}: HTTP {}: {}", answer.status, answer.body)),
                Err(error) => said.push(format!("{url}: {error:#}")),
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no etcd leader among the endpoints within {LEADER_TIMEOUT:?} ({})",
                said.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The JSON of one request: a put, or a transaction of `batch` puts, of keys from `first`.
fn request_body(first: u64, batch: usize, value: &str) -> Vec<u8> {
    let key = |n: u64| BASE64.encode(format!("scf-baseline/{n:012}"));
    let body = if batch == 1 {
        json!({"key": key(first), "value": value})
    } else {
        let puts: Vec<Value> = (first..first + batch as u64)
            .map(|n| json!({"requestPut": {"key": key(n), "value": value}}))
            .collect();
        json!({"success": puts})
    };
    body.to_string().into_bytes()
}

/// Runs plain puts against the etcd cluster at `config.endpoints`.
pub async fn run(config: &EtcdConfig) -> anyhow::Result<EtcdReport> {
    if config.endpoints.is_empty() {
        bail!("no etcd endpoint to run against");
    }
    if config.batch == 0 || config.batch > ETCD_TXN_OPS_MAX {
        bail!("--batch must be 1 to {ETCD_TXN_OPS_MAX} (etcd's default --max-txn-ops)");
    }
    let http = Http::new(Duration::from_secs(30));
    let (leader, version) = find_leader(&http, &config.endpoints).await?;
    let path = if config.batch == 1 { "/v3/kv/put" } else { "/v3/kv/txn" };
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let value = BASE64.encode(vec![b'v'; config.value_bytes]);
    // One put first: a cluster that refuses it is not worth measuring.
    let first = http.request("POST", &url, &[], request_body(0, config.batch, &value)).await;
    match first {
        Ok(Answer { status: 200, .. }) => {}
        Ok(answer) => bail!("{url} answered {}: {}", answer.status, answer.body),
        Err(error) => return Err(error.context("the first put")),
    }

    let mut stats = Stats::new()?;
    let mut progress = Progress::new(config.progress, config.warmup, config.duration);
    let window_start = Instant::now() + config.warmup;
    let window_end = window_start + config.duration;
    let (concurrency, mut due) = config.load.pacing(config.batch);
    let send = |first: u64, clock: Instant| {
        let http = http.clone();
        let url = url.clone();
        let body = request_body(first, config.batch, &value);
        async move { (clock, http.request("POST", &url, &[], body).await) }
    };
    let mut next_key: u64 = config.batch as u64;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut show = tokio::time::interval(progress.every());
    let mut unsent: u64 = 0;
    let mut stopping = false;
    let end = tokio::time::Instant::from_std(window_end);
    loop {
        if !stopping && due.is_none() {
            while in_flight.len() < concurrency {
                in_flight.spawn(send(next_key, Instant::now()));
                next_key += config.batch as u64;
            }
        }
        if stopping && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some(joined) = in_flight.join_next() => {
                let (clock, answer) = joined.context("a request's task failed")?;
                let now = Instant::now();
                match answer {
                    Ok(Answer { status: 200, .. }) => {
                        if now >= window_start && now < window_end {
                            stats.record_acknowledged(config.batch as u64, now - clock);
                        }
                    }
                    Ok(answer) => stats.error(format!("HTTP {}: {}", answer.status, answer.body)),
                    Err(error) => stats.error(format!("{error:#}")),
                }
            }
            tick = async { due.as_mut().expect("open loop").tick().await },
                if due.is_some() && !stopping =>
            {
                if in_flight.len() < concurrency {
                    in_flight.spawn(send(next_key, tick.into_std()));
                    next_key += config.batch as u64;
                } else if Instant::now() >= window_start {
                    unsent += config.batch as u64;
                }
            }
            _ = show.tick() => progress.show(&stats, in_flight.len()),
            () = tokio::time::sleep_until(end), if !stopping => stopping = true,
        }
    }
    progress.show(&stats, 0);
    progress.finish();
    let window_s = config.duration.as_secs_f64();
    Ok(EtcdReport {
        mode: "etcd".into(),
        endpoint: leader,
        version,
        load: config.load.describe("puts/s"),
        submission: if config.batch == 1 {
            "single (one put per request)".into()
        } else {
            format!("transactions of {} puts per request", config.batch)
        },
        value_bytes: config.value_bytes,
        duration_s: window_s,
        puts: stats.applied,
        errors: stats.errors,
        puts_per_s: stats.applied as f64 / window_s,
        latency_ms: stats.latency(),
        unsent: matches!(config.load, Load::Open { .. }).then_some(unsent),
        first_errors: stats.unexpected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a request is what etcd's JSON gateway takes: base64 keys and values, one put or a
    // transaction of consecutive keys.
    #[test]
    fn requests_are_base64_puts_or_transactions_of_puts() {
        let value = BASE64.encode(b"vv");
        let single: Value = serde_json::from_slice(&request_body(7, 1, &value)).unwrap();
        assert_eq!(single["key"], BASE64.encode("scf-baseline/000000000007"));
        assert_eq!(single["value"], "dnY=");
        let txn: Value = serde_json::from_slice(&request_body(10, 3, &value)).unwrap();
        let puts = txn["success"].as_array().unwrap();
        assert_eq!(puts.len(), 3);
        assert_eq!(puts[2]["requestPut"]["key"], BASE64.encode("scf-baseline/000000000012"));
        assert_eq!(id_of(&json!("123")), Some("123".into()));
        assert_eq!(id_of(&json!(123)), Some("123".into()));
        assert_eq!(id_of(&Value::Null), None);
    }
}
