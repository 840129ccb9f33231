//! Every ledger command as command-line flags (`scf-sim tx issue-invoice --invoice-id …`) and as
//! JSON (`{"command": "issue_invoice", "invoice_id": …}`): one definition serves both, and
//! [`TxCommand::build`] turns either into the protobuf command that `ledger::client` signs.
//!
//! Times (`expires_at_ms`, `due_date_ms`, `maturity_ms`) are ms since the Unix epoch, or relative
//! to now as `+90d`, `+2h`, `+10m`, `+30s` (ledger time is the leader's clock).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ledger::client;
use ledger::pb::{AccessScope, Role, tx_body::Command};
use serde::Deserialize;

/// A moment: absolute ms since the epoch, or `+N{s,m,h,d}` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AtRepr")]
pub enum At {
    /// Ms since the Unix epoch.
    Ms(u64),
    /// From now.
    In(Duration),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AtRepr {
    Ms(u64),
    Text(String),
}

impl TryFrom<AtRepr> for At {
    type Error = String;

    fn try_from(repr: AtRepr) -> Result<Self, String> {
        match repr {
            AtRepr::Ms(ms) => Ok(At::Ms(ms)),
            AtRepr::Text(text) => text.parse(),
        }
    }
}

impl FromStr for At {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?} is not a time: ms since the epoch, or +90d, +2h, +10m, +30s");
        if let Some(relative) = text.strip_prefix('+') {
            let split = relative.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (number, unit) = relative.split_at(split);
            let number: u64 = number.parse().map_err(|_| bad())?;
            let seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                _ => return Err(bad()),
            };
            let seconds = number.checked_mul(seconds).ok_or_else(bad)?;
            Ok(At::In(Duration::from_secs(seconds)))
        } else {
            text.parse().map(At::Ms).map_err(|_| bad())
        }
    }
}

impl At {
    /// Ms since the epoch, `now_ms` being now.
    pub fn resolve(self, now_ms: u64) -> u64 {
        match self {
            At::Ms(ms) => ms,
            At::In(offset) => {
                now_ms.saturating_add(u64::try_from(offset.as_millis()).unwrap_or(u64::MAX))
            }
        }
    }
}

/// A party's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    /// Buys and sells goods; owes and holds receivables.
    Enterprise,
    /// Grants credit lines and discounts receivables.
    Bank,
    /// Carries goods and attests deliveries.
    Logistics,
    /// Reads everything, may freeze parties.
    Regulator,
}

impl From<PartyRole> for Role {
    fn from(role: PartyRole) -> Self {
        match role {
            PartyRole::Enterprise => Role::Enterprise,
            PartyRole::Bank => Role::Bank,
            PartyRole::Logistics => Role::Logistics,
            PartyRole::Regulator => Role::Regulator,
        }
    }
}

/// An access grant's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every record.
    All,
    /// Purchase orders, shipments, invoices.
    Trade,
    /// Tokens and their lineage.
    Receivables,
    /// Credit lines.
    Credit,
}

impl From<Scope> for AccessScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::All => AccessScope::All,
            Scope::Trade => AccessScope::Trade,
            Scope::Receivables => AccessScope::Receivables,
            Scope::Credit => AccessScope::Credit,
        }
    }
}

/// An order line: `SKU:QUANTITY:UNIT_PRICE` on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units ordered.
    pub quantity: u64,
    /// Decimal price per unit.
    pub unit_price: String,
}

impl FromStr for OrderLine {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [sku, quantity, unit_price] => Ok(OrderLine {
                sku: (*sku).to_owned(),
                quantity: quantity.parse().map_err(|_| format!("{text:?}: bad quantity"))?,
                unit_price: (*unit_price).to_owned(),
            }),
            _ => Err(format!("{text:?} is not an order line SKU:QUANTITY:UNIT_PRICE")),
        }
    }
}

/// A shipment line: `SKU:QUANTITY` on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentLine {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units shipped.
    pub quantity: u64,
}

impl FromStr for ShipmentLine {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((sku, quantity)) => Ok(ShipmentLine {
                sku: sku.to_owned(),
                quantity: quantity.parse().map_err(|_| format!("{text:?}: bad quantity"))?,
            }),
            None => Err(format!("{text:?} is not a shipment line SKU:QUANTITY")),
        }
    }
}

