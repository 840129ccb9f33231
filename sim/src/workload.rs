//! The supply-chain workload: a cast of parties and many concurrent receivable lives, generated
//! from a seed.
//!
//! A *life* is one receivable from purchase order to settlement: order, ship, deliver, invoice,
//! accept, split to a tier-2 supplier, offer to a bank, discount, settle both pieces. Lives
//! advance only when their previous transaction's outcome has been observed, so the generator
//! works the same in closed loop against a cluster or in process. A share of deliberately bad
//! transactions (double invoicing, overspending a token, a wrong signer, a forged signature, a
//! replay, a second discount of the same offer) is mixed in; each carries the rejection code it
//! must get. A bad transaction is issued only while its life waits, so its outcome cannot race
//! with the life's own steps.
//!
//! The generator never reads a clock: callers pass ledger time in.

use std::collections::{BTreeMap, VecDeque};

use ledger::client::{self, Identity};
use ledger::crypto::{self, SigningKey};
use ledger::pb::{Role, SignedTx, TxResult};
use rust_decimal::Decimal;

use crate::rng::Rng;

const DAY_MS: u64 = 86_400_000;
/// The currency of every order in the workload.
pub const CURRENCY: &str = "EUR";

/// The shape of a workload.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Seed of every random choice and of every key.
    pub seed: u64,
    /// Chain id the transactions are signed for.
    pub chain_id: String,
    /// Core enterprises (buyers and obligors).
    pub core_enterprises: usize,
    /// Tier-1 suppliers (sell to the cores).
    pub tier1_suppliers: usize,
    /// Tier-2 suppliers (paid by tier-1 with split tokens).
    pub tier2_suppliers: usize,
    /// Banks (grant credit lines, discount tokens).
    pub banks: usize,
    /// Carriers (named on shipments).
    pub carriers: usize,
    /// Percentage of transactions that are deliberately bad.
    pub bad_percent: u32,
    /// Most lives in progress at once.
    pub lives_in_flight: usize,
    /// How long each transaction stays valid after it is signed.
    pub tx_validity_ms: u64,
    /// Prefix of every id the workload chooses (parties but the registrar, orders, shipments,
    /// invoices, credit lines, payment references) and part of every document hash, so that
    /// runs with different namespaces can share one chain. Empty for a chain of its own.
    pub namespace: String,
    /// The registrar's key: the chain's, for a real cluster. `None` derives it from the seed
    /// (a chain the simulator creates itself).
    pub registrar_key: Option<SigningKey>,
}

impl WorkloadConfig {
    /// A workload with the default cast for `seed`.
    pub fn new(seed: u64, chain_id: &str) -> Self {
        Self {
            seed,
            chain_id: chain_id.to_owned(),
            core_enterprises: 3,
            tier1_suppliers: 12,
            tier2_suppliers: 24,
            banks: 3,
            carriers: 2,
            bad_percent: 5,
            lives_in_flight: 512,
            tx_validity_ms: 10 * 60_000,
            namespace: String::new(),
            registrar_key: None,
        }
    }
}

/// The deterministic key of a party in a seeded workload. Only for simulations: anyone who knows
/// the seed knows the key.
pub fn party_key(seed: u64, party_id: &str) -> SigningKey {
    SigningKey::from_seed(&format!("scf-sim/{seed}/{party_id}"))
}

/// Every party of the workload.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The registrar (its key is the genesis key).
    pub registrar: Identity,
    /// The regulator.
    pub regulator: Identity,
    /// Core enterprises.
    pub cores: Vec<Identity>,
    /// Tier-1 suppliers.
    pub tier1: Vec<Identity>,
    /// Tier-2 suppliers.
    pub tier2: Vec<Identity>,
    /// Banks.
    pub banks: Vec<Identity>,
    /// Carriers.
    pub carriers: Vec<Identity>,
}

