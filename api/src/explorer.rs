//! The web explorer, served by every node at `/`: static HTML, CSS and JavaScript compiled into
//! the binary (`api/explorer/`), with no build step and nothing fetched from elsewhere. The
//! browser reads the same JSON API as any client and signs private reads itself with a key the
//! user loads into the page (the key never leaves it).
//!
//! Every asset is sent with a Content-Security-Policy that allows only this node's own scripts,
//! styles and API, so that data shown by the explorer can never run as code.

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use crate::error::ApiError;

/// The policy every explorer asset is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// JavaScript's content type.
const JS: &str = "text/javascript; charset=utf-8";

/// The assets under `/explorer/`: (file name, content type, bytes). Names are one path segment:
/// the router serves `/explorer/{file}` only, so the vendored libraries, kept in
/// `api/explorer/vendor/` with their manifest, are served under flat names that their imports
/// use (`scripts/vendor-explorer.sh` writes them so). The ES modules import each other by these
/// relative names; a test below checks that every import names an asset.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../explorer/index.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../explorer/style.css")),
    // The entry point (router, search, sign-in) and one module per page.
    ("app.js", JS, include_bytes!("../explorer/app.js")),
    ("chain.js", JS, include_bytes!("../explorer/chain.js")),
    ("block.js", JS, include_bytes!("../explorer/block.js")),
    ("token.js", JS, include_bytes!("../explorer/token.js")),
    ("party.js", JS, include_bytes!("../explorer/party.js")),
    ("dashboard.js", JS, include_bytes!("../explorer/dashboard.js")),
    // What the pages share.
    ("dom.js", JS, include_bytes!("../explorer/dom.js")),
    ("format.js", JS, include_bytes!("../explorer/format.js")),
    ("ui.js", JS, include_bytes!("../explorer/ui.js")),
    ("live.js", JS, include_bytes!("../explorer/live.js")),
    ("api.js", JS, include_bytes!("../explorer/api.js")),
    ("signing.js", JS, include_bytes!("../explorer/signing.js")),
    // Vendored from npm (api/explorer/vendor/manifest.json pins versions and integrity).
    ("noble-secp256k1.js", JS, include_bytes!("../explorer/vendor/noble-secp256k1.js")),
    ("noble-hashes-sha2.js", JS, include_bytes!("../explorer/vendor/noble-hashes-sha2.js")),
    ("noble-hashes-hmac.js", JS, include_bytes!("../explorer/vendor/noble-hashes-hmac.js")),
    ("noble-hashes-_md.js", JS, include_bytes!("../explorer/vendor/noble-hashes-_md.js")),
    ("noble-hashes-_u64.js", JS, include_bytes!("../explorer/vendor/noble-hashes-_u64.js")),
    ("noble-hashes-utils.js", JS, include_bytes!("../explorer/vendor/noble-hashes-utils.js")),
];

/// The asset named `name` (`index.html` for `/`), or a 404.
pub fn asset(name: &str) -> Result<Response<Bytes>, ApiError> {
    let (_, content_type, bytes) =
        ASSETS.iter().find(|(file, _, _)| *file == name).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no explorer file {name:?}"))
        })?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", *content_type)
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        // Embedded in the binary: a new build may change them, so always revalidate.
        .header("cache-control", "no-cache")
        .body(Bytes::from_static(bytes))
        .expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relative module specifiers (`from './x.js'`, `import('./x.js')`) in `text`.
    fn relative_imports(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for quote in ['\'', '"'] {
            let mut rest = text;
            while let Some(at) = rest.find(&format!("{quote}./")) {
                let tail = &rest[at + 1..];
                let end = tail.find(quote).unwrap_or(tail.len());
                let before = rest[..at].trim_end();
                if before.ends_with("from") || before.ends_with("import") || before.ends_with('(') {
                    found.push(tail[..end].to_owned());
                }
                rest = &tail[end..];
            }
        }
        found
    }

    /// Goal: every module the explorer imports is served. A relative import resolves against
    /// `/explorer/`, so it must be `./NAME` with NAME in [`ASSETS`]; a path with a directory
    /// in it could not be routed, and a missing file would fail the page at load.
    #[test]
    fn every_import_names_a_served_asset() {
        let mut imports = 0;
        for (name, content_type, bytes) in ASSETS {
            if *content_type != JS {
                continue;
            }
            let text = std::str::from_utf8(bytes).expect("assets are UTF-8");
            for specifier in relative_imports(text) {
                let target = specifier.strip_prefix("./").expect("relative");
                assert!(!target.contains('/'), "{name} imports {specifier}: not one path segment");
                assert!(
                    ASSETS.iter().any(|(file, _, _)| *file == target),
                    "{name} imports {specifier}, which is not served"
                );
                imports += 1;
            }
        }
        // app.js alone imports ten modules: a scanner that found nothing would pass vacuously.
        assert!(imports > 30, "only {imports} imports found");
    }

    /// Goal: each asset is served with its content type and the CSP, and anything else is a
    /// 404.
    #[test]
    fn assets_are_served_under_the_policy() {
        for (name, content_type, bytes) in ASSETS {
            let response = asset(name).expect("listed");
            assert_eq!(response.headers()["content-type"], *content_type);
            assert_eq!(response.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert_eq!(response.body().as_ref(), *bytes);
        }
        assert!(asset("secp256k1.js").is_err());
        assert!(asset("vendor/noble-secp256k1.js").is_err());
    }
}
