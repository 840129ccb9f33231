//! Fuzz target `decode`: arbitrary bytes at `DecodedTx::decode` and at the prost decoders of
//! `SignedTx`, `TxBody` and `Block`; see `ledger_fuzz::check_decode` for what is asserted.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ledger_fuzz::check_decode(data));