/// Every ledger command (see docs/ledger-rules.md for who may sign which, and its rules).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxCommand {
    /// Register a party (signed by the registrar).
    RegisterParty {
        /// The new party's id.
        #[arg(long)]
        party_id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Its role.
        #[arg(long, value_enum)]
        role: PartyRole,
        /// Its public key, hex (33-byte compressed secp256k1), as `scf-sim keygen` prints it.
        #[arg(long)]
        public_key: String,
    },
    /// Replace the signer's key.
    RotateKey {
        /// The new public key, hex.
        #[arg(long)]
        new_public_key: String,
    },
    /// Freeze or unfreeze a party (registrar or regulator).
    SetFrozen {
        /// The party.
        #[arg(long)]
        party_id: String,
        /// true to freeze, false to unfreeze.
        #[arg(long, action = clap::ArgAction::Set)]
        frozen: bool,
    },
    /// Grant (or change) a credit line to an enterprise (a bank signs).
    GrantCreditLine {
        /// The bank's id for the line.
        #[arg(long)]
        line_id: String,
        /// The enterprise the line is for.
        #[arg(long)]
        obligor: String,
        /// Decimal limit.
        #[arg(long)]
        limit: String,
        /// Currency code, e.g. EUR.
        #[arg(long)]
        currency: String,
        /// When it expires.
        #[arg(long)]
        expires_at_ms: At,
    },
    /// Order goods from a seller (the buyer signs).
    CreatePurchaseOrder {
        /// The order's id.
        #[arg(long)]
        po_id: String,
        /// The seller.
        #[arg(long)]
        seller: String,
        /// Lines, repeated: SKU:QUANTITY:UNIT_PRICE.
        #[arg(long = "line", required = true)]
        lines: Vec<OrderLine>,
        /// Currency code.
        #[arg(long)]
        currency: String,
    },
    /// Record a shipment against an order (the seller signs).
    RecordShipment {
        /// The shipment's id.
        #[arg(long)]
        shipment_id: String,
        /// The order.
        #[arg(long)]
        po_id: String,
        /// Lines, repeated: SKU:QUANTITY.
        #[arg(long = "line", required = true)]
        lines: Vec<ShipmentLine>,
        /// The carrier (a logistics party), if any.
        #[arg(long, default_value = "")]
        #[serde(default)]
        carrier: String,
        /// SHA-256 of the delivery note, hex.
        #[arg(long, required_unless_present = "document")]
        #[serde(default)]
        document_hash: Option<String>,
        /// The delivery note itself: its SHA-256 is recorded (the file stays with you).
        #[arg(long, conflicts_with = "document_hash")]
        #[serde(default)]
        document: Option<PathBuf>,
    },
    /// Confirm a shipment arrived (the buyer, or the carrier as an attestation).
    ConfirmDelivery {
        /// The shipment.
        #[arg(long)]
        shipment_id: String,
    },
    /// Invoice delivered shipments (the seller signs).
    IssueInvoice {
        /// The invoice's id.
        #[arg(long)]
        invoice_id: String,
        /// The order.
        #[arg(long)]
        po_id: String,
        /// The delivered shipments it covers, repeated.
        #[arg(long = "shipment-id", required = true)]
        shipment_ids: Vec<String>,
        /// Decimal amount.
        #[arg(long)]
        amount: String,
        /// The supplier's stated payment term.
        #[arg(long)]
        due_date_ms: At,
        /// SHA-256 of the invoice document, hex.
        #[arg(long, required_unless_present = "document")]
        #[serde(default)]
        document_hash: Option<String>,
        /// The invoice document itself: its SHA-256 is recorded (the file stays with you).
        #[arg(long, conflicts_with = "document_hash")]
        #[serde(default)]
        document: Option<PathBuf>,
    },
    /// Accept an invoice, minting a receivable token (the buyer signs).
    AcceptInvoice {
        /// The invoice.
        #[arg(long)]
        invoice_id: String,
        /// When the buyer pays.
        #[arg(long)]
        maturity_ms: At,
    },
    /// Reject an invoice (the buyer signs).
    RejectInvoice {
        /// The invoice.
        #[arg(long)]
        invoice_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Pass all or part of a token on (the holder signs); a part splits it.
    TransferToken {
        /// The token.
        #[arg(long)]
        token_id: String,
        /// The recipient.
        #[arg(long)]
        to: String,
        /// Decimal amount.
        #[arg(long)]
        amount: String,
    },
    /// Offer a token to a bank for discounting (the holder signs).
    OfferToken {
        /// The token.
        #[arg(long)]
        token_id: String,
        /// The bank.
        #[arg(long)]
        bank: String,
        /// Highest annual discount rate accepted, decimal (0.05 is 5 %).
        #[arg(long)]
        max_annual_rate: String,
        /// When the offer lapses.
        #[arg(long)]
        expires_at_ms: At,
    },
    /// Withdraw an open offer (its maker signs).
    WithdrawOffer {
        /// The offer.
        #[arg(long)]
        offer_id: String,
    },
    /// Buy an offered token at a discount (the bank signs).
    DiscountToken {
        /// The offer.
        #[arg(long)]
        offer_id: String,
        /// Annual discount rate, decimal.
        #[arg(long)]
        annual_rate: String,
    },
    /// Pay a token's holder (the obligor signs).
    SettleToken {
        /// The token.
        #[arg(long)]
        token_id: String,
        /// The payment's reference.
        #[arg(long)]
        payment_reference: String,
    },
    /// Let another party read the signer's records of a scope.
    GrantAccess {
        /// Who may read.
        #[arg(long)]
        grantee: String,
        /// What.
        #[arg(long, value_enum)]
        scope: Scope,
        /// Until when.
        #[arg(long)]
        expires_at_ms: At,
    },
    /// Withdraw an access grant.
    RevokeAccess {
        /// Who.
        #[arg(long)]
        grantee: String,
        /// What.
        #[arg(long, value_enum)]
        scope: Scope,
    },
}

