//! A loan's statement and payoff (ledger_core::statement) against the golden scenarios:
//! for every loan of every scenario, the statement folded from the log leaves the
//! export's loan, its entries add up to the export's figures, and paying the payoff on
//! the open date settles the loan with nothing over and nothing added by the close.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::export::{loan_view, LoanView};
use ledger_core::scenario::parse_line;
use ledger_core::statement::{payoff, statement, Entry, EntryKind};
use ledger_core::{Decision, Discard, Fact, Ledger, LoanStatus, Money, Outcome, ProductConfig};

fn scenarios() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// The scenario decided and applied on one partition, and the facts it became.
fn fold(text: &str) -> (Ledger, Vec<Fact>) {
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let mut facts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(input) = parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1)) else { continue };
        if let Decision::Fact(fact) = ledger_sim::decide(&ledger, &input).unwrap() {
            assert_eq!(ledger.apply(0, &fact, &mut Discard), Outcome::Applied);
            facts.push(fact);
        }
    }
    (ledger, facts)
}

fn sum(entries: &[Entry], field: impl Fn(&Entry) -> Money) -> Money {
    entries.iter().map(field).sum()
}

/// The entries add up to the loan: every component's movements to its balance, and
/// each entry's running balance to the movements before it.
fn assert_adds_up(context: &str, entries: &[Entry], loan: &LoanView) {
    let disbursed = sum(entries, |e| e.principal_disbursed);
    assert_eq!(disbursed, loan.principal, "{context}: principal disbursed");
    assert_eq!(disbursed.minus(sum(entries, |e| e.principal_paid)), loan.principal_outstanding, "{context}: principal");
    let interest = sum(entries, |e| e.interest_charged);
    assert_eq!(interest, loan.interest_accrued, "{context}: interest charged");
    assert_eq!(interest.minus(sum(entries, |e| e.interest_paid)), loan.interest_owed, "{context}: interest owed");
    let penalty = sum(entries, |e| e.penalty_charged);
    assert_eq!(penalty, loan.penalty_accrued, "{context}: penalty charged");
    assert_eq!(penalty.minus(sum(entries, |e| e.penalty_paid)), loan.penalty_owed, "{context}: penalty owed");
    assert_eq!(sum(entries, |e| e.overpayment), loan.overpayment, "{context}: overpayment");
    assert_eq!(sum(entries, |e| e.recovered), loan.recovered, "{context}: recovered");
    for (i, e) in entries.iter().enumerate() {
        let so_far = &entries[..=i];
        let principal = sum(so_far, |x| x.principal_disbursed).minus(sum(so_far, |x| x.principal_paid));
        assert_eq!(e.principal_outstanding, principal, "{context}: entry {i}");
        assert_eq!(e.interest_owed, sum(so_far, |x| x.interest_charged).minus(sum(so_far, |x| x.interest_paid)), "{context}: entry {i}");
        assert_eq!(e.penalty_owed, sum(so_far, |x| x.penalty_charged).minus(sum(so_far, |x| x.penalty_paid)), "{context}: entry {i}");
        assert_eq!(e.total_owed, e.principal_outstanding.plus(e.interest_owed).plus(e.penalty_owed), "{context}: entry {i}");
        let paid = e.penalty_paid.plus(e.interest_paid).plus(e.principal_paid).plus(e.overpayment).plus(e.recovered);
        assert_eq!(paid, e.amount, "{context}: entry {i}: the allocation is the amount received");
    }
    let last = entries.last().expect("a statement has its disbursement");
    assert_eq!(last.status.as_str(), loan.status, "{context}: status");
    assert_eq!((last.dpd, last.bucket.as_str()), (loan.dpd, loan.bucket.as_str()), "{context}: dpd and bucket");
    assert_eq!(last.maturity_date, loan.maturity_date, "{context}: maturity date");
}

#[test]
fn every_loan_of_every_golden_scenario_adds_up_to_its_export() {
    let config = ProductConfig::default();
    let mut loans = 0;
    for (name, text) in scenarios() {
        let (ledger, facts) = fold(&text);
        for expected in ledger.export().loans {
            let context = format!("{name}: loan {}", expected.loan_id);
            let s = statement(&config, &expected.loan_id, &facts).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(loan_view(&s.loan), expected, "{context}: the statement's fold leaves another loan");
            assert_eq!(Some(s.business_date), ledger.business_date(), "{context}");
            assert_eq!(s.entries[0].kind, EntryKind::Disbursement, "{context}");
            assert_adds_up(&context, &s.entries, &expected);
            let closes = facts.iter().filter(|f| matches!(f, Fact::DayClosed { date } if *date >= expected.disbursed_on)).count();
            let accruals = s.entries.iter().filter(|e| e.kind == EntryKind::Accrual).count();
            if expected.status == "ACTIVE" {
                assert_eq!(accruals, closes, "{context}: one accrual per close while ACTIVE");
            }
            assert!(s.entries.windows(2).all(|w| w[0].date <= w[1].date), "{context}: entries in date order");
            loans += 1;
        }
    }
    assert!(loans >= 20, "expected at least 20 loans over the golden scenarios, found {loans}");
}

