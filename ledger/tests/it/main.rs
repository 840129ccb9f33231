//! The ledger's integration tests, in one test binary (one link step instead of one per file;
//! rust-analyzer's `tests/it` convention). Each module is one former test file: rules, the
//! reference model, chain verification, decode totality, supervision figures, regressions, and the docs' test vectors.
//! The chain driven by hand is `testkit::chain`; `common` holds the chain ids and the rules
//! tests' standard world on top of it.

mod common;

mod chain;
mod decode_total;
mod lifecycle;
mod model;
mod regressions;
mod rules;
mod supervision;
mod vectors;
