//! Client helpers: a signing identity and one constructor per command, so that the simulator,
//! the command-line client and tests build transactions the same way.
//!
//! Nothing here is used by the state machine.

use crate::crypto::SigningKey;
use crate::pb::{self, AccessScope, Role, SignedTx, tx_body::Command};
use crate::tx;

/// A party that signs transactions for one chain.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The chain the transactions are for.
    pub chain_id: String,
    /// The party id.
    pub party_id: String,
    /// The party's current key.
    pub key: SigningKey,
}

impl Identity {
    /// An identity for `party_id` on `chain_id`.
    pub fn new(chain_id: &str, party_id: &str, key: SigningKey) -> Self {
        Self { chain_id: chain_id.to_owned(), party_id: party_id.to_owned(), key }
    }

    /// Signs `command` valid until `valid_until_ms` with `nonce`.
    pub fn sign(&self, valid_until_ms: u64, nonce: u64, command: Command) -> SignedTx {
        let body = tx::body(&self.chain_id, &self.party_id, valid_until_ms, nonce, command);
        tx::sign(&body, &self.key)
    }

    /// The 33-byte compressed public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().to_bytes().to_vec()
    }
}

/// `RegisterParty`.
pub fn register_party(party_id: &str, name: &str, role: Role, public_key: &[u8]) -> Command {
    Command::RegisterParty(pb::RegisterParty {
        party_id: party_id.into(),
        name: name.into(),
        role: role as i32,
        public_key: public_key.to_vec(),
    })
}

/// `RotateKey`.
pub fn rotate_key(new_public_key: &[u8]) -> Command {
    Command::RotateKey(pb::RotateKey { new_public_key: new_public_key.to_vec() })
}

/// `SetFrozen`.
pub fn set_frozen(party_id: &str, frozen: bool) -> Command {
    Command::SetFrozen(pb::SetFrozen { party_id: party_id.into(), frozen })
}

/// `GrantCreditLine`.
pub fn grant_credit_line(
    line_id: &str,
    obligor: &str,
    limit: &str,
    currency: &str,
    expires_at_ms: u64,
) -> Command {
    Command::GrantCreditLine(pb::GrantCreditLine {
        line_id: line_id.into(),
        obligor: obligor.into(),
        limit: limit.into(),
        currency: currency.into(),
        expires_at_ms,
    })
}

/// `CreatePurchaseOrder` with `(sku, quantity, unit_price)` lines.
pub fn create_purchase_order(
    po_id: &str,
    seller: &str,
    lines: &[(&str, u64, &str)],
    currency: &str,
) -> Command {
    Command::CreatePurchaseOrder(pb::CreatePurchaseOrder {
        po_id: po_id.into(),
        seller: seller.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity, unit_price)| pb::OrderLine {
                sku: (*sku).into(),
                quantity: *quantity,
                unit_price: (*unit_price).into(),
            })
            .collect(),
        currency: currency.into(),
    })
}

/// `RecordShipment` with `(sku, quantity)` lines; an empty `carrier` means none.
pub fn record_shipment(
    shipment_id: &str,
    po_id: &str,
    lines: &[(&str, u64)],
    carrier: &str,
    document_hash: [u8; 32],
) -> Command {
    Command::RecordShipment(pb::RecordShipment {
        shipment_id: shipment_id.into(),
        po_id: po_id.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| pb::ShipmentLine { sku: (*sku).into(), quantity: *quantity })
            .collect(),
        carrier: carrier.into(),
        document_hash: document_hash.to_vec(),
    })
}

/// `ConfirmDelivery`.
pub fn confirm_delivery(shipment_id: &str) -> Command {
    Command::ConfirmDelivery(pb::ConfirmDelivery { shipment_id: shipment_id.into() })
}

/// `IssueInvoice`.
pub fn issue_invoice(
    invoice_id: &str,
    po_id: &str,
    shipment_ids: &[&str],
    amount: &str,
    due_date_ms: u64,
    document_hash: [u8; 32],
) -> Command {
    Command::IssueInvoice(pb::IssueInvoice {
        invoice_id: invoice_id.into(),
        po_id: po_id.into(),
        shipment_ids: shipment_ids.iter().map(|s| (*s).into()).collect(),
        amount: amount.into(),
        due_date_ms,
        document_hash: document_hash.to_vec(),
    })
}

