//! Generates the prost types from `proto/scf/v1/ledger.proto` with `protox`, a pure-Rust protobuf
//! compiler, so that building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["scf/v1/ledger.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
