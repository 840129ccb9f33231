//! The deterministic cluster test: several replicas with in-memory stores that forget unsynced
//! writes on a crash, a simulated network that drops, delays, reorders, duplicates and
//! partitions, and logical time, all driven from one seed on one thread.
//!
//! Checked after every step: at most one leader per term; replicas at the same height have the
//! same block hash and state hash. Checked at the end, after healing: every replica converges to
//! the same chain, the chain verifies with every signature (the observer's too), and every
//! transaction a client saw committed is in every replica's chain exactly as reported.
//!
//! `SCF_CLUSTER_SEEDS=N` runs N seeds (default 300, about 30 s of one core), shared by six tests
//! that run in parallel; `SCF_CLUSTER_SEED=S` reruns one. A failure prints its seed and the
//! fault schedule so far.

use std::collections::{BTreeMap, BTreeSet};

use ledger::client::Identity;
use ledger::crypto::SigningKey;
use ledger::pb::SignedTx;
use ledger::{ChainVerifier, Genesis, Ledger, StateStore, query};
use raft::eraftpb::{ConfState, Message};
use raft_node::node::{Node, NodeConfig, Outcome, ProposeError};
use raft_node::storage::{LogStore, MemLogStore};
// The simulator's seeded generator: a seed names the same fault schedule on every machine.
use testkit::chain::party_registration;
use testkit::rng::Rng;

const CHAIN_ID: &str = "scf-cluster-test";
const T0_MS: u64 = 1_700_000_000_000;
/// Logical milliseconds per tick.
const TICK_MS: u64 = 10;
const VOTERS: [u64; 3] = [1, 2, 3];
const OBSERVER: u64 = 4;

#[derive(Debug, Clone, PartialEq)]
enum Ticket {
    /// Not yet accepted by a leader (or to be resubmitted).
    Waiting,
    /// Accepted by this node; outcome pending.
    InFlight(u64),
    /// Committed at this height, applied or rejected with this code.
    Committed { height: u64, applied: bool, code: String },
}

struct Packet {
    deliver_at: u64,
    order: u64,
    message: Message,
}

struct Cluster {
    seed: u64,
    /// Log compaction threshold of every node.
    compact_after: u64,
    /// Most proposals a leader keeps in flight.
    in_flight_max: usize,
    rng: Rng,
    ledger: Ledger,
    nodes: BTreeMap<u64, Node<MemLogStore>>,
    /// Disks of crashed nodes, until they restart.
    down: BTreeMap<u64, (MemLogStore, u64)>,
    network: Vec<Packet>,
    /// Nodes cut off from every other node.
    isolated: BTreeSet<u64>,
    now: u64,
    txs: Vec<SignedTx>,
    tickets: Vec<Ticket>,
    leaders: BTreeMap<u64, u64>,
    tips: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    faults: Vec<String>,
    faults_on: bool,
    /// Snapshots installed by observer processes that have since crashed.
    observer_snapshots: u64,
    /// A node armed to die inside its next Ready round.
    dying: Option<u64>,
    /// Tickets whose entry a leader reported as written to its disk, not yet decided.
    durable: std::collections::HashSet<u64>,
}

impl Cluster {
    fn node_config(&self, id: u64) -> NodeConfig {
        NodeConfig {
            seed: self.seed.wrapping_mul(31).wrapping_add(id).wrapping_add(self.now),
            compact_after_entries: self.compact_after,
            proposals_in_flight_max: self.in_flight_max,
            ..NodeConfig::new(id)
        }
    }

    fn new(seed: u64, tx_count: usize, compact_after: u64) -> Self {
        Self::with_in_flight_max(
            seed,
            tx_count,
            compact_after,
            NodeConfig::new(1).proposals_in_flight_max,
        )
    }