/// `AcceptInvoice`.
pub fn accept_invoice(invoice_id: &str, maturity_ms: u64) -> Command {
    Command::AcceptInvoice(pb::AcceptInvoice { invoice_id: invoice_id.into(), maturity_ms })
}

/// `RejectInvoice`.
pub fn reject_invoice(invoice_id: &str, reason: &str) -> Command {
    Command::RejectInvoice(pb::RejectInvoice {
        invoice_id: invoice_id.into(),
        reason: reason.into(),
    })
}

/// `TransferToken`.
pub fn transfer_token(token_id: &str, to: &str, amount: &str) -> Command {
    Command::TransferToken(pb::TransferToken {
        token_id: token_id.into(),
        to: to.into(),
        amount: amount.into(),
    })
}

/// `OfferToken`.
pub fn offer_token(
    token_id: &str,
    bank: &str,
    max_annual_rate: &str,
    expires_at_ms: u64,
) -> Command {
    Command::OfferToken(pb::OfferToken {
        token_id: token_id.into(),
        bank: bank.into(),
        max_annual_rate: max_annual_rate.into(),
        expires_at_ms,
    })
}

/// `WithdrawOffer`.
pub fn withdraw_offer(offer_id: &str) -> Command {
    Command::WithdrawOffer(pb::WithdrawOffer { offer_id: offer_id.into() })
}

/// `DiscountToken`.
pub fn discount_token(offer_id: &str, annual_rate: &str) -> Command {
    Command::DiscountToken(pb::DiscountToken {
        offer_id: offer_id.into(),
        annual_rate: annual_rate.into(),
    })
}

/// `SettleToken`.
pub fn settle_token(token_id: &str, payment_reference: &str) -> Command {
    Command::SettleToken(pb::SettleToken {
        token_id: token_id.into(),
        payment_reference: payment_reference.into(),
    })
}

/// `GrantAccess`.
pub fn grant_access(grantee: &str, scope: AccessScope, expires_at_ms: u64) -> Command {
    Command::GrantAccess(pb::GrantAccess {
        grantee: grantee.into(),
        scope: scope as i32,
        expires_at_ms,
    })
}

/// `RevokeAccess`.
pub fn revoke_access(grantee: &str, scope: AccessScope) -> Command {
    Command::RevokeAccess(pb::RevokeAccess { grantee: grantee.into(), scope: scope as i32 })
}

/// Header naming the reader of a signed read request.
pub const PARTY_HEADER: &str = "x-scf-party";
/// Header with the reader's clock, ms since the Unix epoch.
pub const TIME_HEADER: &str = "x-scf-time";
/// Header with the request's nonce: used once per node within the validity window.
pub const NONCE_HEADER: &str = "x-scf-nonce";
/// Header with the id of the node the request is signed for.
pub const NODE_HEADER: &str = "x-scf-node";
/// Header with the reader's signature.
pub const SIGNATURE_HEADER: &str = "x-scf-signature";
/// The headers of a signed read, in the order [`ReadRequest::sign`] returns them.
pub const READ_HEADERS: [&str; 5] =
    [PARTY_HEADER, TIME_HEADER, NONCE_HEADER, NODE_HEADER, SIGNATURE_HEADER];

/// The shortest and longest nonce a node accepts.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;

/// Whether `nonce` is one a node accepts: 16 to 64 ASCII letters, digits, `-` or `_`.
pub fn valid_nonce(nonce: &str) -> bool {
    NONCE_LEN.contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A fresh nonce for a signed read: 16 bytes from the caller's random number generator, as 32
/// hex digits.
pub fn read_nonce<R: secp256k1::rand::Rng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// One signed read request: everything its signature binds it to. A signature is good for one
/// request (method, path and query, body) by one party, to one node of one chain, once (the
/// node refuses a nonce it has seen), within minutes of its time. The node checks the same
/// digest (`api::auth`); this is the one definition of the scheme.
#[derive(Debug, Clone, Copy)]
pub struct ReadRequest<'a> {
    /// The chain's id (genesis `chain_id`, in `GET /v1/status`).
    pub chain_id: &'a str,
    /// The id of the node the request goes to (`node_id` in its `GET /v1/status`).
    pub node_id: u64,
    /// The reader's party id.
    pub party: &'a str,
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The path with its query string (`?` and after), exactly as sent.
    pub path_and_query: &'a str,
    /// A value never used before by this party at this node ([`read_nonce`]).
    pub nonce: &'a str,
    /// The reader's clock, ms since the Unix epoch.
    pub time_ms: u64,
    /// The request's body (empty for a GET).
    pub body: &'a [u8],
}

