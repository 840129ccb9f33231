//! What a client's submission says, parsed: the body of `POST /v1/transactions` (one
//! `{"body", "signature"[, "tx_hash"]}` object or an array of them) into signed transactions.
//!
//! Pure and free of HTTP types: [`crate::error`] maps a [`WireError`] to its status, and the fuzz
//! target `submission` (`ledger/fuzz`) compiles this very file, so what is fuzzed is what the
//! node runs. It may use only `serde_json`, `hex` and `ledger`.
//!
//! Invariants: parsing never panics, whatever the bytes; a transaction parsed from an item
//! re-encodes to an item that parses to the same transaction; a batch has between one and
//! `batch_max` items.

use ledger::pb::SignedTx;
use serde_json::Value;

/// Why a submission, or one of its items, cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The stable code clients see.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The submission is too large (413) rather than malformed (400).
    pub too_large: bool,
}

impl WireError {
    fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), too_large: false }
    }
}

/// A parsed submission.
#[derive(Debug)]
pub struct Submission {
    /// Each item's transaction, or why it cannot be one; in the order sent.
    pub items: Vec<Result<SignedTx, WireError>>,
    /// It was an array (answered with an array), not a lone object.
    pub batch: bool,
}

/// Parses a submission's body. The whole submission is refused (`Err`) when it is not JSON,
/// not an object or an array, an empty array, or longer than `batch_max`; otherwise each item
/// is parsed on its own, and a bad one spoils only itself.
pub fn parse_submission(body: &[u8], batch_max: usize) -> Result<Submission, WireError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::malformed("malformed_json", e.to_string()))?;
    let (items, batch) = match value {
        Value::Array(items) => (items, true),
        item @ Value::Object(_) => (vec![item], false),
        _ => {
            return Err(WireError::malformed(
                "malformed_request",
                "expected an object {\"body\", \"signature\"} or an array of them",
            ));
        }
    };
    if batch && items.is_empty() {
        return Err(WireError::malformed("empty_batch", "the batch is empty"));
    }
    if items.len() > batch_max {
        return Err(WireError {
            code: "batch_too_large",
            message: format!("at most {batch_max} transactions per request"),
            too_large: true,
        });
    }
    Ok(Submission { items: items.iter().map(parse_item).collect(), batch })
}

/// Parses one `{"body": HEX, "signature": HEX[, "tx_hash": HEX]}`.
pub fn parse_item(item: &Value) -> Result<SignedTx, WireError> {
    let field = |name: &str| -> Result<Vec<u8>, WireError> {
        let text = item.get(name).and_then(Value::as_str).ok_or_else(|| {
            WireError::malformed("malformed_request", format!("missing string field {name:?}"))
        })?;
        hex::decode(text).map_err(|e| WireError::malformed("bad_hex", format!("{name}: {e}")))
    };
    let Some(object) = item.as_object() else {
        return Err(WireError::malformed("malformed_request", "each item is an object"));
    };
    let known = ["body", "signature", "tx_hash"];
    if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(WireError::malformed(
            "malformed_request",
            format!("unknown field {unknown:?}"),
        ));
    }
    let tx = SignedTx { body: field("body")?, signature: field("signature")? };
    // `tx_hash` is optional (`scf-sim tx` prints it): when given, it must be the body's hash,
    // so a client that keeps the hash to look the transaction up later keeps the right one.
    if item.get("tx_hash").is_some() {
        let claimed = field("tx_hash")?;
        let hash = ledger::tx::tx_hash(&tx);
        if claimed != hash {
            return Err(WireError::malformed(
                "tx_hash_mismatch",
                format!("tx_hash is not the body's hash, {}", hex::encode(hash)),
            ));
        }
    }
    Ok(tx)
}

/// The item a client sends for `tx` (what [`parse_item`] reads back).
pub fn item_json(tx: &SignedTx) -> Value {
    serde_json::json!({"body": hex::encode(&tx.body), "signature": hex::encode(&tx.signature)})
}
