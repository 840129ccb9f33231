//! Transactions: building, signing and total decoding.
//!
//! Decoding is total: any byte string either becomes a [`DecodedTx`] or a typed [`DecodeError`],
//! never a panic. A decoded transaction has a well-formed signature and a body with a command;
//! whether the signature verifies depends on the signer's key in the state, so that check is the
//! state machine's.

use prost::Message;

use crate::crypto::{self, Hash32, SignatureBytes, SigningKey};
use crate::pb::{SignedTx, TxBody, tx_body::Command};

/// The largest accepted body. Every command fits comfortably; anything larger is refused before
/// it costs a signature check.
pub const TX_BODY_BYTES_MAX: usize = 16 * 1024;

/// The largest accepted encoded `SignedTx` (body plus signature plus framing).
pub const SIGNED_TX_BYTES_MAX: usize = TX_BODY_BYTES_MAX + 128;

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The envelope is not a prost `SignedTx`.
    #[error("envelope does not decode: {0}")]
    Envelope(String),
    /// The body is larger than [`TX_BODY_BYTES_MAX`].
    #[error("body is {0} bytes, more than the maximum {TX_BODY_BYTES_MAX}")]
    TooLarge(usize),
    /// The body is not a prost `TxBody`.
    #[error("body does not decode: {0}")]
    Body(String),
    /// The body has no command.
    #[error("body has no command")]
    MissingCommand,
    /// The body is not in prost's canonical encoding (unknown fields, fields out of order,
    /// non-minimal varints, default values written out): what was signed could carry meaning a
    /// replica would silently drop.
    #[error("body is not canonically encoded")]
    NonCanonical,
    /// The signature is malformed or high-S.
    #[error("signature: {0}")]
    Signature(#[from] crypto::CryptoError),
}

impl DecodeError {
    /// A description that depends only on this crate, never on a dependency's error text: it is
    /// recorded in blocks and hashed, so it must read the same on every replica of every version.
    pub fn ledger_text(&self) -> String {
        match self {
            DecodeError::Envelope(_) => "envelope does not decode".to_owned(),
            DecodeError::Body(_) => "body does not decode".to_owned(),
            DecodeError::Signature(e) => format!("signature: {e}"),
            other => other.to_string(),
        }
    }
}

/// A transaction whose envelope, body and signature are well-formed.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTx {
    /// SHA-256 of the body bytes: the transaction's identity and the signed digest.
    pub hash: Hash32,
    /// The decoded body.
    pub body: TxBody,
    /// The signature, not yet verified.
    pub signature: SignatureBytes,
}

impl DecodedTx {
    /// Decodes an encoded `SignedTx`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > SIGNED_TX_BYTES_MAX {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let signed = SignedTx::decode(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        Self::from_signed(&signed)
    }

    /// Checks a `SignedTx` already decoded from its envelope.
    pub fn from_signed(signed: &SignedTx) -> Result<Self, DecodeError> {
        if signed.body.len() > TX_BODY_BYTES_MAX {
            return Err(DecodeError::TooLarge(signed.body.len()));
        }
        let body =
            TxBody::decode(signed.body.as_slice()).map_err(|e| DecodeError::Body(e.to_string()))?;
        if body.command.is_none() {
            return Err(DecodeError::MissingCommand);
        }
        if body.encoded_len() != signed.body.len() || body.encode_to_vec() != signed.body {
            return Err(DecodeError::NonCanonical);
        }
        let signature = SignatureBytes::parse(&signed.signature)?;
        Ok(Self { hash: crypto::sha256(&signed.body), body, signature })
    }

    /// The command, present by construction.
    pub fn command(&self) -> &Command {
        self.body.command.as_ref().expect("from_signed refuses bodies without a command")
    }
}

/// The hash of a signed transaction's body, whether or not the rest of it is well-formed.
pub fn tx_hash(signed: &SignedTx) -> Hash32 {
    crypto::sha256(&signed.body)
}