    fn with_in_flight_max(
        seed: u64,
        tx_count: usize,
        compact_after: u64,
        in_flight_max: usize,
    ) -> Self {
        let registrar =
            Identity::new(CHAIN_ID, "registrar", SigningKey::from_seed("cluster/registrar"));
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            registrar_public_key: registrar.key.public_key(),
            time_ms: T0_MS,
        };
        let ledger = Ledger::new(genesis);
        let conf_state =
            ConfState { voters: VOTERS.to_vec(), learners: vec![OBSERVER], ..Default::default() };
        let mut nodes = BTreeMap::new();
        for id in VOTERS.into_iter().chain([OBSERVER]) {
            let store = MemLogStore::new(&ledger.genesis_writes(), conf_state.clone());
            let config =
                NodeConfig { seed: seed.wrapping_mul(31).wrapping_add(id), ..NodeConfig::new(id) };
            nodes.insert(id, Node::new(config, store, ledger.clone()).expect("node starts"));
        }
        // Each transaction registers a new party: always valid, so every one must end applied,
        // and each is a distinct hash a check can look for. Valid for an hour of ledger time.
        let txs = (0..tx_count)
            .map(|i| {
                let command = party_registration("cluster", i as u64);
                registrar.sign(T0_MS + 3_600_000, i as u64, command)
            })
            .collect();
        let mut cluster = Self {
            seed,
            compact_after,
            in_flight_max,
            rng: Rng::new(seed),
            ledger,
            nodes,
            down: BTreeMap::new(),
            network: Vec::new(),
            isolated: BTreeSet::new(),
            now: 0,
            txs,
            tickets: vec![Ticket::Waiting; tx_count],
            leaders: BTreeMap::new(),
            tips: BTreeMap::new(),
            faults: Vec::new(),
            faults_on: true,
            observer_snapshots: 0,
            dying: None,
            durable: std::collections::HashSet::new(),
        };
        for id in VOTERS.into_iter().chain([OBSERVER]) {
            let store = MemLogStore::new(&cluster.ledger.genesis_writes(), conf_state.clone());
            let node = Node::new(cluster.node_config(id), store, cluster.ledger.clone())
                .expect("node starts");
            cluster.nodes.insert(id, node);
        }
        cluster
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {}: {what}\n(rerun with SCF_CLUSTER_SEED={})\nfaults so far:\n  {}",
            self.seed,
            self.seed,
            self.faults.join("\n  ")
        );
    }

    fn send(&mut self, messages: Vec<Message>) {
        // As the TCP transport does, the sender hears what became of each snapshot it sent:
        // written (then it probes the peer again) or lost (then it will send another).
        let mut snapshot_reports = Vec::new();
        for message in messages {
            let cut = self.isolated.contains(&message.from) || self.isolated.contains(&message.to);
            let lost = self.faults_on && (cut || self.rng.percent(5));
            if message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                snapshot_reports.push((message.from, message.to, !lost));
            }
            if lost {
                continue;
            }
            let copies = if self.faults_on && self.rng.percent(3) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = if self.faults_on { self.rng.below(4) } else { 0 };
                let order = self.rng.next_u64();
                self.network.push(Packet {
                    deliver_at: self.now + delay,
                    order,
                    message: message.clone(),
                });
            }
        }
        for (from, to, delivered) in snapshot_reports {
            if let Some(node) = self.nodes.get_mut(&from) {
                node.report_snapshot(to, delivered);
            }
        }
    }

    fn ready(&mut self, id: u64) {
        let Some(node) = self.nodes.get_mut(&id) else { return };
        let messages =
            node.handle_ready().unwrap_or_else(|e| panic!("seed {}: node {id}: {e}", self.seed));
        if node.store().is_dead() {
            // The process died inside that Ready round, at its armed crash point: what it
            // would have sent or answered after that point never left it.
            self.crash(id);
            return;
        }
        for (ticket, index) in node.take_durable() {
            let stored = raft::Storage::entries(
                node.store(),
                index,
                index + 1,
                None,
                raft::GetEntriesContext::empty(false),
            );
            assert!(stored.is_ok(), "seed {}: durable entry {index} is not in the log", self.seed);
            self.durable.insert(ticket);
        }
        for outcome in node.take_outcomes() {
            match outcome {
                Outcome::Committed { ticket, height, result } => {
                    // `wait=false` answers rely on it: the proposer reports its entry written
                    // before it reports its outcome.
                    assert!(
                        self.durable.remove(&ticket),
                        "seed {}: ticket {ticket} committed before it was reported durable",
                        self.seed
                    );
                    let index = usize::try_from(ticket).unwrap();
                    self.tickets[index] = Ticket::Committed {
                        height,
                        applied: result.applied,
                        code: result.reject_code,
                    };
                }
                Outcome::Failed { ticket, error } => {
                    assert!(
                        matches!(
                            error,
                            ProposeError::Dropped
                                | ProposeError::Unknown
                                | ProposeError::NotLeader { .. }
                        ),
                        "seed {}: unexpected failure {error}",
                        self.seed
                    );
                    self.durable.remove(&ticket);
                    // Not applied, or unknown: resubmit. A resubmission of a transaction that was
                    // applied after all comes back as a duplicate, never as a second application.
                    self.tickets[usize::try_from(ticket).unwrap()] = Ticket::Waiting;
                }
            }
        }
        self.send(messages);
    }

    fn step(&mut self) {
        self.now += 1;
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.nodes.get_mut(id).expect("listed").tick();
            self.ready(*id);
        }
        // Deliver what is due, in a seeded order.
        let mut due: Vec<Packet> = Vec::new();
        let mut later = Vec::new();
        for packet in std::mem::take(&mut self.network) {
            if packet.deliver_at <= self.now { due.push(packet) } else { later.push(packet) }
        }
        self.network = later;
        due.sort_by_key(|p| (p.deliver_at, p.order));
        for packet in due {
            let to = packet.message.to;
            if let Some(node) = self.nodes.get_mut(&to) {
                let m = &packet.message;
                let summary = (m.get_msg_type(), m.from, m.term, m.index, m.log_term, m.commit);
                let stepped = node
                    .step(packet.message)
                    .unwrap_or_else(|e| panic!("seed {}: step: {e}", self.seed));
                // Honest messages, however late, lost or repeated, pass the guard.
                assert!(
                    matches!(stepped, raft_node::node::Stepped::Taken),
                    "seed {}: an honest message was refused: {summary:?}",
                    self.seed
                );
                self.ready(to);
            }
        }
        self.submit();
        if self.faults_on {
            self.inject_fault();
        }
        self.check();
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_leader())
            .max_by_key(|(_, n)| n.status().term)
            .map(|(id, _)| *id)
    }

    fn submit(&mut self) {
        let Some(leader) = self.leader() else { return };
        let time_ms = T0_MS + self.now * TICK_MS;
        let mut budget = 8;
        for index in 0..self.tickets.len() {
            if budget == 0 {
                break;
            }
            if self.tickets[index] != Ticket::Waiting {
                continue;
            }
            budget -= 1;
            let node = self.nodes.get_mut(&leader).expect("leader is up");
            match node.submit(index as u64, self.txs[index].clone()) {
                Ok(()) => self.tickets[index] = Ticket::InFlight(leader),
                Err(ProposeError::Overloaded { .. } | ProposeError::NotLeader { .. }) => break,
                Err(error) => self.fail(&format!("submit: {error}")),
            }
        }
        let node = self.nodes.get_mut(&leader).expect("leader is up");
        node.flush(time_ms).unwrap_or_else(|e| panic!("seed {}: flush: {e}", self.seed));
        self.ready(leader);
    }

    fn inject_fault(&mut self) {
        match self.rng.below(1000) {
            0..=9 if self.down.is_empty() => {
                // Crash a random voter or the observer: its unsynced writes are lost. Half the
                // time it dies now, between two rounds; half the time inside its next Ready
                // round, after a random number of its durable writes.
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                let id = *self.rng.pick(&ids);
                if let Some(dying) = self.dying {
                    // Armed but idle since (no durable write came): it dies now instead.
                    self.crash(dying);
                } else if self.rng.percent(50) {
                    self.crash(id);
                } else {
                    let writes = self.rng.below(4);
                    self.nodes[&id].store().arm_crash(writes);
                    self.dying = Some(id);
                    self.faults.push(format!(
                        "t={} {id} will die after {writes} durable writes",
                        self.now
                    ));
                }
            }
            10..=14 if self.isolated.is_empty() => {
                let id = 1 + self.rng.below(4);
                self.isolated.insert(id);
                self.faults.push(format!("t={} isolate {id}", self.now));
            }
            15..=44 if !self.isolated.is_empty() => {
                self.isolated.clear();
                self.faults.push(format!("t={} heal", self.now));
            }
            _ => {}
        }
        let due: Vec<u64> =
            self.down.iter().filter(|(_, (_, at))| *at <= self.now).map(|(id, _)| *id).collect();
        for id in due {
            self.restart(id);
        }
    }

    fn crash(&mut self, id: u64) {
        let node = self.nodes.remove(&id).expect("running");
        if id == OBSERVER {
            self.observer_snapshots += node.snapshots_installed();
        }
        let dying = self.dying == Some(id);
        if dying {
            self.dying = None;
        }
        let restart_at = self.now + 20 + self.rng.below(100);
        self.down.insert(id, (node.store().crashed(), restart_at));
        for (number, ticket) in self.tickets.iter_mut().enumerate() {
            if *ticket == Ticket::InFlight(id) {
                // The client lost its connection: outcome unknown, so it resubmits.
                *ticket = Ticket::Waiting;
                self.durable.remove(&(number as u64));
            }
        }
        let inside = if dying { " inside a Ready round" } else { "" };
        self.faults.push(format!("t={} crash {id}{inside} until t={restart_at}", self.now));
    }

    fn restart(&mut self, id: u64) {
        let (store, _) = self.down.remove(&id).expect("down");
        // The node's own settings (compaction, proposal limit, snapshot verification on the
        // observer), with a seed of its new life.
        let config = self.node_config(id);
        let node = Node::new(config, store, self.ledger.clone())
            .unwrap_or_else(|e| panic!("seed {}: restart {id}: {e}", self.seed));
        self.nodes.insert(id, node);
        self.faults.push(format!("t={} restart {id}", self.now));
    }

    fn check(&mut self) {
        let statuses: Vec<_> = self.nodes.values().map(Node::status).collect();
        for node in self.nodes.values() {
            if node.proposals_in_flight() > self.in_flight_max {
                self.fail(&format!(
                    "node {} has {} proposals in flight, more than {}",
                    node.status().id,
                    node.proposals_in_flight(),
                    self.in_flight_max
                ));
            }
        }
        for status in &statuses {
            if status.role == raft_node::node::RaftRole::Leader {
                if status.observer {
                    self.fail(&format!("observer {} became leader", status.id));
                }
                if let Some(other) = self.leaders.insert(status.term, status.id) {
                    if other != status.id {
                        self.fail(&format!(
                            "two leaders in term {}: {other} and {}",
                            status.term, status.id
                        ));
                    }
                }
            }
            if status.last_block_hash.is_empty() {
                // A replica that joined with an empty disk has no chain until its snapshot.
                continue;
            }
            let tip = (status.last_block_hash.clone(), status.state_hash.clone());
            if let Some(seen) = self.tips.get(&status.height) {
                if *seen != tip {
                    self.fail(&format!("node {} disagrees at height {}", status.id, status.height));
                }
            } else {
                self.tips.insert(status.height, tip);
            }
        }
    }

    /// Heals everything and runs until every replica has applied the same log.
    fn quiesce(&mut self) {
        self.faults_on = false;
        self.isolated.clear();
        if let Some(dying) = self.dying {
            self.crash(dying);
        }
        let down: Vec<u64> = self.down.keys().copied().collect();
        for id in down {
            self.restart(id);
        }
        for _ in 0..3_000 {
            self.step();
            let done = self.tickets.iter().all(|t| matches!(t, Ticket::Committed { .. }));
            let statuses: Vec<_> = self.nodes.values().map(Node::status).collect();
            let same = statuses
                .windows(2)
                .all(|w| w[0].applied_index == w[1].applied_index && w[0].height == w[1].height);
            if done && same && self.leader().is_some() {
                return;
            }
        }
        let tickets_left =
            self.tickets.iter().filter(|t| !matches!(t, Ticket::Committed { .. })).count();
        self.fail(&format!(
            "did not quiesce: {tickets_left} tickets open, statuses {:?}",
            self.nodes.values().map(Node::status).collect::<Vec<_>>()
        ));
    }

    fn final_checks(&self) {
        let reference = &self.nodes[&1];
        let height = reference.status().height;
        let genesis = self.ledger.genesis().clone();
        for (id, node) in &self.nodes {
            let state = node.store().state();
            assert_eq!(node.status().height, height, "seed {}: node {id} height", self.seed);
            let mut verifier = ChainVerifier::new(&genesis, true);
            for h in 1..=height {
                let block = query::block(state, h)
                    .unwrap()
                    .unwrap_or_else(|| self.fail(&format!("node {id} lacks block {h}")));
                let reference_block = query::block(reference.store().state(), h).unwrap().unwrap();
                if block != reference_block {
                    self.fail(&format!("node {id} has another block at height {h}"));
                }
                if let Err(e) = verifier.verify_block(&block) {
                    self.fail(&format!("node {id}: {e}"));
                }
            }
            // Every committed ticket is in the chain as reported, and applied exactly once.
            for (index, ticket) in self.tickets.iter().enumerate() {
                let Ticket::Committed { height: reported, applied, code } = ticket else {
                    unreachable!("quiesce left every ticket committed")
                };
                let hash = ledger::tx::tx_hash(&self.txs[index]);
                let record = query::transaction(state, &hash)
                    .unwrap()
                    .unwrap_or_else(|| self.fail(&format!("tx {index} missing on node {id}")));
                assert!(record.result.applied, "seed {}: tx {index} was never applied", self.seed);
                if *applied {
                    assert_eq!(
                        record.height, *reported,
                        "seed {}: tx {index} reported at another height",
                        self.seed
                    );
                } else {
                    // A resubmission that found the first application.
                    assert_eq!(code, "duplicate_transaction", "seed {}: tx {index}", self.seed);
                }
                assert!(
                    state
                        .get(&ledger::store::keys::party(&format!("p-{index}")))
                        .unwrap()
                        .is_some()
                );
            }
        }
    }
}

