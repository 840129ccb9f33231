//! The supply-chain workload: a cast of parties and many concurrent receivable lives, generated
//! from a seed.
//!
//! A *life* is one receivable from purchase order to settlement: order, ship, deliver, invoice,
//! accept, split to a tier-2 supplier, offer to a bank, discount, settle both pieces. A life is
//! planned and signed whole when it starts (its *script*): the ids the ledger will create for
//! it (tokens, offers) are derived from transaction bodies ([`ledger::tx::derived_id`]), so no
//! step needs to wait for an answer to be written. Lives still *advance* only when their
//! previous transaction's outcome has been observed, so the generator works the same in closed
//! loop against a cluster or in process, and an outcome that differs from the plan (a rejected
//! step, other created ids) abandons the life. Lives can also be planned and signed ahead, in
//! bulk and on every core ([`Workload::prepare`]), so that a measured window spends no client
//! CPU on signing.
//!
//! A share of deliberately bad transactions (double invoicing, overspending a token, a wrong
//! signer, a forged signature, a resubmission, a second discount of the same offer) is mixed into the
//! scripts; each carries the rejection code it must get. A bad transaction is issued only while
//! its life waits, so its outcome cannot race with the life's own steps.
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
/// How long a life planned ahead must still have to run when it starts: lives planned ahead
/// start at the latest this long before their transactions expire (so they may wait
/// `prepared_validity_ms` minus this); later, they are all dropped unsent.
const PREPARED_START_MARGIN_MS: u64 = 10 * 60_000;
/// The ledger refuses a `valid_until` more than this far ahead of its time.
const VALIDITY_MAX_MS: u64 = 60 * 60_000;

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
    /// How long each transaction stays valid after it is signed (a life's are all signed when
    /// it starts, so this bounds a life's duration).
    pub tx_validity_ms: u64,
    /// The same for lives planned ahead ([`Workload::prepare`]), which wait before they start.
    /// Both are at most an hour (the ledger refuses a `valid_until` further ahead of its time);
    /// the defaults leave 20 minutes for a client clock ahead of the leader's.
    pub prepared_validity_ms: u64,
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
            tx_validity_ms: 30 * 60_000,
            prepared_validity_ms: 40 * 60_000,
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
    /// The ids the ledger creates when it applies it (tokens, offers; derived from its body),
    /// in order: an applied outcome must name exactly these.
    pub creates: Vec<String>,
}

/// How the transactions a workload handed out were signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signing {
    /// Transactions signed ahead by [`Workload::prepare`].
    pub prepared: u64,
    /// Lives they make up.
    pub prepared_lives: u64,
    /// Of those, handed out by [`Workload::next`].
    pub prepared_used: u64,
    /// Of those, dropped unused because they would have expired during their life.
    pub prepared_dropped: u64,
    /// Transactions of lives planned and signed when they started (after the prepared ones
    /// ran out, or without any), handed out by [`Workload::next`].
    pub inline_used: u64,
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

impl Step {
    /// The step after this one, `None` after the last.
    fn next(self) -> Option<Step> {
        Some(match self {
            Step::Order => Step::Ship,
            Step::Ship => Step::Deliver,
            Step::Deliver => Step::Invoice,
            Step::Invoice => Step::Accept,
            Step::Accept => Step::Split,
            Step::Split => Step::Offer,
            Step::Offer => Step::Discount,
            Step::Discount => Step::SettleSent,
            Step::SettleSent => Step::SettleKept,
            Step::SettleKept => return None,
        })
    }
}

/// A life while it is planned: its parties and terms, the step to plan next, and what the steps
/// planned so far will have created once applied.
#[derive(Debug, Clone)]
struct Life {
    id: u64,
    core: usize,
    tier1: usize,
    tier2: usize,
    bank: usize,
    carrier: usize,
    step: Step,
    quantity: u64,
    unit_price_minor: u64,
    /// The minted token, then the two pieces of the split, then the offer.
    token: String,
    sent: String,
    kept: String,
    offer: String,
    /// The script's index of the last step planned (applied by the time a bad transaction
    /// follows it), for resubmissions.
    last_step: Option<usize>,
}

/// A planned transaction before it is signed.
struct Draft {
    body: DraftBody,
    kind: &'static str,
    expect: Expect,
    origin: Origin,
    creates: Vec<String>,
}

