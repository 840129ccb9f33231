//! The ledger's integration tests, in one test binary (one link step instead of one per file;
//! rust-analyzer's `tests/it` convention). Each module is one former test file: rules, the
//! reference model, chain verification, decode totality, supervision figures, regressions.
//! Shared harnesses: `common` (a ledger driven by hand) and `model_support` (chains and a
//! driver for the model and chain tests).

mod common;
mod model_support;

mod chain;
mod decode_total;
mod lifecycle;
mod model;
mod regressions;
mod rules;
mod supervision;
