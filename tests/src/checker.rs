//! The checker, run once the nemesis has healed every fault and the cluster is quiet. It holds
//! the cluster to what its clients were told and to the domain's invariants:
//! - every replica, the observer included, reaches the same height, block hash and state hash,
//!   and a replay of the observer's chain in this process (links, signatures, rules) reaches
//!   that state too; the observer's own `/v1/audit/verify` passes;
//! - nothing is applied twice: a transaction hash is applied at most once in the whole chain,
//!   and any further copy of it is recorded only as a `duplicate_transaction` rejection;
//! - every acknowledged outcome is in the chain exactly as acknowledged (applied at that height,
//!   or rejected there with that code), and a transaction refused for good was never applied;
//! - every transaction whose outcome the clients never learnt is looked up by hash on the
//!   observer, and the answer agrees with the chain (applied where the chain says so, unknown
//!   where the chain does not have it), as does the lookup of every transaction seen twice;
//! - the domain invariants hold on the replayed state ([`sim::check`]: face value conserved per
//!   invoice, no token financed twice, credit lines respected).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ledger::crypto::SigningKey;
use ledger::{Genesis, query};
use sim::check::{Snapshot, check};
use sim::client::Http;
use sim::node_api::{audit, quiesce, replay_chain};

use crate::history::{Attempt, Outcome};

/// Refusal codes that say nothing of the transaction (it may be applied by a later attempt).
use crate::driver::RETRY_CODES as PASSING_CODES;

/// Where the cluster is.
pub struct Target<'a> {
    /// Every node's URL, the observer's included.
    pub urls: &'a [String],
    /// The observer's URL: the chain is read from there.
    pub observer: &'a str,
    /// The chain's genesis.
    pub genesis: &'a Genesis,
    /// A regulator (only its signed reads see whole blocks).
    pub regulator: (&'a str, &'a SigningKey),
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Everything that is wrong; empty when the run passed.
    pub problems: Vec<String>,
    /// The chain's height.
    pub height: u64,
    /// Transactions in the chain, rejected ones and duplicate copies included.
    pub chain_txs: u64,
    /// Transactions applied.
    pub applied: u64,
    /// Copies recorded as `duplicate_transaction` (resubmissions that reached a block).
    pub duplicate_copies: u64,
    /// Distinct transactions acknowledged to a client (applied or rejected; a resubmission shares its
    /// original's hash).
    pub acknowledged: u64,
    /// Transactions acknowledged applied that the chain does not have applied at all.
    pub lost: u64,
    /// Transactions applied more than once.
    pub applied_twice: u64,
    /// Transactions with no outcome at the clients, resolved here by lookup: applied, rejected,
    /// and not in the chain.
    pub resolved_applied: u64,
    /// See `resolved_applied`.
    pub resolved_rejected: u64,
    /// See `resolved_applied`.
    pub resolved_absent: u64,
}

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    height: u64,
    applied: bool,
    code: String,
}

