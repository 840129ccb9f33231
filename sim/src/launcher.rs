//! `scf-sim cluster`'s supervision of a running [`LocalCluster`]: a node that exits is reported
//! and the others keep running; it is started again after `--restart`'s delay if one was given,
//! or by hand with `scf-sim cluster restart --dir DIR N`.
//!
//! The hand restart goes through a Unix socket in the cluster's directory
//! ([`CONTROL_SOCKET`]): the client sends one line (`restart N`) and reads one line back (`ok
//! ...` or `error ...`). The launcher itself starts the node, so a restarted node is its child
//! like every other: watched, reaped, and stopped with the rest on SIGINT, SIGTERM or SIGHUP.
//! Why a socket rather than a signal and a request file: the request and its answer travel on
//! one connection, so two clients never read each other's answers, and a launcher that is gone
//! refuses the connection (no stale file to misread as a running cluster).
//!
//! Invariants:
//! - Only the supervision loop touches the cluster: connections are read on their own tasks,
//!   which hand the loop a request and wait for its answer, so a request is handled between
//!   two checks of the nodes, never during one, and a slow or silent client holds up nothing.
//! - Only the launcher's own user may ask (the socket is 0600 and the peer's uid is checked).
//! - The socket is removed before the nodes are stopped: a request that comes while the
//!   cluster stops is refused, never served by starting a node that nobody would stop.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{LocalCluster, STOP_GRACE};

/// The control socket's name in the cluster's directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// How often the launcher looks for nodes that exited and restarts that are due.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Longest request line a client may send.
const REQUEST_BYTES_MAX: u64 = 256;
/// How long a client has to send its request once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits for the answer: stopping a running node may take [`STOP_GRACE`].
const ANSWER_TIMEOUT: Duration = Duration::from_secs(STOP_GRACE.as_secs() + 30);
/// Requests waiting for the supervision loop at once; more wait for their turn to be queued.
const REQUESTS_QUEUED_MAX: usize = 16;

/// A line on stderr, ignoring a closed stderr: the cluster keeps running (and stops cleanly)
/// whatever happens to the terminal.
fn tell(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "scf-sim: {text}");
}

/// A request the supervision loop answers: restart node `node`.
struct Request {
    node: u64,
    answer: oneshot::Sender<Result<String, String>>,
}

/// The control socket, removed when dropped.
struct Control {
    listener: UnixListener,
    path: PathBuf,
}

impl Control {
    fn bind(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        let control = Self { listener, path: path.to_owned() };
        // The peer's uid is checked on every connection too (see `serve`): this only keeps
        // others from connecting at all.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
        Ok(control)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the launcher does about nodes that exit.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// Start a node that exited again after this delay (`--restart`); `None`: leave it down
    /// until it is restarted by hand.
    pub restart_after: Option<Duration>,
}

/// Supervises `cluster` until `shutdown` resolves: reports nodes that exit, restarts them as
/// `supervision` says, and serves `scf-sim cluster restart`. Stopping the nodes is the
/// caller's; when this returns, the control socket is gone.
pub async fn supervise(
    cluster: &mut LocalCluster,
    supervision: Supervision,
    shutdown: impl Future<Output = ()>,
) {
    let socket = cluster.dir().join(CONTROL_SOCKET);
    let control = match Control::bind(&socket) {
        Ok(control) => Some(control),
        Err(error) => {
            tell(format_args!(
                "no control socket ({error:#}): `scf-sim cluster restart` will not reach this \
                 cluster (a shorter --dir path helps: a socket's path has at most 107 bytes)"
            ));
            None
        }
    };
    let (sender, mut requests) = mpsc::channel::<Request>(REQUESTS_QUEUED_MAX);
    // Restarts that are due, by node: only with `restart_after`.
    let mut due: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(control.as_ref()) => match accepted {
                Ok(stream) => {
                    tokio::spawn(serve(stream, sender.clone()));
                }
                Err(error) => {
                    tell(format_args!("control socket: {error}"));
                    // Out of file descriptors, say: try again a little later, not in a loop.
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            },
            Some(request) = requests.recv() => {
                let answer = restart_by_hand(cluster, supervision, &mut due, request.node);
                let _ = request.answer.send(answer);
            }
            _ = check.tick() => {
                watch(cluster, supervision, &mut due);
                restart_due(cluster, supervision, &mut due);
            }
        }
    }
    // Removes the socket first: from now on a client is told that nothing runs here. Requests
    // already queued are answered that the cluster is stopping (their sender is dropped).
    drop(control);
    drop(requests);
}