impl Cast {
    /// The cast of `config`, with keys derived from its seed.
    pub fn new(config: &WorkloadConfig) -> Self {
        let ns = &config.namespace;
        let identity =
            |id: String| Identity::new(&config.chain_id, &id, party_key(config.seed, &id));
        let group = |prefix: &str, n: usize| {
            (0..n).map(|i| identity(format!("{ns}{prefix}-{i}"))).collect()
        };
        let registrar_key = config
            .registrar_key
            .clone()
            .unwrap_or_else(|| party_key(config.seed, ledger::chain::REGISTRAR_ID));
        Self {
            registrar: Identity::new(&config.chain_id, ledger::chain::REGISTRAR_ID, registrar_key),
            regulator: identity(format!("{ns}regulator")),
            cores: group("core", config.core_enterprises),
            tier1: group("t1", config.tier1_suppliers),
            tier2: group("t2", config.tier2_suppliers),
            banks: group("bank", config.banks),
            carriers: group("carrier", config.carriers),
        }
    }

    /// Every party but the registrar, with its role.
    pub fn parties(&self) -> Vec<(&Identity, Role)> {
        let mut all = vec![(&self.regulator, Role::Regulator)];
        all.extend(self.cores.iter().map(|p| (p, Role::Enterprise)));
        all.extend(self.tier1.iter().map(|p| (p, Role::Enterprise)));
        all.extend(self.tier2.iter().map(|p| (p, Role::Enterprise)));
        all.extend(self.banks.iter().map(|p| (p, Role::Bank)));
        all.extend(self.carriers.iter().map(|p| (p, Role::Logistics)));
        all
    }
}

/// What a transaction must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Applied.
    Applied,
    /// Rejected with this code.
    Rejected(&'static str),
}

/// Where a planned transaction comes from, so its outcome can be routed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Registration and credit lines.
    Setup,
    /// A step of life `n`.
    Life(u64),
    /// A deliberately bad transaction issued while life `n` waited.
    Bad(u64),
}

/// A transaction the workload wants submitted.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The signed transaction.
    pub tx: SignedTx,
    /// A short name of what it does (`"accept_invoice"`, `"bad:double_invoice"`).
    pub kind: &'static str,
    /// What it must come to.
    pub expect: Expect,
    /// Where its outcome goes.
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Order,
    Ship,
    Deliver,
    Invoice,
    Accept,
    Split,
    Offer,
    Discount,
    SettleSent,
    SettleKept,
}

#[derive(Debug, Clone)]
struct Life {
    core: usize,
    tier1: usize,
    tier2: usize,
    bank: usize,
    carrier: usize,
    step: Step,
    quantity: u64,
    unit_price_minor: u64,
    /// The minted token, then the two pieces of the split.
    token: String,
    sent: String,
    kept: String,
    offer: String,
    /// An applied transaction of this life, for replay attacks.
    last_applied: Option<SignedTx>,
}

/// The generator. Feed every outcome back through [`Workload::observe`].
#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    cast: Cast,
    rng: Rng,
    nonce: u64,
    next_life: u64,
    lives: BTreeMap<u64, Life>,
    /// Lives whose last outcome arrived and that can take their next step.
    ready: VecDeque<u64>,
    completed: u64,
}

impl Workload {
    /// A generator for `config`.
    pub fn new(config: WorkloadConfig) -> Self {
        let cast = Cast::new(&config);
        let rng = Rng::new(config.seed);
        Self {
            config,
            cast,
            rng,
            nonce: 0,
            next_life: 0,
            lives: BTreeMap::new(),
            ready: VecDeque::new(),
            completed: 0,
        }
    }

    /// The cast.
    pub fn cast(&self) -> &Cast {
        &self.cast
    }

    /// Lives that reached settlement of both pieces.
    pub fn completed_lives(&self) -> u64 {
        self.completed
    }

