//! What the workspace's tests share, in one place instead of a copy per test binary:
//!
//! - [`TestDir`]: a fresh temporary directory (the `tempfile` crate), removed when the test
//!   passes and kept, with its path printed, when it panics (or on request, when it fails with an
//!   error), so that node logs and data outlive a failure;
//! - [`rng::Rng`]: the one seeded generator of the tests, which is the simulator's own (its one
//!   definition is `sim/src/rng.rs`, compiled here by path), so a printed seed replays the same
//!   run in a test as in `scf-sim`;
//! - [`ports::loopback_listener`]: loopback ports below the kernel's ephemeral range, for tests
//!   that restart a node process on the same ports (also `sim/src/ports.rs`, by path);
//! - [`now_ms`]: the wall clock in milliseconds, for tests that talk to real nodes (never for the
//!   ledger's logic tests, which keep a logical clock);
//! - [`chain`]: a ledger chain driven by hand over the pure state machine: a fixed genesis, the
//!   cast, deterministic keys, a logical clock, and the helpers that forge blocks.
//!
//! Invariant: this crate depends on `ledger` and on nothing of the node (no raft-node, api or
//! RocksDB), so that the ledger's tests and fuzzers that use it stay fast to build. It is test
//! support only: a dev-dependency, or a dependency of the `tests` crate (whose library is itself
//! only test code).

pub mod chain;
#[path = "../../sim/src/ports.rs"]
pub mod ports;
#[path = "../../sim/src/rng.rs"]
pub mod rng;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A test's directory under the system's temporary directory, named after the test: removed on
/// drop after a pass, kept (and its path printed) when the test panics, with whatever the test
/// wrote there (node logs and data).
#[derive(Debug)]
pub struct TestDir {
    /// `None` only while dropping.
    dir: Option<tempfile::TempDir>,
}

impl TestDir {
    /// A new empty directory whose name starts with `scf-{name}-`.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("scf-{name}-"))
            .tempdir()
            .expect("the temporary directory is writable");
        Self { dir: Some(dir) }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Keeps the directory whatever follows and returns its path: for a test that fails by
    /// returning an error rather than by panicking, so that its logs outlive it all the same.
    pub fn keep(mut self) -> PathBuf {
        self.dir.take().expect("present until dropped").keep()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if std::thread::panicking() {
            eprintln!("test directory kept: {}", dir.keep().display());
        }
        // Otherwise dropping `dir` removes it.
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    u64::try_from(since_epoch.as_millis())
        .expect("milliseconds fit in u64 until the year 584942417")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a passing test's directory is removed when dropped.
    #[test]
    fn removed_after_a_pass() {
        let dir = TestDir::new("pass");
        let path = dir.path().to_owned();
        std::fs::write(path.join("file"), b"x").unwrap();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }

    // Goal: a panicking test's directory is kept, with what was written there.
    #[test]
    fn kept_when_the_test_panics() {
        let (sender, receiver) = std::sync::mpsc::channel();
        let panicked = std::thread::spawn(move || {
            let dir = TestDir::new("panic");
            std::fs::write(dir.path().join("log"), b"kept").unwrap();
            sender.send(dir.path().to_owned()).unwrap();
            panic!("the test fails");
        })
        .join();
        assert!(panicked.is_err());
        let path = receiver.recv().unwrap();
        assert_eq!(std::fs::read(path.join("log")).unwrap(), b"kept");
        std::fs::remove_dir_all(&path).unwrap();
    }

    // Goal: a directory kept on request outlives its TestDir, with what was written there.
    #[test]
    fn kept_when_asked() {
        let dir = TestDir::new("keep");
        std::fs::write(dir.path().join("log"), b"kept").unwrap();
        let path = dir.keep();
        assert_eq!(std::fs::read(path.join("log")).unwrap(), b"kept");
        std::fs::remove_dir_all(&path).unwrap();
    }

    // Goal: the clock reads milliseconds, not seconds or nanoseconds: a time after this code
    // was written (2026-01-01) and before 2100.
    #[test]
    fn now_is_in_milliseconds() {
        assert!((1_767_225_600_000..4_102_444_800_000).contains(&now_ms()));
    }
}
