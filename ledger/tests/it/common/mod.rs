//! What the ledger's tests share on top of `testkit::chain` (the chain driven by hand): the chain
//! ids of the two families of tests, and the rules tests' standard world (`cast`) with its
//! invoices and tokens, each built one checked transaction at a time.

#![allow(dead_code, missing_docs)]

use ledger::client;
pub use testkit::chain::{CAST, DAY_MS, Driver, T0_MS, doc};

/// The chain of the rules, lifecycle, supervision and decode-totality tests.
pub const CHAIN_ID: &str = "scf-test";
/// The chain of the model-based and chain-verification tests.
pub const MODEL_CHAIN_ID: &str = "scf-model";

/// The standard cast ([`CAST`]), each party registered in a block of its own, and `bank1`
/// granting `core` 1,000,000 EUR.
pub fn cast() -> Driver {
    let mut h = Driver::new(CHAIN_ID);
    for (id, role) in CAST {
        h.register(id, role);
    }
    let expires = h.now_ms + 365 * DAY_MS;
    h.ok("bank1", client::grant_credit_line("L1", "core", "1000000.00", "EUR", expires));
    h
}

/// Order, ship, deliver and invoice `amount` EUR of goods from `sup1` to `core`; returns the
/// invoice id. Ids are derived from `label`.
pub fn delivered_invoice(h: &mut Driver, label: &str, amount: &str) -> String {
    let po = format!("PO-{label}");
    let ship = format!("SH-{label}");
    let inv = format!("INV-{label}");
    h.ok("core", client::create_purchase_order(&po, "sup1", &[("WIDGET", 100, "1000.00")], "EUR"));
    h.ok(
        "sup1",
        client::record_shipment(
            &ship,
            &po,
            &[("WIDGET", 100)],
            "carrier",
            doc(&format!("bol-{label}")),
        ),
    );
    h.ok("core", client::confirm_delivery(&ship));
    let due = h.now_ms + 90 * DAY_MS;
    h.ok(
        "sup1",
        client::issue_invoice(&inv, &po, &[&ship], amount, due, doc(&format!("inv-{label}"))),
    );
    inv
}

/// A delivered invoice accepted with maturity in 90 days; returns the token id.
pub fn accepted_token(h: &mut Driver, label: &str, amount: &str) -> String {
    let inv = delivered_invoice(h, label, amount);
    let maturity = h.now_ms + 90 * DAY_MS;
    let result = h.ok("core", client::accept_invoice(&inv, maturity));
    result.created_ids[0].clone()
}
