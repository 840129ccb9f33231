//! What `scf-node`'s HTTP API says, parsed: node statuses and the chain's genesis, answers to
//! submissions (an outcome, a refusal that applied nothing, or an unknown outcome), and blocks as
//! a regulator reads them; and the waits and reads built on them. Shared by the run against a
//! cluster ([`crate::remote`]) and the whole-system fault tests (crate `tests`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledger::Genesis;
use ledger::crypto::{PublicKeyBytes, SigningKey};
use ledger::pb::{Block, BlockHeader, SignedTx, TxResult};
use serde_json::{Value, json};

use crate::client::{Answer, Http};

/// Blocks per page when reading the chain back (the API's most for whole blocks).
pub const BLOCKS_PAGE: usize = 20;

/// What `GET /v1/status` says, the parts the checks use.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// The node's base URL.
    pub url: String,
    /// `leader`, `follower`, `candidate` or `observer`.
    pub role: String,
    /// Its chain's height.
    pub height: u64,
    /// Hex hash of its last block.
    pub last_block_hash: String,
    /// Hex state hash at that height.
    pub state_hash: String,
}

/// Asks `url` for its status: the parsed parts and the whole answer.
pub async fn status(http: &Http, url: &str) -> anyhow::Result<(NodeStatus, Value)> {
    let answer = http.get(url, "/v1/status", None).await?;
    if answer.status != 200 {
        bail!("{url}/v1/status answered {}: {}", answer.status, answer.body);
    }
    let body = answer.body;
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    let node = NodeStatus {
        url: url.to_owned(),
        role: text("role"),
        height: body["height"].as_u64().context("status without a height")?,
        last_block_hash: text("last_block_hash"),
        state_hash: text("state_hash"),
    };
    Ok((node, body))
}

/// The chain's genesis, as the node reports it.
pub fn genesis_of(status: &Value) -> anyhow::Result<Genesis> {
    let genesis = &status["genesis"];
    let key = hex::decode(genesis["registrar_public_key"].as_str().unwrap_or_default())
        .context("genesis.registrar_public_key is not hex")?;
    Ok(Genesis {
        chain_id: genesis["chain_id"].as_str().context("status without genesis.chain_id")?.into(),
        registrar_public_key: PublicKeyBytes::parse(&key)
            .map_err(|e| anyhow::anyhow!("genesis.registrar_public_key: {e}"))?,
        time_ms: genesis["time_ms"].as_u64().context("status without genesis.time_ms")?,
    })
}

/// What the cluster said about one transaction.
#[derive(Debug, Clone)]
pub enum Said {
    /// Its outcome, recorded in the block at `height`.
    Outcome {
        /// How it ended.
        result: TxResult,
        /// The block it is in.
        height: u64,
    },
    /// Refused before any block (a 4xx, or a 503 that applied nothing): never applied.
    Refused {
        /// The error's code.
        code: String,
        /// The error's message.
        message: String,
    },
    /// No outcome known: no answer, a timeout, a 504.
    Unknown(String),
}

/// What one item of an answer says of its transaction.
pub fn outcome(item: &Value) -> Said {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(error) = item.get("error") {
        return Said::Refused { code: text(&error["code"]), message: text(&error["message"]) };
    }
    let height = item["height"].as_u64().unwrap_or(0);
    let tx_hash = hex::decode(text(&item["tx_hash"])).unwrap_or_default();
    match item["outcome"].as_str() {
        Some("applied") => {
            let created_ids = item["created_ids"]
                .as_array()
                .map(|ids| ids.iter().map(text).collect())
                .unwrap_or_default();
            Said::Outcome {
                result: TxResult { tx_hash, applied: true, created_ids, ..TxResult::default() },
                height,
            }
        }
        Some("rejected") => Said::Outcome {
            result: TxResult {
                tx_hash,
                applied: false,
                reject_code: text(&item["reason"]["code"]),
                reject_message: text(&item["reason"]["message"]),
                created_ids: Vec::new(),
            },
            height,
        },
        _ => Said::Unknown(format!("an answer with no outcome: {item}")),
    }
}

