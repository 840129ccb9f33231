//! Why a transaction was rejected.
//!
//! A rejection is a domain outcome, not an error of the program: it is recorded in the block with
//! its stable `code` and a human message, and the transaction changes nothing else. Codes are part
//! of the public interface (clients and the simulator match on them); never rename one.

use crate::pb::Role;

/// The kinds of record a `NotFound` or `AlreadyExists` rejection can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A registered party.
    Party,
    /// A bank's credit line.
    CreditLine,
    /// A purchase order.
    PurchaseOrder,
    /// A shipment.
    Shipment,
    /// An invoice.
    Invoice,
    /// A receivable token.
    Token,
    /// A discount offer.
    Offer,
    /// An access grant.
    AccessGrant,
}

impl RecordKind {
    /// Lower-case noun used in messages.
    pub fn noun(self) -> &'static str {
        match self {
            RecordKind::Party => "party",
            RecordKind::CreditLine => "credit line",
            RecordKind::PurchaseOrder => "purchase order",
            RecordKind::Shipment => "shipment",
            RecordKind::Invoice => "invoice",
            RecordKind::Token => "token",
            RecordKind::Offer => "offer",
            RecordKind::AccessGrant => "access grant",
        }
    }
}

/// Why a transaction was rejected. Each variant has a stable [`RejectReason::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    // --- the envelope ---
    /// The bytes are not a well-formed signed transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// `chain_id` names another ledger.
    #[error("transaction is for chain {got:?}, this ledger is {expected:?}")]
    WrongChain {
        /// The ledger's chain id.
        expected: String,
        /// The transaction's chain id.
        got: String,
    },
    /// `valid_until_ms` is before ledger time.
    #[error("transaction expired at {valid_until_ms} ms, ledger time is {now_ms} ms")]
    Expired {
        /// The transaction's deadline.
        valid_until_ms: u64,
        /// Ledger time of the block.
        now_ms: u64,
    },
    /// `valid_until_ms` is more than an hour ahead of ledger time.
    #[error("valid_until {valid_until_ms} ms is more than one hour after ledger time {now_ms} ms")]
    ValidUntilTooFar {
        /// The transaction's deadline.
        valid_until_ms: u64,
        /// Ledger time of the block.
        now_ms: u64,
    },
    /// A transaction with the same hash is already on the ledger.
    #[error("a transaction with this hash is already on the ledger at height {height}")]
    Duplicate {
        /// Height of the first occurrence.
        height: u64,
    },
    /// The signer is not a registered party.
    #[error("signer {0:?} is not a registered party")]
    UnknownSigner(String),
    /// The signature does not verify against the signer's current key.
    #[error("signature does not verify against the signer's current key")]
    BadSignature,
    /// The signer is frozen.
    #[error("signer {0:?} is frozen")]
    SignerFrozen(String),

    // --- who may do what ---
    /// The signer may not perform this command on this record.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// A named party has the wrong role for the command.
    #[error("party {party:?} must be a {expected}")]
    WrongRole {
        /// The party named.
        party: String,
        /// The role it needs.
        expected: &'static str,
    },
    /// A party named by the command (not the signer) is frozen.
    #[error("party {0:?} is frozen")]
    PartyFrozen(String),
    /// A command names the signer where another party is required.
    #[error("{0}")]
    SameParty(String),

    // --- bad arguments ---
    /// An id is empty, too long or has characters outside `[A-Za-z0-9._:-]`.
    #[error("{field} must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")]
    InvalidId {
        /// The field.
        field: &'static str,
    },
    /// An amount is malformed, has more than two decimals, or is zero where it must be positive.
    #[error("{field}: {detail}")]
    InvalidAmount {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A rate is malformed or out of range.
    #[error("{field}: rate must be a decimal between 0 and 1 with at most 8 places")]
    InvalidRate {
        /// The field.
        field: &'static str,
    },
    /// A currency code is not three upper-case letters.
    #[error("currency {0:?} is not a three-letter ISO 4217 code")]
    InvalidCurrency(String),
    /// A public key is not a 33-byte compressed secp256k1 point.
    #[error("public key must be a 33-byte compressed secp256k1 point")]
    InvalidPublicKey,
    /// A document hash is not 32 bytes.
    #[error("document_hash must be 32 bytes (SHA-256)")]
    InvalidDocumentHash,
    /// A time field is out of range (in the past where it must be in the future, and so on).
    #[error("{field}: {detail}")]
    InvalidTime {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Any other malformed argument: empty lists, duplicates, unknown enum values, text too long.
    #[error("{0}")]
    InvalidArgument(String),

    // --- records ---
    /// A record the command names does not exist.
    #[error("{} {id:?} not found", kind.noun())]
    NotFound {
        /// What kind of record.
        kind: RecordKind,
        /// Its id.
        id: String,
    },
    /// A record the command would create already exists.
    #[error("{} {id:?} already exists", kind.noun())]
    AlreadyExists {
        /// What kind of record.
        kind: RecordKind,
        /// Its id.
        id: String,
    },
    /// Values in different currencies would mix.
    #[error("currency mismatch: {0}")]
    CurrencyMismatch(String),

    // --- goods ---
    /// A shipment names a sku that is not on the order.
    #[error("sku {0:?} is not on the purchase order")]
    UnknownSku(String),
    /// Shipping this would exceed the ordered quantity.
    #[error("shipping {sku:?} would exceed the ordered quantity ({shipped} shipped of {ordered})")]
    OverShipment {
        /// The sku.
        sku: String,
        /// Shipped so far plus this shipment.
        shipped: u64,
        /// Ordered.
        ordered: u64,
    },
    /// The delivery was already confirmed by this party.
    #[error("delivery of shipment {0:?} is already confirmed")]
    AlreadyDelivered(String),
    /// An invoice names a shipment whose delivery the buyer has not confirmed.
    #[error("shipment {0:?} is not delivered")]
    NotDelivered(String),
    /// An invoice names a shipment of another order.
    #[error("shipment {shipment:?} does not belong to purchase order {po:?}")]
    ShipmentNotInOrder {
        /// The shipment.
        shipment: String,
        /// The order.
        po: String,
    },
    /// An invoice names a shipment that another invoice already used: double invoicing.
    #[error("shipment {shipment:?} is already invoiced by {invoice:?}")]
    AlreadyInvoiced {
        /// The shipment.
        shipment: String,
        /// The invoice that used it.
        invoice: String,
    },
    /// The invoice amount exceeds the delivered value of its shipments.
    #[error("amount {amount} exceeds the delivered value {delivered}")]
    AmountExceedsDeliveredValue {
        /// The invoice amount.
        amount: String,
        /// Delivered quantity x unit price.
        delivered: String,
    },
    /// The document hash was used before on the ledger.
    #[error("document hash already used on the ledger")]
    DocumentHashUsed,

    // --- invoices and credit ---
    /// The invoice was already accepted or rejected.
    #[error("invoice {0:?} is not open (already accepted or rejected)")]
    InvoiceNotOpen(String),
    /// Accepting would take the obligor beyond its credit lines.
    #[error(
        "accepting would raise {obligor:?}'s unsettled {currency} to {needed}, above its unexpired credit lines of {limit}"
    )]
    CreditLimitExceeded {
        /// The obligor.
        obligor: String,
        /// The currency.
        currency: String,
        /// Unsettled face value after acceptance.
        needed: String,
        /// Sum of unexpired lines.
        limit: String,
    },

    // --- tokens ---
    /// The token was split (retired) or settled and can never move again.
    #[error("token {0:?} is not live (retired or settled)")]
    TokenNotLive(String),
    /// The amount exceeds the token's face value: an overspend.
    #[error("amount {amount} exceeds the token's face value {face_value}")]
    AmountExceedsFaceValue {
        /// The amount asked for.
        amount: String,
        /// The token's face value.
        face_value: String,
    },
    /// The token has an open offer; withdraw it or let it expire first.
    #[error("token {token:?} is under offer {offer:?}")]
    TokenUnderOffer {
        /// The token.
        token: String,
        /// The open offer.
        offer: String,
    },
    /// The token is at or past maturity: it can only be settled.
    #[error("token {0:?} has reached maturity; it can only be settled")]
    TokenMatured(String),
    /// The offer is not open (withdrawn, discounted or closed).
    #[error("offer {0:?} is not open")]
    OfferNotOpen(String),
    /// The offer lapsed.
    #[error("offer {0:?} has expired")]
    OfferExpired(String),
    /// The bank's rate is above the holder's maximum.
    #[error("rate {rate} is above the offer's maximum {max}")]
    RateAboveOffer {
        /// The bank's rate.
        rate: String,
        /// The holder's maximum.
        max: String,
    },
    /// Rate and tenor would leave no positive proceeds.
    #[error("the discount would leave no positive proceeds")]
    NonPositiveProceeds,
}

