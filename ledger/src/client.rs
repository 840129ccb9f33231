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
/// Header with the reader's signature.
pub const SIGNATURE_HEADER: &str = "x-scf-signature";

/// What the reader of a signed request signs: SHA-256 of
/// `"scf-read-v1\n" METHOD "\n" PATH_AND_QUERY "\n" TIME "\n" hex(SHA-256(BODY))`.
/// The node checks the same digest (`api::auth`); this is the one definition of the scheme.
pub fn read_request_digest(
    method: &str,
    path_and_query: &str,
    time_ms: u64,
    body: &[u8],
) -> crate::crypto::Hash32 {
    let text = format!(
        "scf-read-v1\n{method}\n{path_and_query}\n{time_ms}\n{}",
        hex::encode(crate::crypto::sha256(body))
    );
    crate::crypto::sha256(text.as_bytes())
}

/// The three headers of a request by `party`, signed with `key`.
pub fn sign_read_request(
    party: &str,
    key: &SigningKey,
    method: &str,
    path_and_query: &str,
    time_ms: u64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let digest = read_request_digest(method, path_and_query, time_ms, body);
    [
        (PARTY_HEADER, party.to_owned()),
        (TIME_HEADER, time_ms.to_string()),
        (SIGNATURE_HEADER, hex::encode(key.sign_digest(&digest).to_bytes())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's example: the text signed for `GET /v1/invoices/inv-1`.
    #[test]
    fn the_read_digest_is_the_documented_text() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!("scf-read-v1\nGET\n/v1/invoices/inv-1\n1767225600000\n{empty}");
        assert_eq!(
            read_request_digest("GET", "/v1/invoices/inv-1", 1_767_225_600_000, b""),
            crate::crypto::sha256(text.as_bytes())
        );
        let key = SigningKey::from_seed("reader");
        let headers = sign_read_request("p", &key, "GET", "/x", 5, b"");
        assert_eq!(headers[0], (PARTY_HEADER, "p".to_owned()));
        assert_eq!(headers[1], (TIME_HEADER, "5".to_owned()));
        let signature =
            crate::crypto::SignatureBytes::parse(&hex::decode(&headers[2].1).expect("hex"))
                .expect("a signature");
        let digest = read_request_digest("GET", "/x", 5, b"");
        assert_eq!(signature.verify(&digest, &key.public_key()), Ok(()));
    }
}
