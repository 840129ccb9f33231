//! A small Chrome DevTools Protocol (CDP) client, for browser tests of the web explorer.
//!
//! The explorer is HTML, CSS and JavaScript served over HTTP; what it shows is only known once a
//! real browser has run its scripts. [`Browser`] starts Debian's headless `chromium`, connects to
//! its DevTools websocket, and sends the handful of CDP commands a test needs: navigate, evaluate
//! an expression, wait for a condition, take a screenshot. CDP rather than WebDriver, Playwright
//! or Puppeteer because it is built into chromium: no node/npm tooling and no driver binary to
//! install and keep in step with the browser, only JSON messages over one websocket.
//!
//! Why not the `chromiumoxide` crate (issue #22: replace this file with it if its build adds
//! under a minute to CI). Measured on this project's 2-core machine, in a scratch crate with its
//! own target directory: a minimal program on chromiumoxide 0.9.1 (`default-features = false`,
//! its tokio runtime; launch, evaluate, screenshot). With the crates of its graph that this
//! workspace already has built first, `cargo build --release` of the rest took 174 s wall
//! (64 crates, load about 1 at the start). Built again on this workspace's own lockfile, with
//! only the 49 packages that lockfile lacks removed, it took 264 s of user CPU (1,064 s wall on
//! a machine loaded by other builds). Most of it is `chromiumoxide_cdp`, the generated types of
//! the whole protocol, and `chromiumoxide` itself; it also brings reqwest, url/idna with the ICU
//! crates, async-tungstenite and `which`. That is about three times the minute allowed, paid by
//! every cold build (CI on a new machine), for the five commands used here. So this client
//! stays.
//!
//! Invariants:
//! - Every wait is bounded: the launch (30 s), each command (30 s), a navigation (30 s), and
//!   [`Browser::wait_for`] (its own timeout). A test that would hang fails instead, saying what
//!   it waited for and what the page logged.
//! - Replies are matched to commands by id. Events that arrive while a reply is awaited are
//!   recorded (console lines, load events), never dropped; a late reply to a command that timed
//!   out is ignored.
//! - Each browser has a fresh profile in its own temporary directory; dropping the [`Browser`]
//!   kills chromium, reaps it and removes that directory, also when the launch fails halfway.
//!
//! It must never drive anything but the one page target it opened, nor leave chromium running.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The viewport pages are laid out in and screenshots show (width, height; CSS pixels).
pub const VIEWPORT: (u32, u32) = (1280, 900);
/// How long chromium may take to start and offer a page target.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CDP command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a navigation may take to fire its load event.
const NAVIGATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`Browser::wait_for`] evaluates its expression.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often the launch looks for chromium's port file and page target: no notification exists.
const LAUNCH_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The largest websocket message and frame accepted: a screenshot arrives as one base64 message
/// of several MiB.
const MESSAGE_BYTES_MAX: usize = 64 << 20;
/// Console lines kept; later ones are counted, not stored, so a chatty page cannot exhaust memory.
const CONSOLE_LINES_MAX: usize = 10_000;
/// Loaders whose load event is remembered: a navigation's own arrives within a few events of
/// its reply, so 64 is plenty even with frames loading beside it.
const LOADERS_KEPT: usize = 64;
/// Lines of chromium's stderr quoted when it fails to start.
const STDERR_LINES_MAX: usize = 30;
/// Console lines quoted in a failure message.
const CONSOLE_LINES_QUOTED_MAX: usize = 50;