impl RejectReason {
    /// The stable machine-readable code of this reason.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Malformed(_) => "malformed",
            RejectReason::WrongChain { .. } => "wrong_chain",
            RejectReason::Expired { .. } => "expired",
            RejectReason::ValidUntilTooFar { .. } => "valid_until_too_far",
            RejectReason::Duplicate { .. } => "duplicate_transaction",
            RejectReason::UnknownSigner(_) => "unknown_signer",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::SignerFrozen(_) => "signer_frozen",
            RejectReason::Unauthorized(_) => "unauthorized",
            RejectReason::WrongRole { .. } => "wrong_role",
            RejectReason::PartyFrozen(_) => "party_frozen",
            RejectReason::SameParty(_) => "same_party",
            RejectReason::InvalidId { .. } => "invalid_id",
            RejectReason::InvalidAmount { .. } => "invalid_amount",
            RejectReason::InvalidRate { .. } => "invalid_rate",
            RejectReason::InvalidCurrency(_) => "invalid_currency",
            RejectReason::InvalidPublicKey => "invalid_public_key",
            RejectReason::InvalidDocumentHash => "invalid_document_hash",
            RejectReason::InvalidTime { .. } => "invalid_time",
            RejectReason::InvalidArgument(_) => "invalid_argument",
            RejectReason::NotFound { .. } => "not_found",
            RejectReason::AlreadyExists { .. } => "already_exists",
            RejectReason::CurrencyMismatch(_) => "currency_mismatch",
            RejectReason::UnknownSku(_) => "unknown_sku",
            RejectReason::OverShipment { .. } => "over_shipment",
            RejectReason::AlreadyDelivered(_) => "already_delivered",
            RejectReason::NotDelivered(_) => "not_delivered",
            RejectReason::ShipmentNotInOrder { .. } => "shipment_not_in_order",
            RejectReason::AlreadyInvoiced { .. } => "already_invoiced",
            RejectReason::AmountExceedsDeliveredValue { .. } => "amount_exceeds_delivered_value",
            RejectReason::DocumentHashUsed => "document_hash_used",
            RejectReason::InvoiceNotOpen(_) => "invoice_not_open",
            RejectReason::CreditLimitExceeded { .. } => "credit_limit_exceeded",
            RejectReason::TokenNotLive(_) => "token_not_live",
            RejectReason::AmountExceedsFaceValue { .. } => "amount_exceeds_face_value",
            RejectReason::TokenUnderOffer { .. } => "token_under_offer",
            RejectReason::TokenMatured(_) => "token_matured",
            RejectReason::OfferNotOpen(_) => "offer_not_open",
            RejectReason::OfferExpired(_) => "offer_expired",
            RejectReason::RateAboveOffer { .. } => "rate_above_offer",
            RejectReason::NonPositiveProceeds => "non_positive_proceeds",
        }
    }
}

