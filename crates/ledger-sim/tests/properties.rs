//! Property tests over random valid input streams: money is conserved per loan, nothing
//! owed is ever negative, the fold is deterministic and idempotent, re-sent inputs change
//! nothing, and spreading the facts over partitions gives the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger_core::input::{Application, CollectionsAction, Input, MerchantUpdate, OrderRef, RawAmount, Repayment};
use ledger_core::scoring::{Merchant, MerchantKind};
use ledger_core::{ActionKind, Date, Decision, Discard, Fact, Fingerprint, Ledger, Money, Product, ProductConfig, Seen};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Apply { app: u8, borrower: u8, credit: bool, cents: u64, term: i64, quality: u8, orders: Vec<u8> },
    Pay { id: u8, loan: u8, cents: u64, bad: bool },
    Close,
    Act { id: u8, kind: u8, target: u8 },
    /// A merchant update; quality 0..=100 gives a score near it (warns below 50,
    /// recalls below 40), borrowers B8 and B9 never apply.
    Update { id: u8, borrower: u8, quality: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..40, 0u8..8, any::<bool>(), 1u64..3_000_000, -2i64..400, 0u8..=100, proptest::collection::vec(0u8..30, 0..3))
            .prop_map(|(app, borrower, credit, cents, term, quality, orders)| Op::Apply { app, borrower, credit, cents, term, quality, orders }),
        4 => (0u8..60, 0u8..42, 1u64..2_000_000, proptest::bool::weighted(0.05))
            .prop_map(|(id, loan, cents, bad)| Op::Pay { id, loan, cents, bad }),
        4 => Just(Op::Close),
        1 => (0u8..20, 0u8..3, 0u8..42).prop_map(|(id, kind, target)| Op::Act { id, kind, target }),
        2 => (0u8..30, 0u8..10, 0u8..=100).prop_map(|(id, borrower, quality)| Op::Update { id, borrower, quality }),
    ]
}

fn money_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn merchant(quality: u8) -> Merchant {
    let q = rust_decimal::Decimal::from(quality);
    let hundred = rust_decimal::Decimal::ONE_HUNDRED;
    Merchant {
        kind: MerchantKind::Platform,
        annual_sales: Some(q * rust_decimal::Decimal::from(50_000)),
        sales_growth: Some(q / hundred - rust_decimal::Decimal::new(5, 1)),
        orders_12m: Some(q * hundred),
        seller_rating: Some(rust_decimal::Decimal::ONE + q * rust_decimal::Decimal::new(4, 2)),
        active_days_90: Some(q * rust_decimal::Decimal::new(9, 1)),
        inventory_turnover: None,
        debt_ratio: None,
        positive_review_rate: None,
    }
}

/// Turns ops into a valid input stream: "open" first, closes always name the open date.
fn inputs(ops: &[Op]) -> Vec<Input> {
    let start = Date::from_ymd(2026, 1, 1).unwrap();
    let mut date = start;
    let mut out = vec![Input::Open { date }];
    for op in ops {
        out.push(match op {
            Op::Apply { app, borrower, credit, cents, term, quality, orders } => Input::Application(Application {
                application_id: format!("A{app}"),
                borrower_id: format!("B{borrower}"),
                product: if *credit { Product::Credit } else { Product::Order },
                amount: RawAmount::cny(&money_text(*cents)),
                term_days: *term,
                orders: orders
                    .iter()
                    .map(|o| OrderRef { order_id: format!("O{o}"), amount: RawAmount::cny(&money_text(*cents / 2 + 1)) })
                    .collect(),
                merchant: merchant(*quality),
            }),
            Op::Pay { id, loan, cents, bad } => Input::Repayment(Repayment {
                payment_id: format!("P{id}"),
                loan_id: format!("A{loan}"),
                amount: RawAmount::cny(&if *bad { format!("{cents}") } else { money_text(*cents) }),
            }),
            Op::Close => {
                let close = Input::CloseDay { date };
                date = date.next();
                close
            }
            Op::Act { id, kind, target } => {
                let action = [ActionKind::MarkMalicious, ActionKind::Reinstate, ActionKind::WriteOff][*kind as usize];
                Input::Collections(CollectionsAction {
                    action_id: format!("C{id}"),
                    action,
                    borrower_id: (action != ActionKind::WriteOff).then(|| format!("B{}", target % 10)),
                    loan_id: (action == ActionKind::WriteOff).then(|| format!("A{target}")),
                })
            }
            Op::Update { id, borrower, quality } => Input::MerchantUpdate(MerchantUpdate {
                update_id: format!("U{id}"),
                borrower_id: format!("B{borrower}"),
                merchant: merchant(*quality),
            }),
        });
    }
    out
}