/// What one seeded run went through, so the test can show its faults were real.
#[derive(Debug, Default)]
struct Totals {
    crashes: usize,
    /// Crashes inside a Ready round, between two durable writes.
    mid_ready_crashes: usize,
    isolations: usize,
    terms: usize,
    duplicates: usize,
}

fn run_seed(seed: u64) -> Totals {
    let mut cluster = Cluster::new(seed, 120, 1_000);
    for _ in 0..600 {
        cluster.step();
    }
    cluster.quiesce();
    cluster.final_checks();
    Totals {
        crashes: cluster.faults.iter().filter(|f| f.contains("crash")).count(),
        mid_ready_crashes: cluster.faults.iter().filter(|f| f.contains("inside a Ready")).count(),
        isolations: cluster.faults.iter().filter(|f| f.contains("isolate")).count(),
        terms: cluster.leaders.len(),
        duplicates: cluster
            .tickets
            .iter()
            .filter(|t| matches!(t, Ticket::Committed { applied: false, .. }))
            .count(),
    }
}

/// How many `#[test]`s share the seeds, so that the test harness runs them on every core.
const SEED_PARTS: u64 = 6;

/// Runs part `part` of the `SCF_CLUSTER_SEEDS` seeds (default 300) and checks that the faults
/// really happened in it, or the run proves nothing. `SCF_CLUSTER_SEED=S` reruns one seed (in
/// part 0 alone).
fn seeded_part(part: u64) {
    if let Ok(seed) = std::env::var("SCF_CLUSTER_SEED") {
        if part == 0 {
            run_seed(seed.parse().expect("SCF_CLUSTER_SEED is a number"));
        }
        return;
    }
    let seeds_total: u64 =
        std::env::var("SCF_CLUSTER_SEEDS").map_or(300, |s| s.parse().expect("a number"));
    let seeds = seeds_total * part / SEED_PARTS..seeds_total * (part + 1) / SEED_PARTS;
    let mut totals = Totals::default();
    for seed in seeds.clone() {
        // A panic anywhere (raft-rs's own assertions included) names the seed to rerun.
        let run = std::panic::catch_unwind(|| run_seed(seed)).unwrap_or_else(|_| {
            panic!("seed {seed} failed; rerun it with SCF_CLUSTER_SEED={seed}")
        });
        totals.crashes += run.crashes;
        totals.mid_ready_crashes += run.mid_ready_crashes;
        totals.isolations += run.isolations;
        totals.terms += run.terms;
        totals.duplicates += run.duplicates;
    }
    eprintln!("seeds {seeds:?}: {totals:?}");
    let seeds = usize::try_from(seeds.end - seeds.start).unwrap();
    assert!(totals.crashes >= seeds, "too few crashes: {totals:?}");
    assert!(totals.mid_ready_crashes >= seeds / 4, "too few mid-Ready crashes: {totals:?}");
    assert!(totals.isolations >= seeds / 2, "too few partitions: {totals:?}");
    assert!(totals.terms > seeds, "leadership never changed: {totals:?}");
}

