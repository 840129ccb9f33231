//! The web explorer in a real browser (Debian's headless Chromium, driven over the DevTools
//! protocol by `tests::browser`), against a real local cluster (3 voters and an observer) fed by
//! the simulator's workload. The explorer is read from the observer, as a regulator would.
//!
//! - The regulator's dashboard shows exactly the figures of the supervision API.
//! - A token's lineage page shows every piece of the tree, with holders, amounts and states.
//! - The chain view updates when a transaction lands, without a reload.
//! - Without a key, private pages show no private data.
//! - A signature made in the browser by the explorer's own signing module (the vendored noble
//!   libraries) is accepted by the ledger's verifier, the one the node runs, and a signed read
//!   the explorer sends to a node is answered.
//!
//! Each page's screenshot is written to `docs/screenshots/` (or `SCF_SCREENSHOTS`), which the
//! README's tour links to.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use ledger::client::{Identity, register_party};
use ledger::crypto::{PublicKeyBytes, SignatureBytes, SigningKey};
use ledger::pb::Role;
use serde_json::{Value, json};
use sim::client::{Http, key_json, now_ms, read_key_file};
use sim::cluster::LocalCluster;
use sim::remote::{Load, RemoteConfig};
use sim::workload::party_key;
use testkit::TestDir;
use tests::browser::Browser;

const SEED: u64 = 11;
const PAGE: Duration = Duration::from_secs(30);

fn screenshots() -> PathBuf {
    match std::env::var_os("SCF_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"),
    }
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// Opens `route` and waits until its view has rendered.
async fn open(browser: &mut Browser, route: &str, view: &str) -> anyhow::Result<()> {
    browser.eval(&format!("location.hash = {}", js(route))).await?;
    let done = format!(
        "document.body.dataset.view === {} && document.body.dataset.loading === '0'",
        js(view)
    );
    browser.wait_for(&done, PAGE).await.with_context(|| format!("rendering {route}"))?;
    Ok(())
}

/// Starts a local cluster, runs `body` against it, and stops it; the cluster's directory is kept
/// when `body` fails.
async fn with_cluster(
    name: &str,
    voters: usize,
    observers: usize,
    body: impl AsyncFnOnce(&LocalCluster) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = TestDir::new(name);
    let result = async {
        let mut cluster =
            LocalCluster::start(&tests::cluster_config(dir.path(), voters, observers)?).await?;
        let result = body(&cluster).await;
        cluster.stop();
        result
    }
    .await;
    if result.is_err() {
        eprintln!("the cluster's configs and logs are in {}", dir.keep().join("cluster").display());
    }
    result
}

/// Uncaught exceptions, console errors and browser errors such as CSP violations, which fail a
/// test; failed requests (`log network error`) do not: refusals are answered 401.
fn page_errors(browser: &Browser) -> Vec<&String> {
    browser
        .console()
        .iter()
        .filter(|line| {
            let head = line.split(':').next().unwrap_or_default();
            line.starts_with("uncaught:")
                || head == "console.error"
                || (head.starts_with("log ")
                    && head.ends_with(" error")
                    && head != "log network error")
        })
        .collect()
}

/// A signed read by `who`, which must answer 200.
/// `who`'s signed read of `path`; the regulator's says it is for supervision, as the explorer's
/// reads do by default.
async fn read(http: &Http, base: &str, path: &str, who: &Identity) -> anyhow::Result<Value> {
    let path = if who.party_id == "regulator" {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{path}{join}purpose=supervision")
    } else {
        path.to_owned()
    };
    let path = path.as_str();
    let answer = http.get(base, path, Some((&who.party_id, &who.key))).await?;
    ensure!(answer.status == 200, "{path}: {} {}", answer.status, answer.body);
    Ok(answer.body)
}

