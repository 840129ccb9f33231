//! The simulator's integration tests, in one test binary (rust-analyzer's `tests/it`
//! convention): the command-line client, `scf-sim run` against real clusters, and the README's
//! walkthroughs (a receivable's life, failover).

mod common;

mod cli;
mod failover;
mod run;
mod walkthrough;