/// Splits an answer to a request of `count` transactions into what it says of each.
pub fn said(answer: anyhow::Result<Answer>, count: usize) -> Vec<Said> {
    let all = |said: Said| vec![said; count];
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => return all(Said::Unknown(format!("{error:#}"))),
    };
    let error = &answer.body["error"];
    let code = error["code"].as_str().unwrap_or_default().to_owned();
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    match answer.status {
        200 => match &answer.body {
            Value::Array(items) if items.len() == count => items.iter().map(outcome).collect(),
            item @ Value::Object(_) if count == 1 => vec![outcome(item)],
            other => all(Said::Unknown(format!("an answer of the wrong shape: {other}"))),
        },
        // Nothing was applied: refused as a whole (a batch) or for itself (a single one).
        400..=499 | 503 => all(Said::Refused { code, message }),
        status => all(Said::Unknown(format!("HTTP {status} {code}: {message}"))),
    }
}

/// The JSON of a request carrying `txs`: one object alone, else an array.
pub fn request_body(txs: &[&SignedTx], single: bool) -> Value {
    let item = |tx: &SignedTx| json!({"body": hex::encode(&tx.body), "signature": hex::encode(&tx.signature)});
    if single && txs.len() == 1 {
        item(txs[0])
    } else {
        Value::Array(txs.iter().map(|tx| item(tx)).collect())
    }
}