/// Every element matching `selector`, as `{attribute or field: text}` objects: `data-*`
/// attributes by name, and the text of each `[data-field]` inside it.
async fn rows(browser: &mut Browser, selector: &str) -> anyhow::Result<Vec<Value>> {
    let script = format!(
        "[...document.querySelectorAll({})].map(e => {{
            const row = Object.assign({{}}, e.dataset);
            for (const cell of e.querySelectorAll('[data-field]')) {{
                row[cell.dataset.field] = cell.textContent.trim();
            }}
            return row;
        }})",
        js(selector)
    );
    match browser.eval(&script).await? {
        Value::Array(rows) => Ok(rows),
        other => bail!("{selector}: {other}"),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Goal: every page of the explorer shows what the API says, to whom it may say it (the module
/// doc's list), on a cluster with the simulator's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_what_the_api_says() -> anyhow::Result<()> {
    with_cluster("explorer", 3, 1, explore).await
}

async fn explore(cluster: &LocalCluster) -> anyhow::Result<()> {
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let observer = cluster.nodes.iter().find(|n| n.role == "observer").context("an observer")?;
    let observer = observer.url.clone();
    let registrar_key = read_key_file(&cluster.registrar_key)?;

    // The simulator's supply chain: orders to settlements, splits, discounts, bad transactions.
    let report = sim::remote::run(&RemoteConfig {
        urls: urls.clone(),
        registrar_key: registrar_key.clone(),
        seed: SEED,
        namespace: String::new(),
        duration: Duration::from_secs(8),
        warmup: Duration::from_secs(1),
        load: Load::Closed { concurrency: 8 },
        batch: 1,
        progress: false,
        // A short run: its few lives are signed as they start.
        presign: Some(0),
    })
    .await?;
    ensure!(report.applied > 0 && report.invariants_ok && report.replicas_agree, "{report:?}");

    let http = Http::new(Duration::from_secs(30));
    let identity = |id: &str| Identity::new(&cluster.chain_id, id, party_key(SEED, id));
    let regulator = identity("regulator");
    let shots = screenshots();
    let mut browser = Browser::launch().await?;
    browser.navigate(&format!("{observer}/")).await?;
    open(&mut browser, "#/chain", "chain").await?;
    browser.screenshot(&shots.join("chain.png")).await?;

    // The regulator signs in with its key file, as the README's tour does.
    let key = key_json(&regulator.key).to_string();
    browser.eval(&format!("window.scfExplorer.signIn({}, {})", js("regulator"), js(&key))).await?;
    browser.wait_for("document.body.dataset.signedIn === 'regulator'", PAGE).await?;

    // The dashboard's figures are the API's.
    open(&mut browser, "#/dashboard", "dashboard").await?;
    let exposure = read(&http, &observer, "/v1/supervision/exposure", &regulator).await?;
    let mut shown = rows(&mut browser, "tr[data-obligor][data-currency]").await?;
    let mut expected: Vec<Value> = exposure["obligors"]
        .as_array()
        .context("obligors")?
        .iter()
        .map(|row| {
            json!({
                "obligor": row["obligor"], "currency": row["currency"],
                "unsettled": row["unsettled"], "overdue": row["overdue"],
                "credit_limit": row["credit_limit"], "holders": text(&row["holders"]),
            })
        })
        .collect();
    ensure!(!expected.is_empty(), "the workload left no exposure: {exposure}");
    let key_of = |v: &Value| (text(&v["obligor"]), text(&v["currency"]));
    shown.sort_by_key(key_of);
    expected.sort_by_key(key_of);
    let shown: Vec<Value> = shown
        .iter()
        .map(|row| {
            json!({
                "obligor": row["obligor"], "currency": row["currency"],
                "unsettled": row["unsettled"], "overdue": row["overdue"],
                "credit_limit": row["credit_limit"], "holders": row["holders"],
            })
        })
        .collect();
    ensure!(shown == expected, "exposure shown {shown:?}\nAPI {expected:?}");

    let financing = read(&http, &observer, "/v1/supervision/financing", &regulator).await?;
    let banks = financing["banks"].as_array().context("banks")?;
    ensure!(!banks.is_empty(), "the workload discounted nothing: {financing}");
    let shown = rows(&mut browser, "tr[data-bank][data-currency]").await?;
    ensure!(shown.len() == banks.len(), "financing rows {shown:?} vs {financing}");
    for bank in banks {
        let row = shown
            .iter()
            .find(|r| r["bank"] == bank["bank"] && r["currency"] == bank["currency"])
            .with_context(|| format!("no row for {bank}"))?;
        for field in ["face_value", "proceeds", "average_rate"] {
            ensure!(row[field] == bank[field], "{field}: shown {row} vs {bank}");
        }
        ensure!(row["count"] == text(&bank["count"]), "count: shown {row} vs {bank}");
    }

    let ladder = read(&http, &observer, "/v1/supervision/maturity", &regulator).await?;
    let bars = rows(&mut browser, "[data-bucket][data-currency]").await?;
    for currency in ladder["currencies"].as_array().context("currencies")? {
        let bar = |bucket: &str| {
            bars.iter()
                .find(|b| b["bucket"] == bucket && b["currency"] == currency["currency"])
                .map(|b| b["faceValue"].clone())
        };
        ensure!(bar("overdue") == Some(currency["overdue"].clone()), "overdue bar: {bars:?}");
        for bucket in currency["buckets"].as_array().context("buckets")? {
            let shown = bar(&text(&bucket["week"]));
            ensure!(shown == Some(bucket["face_value"].clone()), "week {bucket}: {shown:?}");
        }
    }

    let log = read(&http, &observer, "/v1/supervision/rejections", &regulator).await?;
    ensure!(log["total"].as_u64() > Some(0), "the workload's bad transactions: {log}");
    let headline = browser
        .eval("document.querySelector('[data-headline=rejected_total]')?.textContent ?? ''")
        .await?;
    let digits: String = text(&headline).chars().filter(char::is_ascii_digit).collect();
    ensure!(digits == text(&log["total"]), "rejected headline {headline} vs {}", log["total"]);
    let codes = rows(&mut browser, "tr[data-code]").await?;
    for entry in log["by_code"].as_array().context("by_code")? {
        let row = codes.iter().find(|r| r["code"] == entry["code"]);
        let count = row.map(|r| r["count"].clone());
        ensure!(count == Some(Value::from(text(&entry["count"]))), "{entry}: shown {row:?}");
    }
    browser.screenshot(&shots.join("dashboard.png")).await?;

    // A token that was split, drawn from its root: every piece, as the API has it.
    let mut lineage = None;
    for party in ["t2-0", "t2-1", "t2-2", "bank-0", "bank-1", "t1-0", "t1-1"] {
        let path = format!("/v1/tokens?holder={party}");
        let held = read(&http, &observer, &path, &regulator).await?;
        let tokens = held["tokens"].as_array().cloned().unwrap_or_default();
        if let Some(piece) = tokens.iter().find(|t| t["parent_id"].is_string()) {
            let id = text(&piece["token_id"]);
            let found =
                read(&http, &observer, &format!("/v1/tokens/{id}/lineage"), &regulator).await?;
            let root = text(&found["ancestors"][0]["token_id"]);
            let tree =
                read(&http, &observer, &format!("/v1/tokens/{root}/lineage"), &regulator).await?;
            lineage = Some((root, tree));
            break;
        }
    }
    let (root, tree) = lineage.context("no split token among the workload's holders")?;
    let mut expected: Vec<Value> = std::iter::once(&tree["token"])
        .chain(tree["descendants"].as_array().context("descendants")?)
        .map(|t| {
            json!({"tokenId": t["token_id"], "holder": t["holder"],
                   "faceValue": t["face_value"], "state": t["state"]})
        })
        .collect();
    ensure!(expected.len() >= 3, "a split has a root and two children: {tree}");
    open(&mut browser, &format!("#/token/{root}"), "token").await?;
    let mut shown: Vec<Value> = rows(&mut browser, "[data-token-id]")
        .await?
        .iter()
        .map(|t| {
            json!({"tokenId": t["tokenId"], "holder": t["holder"],
                   "faceValue": t["faceValue"], "state": t["state"]})
        })
        .collect();
    let by_id = |v: &Value| text(&v["tokenId"]);
    shown.sort_by_key(by_id);
    shown.dedup();
    expected.sort_by_key(by_id);
    ensure!(shown == expected, "lineage shown {shown:?}\nAPI {expected:?}");
    let sales = rows(&mut browser, "tr[data-financing]").await?;
    let financings = tree["financings"].as_array().context("financings")?;
    ensure!(sales.len() == financings.len(), "financing rows {sales:?} vs {financings:?}");
    browser.screenshot(&shots.join("lineage.png")).await?;

    // The chain view updates when a transaction lands.
    open(&mut browser, "#/chain", "chain").await?;
    let registrar = Identity::new(&cluster.chain_id, ledger::chain::REGISTRAR_ID, registrar_key);
    let newcomer = SigningKey::from_seed("explorer/newcomer");
    let command =
        register_party("newcomer", "Newcomer", Role::Enterprise, &newcomer.public_key().to_bytes());
    let tx = registrar.sign(now_ms() + 60_000, 1, command);
    let body = json!({"body": hex::encode(&tx.body), "signature": hex::encode(&tx.signature)});
    let answer = http.submit(&urls[0], &body, true).await?;
    ensure!(answer.body["outcome"] == "applied", "{}", answer.body);
    let height = answer.body["height"].as_u64().context("a height")?;
    let landed = format!(
        "Number(document.body.dataset.tip) >= {height} && \
         document.querySelector('tr[data-height=\"{height}\"]') !== null"
    );
    browser.wait_for(&landed, PAGE).await.context("the new block on the chain view")?;
    browser.screenshot(&shots.join("chain-live.png")).await?;

    // A block as the regulator sees it, and a party's own page.
    open(&mut browser, &format!("#/block/{height}"), "block").await?;
    browser.screenshot(&shots.join("block.png")).await?;
    let supplier = identity("t1-0");
    browser.eval("window.scfExplorer.signOut()").await?;
    let key = key_json(&supplier.key).to_string();
    browser.eval(&format!("window.scfExplorer.signIn({}, {})", js("t1-0"), js(&key))).await?;
    browser.wait_for("document.body.dataset.signedIn === 't1-0'", PAGE).await?;
    open(&mut browser, "#/party/t1-0", "party").await?;
    // Who read its records: the regulator did above (its token list, for supervision), and the
    // page shows it from this node's access log.
    let accesses = rows(&mut browser, "tr[data-access]").await?;
    let by_regulator =
        accesses.iter().any(|row| row["reader"] == "regulator" && row["purpose"] == "supervision");
    ensure!(by_regulator, "the regulator's reads of t1-0's records are shown: {accesses:?}");
    browser.screenshot(&shots.join("party.png")).await?;

    // Without a key, the private pages say so and show nothing private.
    browser.eval("window.scfExplorer.signOut()").await?;
    browser.wait_for("!document.body.dataset.signedIn", PAGE).await?;
    open(&mut browser, &format!("#/token/{root}"), "token").await?;
    let private = browser
        .eval(
            "({ error: [...document.querySelectorAll('[data-error-code]')]
                  .map(e => e.dataset.errorCode),
                tokens: document.querySelectorAll('[data-token-id]').length })",
        )
        .await?;
    ensure!(private["tokens"] == 0, "tokens shown without a key: {private}");
    ensure!(
        private["error"].as_array().is_some_and(|e| e.contains(&json!("unauthenticated"))),
        "no unauthenticated notice: {private}"
    );
    let page = text(&browser.eval("document.body.innerText").await?);
    let holder = text(&tree["token"]["holder"]);
    ensure!(!page.contains(&holder), "the holder {holder} is on the page without a key");
    browser.screenshot(&shots.join("no-key.png")).await?;
    open(&mut browser, "#/dashboard", "dashboard").await?;
    let codes = browser
        .eval("[...document.querySelectorAll('[data-error-code]')].map(e => e.dataset.errorCode)")
        .await?;
    ensure!(codes.as_array().is_some_and(|c| c.contains(&json!("unauthenticated"))), "{codes}");
    ensure!(rows(&mut browser, "tr[data-obligor]").await?.is_empty(), "figures without a key");

    let errors = page_errors(&browser);
    ensure!(errors.is_empty(), "errors in the page: {errors:?}");
    Ok(())
}