/// The name of a role as used in messages and the API.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unspecified => "unspecified",
        Role::Registrar => "registrar",
        Role::Enterprise => "enterprise",
        Role::Bank => "bank",
        Role::Logistics => "logistics",
        Role::Regulator => "regulator",
    }
}

/// Every rejection code, for documentation and for clients that want to list them.
pub const ALL_CODES: &[&str] = &[
    "malformed",
    "wrong_chain",
    "expired",
    "valid_until_too_far",
    "duplicate_transaction",
    "unknown_signer",
    "bad_signature",
    "signer_frozen",
    "unauthorized",
    "wrong_role",
    "party_frozen",
    "same_party",
    "invalid_id",
    "invalid_amount",
    "invalid_rate",
    "invalid_currency",
    "invalid_public_key",
    "invalid_document_hash",
    "invalid_time",
    "invalid_argument",
    "not_found",
    "already_exists",
    "currency_mismatch",
    "unknown_sku",
    "over_shipment",
    "already_delivered",
    "not_delivered",
    "shipment_not_in_order",
    "already_invoiced",
    "amount_exceeds_delivered_value",
    "document_hash_used",
    "invoice_not_open",
    "credit_limit_exceeded",
    "token_not_live",
    "amount_exceeds_face_value",
    "token_under_offer",
    "token_matured",
    "offer_not_open",
    "offer_expired",
    "rate_above_offer",
    "non_positive_proceeds",
];