#[test]
fn paying_the_payoff_on_the_open_date_settles_with_nothing_over_and_nothing_added() {
    let config = ProductConfig::default();
    let mut active = 0;
    for (name, text) in scenarios() {
        let (ledger, facts) = fold(&text);
        let today = ledger.business_date().unwrap();
        for (_, loan) in ledger.books().values().flat_map(|b| b.loans().iter().map(move |l| (b, l))) {
            let context = format!("{name}: loan {}", loan.loan_id);
            let s = statement(&config, &loan.loan_id, &facts).unwrap();
            let p = payoff(&s.loan, s.business_date);
            assert_eq!((p.date, p.status), (today, loan.status), "{context}");
            assert_eq!(p.total, p.penalty.plus(p.interest).plus(p.principal), "{context}");
            assert_eq!(p.settles, loan.status == LoanStatus::Active, "{context}");
            if !p.settles {
                continue;
            }
            active += 1;
            let pay = |amount: Money| {
                let mut after = ledger.clone();
                let fact = Fact::RepaymentAccepted {
                    payment_id: format!("PAYOFF-{}", loan.loan_id),
                    loan_id: loan.loan_id.clone(),
                    borrower_id: loan.borrower_id.clone(),
                    amount,
                    fingerprint: None,
                };
                assert_eq!(after.apply(0, &fact, &mut Discard), Outcome::Applied);
                after.apply(0, &Fact::DayClosed { date: today }, &mut Discard);
                after.loan(&loan.loan_id).unwrap().1.clone()
            };
            let settled = pay(p.total);
            assert_eq!(settled.status, LoanStatus::Settled, "{context}: the payoff settles");
            assert_eq!(settled.overpayment, loan.overpayment, "{context}: nothing over");
            assert_eq!(
                (settled.interest_accrued, settled.penalty_accrued),
                (loan.interest_accrued, loan.penalty_accrued),
                "{context}: the close of the payoff date adds nothing"
            );
            if p.total > Money::from_cents(1) {
                let short = pay(p.total.minus(Money::from_cents(1)));
                assert_eq!(short.status, LoanStatus::Active, "{context}: a cent short does not settle");
            }
        }
    }
    assert!(active >= 5, "expected ACTIVE loans to pay off, found {active}");
}

/// SPEC section 10's example, checked by hand: A1 lent 20,000.00, 100.00 repaid on the
/// day (all principal), 19,900 x 0.0006 = 11.94 charged at the close, recalled by U1 to
/// 2026-01-09; payoff on 2026-01-02 is 11.94 + 19,900.00.
#[test]
fn the_spec_example_statement_by_hand() {
    let (_, text) = scenarios().into_iter().find(|(name, _)| name == "spec-example").unwrap();
    let (_, facts) = fold(&text);
    let s = statement(&ProductConfig::default(), "A1", &facts).unwrap();
    let lines: Vec<String> = s
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {} +{} +{} +{} -{} -{} -{} = {} {} {} dpd {} matures {}",
                e.date,
                e.kind,
                e.reference.as_deref().unwrap_or("-"),
                e.principal_disbursed,
                e.interest_charged,
                e.penalty_charged,
                e.penalty_paid,
                e.interest_paid,
                e.principal_paid,
                e.principal_outstanding,
                e.interest_owed,
                e.penalty_owed,
                e.dpd,
                e.maturity_date
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "2026-01-01 Disbursement - +20000.00 +0.00 +0.00 -0.00 -0.00 -0.00 = 20000.00 0.00 0.00 dpd 0 matures 2026-04-01",
            "2026-01-01 Payment P1 +0.00 +0.00 +0.00 -0.00 -0.00 -100.00 = 19900.00 0.00 0.00 dpd 0 matures 2026-04-01",
            "2026-01-01 Accrual - +0.00 +11.94 +0.00 -0.00 -0.00 -0.00 = 19900.00 11.94 0.00 dpd 0 matures 2026-04-01",
            "2026-01-02 LoanRecalled U1 +0.00 +0.00 +0.00 -0.00 -0.00 -0.00 = 19900.00 11.94 0.00 dpd 0 matures 2026-01-09",
        ]
    );
    let p = payoff(&s.loan, s.business_date);
    assert_eq!(
        (p.date.to_string(), p.penalty.to_string(), p.interest.to_string(), p.principal.to_string(), p.total.to_string()),
        ("2026-01-02".into(), "0.00".into(), "11.94".into(), "19900.00".into(), "19911.94".into())
    );
    assert!(statement(&ProductConfig::default(), "A2", &facts).is_err(), "A2 was rejected: no loan, no statement");
}
