//! A real cluster in one process: 3 voters and an observer, each a `Replica` thread over
//! RocksDB in its own directory, talking TCP on loopback. A workload of signed transactions runs
//! from several concurrent clients while each voter in turn (the leader first) is stopped and
//! restarted from its disk. Then a second observer joins with an empty disk and catches up from
//! a snapshot. At the end every replica has the same chain, the chain verifies with every
//! signature, and every transaction a client saw applied is in it exactly where it was reported.
//!
//! What it does not show: a stop here lands between two turns of the replica's loop, never in
//! the middle of a write, so it is a restart test, not a SIGKILL test (those need the `scf-node`
//! process). Every wait is bounded; a failure says which step did not finish.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::client::Identity;
use ledger::crypto::SigningKey;
use ledger::pb::SignedTx;
use ledger::{ChainVerifier, Genesis, Ledger, query};
use raft::eraftpb::ConfState;
use raft::eraftpb::Message;
use raft_node::node::{NodeConfig, NodeStatus, ProposeError, RaftRole};
use raft_node::replica::{Mailbox, Replica, ReplicaConfig, ReplicaThread, SubmitError};
use raft_node::rocks::RocksLogStore;
use raft_node::transport::{Inbound, Sink, TcpConfig, TcpTransport, Transport, bind};
use std::sync::atomic::AtomicBool;
use testkit::chain::party_registration;
use testkit::{TestDir, now_ms};

const CHAIN_ID: &str = "scf-tcp-cluster-test";
const VOTERS: [u64; 3] = [1, 2, 3];
const OBSERVER: u64 = 4;
/// Joins at the end with an empty disk.
const LATE_OBSERVER: u64 = 5;
const CLIENTS: usize = 8;
/// Transactions acknowledged between two steps of the nemesis.
const PROGRESS: u64 = 150;
const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// The real transport with a switch the test controls: while `cut` is on, the replica sends and
/// hears no raft messages, as if its network cable were pulled.
struct Switched {
    inner: TcpTransport,
    cut: Arc<AtomicBool>,
}

impl Transport for Switched {
    fn send(&mut self, message: Message) {
        if !self.cut.load(Ordering::Relaxed) {
            self.inner.send(message);
        }
    }

    fn add_peer(&mut self, id: u64, address: SocketAddr) {
        self.inner.add_peer(id, address);
    }

    fn remove_peer(&mut self, id: u64) {
        self.inner.remove_peer(id);
    }

    fn learn_peer(&mut self, id: u64, address: SocketAddr) {
        self.inner.learn_peer(id, address);
    }

    fn set_members(&mut self, members: &std::collections::BTreeSet<u64>) {
        self.inner.set_members(members);
    }

    fn disconnect(&mut self, id: u64) {
        self.inner.disconnect(id);
    }
}

fn switched_sink(sink: Sink, cut: Arc<AtomicBool>) -> Sink {
    Arc::new(move |item| {
        if cut.load(Ordering::Relaxed) && matches!(item, Inbound::Message(_)) {
            return true;
        }
        sink(item)
    })
}

/// What a client learned about one transaction.
#[derive(Debug, Clone)]
enum Seen {
    Applied {
        height: u64,
    },
    /// Stopped or unknown: to be looked up at the end.
    Unknown,
}

struct Cluster {
    runtime: tokio::runtime::Runtime,
    ledger: Ledger,
    conf_state: ConfState,
    addresses: BTreeMap<u64, SocketAddr>,
    dirs: BTreeMap<u64, TestDir>,
    running: BTreeMap<u64, ReplicaThread>,
    /// Handles the clients use; a stopped replica's handle is removed.
    handles: Arc<Mutex<BTreeMap<u64, Replica>>>,
    /// Each replica's network switch.
    cut: BTreeMap<u64, Arc<AtomicBool>>,
    /// Client wait before an outcome is called unknown.
    submit_timeout: Duration,
}