/// A document's SHA-256: given as hex, or computed from the file.
fn document_hash(hash: Option<&String>, path: Option<&PathBuf>) -> anyhow::Result<[u8; 32]> {
    match (hash, path) {
        (Some(hash), None) => {
            let bytes = hex::decode(hash).context("document_hash is not hex")?;
            bytes.try_into().map_err(|_| anyhow::anyhow!("document_hash is not 32 bytes"))
        }
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok(ledger::crypto::sha256(&bytes))
        }
        (Some(_), Some(_)) => bail!("give document_hash or document, not both"),
        (None, None) => bail!("a document_hash (hex) or a document (file) is needed"),
    }
}

fn public_key(text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = hex::decode(text).context("the public key is not hex")?;
    ledger::crypto::PublicKeyBytes::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("not a secp256k1 public key: {e}"))?;
    Ok(bytes)
}

impl TxCommand {
    /// Parses the JSON form.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        serde_json::from_str(text).context(
            "not a command: expected {\"command\": \"issue_invoice\", ...} with the fields of \
             `scf-sim tx <command> --help` in snake_case",
        )
    }

    /// The protobuf command, with relative times resolved against `now_ms`.
    pub fn build(&self, now_ms: u64) -> anyhow::Result<Command> {
        Ok(match self {
            TxCommand::RegisterParty { party_id, name, role, public_key: key } => {
                client::register_party(party_id, name, (*role).into(), &public_key(key)?)
            }
            TxCommand::RotateKey { new_public_key } => {
                client::rotate_key(&public_key(new_public_key)?)
            }
            TxCommand::SetFrozen { party_id, frozen } => client::set_frozen(party_id, *frozen),
            TxCommand::GrantCreditLine { line_id, obligor, limit, currency, expires_at_ms } => {
                client::grant_credit_line(
                    line_id,
                    obligor,
                    limit,
                    currency,
                    expires_at_ms.resolve(now_ms),
                )
            }
            TxCommand::CreatePurchaseOrder { po_id, seller, lines, currency } => {
                let lines: Vec<(&str, u64, &str)> = (lines.iter())
                    .map(|l| (l.sku.as_str(), l.quantity, l.unit_price.as_str()))
                    .collect();
                client::create_purchase_order(po_id, seller, &lines, currency)
            }
            TxCommand::RecordShipment {
                shipment_id,
                po_id,
                lines,
                carrier,
                document_hash: hash,
                document,
            } => {
                let lines: Vec<(&str, u64)> =
                    lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect();
                let hash = document_hash(hash.as_ref(), document.as_ref())?;
                client::record_shipment(shipment_id, po_id, &lines, carrier, hash)
            }
            TxCommand::ConfirmDelivery { shipment_id } => client::confirm_delivery(shipment_id),
            TxCommand::IssueInvoice {
                invoice_id,
                po_id,
                shipment_ids,
                amount,
                due_date_ms,
                document_hash: hash,
                document,
            } => {
                let shipments: Vec<&str> = shipment_ids.iter().map(String::as_str).collect();
                client::issue_invoice(
                    invoice_id,
                    po_id,
                    &shipments,
                    amount,
                    due_date_ms.resolve(now_ms),
                    document_hash(hash.as_ref(), document.as_ref())?,
                )
            }
            TxCommand::AcceptInvoice { invoice_id, maturity_ms } => {
                client::accept_invoice(invoice_id, maturity_ms.resolve(now_ms))
            }
            TxCommand::RejectInvoice { invoice_id, reason } => {
                client::reject_invoice(invoice_id, reason)
            }
            TxCommand::TransferToken { token_id, to, amount } => {
                client::transfer_token(token_id, to, amount)
            }
            TxCommand::OfferToken { token_id, bank, max_annual_rate, expires_at_ms } => {
                client::offer_token(token_id, bank, max_annual_rate, expires_at_ms.resolve(now_ms))
            }
            TxCommand::WithdrawOffer { offer_id } => client::withdraw_offer(offer_id),
            TxCommand::DiscountToken { offer_id, annual_rate } => {
                client::discount_token(offer_id, annual_rate)
            }
            TxCommand::SettleToken { token_id, payment_reference } => {
                client::settle_token(token_id, payment_reference)
            }
            TxCommand::GrantAccess { grantee, scope, expires_at_ms } => {
                client::grant_access(grantee, (*scope).into(), expires_at_ms.resolve(now_ms))
            }
            TxCommand::RevokeAccess { grantee, scope } => {
                client::revoke_access(grantee, (*scope).into())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: TxCommand,
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn flags_and_json_give_the_same_command() {
        let flags = Cli::try_parse_from([
            "tx",
            "create-purchase-order",
            "--po-id",
            "po-1",
            "--seller",
            "parts",
            "--line",
            "bolt:100:0.25",
            "--line",
            "nut:50:0.10",
            "--currency",
            "EUR",
        ])
        .expect("flags parse")
        .command;
        let json = TxCommand::from_json(
            r#"{"command": "create_purchase_order", "po_id": "po-1", "seller": "parts",
                "lines": [{"sku": "bolt", "quantity": 100, "unit_price": "0.25"},
                          {"sku": "nut", "quantity": 50, "unit_price": "0.10"}],
                "currency": "EUR"}"#,
        )
        .expect("JSON parses");
        assert_eq!(flags, json);
        assert_eq!(flags.build(NOW).unwrap(), json.build(NOW).unwrap());
        assert_eq!(
            flags.build(NOW).unwrap(),
            client::create_purchase_order(
                "po-1",
                "parts",
                &[("bolt", 100, "0.25"), ("nut", 50, "0.10")],
                "EUR"
            )
        );
    }

    #[test]
    fn times_are_absolute_or_relative() {
        let json = TxCommand::from_json(
            r#"{"command": "accept_invoice", "invoice_id": "i", "maturity_ms": "+90d"}"#,
        )
        .unwrap();
        assert_eq!(json.build(NOW).unwrap(), client::accept_invoice("i", NOW + 90 * 86_400_000));
        let json = TxCommand::from_json(
            r#"{"command": "accept_invoice", "invoice_id": "i", "maturity_ms": 5}"#,
        )
        .unwrap();
        assert_eq!(json.build(NOW).unwrap(), client::accept_invoice("i", 5));
        for bad in ["+9x", "+d", "soon", "-5"] {
            assert!(bad.parse::<At>().is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_are_hashed_or_given() {
        let given = TxCommand::from_json(&format!(
            r#"{{"command": "record_shipment", "shipment_id": "s", "po_id": "p",
                "lines": [{{"sku": "bolt", "quantity": 1}}], "document_hash": "{}"}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(
            given.build(NOW).unwrap(),
            client::record_shipment("s", "p", &[("bolt", 1)], "", [0xab; 32])
        );
        let missing = TxCommand::from_json(
            r#"{"command": "record_shipment", "shipment_id": "s", "po_id": "p",
                "lines": [{"sku": "bolt", "quantity": 1}]}"#,
        )
        .unwrap();
        let error = missing.build(NOW).unwrap_err().to_string();
        assert!(error.contains("document"), "{error}");
    }

    #[test]
    fn bad_commands_get_clear_errors() {
        for (json, says) in [
            (r#"{"command": "mint_money"}"#, "mint_money"),
            (r#"{"command": "settle_token", "token_id": "t"}"#, "payment_reference"),
            (
                r#"{"command": "settle_token", "token_id": "t", "payment_reference": "p", "x": 1}"#,
                "x",
            ),
            ("[1, 2]", "command"),
        ] {
            let error = format!("{:#}", TxCommand::from_json(json).unwrap_err());
            assert!(error.contains(says), "{json}: {error}");
        }
        let bad_key =
            TxCommand::from_json(r#"{"command": "rotate_key", "new_public_key": "zz"}"#).unwrap();
        assert!(bad_key.build(NOW).is_err());
        assert!(Cli::try_parse_from(["tx", "create-purchase-order", "--po-id", "p"]).is_err());
        assert!("bolt:many:1.0".parse::<OrderLine>().is_err());
    }
}