/// Waits for the cluster to quiesce, then checks it against `history`.
pub async fn check_cluster(target: &Target<'_>, history: &[Attempt]) -> anyhow::Result<Verdict> {
    let http = Http::new(Duration::from_secs(30));
    let mut verdict = Verdict::default();
    let problems = &mut verdict.problems;
    let told = history.iter().filter_map(|a| match a.outcome {
        Outcome::Applied { height } | Outcome::Rejected { height, .. } => Some(height),
        _ => None,
    });
    let highest = told.max().unwrap_or(0);
    let (statuses, stuck) = quiesce(&http, target.urls, highest, Duration::from_secs(120)).await;
    problems.extend(stuck);
    let height = statuses.first().map_or(0, |s| s.height);
    verdict.height = height;

    // The chain, from the observer, replayed here.
    let mut chain: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let (replayed, broken) =
        replay_chain(&http, target.observer, target.regulator, target.genesis, height, |block| {
            let at = block.header.as_ref().map_or(0, |h| h.height);
            for result in &block.results {
                chain.entry(hex::encode(&result.tx_hash)).or_default().push(Entry {
                    height: at,
                    applied: result.applied,
                    code: result.reject_code.clone(),
                });
            }
        })
        .await?;
    problems.extend(broken);
    let tip = query::tip(&replayed)?;
    let (replayed_height, replayed_block, replayed_state) = tip.map_or_else(
        || (0, String::new(), String::new()),
        |t| (t.height, hex::encode(&t.last_block_hash), hex::encode(&t.state_hash)),
    );
    for status in &statuses {
        if status.height != replayed_height
            || status.last_block_hash != replayed_block
            || status.state_hash != replayed_state
        {
            problems.push(format!(
                "{} is at height {} with block {} and state {}; the replay reached height \
                 {replayed_height} with block {replayed_block} and state {replayed_state}",
                status.url, status.height, status.last_block_hash, status.state_hash
            ));
        }
    }
    let mut notes = Vec::new();
    if audit(&http, target.observer, &mut notes).await != Some(true) {
        problems.push(format!("the observer's audit did not pass: {notes:?}"));
    }

    let judged = judge(&chain, history);
    problems.extend(judged.problems);
    (verdict.chain_txs, verdict.applied) = (judged.chain_txs, judged.applied);
    (verdict.duplicate_copies, verdict.acknowledged) =
        (judged.duplicate_copies, judged.acknowledged);
    (verdict.lost, verdict.applied_twice) = (judged.lost, judged.applied_twice);
    let to_look_up = judged.to_look_up;
    let by_hash = judged.by_hash;

    // Unknown outcomes resolved by lookup; the lookup agrees with the chain.
    for hash in &to_look_up {
        let entries = chain.get(hash).map(Vec::as_slice).unwrap_or_default();
        let answer = http.get(target.observer, &format!("/v1/transactions/{hash}"), None).await?;
        let unanswered = !by_hash.get(hash.as_str()).is_some_and(|a| {
            a.iter()
                .any(|a| matches!(a.outcome, Outcome::Applied { .. } | Outcome::Rejected { .. }))
        });
        match (answer.status, entries.first()) {
            (404, None) => verdict.resolved_absent += u64::from(unanswered),
            (200, Some(first)) => {
                let applied = answer.body["outcome"] == "applied";
                let at = answer.body["height"].as_u64();
                if applied != first.applied || at != Some(first.height) {
                    problems.push(format!(
                        "looking {hash} up says {} but the chain has {entries:?}",
                        answer.body
                    ));
                } else if unanswered && first.applied {
                    verdict.resolved_applied += 1;
                } else if unanswered {
                    verdict.resolved_rejected += 1;
                }
            }
            (status, _) => problems.push(format!(
                "looking {hash} up answered {status} {} but the chain has {entries:?}",
                answer.body
            )),
        }
    }

    // The domain's invariants on the replayed state.
    for violation in check(&Snapshot::from_store(&replayed)?) {
        problems.push(format!("invariant: {violation}"));
    }
    Ok(verdict)
}

/// What the chain and the history say of each other, before any lookup.
#[derive(Debug, Default)]
struct Judged<'h> {
    problems: Vec<String>,
    chain_txs: u64,
    applied: u64,
    duplicate_copies: u64,
    acknowledged: u64,
    lost: u64,
    applied_twice: u64,
    /// Transactions to look up: unanswered ones, and those in the chain more than once.
    to_look_up: BTreeSet<String>,
    by_hash: BTreeMap<&'h str, Vec<&'h Attempt>>,
}

