//! `docs/openapi.json` and `docs/openapi-admin.json` are true: each lists exactly the routes its
//! listener declares (`api::routes::ROUTES`, `api::admin::ADMIN_ROUTES`), each listener serves
//! its own (`/v1/openapi.json`, `/v1/admin/openapi.json`), every
//! documented route is served on its listener with a documented status and the error shape, and
//! the methods a path does not document are answered 405.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// The path template with its parameters filled in, and a query where one is required.
fn concrete(path: &str, admin: bool) -> String {
    let path = path
        .replace("{hash}", &"00".repeat(32))
        .replace("{height}", "1")
        .replace("{id}", if admin { "99" } else { "nobody" })
        .replace("{report}", "exposure")
        .replace("{file}", "app.js");
    match path.as_str() {
        "/v1/tokens" => format!("{path}?holder=nobody"),
        // A good request opens a stream that never ends; a bad one is answered at once.
        "/v1/events" => format!("{path}?from=never"),
        _ => path,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_server() {
    let nodes = start_memory(0).await;
    let http = Http::default();
    let public = format!("http://{}", nodes[0].http_address);
    let admin = format!("http://{}", nodes[0].admin_address);
    eventually(Duration::from_secs(30), "a leader", || async {
        let (_, status) = http.get(&format!("{public}/v1/status")).await;
        (status["role"] == "leader").then_some(())
    })
    .await;

    // Each listener serves its own document, which lists exactly its declared routes.
    let public_doc: Value = serde_json::from_str(api::routes::OPENAPI).expect("JSON");
    let admin_doc: Value = serde_json::from_str(api::admin::ADMIN_OPENAPI).expect("JSON");
    for (doc, base, served_at, routes) in [
        (&public_doc, &public, "/v1/openapi.json", api::routes::ROUTES),
        (&admin_doc, &admin, "/v1/admin/openapi.json", api::admin::ADMIN_ROUTES),
    ] {
        assert_eq!(doc["openapi"], "3.1.0");
        let (status, served) = http.get(&format!("{base}{served_at}")).await;
        assert_eq!((status, &served), (200, doc));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method.to_lowercase()).is_some() {
                    documented.insert((method, path.as_str()));
                }
            }
        }
        let declared: BTreeSet<(&str, &str)> = routes.iter().copied().collect();
        assert_eq!(documented, declared, "{served_at} and the declared routes differ");
    }
    // Every $ref resolves in its own document.
    for doc in [&public_doc, &admin_doc] {
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = &reference[..reference.find('"').unwrap()];
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
    }

    for (on_admin, doc) in [(false, &public_doc), (true, &admin_doc)] {
        for (path, item) in doc["paths"].as_object().unwrap() {
            let base = if on_admin { &admin } else { &public };
            let url = format!("{base}{}", concrete(path, on_admin));
            for method in METHODS {
                let body = if method == "GET" { Vec::new() } else { b"{}".to_vec() };
                let (status, answer, headers) = http.raw(method, &url, body).await;
                match item.get(method.to_lowercase()) {
                    Some(operation) => {
                        assert_ne!(answer["error"]["code"], "no_such_route", "{method} {path}");
                        let responses = &operation["responses"];
                        assert!(
                            responses.get(status.to_string()).is_some(),
                            "{method} {path} answered {status}, which the document does not list: \
                         {answer}"
                        );
                        if status >= 400 {
                            assert!(
                                answer["error"]["code"].is_string()
                                    && answer["error"]["message"].is_string(),
                                "{method} {path}: {answer}"
                            );
                        }
                    }
                    None => {
                        assert_eq!(
                            (status, answer["error"]["code"].as_str()),
                            (405, Some("method_not_allowed")),
                            "{method} {path} is not documented"
                        );
                        // The Allow header lists exactly the methods the document gives the path.
                        let mut documented: Vec<String> = (["get", "post", "put", "delete"].iter())
                            .filter(|m| item.get(**m).is_some())
                            .map(|m| m.to_uppercase())
                            .collect();
                        documented.sort();
                        let allow = headers.get("allow").and_then(|v| v.to_str().ok());
                        let mut allowed: Vec<String> = (allow.unwrap_or_default().split(", "))
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                            .collect();
                        allowed.sort();
                        assert_eq!(allowed, documented, "{method} {path}: Allow {allow:?}");
                    }
                }
            }
            // Each listener serves only its own routes.
            let other = if on_admin { &public } else { &admin };
            let (status, answer, _) =
                http.raw("GET", &format!("{other}{}", concrete(path, on_admin)), Vec::new()).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("no_such_route")));
        }
    }
}
