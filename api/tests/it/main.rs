//! The API's integration tests, in one test binary (one link step with RocksDB instead of one
//! per file; rust-analyzer's `tests/it` convention): HTTP behaviour, the OpenAPI document
//! against the server, signed reads and supervision reports. (`tests/processes.rs`, real
//! scf-node processes, is a binary of its own: it reserves its nodes' ports by binding and
//! releasing them, which races with any other test binding ports in the same process.)

mod common;

mod access;
mod http;
mod limits;
mod openapi;
mod reads;
mod supervision;
