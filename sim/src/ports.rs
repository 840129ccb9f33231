//! Loopback ports for nodes that must get the same port back when they restart.
//!
//! A port that `bind` to port 0 returns comes from the kernel's ephemeral range, the range it
//! also draws the source port of every outgoing connection from. A node stopped and started
//! again on such a port can find it taken in between by a client's connection (the node's own
//! peers and the load they carry open thousands), and then fails with "Address already in use".
//! The ports here come from below that range, where the kernel hands out nothing by itself.
//!
//! This file is compiled into `testkit` too (by path), so the tests that restart `scf-node`
//! processes pick their ports the way `scf-sim cluster` does.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The lowest port chosen: above the well-known and most registered service ports.
const LOW: u16 = 10_000;
/// Ports tried before giving up on the range (each taken one is skipped).
const ATTEMPTS: u32 = 256;

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A listener on a free loopback port below the ephemeral range, at a place that differs
/// between processes and calls. The caller holds it until every port it needs is chosen (so no
/// two are the same), then drops it for the node to bind. Falls back to a port from the kernel
/// (port 0) when that range is too small or full.
pub fn loopback_listener() -> io::Result<TcpListener> {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let high = ephemeral_start();
    if high > LOW + 1_000 {
        let span = u32::from(high - LOW);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let calls = CALLS.fetch_add(1, Ordering::Relaxed);
        let start = std::process::id().wrapping_mul(2_654_435_761) ^ nanos ^ calls.rotate_left(16);
        for attempt in 0..ATTEMPTS {
            // A prime stride: unless it divides the span, the attempts are different ports.
            let offset = start.wrapping_add(attempt.wrapping_mul(7_919)) % span;
            let port = LOW + u16::try_from(offset).expect("below the span, a u16");
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => return Ok(listener),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
                Err(error) => return Err(error),
            }
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// A [`loopback_listener`]'s address, the listener pushed on `held`: the caller drops `held` once
/// every port it needs is chosen, so that all of them differ.
pub fn hold_loopback_port(held: &mut Vec<TcpListener>) -> io::Result<SocketAddr> {
    let listener = loopback_listener()?;
    let address = listener.local_addr()?;
    held.push(listener);
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the ports are below the ephemeral range (where no outgoing connection can take
    // them while a node is down) and distinct while held.
    #[test]
    fn ports_are_below_the_ephemeral_range_and_distinct() {
        let high = ephemeral_start();
        let held: Vec<TcpListener> = (0..64).map(|_| loopback_listener().unwrap()).collect();
        let mut ports: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).collect();
        if high > LOW + 1_000 {
            assert!(ports.iter().all(|p| (LOW..high).contains(p)), "{ports:?} (range {high})");
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), held.len());
    }
}
