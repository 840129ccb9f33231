//! Fuzz target `submission`: arbitrary bytes as the body of `POST /v1/transactions`, through the
//! node's own parser (`api/src/wire.rs`); see `ledger_fuzz::check_submission` for what is
//! asserted.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger_fuzz::check_submission(data));