/// The browsers started by this process, so that two launched in the same nanosecond (tests run
/// in parallel) still get distinct directories.
static LAUNCHES: AtomicU64 = AtomicU64::new(0);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A headless chromium driven over CDP, through one page target.
pub struct Browser {
    /// The DevTools websocket of the page target every command goes to.
    socket: Socket,
    /// The id of the next command: replies are matched to commands by it.
    next_id: u64,
    /// The loaders (one per document load) whose load event fired, newest last, at most
    /// [`LOADERS_KEPT`]: [`Browser::navigate`] waits for its own loader to appear here, whether
    /// the event comes before or after `Page.navigate`'s reply. A count of `Page.loadEventFired`
    /// would not do: a late load event of an earlier document (an error page, a redirect by
    /// script) would be taken for the new one's.
    loaded: VecDeque<String>,
    /// Console messages, uncaught exceptions and log entries, one line each, for failure
    /// messages.
    console: Vec<String>,
    /// Console lines not kept because [`CONSOLE_LINES_MAX`] was reached.
    console_dropped: u64,
    /// The process and its directory. Declared last so that the websocket is closed before
    /// chromium is killed.
    chromium: Chromium,
}

/// The chromium process and its temporary directory (profile and stderr): killed, reaped and
/// removed on drop, so that a launch that fails halfway leaves nothing behind either.
struct Chromium {
    /// The browser process (the Debian launcher script `exec`s it, so this is chromium itself).
    child: Child,
    /// Holds `profile/` (the `--user-data-dir`) and `stderr.log`.
    dir: PathBuf,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SIGKILL: a test's browser has nothing worth saving, and its helper processes (zygote,
        // renderers, GPU and network services) exit once the browser process is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Chromium {
    /// The last lines chromium wrote to stderr, for failure messages.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read(self.dir.join("stderr.log")).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(STDERR_LINES_MAX);
        if lines.is_empty() {
            "(chromium wrote nothing to stderr)".to_owned()
        } else {
            format!("chromium's stderr (last lines):\n  {}", lines[start..].join("\n  "))
        }
    }

    /// Fails, with chromium's stderr, if it has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait().context("asking whether chromium is still running")? {
            Some(status) => {
                bail!("chromium exited during launch ({status})\n{}", self.stderr_tail())
            }
            None => Ok(()),
        }
    }

    /// The DevTools port, from `DevToolsActivePort` in the profile, which chromium writes (port,
    /// then browser target path) once it listens.
    async fn devtools_port(&mut self, deadline: Instant) -> anyhow::Result<u16> {
        let path = self.dir.join("profile").join("DevToolsActivePort");
        loop {
            self.check_running()?;
            // The file may be caught half written: a first line that is not yet a whole port is
            // read again at the next poll.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let first = text.lines().next().filter(|_| text.contains('\n'));
            if let Some(port) = first.and_then(|line| line.trim().parse().ok()) {
                return Ok(port);
            }
            if Instant::now() >= deadline {
                bail!(
                    "chromium did not write {} within {LAUNCH_TIMEOUT:?}\n{}",
                    path.display(),
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(LAUNCH_POLL_INTERVAL).await;
        }
    }

    /// The websocket URL of the page target chromium opened on `about:blank`.
    async fn page_target(&mut self, port: u16, deadline: Instant) -> anyhow::Result<String> {
        let http = sim::client::Http::new(Duration::from_secs(5));
        let url = format!("http://127.0.0.1:{port}/json/list");
        loop {
            self.check_running()?;
            let answer = http.request("GET", &url, &[], Vec::new()).await;
            let last = match answer {
                Ok(answer) => {
                    let targets = answer.body.as_array().map(Vec::as_slice).unwrap_or_default();
                    let page = targets.iter().find(|t| t["type"] == "page");
                    if let Some(ws) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                        return Ok(ws.to_owned());
                    }
                    format!("{} {}", answer.status, answer.body)
                }
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "chromium offered no page target at {url} within {LAUNCH_TIMEOUT:?} (last \
                     answer: {last})\n{}",
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(LAUNCH_POLL_INTERVAL).await;
        }
    }
}

/// What `Runtime.evaluate` came to.
enum Evaluated {
    /// The expression's value (awaited if a promise), and whether JavaScript finds it truthy.
    Returned { value: Value, truthy: bool },
    /// It threw; the exception's text.
    Threw(String),
}

impl Browser {
    /// Starts headless chromium with a fresh profile and connects to its page target.
    ///
    /// The binary is `SCF_CHROMIUM` when set, else the first of `chromium`, `chromium-browser`
    /// and `google-chrome` on `PATH`. The Page, Runtime and Log domains are enabled, so that
    /// load events and console lines are recorded from the start.
    pub async fn launch() -> anyhow::Result<Browser> {
        let binary = chromium_binary()?;
        let dir = fresh_dir();
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating chromium's profile {}", profile.display()))?;
        let stderr = File::create(dir.join("stderr.log"))
            .with_context(|| format!("creating {}", dir.join("stderr.log").display()))?;
        let spawned = Command::new(&binary)
            .args([
                "--headless=new",
                // Containers and CI runners rarely allow chromium's user-namespace sandbox; the
                // pages it loads are our own.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is often small in containers; chromium then crashes on shared memory.
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                // 0: chromium picks a free port and writes it to DevToolsActivePort.
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error).with_context(|| format!("starting {}", binary.display()));
            }
        };
        let mut chromium = Chromium { child, dir };
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        let port = chromium.devtools_port(deadline).await?;
        let ws_url = chromium.page_target(port, deadline).await?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MESSAGE_BYTES_MAX))
            .max_frame_size(Some(MESSAGE_BYTES_MAX));
        let connecting =
            tokio_tungstenite::connect_async_with_config(ws_url.as_str(), Some(config), true);
        let (socket, _) = tokio::time::timeout_at(deadline, connecting)
            .await
            .map_err(|_| anyhow!("connecting to {ws_url}: no handshake within {LAUNCH_TIMEOUT:?}"))?
            .with_context(|| format!("connecting to chromium's page target {ws_url}"))?;
        let mut browser = Browser {
            socket,
            next_id: 1,
            loaded: VecDeque::new(),
            console: Vec::new(),
            console_dropped: 0,
            chromium,
        };
        for domain in ["Page", "Runtime", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({})).await?;
        }
        // Lifecycle events name their loader, which load events do not.
        browser.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true })).await?;
        // Headless chromium takes a share of --window-size for browser chrome it does not draw
        // (a 1280x900 window gives a 1280x757 viewport); pages are laid out, and screenshots
        // taken, at exactly the viewport asked for.
        let (width, height) = VIEWPORT;
        let metrics = json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": false,
        });
        browser.call("Emulation.setDeviceMetricsOverride", metrics).await?;
        Ok(browser)
    }

    /// Navigates to `url` and waits (30 s at most) for the new document's load event. A
    /// navigation that fails (`net::ERR_CONNECTION_REFUSED`) is an error; one within the same
    /// document (a new `#fragment`) has no load event and returns at once.
    pub async fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + NAVIGATE_TIMEOUT;
        let reply = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = reply["errorText"].as_str() {
            bail!("navigating to {url}: {error}{}", self.console_quote());
        }
        let Some(loader) = reply["loaderId"].as_str() else {
            return Ok(());
        };
        let waited = tokio::time::timeout_at(deadline, async {
            while !self.loaded.iter().any(|l| l == loader) {
                self.receive().await?;
            }
            anyhow::Ok(())
        })
        .await;
        match waited {
            Ok(result) => result,
            Err(_) => bail!(
                "navigating to {url}: no load event within {NAVIGATE_TIMEOUT:?}{}",
                self.console_quote()
            ),
        }
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise) and returns its
    /// value as JSON (`undefined` is `null`; `NaN`, `Infinity`, `-0` and big integers are their
    /// text). An exception is an error with its text.
    pub async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        match self.evaluate(expression, COMMAND_TIMEOUT).await? {
            Evaluated::Returned { value, .. } => Ok(value),
            Evaluated::Threw(text) => bail!("evaluating {expression:?} threw: {text}"),
        }
    }

    /// Evaluates `expression` every 100 ms until its value is truthy (not `null`, `undefined`,
    /// `false`, `0`, `NaN` or `""`), and returns that value. An evaluation that throws counts as
    /// not yet (the element it reads may not exist yet). After `timeout` the error names the
    /// expression, its last value and the console lines seen so far.
    pub async fn wait_for(&mut self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            // Each evaluation is bounded by the time left, so a promise that never settles
            // cannot hold the wait past its deadline.
            let left = deadline.saturating_duration_since(Instant::now()).min(COMMAND_TIMEOUT);
            let last = match self.evaluate(expression, left.max(POLL_INTERVAL)).await {
                Ok(Evaluated::Returned { value, truthy: true }) => return Ok(value),
                Ok(Evaluated::Returned { value, truthy: false }) => value.to_string(),
                Ok(Evaluated::Threw(text)) => format!("threw {text}"),
                Err(error) if Instant::now() >= deadline => format!("{error:#}"),
                Err(error) => {
                    return Err(error.context(format!("waiting for {expression:?}")));
                }
            };
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "waited {timeout:?} for {expression:?} to be truthy; its last value: \
                     {last}{}",
                    self.console_quote()
                );
            }
            tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
        }
    }

    /// Writes a PNG of the viewport ([`VIEWPORT`]) to `path`, creating its parent directories.
    pub async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let reply = self.call("Page.captureScreenshot", json!({ "format": "png" })).await?;
        let data = reply["data"].as_str().context("Page.captureScreenshot returned no data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("decoding the screenshot's base64")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// The console messages, uncaught exceptions and log entries seen so far, one line each
    /// (`console.log: …`, `uncaught: …`, `log network error: …`), for failure messages.
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// Sends `Runtime.evaluate` and sorts its reply into a value or an exception.
    async fn evaluate(&mut self, expression: &str, timeout: Duration) -> anyhow::Result<Evaluated> {
        let params = json!({
            "expression": expression,
            "returnByValue": true,
            "awaitPromise": true,
        });
        let reply = self.call_within("Runtime.evaluate", params, timeout).await?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Ok(Evaluated::Threw(exception_text(details)));
        }
        let result = &reply["result"];
        let unserializable = result["unserializableValue"].as_str();
        let value = match (result.get("value"), unserializable) {
            (Some(value), _) => value.clone(),
            (None, Some(text)) => Value::String(text.to_owned()),
            (None, None) => Value::Null,
        };
        let truthy = match (&value, unserializable) {
            (_, Some(text)) => !matches!(text, "NaN" | "-0" | "0n"),
            (Value::Null | Value::Bool(false), _) => false,
            (Value::Number(n), _) => n.as_f64() != Some(0.0),
            (Value::String(s), _) => !s.is_empty(),
            _ => true,
        };
        Ok(Evaluated::Returned { value, truthy })
    }

    /// Sends one command and returns its reply's `result`, within [`COMMAND_TIMEOUT`].
    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call_within(method, params, COMMAND_TIMEOUT).await
    }

    /// Sends one command and returns its reply's `result`, within `timeout`. Events that arrive
    /// first are recorded; replies to other (timed-out) commands are skipped.
    async fn call_within(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params }).to_string();
        let exchange = async {
            self.socket
                .send(Message::Text(command.into()))
                .await
                .with_context(|| format!("sending {method} to chromium"))?;
            loop {
                let mut message = self.receive().await?;
                if message["id"].as_u64() != Some(id) {
                    continue;
                }
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(message["result"].take());
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => bail!("{method}: chromium did not answer within {timeout:?}"),
        }
    }

    /// The next JSON message from chromium, after recording it if it is an event.
    async fn receive(&mut self) -> anyhow::Result<Value> {
        loop {
            let message = match self.socket.next().await {
                Some(message) => message.context("reading from chromium's DevTools socket")?,
                None => {
                    bail!("chromium closed the DevTools socket\n{}", self.chromium.stderr_tail())
                }
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => bail!(
                    "chromium closed the DevTools socket ({frame:?})\n{}",
                    self.chromium.stderr_tail()
                ),
                // Pings are answered by tungstenite; CDP sends no binary messages.
                _ => continue,
            };
            let message: Value = serde_json::from_str(text.as_str())
                .with_context(|| format!("chromium sent a message that is not JSON: {text}"))?;
            self.record(&message);
            return Ok(message);
        }
    }

    /// Records what an event says that a test may wait for or need to read.
    fn record(&mut self, message: &Value) {
        let params = &message["params"];
        let line = match message["method"].as_str() {
            Some("Page.lifecycleEvent") => {
                if let (Some("load"), Some(loader)) =
                    (params["name"].as_str(), params["loaderId"].as_str())
                {
                    if self.loaded.len() == LOADERS_KEPT {
                        self.loaded.pop_front();
                    }
                    self.loaded.push_back(loader.to_owned());
                }
                return;
            }
            Some("Runtime.consoleAPICalled") => {
                let kind = params["type"].as_str().unwrap_or("log");
                let args = params["args"].as_array().map(Vec::as_slice).unwrap_or_default();
                let args: Vec<String> = args.iter().map(describe).collect();
                format!("console.{kind}: {}", args.join(" "))
            }
            Some("Runtime.exceptionThrown") => {
                format!("uncaught: {}", exception_text(&params["exceptionDetails"]))
            }
            Some("Log.entryAdded") => {
                let entry = &params["entry"];
                let mut line = format!(
                    "log {} {}: {}",
                    entry["source"].as_str().unwrap_or("?"),
                    entry["level"].as_str().unwrap_or("?"),
                    entry["text"].as_str().unwrap_or_default()
                );
                if let Some(url) = entry["url"].as_str() {
                    let _ = write!(line, " ({url})");
                }
                line
            }
            _ => return,
        };
        if self.console.len() < CONSOLE_LINES_MAX {
            self.console.push(line);
        } else {
            self.console_dropped += 1;
        }
    }

    /// The last console lines, indented, for the end of a failure message.
    fn console_quote(&self) -> String {
        if self.console.is_empty() {
            return "\nconsole: (nothing logged)".to_owned();
        }
        let start = self.console.len().saturating_sub(CONSOLE_LINES_QUOTED_MAX);
        let mut text = format!("\nconsole ({} lines", self.console.len());
        if self.console_dropped > 0 {
            let _ = write!(text, ", {} more not kept", self.console_dropped);
        }
        let _ = write!(text, "; the last {}):", self.console.len() - start);
        for line in &self.console[start..] {
            let _ = write!(text, "\n  {line}");
        }
        text
    }
}