/// Goal: the explorer's signatures are the ledger's. Inside chromium, the page's own signing
/// module (`/explorer/signing.js`, on the vendored noble libraries) derives public keys, builds
/// the signed-read digest and signs digests with known keys; on the Rust side the ledger's
/// parser and verifier, the ones the node runs on every signed read (`api::auth`), accept each
/// signature (compact, low-S), and each equals libsecp256k1's RFC 6979 signature of the same key
/// and digest. Then the explorer, signed in, reads a private report from a running node: the
/// same read unsigned is refused, so the answer depends on the browser's signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browsers_signatures_verify_in_rust() -> anyhow::Result<()> {
    with_cluster("explorer-signing", 1, 0, sign_in_the_browser).await
}

async fn sign_in_the_browser(cluster: &LocalCluster) -> anyhow::Result<()> {
    let url = cluster.nodes[0].url.clone();
    // The edges of the scalar range (1 and n - 1) and two ordinary keys.
    let order_minus_one = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
    let keys = [
        SigningKey::from_bytes(&hex::decode(format!("{:064x}", 1))?)?,
        SigningKey::from_bytes(&hex::decode(order_minus_one)?)?,
        SigningKey::from_seed("explorer/signer"),
        SigningKey::from_seed("explorer/another"),
    ];
    // A digest is signed as it is: all zeros, all ones (above the group order, so reduced),
    // and two real digests.
    let digests: Vec<[u8; 32]> = vec![
        [0; 32],
        [0xff; 32],
        ledger::crypto::sha256(b"scf-ledger explorer"),
        read_request("/v1/invoices/inv-1", 1_700_000_000_000).digest(),
    ];
    // Read requests whose digests the page builds: paths with queries and escapes.
    let reads = [
        read_request("/v1/invoices/inv-1", 1_700_000_000_000_u64),
        read_request("/v1/tokens?holder=t1-0", 1_799_999_999_999),
        read_request("/v1/parties/a%20b/grants", 42),
    ];

    let mut browser = Browser::launch().await?;
    browser.navigate(&format!("{url}/")).await?;
    open(&mut browser, "#/chain", "chain").await?;
    let secrets: Vec<String> = keys.iter().map(|k| hex::encode(k.to_bytes())).collect();
    let hexes: Vec<String> = digests.iter().map(hex::encode).collect();
    let reads_json: Vec<Value> = (reads.iter())
        .map(|r| {
            json!({
                "chainId": r.chain_id,
                "nodeId": r.node_id.to_string(),
                "party": r.party,
                "method": r.method,
                "pathAndQuery": r.path_and_query,
                "nonce": r.nonce,
                "timeMs": r.time_ms.to_string(),
            })
        })
        .collect();
    let script = format!(
        "(async () => {{
            const m = await import('/explorer/signing.js');
            const secrets = {secrets};
            const digests = {digests};
            return {{
                keys: secrets.map(s => m.publicKey(s)),
                signatures: secrets.map(s => digests.map(d => m.signDigest(s, m.hexToBytes(d)))),
                reads: {reads}.map(request => m.bytesToHex(m.readRequestDigest(request))),
                nonce: m.readNonce(),
            }};
        }})()",
        secrets = json!(secrets),
        digests = json!(hexes),
        reads = Value::Array(reads_json),
    );
    let signed = browser.eval(&script).await?;

    let mut checked = 0;
    for (k, key) in keys.iter().enumerate() {
        let shown = text(&signed["keys"][k]);
        ensure!(
            shown == hex::encode(key.public_key().to_bytes()),
            "key {k}: the page derived {shown}"
        );
        let public = PublicKeyBytes::parse(&hex::decode(&shown)?)?;
        for (d, digest) in digests.iter().enumerate() {
            let signature = text(&signed["signatures"][k][d]);
            let parsed = SignatureBytes::parse(&hex::decode(&signature)?)
                .with_context(|| format!("key {k}, digest {d}: {signature}"))?;
            parsed
                .verify(digest, &public)
                .with_context(|| format!("key {k}, digest {d}: {signature} does not verify"))?;
            let other = digests[(d + 1) % digests.len()];
            ensure!(parsed.verify(&other, &public).is_err(), "key {k}: verifies another digest");
            let expected = hex::encode(key.sign_digest(digest).to_bytes());
            ensure!(
                signature == expected,
                "key {k}, digest {d}: page {signature}, libsecp256k1 {expected}"
            );
            checked += 1;
        }
    }
    ensure!(checked == keys.len() * digests.len(), "checked {checked} signatures");
    for (i, request) in reads.iter().enumerate() {
        let expected = hex::encode(request.digest());
        ensure!(text(&signed["reads"][i]) == expected, "{request:?}: {}", signed["reads"][i]);
    }
    let nonce = text(&signed["nonce"]);
    ensure!(ledger::client::valid_nonce(&nonce) && nonce.len() == 32, "the page's nonce {nonce}");

    // A regulator registered with a known key signs in and reads a report only signed readers
    // may read.
    let registrar_key = read_key_file(&cluster.registrar_key)?;
    let registrar = Identity::new(&cluster.chain_id, ledger::chain::REGISTRAR_ID, registrar_key);
    let key = &keys[2];
    let command =
        register_party("supervisor", "Supervisor", Role::Regulator, &key.public_key().to_bytes());
    let tx = registrar.sign(now_ms() + 60_000, 1, command);
    let body = json!({"body": hex::encode(&tx.body), "signature": hex::encode(&tx.signature)});
    let http = Http::new(Duration::from_secs(30));
    let answer = http.submit(&url, &body, true).await?;
    ensure!(answer.body["outcome"] == "applied", "{}", answer.body);
    let key_file = key_json(key).to_string();
    browser
        .eval(&format!("window.scfExplorer.signIn({}, {})", js("supervisor"), js(&key_file)))
        .await?;
    browser.wait_for("document.body.dataset.signedIn === 'supervisor'", PAGE).await?;
    let read = browser
        .eval(
            "(async () => {
                const { api } = await import('/explorer/api.js');
                const signed = await api('/v1/supervision/exposure');
                const unsigned = await api('/v1/supervision/exposure', { unsigned: true })
                    .then(() => 'answered', (error) => error.code);
                return { scope: signed.scope, unsigned };
            })()",
        )
        .await?;
    ensure!(read == json!({"scope": "all", "unsigned": "unauthenticated"}), "{read}");
    let errors = page_errors(&browser);
    ensure!(errors.is_empty(), "errors in the page: {errors:?}");
    Ok(())
}

/// A signed read request as the explorer test's page builds it (chain, node, party and nonce
/// fixed).
fn read_request(path_and_query: &str, time_ms: u64) -> ledger::client::ReadRequest<'_> {
    ledger::client::ReadRequest {
        chain_id: "scf-explorer-test",
        node_id: 3,
        party: "parts",
        method: "GET",
        path_and_query,
        nonce: "0123456789abcdef0123456789abcdef",
        time_ms,
        body: b"",
    }
}