impl ReadRequest<'_> {
    /// What the reader signs: SHA-256 of the text
    /// `"scf-read-v2\n" CHAIN_ID "\n" NODE_ID "\n" PARTY "\n" METHOD "\n" PATH_AND_QUERY "\n"
    /// NONCE "\n" TIME "\n" hex(SHA-256(BODY))`, numbers in decimal, hex in lower case.
    pub fn digest(&self) -> crate::crypto::Hash32 {
        crate::crypto::sha256(self.text().as_bytes())
    }

    /// The text whose SHA-256 is [`Self::digest`].
    pub fn text(&self) -> String {
        let Self { chain_id, node_id, party, method, path_and_query, nonce, time_ms, body } = self;
        format!(
            "scf-read-v2\n{chain_id}\n{node_id}\n{party}\n{method}\n{path_and_query}\n{nonce}\n\
             {time_ms}\n{}",
            hex::encode(crate::crypto::sha256(body))
        )
    }

    /// The five headers of this request, signed with `key` ([`READ_HEADERS`]' order).
    pub fn sign(&self, key: &SigningKey) -> [(&'static str, String); 5] {
        [
            (PARTY_HEADER, self.party.to_owned()),
            (TIME_HEADER, self.time_ms.to_string()),
            (NONCE_HEADER, self.nonce.to_owned()),
            (NODE_HEADER, self.node_id.to_string()),
            (SIGNATURE_HEADER, hex::encode(key.sign_digest(&self.digest()).to_bytes())),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's worked example, byte for byte: its text, digest and signature.
    #[test]
    fn the_read_digest_is_the_documented_text() {
        let request = ReadRequest {
            chain_id: "scf-demo",
            node_id: 1,
            party: "parts",
            method: "GET",
            path_and_query: "/v1/invoices/inv-1",
            nonce: "0123456789abcdef0123456789abcdef",
            time_ms: 1_767_225_600_000,
            body: b"",
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            request.text(),
            format!(
                "scf-read-v2\nscf-demo\n1\nparts\nGET\n/v1/invoices/inv-1\n\
                 0123456789abcdef0123456789abcdef\n1767225600000\n{empty}"
            )
        );
        let key = SigningKey::from_seed("reader");
        let headers = request.sign(&key);
        let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, READ_HEADERS);
        assert_eq!(headers[0].1, "parts");
        assert_eq!(headers[1].1, "1767225600000");
        assert_eq!(headers[2].1, request.nonce);
        assert_eq!(headers[3].1, "1");
        let signature =
            crate::crypto::SignatureBytes::parse(&hex::decode(&headers[4].1).expect("hex"))
                .expect("a signature");
        assert_eq!(signature.verify(&request.digest(), &key.public_key()), Ok(()));
        // Any other node, party, nonce or path gives another digest.
        for other in [
            ReadRequest { node_id: 2, ..request },
            ReadRequest { party: "part", ..request },
            ReadRequest { nonce: "0123456789abcdef0123456789abcdee", ..request },
            ReadRequest { path_and_query: "/v1/invoices/inv-2", ..request },
            ReadRequest { chain_id: "scf-other", ..request },
        ] {
            assert_ne!(other.digest(), request.digest());
        }
    }

    #[test]
    fn nonces_are_checked_and_fresh_ones_pass() {
        let mut rng = crate::crypto::rand::rng();
        let nonce = read_nonce(&mut rng);
        assert!(valid_nonce(&nonce));
        assert_ne!(read_nonce(&mut rng), nonce);
        assert!(valid_nonce("abcdefgh-_ABCDEF"));
        for bad in ["", "short", "0123456789abcde\n", &"a".repeat(65), "0123456789abcdef "] {
            assert!(!valid_nonce(bad), "{bad:?}");
        }
    }
}