// Goal: under drops, delays, reordering, duplication, partitions and crashes that lose unsynced
// writes, the cluster keeps election safety and replica agreement, converges once healed, and
// never loses or doubles a transaction a client saw committed. Runs many seeds, in six parts
// (each checks its own fault counts) so that they run in parallel.
#[test]
fn seeded_clusters_survive_faults_part_1() {
    seeded_part(0);
}

// Goal: as part 1, on the second sixth of the seeds.
#[test]
fn seeded_clusters_survive_faults_part_2() {
    seeded_part(1);
}

// Goal: as part 1, on the third sixth of the seeds.
#[test]
fn seeded_clusters_survive_faults_part_3() {
    seeded_part(2);
}

// Goal: as part 1, on the fourth sixth of the seeds.
#[test]
fn seeded_clusters_survive_faults_part_4() {
    seeded_part(3);
}

// Goal: as part 1, on the fifth sixth of the seeds.
#[test]
fn seeded_clusters_survive_faults_part_5() {
    seeded_part(4);
}

// Goal: as part 1, on the last sixth of the seeds.
#[test]
fn seeded_clusters_survive_faults_part_6() {
    seeded_part(5);
}

// Goal: a seed reruns exactly: the same seed gives the same chain, byte for byte.
#[test]
fn a_seed_reruns_exactly() {
    let chain = |seed| {
        let mut cluster = Cluster::new(seed, 40, 1_000);
        for _ in 0..300 {
            cluster.step();
        }
        cluster.quiesce();
        let node = &cluster.nodes[&1];
        (node.status(), cluster.faults.clone())
    };
    assert_eq!(chain(7), chain(7));
}

