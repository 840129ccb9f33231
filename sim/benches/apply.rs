//! `cargo bench -p sim --bench apply`: the cost of the ledger state machine alone.
//!
//! Records a seeded workload once (about 40,000 transactions in blocks of up to 512, pre-signed),
//! then times replaying those blocks from genesis into a fresh in-memory store, which is what
//! every follower and observer does: decode, verify every signature, apply the rules, build the
//! block. It also times signature verification alone, to show its share. Prints one line per
//! measurement; the figures go to BENCHMARKS.md.

use std::time::Instant;

use ledger::crypto::{PublicKeyBytes, SignatureBytes, SigningKey, sha256};
use ledger::pb::SignedTx;
use ledger::{Genesis, Ledger, MemStore};
use sim::inproc::SIM_CHAIN_ID;
use sim::workload::{Workload, WorkloadConfig, party_key};

const T0_MS: u64 = 1_700_000_000_000;
const TXS_TARGET: usize = 40_000;
const BATCH_MAX: usize = 512;

fn main() {
    let seed = 1;
    let genesis = Genesis {
        chain_id: SIM_CHAIN_ID.into(),
        registrar_public_key: party_key(seed, ledger::chain::REGISTRAR_ID).public_key(),
        time_ms: T0_MS,
    };
    let ledger = Ledger::new(genesis);
    let log = record(&ledger, seed);
    let total: usize = log.iter().map(|(_, txs)| txs.len()).sum();
    println!("recorded {total} transactions in {} blocks", log.len());

    for round in 1..=3 {
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let started = Instant::now();
        for (time_ms, txs) in &log {
            let applied = ledger.apply_block(&store, *time_ms, txs.clone()).expect("memory store");
            store.commit(&applied.writes);
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "replay round {round}: {total} tx in {seconds:.2} s = {:.0} tx/s ({:.1} us/tx)",
            total as f64 / seconds,
            seconds * 1e6 / total as f64
        );
    }

    let key = SigningKey::from_seed("bench");
    let public = PublicKeyBytes::parse(&key.public_key().to_bytes()).expect("valid key");
    let digests: Vec<[u8; 32]> = (0u32..20_000).map(|i| sha256(&i.to_be_bytes())).collect();
    let signatures: Vec<SignatureBytes> = digests.iter().map(|d| key.sign_digest(d)).collect();
    let started = Instant::now();
    for (digest, signature) in digests.iter().zip(&signatures) {
        signature.verify(digest, &public).expect("valid signature");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "secp256k1 verify: {:.1} us per signature (one core)",
        seconds * 1e6 / digests.len() as f64
    );
}

/// Runs the workload closed-loop until `TXS_TARGET` transactions and returns its blocks.
fn record(ledger: &Ledger, seed: u64) -> Vec<(u64, Vec<SignedTx>)> {
    let mut store = MemStore::new();
    store.commit(&ledger.genesis_writes());
    let mut workload = Workload::new(WorkloadConfig::new(seed, SIM_CHAIN_ID));
    let mut log = Vec::new();
    let mut now_ms = T0_MS;
    let mut phases = workload.setup(now_ms);
    let mut count = 0;
    while count < TXS_TARGET {
        let batch = if phases.is_empty() {
            std::iter::from_fn(|| workload.next(now_ms)).take(BATCH_MAX).collect()
        } else {
            phases.remove(0)
        };
        let txs: Vec<SignedTx> = batch.iter().map(|p| p.tx.clone()).collect();
        let applied = ledger.apply_block(&store, now_ms, txs.clone()).expect("memory store");
        store.commit(&applied.writes);
        for (planned, result) in batch.iter().zip(&applied.block.results) {
            assert!(
                workload.observe(planned, result),
                "{}: {}",
                planned.kind,
                result.reject_message
            );
        }
        count += txs.len();
        log.push((now_ms, txs));
        now_ms += 100;
    }
    log
}
