//! The test vectors in the docs, recomputed from the docs' own text, so that the docs cannot
//! drift from the code: a client written from the README alone gets the same bytes.

use ledger::client::ReadRequest;
use ledger::crypto::{SignatureBytes, SigningKey};

const README: &str = include_str!("../../../README.md");

/// The `name: value` lines between `<!-- {marker} -->` and `<!-- /{marker} -->` in the README.
fn vector(marker: &str) -> Vec<(String, String)> {
    let open = format!("<!-- {marker} -->");
    let close = format!("<!-- /{marker} -->");
    let start = README.find(&open).unwrap_or_else(|| panic!("README has no {open}"));
    let end = README.find(&close).unwrap_or_else(|| panic!("README has no {close}"));
    README[start + open.len()..end]
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    let found = fields.iter().find(|(n, _)| n == name);
    &found.unwrap_or_else(|| panic!("the vector has no {name:?}")).1
}

/// The README's signed read: its text, digest and signature follow from its inputs.
#[test]
fn the_readmes_signed_read_is_what_the_code_signs() {
    let fields = vector("signed-read-vector");
    let (method, path) = field(&fields, "request")
        .split_once(", no body")
        .and_then(|(request, _)| request.split_once(' '))
        .expect("request: METHOD PATH, no body");
    let node_id = field(&fields, "node_id").parse().expect("a node id");
    let time_ms = field(&fields, "time").parse().expect("a time");
    let request = ReadRequest {
        chain_id: field(&fields, "chain_id"),
        node_id,
        party: field(&fields, "party"),
        method,
        path_and_query: path,
        nonce: field(&fields, "nonce"),
        time_ms,
        body: b"",
    };
    let secret = hex::decode(field(&fields, "secret key")).expect("hex");
    let key = SigningKey::from_bytes(&secret).expect("a secret key");
    let digest = hex::encode(request.digest());
    let signature = hex::encode(key.sign_digest(&request.digest()).to_bytes());
    let computed = [
        ("text", request.text().replace('\n', "\\n")),
        ("digest", digest.clone()),
        ("signature", signature.clone()),
    ];
    for (name, value) in &computed {
        assert_eq!(field(&fields, name), value, "README's {name}; the code computes {value}");
    }
    // The signature is the compact, low-S form the node verifies, not DER.
    let parsed = SignatureBytes::parse(&hex::decode(&signature).expect("hex")).expect("compact");
    assert_eq!(parsed.verify(&request.digest(), &key.public_key()), Ok(()));
    assert_eq!(signature.len(), 128);
}