enum DraftBody {
    /// These body bytes, signed with this key.
    Sign(Vec<u8>, SigningKey),
    /// Exactly the signed transaction of the script's draft at this index (a resubmission).
    Resubmission(usize),
}

/// Signs a life's drafts, in order.
fn sign_script(script: Vec<Draft>) -> VecDeque<Planned> {
    let mut signed: Vec<Planned> = Vec::with_capacity(script.len());
    for draft in script {
        let tx = match &draft.body {
            DraftBody::Sign(body, key) => {
                SignedTx { body: body.clone(), signature: key.sign(body).to_bytes().to_vec() }
            }
            DraftBody::Resubmission(index) => signed[*index].tx.clone(),
        };
        signed.push(Planned {
            tx,
            kind: draft.kind,
            expect: draft.expect,
            origin: draft.origin,
            creates: draft.creates,
        });
    }
    signed.into()
}

/// A life ready to start: its id and its signed script.
type Script = (u64, VecDeque<Planned>);

/// A life in flight.
#[derive(Debug)]
struct InFlight {
    /// What is left of its script.
    script: VecDeque<Planned>,
    /// Whether it was signed ahead.
    prepared: bool,
}

/// The generator. Feed every outcome back through [`Workload::observe`].
#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    cast: Cast,
    rng: Rng,
    nonce: u64,
    next_life: u64,
    /// Lives in flight.
    lives: BTreeMap<u64, InFlight>,
    /// Lives whose last outcome arrived and that can take their next step.
    ready: VecDeque<u64>,
    /// Lives planned and signed ahead, in the order they start, and until when (ledger time)
    /// the first of them may start.
    prepared: VecDeque<Script>,
    prepared_start_by_ms: u64,
    signing: Signing,
    completed: u64,
}