impl Cluster {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let registrar = registrar();
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            registrar_public_key: registrar.key.public_key(),
            time_ms: now_ms(),
        };
        let conf_state = ConfState {
            voters: VOTERS.to_vec(),
            learners: vec![OBSERVER, LATE_OBSERVER],
            ..Default::default()
        };
        // Every replica's peer address is fixed up front: port 0 picks it, and a restarted
        // replica binds the same one again.
        let mut addresses = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in VOTERS.into_iter().chain([OBSERVER, LATE_OBSERVER]) {
            let _guard = runtime.enter();
            let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
            addresses.insert(id, listener.local_addr().unwrap());
            dirs.insert(id, TestDir::new(&format!("node-{id}")));
        }
        Self {
            runtime,
            ledger: Ledger::new(genesis),
            conf_state,
            addresses,
            dirs,
            running: BTreeMap::new(),
            handles: Arc::new(Mutex::new(BTreeMap::new())),
            cut: BTreeMap::new(),
            submit_timeout: Duration::from_secs(10),
        }
    }

    fn start(&mut self, id: u64, with_genesis: bool) {
        let writes = self.ledger.genesis_writes();
        let genesis = with_genesis.then_some((&writes, &self.conf_state));
        let store = RocksLogStore::open(self.dirs[&id].path(), genesis).expect("store opens");
        let node = NodeConfig { compact_after_entries: 40, ..NodeConfig::new(id) };
        let mut config = ReplicaConfig::new(node);
        config.tick = Duration::from_millis(20);
        config.submit_timeout = self.submit_timeout;
        let mailbox = Mailbox::new(&config);
        let cut = self.cut.entry(id).or_default().clone();
        cut.store(false, Ordering::Relaxed);
        let _guard = self.runtime.enter();
        let listener = bind(self.addresses[&id]).expect("the replica's port is free again");
        let mut transport = TcpTransport::start(
            TcpConfig::new(id, CHAIN_ID),
            listener,
            self.runtime.handle().clone(),
            switched_sink(mailbox.sink(), cut.clone()),
        )
        .unwrap();
        for (&peer, &address) in &self.addresses {
            transport.add_peer(peer, address);
        }
        let transport = Switched { inner: transport, cut };
        let thread = Replica::start(config, store, self.ledger.clone(), transport, mailbox)
            .expect("replica starts");
        self.handles.lock().unwrap().insert(id, thread.handle());
        self.running.insert(id, thread);
    }

    fn stop(&mut self, id: u64) {
        self.handles.lock().unwrap().remove(&id);
        let thread = self.running.remove(&id).expect("running");
        thread.stop().expect("the replica stops without error");
    }

    fn statuses(&self) -> BTreeMap<u64, NodeStatus> {
        let handles = self.handles.lock().unwrap().clone();
        self.runtime.block_on(async {
            let mut out = BTreeMap::new();
            for (id, handle) in handles {
                if let Some(status) = handle.status().await {
                    out.insert(id, status);
                }
            }
            out
        })
    }

    fn leader(&self) -> Option<u64> {
        self.statuses().values().find(|s| s.role == RaftRole::Leader).map(|s| s.id)
    }

    fn assert_all_running(&self) {
        for (id, thread) in &self.running {
            assert!(!thread.is_finished(), "replica {id} stopped by itself");
        }
    }
}

fn registrar() -> Identity {
    Identity::new(CHAIN_ID, "registrar", SigningKey::from_seed("tcp-cluster/registrar"))
}

/// Transaction `i`: the registrar registers party `p-i`, always valid and a distinct hash.
fn transaction(i: u64, valid_until_ms: u64) -> SignedTx {
    registrar().sign(valid_until_ms, i, party_registration("tcp-cluster", i))
}

struct Workload {
    next: AtomicU64,
    applied: AtomicU64,
    failures: AtomicUsize,
    stop: std::sync::atomic::AtomicBool,
    seen: Mutex<BTreeMap<u64, (SignedTx, Seen)>>,
}