    /// The setup, in phases that must be applied in order: registrations, then credit lines.
    pub fn setup(&mut self, now_ms: u64) -> Vec<Vec<Planned>> {
        let registrations = self
            .cast
            .parties()
            .into_iter()
            .map(|(party, role)| {
                let name = format!("{} (simulated)", party.party_id);
                let command =
                    client::register_party(&party.party_id, &name, role, &party.public_key());
                (self.cast.registrar.clone(), command)
            })
            .collect::<Vec<_>>();
        let mut lines = Vec::new();
        for bank in &self.cast.banks {
            for core in &self.cast.cores {
                // Generous lines: the workload is about throughput, not credit rationing.
                let command = client::grant_credit_line(
                    &format!("line-{}-{}", bank.party_id, core.party_id),
                    &core.party_id,
                    "100000000000.00",
                    CURRENCY,
                    now_ms + 365 * DAY_MS,
                );
                lines.push((bank.clone(), command));
            }
        }
        [registrations, lines]
            .into_iter()
            .map(|phase| {
                phase
                    .into_iter()
                    .map(|(signer, command)| Planned {
                        tx: self.sign(&signer, now_ms, command),
                        kind: "setup",
                        expect: Expect::Applied,
                        origin: Origin::Setup,
                    })
                    .collect()
            })
            .collect()
    }

    fn sign(
        &mut self,
        signer: &Identity,
        now_ms: u64,
        command: ledger::pb::tx_body::Command,
    ) -> SignedTx {
        self.nonce += 1;
        signer.sign(now_ms + self.config.tx_validity_ms, self.nonce, command)
    }

    /// The next transaction to submit, or `None` when every life in flight waits for an outcome.
    pub fn next(&mut self, now_ms: u64) -> Option<Planned> {
        if let Some(life_id) = self.ready.pop_front() {
            if self.rng.percent(self.config.bad_percent) {
                if let Some(bad) = self.bad(life_id, now_ms) {
                    return Some(bad);
                }
            }
            return Some(self.step(life_id, now_ms));
        }
        if self.lives.len() < self.config.lives_in_flight {
            let life_id = self.next_life;
            self.next_life += 1;
            let life = Life {
                core: self.pick(self.cast.cores.len()),
                tier1: self.pick(self.cast.tier1.len()),
                tier2: self.pick(self.cast.tier2.len()),
                bank: self.pick(self.cast.banks.len()),
                carrier: self.pick(self.cast.carriers.len()),
                step: Step::Order,
                quantity: self.rng.range(10, 100),
                unit_price_minor: self.rng.range(1_000, 50_000),
                token: String::new(),
                sent: String::new(),
                kept: String::new(),
                offer: String::new(),
                last_applied: None,
            };
            self.lives.insert(life_id, life);
            return Some(self.step(life_id, now_ms));
        }
        None
    }

    fn pick(&mut self, n: usize) -> usize {
        usize::try_from(self.rng.below(n as u64)).expect("index fits")
    }

    fn ids(&self, life_id: u64) -> (String, String, String) {
        let ns = &self.config.namespace;
        (format!("{ns}po-{life_id}"), format!("{ns}sh-{life_id}"), format!("{ns}inv-{life_id}"))
    }

    fn doc(&self, life_id: u64, what: &str) -> [u8; 32] {
        let (seed, ns) = (self.config.seed, &self.config.namespace);
        crypto::sha256(format!("{ns}{seed}/{life_id}/{what}").as_bytes())
    }

