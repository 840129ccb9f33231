//! Signed read requests: who is asking, proved with the party's ledger key.
//!
//! A private read carries three headers:
//! - `x-scf-party`: the reader's party id;
//! - `x-scf-time`: the reader's clock, ms since the Unix epoch (within [`CLOCK_SKEW_MS`] of the
//!   node's);
//! - `x-scf-signature`: hex of the 64-byte compact secp256k1 signature (low-S), by the party's
//!   current key, over [`request_digest`] (`ledger::client::read_request_digest`, shared with
//!   clients): SHA-256 of
//!   `"scf-read-v1\n" METHOD "\n" PATH_AND_QUERY "\n" TIME "\n" hex(SHA-256(BODY))`.
//!
//! Who may read what is [`may_read`]: the record's own parties, a party they granted access of
//! the record's scope (`GrantAccess` on the ledger, unexpired), and regulators.

use ledger::crypto::{PublicKeyBytes, SignatureBytes};
use ledger::pb::{AccessScope, Role};
use ledger::{StateStore, query};
use warp::http::StatusCode;

use crate::error::ApiError;

pub use ledger::client::{
    PARTY_HEADER, SIGNATURE_HEADER, TIME_HEADER, read_request_digest as request_digest,
    sign_read_request as sign_request,
};

/// How far the reader's clock may be from the node's.
pub const CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// This node's clock, ms since the Unix epoch: what a signed request's time is checked against.
pub fn now_ms() -> u64 {
    let since_epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// The headers of a request, as the routes received them.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `x-scf-party`.
    pub party: Option<String>,
    /// `x-scf-time`.
    pub time: Option<String>,
    /// `x-scf-signature`.
    pub signature: Option<String>,
}

impl Credentials {
    /// Whether the request carries any of the three headers: then it must authenticate (a
    /// bad signature is a 401, not a silent public answer).
    pub fn present(&self) -> bool {
        self.party.is_some() || self.time.is_some() || self.signature.is_some()
    }
}

/// An authenticated reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Its party id.
    pub party: String,
    /// Its role on the ledger.
    pub role: Role,
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// Checks a signed request against the ledger state: the party exists and the signature by its
/// current key covers this method, path, time and body.
pub fn authenticate(
    state: &dyn StateStore,
    credentials: &Credentials,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<Reader, ApiError> {
    let (Some(party), Some(time), Some(signature)) =
        (&credentials.party, &credentials.time, &credentials.signature)
    else {
        return Err(unauthorized(
            "unauthenticated",
            "this read needs a signed request (x-scf-party, x-scf-time, x-scf-signature; see the \
             README)",
        ));
    };
    let time_ms: u64 = time
        .parse()
        .map_err(|_| unauthorized("bad_signature", "x-scf-time is not a number of ms"))?;
    if time_ms.abs_diff(now_ms) > CLOCK_SKEW_MS {
        return Err(unauthorized(
            "stale_request",
            format!("x-scf-time is more than {} s from this node's clock", CLOCK_SKEW_MS / 1000),
        ));
    }
    let signature = hex::decode(signature)
        .ok()
        .and_then(|bytes| SignatureBytes::parse(&bytes).ok())
        .ok_or_else(|| unauthorized("bad_signature", "x-scf-signature is not a signature"))?;
    let record = query::party(state, party)?.ok_or_else(|| {
        unauthorized("unknown_party", format!("no party {party:?} on this chain"))
    })?;
    let key = PublicKeyBytes::parse(&record.public_key).map_err(ApiError::storage)?;
    let digest = request_digest(method, path_and_query, time_ms, body);
    signature
        .verify(&digest, &key)
        .map_err(|_| unauthorized("bad_signature", "the signature does not verify"))?;
    Ok(Reader {
        party: record.party_id,
        role: Role::try_from(record.role).unwrap_or(Role::Unspecified),
    })
}

/// How a reader may read a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A regulator.
    Regulator,
    /// One of the record's own parties.
    Party,
    /// Under a grant by `owner`.
    Grantee {
        /// The party whose grant allows the read.
        owner: String,
    },
}

/// Whether `reader` may read a record whose own parties are `owners`, under `scope`.
pub fn may_read(
    state: &dyn StateStore,
    reader: &Reader,
    owners: &[&str],
    scope: AccessScope,
) -> Result<Option<Access>, ApiError> {
    if reader.role == Role::Regulator {
        return Ok(Some(Access::Regulator));
    }
    if owners.contains(&reader.party.as_str()) {
        return Ok(Some(Access::Party));
    }
    for owner in owners.iter().filter(|o| !o.is_empty()) {
        let granted = query::has_access(state, owner, &reader.party, scope)?;
        if granted {
            return Ok(Some(Access::Grantee { owner: (*owner).to_owned() }));
        }
    }
    Ok(None)
}

/// The answer to a read of a record that does not exist or that the reader may not read: the
/// same for both, so that a stranger learns nothing, not even whether an id is taken.
pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "no record here that you may read: it does not exist, or you are not one of its parties, \
         a grantee of one of them, or a regulator",
    )
}