/// Waits until every node reports the same height, at least `highest`, and says where each is.
/// Gives up after `limit`, saying why.
pub async fn quiesce(
    http: &Http,
    urls: &[String],
    highest: u64,
    limit: Duration,
) -> (Vec<NodeStatus>, Option<String>) {
    let deadline = Instant::now() + limit;
    loop {
        let mut nodes = Vec::new();
        let mut failure = None;
        for url in urls {
            match status(http, url).await {
                Ok((node, _)) => nodes.push(node),
                Err(error) => failure = Some(format!("{error:#}")),
            }
        }
        let height = nodes.first().map_or(0, |n| n.height);
        let level =
            failure.is_none() && height >= highest && nodes.iter().all(|n| n.height == height);
        if level {
            return (nodes, None);
        }
        if Instant::now() >= deadline {
            let heights: Vec<String> =
                nodes.iter().map(|n| format!("{} at {}", n.url, n.height)).collect();
            let why = failure.unwrap_or_else(|| {
                format!("the replicas did not reach one height >= {highest} within {limit:?}: {heights:?}")
            });
            return (nodes, Some(why));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A block as the API shows it to a regulator, back in its ledger form.
pub fn block_from_json(value: &Value) -> anyhow::Result<Block> {
    let bytes = |field: &Value, name: &str| -> anyhow::Result<Vec<u8>> {
        hex::decode(field.as_str().with_context(|| format!("no {name}"))?)
            .with_context(|| format!("{name} is not hex"))
    };
    let number = |name: &str| value[name].as_u64().with_context(|| format!("no {name}"));
    let header = BlockHeader {
        version: u32::try_from(number("version")?)?,
        height: number("height")?,
        prev_hash: bytes(&value["prev_hash"], "prev_hash")?,
        time_ms: number("time_ms")?,
        tx_root: bytes(&value["tx_root"], "tx_root")?,
        results_hash: bytes(&value["results_hash"], "results_hash")?,
        state_hash: bytes(&value["state_hash"], "state_hash")?,
        tx_count: u32::try_from(number("tx_count")?)?,
    };
    let transactions = value["transactions"]
        .as_array()
        .context("no transactions: the read was not a regulator's")?;
    let mut block = Block { header: Some(header), txs: Vec::new(), results: Vec::new() };
    for item in transactions {
        block.txs.push(SignedTx {
            body: bytes(&item["body"], "body")?,
            signature: bytes(&item["signature"], "signature")?,
        });
        match outcome(item) {
            Said::Outcome { result, .. } => block.results.push(result),
            other => bail!("a block's transaction without an outcome: {other:?}"),
        }
    }
    Ok(block)
}

/// Reads up to [`BLOCKS_PAGE`] whole blocks from `from` on, from `source`, as `reader` (a
/// regulator: only its signed reads see whole blocks). An empty page means `source` has no block
/// `from`.
pub async fn read_blocks(
    http: &Http,
    source: &str,
    reader: (&str, &SigningKey),
    from: u64,
) -> anyhow::Result<Vec<Block>> {
    // The workload's regulator reads the chain to check it: routine supervision.
    let path = format!("/v1/blocks?from={from}&limit={BLOCKS_PAGE}&purpose=supervision");
    let answer = http
        .get(source, &path, Some(reader))
        .await
        .with_context(|| format!("reading the chain from {source}"))?;
    if answer.status != 200 {
        bail!("{source}{path} answered {}: {}", answer.status, answer.body);
    }
    let page = answer.body["blocks"].as_array().cloned().unwrap_or_default();
    page.iter()
        .map(|value| {
            block_from_json(value)
                .with_context(|| format!("block {} from {source}", value["height"]))
        })
        .collect()
}

/// Reads `source`'s chain from genesis up to `height` as `reader` and replays it in this
/// process ([`ledger::Replayer`]: links, signatures, rules, hashes), handing each block that
/// replayed to `seen`. Returns the replayed state and what went wrong (a block `source` lacks,
/// a block that does not replay); nothing went wrong when that list is empty.
pub async fn replay_chain(
    http: &Http,
    source: &str,
    reader: (&str, &SigningKey),
    genesis: &Genesis,
    height: u64,
    mut seen: impl FnMut(&Block),
) -> anyhow::Result<(ledger::MemStore, Vec<String>)> {
    let mut replayer = ledger::Replayer::new(genesis);
    let mut broken = Vec::new();
    'read: while replayer.next_height() <= height {
        let page = read_blocks(http, source, reader, replayer.next_height()).await?;
        if page.is_empty() {
            broken.push(format!(
                "{source} has no block {} though it reported height {height}",
                replayer.next_height()
            ));
            break;
        }
        for block in &page {
            if let Err(e) = replayer.push(block) {
                broken.push(format!("the chain from {source} does not replay: {e}"));
                break 'read;
            }
            seen(block);
            if replayer.next_height() > height {
                break 'read;
            }
        }
    }
    Ok((replayer.into_store(), broken))
}

/// `source`'s own audit of its whole chain (`/v1/audit/verify?from=1`: links, and on an observer every
/// signature): `Ok(true)` when it passes, `Ok(false)` with the answer noted when it does not.
pub async fn audit(http: &Http, source: &str, notes: &mut Vec<String>) -> Option<bool> {
    match http.get(source, "/v1/audit/verify?from=1", None).await {
        Ok(answer) if answer.status == 200 => {
            let ok = answer.body["ok"].as_bool();
            if ok != Some(true) {
                notes.push(format!("{source} /v1/audit/verify: {}", answer.body));
            }
            ok
        }
        Ok(answer) => {
            notes.push(format!("{source} /v1/audit/verify answered {}", answer.status));
            None
        }
        Err(error) => {
            notes.push(format!("{source} /v1/audit/verify: {error:#}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value) -> anyhow::Result<Answer> {
        Ok(Answer { status, body })
    }

    // Goal: every kind of answer maps to what it says of each transaction: outcomes (single and
    // batched, refused items included), refusals that applied nothing, and unknown outcomes.
    #[test]
    fn answers_split_into_outcomes_refusals_and_unknowns() {
        let applied = json!({"tx_hash": "00ff", "height": 7, "outcome": "applied",
            "created_ids": ["tk-1"]});
        let rejected = json!({"tx_hash": "01", "height": 8, "outcome": "rejected",
            "reason": {"code": "already_invoiced", "message": "m"}});
        let refused = json!({"error": {"code": "bad_signature", "message": "no"}});

        let one = said(answer(200, applied.clone()), 1);
        assert!(matches!(&one[..], [Said::Outcome { result, height: 7 }]
            if result.applied && result.created_ids == ["tk-1"] && result.tx_hash == [0, 255]));

        let batch = said(answer(200, json!([applied, rejected, refused.clone()])), 3);
        assert!(matches!(&batch[1], Said::Outcome { result, height: 8 }
            if !result.applied && result.reject_code == "already_invoiced"));
        assert!(matches!(&batch[2], Said::Refused { code, .. } if code == "bad_signature"));

        for status in [400, 403, 413, 429, 503] {
            let all = said(answer(status, refused.clone()), 2);
            assert!(all.iter().all(|s| matches!(s, Said::Refused { .. })), "{status}");
        }
        let unknown = json!({"error": {"code": "outcome_unknown", "message": "?"}});
        assert!(matches!(&said(answer(504, unknown), 1)[..], [Said::Unknown(_)]));
        assert!(matches!(&said(Err(anyhow::anyhow!("reset")), 1)[..], [Said::Unknown(_)]));
        // An array of the wrong length cannot be matched to the transactions sent.
        assert!(matches!(&said(answer(200, json!([])), 1)[..], [Said::Unknown(_)]));
    }
}