    fn step(&mut self, life_id: u64, now_ms: u64) -> Planned {
        let life = self.lives[&life_id].clone();
        let (po, sh, inv) = self.ids(life_id);
        let core = self.cast.cores[life.core].clone();
        let t1 = self.cast.tier1[life.tier1].clone();
        let t2 = self.cast.tier2[life.tier2].clone();
        let bank = self.cast.banks[life.bank].clone();
        let carrier = &self.cast.carriers[life.carrier].party_id;
        let value =
            Decimal::new(i64::try_from(life.quantity * life.unit_price_minor).expect("small"), 2);
        let price =
            Decimal::new(i64::try_from(life.unit_price_minor).expect("small"), 2).to_string();
        let (signer, kind, command) = match life.step {
            Step::Order => (
                core,
                "create_purchase_order",
                client::create_purchase_order(
                    &po,
                    &t1.party_id,
                    &[("SKU-A", life.quantity, &price)],
                    CURRENCY,
                ),
            ),
            Step::Ship => {
                let doc = self.doc(life_id, "bill-of-lading");
                (
                    t1,
                    "record_shipment",
                    client::record_shipment(&sh, &po, &[("SKU-A", life.quantity)], carrier, doc),
                )
            }
            Step::Deliver => (core, "confirm_delivery", client::confirm_delivery(&sh)),
            Step::Invoice => {
                let doc = self.doc(life_id, "invoice");
                let due = now_ms + 60 * DAY_MS;
                (
                    t1,
                    "issue_invoice",
                    client::issue_invoice(&inv, &po, &[&sh], &value.to_string(), due, doc),
                )
            }
            Step::Accept => {
                (core, "accept_invoice", client::accept_invoice(&inv, now_ms + 90 * DAY_MS))
            }
            Step::Split => {
                // Between 20% and 80% of the face value goes down to the tier-2 supplier.
                let share = self.rng.range(20, 80);
                let minor = i64::try_from(life.quantity * life.unit_price_minor * share / 100)
                    .expect("small");
                let part = Decimal::new(minor.max(1), 2);
                (
                    t1,
                    "transfer_token",
                    client::transfer_token(&life.token, &t2.party_id, &part.to_string()),
                )
            }
            Step::Offer => (
                t2,
                "offer_token",
                client::offer_token(&life.sent, &bank.party_id, "0.0600", now_ms + DAY_MS),
            ),
            Step::Discount => {
                let rate = Decimal::new(i64::try_from(self.rng.range(300, 600)).expect("small"), 4);
                (bank, "discount_token", client::discount_token(&life.offer, &rate.to_string()))
            }
            Step::SettleSent => (
                core,
                "settle_token",
                client::settle_token(
                    &life.sent,
                    &format!("{}pay-{life_id}-a", self.config.namespace),
                ),
            ),
            Step::SettleKept => (
                core,
                "settle_token",
                client::settle_token(
                    &life.kept,
                    &format!("{}pay-{life_id}-b", self.config.namespace),
                ),
            ),
        };
        Planned {
            tx: self.sign(&signer, now_ms, command),
            kind,
            expect: Expect::Applied,
            origin: Origin::Life(life_id),
        }
    }

    /// A bad transaction fitting the life's progress, or `None` if none fits yet.
    fn bad(&mut self, life_id: u64, now_ms: u64) -> Option<Planned> {
        let life = self.lives[&life_id].clone();
        let (po, sh, _) = self.ids(life_id);
        let t1 = self.cast.tier1[life.tier1].clone();
        let t2 = self.cast.tier2[life.tier2].clone();
        let bank = self.cast.banks[life.bank].clone();
        let mut options: Vec<u8> = Vec::new();
        if life.last_applied.is_some() {
            options.push(0); // replay
            options.push(1); // forged signature
        }
        if matches!(life.step, Step::Accept | Step::Split | Step::Offer) {
            options.push(2); // double invoicing of a shipment already invoiced
        }
        if life.step == Step::Split {
            options.push(3); // overspend: more than the token's face value
        }
        if !life.token.is_empty() {
            options.push(4); // wrong signer: a tier-2 supplier settles the core's debt
        }
        if life.step == Step::SettleSent {
            options.push(5); // double financing: the offer discounted a second time
        }
        let choice = *self.rng.pick(&options);
        let (tx, kind, expect) = match choice {
            0 => {
                let tx = life.last_applied.clone().expect("checked above");
                (tx, "bad:replay", "duplicate_transaction")
            }
            1 => {
                // The life's own next step, signed by a key that is not the signer's.
                let mut planned = self.step(life_id, now_ms);
                let forger = SigningKey::from_seed(&format!("forger/{life_id}"));
                planned.tx.signature = forger.sign(&planned.tx.body).to_bytes().to_vec();
                (planned.tx, "bad:forged_signature", "bad_signature")
            }
            2 => {
                let doc = self.doc(life_id, "second-invoice");
                let command = client::issue_invoice(
                    &format!("{}inv-{life_id}-dup", self.config.namespace),
                    &po,
                    &[&sh],
                    "1.00",
                    now_ms + DAY_MS,
                    doc,
                );
                (self.sign(&t1, now_ms, command), "bad:double_invoice", "already_invoiced")
            }
            3 => {
                let face = Decimal::new(
                    i64::try_from(life.quantity * life.unit_price_minor).expect("small"),
                    2,
                );
                let command = client::transfer_token(
                    &life.token,
                    &t2.party_id,
                    &(face + Decimal::ONE).to_string(),
                );
                (self.sign(&t1, now_ms, command), "bad:overspend", "amount_exceeds_face_value")
            }
            4 => {
                let command = client::settle_token(&life.token, "not-my-debt");
                (self.sign(&t2, now_ms, command), "bad:wrong_signer", "unauthorized")
            }
            _ => {
                let command = client::discount_token(&life.offer, "0.0300");
                (self.sign(&bank, now_ms, command), "bad:double_discount", "offer_not_open")
            }
        };
        Some(Planned { tx, kind, expect: Expect::Rejected(expect), origin: Origin::Bad(life_id) })
    }

