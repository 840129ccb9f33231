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

/// The assets under `/explorer/`: (file name, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../explorer/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../explorer/app.js")),
    ("secp256k1.js", "text/javascript; charset=utf-8", include_bytes!("../explorer/secp256k1.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../explorer/style.css")),
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
