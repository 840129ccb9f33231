//! The history: every attempt of every client operation, with what the cluster said. A failed
//! check prints where it is written (one JSON object per line), with the seed and the nemesis's
//! schedule, so that the run can be read back and checked again.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};
use sim::node_api::Said;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied in the block at `height`.
    Applied {
        /// The block.
        height: u64,
    },
    /// Rejected by the ledger's rules, recorded in the block at `height`.
    Rejected {
        /// The block.
        height: u64,
        /// The rejection's code.
        code: String,
    },
    /// Refused before any block: never applied (a 4xx, or a 503 that proposed nothing).
    Refused {
        /// The error's code.
        code: String,
    },
    /// Nobody knows: no answer, a timeout, a relay that failed.
    Unknown {
        /// Why.
        why: String,
    },
}

impl Outcome {
    /// What an answer says.
    pub fn of(said: &Said) -> Self {
        match said {
            Said::Outcome { result, height } if result.applied => Self::Applied { height: *height },
            Said::Outcome { result, height } => {
                Self::Rejected { height: *height, code: result.reject_code.clone() }
            }
            Said::Refused { code, .. } => Self::Refused { code: code.clone() },
            Said::Unknown(why) => Self::Unknown { why: why.clone() },
        }
    }

    fn json(&self) -> Value {
        match self {
            Self::Applied { height } => json!({"outcome": "applied", "height": height}),
            Self::Rejected { height, code } => {
                json!({"outcome": "rejected", "height": height, "code": code})
            }
            Self::Refused { code } => json!({"outcome": "refused", "code": code}),
            Self::Unknown { why } => json!({"outcome": "unknown", "why": why}),
        }
    }
}

/// One attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Hex hash of the transaction.
    pub tx_hash: String,
    /// What the workload meant it to do (`"invoice"`, `"bad:resubmission"`).
    pub kind: &'static str,
    /// 1 for the first submission, then each resubmission of the same signed transaction.
    pub attempt: u32,
    /// The node it went to.
    pub node: String,
    /// Milliseconds since the run started, when it was sent and when it was answered.
    pub sent_ms: u64,
    /// See `sent_ms`.
    pub answered_ms: u64,
    /// What it came to.
    pub outcome: Outcome,
}

/// Every attempt, in the order they were answered.
#[derive(Debug, Default)]
pub struct History(Mutex<Vec<Attempt>>);

impl History {
    /// Records an attempt.
    pub fn record(&self, attempt: Attempt) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(attempt);
    }

    /// A copy of every attempt so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Writes the history to `path`, one JSON object per attempt.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for a in self.attempts() {
            let mut line = json!({
                "tx_hash": a.tx_hash, "kind": a.kind, "attempt": a.attempt, "node": a.node,
                "sent_ms": a.sent_ms, "answered_ms": a.answered_ms,
            });
            if let (Value::Object(line), Value::Object(outcome)) = (&mut line, a.outcome.json()) {
                line.extend(outcome);
            }
            writeln!(file, "{line}")?;
        }
        file.flush()
    }
}