    /// Feeds back the outcome of a planned transaction. Returns whether it met its expectation.
    /// A life whose step failed unexpectedly is abandoned (and counted by the caller as an error).
    pub fn observe(&mut self, planned: &Planned, result: &TxResult) -> bool {
        let met = match planned.expect {
            Expect::Applied => result.applied,
            Expect::Rejected(code) => !result.applied && result.reject_code == code,
        };
        match planned.origin {
            Origin::Setup => {}
            Origin::Bad(life_id) => self.ready.push_back(life_id),
            Origin::Life(life_id) => {
                if !result.applied {
                    self.lives.remove(&life_id);
                    return met;
                }
                let life = self.lives.get_mut(&life_id).expect("a waiting life is kept");
                life.last_applied = Some(planned.tx.clone());
                life.step = match life.step {
                    Step::Order => Step::Ship,
                    Step::Ship => Step::Deliver,
                    Step::Deliver => Step::Invoice,
                    Step::Invoice => Step::Accept,
                    Step::Accept => {
                        life.token = result.created_ids.first().cloned().unwrap_or_default();
                        Step::Split
                    }
                    Step::Split => {
                        life.sent = result.created_ids.first().cloned().unwrap_or_default();
                        life.kept = result.created_ids.get(1).cloned().unwrap_or_default();
                        Step::Offer
                    }
                    Step::Offer => {
                        life.offer = result.created_ids.first().cloned().unwrap_or_default();
                        Step::Discount
                    }
                    Step::Discount => Step::SettleSent,
                    Step::SettleSent => Step::SettleKept,
                    Step::SettleKept => {
                        self.lives.remove(&life_id);
                        self.completed += 1;
                        return met;
                    }
                };
                self.ready.push_back(life_id);
            }
        }
        met
    }
}

