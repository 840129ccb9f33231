//! The regulator's and the parties' view over HTTP: the supervision reports and the live event
//! stream, on a voter and on an observer, with their access rules.

use crate::common;

use std::time::Duration;

use api::node::NodeHandle as _;
use common::*;
use ledger::client::{self, Identity};
use ledger::crypto::SigningKey;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervision_reports_and_events_follow_the_access_rules() {
    let chain = Parties::register("supervision").await;
    let Parties { http, voter, observer, buyer, seller, bank, regulator, stranger, .. } = &chain;
    let until = valid_until_ms();
    let sign = |who: &Identity, command| chain.sign(who, command);
    let post = |body: Value, outcome: &'static str| {
        let http = http.clone();
        let url = format!("{voter}/v1/transactions");
        async move {
            let (status, answer) = http.post(&url, &body).await;
            assert_eq!((status, answer["outcome"].as_str()), (200, Some(outcome)), "{answer}");
            answer
        }
    };
    let far = until + 365 * 24 * 3_600_000;
    let line = client::grant_credit_line("line-1", "acme", "5000.00", "EUR", far);
    post(sign(bank, line), "applied").await;
    let order = client::create_purchase_order("po-1", "parts", &[("bolt", 100, "10.00")], "EUR");
    post(sign(buyer, order), "applied").await;
    let shipment = client::record_shipment("sh-1", "po-1", &[("bolt", 100)], "", [7; 32]);
    post(sign(seller, shipment), "applied").await;
    post(sign(buyer, client::confirm_delivery("sh-1")), "applied").await;
    let invoice = client::issue_invoice("inv-1", "po-1", &["sh-1"], "1000.00", far, [8; 32]);
    post(sign(seller, invoice), "applied").await;
    // The same delivered goods invoiced twice: refused, and logged with who tried.
    let again = client::issue_invoice("inv-2", "po-1", &["sh-1"], "1000.00", far, [9; 32]);
    post(sign(seller, again), "rejected").await;
    let maturity = now_ms() + 30 * 24 * 3_600_000;
    let accepted = post(sign(buyer, client::accept_invoice("inv-1", maturity)), "applied").await;
    let token = accepted["created_ids"][0].as_str().expect("a token id").to_owned();
    let offer = client::offer_token(&token, "bank", "0.05", now_ms() + 3_600_000);
    let offered = post(sign(seller, offer), "applied").await;
    let offer_id = offered["created_ids"][0].as_str().expect("an offer id").to_owned();
    post(sign(bank, client::discount_token(&offer_id, "0.04")), "applied").await;
    // The observer shares the leader's state: every block is on it before the reads start.
    let height = chain.nodes[0].node.status().await.expect("the node runs").height;
    let read = |base: &str, path: &str, who: Option<&Identity>| {
        let http = http.clone();
        let (base, path, who) = (base.to_owned(), as_reader(path, who), who.cloned());
        async move {
            let headers = signed(&http, &base, who.as_ref(), &path).await;
            http.get_with(&format!("{base}{path}"), &headers).await
        }
    };
    // A sale's terms are shown with the lineage to its bank (now the holder; the seller no
    // longer holds it) and to regulators, not to the obligor.
    let lineage = format!("/v1/tokens/{token}/lineage");
    for (who, sales) in [(bank, 1), (regulator, 1), (buyer, 0)] {
        let (status, answer) = read(voter, &lineage, Some(who)).await;
        assert_eq!(status, 200, "{answer}");
        let financings = answer["financings"].as_array().expect("financings");
        assert_eq!(financings.len(), sales, "{}: {answer}", who.party_id);
        if sales == 1 {
            let sale = &financings[0];
            assert_eq!((&sale["bank"], &sale["face_value"]), (&json!("bank"), &json!("1000.00")));
        }
    }
    // The offer and the financing have routes of their own, scoped alike: the seller, the bank
    // and regulators see them; the obligor and a stranger do not.
    let offer_path = format!("/v1/offers/{offer_id}");
    for who in [seller, bank, regulator] {
        let (status, answer) = read(observer, &offer_path, Some(who)).await;
        assert_eq!(status, 200, "{}: {answer}", who.party_id);
        assert_eq!(
            (answer["status"].as_str(), answer["holder"].as_str()),
            (Some("discounted"), Some("parts"))
        );
        assert_eq!(answer["lapsed"], false);
    }
    for who in [buyer, stranger] {
        let (status, answer) = read(observer, &offer_path, Some(who)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
    }
    let (status, _) = read(observer, &offer_path, None).await;
    assert_eq!(status, 401);
    let by_token = format!("/v1/financings?token={token}");
    for (who, count) in [(seller, 1), (bank, 1), (regulator, 1), (buyer, 0), (stranger, 0)] {
        let (status, answer) = read(voter, &by_token, Some(who)).await;
        assert_eq!(status, 200, "{answer}");
        let financings = answer["financings"].as_array().expect("financings");
        assert_eq!(financings.len(), count, "{}: {answer}", who.party_id);
        if count == 1 {
            assert_eq!(
                (&financings[0]["offer_id"], &financings[0]["days"]),
                (&json!(offer_id), &financings[0]["days"])
            );
            assert!(financings[0]["proceeds"].is_string(), "{answer}");
        }
    }
    for (path, count) in
        [("/v1/financings?bank=bank", 1), ("/v1/financings?seller=acme", 0), ("/v1/financings", 1)]
    {
        let (status, answer) = read(voter, path, Some(regulator)).await;
        assert_eq!(
            (status, answer["financings"].as_array().map(Vec::len)),
            (200, Some(count)),
            "{path}: {answer}"
        );
    }
    for bad in ["/v1/financings?holder=parts", "/v1/financings?bank="] {
        let (status, answer) = read(voter, bad, Some(regulator)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")), "{bad}");
    }
    for base in [&voter, &observer] {
        // The regulator sees the market.
        let (status, exposure) = read(base, "/v1/supervision/exposure", Some(regulator)).await;
        assert_eq!(status, 200, "{exposure}");
        assert_eq!(
            (exposure["scope"].as_str(), exposure["height"].as_u64()),
            (Some("all"), Some(height))
        );
        let row = &exposure["obligors"][0];
        assert_eq!(
            (row["obligor"].as_str(), row["unsettled"].as_str(), row["credit_limit"].as_str()),
            (Some("acme"), Some("1000.00"), Some("5000.00")),
            "{exposure}"
        );
        assert_eq!(
            (row["credit_used"].as_str(), row["holders"].as_u64()),
            (Some("0.2000"), Some(1))
        );
        let (_, financing) = read(base, "/v1/supervision/financing", Some(regulator)).await;
        let row = &financing["banks"][0];
        assert_eq!(
            (row["bank"].as_str(), row["count"].as_u64(), row["average_rate"].as_str()),
            (Some("bank"), Some(1), Some("0.04")),
            "{financing}"
        );
        let (_, concentration) =
            read(base, "/v1/supervision/concentration?top=5", Some(regulator)).await;
        assert_eq!(
            concentration["currencies"][0]["banks"][0]["share"], "1.0000",
            "{concentration}"
        );
        let (_, ladder) = read(base, "/v1/supervision/maturity?weeks=8", Some(regulator)).await;
        let buckets = ladder["currencies"][0]["buckets"].as_array().expect("buckets").clone();
        assert_eq!(buckets.len(), 8, "{ladder}");
        let due: Vec<&str> = buckets.iter().filter_map(|b| b["face_value"].as_str()).collect();
        assert!(due.contains(&"1000.00"), "{ladder}");
        let (_, log) = read(base, "/v1/supervision/rejections", Some(regulator)).await;
        assert_eq!(log["total"], 1, "{log}");
        let attempt = &log["recent"][0];
        assert_eq!(
            (attempt["signer"].as_str(), attempt["kind"].as_str(), attempt["code"].as_str()),
            (Some("parts"), Some("issue_invoice"), Some("already_invoiced")),
            "{log}"
        );
        assert_eq!(attempt["signature_verified"], true);

        // A party sees its own rows only; the stranger has none.
        let (_, own) = read(base, "/v1/supervision/exposure", Some(buyer)).await;
        assert_eq!(
            (own["scope"].as_str(), own["obligors"].as_array().map(Vec::len)),
            (Some("own"), Some(1))
        );
        let (_, own) = read(base, "/v1/supervision/exposure", Some(stranger)).await;
        assert_eq!(own["obligors"].as_array().map(Vec::len), Some(0), "{own}");
        let (_, own) = read(base, "/v1/supervision/rejections", Some(stranger)).await;
        assert_eq!(own["total"], 0, "{own}");
        let (_, own) = read(base, "/v1/supervision/concentration", Some(bank)).await;
        assert_eq!(own["currencies"][0]["banks"][0]["share"], Value::Null, "{own}");

        // Unsigned, unknown, malformed.
        let (status, answer) = read(base, "/v1/supervision/exposure", None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")));
        let (status, _) = read(base, "/v1/supervision/risk", Some(regulator)).await;
        assert_eq!(status, 404);
        let (status, answer) =
            read(base, "/v1/supervision/maturity?weeks=999", Some(regulator)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")));
    }

    // The event stream on the observer, from the first block.
    let stream = |who: Option<&Identity>, path: &str, extra: Vec<(&'static str, String)>| {
        let http = http.clone();
        let (path, who) = (as_reader(path, who), who.cloned());
        let url = format!("{observer}{path}");
        let observer = observer.to_owned();
        async move {
            let mut headers = signed(&http, &observer, who.as_ref(), &path).await;
            headers.extend(extra);
            let (status, reader) = http.events(&url, &headers).await;
            assert_eq!(status, 200, "{url}");
            reader
        }
    };
    let to_tip = |e: &Event| e.name == "block" && e.data["height"] == height;
    let all =
        stream(Some(regulator), "/v1/events?from=1", Vec::new()).await.until(WAIT, to_tip).await;
    let txs: Vec<&Event> = all.iter().filter(|e| e.name == "tx").collect();
    let blocks: Vec<&Event> = all.iter().filter(|e| e.name == "block").collect();
    assert_eq!(blocks.len() as u64, height, "one block event per block");
    let in_blocks: u64 = blocks.iter().map(|b| b.data["tx_count"].as_u64().unwrap()).sum();
    assert_eq!(txs.len() as u64, in_blocks, "a regulator sees every transaction");
    let rejected = txs.iter().find(|e| e.data["outcome"] == "rejected").expect("the refusal");
    assert_eq!(rejected.data["reason"]["code"], "already_invoiced");
    assert_eq!(rejected.data["signer"], "parts");
    // Each block's events end with its block event.
    for (event, next) in all.iter().zip(all.iter().skip(1)) {
        if event.name == "tx" {
            let h = event.data["height"].as_u64().unwrap();
            assert!(next.name == "tx" || next.data["height"] == h, "{event:?} then {next:?}");
        }
    }

    // A party sees the transactions that involve it; unsigned, only blocks.
    let theirs =
        stream(Some(stranger), "/v1/events?from=1", Vec::new()).await.until(WAIT, to_tip).await;
    let seen: Vec<&Event> = theirs.iter().filter(|e| e.name == "tx").collect();
    assert_eq!(seen.len(), 1, "only its own registration: {seen:?}");
    assert_eq!(seen[0].data["kind"], "register_party");
    let public = stream(None, "/v1/events?from=1", Vec::new()).await.until(WAIT, to_tip).await;
    assert!(public.iter().all(|e| e.name == "block"), "{public:?}");
    assert_eq!(public.len() as u64, height);
    // Filters: the bank's view of discounts only.
    let path = "/v1/events?from=1&kind=discount_token";
    let discounts = stream(Some(bank), path, Vec::new()).await.until(WAIT, to_tip).await;
    let kinds: Vec<&Value> =
        discounts.iter().filter(|e| e.name == "tx").map(|e| &e.data["kind"]).collect();
    assert_eq!(kinds, ["discount_token"]);

    // Resuming after an event, a transaction's or a block's, gives exactly what follows it.
    let after_tx = all.iter().position(|e| e.name == "tx" && e.data["height"].as_u64() > Some(3));
    let after_block = all.iter().position(|e| e.name == "block" && e.data["height"] == 5);
    for cut in [after_tx.expect("a tx event"), after_block.expect("block 5")] {
        let resumed =
            stream(Some(regulator), "/v1/events", vec![("last-event-id", all[cut].id.clone())])
                .await
                .until(WAIT, to_tip)
                .await;
        assert_eq!(resumed, all[cut + 1..].to_vec(), "after {:?}", all[cut]);
    }
    for bad in ["5:x", "x", "5:"] {
        let headers = vec![("last-event-id", bad.to_owned())];
        let (status, _) = http.events(&format!("{observer}/v1/events"), &headers).await;
        assert_eq!(status, 400, "Last-Event-ID {bad}");
    }
    // Only a regulator filters on another party.
    let path = "/v1/events?party=acme";
    let headers = signed(http, observer, Some(seller), path).await;
    let (status, _) = http.events(&format!("{observer}{path}"), &headers).await;
    assert_eq!(status, 403);
    assert!(all.iter().filter(|e| e.name == "tx").all(|e| e.data["parties"].is_array()));
    assert!(theirs.iter().all(|e| e.data.get("parties").is_none()), "{theirs:?}");

    // Live: a stream opened now carries the next transaction as it lands.
    let mut live = stream(Some(seller), "/v1/events", Vec::new()).await;
    let grant = client::grant_access("bank", ledger::pb::AccessScope::Receivables, far);
    let granted = post(sign(seller, grant), "applied").await;
    let event = live.next(WAIT).await.expect("the live event");
    assert_eq!((event.name.as_str(), &event.data["tx_hash"]), ("tx", &granted["tx_hash"]));
    // The observer that sent it logged the seller's read of it first, in the seller's own log;
    // not in the bank's, which would tell the bank of each of the seller's moves as it happens.
    let record = format!("transaction:{}", granted["tx_hash"].as_str().expect("a hash"));
    let entry_of = |log: &Value| {
        let entries = log["entries"].as_array().expect("entries");
        entries.iter().find(|e| e["records"] == json!([record])).cloned()
    };
    let (status, log) = read(observer, "/v1/access-log", Some(seller)).await;
    assert_eq!(status, 200, "{log}");
    let streamed = entry_of(&log).unwrap_or_else(|| panic!("no entry for {record}: {log}"));
    assert_eq!((&streamed["reader"], &streamed["owners"]), (&json!("parts"), &json!(["parts"])));
    assert!(streamed["path"].as_str().is_some_and(|p| p.starts_with("/v1/events")), "{streamed}");
    let (status, log) = read(observer, "/v1/access-log", Some(bank)).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(entry_of(&log), None, "{log}");
    // A regulator's stream of one party's transactions is a read of every party they involve.
    let mut focused = stream(Some(regulator), "/v1/events?party=parts", Vec::new()).await;
    let trade = client::grant_access("bank", ledger::pb::AccessScope::Trade, far);
    let granted = post(sign(seller, trade), "applied").await;
    focused.until(WAIT, |e| e.data["tx_hash"] == granted["tx_hash"]).await;
    let record = format!("transaction:{}", granted["tx_hash"].as_str().expect("a hash"));
    for who in [seller, bank] {
        let (status, log) = read(observer, "/v1/access-log", Some(who)).await;
        assert_eq!(status, 200, "{log}");
        let entries = log["entries"].as_array().expect("entries");
        let streamed =
            entries.iter().find(|e| e["records"] == json!([record]) && e["reader"] == "reg");
        let streamed = streamed.unwrap_or_else(|| panic!("{}: no {record}: {log}", who.party_id));
        assert_eq!(
            (&streamed["owners"], &streamed["purpose"]),
            (&json!([who.party_id]), &json!("supervision"))
        );
    }

    // A stranger's doomed settlement of the token does not tell it who holds or owes it.
    let mut watching = stream(Some(regulator), "/v1/events", Vec::new()).await;
    let mut own = stream(Some(stranger), "/v1/events", Vec::new()).await;
    let probe = post(sign(stranger, client::settle_token(&token, "probe")), "rejected").await;
    let seen = own.until(WAIT, |e| e.name == "tx").await;
    let event = seen.last().unwrap();
    assert_eq!(event.data["tx_hash"], probe["tx_hash"]);
    assert!(event.data.get("parties").is_none(), "{event:?}");
    let seen = watching.until(WAIT, |e| e.data["tx_hash"] == probe["tx_hash"]).await;
    assert_eq!(seen.last().unwrap().data["parties"], json!(["stranger"]));

    // A reader whose key changes is no longer the one who signed: its stream ends, before the
    // rotation's own event.
    let new_key = SigningKey::from_seed("supervision/stranger/2");
    let rotation = client::rotate_key(&new_key.public_key().to_bytes());
    let rotated = post(sign(stranger, rotation), "applied").await;
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(event) = own.next(Duration::from_secs(60)).await {
            assert_ne!(event.data["tx_hash"], rotated["tx_hash"], "sent after the rotation");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its reader's key");
}

/// The count of `scf_supervision_reports_total` with `result` on `base`'s `/metrics`.
async fn reports_counted(http: &Http, base: &str, result: &str) -> u64 {
    counted(http, base, &format!("scf_supervision_reports_total{{result=\"{result}\"}}")).await
}

/// The value of the counter `series` (with its labels) at `base`, 0 before it is counted.
async fn counted(http: &Http, base: &str, series: &str) -> u64 {
    let (status, metrics) = http.get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{metrics}");
    let series = format!("{series} ");
    let text = metrics.as_str().expect("the metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.parse().expect("a count"))
}

// Goal: a report asked for again at the same height is taken from the per-height cache, not
// computed again, while each read is still authenticated and logged; a party's own rows and
// the whole market are separate entries, a parameter the report does not take makes no new
// one, and the next block makes every report be computed afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_computed_once_per_height_and_every_read_is_logged() {
    let chain = Parties::register("report-cache").await;
    let Parties { http, voter, buyer, bank, regulator, .. } = &chain;
    let read = |path, who| chain.read(voter, path, Some(who));
    let counts = || async {
        let cached = reports_counted(http, voter, "cached").await;
        (reports_counted(http, voter, "computed").await, cached)
    };
    let logged = || async {
        let (status, answer) = http.get(&format!("{voter}/v1/status")).await;
        assert_eq!(status, 200, "{answer}");
        answer["access_log"]["length"].as_u64().expect("the access log's length")
    };
    let (computed, cached) = counts().await;
    let entries = logged().await;

    let (status, first) = read("/v1/supervision/exposure", regulator).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = read("/v1/supervision/exposure?top=5", regulator).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second, "the same figures at the same height");
    let (status, own) = read("/v1/supervision/exposure", buyer).await;
    assert_eq!((status, &own["scope"]), (200, &json!("own")), "{own}");
    assert_eq!(
        counts().await,
        (computed + 2, cached + 1),
        "the whole market once, the buyer's once"
    );
    assert_eq!(logged().await, entries + 3, "a cached answer is logged like a computed one");
    // A refused read costs no report.
    let (status, _) = read("/v1/supervision/exposure?weeks=x", regulator).await;
    assert_eq!(status, 400);
    assert_eq!(counts().await, (computed + 2, cached + 1));
    // The parameters a report takes are its own entries: each new one is computed.
    for path in [
        "/v1/supervision/concentration?top=1",
        "/v1/supervision/concentration?top=2",
        "/v1/supervision/concentration?top=1",
        "/v1/supervision/rejections?code=a",
        "/v1/supervision/rejections?code=b",
        "/v1/supervision/rejections?code=a",
    ] {
        let (status, answer) = read(path, regulator).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert_eq!(counts().await, (computed + 6, cached + 3));
    let (computed, cached) = (computed + 4, cached + 2);

    let far = valid_until_ms() + 365 * 24 * 3_600_000;
    let line = client::grant_credit_line("line-9", "acme", "5000.00", "EUR", far);
    let answer = chain.post(bank, line, "applied").await;
    let (status, after) = read("/v1/supervision/exposure", regulator).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["height"], answer["height"], "computed at the new block: {after}");
    assert_eq!(counts().await, (computed + 3, cached + 1));
}

// Goal: the concentration and financing reports share one set of financing totals per height,
// for every scope and parameter; after new blocks they are advanced by those blocks'
// financings, not scanned again, and the figures include them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn financing_reports_advance_their_totals_by_the_new_blocks() {
    let chain = Parties::register("financing-totals").await;
    let Parties { http, voter, buyer, seller, bank, regulator, .. } = &chain;
    let read = |path, who| chain.read(voter, path, Some(who));
    let totals = || async {
        let how = |how: &'static str| {
            let series = format!("scf_supervision_financing_totals_total{{how=\"{how}\"}}");
            async move { counted(http, voter, &series).await }
        };
        (how("scanned").await, how("advanced").await, how("kept").await)
    };
    let (status, before) = read("/v1/supervision/financing", regulator).await;
    assert_eq!((status, &before["banks"]), (200, &json!([])), "{before}");
    for (path, who) in [
        ("/v1/supervision/concentration?top=3", regulator),
        ("/v1/supervision/concentration", bank),
        ("/v1/supervision/financing", seller),
    ] {
        assert_eq!(read(path, who).await.0, 200, "{path}");
    }
    assert_eq!(totals().await, (1, 0, 3), "one scan, then the same totals");

    let far = valid_until_ms() + 365 * 24 * 3_600_000;
    chain
        .post(bank, client::grant_credit_line("line-1", "acme", "5000.00", "EUR", far), "applied")
        .await;
    let order = client::create_purchase_order("po-1", "parts", &[("bolt", 100, "10.00")], "EUR");
    chain.post(buyer, order, "applied").await;
    let shipment = client::record_shipment("sh-1", "po-1", &[("bolt", 100)], "", [7; 32]);
    chain.post(seller, shipment, "applied").await;
    chain.post(buyer, client::confirm_delivery("sh-1"), "applied").await;
    let invoice = client::issue_invoice("inv-1", "po-1", &["sh-1"], "1000.00", far, [8; 32]);
    chain.post(seller, invoice, "applied").await;
    let maturity = now_ms() + 30 * 24 * 3_600_000;
    let accepted = chain.post(buyer, client::accept_invoice("inv-1", maturity), "applied").await;
    let token = accepted["created_ids"][0].as_str().expect("a token id").to_owned();
    let offer = client::offer_token(&token, "bank", "0.05", now_ms() + 3_600_000);
    let offered = chain.post(seller, offer, "applied").await;
    let offer_id = offered["created_ids"][0].as_str().expect("an offer id").to_owned();
    let discounted = chain.post(bank, client::discount_token(&offer_id, "0.04"), "applied").await;

    let (status, after) = read("/v1/supervision/financing", regulator).await;
    assert_eq!(status, 200, "{after}");
    assert!(after["height"].as_u64() >= discounted["height"].as_u64(), "{after}");
    let banks = after["banks"].as_array().expect("banks");
    assert_eq!(banks.len(), 1, "{after}");
    assert_eq!((&banks[0]["bank"], &banks[0]["count"]), (&json!("bank"), &json!(1)), "{after}");
    let (status, shares) = read("/v1/supervision/concentration", bank).await;
    assert_eq!(status, 200, "{shares}");
    assert_eq!(shares["currencies"][0]["banks"][0]["party"], "bank", "{shares}");
    let (scanned, advanced, _) = totals().await;
    assert_eq!((scanned, advanced), (1, 1), "advanced by the blocks since, not scanned");
}
