//! Signed read requests: who is asking, proved with the party's ledger key, for one request to
//! this node, once.
//!
//! A private read carries five headers ([`READ_HEADERS`]):
//! - `x-scf-party`: the reader's party id;
//! - `x-scf-time`: the reader's clock, ms since the Unix epoch (within [`CLOCK_SKEW_MS`] of the
//!   node's);
//! - `x-scf-nonce`: 16 to 64 letters, digits, `-` or `_`, never used before by this party at
//!   this node (a random 128-bit value in hex, say);
//! - `x-scf-node`: the id of the node the request is signed for (this node's `node_id`);
//! - `x-scf-signature`: hex of the 64-byte compact secp256k1 signature (low-S), by the party's
//!   current key, over [`ReadRequest::digest`] (`ledger::client`, shared with clients), which
//!   binds the chain id, the node id, the party, the method, the path with its query, the
//!   nonce, the time and the body.
//!
//! So a captured request cannot be replayed: not at another node (the node id differs), not at
//! another chain, not with another path, and not at this node, which remembers every nonce it
//! accepted for as long as the request's time is within the window ([`Nonces`]).
//!
//! Who may read what is [`may_read`]: the record's own parties, a party they granted access of
//! the record's scope (`GrantAccess` on the ledger, unexpired), and regulators.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use ledger::crypto::{PublicKeyBytes, SignatureBytes};
use ledger::pb::{AccessScope, Role};
use ledger::{StateStore, query};
use warp::http::StatusCode;

use crate::error::ApiError;

pub use ledger::client::{
    NODE_HEADER, NONCE_HEADER, PARTY_HEADER, READ_HEADERS, ReadRequest, SIGNATURE_HEADER,
    TIME_HEADER,
};

/// How far the reader's clock may be from the node's.
pub const CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Most nonces one party has in use at one node. Each is held from its request until at least
/// [`CLOCK_SKEW_MS`] later (and until the request's own time plus the skew), so this bounds a
/// party's signed requests at one node to this many in any 5 minutes, about 330 a second
/// sustained. Past it, the party's reads are refused with `429` until old nonces expire.
pub const NONCES_PER_PARTY_MAX: usize = 100_000;
/// Most nonces all parties other than regulators have in use at one node (about 100 MB), so
/// that many parties together cannot exhaust its memory; regulators count only against
/// [`NONCES_PER_PARTY_MAX`], so that others cannot crowd them out.
pub const NONCES_MAX: usize = 1_000_000;
/// How often expired nonces are swept from every party, at most.
const SWEEP_EVERY_MS: u64 = 10_000;

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
    /// `x-scf-nonce`.
    pub nonce: Option<String>,
    /// `x-scf-node`.
    pub node: Option<String>,
    /// `x-scf-signature`.
    pub signature: Option<String>,
    /// Where to say how the signature fared: the listener charges the request to its address
    /// or not by it ([`crate::listen`]). `None` outside a listener (tests).
    pub check: Option<SignatureCheck>,
}

/// How a request's signature fared, told by [`Authenticator::authenticate`] to whoever holds a
/// clone: a request extension the listener adds to each request that carries
/// `x-scf-signature`. A genuine signed request is charged to its party; the listener charges
/// the others to their address.
#[derive(Debug, Clone, Default)]
pub struct SignatureCheck(Arc<AtomicU8>);

/// See [`SignatureCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Nothing looked at the signature: the route reads no credentials, or the request was
    /// refused before they were looked at.
    Not,
    /// A route that reads credentials has taken them up, and not yet told how they fared (its
    /// read may still wait for the replica's reader pool).
    Checking,
    /// It verified, with a nonce this party had not used here, within the party's budget: the
    /// party's own request, charged to the party.
    Verified,
    /// The same, by a regulator.
    VerifiedRegulator,
    /// It verified with a fresh nonce, but the party was past its budget: charged to its
    /// address's requests, as an unsigned request is, so that one busy party does not bar
    /// the others behind its address as a forger would.
    OverBudget,
    /// It was looked at and refused: forged, stale, replayed, for another node, incomplete,
    /// or a party's past its nonce cap (whose nonce is not remembered, so a replay of it looks
    /// the same).
    Failed,
}

impl SignatureCheck {
    const NOT: u8 = 0;
    const CHECKING: u8 = 1;
    const VERIFIED: u8 = 2;
    const REGULATOR: u8 = 3;
    const FAILED: u8 = 4;
    const OVER_BUDGET: u8 = 5;