async fn accept(control: Option<&Control>) -> std::io::Result<UnixStream> {
    match control {
        Some(control) => control.listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Reports every node that exited and schedules its restart if `supervision` says so.
fn watch(cluster: &mut LocalCluster, supervision: Supervision, due: &mut BTreeMap<u64, Instant>) {
    let exits = match cluster.reap_exited() {
        Ok(exits) => exits,
        Err(error) => {
            tell(format_args!("error: {error:#}"));
            return;
        }
    };
    for (id, status) in exits {
        let log = cluster.log_path(id);
        let next = match supervision.restart_after {
            Some(delay) => {
                due.insert(id, Instant::now() + delay);
                format!("restarting it in {}", show(delay))
            }
            None => format!(
                "restart it with: scf-sim cluster restart --dir {} {id}",
                cluster.dir().display()
            ),
        };
        let others = if cluster.nodes.len() > 1 { "; the other nodes keep running" } else { "" };
        tell(format_args!(
            "node {id} exited ({status}){others}; its log is {}; {next}",
            log.display()
        ));
    }
}

/// Starts the nodes whose restart is due.
fn restart_due(
    cluster: &mut LocalCluster,
    supervision: Supervision,
    due: &mut BTreeMap<u64, Instant>,
) {
    let now = Instant::now();
    let ready: Vec<u64> = due.iter().filter(|(_, at)| **at <= now).map(|(id, _)| *id).collect();
    for id in ready {
        due.remove(&id);
        match cluster.restart(id) {
            Ok(()) => tell(format_args!("node {id} restarted ({})", pid_of(cluster, id))),
            Err(error) => {
                let delay = supervision.restart_after.unwrap_or(Duration::ZERO);
                tell(format_args!(
                    "could not restart node {id} ({error:#}); trying again in {}",
                    show(delay)
                ));
                due.insert(id, now + delay);
            }
        }
    }
}

/// `scf-sim cluster restart N`: starts node `id` now (a running one is stopped first, as the
/// cluster's stop would stop it), in place of any restart that was due.
fn restart_by_hand(
    cluster: &mut LocalCluster,
    supervision: Supervision,
    due: &mut BTreeMap<u64, Instant>,
    id: u64,
) -> Result<String, String> {
    if !cluster.has_node(id) {
        let ids: Vec<String> = cluster.nodes.iter().map(|n| n.id.to_string()).collect();
        return Err(format!("no node {id} in this cluster (its nodes: {})", ids.join(", ")));
    }
    // A node that exited since the last check is reported as such before it is started again.
    watch(cluster, supervision, due);
    due.remove(&id);
    let mut stopped = String::new();
    if cluster.nodes.iter().any(|n| n.id == id && n.pid().is_some()) {
        // Blocks this loop for at most STOP_GRACE; signals that come meanwhile wait for it.
        let status = tokio::task::block_in_place(|| cluster.stop_node(id))
            .map_err(|error| format!("stopping node {id}: {error:#}"))?;
        stopped = format!("stopped ({status}) and ");
    }
    cluster.restart(id).map_err(|error| format!("starting node {id}: {error:#}"))?;
    let started = format!("node {id} {stopped}started again ({})", pid_of(cluster, id));
    tell(format_args!("{started}, by hand"));
    Ok(started)
}

fn pid_of(cluster: &LocalCluster, id: u64) -> String {
    match cluster.nodes.iter().find(|n| n.id == id).and_then(|n| n.pid()) {
        Some(pid) => format!("pid {pid}"),
        None => "not running".to_owned(),
    }
}

/// `2s`, `500ms`: how `--restart` is written.
fn show(delay: Duration) -> String {
    if delay.subsec_millis() == 0 {
        format!("{}s", delay.as_secs())
    } else {
        format!("{}ms", delay.as_millis())
    }
}

/// One connection: reads its request, hands it to the supervision loop, writes the answer.
async fn serve(mut stream: UnixStream, requests: mpsc::Sender<Request>) {
    let answer = match read_request(&mut stream).await {
        Ok(node) => {
            let (answer, answered) = oneshot::channel();
            if requests.send(Request { node, answer }).await.is_err() {
                Err("the cluster is stopping".to_owned())
            } else {
                answered.await.unwrap_or_else(|_| Err("the cluster is stopping".to_owned()))
            }
        }
        Err(error) => Err(error),
    };
    let line = match answer {
        Ok(text) => format!("ok {text}\n"),
        Err(text) => format!("error {text}\n"),
    };
    // The client may have gone: nothing to tell it then.
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(line.as_bytes())).await;
}

/// The node id of a `restart N` line from the launcher's own user.
async fn read_request(stream: &mut UnixStream) -> Result<u64, String> {
    let peer = stream.peer_cred().map_err(|e| format!("reading the client's credentials: {e}"))?;
    may_control(peer.uid(), rustix::process::getuid().as_raw())?;
    let mut line = String::new();
    let mut reader = BufReader::new(stream).take(REQUEST_BYTES_MAX);
    let read = reader.read_line(&mut line);
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("reading the request: {e}")),
        Err(_) => return Err(format!("no request within {REQUEST_TIMEOUT:?}")),
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["restart", id] => id.parse().map_err(|_| format!("{id:?} is not a node id")),
        _ => Err(format!("unknown request {:?}; the only one is `restart N`", line.trim())),
    }
}