/// Decides and applies every input; returns the ledger and the facts in log order.
fn run(stream: &[Input]) -> (Ledger, Vec<Fact>) {
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let mut facts = Vec::new();
    for input in stream {
        if let Decision::Fact(fact) = ledger_sim::decide(&ledger, input).expect("valid stream") {
            // The services find a re-delivered input's own fact by this key.
            assert_eq!(fact.key(), input.key(), "an input and its fact share one idempotency key");
            ledger.apply(0, &fact, &mut Discard);
            assert!(ledger.books()[&0].totals_are_kept(), "the kept portfolio figures differ from a count after {fact:?}");
            facts.push(fact);
        }
    }
    (ledger, facts)
}

/// The portfolio figures each book keeps as facts apply are, after every fact of a
/// generated portfolio (re-sent inputs, bad payments, recalls, write-offs, closes), what
/// a count of every loan gives (ledger-proto's snapshot tests compare restored books,
/// their kept figures included, with the folded ones).
#[test]
fn kept_portfolio_figures_equal_a_count_after_every_fact() {
    for seed in [3, 17] {
        let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
        for input in ledger_sim::generate(&ledger_sim::Profile::new(seed, 60, 120)) {
            if let Ok(Decision::Fact(fact)) = ledger_sim::decide(&ledger, &input) {
                ledger.apply(0, &fact, &mut Discard);
                assert!(ledger.books()[&0].totals_are_kept(), "seed {seed}: after {fact:?}");
            }
        }
        assert!(ledger.portfolio().active_loans > 0 && ledger.portfolio().loans_disbursed > ledger.portfolio().active_loans, "seed {seed}: a portfolio with settled loans");
    }
}

fn parse(m: &Money) -> rust_decimal::Decimal {
    m.as_decimal()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved_and_nothing_owed_is_negative(ops in proptest::collection::vec(op(), 1..300)) {
        let (ledger, _) = run(&inputs(&ops));
        let e = ledger.export();
        let mut repaid: BTreeMap<&str, rust_decimal::Decimal> = BTreeMap::new();
        for p in &e.payments {
            *repaid.entry(p.loan_id.as_str()).or_default() += parse(&p.principal);
        }
        for l in &e.loans {
            // principal = outstanding + principal repaid
            prop_assert_eq!(parse(&l.principal), parse(&l.principal_outstanding) + repaid.get(l.loan_id.as_str()).copied().unwrap_or_default());
            for owed in [&l.interest_owed, &l.penalty_owed, &l.principal_outstanding, &l.overpayment, &l.recovered] {
                prop_assert!(parse(owed) >= rust_decimal::Decimal::ZERO);
            }
            prop_assert!(parse(&l.interest_owed) <= parse(&l.interest_accrued));
            if l.status == "SETTLED" {
                prop_assert!(l.principal_outstanding.is_zero() && l.interest_owed.is_zero() && l.penalty_owed.is_zero());
                prop_assert_eq!((l.dpd, l.bucket.as_str()), (0, "CURRENT"));
            }
        }
        // Every cent received is somewhere: allocated, overpaid or recovered.
        let received: rust_decimal::Decimal = ledger.books().values().flat_map(|b| b.payments().values()).map(|p| parse(&p.record.amount)).sum();
        let placed: rust_decimal::Decimal = e.payments.iter().map(|p| parse(&p.penalty) + parse(&p.interest) + parse(&p.principal) + parse(&p.overpayment)).sum::<rust_decimal::Decimal>()
            + e.loans.iter().map(|l| parse(&l.recovered)).sum::<rust_decimal::Decimal>();
        prop_assert_eq!(received, placed);
    }

    #[test]
    fn recalls_only_bring_maturity_forward_and_rewards_follow_their_rule(ops in proptest::collection::vec(op(), 1..300)) {
        let (ledger, facts) = run(&inputs(&ops));
        let e = ledger.export();
        let mut disbursed: BTreeMap<String, (Date, Date)> = BTreeMap::new();
        for f in &facts {
            if let Fact::ApplicationDecided(ledger_core::ApplicationDecided { disbursement: Some(d), .. }) = f {
                disbursed.insert(d.loan_id.clone(), (d.disbursed_on, d.maturity_date));
            }
        }
        for l in &e.loans {
            let (lent, contract) = disbursed[&l.loan_id];
            // A recall moves a date forward, never later, never before the loan was lent.
            prop_assert!(l.maturity_date <= contract && l.maturity_date >= lent);
            prop_assert_eq!(l.recalled, l.maturity_date < contract, "{} recalled iff moved", &l.loan_id);
            prop_assert!(l.daily_rate == "0.0006" || l.daily_rate == "0.0005" || l.daily_rate == "0.00054" || l.daily_rate == "0.00045");
        }
        for b in &e.borrowers {
            let settled = e.loans.iter().filter(|l| l.borrower_id == b.borrower_id && l.status == "SETTLED").count();
            prop_assert!(b.on_time_loans as usize <= settled);
            if b.rewarded {
                prop_assert!(b.on_time_loans >= 3 && !b.blacklisted);
                prop_assert!(e.loans.iter().all(|l| l.borrower_id != b.borrower_id || (l.dpd == 0 || l.status != "ACTIVE") && l.status != "WRITTEN_OFF"));
            }
            prop_assert_eq!(b.warning, b.score.parse::<rust_decimal::Decimal>().unwrap() < rust_decimal::Decimal::from(50));
        }
        // An update shows a score exactly when it was APPLIED.
        for u in &e.merchant_updates {
            prop_assert_eq!(u.status == "APPLIED", u.score.is_some());
        }
    }

    #[test]
    fn replaying_facts_is_deterministic_and_idempotent(ops in proptest::collection::vec(op(), 1..300)) {
        let (ledger, facts) = run(&inputs(&ops));
        let digest = ledger.digest();
        // Replay into an empty ledger: the same state, without deciding anything again.
        let mut replay = Ledger::new(Arc::new(ProductConfig::default()));
        for f in &facts {
            replay.apply(0, f, &mut Discard);
        }
        prop_assert_eq!(replay.digest(), digest.clone());
        // Apply every fact a second time: nothing changes.
        for f in &facts {
            replay.apply(0, f, &mut Discard);
        }
        prop_assert_eq!(replay.digest(), digest);
    }

    #[test]
    fn resending_any_input_changes_nothing(ops in proptest::collection::vec(op(), 1..200)) {
        // The streams re-use ids with other content too (A3 for another borrower, P5 on
        // another loan): the first input with an id is the one a later one is judged by.
        let stream = inputs(&ops);
        let (ledger, _) = run(&stream);
        let first = first_inputs(&stream);
        for input in stream.iter().filter(|i| keyed(i)) {
            let expected = if first[&input.key()] == input.fingerprint() { Seen::Duplicate } else { Seen::IdConflict };
            prop_assert_eq!(ledger_sim::decide(&ledger, input), Ok(Decision::Seen(expected)), "{:?}", input);
        }
    }

    #[test]
    fn replayed_facts_judge_re_used_ids_as_the_live_fold_did(ops in proptest::collection::vec(op(), 1..200), partitions in 1u32..6) {
        // A service restarted on loan.events (its facts spread over partitions, each a
        // book) must answer every later input exactly as the ledger that decided them.
        let stream = inputs(&ops);
        let (ledger, facts) = run(&stream);
        let replay = partitioned_replay(&facts, partitions);
        for input in stream.iter().filter(|i| keyed(i)) {
            prop_assert_eq!(ledger_sim::decide(&replay, input), ledger_sim::decide(&ledger, input), "{:?}", input);
            let mut changed = input.clone();
            other_content(&mut changed);
            prop_assert_eq!(ledger_sim::decide(&replay, &changed), Ok(Decision::Seen(Seen::IdConflict)), "{:?}", changed);
        }
    }

    #[test]
    fn partitioned_replay_gives_the_same_state(ops in proptest::collection::vec(op(), 1..300), partitions in 1u32..6) {
        let (ledger, facts) = run(&inputs(&ops));
        let replay = partitioned_replay(&facts, partitions);
        prop_assert_eq!(replay.export(), ledger.export());
        prop_assert_eq!(replay.digest(), ledger.digest());
    }
}