impl Workload {
    /// A generator for `config`.
    ///
    /// # Panics
    /// If `bad_percent` is 100 or more (no life could advance) or a validity is over an hour.
    pub fn new(config: WorkloadConfig) -> Self {
        assert!(
            config.bad_percent < 100,
            "bad_percent {} leaves no room for steps",
            config.bad_percent
        );
        assert!(
            config.tx_validity_ms <= VALIDITY_MAX_MS
                && config.prepared_validity_ms <= VALIDITY_MAX_MS,
            "the ledger refuses transactions valid for more than an hour"
        );
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
            prepared: VecDeque::new(),
            prepared_start_by_ms: u64::MAX,
            signing: Signing::default(),
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

    /// How the transactions handed out so far were signed.
    pub fn signing(&self) -> Signing {
        self.signing
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
        let valid_until = now_ms + self.config.tx_validity_ms;
        [registrations, lines]
            .into_iter()
            .map(|phase| {
                phase
                    .into_iter()
                    .map(|(signer, command)| {
                        let draft =
                            self.draft(&signer, valid_until, command, "setup", Origin::Setup);
                        sign_script(vec![draft]).pop_front().expect("one draft, one transaction")
                    })
                    .collect()
            })
            .collect()
    }

    /// Plans and signs lives ahead, until they hold at least `transactions` transactions, with
    /// their signing spread over `threads` threads; [`Workload::next`] starts them, in order,
    /// before planning any other life. They are signed for ledger time `now_ms` and valid for
    /// [`WorkloadConfig::prepared_validity_ms`]; those that would start too late to finish in
    /// that time are dropped ([`Signing::prepared_dropped`]). Returns the transactions signed.
    pub fn prepare(&mut self, transactions: u64, now_ms: u64, threads: usize) -> u64 {
        let valid_until = now_ms + self.config.prepared_validity_ms;
        let mut drafts = Vec::new();
        let mut count = 0;
        while count < transactions {
            let life = self.start_life();
            let id = life.id;
            let script = self.plan_life(life, now_ms, valid_until);
            count += script.len() as u64;
            drafts.push((id, script));
        }
        let lives = drafts.len() as u64;
        let start_by = valid_until
            .saturating_sub(self.config.prepared_validity_ms.min(PREPARED_START_MARGIN_MS));
        self.prepared_start_by_ms = self.prepared_start_by_ms.min(start_by);
        let threads = threads.max(1);
        let chunk = drafts.len().div_ceil(threads).max(1);
        let mut chunks = Vec::new();
        while !drafts.is_empty() {
            let rest = drafts.split_off(chunk.min(drafts.len()));
            chunks.push(std::mem::replace(&mut drafts, rest));
        }
        let signed: Vec<Vec<Script>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk.into_iter().map(|(id, script)| (id, sign_script(script))).collect()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("signing does not panic")).collect()
        });
        self.prepared.extend(signed.into_iter().flatten());
        self.signing.prepared += count;
        self.signing.prepared_lives += lives;
        count
    }

    fn draft(
        &mut self,
        signer: &Identity,
        valid_until_ms: u64,
        command: ledger::pb::tx_body::Command,
        kind: &'static str,
        origin: Origin,
    ) -> Draft {
        self.nonce += 1;
        let body = ledger::tx::body(
            &signer.chain_id,
            &signer.party_id,
            valid_until_ms,
            self.nonce,
            command,
        );
        Draft {
            body: DraftBody::Sign(prost::Message::encode_to_vec(&body), signer.key.clone()),
            kind,
            expect: Expect::Applied,
            origin,
            creates: Vec::new(),
        }
    }

    /// The next transaction to submit, or `None` when every life in flight waits for an outcome.
    pub fn next(&mut self, now_ms: u64) -> Option<Planned> {
        let (prepared, planned) = if let Some(life_id) = self.ready.pop_front() {
            let life = self.lives.get_mut(&life_id).expect("a ready life is in flight");
            (life.prepared, life.script.pop_front().expect("a ready life has a transaction left"))
        } else if self.lives.len() < self.config.lives_in_flight {
            let (prepared, (life_id, mut script)) = match self.take_prepared(now_ms) {
                Some(script) => (true, script),
                None => {
                    let life = self.start_life();
                    let id = life.id;
                    let valid_until = now_ms + self.config.tx_validity_ms;
                    (false, (id, sign_script(self.plan_life(life, now_ms, valid_until))))
                }
            };
            let first = script.pop_front().expect("a life has steps");
            self.lives.insert(life_id, InFlight { script, prepared });
            (prepared, first)
        } else {
            return None;
        };
        if prepared {
            self.signing.prepared_used += 1;
        } else {
            self.signing.inline_used += 1;
        }
        Some(planned)
    }

    /// The next life planned ahead, unless none is left or they would now expire mid-life (then
    /// all are dropped: they were signed together).
    fn take_prepared(&mut self, now_ms: u64) -> Option<Script> {
        if !self.prepared.is_empty() && now_ms > self.prepared_start_by_ms {
            let dropped: usize = self.prepared.drain(..).map(|(_, script)| script.len()).sum();
            self.signing.prepared_dropped += dropped as u64;
        }
        if self.prepared.is_empty() {
            self.prepared_start_by_ms = u64::MAX;
        }
        self.prepared.pop_front()
    }

    /// A new life's parties and terms.
    fn start_life(&mut self) -> Life {
        let id = self.next_life;
        self.next_life += 1;
        Life {
            id,
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
            last_step: None,
        }
    }

    /// A life's whole script: each step, assumed applied before the next is planned (with the
    /// ids it creates), and before each step after the first, while the life waits, now and then
    /// a bad transaction fitting its progress.
    fn plan_life(&mut self, mut life: Life, now_ms: u64, valid_until: u64) -> Vec<Draft> {
        let mut script = Vec::new();
        loop {
            if life.step != Step::Order {
                while self.rng.percent(self.config.bad_percent) {
                    match self.bad(&life, now_ms, valid_until) {
                        Some(bad) => script.push(bad),
                        None => break,
                    }
                }
            }
            let step = self.step(&life, now_ms, valid_until);
            let DraftBody::Sign(body, _) = &step.body else { unreachable!("a step is signed") };
            let hash = crypto::sha256(body);
            let id = |prefix, n| ledger::tx::derived_id(prefix, &hash, n);
            let creates = match life.step {
                Step::Accept => vec![id("tk", 0)],
                Step::Split => vec![id("tk", 0), id("tk", 1)],
                Step::Offer => vec![id("of", 0)],
                _ => Vec::new(),
            };
            match life.step {
                Step::Accept => life.token = creates[0].clone(),
                Step::Split => (life.sent, life.kept) = (creates[0].clone(), creates[1].clone()),
                Step::Offer => life.offer = creates[0].clone(),
                _ => {}
            }
            life.last_step = Some(script.len());
            script.push(Draft { creates, ..step });
            match life.step.next() {
                Some(next) => life.step = next,
                None => return script,
            }
        }
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

    fn step(&mut self, life: &Life, now_ms: u64, valid_until: u64) -> Draft {
        let life_id = life.id;
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
        self.draft(&signer, valid_until, command, kind, Origin::Life(life_id))
    }

    /// A bad transaction fitting the life's progress (its steps before `life.step` applied), or
    /// `None` if none fits yet.
    fn bad(&mut self, life: &Life, now_ms: u64, valid_until: u64) -> Option<Draft> {
        let life_id = life.id;
        let (po, sh, _) = self.ids(life_id);
        let t1 = self.cast.tier1[life.tier1].clone();
        let t2 = self.cast.tier2[life.tier2].clone();
        let bank = self.cast.banks[life.bank].clone();
        let mut options: Vec<u8> = Vec::new();
        if life.last_step.is_some() {
            options.push(0); // resubmission
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
        if options.is_empty() {
            return None;
        }
        let choice = *self.rng.pick(&options);
        let (mut draft, expect) = match choice {
            0 => {
                let index = life.last_step.expect("checked above");
                let draft = Draft {
                    body: DraftBody::Resubmission(index),
                    kind: "bad:resubmission",
                    expect: Expect::Applied,
                    origin: Origin::Bad(life_id),
                    creates: Vec::new(),
                };
                (draft, "duplicate_transaction")
            }
            1 => {
                // The life's own next step, signed by a key that is not the signer's.
                let mut draft = self.step(life, now_ms, valid_until);
                if let DraftBody::Sign(_, key) = &mut draft.body {
                    *key = SigningKey::from_seed(&format!("forger/{life_id}"));
                }
                draft.kind = "bad:forged_signature";
                draft.origin = Origin::Bad(life_id);
                (draft, "bad_signature")
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
                let origin = Origin::Bad(life_id);
                (
                    self.draft(&t1, valid_until, command, "bad:double_invoice", origin),
                    "already_invoiced",
                )
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
                let origin = Origin::Bad(life_id);
                (
                    self.draft(&t1, valid_until, command, "bad:overspend", origin),
                    "amount_exceeds_face_value",
                )
            }
            4 => {
                let command = client::settle_token(&life.token, "not-my-debt");
                let origin = Origin::Bad(life_id);
                // The tier-2 supplier is no party of the original token (it was sent a
                // piece of it): it is told there is no such token, as a stranger is.
                (self.draft(&t2, valid_until, command, "bad:wrong_signer", origin), "not_found")
            }
            _ => {
                let command = client::discount_token(&life.offer, "0.0300");
                let origin = Origin::Bad(life_id);
                (
                    self.draft(&bank, valid_until, command, "bad:double_discount", origin),
                    "offer_not_open",
                )
            }
        };
        draft.expect = Expect::Rejected(expect);
        Some(draft)
    }

    /// Feeds back the outcome of a planned transaction. Returns whether it met its expectation.
    /// A life whose step did not come out as planned (rejected, or other ids created) is
    /// abandoned (and counted by the caller as an error).
    pub fn observe(&mut self, planned: &Planned, result: &TxResult) -> bool {
        let met = match planned.expect {
            Expect::Applied => result.applied && result.created_ids == planned.creates,
            Expect::Rejected(code) => !result.applied && result.reject_code == code,
        };
        match planned.origin {
            Origin::Setup => {}
            Origin::Bad(life_id) => self.ready.push_back(life_id),
            Origin::Life(life_id) => {
                let finished = self.lives.get(&life_id).is_none_or(|life| life.script.is_empty());
                if !met || finished {
                    self.lives.remove(&life_id);
                    self.completed += u64::from(met);
                } else {
                    self.ready.push_back(life_id);
                }
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
            "bad:resubmission",
            "bad:forged_signature",
            "bad:double_invoice",
            "bad:overspend",
            "bad:wrong_signer",
            "bad:double_discount",
        ];
        assert_eq!(kinds, all.into_iter().collect(), "every attack is tried");
    }

    // Goal: lives signed ahead start first, in order, and every one of their transactions gets
    // the outcome planned for it (the ids the ledger creates are the ones predicted from the
    // bodies); when they run out, lives are signed as they start, and the counts say which.
    #[test]
    fn lives_signed_ahead_run_as_planned_then_inline_ones_follow() {
        let mut config = WorkloadConfig::new(11, CHAIN);
        config.bad_percent = 20;
        config.lives_in_flight = 32;
        let ledger = Ledger::new(genesis(&config));
        let mut store = MemStore::new();
        store.commit(&ledger.genesis_writes());
        let mut workload = Workload::new(config);
        let signed = workload.prepare(300, T0_MS, 2);
        assert!(signed >= 300, "{signed}");
        let prepared = workload.signing();
        assert_eq!(prepared.prepared, signed);
        assert!(prepared.prepared_lives >= 20, "{prepared:?}");
        let mut now_ms = T0_MS;
        let seen = apply_blocks(&mut workload, &ledger, &mut store, &mut now_ms, 80, 32);
        let unmet: Vec<_> = seen.iter().filter(|(_, met, _)| !met).map(|(p, ..)| p.kind).collect();
        assert!(unmet.is_empty(), "unexpected outcomes: {unmet:?}");
        let signing = workload.signing();
        assert_eq!(signing.prepared_used, signed, "every transaction signed ahead was sent");
        assert!(signing.inline_used > 0, "then lives were signed as they started: {signing:?}");
        assert_eq!(signing.prepared_dropped, 0);
        // The lives signed ahead are the first ones: every transaction of a life numbered below
        // their count came from them.
        let lives = |origin| match origin {
            Origin::Life(id) | Origin::Bad(id) => Some(id),
            Origin::Setup => None,
        };
        let first_inline = seen
            .iter()
            .filter_map(|(p, ..)| lives(p.origin))
            .filter(|&id| id >= prepared.prepared_lives)
            .count() as u64;
        assert_eq!(first_inline, signing.inline_used);
        assert!(
            workload.completed_lives() >= prepared.prepared_lives,
            "{}",
            workload.completed_lives()
        );
        let tokens = seen.iter().filter(|(p, ..)| p.kind == "transfer_token").count();
        assert!(tokens > 0 && seen.iter().any(|(p, ..)| p.creates.len() == 2));
    }

    // Goal: lives signed ahead that could no longer finish before their transactions expire are
    // dropped, all of them, and the next life is signed when it starts.
    #[test]
    fn lives_signed_ahead_too_long_ago_are_dropped() {
        let config = WorkloadConfig::new(12, CHAIN);
        let (validity, inline) = (config.prepared_validity_ms, config.tx_validity_ms);
        let mut workload = Workload::new(config);
        let signed = workload.prepare(50, T0_MS, 1);
        let fresh = workload.next(T0_MS + validity - PREPARED_START_MARGIN_MS).unwrap();
        assert_eq!(fresh.origin, Origin::Life(0), "still in time: the first life signed ahead");
        let late = workload.next(T0_MS + validity - PREPARED_START_MARGIN_MS + 1).unwrap();
        let signing = workload.signing();
        assert_eq!(signing.prepared_used, 1);
        // All but life 0, which had started (its transactions are valid long enough for it).
        let life_0 = 1 + workload.lives[&0].script.len() as u64;
        assert_eq!(signing.prepared_dropped, signed - life_0);
        assert_eq!(signing.inline_used, 1);
        let body = <ledger::pb::TxBody as prost::Message>::decode(late.tx.body.as_slice()).unwrap();
        let valid_until = T0_MS + validity - PREPARED_START_MARGIN_MS + 1 + inline;
        assert_eq!(body.valid_until_ms, valid_until, "signed now, for the inline validity");
        assert!(matches!(late.origin, Origin::Life(id) if id >= signing.prepared_lives));
    }

    // Goal: a step applied with other ids than those planned abandons its life (its next steps
    // name ids that do not exist) and counts as not met.
    #[test]
    fn an_outcome_unlike_the_plan_abandons_the_life() {
        let mut workload = Workload::new(WorkloadConfig::new(13, CHAIN));
        workload.config.bad_percent = 0;
        let mut planned = workload.next(T0_MS).unwrap();
        for _ in 0..4 {
            let applied = TxResult { applied: true, ..TxResult::default() };
            assert!(workload.observe(&planned, &applied));
            planned = workload.next(T0_MS).unwrap();
        }
        assert_eq!(planned.kind, "accept_invoice");
        assert_eq!(planned.creates.len(), 1);
        let other = TxResult {
            applied: true,
            created_ids: vec!["tk-elsewhere".into()],
            ..TxResult::default()
        };
        assert!(!workload.observe(&planned, &other));
        let next = workload.next(T0_MS).unwrap();
        assert_eq!(next.origin, Origin::Life(1), "life 0 is abandoned; a new one starts");
        assert_eq!(workload.completed_lives(), 0);
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
