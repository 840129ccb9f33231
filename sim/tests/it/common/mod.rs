//! What the tests that run real `scf-node` processes share: process checks with bounded waits,
//! and `scf-sim cluster` as a child that never outlives its test. (Their directories are
//! `testkit::TestDir`s, kept with the node logs when a test fails.)

use std::path::Path;
use std::process::{Child, Command, ExitStatus};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};
use std::time::{Duration, Instant};

/// The pid of a process these tests did not start themselves (a node of `scf-sim cluster`).
fn pid(raw: u64) -> Pid {
    i32::try_from(raw).ok().and_then(Pid::from_raw).expect("a pid is a positive i32")
}

/// Whether a process with this pid is alive (signal 0 reaches it; a zombie counts as alive).
pub fn alive(raw: u64) -> bool {
    test_kill_process(pid(raw)).is_ok()
}

/// Kills the process `raw` with SIGKILL, as `kill -9` does.
pub fn kill_9(raw: u64) {
    kill_process(pid(raw), Signal::KILL).expect("SIGKILL");
}

/// SIGTERM to `child`, unless it has exited: once reaped, its pid may be another process's.
pub fn sigterm(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = kill_process(Pid::from_child(child), Signal::TERM);
    }
}

/// Polls `probe` every 100 ms until it gives a value, for at most `limit`; `None` after that.
pub fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `scf-sim cluster`, stopped with SIGTERM whatever happens to the test: a panic must not leave
/// it (and its nodes) running. SIGKILL only as a last resort, since it would orphan the nodes.
pub struct ClusterProcess(pub Child);

impl ClusterProcess {
    /// Starts `scf-sim cluster --dir DIR/cluster` (its output in DIR/cluster.out and .err) and
    /// waits, at most 90 s, until it says every node is up. Returns it and what it printed.
    pub fn start(sim: &Path, dir: &Path) -> (Self, String) {
        Self::start_with(sim, dir, &[])
    }

    /// [`ClusterProcess::start`] with more arguments for `scf-sim cluster`.
    pub fn start_with(sim: &Path, dir: &Path, args: &[&str]) -> (Self, String) {
        let printed = dir.join("cluster.out");
        let errors = dir.join("cluster.err");
        let mut cluster = Self(
            Command::new(sim)
                .args(["cluster", "--dir"])
                .arg(dir.join("cluster"))
                .args(args)
                .stdout(std::fs::File::create(&printed).unwrap())
                .stderr(std::fs::File::create(&errors).unwrap())
                .spawn()
                .expect("scf-sim cluster starts"),
        );
        // It prints the nodes' URLs once every node answers and agrees on a leader.
        let deadline = Instant::now() + Duration::from_secs(90);
        let out = loop {
            let out = std::fs::read_to_string(&printed).unwrap_or_default();
            if out.contains("Ctrl-C stops it") {
                break out;
            }
            if let Some(status) = cluster.0.try_wait().unwrap() {
                let err = std::fs::read_to_string(&errors).unwrap_or_default();
                panic!("scf-sim cluster exited early ({status}):\n{out}\n{err}");
            }
            assert!(Instant::now() < deadline, "the cluster was not up within 90 s:\n{out}");
            std::thread::sleep(Duration::from_millis(100));
        };
        (cluster, out)
    }

    /// SIGTERM, then its exit status (at most 30 s later).
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        sigterm(&mut self.0);
        wait_for(&mut self.0, Duration::from_secs(30))
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() && self.terminate().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