/// The facts as loan.events would hold them: keyed facts on their key's partition, opens
/// and day closes on every partition; each partition folded in its own order.
fn partitioned_replay(facts: &[Fact], partitions: u32) -> Ledger {
    let mut replay = Ledger::new(Arc::new(ProductConfig::default()));
    let mut logs: BTreeMap<u32, Vec<&Fact>> = BTreeMap::new();
    for f in facts {
        match f.partition_key() {
            Some(key) => logs.entry(hash(key) % partitions).or_default().push(f),
            None => (0..partitions).for_each(|p| logs.entry(p).or_default().push(f)),
        }
    }
    for (p, log) in logs.iter().rev() {
        for f in log {
            replay.apply(*p, f, &mut Discard);
        }
    }
    replay
}

fn keyed(input: &Input) -> bool {
    matches!(input, Input::Application(_) | Input::Repayment(_) | Input::Collections(_) | Input::MerchantUpdate(_))
}

/// The fingerprint of the first input with each idempotency key.
fn first_inputs(stream: &[Input]) -> BTreeMap<String, Fingerprint> {
    let mut first = BTreeMap::new();
    for input in stream.iter().filter(|i| keyed(i)) {
        first.entry(input.key()).or_insert_with(|| input.fingerprint());
    }
    first
}

/// Changes one field of a keyed input (not its id, nor anything that makes it unreadable).
fn other_content(input: &mut Input) {
    match input {
        Input::Application(a) => a.borrower_id.push('x'),
        Input::Repayment(r) => r.loan_id.push('x'),
        Input::Collections(c) => c.loan_id = Some(format!("{}x", c.loan_id.as_deref().unwrap_or_default())),
        Input::MerchantUpdate(u) => u.borrower_id.push('x'),
        Input::Open { .. } | Input::CloseDay { .. } => unreachable!("not keyed"),
    }
}

fn hash(key: &str) -> u32 {
    key.bytes().fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619))
}
