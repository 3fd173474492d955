//! The bad-input corpus in process (issue 10, item 1): 10,000 malformed or invalid
//! messages per input topic, decided through the services' own decoders and handlers
//! against a ledger that holds a generated portfolio. Every one is refused with a named
//! reason or dead-lettered with a message; nothing panics; and the state changes only
//! by what the refusals record (their rows in the export, and the score and credit
//! line a rejected application records for its borrower, SPEC section 6).
//!
//! `cargo test -p ledger-sim --test corpus -- --nocapture` prints the verdicts by
//! topic and category.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ledger_core::{Date, Derived, Input, InputError, Ledger, Outcome, ProductConfig};
use ledger_sim::corpus::{self, Verdict, KINDS};
use ledger_sim::{scenario_text, Profile};

const SEED: u64 = 10;
const PER_TOPIC: usize = 10_000;


/// A portfolio with every state a bad message can aim at: current, overdue, settled
/// and written-off loans; blacklisted, malicious and overdue borrowers.
fn portfolio() -> Ledger {
    let text = scenario_text(&Profile::new(SEED, 150, 150));
    let (ledger, _) = ledger_sim::run(&text, Arc::new(ProductConfig::default()), &mut ledger_core::Discard).expect("the portfolio runs");
    ledger
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ten_thousand_bad_messages_per_topic_are_refused_or_dead_lettered_and_change_nothing_else() {
    let mut ledger = portfolio();
    let before = ledger.export();
    let (exact_before, orders_before) = (ledger.exact_accruals(), financed(&ledger));
    assert!(before.loans.iter().any(|l| l.dpd > 0 && l.status == "ACTIVE"), "the portfolio has overdue loans");
    assert!(before.loans.iter().any(|l| l.status == "WRITTEN_OFF") && before.borrowers.iter().any(|b| b.blacklisted));

    let messages = corpus::generate(SEED, &ledger, PER_TOPIC);
    assert_eq!(messages.len(), PER_TOPIC * KINDS.len());
    let mut tally: BTreeMap<(&str, &str, String), usize> = BTreeMap::new();
    // Borrowers whose latest application is one of the corpus' (rejected) applications.
    let mut rescored: BTreeSet<String> = BTreeSet::new();
    for (i, m) in messages.iter().enumerate() {
        let at = || format!("seed {SEED}, message {i} ({} {}), bytes {}", corpus::topic(m.kind), m.category, hex(&m.bytes));
        let verdict = catch_unwind(AssertUnwindSafe(|| corpus::verdict(ledger_sim::decider(m.kind), &ledger, 0, m.kind, &m.bytes)))
            .unwrap_or_else(|_| panic!("deciding panicked: {}", at()));
        assert!(verdict.is_refused_or_dead_lettered(), "not refused: {verdict:?}: {}", at());
        let class = match &verdict {
            Verdict::DeadLetter(_) => "dead letter".to_string(),
            v => v.refusal().unwrap().iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+"),
        };
        if let Verdict::Recorded(fact) = &verdict {
            if let ledger_core::Fact::ApplicationDecided(d) = fact {
                rescored.insert(d.borrower_id.clone());
            }
            let mut derived = Vec::new();
            let outcome = catch_unwind(AssertUnwindSafe(|| ledger.apply(0, fact, &mut derived)))
                .unwrap_or_else(|_| panic!("applying the refusal panicked: {}", at()));
            assert_eq!(outcome, Outcome::Applied, "{}", at());
            // A refusal derives its answer (a receipt) and nothing else: no posting,
            // notice, warning or recall.
            assert!(derived.iter().all(|d| matches!(d, Derived::Receipt(_) | Derived::PaymentSeen { .. })), "{derived:?}: {}", at());
        }
        *tally.entry((corpus::topic(m.kind), m.category, class)).or_default() += 1;
    }
    print_tally(&tally);
    for kind in KINDS {
        let refused: usize = tally.iter().filter(|((t, _, c), _)| *t == corpus::topic(kind) && c != "dead letter").map(|(_, n)| n).sum();
        let dead: usize = tally.iter().filter(|((t, _, c), _)| *t == corpus::topic(kind) && c == "dead letter").map(|(_, n)| n).sum();
        assert!(refused > PER_TOPIC / 5 && dead > PER_TOPIC / 5, "{kind:?}: {refused} refused, {dead} dead-lettered: both roads are taken");
    }

    // The state after, less what the refusals record, is the state before.
    let after = ledger.export();
    assert_eq!(ledger.exact_accruals(), exact_before, "interest or penalty moved");
    assert_eq!(financed(&ledger), orders_before, "an order was financed");
    assert_eq!(after.loans, before.loans);
    assert_eq!(after.portfolio, before.portfolio);
    assert_eq!(after.business_date, before.business_date);
    for a in &after.applications {
        if !before.applications.iter().any(|b| b.application_id == a.application_id) {
            assert_eq!(a.decision, "REJECTED", "{a:?}");
            assert!(!a.reasons.is_empty(), "{a:?}");
        }
    }
    assert_eq!(after.applications.iter().filter(|a| before.applications.contains(a)).count(), before.applications.len(), "an application row changed");
    for p in after.payments.iter().filter(|p| !before.payments.contains(p)) {
        assert!(p.status == "REJECTED" && p.reason.is_some(), "{p:?}");
        assert!(!before.payments.iter().any(|b| b.payment_id == p.payment_id), "payment {} was changed", p.payment_id);
    }
    assert_eq!(after.payments.iter().filter(|p| before.payments.contains(p)).count(), before.payments.len(), "a payment row changed");
    for a in after.collections_actions.iter().filter(|a| !before.collections_actions.contains(a)) {
        assert!(a.status == "REJECTED" && a.reason.is_some(), "{a:?}");
        assert!(!before.collections_actions.iter().any(|b| b.action_id == a.action_id), "action {} was changed", a.action_id);
    }
    assert_eq!(after.collections_actions.iter().filter(|a| before.collections_actions.contains(a)).count(), before.collections_actions.len());
    for u in after.merchant_updates.iter().filter(|u| !before.merchant_updates.contains(u)) {
        assert!(u.status == "REJECTED" && u.reason.is_some() && u.score.is_none(), "{u:?}");
        assert!(!before.merchant_updates.iter().any(|b| b.update_id == u.update_id), "update {} was changed", u.update_id);
    }
    assert_eq!(after.merchant_updates.iter().filter(|u| before.merchant_updates.contains(u)).count(), before.merchant_updates.len());
    // Borrowers: a rejected application records its figures' score and credit line
    // (and so `warning`) on its borrower, a new borrower included; nothing else moves.
    let borrowers_before: BTreeMap<&str, _> = before.borrowers.iter().map(|b| (b.borrower_id.as_str(), b)).collect();
    for b in &after.borrowers {
        match borrowers_before.get(b.borrower_id.as_str()) {
            None => {
                assert!(rescored.contains(&b.borrower_id), "{b:?} appeared");
                assert!(b.outstanding_principal.is_zero() && !b.blacklisted && !b.malicious && b.on_time_loans == 0, "{b:?}");
            }
            Some(old) => {
                let mut b = b.clone();
                if rescored.contains(&b.borrower_id) {
                    (b.score, b.credit_line, b.warning) = (old.score.clone(), old.credit_line, old.warning);
                }
                assert_eq!(&&b, old, "borrower {} changed beyond its score and line", b.borrower_id);
            }
        }
    }
    assert!(before.borrowers.iter().all(|b| after.borrowers.iter().any(|a| a.borrower_id == b.borrower_id)), "a borrower vanished");
}

#[test]
fn day_closes_for_past_or_future_dates_and_a_second_open_are_refused() {
    let ledger = portfolio();
    let open = ledger.business_date().expect("open");
    let digest = ledger.digest();
    let mut rng = ledger_sim::Rng::new(SEED);
    for _ in 0..300 {
        let offset = 1 + rng.below(3_650) as i64;
        let date = if rng.chance(50) { open.add_days(offset) } else { open.add_days(-offset) };
        assert_eq!(ledger_sim::decide(&ledger, &Input::CloseDay { date }), Err(InputError::WrongCloseDate { expected: open, got: date }));
        let any = Date::from_day_number(rng.below(40_000) as i32);
        assert_eq!(ledger_sim::decide(&ledger, &Input::Open { date: any }), Err(InputError::AlreadyOpen(open)));
    }
    // A ledger not open yet refuses a close, and every topic's input (dead-lettered).
    let empty = Ledger::new(Arc::new(ProductConfig::default()));
    assert_eq!(ledger_sim::decide(&empty, &Input::CloseDay { date: open }), Err(InputError::NotOpen));
    for m in corpus::generate(SEED, &ledger, 200) {
        let v = corpus::verdict(ledger_sim::decider(m.kind), &empty, 0, m.kind, &m.bytes);
        assert!(matches!(v, Verdict::DeadLetter(_)), "{} {}: {v:?}", corpus::topic(m.kind), m.category);
    }
    assert_eq!(ledger.digest(), digest);
}

fn financed(ledger: &Ledger) -> Vec<String> {
    ledger.books().values().flat_map(|b| b.financed_orders().iter().map(|o| o.as_str().to_string())).collect()
}

fn print_tally(tally: &BTreeMap<(&str, &str, String), usize>) {
    let mut topic = "";
    for ((t, category, class), n) in tally {
        if *t != topic {
            topic = t;
            eprintln!("{t}:");
        }
        eprintln!("  {category:<24} {class:<40} {n}");
    }
}
