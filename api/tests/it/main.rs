//! The API's integration tests, in one test binary (one link step with RocksDB instead of one
//! per file; rust-analyzer's `tests/it` convention): HTTP behaviour, the OpenAPI document
//! against the server, real scf-node processes, signed reads and supervision reports.

mod common;

mod http;
mod openapi;
mod processes;
mod reads;
mod supervision;
