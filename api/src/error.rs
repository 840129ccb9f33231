//! The API's errors: every failure a client can see, with its HTTP status and stable code.
//! The body is always `{"error": {"code": STR, "message": STR, ...}}`.

use serde_json::{Value, json};
use warp::http::StatusCode;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
    /// Extra fields for the error object (for example `leader_hint`, `tx_hash`).
    pub extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    /// An error with no extra fields.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: Vec::new() }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Adds a field to the error object.
    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        for (key, value) in &self.extra {
            error[*key] = value.clone();
        }
        json!({ "error": error })
    }

    /// 500 `storage_error`: this replica could not read its own state (a disk or RocksDB
    /// failure, or a record that does not decode). Nothing the client sent is at fault.
    pub fn storage(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", detail.to_string())
    }
}

impl From<ledger::StoreError> for ApiError {
    fn from(error: ledger::StoreError) -> Self {
        Self::storage(error)
    }
}

impl From<crate::wire::WireError> for ApiError {
    fn from(error: crate::wire::WireError) -> Self {
        let status =
            if error.too_large { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
        Self::new(status, error.code, error.message)
    }
}
