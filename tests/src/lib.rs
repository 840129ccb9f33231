//! Whole-system tests: not built yet.
//!
//! Issue #6 fills this crate with fault-injection tests on real `scf-node` processes (kill -9,
//! pause, partition) and the checker that proves nothing acknowledged was lost. The state
//! machine's own tests live in `ledger/tests`, the simulator's in `sim/tests`.