/// The `n`th id (0 or 1) a transaction with hash `tx_hash` creates, for records whose ids the
/// ledger chooses (tokens `tk-`, offers `of-`): `{prefix}-` and the first 16 bytes of
/// SHA-256(`tx_hash` ‖ `n`), in hex. A pure function of the body, so a client knows the ids its
/// transaction will create before submitting it (and can sign the steps that use them).
pub fn derived_id(prefix: &str, tx_hash: &Hash32, n: u8) -> String {
    let digest = crypto::sha256_parts(&[tx_hash, &[n]]);
    format!("{prefix}-{}", hex::encode(&digest[..16]))
}

/// Builds a body (a client helper).
pub fn body(
    chain_id: &str,
    signer: &str,
    valid_until_ms: u64,
    nonce: u64,
    command: Command,
) -> TxBody {
    TxBody {
        chain_id: chain_id.to_owned(),
        signer: signer.to_owned(),
        valid_until_ms,
        nonce,
        command: Some(command),
    }
}

/// Encodes and signs a body (a client helper).
pub fn sign(body: &TxBody, key: &SigningKey) -> SignedTx {
    let bytes = body.encode_to_vec();
    let signature = key.sign(&bytes).to_bytes().to_vec();
    SignedTx { body: bytes, signature }
}

/// The name of a command as used in the API, metrics and the audit trail.
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::RegisterParty(_) => "register_party",
        Command::RotateKey(_) => "rotate_key",
        Command::SetFrozen(_) => "set_frozen",
        Command::GrantCreditLine(_) => "grant_credit_line",
        Command::CreatePurchaseOrder(_) => "create_purchase_order",
        Command::RecordShipment(_) => "record_shipment",
        Command::ConfirmDelivery(_) => "confirm_delivery",
        Command::IssueInvoice(_) => "issue_invoice",
        Command::AcceptInvoice(_) => "accept_invoice",
        Command::RejectInvoice(_) => "reject_invoice",
        Command::TransferToken(_) => "transfer_token",
        Command::OfferToken(_) => "offer_token",
        Command::WithdrawOffer(_) => "withdraw_offer",
        Command::DiscountToken(_) => "discount_token",
        Command::SettleToken(_) => "settle_token",
        Command::GrantAccess(_) => "grant_access",
        Command::RevokeAccess(_) => "revoke_access",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::RotateKey;

    fn sample() -> SignedTx {
        let key = SigningKey::from_seed("alice");
        let command = Command::RotateKey(RotateKey { new_public_key: vec![2; 33] });
        sign(&body("test", "alice", 10, 0, command), &key)
    }

    // Goal: a signed transaction round-trips through its encoding.
    #[test]
    fn decode_round_trip() {
        let signed = sample();
        let decoded = DecodedTx::decode(&signed.encode_to_vec()).unwrap();
        assert_eq!(decoded.hash, crypto::sha256(&signed.body));
        assert_eq!(decoded.body.signer, "alice");
        assert_eq!(decoded.signature.to_bytes().as_slice(), signed.signature.as_slice());
    }

    // Goal: each way an envelope can be wrong gives its own typed error.
    #[test]
    fn decode_errors_are_typed() {
        assert!(matches!(DecodedTx::decode(&[0xff, 0xff, 0xff]), Err(DecodeError::Envelope(_))));
        let mut signed = sample();
        signed.signature.truncate(63);
        assert!(matches!(DecodedTx::from_signed(&signed), Err(DecodeError::Signature(_))));
        let signed = SignedTx { body: vec![0xff; 5], signature: vec![0; 64] };
        assert!(matches!(DecodedTx::from_signed(&signed), Err(DecodeError::Body(_))));
        let empty = TxBody { chain_id: "t".into(), ..Default::default() };
        let signed = sign(&empty, &SigningKey::from_seed("a"));
        assert_eq!(DecodedTx::from_signed(&signed), Err(DecodeError::MissingCommand));
        let signed = SignedTx { body: vec![0; TX_BODY_BYTES_MAX + 1], signature: vec![0; 64] };
        assert_eq!(
            DecodedTx::from_signed(&signed),
            Err(DecodeError::TooLarge(TX_BODY_BYTES_MAX + 1))
        );
    }
}