/// Applies `blocks` blocks of `workload` to `store` with `ledger`, one second apart from
/// `*now_ms` (which it advances): its setup phases first, then up to `per_block` planned
/// transactions each. Returns every planned transaction with whether its outcome was the
/// expected one, and the outcome. For tests of the workload and of what it leaves behind.
#[cfg(test)]
pub(crate) fn apply_blocks(
    workload: &mut Workload,
    ledger: &ledger::Ledger,
    store: &mut ledger::MemStore,
    now_ms: &mut u64,
    blocks: usize,
    per_block: usize,
) -> Vec<(Planned, bool, TxResult)> {
    let mut phases: VecDeque<Vec<Planned>> = workload.setup(*now_ms).into();
    let mut seen = Vec::new();
    for _ in 0..blocks {
        let batch = match phases.pop_front() {
            Some(phase) => phase,
            None => std::iter::from_fn(|| workload.next(*now_ms)).take(per_block).collect(),
        };
        let txs = batch.iter().map(|p| p.tx.clone()).collect();
        let applied = ledger.apply_block(&*store, *now_ms, txs).unwrap();
        store.commit(&applied.writes);
        for (planned, result) in batch.into_iter().zip(applied.block.results) {
            let met = workload.observe(&planned, &result);
            seen.push((planned, met, result));
        }
        *now_ms += 1_000;
    }
    seen
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ledger::{Genesis, Ledger, MemStore};

    use super::*;

    const T0_MS: u64 = 1_700_000_000_000;
    const CHAIN: &str = "workload-test";

    fn genesis(config: &WorkloadConfig) -> Genesis {
        Genesis {
            chain_id: CHAIN.into(),
            registrar_public_key: Cast::new(config).registrar.key.public_key(),
            time_ms: T0_MS,
        }
    }

    /// Runs `blocks` blocks of the workload against the state machine; returns every planned
    /// transaction with whether it met its expectation.
    fn drive(config: WorkloadConfig, blocks: usize) -> (Workload, Vec<(Planned, bool)>) {
        let ledger = Ledger::new(genesis(&config));
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let mut workload = Workload::new(config);
        let mut now_ms = T0_MS;
        let seen = apply_blocks(&mut workload, &ledger, &mut store, &mut now_ms, blocks, 64);
        (workload, seen.into_iter().map(|(planned, met, _)| (planned, met)).collect())
    }

    // Goal: the same seed gives the same transactions; another seed other ones.
    #[test]
    fn a_seed_determines_the_workload() {
        let bodies = |seed| {
            let (_, seen) = drive(WorkloadConfig::new(seed, CHAIN), 12);
            seen.into_iter().map(|(p, _)| p.tx.body).collect::<Vec<_>>()
        };
        assert_eq!(bodies(7), bodies(7));
        assert_ne!(bodies(7), bodies(8));
    }

    // Goal: every transaction gets the outcome the workload expects: honest steps are applied
    // and lives complete; every kind of bad transaction appears and is rejected with its code.
    #[test]
    fn every_outcome_is_the_expected_one_and_every_attack_appears() {
        let mut config = WorkloadConfig::new(3, CHAIN);
        config.bad_percent = 20;
        config.lives_in_flight = 64;
        let (workload, seen) = drive(config, 120);
        let unmet: Vec<_> = seen.iter().filter(|(_, met)| !met).map(|(p, _)| p.kind).collect();
        assert!(unmet.is_empty(), "unexpected outcomes: {unmet:?}");
        assert!(workload.completed_lives() > 50, "{} lives", workload.completed_lives());
        let kinds: BTreeSet<&str> = seen
            .iter()
            .filter(|(p, _)| matches!(p.origin, Origin::Bad(_)))
            .map(|(p, _)| p.kind)
            .collect();
        let all = [
            "bad:replay",
            "bad:forged_signature",
            "bad:double_invoice",
            "bad:overspend",
            "bad:wrong_signer",
            "bad:double_discount",
        ];
        assert_eq!(kinds, all.into_iter().collect(), "every attack is tried");
    }

    // Goal: two namespaces on one chain never collide: their ids differ and both run cleanly
    // against the same state.
    #[test]
    fn namespaces_share_a_chain() {
        let registrar = SigningKey::from_seed("shared-registrar");
        let config = |namespace: &str| {
            let mut config = WorkloadConfig::new(5, CHAIN);
            config.namespace = namespace.into();
            config.registrar_key = Some(registrar.clone());
            config
        };
        let (a, b) = (config("a-"), config("b-"));
        let ledger = Ledger::new(genesis(&a));
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let mut now_ms = T0_MS;
        for config in [a, b] {
            let mut workload = Workload::new(config);
            for (planned, met, result) in
                apply_blocks(&mut workload, &ledger, &mut store, &mut now_ms, 30, 32)
            {
                assert!(met, "{}: {result:?}", planned.kind);
            }
            assert!(workload.completed_lives() > 0);
        }
        for id in ["a-core-0", "b-core-0", "a-regulator", "b-regulator"] {
            assert!(ledger::query::party(&store, id).unwrap().is_some(), "{id} is registered");
        }
    }
}
