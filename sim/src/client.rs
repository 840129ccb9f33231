//! A small HTTP client for a node's API (hyper over TCP, or HTTPS under a CA the user names
//! with `--ca-file`), and key files.
//!
//! Key files are what `scf-sim keygen` prints: `{"secret_key": HEX, "public_key": HEX}`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger::crypto::SigningKey;
use serde_json::Value;

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// A new key, as the JSON of a key file.
pub fn key_json(key: &SigningKey) -> Value {
    serde_json::json!({
        "secret_key": hex::encode(key.to_bytes()),
        "public_key": hex::encode(key.public_key().to_bytes()),
    })
}

/// Writes a key file readable by its owner only.
pub fn write_key_file(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    write_json_secret(path, &key_json(key), false)
}

/// Writes a party's key file: a key file with the party's id and role too (the explorer's
/// sign-in reads the id from it).
pub fn write_party_key_file(
    path: &Path,
    party_id: &str,
    role: &str,
    key: &SigningKey,
) -> anyhow::Result<()> {
    let mut value = key_json(key);
    value["party_id"] = Value::from(party_id);
    value["role"] = Value::from(role);
    // The workload derives its keys from its seed: a file written by an earlier run of the
    // same seed holds the same key, so it may be replaced.
    write_json_secret(path, &value, true)
}

fn write_json_secret(path: &Path, value: &Value, replace: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(!replace)
        .create(replace)
        .truncate(replace)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{value}").with_context(|| format!("writing {}", path.display()))
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a key file (JSON)", path.display()))?;
    let secret = value["secret_key"].as_str().with_context(|| {
        format!("{} has no \"secret_key\" (expected what `scf-sim keygen` prints)", path.display())
    })?;
    secret_key(secret).with_context(|| format!("{}", path.display()))
}

/// A key from its hex secret.
pub fn secret_key(hex_secret: &str) -> anyhow::Result<SigningKey> {
    let bytes = hex::decode(hex_secret.trim()).context("the secret key is not hex")?;
    SigningKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("not a secp256k1 secret key: {e}"))
}

/// One HTTP answer: status and JSON body (a JSON string when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// The CA that HTTPS nodes' certificates must chain to, for every [`Http`] of this process
/// (`scf-sim --ca-file`, or `SCF_CA_FILE`): one cluster per process.
static CA: std::sync::OnceLock<Arc<tls::rustls::ClientConfig>> = std::sync::OnceLock::new();

/// Trusts the CA in `ca_file` for HTTPS, for every client made afterwards. Once per process.
pub fn trust_ca_file(ca_file: &Path) -> anyhow::Result<()> {
    let config = tls::https_client_config(ca_file)
        .with_context(|| format!("--ca-file {}", ca_file.display()))?;
    CA.set(config).map_err(|_| anyhow::anyhow!("a CA was already set for this process"))
}

/// A client for one or more nodes.
#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// Per base URL, the chain id and node id a signed read there is signed for (from the
    /// node's `GET /v1/status`, asked once).
    nodes: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, u64)>>>,
}

impl Http {
    /// A client whose requests give up after `timeout`. It speaks HTTPS to `https://` URLs,
    /// trusting only the CA of [`trust_ca_file`] (with none, such URLs fail to verify).
    pub fn new(timeout: Duration) -> Self {
        Self::trusting(timeout, CA.get().cloned())
    }

    /// A client that trusts `ca` for HTTPS (none: no `https://` URL verifies), whatever
    /// [`trust_ca_file`] said.
    pub fn trusting(timeout: Duration, ca: Option<Arc<tls::rustls::ClientConfig>>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let mut tls_config = match ca {
            Some(config) => (*config).clone(),
            None => (*tls::https_client_config_trusting_nothing()
                .expect("ring supports the default protocol versions"))
            .clone(),
        };
        // hyper-rustls sets ALPN itself (http/1.1, from enable_http1) and refuses a preset.
        tls_config.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { client, timeout, nodes: Arc::default() }
    }

    /// Sends a request with `headers` and `body`.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let mut request = hyper::Request::builder().method(method).uri(url);
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request =
            request.body(Full::new(Bytes::from(body))).with_context(|| format!("URL {url:?}"))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| anyhow::anyhow!("{method} {url}: no answer within {:?}", self.timeout))?
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let bytes = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .map_err(|_| anyhow::anyhow!("{method} {url}: the body did not arrive in time"))?
            .with_context(|| format!("{method} {url}: reading the body"))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Answer { status, body })
    }

    /// A GET, signed by `reader` (party id and key) when given.
    pub async fn get(
        &self,
        base: &str,
        path_and_query: &str,
        reader: Option<(&str, &SigningKey)>,
    ) -> anyhow::Result<Answer> {
        if !path_and_query.starts_with('/') {
            bail!("the path {path_and_query:?} must start with /");
        }
        let headers: Vec<(&str, String)> = match reader {
            Some((party, key)) => {
                let (chain_id, node_id) = self.node_at(base).await?;
                let nonce = ledger::client::read_nonce(&mut ledger::crypto::rand::rng());
                let request = ledger::client::ReadRequest {
                    chain_id: &chain_id,
                    node_id,
                    party,
                    method: "GET",
                    path_and_query,
                    nonce: &nonce,
                    time_ms: now_ms(),
                    body: b"",
                };
                request.sign(key).to_vec()
            }
            None => Vec::new(),
        };
        let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
        self.request("GET", &url, &headers, Vec::new()).await
    }

    /// The chain id and node id of the node at `base`, which a signed read there must name.
    async fn node_at(&self, base: &str) -> anyhow::Result<(String, u64)> {
        let known = self.nodes.lock().expect("never poisoned").get(base).cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        let url = format!("{}/v1/status", base.trim_end_matches('/'));
        let answer = self.request("GET", &url, &[], Vec::new()).await?;
        let (Some(node_id), Some(chain_id)) =
            (answer.body["node_id"].as_u64(), answer.body["genesis"]["chain_id"].as_str())
        else {
            bail!(
                "GET {url} answered {} without node_id and genesis.chain_id, which a signed read \
                 needs: {}",
                answer.status,
                answer.body
            );
        };
        let known = (chain_id.to_owned(), node_id);
        self.nodes.lock().expect("never poisoned").insert(base.to_owned(), known.clone());
        Ok(known)
    }

    /// `POST /v1/transactions` with `body` (one `{"body", "signature"}` or an array).
    pub async fn submit(&self, base: &str, body: &Value, wait: bool) -> anyhow::Result<Answer> {
        let mut url = format!("{}/v1/transactions", base.trim_end_matches('/'));
        if !wait {
            url.push_str("?wait=false");
        }
        self.request("POST", &url, &[], body.to_string().into_bytes()).await
    }
}
