//! What a run counts: outcomes of the measured window, latency in an HDR histogram, rejections
//! by reason, unexpected outcomes; and the progress display both drivers share.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ledger::pb::TxResult;

use crate::report::LatencyMs;
use crate::workload::{Expect, Origin, Planned};

/// How many unexpected outcomes the report keeps for diagnosis.
const UNEXPECTED_KEPT: usize = 10;

/// A latency in whole µs, at least 1 (the histogram's lowest value).
fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Counters of the measured window.
pub struct Stats {
    /// Transactions answered in the window.
    pub submitted: u64,
    /// Of those, applied.
    pub applied: u64,
    /// Of those, not applied: rejected in a block or refused before one.
    pub rejected: u64,
    /// Unexpected outcomes and transactions with no known outcome, warm-up included.
    pub errors: u64,
    /// Blocks (in process) or requests (against a cluster) in the window.
    pub blocks: u64,
    /// Deliberately bad transactions in the window.
    pub bad_submitted: u64,
    /// Of those, rejected with the expected code.
    pub bad_ok: u64,
    /// Rejections by code.
    pub rejections: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
    /// The first unexpected outcomes.
    pub unexpected: Vec<String>,
}

impl Stats {
    /// Empty counters.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            submitted: 0,
            applied: 0,
            rejected: 0,
            errors: 0,
            blocks: 0,
            bad_submitted: 0,
            bad_ok: 0,
            rejections: BTreeMap::new(),
            // 1 µs to 10 min, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            unexpected: Vec::new(),
        })
    }

    /// Counts the outcome of a transaction answered in the window; `met` says whether it was
    /// the expected one.
    pub fn record(&mut self, planned: &Planned, result: &TxResult, met: bool, latency: Duration) {
        self.submitted += 1;
        if result.applied {
            self.applied += 1;
        } else {
            self.rejected += 1;
            *self.rejections.entry(result.reject_code.clone()).or_default() += 1;
        }
        if matches!(planned.origin, Origin::Bad(_)) {
            self.bad_submitted += 1;
            if met {
                self.bad_ok += 1;
            }
        }
        if !met {
            self.unexpected_outcome(planned, result, "window");
        }
        self.latency_us.saturating_record(micros(latency));
    }

    /// Counts `count` writes acknowledged together in the window, each with the request's
    /// latency (the etcd baseline's puts: nothing to judge, no rejections).
    pub fn record_acknowledged(&mut self, count: u64, latency: Duration) {
        self.submitted += count;
        self.applied += count;
        self.latency_us.saturating_record_n(micros(latency), count);
    }

    /// Counts an outcome that was not the expected one and keeps the first few for the report.
    pub fn unexpected_outcome(&mut self, planned: &Planned, result: &TxResult, phase: &str) {
        let expected = match planned.expect {
            Expect::Applied => "applied".to_owned(),
            Expect::Rejected(code) => format!("rejected {code}"),
        };
        let got = if result.applied {
            "applied".to_owned()
        } else {
            format!("{}: {}", result.reject_code, result.reject_message)
        };
        self.error(format!("{} ({phase}): expected {expected}, got {got}", planned.kind));
    }

    /// Counts an error (an unexpected outcome, a transaction with no known outcome) and keeps
    /// its description if it is among the first few.
    pub fn error(&mut self, description: String) {
        self.errors += 1;
        if self.unexpected.len() < UNEXPECTED_KEPT {
            self.unexpected.push(description);
        }
    }

    /// Latency percentiles of the window.
    pub fn latency(&self) -> LatencyMs {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        LatencyMs {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: self.latency_us.max() as f64 / 1000.0,
        }
    }
}

/// Live progress on stderr: a bar redrawn in place on a terminal, a line every few seconds
/// otherwise (logs, CI).
pub struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    warmup: Duration,
    total: Duration,
    last: Instant,
    last_applied: u64,
    drawn: bool,
}

impl Progress {
    /// Progress of a run with `warmup` then a window of `window`; `enabled` false prints nothing.
    pub fn new(enabled: bool, warmup: Duration, window: Duration) -> Self {
        let now = Instant::now();
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: now,
            warmup,
            total: warmup + window,
            last: now,
            last_applied: 0,
            drawn: false,
        }
    }

    /// How often [`Progress::show`] should be called.
    pub fn every(&self) -> Duration {
        if self.tty { Duration::from_millis(250) } else { Duration::from_secs(5) }
    }

    /// Shows the counters (of the window; during warm-up they are still zero).
    pub fn show(&mut self, stats: &Stats, in_flight: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        let since = now.duration_since(self.last).as_secs_f64();
        let rate = if since > 0.0 {
            stats.applied.saturating_sub(self.last_applied) as f64 / since
        } else {
            0.0
        };
        self.last = now;
        self.last_applied = stats.applied;
        let phase = if elapsed < self.warmup { "warm-up" } else { "measuring" };
        let done = (elapsed.as_secs_f64() / self.total.as_secs_f64().max(1e-9)).min(1.0);
        const WIDTH: usize = 24;
        let filled = (done * WIDTH as f64) as usize;
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
        let text = format!(
            "[{bar}] {:5.1}/{:.0} s {phase:<9} applied {} rejected {} errors {} in flight {} \
             {rate:6.0} tx/s",
            elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            stats.applied,
            stats.rejected,
            stats.errors,
            in_flight,
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty { write!(err, "\r\x1b[2K{text}") } else { writeln!(err, "{text}") };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the bar's line, so what follows starts on a line of its own.
    pub fn finish(&mut self) {
        if self.enabled && self.tty && self.drawn {
            eprintln!();
        }
        self.drawn = false;
    }
}