    /// What it says now.
    pub fn outcome(&self) -> Checked {
        match self.0.load(Ordering::Acquire) {
            Self::CHECKING => Checked::Checking,
            Self::VERIFIED => Checked::Verified,
            Self::REGULATOR => Checked::VerifiedRegulator,
            Self::FAILED => Checked::Failed,
            Self::OVER_BUDGET => Checked::OverBudget,
            _ => Checked::Not,
        }
    }

    /// Taken up by a route that reads credentials (see [`Checked::Checking`]).
    pub fn checking(&self) {
        let _ =
            self.0.compare_exchange(Self::NOT, Self::CHECKING, Ordering::AcqRel, Ordering::Acquire);
    }

    fn verified(&self, role: Role) {
        let verdict = if role == Role::Regulator { Self::REGULATOR } else { Self::VERIFIED };
        self.0.store(verdict, Ordering::Release);
    }

    /// Failed, unless it verified.
    fn failed(&self) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (now == Self::NOT || now == Self::CHECKING).then_some(Self::FAILED)
        });
    }
}

impl Credentials {
    /// Whether the request carries any of the headers: then it must authenticate (a bad
    /// signature is a 401, not a silent public answer).
    pub fn present(&self) -> bool {
        [&self.party, &self.time, &self.nonce, &self.node, &self.signature]
            .iter()
            .any(|header| header.is_some())
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

/// What checks signed reads at one node: the chain and node they must be signed for, the
/// nonces already used, and each party's request budget.
pub struct Authenticator {
    chain_id: String,
    node_id: u64,
    nonces: Mutex<Nonces>,
    /// A token bucket per authenticated party other than a regulator (governor's GCRA, as the
    /// listener's per-address buckets): a party's signed requests at this node, from however
    /// many addresses. `None`: no limit.
    parties: Option<governor::DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("chain_id", &self.chain_id)
            .field("node_id", &self.node_id)
            .field("party_limit", &self.parties.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks reads signed for node `node_id` of chain `chain_id`, with no budget per party.
    pub fn new(chain_id: &str, node_id: u64) -> Self {
        Authenticator {
            chain_id: chain_id.to_owned(),
            node_id,
            nonces: Mutex::new(Nonces::default()),
            parties: None,
        }
    }

    /// The same, each party but regulators allowed `requests_per_s` signed requests a second
    /// here (0: no limit), in bursts of `burst`.
    pub fn with_party_budget(mut self, requests_per_s: u32, burst: u32) -> Self {
        self.parties = std::num::NonZeroU32::new(requests_per_s).map(|rate| {
            let burst = std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN);
            governor::RateLimiter::dashmap(governor::Quota::per_second(rate).allow_burst(burst))
        });
        self
    }

    /// Checks a signed request against the ledger state: signed for this node and chain, in
    /// time, by a party that exists, whose current key signed this method, path, nonce, time
    /// and body, with a nonce it has not used here before. The nonce is spent only once the
    /// signature verifies, so nobody but the party can spend its nonces.
    ///
    /// Says how it went in `credentials.check`.
    pub fn authenticate(
        &self,
        state: &dyn StateStore,
        credentials: &Credentials,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Reader, ApiError> {
        let reader = self.check(state, credentials, method, path_and_query, body, now_ms);
        if let (Err(_), Some(check)) = (&reader, &credentials.check) {
            check.failed();
        }
        reader
    }

    fn check(
        &self,
        state: &dyn StateStore,
        credentials: &Credentials,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Reader, ApiError> {
        let (Some(party), Some(time), Some(nonce), Some(node), Some(signature)) = (
            &credentials.party,
            &credentials.time,
            &credentials.nonce,
            &credentials.node,
            &credentials.signature,
        ) else {
            return Err(unauthorized(
                "unauthenticated",
                format!(
                    "this read needs a signed request (headers {}; see the README)",
                    READ_HEADERS.join(", ")
                ),
            ));
        };
        let time_ms: u64 = time
            .parse()
            .map_err(|_| unauthorized("bad_signature", "x-scf-time is not a number of ms"))?;
        if time_ms.abs_diff(now_ms) > CLOCK_SKEW_MS {
            return Err(unauthorized(
                "stale_request",
                format!(
                    "x-scf-time is more than {} s from this node's clock",
                    CLOCK_SKEW_MS / 1000
                ),
            ));
        }
        if !ledger::client::valid_nonce(nonce) {
            return Err(unauthorized(
                "bad_nonce",
                "x-scf-nonce is 16 to 64 ASCII letters, digits, '-' or '_'",
            ));
        }
        if node.parse::<u64>().ok() != Some(self.node_id) {
            return Err(unauthorized(
                "wrong_node",
                format!(
                    "the request is signed for node {node:?}; this is node {} (its \
                     GET /v1/status says node_id)",
                    self.node_id
                ),
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
        let request = ReadRequest {
            chain_id: &self.chain_id,
            node_id: self.node_id,
            party,
            method,
            path_and_query,
            nonce,
            time_ms,
            body,
        };
        signature
            .verify(&request.digest(), &key)
            .map_err(|_| unauthorized("bad_signature", "the signature does not verify"))?;
        let role = Role::try_from(record.role).unwrap_or(Role::Unspecified);
        // Held until the request would be stale anyway, and at least one skew from now: a
        // request dated in the past must not make its nonce short-lived, or the cap below would
        // not bound how many signed requests a party makes in a window.
        let forget_at_ms = time_ms.max(now_ms).saturating_add(CLOCK_SKEW_MS);
        let spent = self.nonces.lock().expect("nonces are never poisoned").spend(
            party,
            nonce,
            forget_at_ms,
            role == Role::Regulator,
            now_ms,
        );
        spent?;
        // Charged only once the signature verifies with a fresh nonce, so nobody but the party
        // can spend its budget (a replay of its captured request, or one refused at the nonce
        // cap, which is not remembered, is refused above); a regulator has none, so that no
        // party's load can slow a regulator down. A party over its budget is charged to its
        // address's requests (see [`Checked::OverBudget`]).
        if let Some(parties) = self.parties.as_ref().filter(|_| role != Role::Regulator) {
            if parties.check_key(&party.to_owned()).is_err() {
                if let Some(check) = &credentials.check {
                    check.0.store(SignatureCheck::OVER_BUDGET, Ordering::Release);
                }
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many signed requests by {party} at this node; slow down and retry"
                    ),
                ));
            }
        }
        if let Some(check) = &credentials.check {
            check.verified(role);
        }
        Ok(Reader { party: record.party_id, role })
    }

    /// How many nonces this node remembers now.
    pub fn nonces_held(&self) -> usize {
        let nonces = self.nonces.lock().expect("nonces are never poisoned");
        nonces.by_party.values().map(HashMap::len).sum()
    }
}

/// The nonces of accepted signed reads, per party, each until the time its request stops being
/// accepted anyway (its time plus [`CLOCK_SKEW_MS`]), and at least [`CLOCK_SKEW_MS`] from its
/// acceptance. Bounded: [`NONCES_PER_PARTY_MAX`] per
/// party and [`NONCES_MAX`] for all parties but regulators.
#[derive(Debug, Default)]
struct Nonces {
    /// Party id to (nonce to the time it may be forgotten, ms).
    by_party: HashMap<String, HashMap<String, u64>>,
    /// Nonces held for parties other than regulators.
    held_by_others: usize,
    /// Parties that are regulators, as of their last accepted read.
    regulators: std::collections::HashSet<String>,
    swept_at_ms: u64,
}

impl Nonces {
    fn spend(
        &mut self,
        party: &str,
        nonce: &str,
        forget_at_ms: u64,
        regulator: bool,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        if now_ms.saturating_sub(self.swept_at_ms) >= SWEEP_EVERY_MS {
            self.sweep(now_ms);
        }
        if regulator {
            self.regulators.insert(party.to_owned());
        }
        let regulator = self.regulators.contains(party);
        let seen = self.by_party.entry(party.to_owned()).or_default();
        match seen.get(nonce) {
            Some(&forget_at) if forget_at >= now_ms => {
                return Err(unauthorized(
                    "replayed_request",
                    "this nonce was used already: every signed request needs a new x-scf-nonce",
                ));
            }
            _ => {}
        }
        let full =
            seen.len() >= NONCES_PER_PARTY_MAX || (!regulator && self.held_by_others >= NONCES_MAX);
        if full {
            // Expired nonces first: the cap counts only requests still inside the window.
            let before = seen.len();
            seen.retain(|_, forget_at| *forget_at >= now_ms);
            if !regulator {
                self.held_by_others -= before - seen.len();
            }
            if seen.len() >= NONCES_PER_PARTY_MAX
                || (!regulator && self.held_by_others >= NONCES_MAX)
            {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!(
                        "too many signed requests within {} minutes at this node; retry later",
                        CLOCK_SKEW_MS / 60_000
                    ),
                ));
            }
        }
        if seen.insert(nonce.to_owned(), forget_at_ms).is_none() && !regulator {
            self.held_by_others += 1;
        }
        Ok(())
    }

    /// Forgets every nonce whose request would now be refused as stale anyway.
    fn sweep(&mut self, now_ms: u64) {
        self.swept_at_ms = now_ms;
        let regulators = &self.regulators;
        let mut others = 0;
        self.by_party.retain(|party, seen| {
            seen.retain(|_, forget_at| *forget_at >= now_ms);
            if !regulators.contains(party) {
                others += seen.len();
            }
            !seen.is_empty()
        });
        self.held_by_others = others;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600_000;

    /// The nonces of `count` requests by `party` at `now`, each forgotten a window later.
    fn fill(nonces: &mut Nonces, party: &str, count: usize, regulator: bool) {
        for n in 0..count {
            let nonce = format!("{party}-{n:016}");
            nonces.spend(party, &nonce, NOW + CLOCK_SKEW_MS, regulator, NOW).expect("room");
        }
    }

    fn code(result: Result<(), ApiError>) -> Option<&'static str> {
        result.err().map(|e| e.code)
    }

    /// The path the tests' signed reads are for.
    const READ_PATH: &str = "/v1/tokens?holder=p";

    /// A store holding party `p`, an enterprise with `key`.
    fn store_with_party(key: &ledger::crypto::SigningKey) -> ledger::MemStore {
        let mut store = ledger::MemStore::new();
        let party = ledger::pb::Party {
            party_id: "p".into(),
            public_key: key.public_key().to_bytes().to_vec(),
            role: Role::Enterprise as i32,
            ..Default::default()
        };
        let mut writes = ledger::WriteSet::default();
        writes.put(ledger::store::keys::party("p"), prost::Message::encode_to_vec(&party));
        store.commit(&writes);
        store
    }

    /// `p`'s signed `GET READ_PATH` at node 1 of chain `chain`, signed with `key`.
    fn signed_read(
        key: &ledger::crypto::SigningKey,
        nonce: &str,
        time_ms: u64,
        check: Option<SignatureCheck>,
    ) -> Credentials {
        let request = ReadRequest {
            chain_id: "chain",
            node_id: 1,
            party: "p",
            method: "GET",
            path_and_query: READ_PATH,
            nonce,
            time_ms,
            body: b"",
        };
        let [party, time, nonce, node, signature] = request.sign(key).map(|(_, v)| Some(v));
        Credentials { party, time, nonce, node, signature, check }
    }

    // Goal: a party's nonces are capped at NONCES_PER_PARTY_MAX within the window (429 past it,
    // and only for that party), a replay is refused while the window lasts, and the cap counts
    // only nonces still inside the window.
    #[test]
    fn a_party_has_at_most_its_cap_of_nonces_in_the_window() {
        let mut nonces = Nonces::default();
        fill(&mut nonces, "busy", NONCES_PER_PARTY_MAX, false);
        let forget = NOW + CLOCK_SKEW_MS;
        let next = nonces.spend("busy", "busy-one-too-many", forget, false, NOW);
        assert_eq!(code(next), Some("too_many_requests"));
        assert_eq!(code(nonces.spend("other", "other-0000000001", forget, false, NOW)), None);
        let replay = nonces.spend("other", "other-0000000001", forget, false, NOW + 1);
        assert_eq!(code(replay), Some("replayed_request"));
        // Once the first requests' window is over, their nonces no longer count.
        let later = forget + 1;
        let next = nonces.spend("busy", "busy-one-too-many", later + CLOCK_SKEW_MS, false, later);
        assert_eq!(code(next), None);
        assert_eq!(nonces.by_party["busy"].len(), 1, "the expired nonces were dropped");
    }

    // Goal: a request dated as far in the past as the skew allows still holds its nonce for a
    // whole skew from now, so backdating cannot turn the cap into a cap per second.
    #[test]
    fn a_backdated_request_holds_its_nonce_a_whole_skew() {
        let authenticator = Authenticator::new("chain", 1);
        let key = ledger::crypto::SigningKey::from_seed("backdated");
        let store = store_with_party(&key);
        let time_ms = NOW - CLOCK_SKEW_MS;
        let credentials = signed_read(&key, "0123456789abcdef", time_ms, None);
        let read = |now_ms| {
            authenticator.authenticate(&store, &credentials, "GET", READ_PATH, b"", now_ms)
        };
        assert!(read(NOW).is_ok());
        let nonces = authenticator.nonces.lock().unwrap();
        assert_eq!(nonces.by_party["p"]["0123456789abcdef"], NOW + CLOCK_SKEW_MS);
    }

    // Goal: the listener is told how each signature fared: verified for the party's own fresh
    // request within its budget; failed for a replay, a forgery and a party over its budget (so
    // the address pays for those); unchanged when nothing authenticated.
    #[test]
    fn the_check_says_how_a_signature_fared() {
        let authenticator = Authenticator::new("chain", 1).with_party_budget(1, 2);
        let key = ledger::crypto::SigningKey::from_seed("check");
        let store = store_with_party(&key);
        let now_ms = now_ms();
        let request = |nonce: &str, signer: &ledger::crypto::SigningKey| {
            let check = SignatureCheck::default();
            (signed_read(signer, nonce, now_ms, Some(check.clone())), check)
        };
        let read = |credentials: &Credentials| {
            authenticator.authenticate(&store, credentials, "GET", READ_PATH, b"", now_ms)
        };
        let (first, check) = request("check-0000000001", &key);
        assert!(read(&first).is_ok());
        assert_eq!(check.outcome(), Checked::Verified);
        let (again, check) = (first.clone(), SignatureCheck::default());
        let again = Credentials { check: Some(check.clone()), ..again };
        assert_eq!(read(&again).unwrap_err().code, "replayed_request");
        assert_eq!(check.outcome(), Checked::Failed, "a replay is its sender's failure");
        let (forged, check) =
            request("check-0000000002", &ledger::crypto::SigningKey::from_seed("x"));
        assert_eq!(read(&forged).unwrap_err().code, "bad_signature");
        assert_eq!(check.outcome(), Checked::Failed);
        // A burst of 2: the second is served, the third refused, and that costs its address.
        let (second, check) = request("check-0000000003", &key);
        assert!(read(&second).is_ok());
        assert_eq!(check.outcome(), Checked::Verified);
        let (third, check) = request("check-0000000004", &key);
        assert_eq!(read(&third).unwrap_err().code, "rate_limited");
        assert_eq!(check.outcome(), Checked::OverBudget, "its address pays, as for unsigned");
        // At the nonce cap: a failure, and the party's budget untouched (the refused nonce is
        // not remembered, so whoever replays the request must not spend it).
        let capped = Authenticator::new("chain", 1).with_party_budget(1, 1);
        {
            let mut nonces = capped.nonces.lock().unwrap();
            for n in 0..NONCES_PER_PARTY_MAX {
                let nonce = format!("p-{n:016}");
                nonces.spend("p", &nonce, now_ms + CLOCK_SKEW_MS, false, now_ms).expect("room");
            }
        }
        let (over, check) = request("check-0000000005", &key);
        let refused = capped.authenticate(&store, &over, "GET", READ_PATH, b"", now_ms);
        assert_eq!(refused.unwrap_err().code, "too_many_requests");
        assert_eq!(check.outcome(), Checked::Failed);
        let budget = capped.parties.as_ref().expect("a budget");
        assert!(budget.check_key(&"p".to_owned()).is_ok(), "the budget was not spent");
    }

    // Goal: when parties hold NONCES_MAX nonces between them, everyone but a regulator is
    // refused, so a crowd of parties cannot keep a regulator from reading.
    #[test]
    fn a_regulator_is_not_crowded_out_by_the_others_nonces() {
        let mut nonces = Nonces::default();
        for party in 0..NONCES_MAX / NONCES_PER_PARTY_MAX {
            fill(&mut nonces, &format!("p{party}"), NONCES_PER_PARTY_MAX, false);
        }
        assert_eq!(nonces.held_by_others, NONCES_MAX);
        let forget = NOW + CLOCK_SKEW_MS;
        let newcomer = nonces.spend("newcomer", "newcomer-0000000001", forget, false, NOW);
        assert_eq!(code(newcomer), Some("too_many_requests"));
        assert_eq!(code(nonces.spend("reg", "reg-0000000000001", forget, true, NOW)), None);
        fill(&mut nonces, "reg2", 1000, true);
        assert_eq!(nonces.held_by_others, NONCES_MAX, "a regulator's nonces are not the others'");
    }
}
