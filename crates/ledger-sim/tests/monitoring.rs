//! One example per rule of SPEC.md section 12 (in-loan monitoring and rewards), each a
//! small scenario run through the fold and checked against figures worked out by hand
//! in the comments.
//!
//! Platform scores used below (weights 0.3 sales, 0.2 growth, 0.2 orders, 0.2 rating,
//! 0.1 active days): TOP = 100.00; WEAK = growth 0.5 (20) + orders 10,000 (20) + 45 days
//! (5) = 45.00; FALLING = growth 0.49 (0.99 x 20 = 19.8) + orders (20) = 39.80; FORTY =
//! growth (20) + orders (20) = 40.00 exactly; FIFTY = FORTY + 90 days (10) = 50.00
//! exactly; FIFTY_SEVEN = 0.3x50 + 0.2x60 + 0.2x50 + 0.2x75 + 0.1x50 = 57.00.

use std::sync::Arc;

use ledger_core::export::{BorrowerView, Export};
use ledger_core::scenario::ScenarioError;
use ledger_sim::run;
use ledger_core::state::{LoanExposure, LoanRecalled, RiskWarning};
use ledger_core::{Date, Derived, Money, ProductConfig};

mod common;
use common::*;

const TOP: &str = r#"{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}"#;
const WEAK: &str = r#"{"kind":"PLATFORM","annual_sales":"0.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":1,"active_days_90":45}"#;
const FALLING: &str = r#"{"kind":"PLATFORM","annual_sales":"0.00","sales_growth":"0.49","orders_12m":10000,"seller_rating":1,"active_days_90":0}"#;
const FORTY: &str = r#"{"kind":"PLATFORM","annual_sales":"0.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":1,"active_days_90":0}"#;
const FIFTY: &str = r#"{"kind":"PLATFORM","annual_sales":"0.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":1,"active_days_90":90}"#;
const FIFTY_SEVEN: &str = r#"{"kind":"PLATFORM","annual_sales":"2500000.00","sales_growth":"0.10","orders_12m":5000,"seller_rating":4,"active_days_90":45}"#;

fn try_run(lines: &[String]) -> Result<(Export, Vec<Derived>), ScenarioError> {
    let mut derived = Vec::new();
    run(&lines.join("\n"), Arc::new(ProductConfig::default()), &mut derived).map(|(ledger, _)| (ledger.export(), derived))
}

fn export(lines: &[String]) -> Export {
    events(lines).0
}

fn events(lines: &[String]) -> (Export, Vec<Derived>) {
    try_run(lines).unwrap_or_else(|e| panic!("scenario failed: {e}"))
}

fn credit(id: &str, borrower: &str, amount: &str, term: i64, merchant: &str) -> String {
    credit_with(id, borrower, amount, term, merchant)
}

fn update(id: &str, borrower: &str, merchant: &str) -> String {
    format!(r#"{{"type":"merchant_update","update_id":"{id}","borrower_id":"{borrower}","merchant":{merchant}}}"#)
}

fn borrower<'a>(e: &'a Export, id: &str) -> &'a BorrowerView {
    e.borrowers.iter().find(|b| b.borrower_id == id).unwrap_or_else(|| panic!("no borrower {id}"))
}

fn warnings(derived: &[Derived]) -> Vec<&RiskWarning> {
    derived.iter().filter_map(|d| if let Derived::RiskWarning(w) = d { Some(w) } else { None }).collect()
}

fn recalls(derived: &[Derived]) -> Vec<&LoanRecalled> {
    derived.iter().filter_map(|d| if let Derived::LoanRecalled(r) = d { Some(r) } else { None }).collect()
}