// Goal: while a leader has its most proposals in flight, what arrives waits and goes out in one
// larger entry once one is applied: the same transactions, submitted at the same pace, take at
// least a third fewer blocks, and every one is still applied exactly once. (Every step of every
// seeded run also checks that no node ever has more proposals in flight than allowed.)
#[test]
fn a_busy_leader_gathers_transactions_into_fewer_blocks() {
    for seed in 0..4 {
        let heights: Vec<u64> = [1, 1_000]
            .into_iter()
            .map(|in_flight_max| {
                let mut cluster = Cluster::with_in_flight_max(seed, 240, 1_000, in_flight_max);
                cluster.quiesce();
                cluster.final_checks();
                cluster.nodes[&1].status().height
            })
            .collect();
        assert!(
            heights[0] * 3 <= heights[1] * 2,
            "seed {seed}: blocks with 1 proposal in flight, and with 1,000: {heights:?} (about \
             15 and 30: 8 transactions a step, a round of two steps)"
        );
    }
}

// Goal: an observer that joins with an empty disk after the voters compacted their logs catches
// up from a snapshot, re-executes the snapshot's whole chain before adopting it (signatures,
// results, state hashes), and ends with the same chain as the voters.
#[test]
fn late_observer_catches_up_from_a_snapshot() {
    for seed in 0..6 {
        // Compaction after 3 entries: by the time the observer starts, its first entries are gone.
        let mut cluster = Cluster::new(seed, 120, 3);
        cluster.nodes.remove(&OBSERVER);
        // A new data directory, bootstrapped as scf-node bootstraps every one: genesis and the
        // initial members, nothing else (a replica that knows no members refuses every message).
        let conf_state =
            ConfState { voters: VOTERS.to_vec(), learners: vec![OBSERVER], ..Default::default() };
        let blank = MemLogStore::new(&cluster.ledger.genesis_writes(), conf_state);
        cluster.down.insert(OBSERVER, (blank, 400));
        for _ in 0..600 {
            cluster.step();
        }
        cluster.quiesce();
        cluster.final_checks();
        let observer = &cluster.nodes[&OBSERVER];
        let installed = cluster.observer_snapshots + observer.snapshots_installed();
        assert!(installed >= 1, "seed {seed}: the observer never needed a snapshot");
        assert!(observer.status().observer);
    }
}