/// One console argument as text: strings as they are, other values as JSON, objects by their
/// description.
fn describe(arg: &Value) -> String {
    if let Some(text) = arg["value"].as_str() {
        return text.to_owned();
    }
    if let Some(value) = arg.get("value") {
        return value.to_string();
    }
    let text = arg["unserializableValue"].as_str().or_else(|| arg["description"].as_str());
    text.or_else(|| arg["type"].as_str()).unwrap_or("?").to_owned()
}

/// An exception's text: `exceptionDetails.text` ("Uncaught") with the exception's description
/// (message and stack) and where it was thrown.
fn exception_text(details: &Value) -> String {
    let mut text = details["text"].as_str().unwrap_or("exception").to_owned();
    if let Some(description) = details["exception"]["description"].as_str() {
        let _ = write!(text, " {description}");
    }
    if let Some(url) = details["url"].as_str() {
        let line = details["lineNumber"].as_u64().unwrap_or(0) + 1;
        let _ = write!(text, " (at {url}:{line})");
    }
    text
}

/// The chromium to start: `SCF_CHROMIUM`, else the first known name on `PATH`.
fn chromium_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SCF_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "no chromium found (SCF_CHROMIUM is unset and none of chromium, chromium-browser, \
         google-chrome is on PATH): install Debian's chromium (apt-get install chromium)"
    )
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A new directory name under the system's temporary directory, unique to this launch.
fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let launch = LAUNCHES.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("scf-chromium-{}-{nanos}-{launch}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// The page: logs, then after a timer logs again and sets its title, so the test must wait.
    const PAGE: &str = r"<!doctype html>
<html><head><meta charset='utf-8'><title>loading</title>
<style>body { background: #123456; color: #fedcba; font: 32px sans-serif; }</style></head>
<body><h1>scf explorer</h1><p id='status'>loading</p>
<script>
console.log('explorer booting', 42);
setTimeout(() => {
  console.log('explorer ready');
  document.getElementById('status').textContent = 'ready';
  document.title = 'ready';
}, 300);
</script></body></html>";

    /// Serves `PAGE` at `/` and 404 elsewhere, one request per connection.
    async fn serve(listener: TcpListener) {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let (status, body) = if request.starts_with(b"GET / ") {
                    ("200 OK", PAGE)
                } else {
                    ("404 Not Found", "not found")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }

    /// Goal: the client really drives chromium end to end: it loads a page over HTTP, waits for
    /// a script's timer, evaluates values and exceptions, takes a PNG screenshot, and records
    /// the page's console.
    #[tokio::test]
    async fn drives_a_real_chromium() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(serve(listener));

        let mut browser = Browser::launch().await.unwrap();
        browser.navigate(&url).await.unwrap();
        let ready =
            browser.wait_for("document.title === 'ready'", Duration::from_secs(10)).await.unwrap();
        assert_eq!(ready, json!(true));
        assert_eq!(browser.eval("1+2").await.unwrap(), json!(3));
        assert_eq!(
            browser.eval("document.getElementById('status').textContent").await.unwrap(),
            json!("ready")
        );
        assert_eq!(
            browser.eval("Promise.resolve({a: [1, 'b']})").await.unwrap(),
            json!({"a": [1, "b"]})
        );
        assert_eq!(browser.eval("undefined").await.unwrap(), Value::Null);

        let thrown = browser.eval("(() => { throw new Error('boom'); })()").await.unwrap_err();
        assert!(format!("{thrown:#}").contains("boom"), "{thrown:#}");

        let timed_out = browser
            .wait_for("document.querySelector('#never').textContent", Duration::from_millis(300))
            .await
            .unwrap_err();
        let message = format!("{timed_out:#}");
        assert!(message.contains("#never") && message.contains("explorer ready"), "{message}");

        let path = fresh_dir().join("shots").join("page.png");
        browser.screenshot(&path).await.unwrap();
        let png = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(png.len() > 2_000, "a {}-byte screenshot is suspiciously small", png.len());
        // The IHDR chunk's width and height, big-endian, right after the magic and its header.
        let size = (png[16..20].try_into().unwrap(), png[20..24].try_into().unwrap());
        assert_eq!((u32::from_be_bytes(size.0), u32::from_be_bytes(size.1)), VIEWPORT);

        let console = browser.console().join("\n");
        assert!(console.contains("console.log: explorer booting 42"), "{console}");
        assert!(console.contains("console.log: explorer ready"), "{console}");

        // A navigation that fails is an error, and the next one waits for its own document, not
        // for the error page's load.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let refused = browser.navigate(&format!("http://{closed}/")).await.unwrap_err();
        assert!(format!("{refused:#}").contains("ERR_CONNECTION_REFUSED"), "{refused:#}");
        browser.navigate(&url).await.unwrap();
        let loaded = "[location.href, document.readyState]";
        assert_eq!(browser.eval(loaded).await.unwrap(), json!([url, "complete"]));
        browser.navigate(&format!("{url}#block-7")).await.unwrap();
        assert_eq!(browser.eval("location.hash").await.unwrap(), json!("#block-7"));

        drop(browser);
        server.abort();
    }
}