/// Whether the client whose user id is `peer_uid` may control a cluster that user `launcher_uid`
/// launched: only the same user may (root included: it has no more say here than anyone else).
fn may_control(peer_uid: u32, launcher_uid: u32) -> Result<(), String> {
    if peer_uid == launcher_uid {
        Ok(())
    } else {
        Err(format!("only user {launcher_uid} may control this cluster"))
    }
}

/// What `scf-sim cluster restart --dir DIR N` does: asks the launcher of the cluster in `dir` to
/// restart node `node` and returns its answer (`Ok`: restarted; `Err` with the launcher's
/// reason: refused). Fails when no launcher answers.
pub async fn request_restart(dir: &Path, node: u64) -> anyhow::Result<Result<String, String>> {
    let socket = dir.join(CONTROL_SOCKET);
    let mut stream = match UnixStream::connect(&socket).await {
        Ok(stream) => stream,
        Err(error) => {
            let described = dir.join("cluster.json").exists();
            match error.kind() {
                std::io::ErrorKind::NotFound if !described => bail!(
                    "no scf-sim cluster in {} (no cluster.json): give the --dir of a running \
                     `scf-sim cluster`, once it has printed its nodes",
                    dir.display()
                ),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => bail!(
                    "no scf-sim cluster is running in {} (its launcher has stopped; start a new \
                     cluster in a new directory)",
                    dir.display()
                ),
                _ => bail!("connecting to {}: {error}", socket.display()),
            }
        }
    };
    stream
        .write_all(format!("restart {node}\n").as_bytes())
        .await
        .context("sending the request")?;
    let mut line = String::new();
    let mut reader = BufReader::new(&mut stream).take(4_096);
    let read = reader.read_line(&mut line);
    match tokio::time::timeout(ANSWER_TIMEOUT, read).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => bail!("reading the launcher's answer: {error}"),
        Err(_) => bail!("the launcher did not answer within {ANSWER_TIMEOUT:?}"),
    }
    let line = line.trim_end();
    if let Some(text) = line.strip_prefix("ok ") {
        Ok(Ok(text.to_owned()))
    } else if let Some(text) = line.strip_prefix("error ") {
        Ok(Err(text.to_owned()))
    } else if line.is_empty() {
        bail!("the launcher closed the connection without answering (is it stopping?)")
    } else {
        bail!("the launcher answered {line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the control socket answers its launcher's own user and refuses every other user,
    // root among them, saying which user may ask.
    #[test]
    fn only_the_launchers_user_may_control_the_cluster() {
        assert_eq!(may_control(1_000, 1_000), Ok(()));
        for stranger in [0, 999, 1_001, u32::MAX] {
            assert_eq!(
                may_control(stranger, 1_000),
                Err("only user 1000 may control this cluster".to_owned()),
                "user {stranger}"
            );
        }
    }
}