/// One client: submits transactions one at a time to whichever replica it believes leads,
/// following leader hints and resubmitting what was certainly not applied.
async fn client(workload: Arc<Workload>, handles: Arc<Mutex<BTreeMap<u64, Replica>>>) {
    let valid_until = now_ms() + 3_600_000;
    let mut target = VOTERS[0];
    while !workload.stop.load(Ordering::Relaxed) {
        let i = workload.next.fetch_add(1, Ordering::Relaxed);
        let tx = transaction(i, valid_until);
        loop {
            let handle = handles.lock().unwrap().get(&target).cloned();
            let Some(handle) = handle else {
                target = VOTERS[(i as usize + target as usize) % VOTERS.len()];
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            match handle.submit(tx.clone()).await {
                Ok(committed) => {
                    assert!(
                        committed.result.applied,
                        "tx {i} rejected: {:?}",
                        committed.result.reject_code
                    );
                    workload.applied.fetch_add(1, Ordering::Relaxed);
                    let seen = Seen::Applied { height: committed.height };
                    workload.seen.lock().unwrap().insert(i, (tx, seen));
                    break;
                }
                Err(SubmitError::Propose(ProposeError::NotLeader { leader_hint })) => {
                    target = leader_hint.unwrap_or(VOTERS[(target as usize) % VOTERS.len()]);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Certainly not applied: the same transaction may go again.
                Err(
                    SubmitError::Propose(ProposeError::Dropped | ProposeError::Overloaded { .. })
                    | SubmitError::Busy,
                ) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(SubmitError::Stopped | SubmitError::Propose(ProposeError::Unknown)) => {
                    workload.failures.fetch_add(1, Ordering::Relaxed);
                    workload.seen.lock().unwrap().insert(i, (tx, Seen::Unknown));
                    break;
                }
                Err(other) => panic!("tx {i}: unexpected error {other}"),
            }
        }
    }
}

/// Waits until `count` more transactions are applied, or fails naming `step`.
fn await_progress(cluster: &Cluster, workload: &Workload, count: u64, step: &str) {
    let goal = workload.applied.load(Ordering::Relaxed) + count;
    let deadline = Instant::now() + STEP_DEADLINE;
    while workload.applied.load(Ordering::Relaxed) < goal {
        cluster.assert_all_running();
        assert!(Instant::now() < deadline, "no progress during {step}: {:?}", cluster.statuses());
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Goal: the cluster keeps applying transactions while any one voter (the leader included) is
// down, every restarted voter and a late observer catch up, and every replica ends with the
// same verified chain holding every acknowledged transaction exactly once.
#[test]
fn cluster_survives_voter_restarts_over_tcp() {
    let mut cluster = Cluster::new();
    for id in VOTERS.into_iter().chain([OBSERVER]) {
        cluster.start(id, true);
    }
    let workload = Arc::new(Workload {
        next: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        failures: AtomicUsize::new(0),
        stop: std::sync::atomic::AtomicBool::new(false),
        seen: Mutex::new(BTreeMap::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| cluster.runtime.spawn(client(workload.clone(), cluster.handles.clone())))
        .collect();
    await_progress(&cluster, &workload, PROGRESS, "start-up");

    // Each voter once, the current leader first.
    let deadline = Instant::now() + STEP_DEADLINE;
    let first = loop {
        if let Some(leader) = cluster.leader() {
            break leader;
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(20));
    };
    let first_term = cluster.statuses()[&first].term;
    let mut order = vec![first];
    order.extend(VOTERS.into_iter().filter(|v| *v != first));
    for voter in order {
        cluster.stop(voter);
        await_progress(&cluster, &workload, PROGRESS, &format!("voter {voter} down"));
        cluster.start(voter, true);
        await_progress(&cluster, &workload, PROGRESS, &format!("voter {voter} back"));
    }

    workload.stop.store(true, Ordering::Relaxed);
    cluster.runtime.block_on(async {
        for client in clients {
            client.await.expect("client task");
        }
    });

    // A regulator's observer joins with an empty disk: the log it needs is compacted away, so
    // it must take (and verify) a snapshot.
    cluster.start(LATE_OBSERVER, false);

    // Every replica reaches the leader's applied index with the same tip.
    let deadline = Instant::now() + STEP_DEADLINE;
    let statuses = loop {
        cluster.assert_all_running();
        let statuses = cluster.statuses();
        let tips: Vec<_> = statuses
            .values()
            .map(|s| (s.applied_index, s.height, s.last_block_hash.clone(), s.state_hash.clone()))
            .collect();
        if statuses.len() == 5 && tips.windows(2).all(|w| w[0] == w[1]) {
            break statuses;
        }
        assert!(Instant::now() < deadline, "replicas do not converge: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let height = statuses[&1].height;
    assert!(statuses[&OBSERVER].observer && statuses[&LATE_OBSERVER].observer);
    assert!(
        statuses[&LATE_OBSERVER].snapshots_installed >= 1,
        "the late observer caught up without a snapshot: compaction did not happen"
    );
    let terms = statuses[&1].term;
    assert!(terms > first_term, "still term {terms}: the leader was never replaced");

    // Every replica's chain verifies, signatures included, and is the same chain; each holds
    // every acknowledged transaction once, at the reported height.
    let seen = std::mem::take(&mut *workload.seen.lock().unwrap());
    let applied = seen.values().filter(|(_, s)| matches!(s, Seen::Applied { .. })).count();
    assert!(applied as u64 >= 7 * PROGRESS, "only {applied} transactions applied");
    let genesis = cluster.ledger.genesis().clone();
    let handles = cluster.handles.lock().unwrap().clone();
    let mut reference = None;
    for (id, handle) in handles {
        let seen = seen.clone();
        let genesis = genesis.clone();
        let blocks = cluster
            .runtime
            .block_on(handle.read(move |state| {
                let mut verifier = ChainVerifier::new(&genesis, true);
                let blocks = query::blocks(state, 1, usize::try_from(height).unwrap()).unwrap();
                for block in &blocks {
                    verifier.verify_block(block).unwrap_or_else(|e| panic!("replica {id}: {e}"));
                }
                for (i, (tx, outcome)) in &seen {
                    let hash = ledger::tx::tx_hash(tx);
                    let record = query::transaction(state, &hash).unwrap();
                    match outcome {
                        Seen::Applied { height } => {
                            let record =
                                record.unwrap_or_else(|| panic!("replica {id} lost tx {i}"));
                            assert!(record.result.applied);
                            assert_eq!(record.height, *height, "replica {id}: tx {i}");
                        }
                        // Whatever happened is on the chain, or nothing did.
                        Seen::Unknown => assert!(record.is_none_or(|r| r.result.applied)),
                    }
                }
                blocks
            }))
            .expect("replica answers");
        assert_eq!(blocks.len() as u64, height);
        // The same hash may be in the chain once only: a second copy would be a rejection.
        let applied_hashes: usize =
            blocks.iter().flat_map(|b| &b.results).filter(|r| r.applied).count();
        assert_eq!(applied_hashes, blocks.iter().map(|b| b.txs.len()).sum::<usize>());
        match &reference {
            None => reference = Some(blocks),
            Some(reference) => assert!(reference == &blocks, "replica {id} has another chain"),
        }
    }

    eprintln!(
        "{applied} transactions applied, {} unknown, height {height}, term {terms}",
        seen.len() - applied
    );
    for id in cluster.running.keys().copied().collect::<Vec<_>>() {
        cluster.stop(id);
    }
}

/// Submits `tx` to whichever voter leads, following hints, until it is applied.
fn submit_applied(cluster: &Cluster, tx: SignedTx) -> u64 {
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "no leader applied the transaction");
        let Some(leader) = cluster.leader() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let handle = cluster.handles.lock().unwrap()[&leader].clone();
        match cluster.runtime.block_on(handle.submit(tx.clone())) {
            Ok(committed) => {
                assert!(committed.result.applied, "{:?}", committed.result.reject_code);
                return committed.height;
            }
            Err(SubmitError::Propose(ProposeError::NotLeader { .. } | ProposeError::Dropped)) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
}

// Goal: a regulator's observer that is not in the cluster's configuration, started with an
// empty disk, is added at runtime through the leader, catches up, and answers linearizable reads
// that see every transaction acknowledged before them; removing it takes it out of the members.
#[test]
fn observer_joins_at_runtime_and_reads_linearizably() {
    let mut cluster = Cluster::new();
    cluster.conf_state = ConfState { voters: VOTERS.to_vec(), ..Default::default() };
    for id in VOTERS {
        cluster.start(id, true);
    }
    let valid_until = now_ms() + 3_600_000;
    for i in 0..60 {
        submit_applied(&cluster, transaction(i, valid_until));
    }
    // The observer's own configuration names the voters (`Cluster::start` gives every replica
    // every address); the voters learn its address from the membership change.
    cluster.addresses.remove(&LATE_OBSERVER);
    let observer_address = {
        let _guard = cluster.runtime.enter();
        bind("127.0.0.1:0".parse().unwrap()).unwrap().local_addr().unwrap()
    };
    cluster.addresses.insert(OBSERVER, observer_address);
    cluster.start(OBSERVER, false);
    let leader = cluster.leader().expect("a leader");
    let handle = cluster.handles.lock().unwrap()[&leader].clone();
    let change = raft_node::node::MembershipChange::AddObserver {
        id: OBSERVER,
        address: observer_address.to_string(),
    };
    cluster.runtime.block_on(handle.change_membership(change)).expect("the change is proposed");

    let observer = cluster.handles.lock().unwrap()[&OBSERVER].clone();
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        cluster.assert_all_running();
        let members = cluster.runtime.block_on(observer.members()).expect("observer runs");
        if members.observers == vec![OBSERVER] && members.voters.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the observer never saw itself added: {members:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Each acknowledged write is visible to a linearizable read on the observer right away.
    for i in 60..80 {
        let tx = transaction(i, valid_until);
        let hash = ledger::tx::tx_hash(&tx);
        let height = submit_applied(&cluster, tx);
        let found = cluster
            .runtime
            .block_on(observer.read_linearizable(move |state| {
                query::transaction(state, &hash).unwrap().map(|r| r.height)
            }))
            .expect("a linearizable read on the observer");
        assert_eq!(found, Some(height), "tx {i} not visible to a linearizable read");
    }
    let status = cluster.runtime.block_on(observer.status()).unwrap();
    assert!(status.observer && status.role != RaftRole::Leader);

    let leader = cluster.leader().expect("a leader");
    let handle = cluster.handles.lock().unwrap()[&leader].clone();
    let change = raft_node::node::MembershipChange::Remove { id: OBSERVER };
    cluster.runtime.block_on(handle.change_membership(change)).expect("removal proposed");
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        let members = cluster.runtime.block_on(handle.members()).unwrap();
        if members.observers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the observer was never removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A change that makes no sense is refused before it is proposed.
    let change = raft_node::node::MembershipChange::Remove { id: 42 };
    assert!(matches!(
        cluster.runtime.block_on(handle.change_membership(change)),
        Err(raft_node::node::MembershipError::Invalid(_))
    ));
    for id in cluster.running.keys().copied().collect::<Vec<_>>() {
        cluster.stop(id);
    }
}

// Goal: a leader cut off from the other voters steps down; a transaction it accepted while cut
// off is answered with `Timeout` (outcome unknown) rather than left hanging or reported applied;
// the rest of the cluster elects a leader and goes on; once the cut is healed the old leader
// follows the new chain, on which that transaction never appears.
#[test]
fn a_partitioned_leader_steps_down_and_its_proposals_fail_cleanly() {
    let mut cluster = Cluster::new();
    cluster.conf_state = ConfState { voters: VOTERS.to_vec(), ..Default::default() };
    cluster.submit_timeout = Duration::from_secs(1);
    for id in VOTERS {
        cluster.start(id, true);
    }
    let valid_until = now_ms() + 3_600_000;
    for i in 0..20 {
        submit_applied(&cluster, transaction(i, valid_until));
    }
    let old = cluster.leader().expect("a leader");
    let old_handle = cluster.handles.lock().unwrap()[&old].clone();
    cluster.cut[&old].store(true, Ordering::Relaxed);

    let stranded = transaction(1_000, valid_until);
    let stranded_hash = ledger::tx::tx_hash(&stranded);
    let answer = cluster.runtime.block_on(old_handle.submit(stranded));
    // It was leading when cut, so it accepted the transaction; cut off, it can neither commit
    // it nor learn its fate: the honest answer is "unknown", after the submit timeout.
    assert_eq!(answer, Err(SubmitError::Timeout), "a cut-off leader answered {answer:?}");

    // The old leader gives up leadership (check-quorum); the others elect a new one and commit.
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        let status = cluster.runtime.block_on(old_handle.status()).unwrap();
        if status.role != RaftRole::Leader {
            break;
        }
        assert!(Instant::now() < deadline, "the cut-off leader never stepped down");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut new_leader = None;
    let deadline = Instant::now() + STEP_DEADLINE;
    while new_leader.is_none() {
        assert!(Instant::now() < deadline, "the majority elected no leader");
        new_leader = cluster.statuses().values().find(|s| s.role == RaftRole::Leader).map(|s| s.id);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(new_leader, Some(old));
    for i in 20..40 {
        submit_applied(&cluster, transaction(i, valid_until));
    }

    cluster.cut[&old].store(false, Ordering::Relaxed);
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        let statuses = cluster.statuses();
        let tips: Vec<_> =
            statuses.values().map(|s| (s.applied_index, s.state_hash.clone())).collect();
        if tips.windows(2).all(|w| w[0] == w[1]) && statuses[&old].leader_id != 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the old leader never caught up: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let found = cluster
        .runtime
        .block_on(old_handle.read(move |state| query::transaction(state, &stranded_hash).unwrap()))
        .unwrap();
    assert!(found.is_none(), "a transaction proposed by a cut-off leader was applied");
    for id in cluster.running.keys().copied().collect::<Vec<_>>() {
        cluster.stop(id);
    }
}

// Goal: reads run off the replica's thread (issue #19). A read held open for as long as the test
// likes does not hold up the replica: while it is held the leader answers its status and
// commits more blocks, and the read's view stays one state throughout (a RocksDB snapshot), at
// the height it began at. On the old design, where reads ran on the replica's thread, the status
// below times out.
#[test]
fn a_slow_read_does_not_hold_up_the_replica() {
    let mut cluster = Cluster::new();
    cluster.conf_state = ConfState { voters: VOTERS.to_vec(), ..Default::default() };
    for id in VOTERS {
        cluster.start(id, true);
    }
    let valid_until = now_ms() + 3_600_000;
    submit_applied(&cluster, transaction(0, valid_until));
    let leader = cluster.leader().expect("a leader");
    let handle = cluster.handles.lock().unwrap()[&leader].clone();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (entered, entering) = std::sync::mpsc::channel::<()>();
    let reader = handle.clone();
    let read = cluster.runtime.spawn(async move {
        reader
            .read(move |state| {
                let tip =
                    |state: &dyn ledger::StateStore| query::tip(state).unwrap().map(|t| t.height);
                let first = tip(state);
                entered.send(()).unwrap();
                released.recv_timeout(Duration::from_secs(30)).expect("the test releases the read");
                (first, tip(state))
            })
            .await
    });
    entering.recv_timeout(Duration::from_secs(10)).expect("the read began");
    let status = cluster
        .runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), handle.status()).await })
        .expect("the leader answers its status while a read is held")
        .expect("the leader runs");
    for i in 1..20 {
        submit_applied(&cluster, transaction(i, valid_until));
    }
    release.send(()).unwrap();
    let (first, last) = cluster.runtime.block_on(read).unwrap().expect("the read ran");
    assert_eq!(first, last, "the read's view moved while it was held");
    let now = cluster.runtime.block_on(handle.status()).expect("the leader runs").height;
    assert!(
        now >= first.expect("a tip") + 19,
        "19 blocks committed meanwhile: {first:?} then {now}"
    );
    assert!(status.height >= first.expect("a tip"));
    for id in cluster.running.keys().copied().collect::<Vec<_>>() {
        cluster.stop(id);
    }
}