fn d(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// B1 repays three 1,000.00 loans on time (each the day after it was lent, 0.60 of
/// interest): rewarded from the close of 01-03 on. Business date afterwards: 01-04.
fn three_on_time() -> Vec<String> {
    let mut out = vec![open("2026-01-01")];
    for (i, day) in ["2026-01-01", "2026-01-02", "2026-01-03"].iter().enumerate() {
        out.push(credit(&format!("R{i}"), "B1", "1000.00", 10, TOP));
        out.push(close(day));
        out.push(pay(&format!("RP{i}"), &format!("R{i}"), "1000.60"));
    }
    out
}

#[test]
fn an_update_for_an_unknown_borrower_is_refused_and_changes_nothing() {
    let (e, derived) = events(&[open("2026-01-01"), credit("A1", "B1", "1000.00", 30, TOP), update("U1", "B9", FALLING)]);
    let u = &e.merchant_updates[0];
    assert_eq!((u.update_id.as_str(), u.borrower_id.as_str(), u.status.as_str()), ("U1", "B9", "REJECTED"));
    assert_eq!((u.score.clone(), u.reason.clone()), (None, Some("UNKNOWN_BORROWER".to_string())));
    assert_eq!(e.borrowers.len(), 1, "an update does not make a borrower known");
    assert_eq!(borrower(&e, "B1").score, "100.00");
    assert!(warnings(&derived).is_empty() && recalls(&derived).is_empty());
}

#[test]
fn a_resent_update_id_changes_nothing_even_a_refused_one() {
    // U1 applied (45.00), then re-sent with FALLING figures: no recall, score stays 45.00.
    // U2 refused (unknown borrower), then re-sent for B1: still refused, listed once.
    let (e, derived) = events(&[
        open("2026-01-01"),
        credit("A1", "B1", "1000.00", 30, TOP),
        update("U1", "B1", WEAK),
        update("U1", "B1", FALLING),
        update("U2", "B9", WEAK),
        update("U2", "B1", FALLING),
    ]);
    assert_eq!(e.merchant_updates.len(), 2);
    assert_eq!(e.merchant_updates[0].score.as_deref(), Some("45.00"));
    assert_eq!(e.merchant_updates[1].reason.as_deref(), Some("UNKNOWN_BORROWER"));
    assert_eq!(borrower(&e, "B1").score, "45.00");
    assert!(!loan(&e, "A1").recalled);
    assert_eq!(warnings(&derived).len(), 1, "only U1 warned");
    assert!(recalls(&derived).is_empty());
}

#[test]
fn validity_is_checked_before_the_id_and_the_borrower() {
    // A re-sent id and an unknown borrower, but no seller rating: the line is invalid.
    let no_rating = r#"{"kind":"PLATFORM","annual_sales":"1.00","sales_growth":"0","orders_12m":1,"active_days_90":1}"#;
    let err = try_run(&[
        open("2026-01-01"),
        credit("A1", "B1", "1000.00", 30, TOP),
        update("U1", "B1", WEAK),
        update("U1", "B9", no_rating),
    ])
    .expect_err("must stop");
    assert_eq!(err.line, 4);
    assert!(err.to_string().contains("seller_rating"), "{err}");
    let unreadable = r#"{"kind":"PLATFORM","annual_sales":"lots"}"#;
    let err = try_run(&[open("2026-01-01"), update("", "", unreadable)]).expect_err("must stop");
    assert!(err.to_string().contains("annual_sales"), "{err}");
}

#[test]
fn an_applied_update_rescores_and_recomputes_the_credit_line() {
    // FIFTY_SEVEN: line 2,500,000 x 0.2 x 0.57 = 285,000. The score is the update's,
    // approved or not, and exactly 50 is not a warning (< 50 is).
    let e = export(&[
        open("2026-01-01"),
        credit("A1", "B1", "1000.00", 30, TOP),
        credit("A2", "B2", "1000.00", 30, TOP),
        update("U1", "B1", FIFTY_SEVEN),
        update("U2", "B2", FIFTY),
    ]);
    let b1 = borrower(&e, "B1");
    assert_eq!((b1.score.as_str(), b1.credit_line.to_string().as_str(), b1.warning), ("57.00", "285000.00", false));
    let b2 = borrower(&e, "B2");
    assert_eq!((b2.score.as_str(), b2.credit_line.to_string().as_str(), b2.warning), ("50.00", "0.00", false));
    assert_eq!(e.merchant_updates[0].status, "APPLIED");
}

#[test]
fn warning_while_below_fifty_and_a_risk_warning_per_update_with_an_active_loan() {
    // U1 (45.00) and U2 (45.00 again) each warn B1, who has A1 active; B2 has no ACTIVE
    // loan (repaid), so U3 marks it `warning` without a notice.
    let (e, derived) = events(&[
        open("2026-01-01"),
        credit("A1", "B1", "7000.00", 30, TOP),
        credit("A2", "B2", "500.00", 30, TOP),
        pay("P2", "A2", "500.00"),
        update("U1", "B1", WEAK),
        update("U2", "B1", WEAK),
        update("U3", "B2", WEAK),
    ]);
    assert!(borrower(&e, "B1").warning && borrower(&e, "B2").warning);
    let got = warnings(&derived);
    assert_eq!(got.len(), 2);
    let loans = vec![LoanExposure { loan_id: "A1".into(), principal_outstanding: Money::from_cents(700_000) }];
    assert_eq!(
        got[0],
        &RiskWarning {
            borrower_id: "B1".into(),
            date: d("2026-01-01"),
            score: "45.00".parse().unwrap(),
            previous_score: "100.00".parse().unwrap(),
            loans,
        }
    );
    assert_eq!((got[1].score.to_string(), got[1].previous_score.to_string()), ("45.00".into(), "45.00".into()));
    // A better score ends the warning (and sends nothing).
    let (e, derived) = events(&[open("2026-01-01"), credit("A1", "B1", "7000.00", 30, TOP), update("U1", "B1", WEAK), update("U2", "B1", TOP)]);
    assert!(!borrower(&e, "B1").warning);
    assert_eq!(warnings(&derived).len(), 1);
}

#[test]
fn below_forty_recalls_active_loans_maturing_after_d_plus_7() {
    // D = 2026-01-02 (after one close); D + 7 = 01-09. A1 (90 days, M 04-01) is recalled
    // to 01-09; A2 (5 days, M 01-06) and A3 (8 days from 01-01, M exactly 01-09) already
    // mature by then and are left alone; A4 is SETTLED and not touched.
    let (e, derived) = events(&[
        open("2026-01-01"),
        credit("A1", "B1", "10000.00", 90, TOP),
        credit("A2", "B1", "1000.00", 5, TOP),
        credit("A3", "B1", "1000.00", 8, TOP),
        credit("A4", "B1", "1000.00", 90, TOP),
        pay("P4", "A4", "1000.00"),
        close("2026-01-01"),
        update("U1", "B1", FALLING),
    ]);
    let a1 = loan(&e, "A1");
    assert_eq!((a1.maturity_date.to_string(), a1.recalled), ("2026-01-09".into(), true));
    for (id, maturity) in [("A2", "2026-01-06"), ("A3", "2026-01-09"), ("A4", "2026-04-01")] {
        let l = loan(&e, id);
        assert_eq!((l.maturity_date.to_string(), l.recalled), (maturity.to_string(), false), "{id}");
    }
    assert_eq!(borrower(&e, "B1").score, "39.80");
    // One LOAN_RECALLED, with what A1 owes after one day: 10,000 x 0.0006 = 6.00.
    assert_eq!(
        recalls(&derived),
        [&LoanRecalled {
            borrower_id: "B1".into(),
            loan_id: "A1".into(),
            date: d("2026-01-02"),
            previous_maturity_date: d("2026-04-01"),
            maturity_date: d("2026-01-09"),
            principal_owed: Money::from_cents(1_000_000),
            interest_owed: Money::from_cents(600),
            penalty_owed: Money::ZERO,
        }]
    );
    // The warning lists every ACTIVE loan, recalled or not.
    let listed: Vec<&str> = warnings(&derived)[0].loans.iter().map(|l| l.loan_id.as_str()).collect();
    assert_eq!(listed, ["A1", "A2", "A3"]);
}

#[test]
fn exactly_forty_recalls_nothing() {
    let e = export(&[open("2026-01-01"), credit("A1", "B1", "10000.00", 90, TOP), update("U1", "B1", FORTY)]);
    assert_eq!((loan(&e, "A1").maturity_date.to_string(), loan(&e, "A1").recalled), ("2026-04-01".into(), false));
    assert!(borrower(&e, "B1").warning);
}

#[test]
fn a_better_score_undoes_nothing_and_a_recall_never_moves_a_date_later() {
    // U1 on 01-01 recalls A1 to 01-08. U2 (100.00) changes nothing of that; U3 on 01-03
    // (D + 7 = 01-10) would be later than 01-08, so A1 keeps 01-08 and gets no notice.
    let (e, derived) = events(&lines(&[
        &[open("2026-01-01"), credit("A1", "B1", "10000.00", 90, TOP), update("U1", "B1", FALLING), update("U2", "B1", TOP)],
        &closes("2026-01-01", 2),
        &[update("U3", "B1", FALLING)],
    ]));
    let a1 = loan(&e, "A1");
    assert_eq!((a1.maturity_date.to_string(), a1.recalled), ("2026-01-08".into(), true));
    assert_eq!(recalls(&derived).len(), 1);
    assert_eq!(warnings(&derived).len(), 2, "U1 and U3 warn; U2 does not");
}

#[test]
fn a_recalled_loan_runs_the_normal_rules_on_its_new_date() {
    // Recalled on 01-01 to 01-08. Closes 01-01 .. 01-07: 7 x 10,000 x 0.0006 = 42.00 of
    // interest. The close of 01-08 is the first penalty day: 10,000 x 0.0009 = 9.00,
    // DPD 1 (M1), a LoanOverdue notice; the borrower now has an overdue loan.
    let base = [open("2026-01-01"), credit("A1", "B1", "10000.00", 90, TOP), update("U1", "B1", FALLING)];
    let e = export(&lines(&[&base, &closes("2026-01-01", 7)]));
    let a1 = loan(&e, "A1");
    assert_eq!((a1.interest_accrued.to_string(), a1.penalty_accrued.to_string(), a1.dpd), ("42.00".into(), "0.00".into(), 0));
    let (e, derived) = events(&lines(&[&base, &closes("2026-01-01", 8), &[credit("A2", "B1", "100.00", 30, TOP)]]));
    let a1 = loan(&e, "A1");
    assert_eq!((a1.interest_accrued.to_string(), a1.penalty_accrued.to_string(), a1.dpd), ("42.00".into(), "9.00".into(), 1));
    assert_eq!(a1.bucket, "M1");
    assert!(derived.iter().any(|x| matches!(x, Derived::Overdue(n) if n.loan_id == "A1" && n.dpd == 1)));
    assert_eq!(reasons(&e, "A2"), ["HAS_OVERDUE"]);
}

#[test]
fn on_time_means_settled_with_dpd_zero_after_the_day_it_was_lent() {
    // A1: repaid the day it was lent: not on time. A2: repaid on its maturity date
    // (01-01 + 2 = 01-03, 2 x 0.60 of interest): on time. A3: paid a day late (cured,
    // DPD 1: 1,000 x 0.0009 = 0.90 of penalty): not on time. A4: paid early: on time.
    let e = export(&[
        open("2026-01-01"),
        credit("A1", "B1", "1000.00", 10, TOP),
        pay("P1", "A1", "1000.00"),
        credit("A2", "B1", "1000.00", 2, TOP),
        credit("A3", "B1", "1000.00", 1, TOP),
        credit("A4", "B1", "1000.00", 30, TOP),
        close("2026-01-01"),
        pay("P4", "A4", "1000.60"),
        close("2026-01-02"),
        pay("P2", "A2", "1001.20"),
        pay("P3", "A3", "1001.50"),
    ]);
    for id in ["A1", "A2", "A3", "A4"] {
        assert_eq!(loan(&e, id).status, "SETTLED", "{id}");
    }
    assert_eq!(loan(&e, "A3").penalty_accrued.to_string(), "0.90");
    let b1 = borrower(&e, "B1");
    assert_eq!((b1.on_time_loans, b1.rewarded), (2, false));
}

#[test]
fn the_third_on_time_repayment_lowers_the_next_loans_rate_and_threshold() {
    // Before the third: 57.00 is SCORE_TOO_LOW at the product rate. After: approved at
    // 0.0006 x 0.9 = 0.00054; its penalty is 1.5x its own rate = 0.00081. A5: 10,000.00
    // for 2 days from 01-04: closes 01-04, 01-05 charge 2 x 5.40 = 10.80; the close of
    // 01-06 (= M) charges 10,000 x 0.00081 = 8.10 of penalty. R0..R2 keep 0.0006.
    let mut before = three_on_time();
    before.truncate(before.len() - 1);
    before.push(credit("A4", "B1", "1000.00", 30, FIFTY_SEVEN));
    let e = export(&before);
    assert_eq!(reasons(&e, "A4"), ["SCORE_TOO_LOW"]);
    assert_eq!(borrower(&e, "B1").on_time_loans, 2);

    let e = export(&lines(&[&three_on_time(), &[credit("A5", "B1", "10000.00", 2, FIFTY_SEVEN)], &closes("2026-01-04", 3)]));
    let b1 = borrower(&e, "B1");
    assert_eq!(b1.on_time_loans, 3);
    let a5 = loan(&e, "A5");
    assert_eq!(a5.daily_rate, "0.00054");
    assert_eq!((a5.interest_accrued.to_string(), a5.penalty_accrued.to_string()), ("10.80".into(), "8.10".into()));
    assert_eq!(loan(&e, "R0").daily_rate, "0.0006");
    // B2, same figures, no record: SCORE_TOO_LOW.
    let e = export(&lines(&[&three_on_time(), &[credit("A6", "B2", "1000.00", 30, FIFTY_SEVEN)]]));
    assert_eq!(reasons(&e, "A6"), ["SCORE_TOO_LOW"]);
}

#[test]
fn a_rewarded_borrower_loses_the_reward_while_a_loan_is_overdue() {
    // A5 (1 day, from 01-04, M 01-05) is unpaid at the close of 01-05: DPD 1, B1 is no
    // longer rewarded and 57.00 is too low again (and HAS_OVERDUE). Paying it off (a
    // cure, not on time: on_time_loans stays 3) gives the reward back.
    let base = lines(&[&three_on_time(), &[credit("A5", "B1", "1000.00", 1, TOP)], &closes("2026-01-04", 2)]);
    let e = export(&lines(&[&base, &[credit("A6", "B1", "1000.00", 30, FIFTY_SEVEN)]]));
    let b1 = borrower(&e, "B1");
    assert_eq!((b1.on_time_loans, b1.rewarded), (3, false));
    assert_eq!(reasons(&e, "A6"), ["SCORE_TOO_LOW", "HAS_OVERDUE"]);
    // A5 owes 0.54 of interest (1 day at the rewarded rate) and 0.81 of penalty.
    let e = export(&lines(&[&base, &[pay("P5", "A5", "1001.35"), credit("A7", "B1", "1000.00", 30, FIFTY_SEVEN)]]));
    assert_eq!(loan(&e, "A5").status, "SETTLED");
    let b1 = borrower(&e, "B1");
    assert_eq!((b1.on_time_loans, b1.rewarded), (3, true));
    assert_eq!(loan(&e, "A7").daily_rate, "0.00054");
}

#[test]
fn a_blacklisted_borrower_or_one_with_a_write_off_is_not_rewarded() {
    let malicious = r#"{"type":"collections_action","action_id":"C1","action":"MARK_MALICIOUS","borrower_id":"B1"}"#;
    let e = export(&lines(&[&three_on_time(), &[malicious.to_string()]]));
    assert!(!borrower(&e, "B1").rewarded);
    // A5 goes overdue and is written off: nothing is overdue any more, but a write-off
    // ends the reward for good.
    let write_off = r#"{"type":"collections_action","action_id":"W1","action":"WRITE_OFF","loan_id":"A5"}"#;
    let e = export(&lines(&[&three_on_time(), &[credit("A5", "B1", "1000.00", 1, TOP)], &closes("2026-01-04", 2), &[write_off.to_string()]]));
    assert_eq!(loan(&e, "A5").status, "WRITTEN_OFF");
    let b1 = borrower(&e, "B1");
    assert_eq!((b1.on_time_loans, b1.rewarded, b1.blacklisted), (3, false, false));
}
