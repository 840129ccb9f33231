//! The HTTP API and the `scf-node` binary: not built yet.
//!
//! Issue #4 fills this crate with a warp server over the Raft node: transaction submission,
//! reads with signed-request authorization, status, audit, metrics. It will be the only crate
//! that knows HTTP and JSON (besides the simulator's client).
//!
//! Until then it exports nothing, so nothing can mistake it for a working server.
