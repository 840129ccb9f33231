//! Fuzz target `decode_then_apply`: the input becomes a block of raw envelopes and of bodies
//! signed with real party keys, applied on a small fixed chain; see
//! `ledger_fuzz::check_decode_then_apply` for the input layout and what is asserted.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ledger_fuzz::check_decode_then_apply(data);
});