/// Holds the chain (entries by hex hash, in chain order) to the history.
fn judge<'h>(chain: &BTreeMap<String, Vec<Entry>>, history: &'h [Attempt]) -> Judged<'h> {
    let mut judged = Judged::default();
    // Nothing applied twice; later copies only as duplicate rejections.
    for (hash, entries) in chain {
        judged.chain_txs += entries.len() as u64;
        let applied = entries.iter().filter(|e| e.applied).count();
        judged.applied += applied as u64;
        if applied > 1 {
            judged.applied_twice += 1;
            judged.problems.push(format!("{hash} was applied {applied} times: {entries:?}"));
        }
        for later in entries.iter().skip(1) {
            if later.applied || later.code != "duplicate_transaction" {
                judged
                    .problems
                    .push(format!("{hash} is in the chain again, not as a duplicate: {entries:?}"));
            } else {
                judged.duplicate_copies += 1;
            }
        }
    }

    // What the clients were told.
    let mut by_hash: BTreeMap<&str, Vec<&Attempt>> = BTreeMap::new();
    for attempt in history {
        by_hash.entry(attempt.tx_hash.as_str()).or_default().push(attempt);
    }
    let mut to_look_up: BTreeSet<String> = chain
        .iter()
        .filter(|(_, entries)| entries.len() > 1)
        .map(|(hash, _)| hash.clone())
        .collect();
    for (hash, attempts) in &by_hash {
        let entries = chain.get(*hash).map(Vec::as_slice).unwrap_or_default();
        let first = entries.first();
        let mut acknowledged = false;
        for attempt in attempts {
            match &attempt.outcome {
                Outcome::Applied { height } => {
                    acknowledged = true;
                    if !first.is_some_and(|e| e.applied && e.height == *height) {
                        judged.lost += u64::from(!entries.iter().any(|e| e.applied));
                        judged.problems.push(format!(
                            "{hash} ({}) was acknowledged applied at height {height}, but the \
                             chain has {entries:?}",
                            attempt.kind
                        ));
                    }
                }
                Outcome::Rejected { height, code } if code == "duplicate_transaction" => {
                    // A copy recorded as a duplicate, answered as such when the node could not
                    // read the first copy's outcome: that copy must be in the chain at that
                    // height (the first copy is held to the chain above, on its own).
                    acknowledged = true;
                    let there = entries
                        .iter()
                        .skip(1)
                        .any(|e| !e.applied && e.height == *height && e.code == *code);
                    if !there {
                        judged.problems.push(format!(
                            "{hash} ({}) was acknowledged as a duplicate at height {height}, but \
                             the chain has {entries:?}",
                            attempt.kind
                        ));
                    }
                }
                Outcome::Rejected { height, code } => {
                    acknowledged = true;
                    let there = entries
                        .iter()
                        .any(|e| !e.applied && e.height == *height && e.code == *code);
                    let applied = entries.iter().any(|e| e.applied);
                    if !there || applied {
                        judged.problems.push(format!(
                            "{hash} ({}) was acknowledged rejected ({code}) at height {height}, \
                             but the chain has {entries:?}",
                            attempt.kind
                        ));
                    }
                }
                Outcome::Refused { code } if !PASSING_CODES.contains(&code.as_str()) => {
                    if entries.iter().any(|e| e.applied) {
                        judged.problems.push(format!(
                            "{hash} ({}) was refused ({code}) but applied: {entries:?}",
                            attempt.kind
                        ));
                    }
                }
                Outcome::Refused { .. } | Outcome::Unknown { .. } => {}
            }
        }
        let final_refusal = attempts.last().is_some_and(|a| {
            matches!(&a.outcome, Outcome::Refused { code } if !PASSING_CODES.contains(&code.as_str()))
        });
        if acknowledged {
            judged.acknowledged += 1;
        } else if !final_refusal {
            to_look_up.insert((*hash).to_owned());
        }
    }

    judged.to_look_up = to_look_up;
    judged.by_hash = by_hash;
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(hash: &str, outcome: Outcome) -> Attempt {
        Attempt {
            tx_hash: hash.into(),
            kind: "invoice",
            attempt: 1,
            node: "http://127.0.0.1:1".into(),
            sent_ms: 0,
            answered_ms: 1,
            outcome,
        }
    }

    fn applied(height: u64) -> Entry {
        Entry { height, applied: true, code: String::new() }
    }

    fn rejected(height: u64, code: &str) -> Entry {
        Entry { height, applied: false, code: code.into() }
    }

    fn chain(entries: &[(&str, Vec<Entry>)]) -> BTreeMap<String, Vec<Entry>> {
        entries.iter().map(|(h, e)| ((*h).to_owned(), e.clone())).collect()
    }

    fn unknown() -> Outcome {
        Outcome::Unknown { why: "timeout".into() }
    }

    // Goal: a history that agrees with its chain passes: outcomes at their heights, a
    // resubmission recorded as a duplicate, an unknown outcome left for lookup.
    #[test]
    fn an_agreeing_history_passes() {
        let chain = chain(&[
            ("aa", vec![applied(3)]),
            ("bb", vec![rejected(4, "already_invoiced")]),
            ("cc", vec![applied(5), rejected(6, "duplicate_transaction")]),
            ("dd", vec![applied(7)]),
            ("ff", vec![applied(8), rejected(9, "duplicate_transaction")]),
        ]);
        let history = [
            attempt("aa", Outcome::Applied { height: 3 }),
            attempt("bb", Outcome::Rejected { height: 4, code: "already_invoiced".into() }),
            attempt("cc", unknown()),
            attempt("cc", Outcome::Applied { height: 5 }),
            attempt("dd", Outcome::Refused { code: "not_leader".into() }),
            attempt("dd", unknown()),
            attempt("ee", Outcome::Refused { code: "bad_signature".into() }),
            // A second copy answered as a duplicate (the node could not read the first's).
            attempt("ff", Outcome::Applied { height: 8 }),
            attempt("ff", Outcome::Rejected { height: 9, code: "duplicate_transaction".into() }),
        ];
        let judged = judge(&chain, &history);
        assert_eq!(judged.problems, Vec::<String>::new());
        assert_eq!((judged.chain_txs, judged.applied, judged.duplicate_copies), (7, 4, 2));
        assert_eq!((judged.acknowledged, judged.lost, judged.applied_twice), (4, 0, 0));
        // The transactions seen twice, and the one never answered, are looked up.
        let expected = ["cc", "dd", "ff"].map(str::to_owned);
        assert_eq!(judged.to_look_up, BTreeSet::from(expected));
    }

    // Goal: every way a cluster can break its word is caught: an acknowledged transaction lost,
    // applied at another height, applied twice, in the chain twice as something else than a
    // duplicate, acknowledged rejected but applied, refused for good but applied.
    #[test]
    fn every_broken_promise_is_caught() {
        let duplicate = || Outcome::Rejected { height: 4, code: "duplicate_transaction".into() };
        let cases: [(&str, Vec<Entry>, Outcome, &str); 7] = [
            ("lost", vec![], Outcome::Applied { height: 3 }, "acknowledged applied"),
            ("moved", vec![applied(4)], Outcome::Applied { height: 3 }, "acknowledged applied"),
            (
                "twice",
                vec![applied(3), applied(5)],
                Outcome::Applied { height: 3 },
                "applied 2 times",
            ),
            (
                "again",
                vec![applied(3), rejected(5, "already_invoiced")],
                Outcome::Applied { height: 3 },
                "not as a duplicate",
            ),
            (
                "flip",
                vec![applied(3)],
                Outcome::Rejected { height: 3, code: "already_invoiced".into() },
                "acknowledged rejected",
            ),
            (
                "forged",
                vec![applied(3)],
                Outcome::Refused { code: "bad_signature".into() },
                "refused (bad_signature) but applied",
            ),
            ("no_copy", vec![applied(3)], duplicate(), "acknowledged as a duplicate"),
        ];
        for (hash, entries, outcome, expected) in cases {
            let chain = chain(&[(hash, entries)]);
            let history = [attempt(hash, outcome)];
            let judged = judge(&chain, &history);
            if hash == "lost" {
                assert_eq!(judged.lost, 1);
            }
            if hash == "twice" {
                assert_eq!(judged.applied_twice, 1);
            }
            assert!(
                judged.problems.iter().any(|p| p.contains(expected)),
                "{hash}: expected a problem saying {expected:?}, got {:?}",
                judged.problems
            );
        }
    }
}
