//! One example per rule of SPEC.md, each a small scenario run through the fold and
//! checked against figures worked out by hand in the comments.

use std::sync::Arc;

use ledger_core::export::Export;
use ledger_core::scenario::ScenarioError;
use ledger_sim::run;
use ledger_core::{Discard, ProductConfig};

mod common;
use common::*;

fn try_run(lines: &[String]) -> Result<Export, ScenarioError> {
    let text = lines.join("\n");
    run(&text, Arc::new(ProductConfig::default()), &mut Discard).map(|(ledger, _)| ledger.export())
}

fn export(lines: &[String]) -> Export {
    try_run(lines).unwrap_or_else(|e| panic!("scenario failed: {e}"))
}

/// A platform merchant with every indicator at 100: score 100, line 1,000,000.
const TOP_MERCHANT: &str = r#"{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}"#;

fn credit(id: &str, borrower: &str, amount: &str, term: i64) -> String {
    format!(
        r#"{{"type":"application","application_id":"{id}","borrower_id":"{borrower}","product":"CREDIT","amount":"{amount}","term_days":{term},"merchant":{TOP_MERCHANT}}}"#
    )
}

fn order(id: &str, borrower: &str, amount: &str, term: i64, orders: &[(&str, &str)]) -> String {
    let list: Vec<String> = orders.iter().map(|(o, a)| format!(r#"{{"order_id":"{o}","amount":"{a}"}}"#)).collect();
    format!(
        r#"{{"type":"application","application_id":"{id}","borrower_id":"{borrower}","product":"ORDER","amount":"{amount}","term_days":{term},"orders":[{}],"merchant":{TOP_MERCHANT}}}"#,
        list.join(",")
    )
}

fn action(id: &str, kind: &str, target: &str) -> String {
    let field = if kind == "WRITE_OFF" { "loan_id" } else { "borrower_id" };
    format!(r#"{{"type":"collections_action","action_id":"{id}","action":"{kind}","{field}":"{target}"}}"#)
}

fn payment(e: &Export, id: &str) -> (String, [String; 4], Option<String>) {
    let p = e.payments.iter().find(|p| p.payment_id == id).unwrap();
    (
        p.status.clone(),
        [p.penalty.to_string(), p.interest.to_string(), p.principal.to_string(), p.overpayment.to_string()],
        p.reason.clone(),
    )
}

#[test]
fn repaid_on_disbursement_day_owes_no_interest() {
    let e = export(&[open("2026-01-01"), credit("A1", "B1", "10000.00", 30), pay("P1", "A1", "10000.00"), close("2026-01-01")]);
    let l = loan(&e, "A1");
    assert_eq!((l.status.as_str(), l.interest_accrued.to_string().as_str()), ("SETTLED", "0.00"));
    assert_eq!(payment(&e, "P1").1, ["0.00", "0.00", "10000.00", "0.00"].map(String::from));
}

#[test]
fn repaid_next_day_owes_one_day() {
    // 10,000.00 x 0.0006 = 6.00 for the close of the disbursement day.
    let e = export(&[open("2026-01-01"), credit("A1", "B1", "10000.00", 30), close("2026-01-01"), pay("P1", "A1", "10006.00")]);
    let l = loan(&e, "A1");
    assert_eq!(l.status, "SETTLED");
    assert_eq!(l.interest_accrued.to_string(), "6.00");
    assert_eq!(payment(&e, "P1").1, ["0.00", "6.00", "10000.00", "0.00"].map(String::from));
    assert_eq!(e.portfolio.interest_income.to_string(), "6.00");
}

#[test]
fn maturity_boundary_last_interest_day_then_first_penalty_day() {
    // Disbursed 01-01 for 3 days: M = 01-04. Closes 01-01..01-03 charge interest
    // (3 x 6.00); the close of 01-04 is the first penalty day: 10,000 x 0.0006 x 1.5 = 9.00,
    // DPD = 01-04 - 01-04 + 1 = 1.
    let before = export(&lines(&[&[open("2026-01-01"), credit("A1", "B1", "10000.00", 3)], &closes("2026-01-01", 3)]));
    let l = loan(&before, "A1");
    assert_eq!((l.interest_accrued.to_string(), l.penalty_accrued.to_string(), l.dpd), ("18.00".into(), "0.00".into(), 0));
    assert_eq!(l.maturity_date.to_string(), "2026-01-04");
    let after = export(&lines(&[&[open("2026-01-01"), credit("A1", "B1", "10000.00", 3)], &closes("2026-01-01", 4)]));
    let l = loan(&after, "A1");
    assert_eq!((l.interest_accrued.to_string(), l.penalty_accrued.to_string(), l.dpd), ("18.00".into(), "9.00".into(), 1));
    assert_eq!(l.bucket, "M1");
    assert_eq!(after.portfolio.overdue_principal.m1.to_string(), "10000.00");
}

#[test]
fn accumulates_exactly_then_rounds() {
    // 1.00 CREDIT: 0.0006 a day. Rounded per day it would stay 0.00 for ever; the exact
    // accumulator reaches 0.0048 after 8 closes (0.00) and 0.0054 after 9 (0.01).
    let base = [open("2026-01-01"), credit("A1", "B1", "1.00", 60)];
    let e8 = export(&lines(&[&base, &closes("2026-01-01", 8)]));
    assert_eq!(loan(&e8, "A1").interest_accrued.to_string(), "0.00");
    let e9 = export(&lines(&[&base, &closes("2026-01-01", 9)]));
    assert_eq!(loan(&e9, "A1").interest_accrued.to_string(), "0.01");
    // 25 closes: 0.0150 -> 0.02 (half up), per-day rounding would give 0.00.
    let e25 = export(&lines(&[&base, &closes("2026-01-01", 25)]));
    assert_eq!(loan(&e25, "A1").interest_accrued.to_string(), "0.02");
}

#[test]
fn allocation_is_penalty_then_interest_then_principal_then_overpayment() {
    // 1,000.00 for 1 day from 01-01: M = 01-02. Close 01-01: interest 0.60. Close 01-02
    // and 01-03: penalty 0.90 a day = 1.80. Owed: 1.80 + 0.60 + 1,000.00.
    let base = lines(&[&[open("2026-01-01"), credit("A1", "B1", "1000.00", 1)], &closes("2026-01-01", 3)]);
    // 2.00 pays 1.80 penalty, then 0.20 of interest.
    let e = export(&lines(&[&base, &[pay("P1", "A1", "2.00")]]));
    assert_eq!(payment(&e, "P1").1, ["1.80", "0.20", "0.00", "0.00"].map(String::from));
    let l = loan(&e, "A1");
    assert_eq!((l.penalty_owed.to_string(), l.interest_owed.to_string()), ("0.00".into(), "0.40".into()));
    assert_eq!(l.status, "ACTIVE");
    // 1,010.00 then pays 0.40 interest, 1,000.00 principal and 9.60 is overpayment.
    let e = export(&lines(&[&base, &[pay("P1", "A1", "2.00"), pay("P2", "A1", "1010.00")]]));
    assert_eq!(payment(&e, "P2").1, ["0.00", "0.40", "1000.00", "9.60"].map(String::from));
    let l = loan(&e, "A1");
    assert_eq!((l.status.as_str(), l.overpayment.to_string().as_str(), l.dpd, l.bucket.as_str()), ("SETTLED", "9.60", 0, "CURRENT"));
}

#[test]
fn settled_loan_stops_accruing_and_later_payments_are_overpayment() {
    let e = export(&lines(&[
        &[open("2026-01-01"), credit("A1", "B1", "500.00", 10), close("2026-01-01"), pay("P1", "A1", "500.30")],
        &closes("2026-01-02", 5),
        &[pay("P2", "A1", "12.34")],
    ]));
    let l = loan(&e, "A1");
    // One day: 500 x 0.0006 = 0.30; nothing after settlement.
    assert_eq!((l.status.as_str(), l.interest_accrued.to_string().as_str()), ("SETTLED", "0.30"));
    assert_eq!(payment(&e, "P2"), ("APPLIED".into(), ["0.00", "0.00", "0.00", "12.34"].map(String::from), None));
    assert_eq!(l.overpayment.to_string(), "12.34");
    assert_eq!(e.portfolio.active_loans, 0);
    assert_eq!(e.portfolio.outstanding_principal.to_string(), "0.00");
}

#[test]
fn partial_principal_lowers_the_next_days_interest() {
    // 10,000 -> close 01-01 charges 6.00; pay 4,006.00 (6.00 interest, 4,000 principal);
    // close 01-02 charges 6,000 x 0.0006 = 3.60.
    let e = export(&[open("2026-01-01"), credit("A1", "B1", "10000.00", 30), close("2026-01-01"), pay("P1", "A1", "4006.00"), close("2026-01-02")]);
    let l = loan(&e, "A1");
    assert_eq!((l.interest_accrued.to_string(), l.interest_owed.to_string(), l.principal_outstanding.to_string()), ("9.60".into(), "3.60".into(), "6000.00".into()));
}

#[test]
fn order_loan_uses_its_rate_and_term() {
    // ORDER 0.05%: 2,000 x 0.0005 = 1.00 a day. Term 60 is allowed, 61 is not.
    let e = export(&[
        open("2026-01-01"),
        order("A1", "B1", "2000.00", 60, &[("O1", "1500.00"), ("O2", "500.00")]),
        order("A2", "B2", "100.00", 61, &[("O3", "100.00")]),
        close("2026-01-01"),
        close("2026-01-02"),
    ]);
    assert_eq!(loan(&e, "A1").interest_accrued.to_string(), "2.00");
    assert_eq!(loan(&e, "A1").maturity_date.to_string(), "2026-03-02");
    assert_eq!(reasons(&e, "A2"), ["TERM_OUT_OF_RANGE"]);
}

#[test]
fn scoring_tables_and_clamping_through_a_scenario() {
    let over_the_top = r#"{"kind":"PLATFORM","annual_sales":"9000000.00","sales_growth":"2.5","orders_12m":99999,"seller_rating":9,"active_days_90":400}"#;
    let below_zero = r#"{"kind":"OFF_PLATFORM","annual_sales":"100000.00","sales_growth":"-3","inventory_turnover":"-1","debt_ratio":"4","active_days_90":0,"positive_review_rate":"0"}"#;
    let e = export(&[open("2026-01-01"), credit_with("A1", "B1", "100.00", 10, over_the_top), credit_with("A2", "B2", "100.00", 10, below_zero)]);
    let a1 = e.applications.iter().find(|a| a.application_id == "A1").unwrap();
    assert_eq!((a1.score.as_str(), a1.decision.as_str()), ("100.00", "APPROVED"));
    // Only annual sales scores: 100,000 / 5,000,000 x 100 x 0.2 = 0.40.
    let a2 = e.applications.iter().find(|a| a.application_id == "A2").unwrap();
    assert_eq!((a2.score.as_str(), a2.decision.as_str()), ("0.40", "REJECTED"));
    // Line: min(1,000,000, 9,000,000 x 0.2 x 1) = 1,000,000; 100,000 x 0.2 x 0.004 = 80 -> 0.
    let lines_by_id: Vec<(String, String)> = e.borrowers.iter().map(|b| (b.borrower_id.clone(), b.credit_line.to_string())).collect();
    assert_eq!(lines_by_id, [("B1".into(), "1000000.00".into()), ("B2".into(), "0.00".into())]);
}

#[test]
fn score_below_sixty_is_refused_and_sixty_is_enough() {
    // Off-platform: 1,625,000 -> 6.5; growth 0.5 -> 20; turnover 6.5/12 -> 10.833..;
    // debt 0.2 -> 16; days 60/90 -> 6.666..; reviews 0 -> 0: exactly 60.
    let sixty = r#"{"kind":"OFF_PLATFORM","annual_sales":"1625000.00","sales_growth":"0.5","inventory_turnover":"6.5","debt_ratio":"0.2","active_days_90":60,"positive_review_rate":"0"}"#;
    let just_below = r#"{"kind":"OFF_PLATFORM","annual_sales":"1624999.99","sales_growth":"0.5","inventory_turnover":"6.5","debt_ratio":"0.2","active_days_90":60,"positive_review_rate":"0"}"#;
    let e = export(&[open("2026-01-01"), credit_with("A1", "B1", "100.00", 10, sixty), credit_with("A2", "B2", "100.00", 10, just_below)]);
    assert_eq!(reasons(&e, "A1"), Vec::<String>::new());
    assert_eq!(e.applications[0].score, "60.00");
    // 1,624,999.99 scores 59.9999996 (shown 60.00) and is refused: the threshold is exact.
    assert_eq!(reasons(&e, "A2"), ["SCORE_TOO_LOW"]);
    assert_eq!(e.applications[1].score, "60.00");
}

#[test]
fn every_application_refusal_reason() {
    let poor = r#"{"kind":"PLATFORM","annual_sales":"100000.00","sales_growth":"0","orders_12m":100,"seller_rating":2,"active_days_90":10}"#;
    // Poor: 0.6 + 10 + 0.2 + 5 + 1.111.. = 16.91; line 100,000 x 0.2 x 0.1691.. = 3,382 -> 3,300.
    let e = export(&[
        open("2026-01-01"),
        credit_with("R1", "B1", "100.00", 30, poor),
        credit("R2", "B2", "100.00", 0),
        credit("R3", "B2", "100.00", 366),
        credit("R4", "B2", "100.0", 30),
        credit("R5", "B2", "500000.01", 30),
        credit_with("R6", "B3", "3400.00", 30, poor),
        credit("A7", "B4", "500000.00", 30),
        credit("A8", "B4", "500000.00", 30),
        credit("R9", "B4", "0.01", 30),
        order("A10", "B5", "100.00", 30, &[("O1", "100.00")]),
        order("R11", "B6", "100.00", 30, &[("O1", "100.00")]),
        order("R12", "B6", "100.01", 30, &[("O2", "60.00"), ("O3", "40.00")]),
    ]);
    assert_eq!(reasons(&e, "R1"), ["SCORE_TOO_LOW"]);
    assert_eq!(reasons(&e, "R2"), ["TERM_OUT_OF_RANGE"]);
    assert_eq!(reasons(&e, "R3"), ["TERM_OUT_OF_RANGE"]);
    assert_eq!(reasons(&e, "R4"), ["INVALID_AMOUNT"]);
    assert_eq!(reasons(&e, "R5"), ["OVER_PRODUCT_MAX"]);
    // B3's line from the poor figures is 3,300.00: 3,400 is over it (and scores too low).
    assert_eq!(reasons(&e, "R6"), ["SCORE_TOO_LOW", "OVER_CREDIT_LINE"]);
    assert_eq!(e.borrowers.iter().find(|b| b.borrower_id == "B3").unwrap().credit_line.to_string(), "3300.00");
    // B4 holds 1,000,000.00: 0.01 more is over the line and over the total limit.
    assert_eq!(reasons(&e, "R9"), ["OVER_CREDIT_LINE", "OVER_TOTAL_LIMIT"]);
    assert_eq!(reasons(&e, "R11"), ["ORDER_ALREADY_FINANCED"]);
    assert_eq!(reasons(&e, "R12"), ["ORDER_AMOUNT_EXCEEDED"]);
    assert_eq!(e.portfolio.loans_disbursed, 3);
}

#[test]
fn invalid_amounts_are_refused_and_skip_the_checks_that_need_them() {
    let bad_amounts = ["100", "100.0", "100.000", "-5.00", "0.00", "abc", "1e2"];
    let mut input = vec![open("2026-01-01")];
    for (i, a) in bad_amounts.iter().enumerate() {
        input.push(credit(&format!("R{i}"), "B1", a, 30));
    }
    // A JSON number, and another currency.
    input.push(r#"{"type":"application","application_id":"RN","borrower_id":"B1","product":"CREDIT","amount":100.25,"term_days":30,"merchant":{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}}"#.to_string());
    input.push(r#"{"type":"application","application_id":"RC","borrower_id":"B1","product":"CREDIT","amount":"100.00","currency":"USD","term_days":30,"merchant":{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}}"#.to_string());
    // Invalid amount, and a term out of range: both named; no amount checks.
    input.push(credit("RT", "B1", "99999999.0", 400));
    // ORDER with a bad order amount: INVALID_AMOUNT, ORDER_AMOUNT_EXCEEDED skipped.
    input.push(order("RO", "B1", "100.00", 30, &[("O9", "50")]));
    let e = export(&input);
    for a in &e.applications {
        let expected: Vec<&str> = if a.application_id == "RT" { vec!["TERM_OUT_OF_RANGE", "INVALID_AMOUNT"] } else { vec!["INVALID_AMOUNT"] };
        assert_eq!(a.reasons, expected, "{}", a.application_id);
    }
    assert!(e.loans.is_empty());
}

#[test]
fn blacklisted_and_overdue_borrowers_are_refused() {
    // A1 for 1 day from 01-01: M = 01-02, overdue (DPD 1) after the close of 01-02.
    let e = export(&lines(&[
        &[open("2026-01-01"), credit("A1", "B1", "100.00", 1)],
        &closes("2026-01-01", 2),
        &[credit("R1", "B1", "100.00", 30), credit("A2", "B2", "100.00", 30), action("C1", "MARK_MALICIOUS", "B2"), credit("R2", "B2", "100.00", 30)],
    ]));
    assert_eq!(reasons(&e, "R1"), ["HAS_OVERDUE"]);
    assert_eq!(reasons(&e, "R2"), ["BLACKLISTED"]);
}

#[test]
fn an_order_finances_one_loan_ever() {
    let e = export(&[
        open("2026-01-01"),
        order("A1", "B1", "300.00", 30, &[("O1", "300.00")]),
        pay("P1", "A1", "300.00"),
        // Even after A1 is repaid, O1 cannot be financed again, by anyone.
        order("R1", "B1", "300.00", 30, &[("O1", "300.00")]),
        order("R2", "B2", "300.00", 30, &[("O2", "100.00"), ("O1", "200.00")]),
        // Named twice in one application.
        order("R3", "B3", "200.00", 30, &[("O3", "100.00"), ("O3", "100.00")]),
        // A rejected application does not use up its orders.
        order("A4", "B4", "100.00", 30, &[("O2", "100.00")]),
    ]);
    assert_eq!(reasons(&e, "R1"), ["ORDER_ALREADY_FINANCED"]);
    assert_eq!(reasons(&e, "R2"), ["ORDER_ALREADY_FINANCED"]);
    assert_eq!(reasons(&e, "R3"), ["ORDER_ALREADY_FINANCED"]);
    assert_eq!(reasons(&e, "A4"), Vec::<String>::new());
}

#[test]
fn borrower_is_blacklisted_automatically_at_dpd_91() {
    // 1 day from 01-01: M = 01-02. DPD 90 after the close of 01-02 + 89 = 04-01,
    // DPD 91 after the close of 04-02.
    let base = [open("2026-01-01"), credit("A1", "B1", "100.00", 1)];
    let dpd90 = export(&lines(&[&base, &closes("2026-01-01", 91)]));
    assert_eq!((loan(&dpd90, "A1").dpd, loan(&dpd90, "A1").bucket.as_str()), (90, "M3"));
    assert!(!dpd90.borrowers[0].blacklisted);
    let dpd91 = export(&lines(&[&base, &closes("2026-01-01", 92)]));
    assert_eq!((loan(&dpd91, "A1").dpd, loan(&dpd91, "A1").bucket.as_str()), (91, "NPL"));
    assert!(dpd91.borrowers[0].blacklisted && !dpd91.borrowers[0].malicious);
    assert_eq!(dpd91.portfolio.overdue_principal.npl.to_string(), "100.00");
    assert_eq!(dpd91.portfolio.npl_ratio, "1.0000");
    assert_eq!(dpd91.business_date.unwrap().to_string(), "2026-04-03");
}

#[test]
fn bucket_boundaries() {
    let base = [open("2026-01-01"), credit("A1", "B1", "100.00", 1)];
    // After k closes from 01-01 the DPD is k - 1.
    for (k, dpd, bucket) in [(31, 30, "M1"), (32, 31, "M2"), (61, 60, "M2"), (62, 61, "M3")] {
        let e = export(&lines(&[&base, &closes("2026-01-01", k)]));
        assert_eq!((loan(&e, "A1").dpd, loan(&e, "A1").bucket.as_str()), (dpd, bucket), "after {k} closes");
    }
}

#[test]
fn reinstatement_rules() {
    let base = lines(&[
        &[open("2026-01-01"), credit("A1", "B1", "100.00", 1), credit("A2", "B2", "100.00", 30)],
        &closes("2026-01-01", 92),
    ]);
    let e = export(&lines(&[
        &base,
        &[
            action("C1", "REINSTATE", "B1"), // A1 still overdue
            action("C2", "REINSTATE", "B2"), // never blacklisted
            action("C3", "REINSTATE", "NOBODY"),
            pay("P1", "A1", "500.00"),       // pays A1 off (the rest is overpayment)
            action("C4", "REINSTATE", "B1"), // now allowed: 信用恢复
            credit("A3", "B1", "100.00", 30),
            action("C5", "MARK_MALICIOUS", "B2"),
            action("C6", "REINSTATE", "B2"), // malicious: never
            action("C7", "MARK_MALICIOUS", "NOBODY"),
        ],
    ]));
    let got: Vec<(String, String, Option<String>)> =
        e.collections_actions.iter().map(|a| (a.action_id.clone(), a.status.clone(), a.reason.clone())).collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (s("C1"), s("REJECTED"), Some(s("STILL_OVERDUE"))),
            (s("C2"), s("REJECTED"), Some(s("NOT_BLACKLISTED"))),
            (s("C3"), s("REJECTED"), Some(s("UNKNOWN_BORROWER"))),
            (s("C4"), s("APPLIED"), None),
            (s("C5"), s("APPLIED"), None),
            (s("C6"), s("REJECTED"), Some(s("MALICIOUS"))),
            (s("C7"), s("REJECTED"), Some(s("UNKNOWN_BORROWER"))),
        ]
    );
    assert_eq!(reasons(&e, "A3"), Vec::<String>::new());
    let b2 = e.borrowers.iter().find(|b| b.borrower_id == "B2").unwrap();
    assert!(b2.blacklisted && b2.malicious);
}

#[test]
fn write_off_and_recovery() {
    // 1,000 for 1 day: interest 0.60 (close 01-01), penalty 0.90 x 2 (closes 01-02, 01-03).
    let e = export(&lines(&[
        &[open("2026-01-01"), credit("A1", "B1", "1000.00", 1), credit("A2", "B2", "1000.00", 30)],
        &closes("2026-01-01", 3),
        &[
            action("W1", "WRITE_OFF", "A2"), // not overdue
            action("W2", "WRITE_OFF", "NOPE"),
            action("W3", "WRITE_OFF", "A1"),
            action("W4", "WRITE_OFF", "A1"), // no longer ACTIVE
            pay("P1", "A1", "250.00"),
        ],
        &closes("2026-01-04", 2),
    ]));
    let reasons_of: Vec<Option<String>> = e.collections_actions.iter().map(|a| a.reason.clone()).collect();
    assert_eq!(reasons_of, [Some("NOT_OVERDUE".into()), Some("UNKNOWN_LOAN".into()), None, Some("NOT_OVERDUE".into())]);
    let l = loan(&e, "A1");
    // Stopped accruing at the write-off; DPD and bucket kept as they were (2, M1).
    assert_eq!((l.status.as_str(), l.penalty_accrued.to_string().as_str(), l.dpd, l.bucket.as_str()), ("WRITTEN_OFF", "1.80", 2, "M1"));
    assert_eq!(l.recovered.to_string(), "250.00");
    assert_eq!(l.principal_outstanding.to_string(), "1000.00");
    assert_eq!(payment(&e, "P1"), ("RECOVERY".into(), ["0.00"; 4].map(String::from), None));
    let p = &e.portfolio;
    assert_eq!((p.outstanding_principal.to_string(), p.active_loans), ("1000.00".into(), 1));
    assert_eq!(p.written_off_principal.to_string(), "1000.00");
    assert_eq!(p.overdue_principal.m1.to_string(), "0.00");
    // Income counts A1's charges too: A2 5 x 0.60 = 3.00, A1 0.60 interest + 1.80 penalty.
    assert_eq!((p.interest_income.to_string(), p.penalty_income.to_string()), ("3.60".into(), "1.80".into()));
    let b1 = e.borrowers.iter().find(|b| b.borrower_id == "B1").unwrap();
    assert_eq!(b1.outstanding_principal.to_string(), "0.00");
}

#[test]
fn actions_that_name_no_target_are_refused() {
    let e = export(&[
        open("2026-01-01"),
        credit("A1", "B1", "100.00", 30),
        r#"{"type":"collections_action","action_id":"C1","action":"REINSTATE"}"#.to_string(),
        r#"{"type":"collections_action","action_id":"C2","action":"MARK_MALICIOUS","loan_id":"A1"}"#.to_string(),
        r#"{"type":"collections_action","action_id":"C3","action":"WRITE_OFF","borrower_id":"B1"}"#.to_string(),
        r#"{"type":"collections_action","action_id":"C4","action":"WRITE_OFF","borrower_id":"NOBODY"}"#.to_string(),
    ]);
    let got: Vec<(String, Option<String>)> = e.collections_actions.iter().map(|a| (a.status.clone(), a.reason.clone())).collect();
    let refused = |r: &str| ("REJECTED".to_string(), Some(r.to_string()));
    assert_eq!(got, [refused("UNKNOWN_BORROWER"), refused("UNKNOWN_BORROWER"), refused("UNKNOWN_LOAN"), refused("UNKNOWN_BORROWER")]);
    assert!(!e.borrowers[0].malicious);
}

#[test]
fn repayment_refusals() {
    let e = export(&[
        open("2026-01-01"),
        credit("A1", "B1", "100.00", 30),
        pay("P1", "NOPE", "10.00"),
        pay("P2", "A1", "10"),
        pay("P3", "A1", "-10.00"),
        pay("P4", "A1", "0.00"),
        r#"{"type":"repayment","payment_id":"P5","loan_id":"A1","amount":10.5}"#.to_string(),
        r#"{"type":"repayment","payment_id":"P6","loan_id":"A1","amount":"10.00","currency":"USD"}"#.to_string(),
        pay("P7", "NOPE", "abc"),
    ]);
    let zero = ["0.00"; 4].map(String::from);
    assert_eq!(payment(&e, "P1"), ("REJECTED".into(), zero.clone(), Some("UNKNOWN_LOAN".into())));
    for id in ["P2", "P3", "P4", "P5", "P6"] {
        assert_eq!(payment(&e, id), ("REJECTED".into(), zero.clone(), Some("INVALID_AMOUNT".into())), "{id}");
    }
    // Unknown loan is checked first.
    assert_eq!(payment(&e, "P7").2, Some("UNKNOWN_LOAN".into()));
    assert_eq!(loan(&e, "A1").principal_outstanding.to_string(), "100.00");
}

#[test]
fn duplicate_ids_of_every_kind_change_nothing() {
    let e = export(&[
        open("2026-01-01"),
        credit("A1", "B1", "100.00", 30),
        credit("A1", "B9", "999.00", 10),
        pay("P1", "A1", "10.00"),
        pay("P1", "A1", "20.00"),
        pay("PX", "NOPE", "1.00"),
        pay("PX", "A1", "1.00"),
        action("C1", "MARK_MALICIOUS", "NOBODY"),
        action("C1", "MARK_MALICIOUS", "B1"),
    ]);
    assert_eq!(e.applications.len(), 1);
    assert_eq!(e.borrowers.len(), 1);
    assert_eq!(loan(&e, "A1").principal_outstanding.to_string(), "90.00");
    assert_eq!(e.payments.len(), 2);
    assert_eq!(payment(&e, "PX").2, Some("UNKNOWN_LOAN".into()));
    assert_eq!(e.collections_actions.len(), 1);
    assert!(!e.borrowers[0].malicious);
}

#[test]
fn invalid_lines_stop_the_run_with_their_line_number() {
    let cases: Vec<(Vec<String>, usize, &str)> = vec![
        (vec![open("2026-01-01"), close("2026-01-02")], 2, "open business date is 2026-01-01"),
        (vec![open("2026-01-01"), "{not json".into()], 2, "not valid JSON"),
        (vec![open("2026-01-01"), r#"{"type":"loan"}"#.into()], 2, "unknown type"),
        (vec![credit("A1", "B1", "1.00", 3)], 1, "not open"),
        (vec![open("2026-01-01"), open("2026-01-02")], 2, "already open"),
        (vec![open("2026-01-01"), close("2026-01-01"), close("2026-01-01")], 3, "2026-01-02"),
        (vec![open("2026-13-01")], 1, "YYYY-MM-DD"),
        (vec![open("2026-01-01"), r#"{"type":"application","application_id":"A1","borrower_id":"B1","product":"CREDIT","amount":"1.00","term_days":3,"merchant":{"kind":"PLATFORM","annual_sales":"1.00"}}"#.into()], 2, "sales_growth"),
    ];
    for (input, line, needle) in cases {
        let err = try_run(&input).expect_err("must stop");
        assert_eq!(err.line, line, "{err}");
        assert!(err.to_string().contains(needle), "{err} should mention {needle}");
    }
}

/// A payment or write-off decided in another book than its loan's (it raced its loan
/// to the intake: routed by the loan id before the loan was on the log) is UNKNOWN_LOAN
/// there, a fact its own book applies; in the loan's book the same payment is taken.
/// Deciding it with the loan of another book would append a fact its book cannot
/// apply, and the book's writer would stop.
#[test]
fn a_payment_decided_in_another_book_than_its_loans_is_unknown_loan_there() {
    use ledger_core::handler::InputKind;
    use ledger_core::{Date, Decision, Fact, Ledger, Outcome, Reason};
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let date = Date::parse("2026-01-01").unwrap();
    for book in 0..2 {
        assert_eq!(ledger.apply(book, &Fact::Opened { date }, &mut Discard), Outcome::Applied);
    }
    let input = |line: &str| ledger_core::scenario::parse_line(line).unwrap().unwrap();
    let decide = |ledger: &Ledger, kind, book, line: &str| match ledger_sim::decider(kind).decide(ledger, book, &input(line)).unwrap() {
        Decision::Fact(fact) => fact,
        other => panic!("not a fact: {other:?}"),
    };
    let loan = decide(&ledger, InputKind::Application, 1, &credit("L1", "B1", "1000.00", 30));
    assert_eq!(ledger.apply(1, &loan, &mut Discard), Outcome::Applied);

    let early = decide(&ledger, InputKind::Repayment, 0, &pay("P1", "L1", "10.00"));
    assert!(matches!(early, Fact::RepaymentRefused { reason: Reason::UnknownLoan, borrower_id: None, .. }), "{early:?}");
    assert_eq!(ledger.apply(0, &early, &mut Discard), Outcome::Applied);
    let write_off = decide(&ledger, InputKind::Collections, 0, &action("W1", "WRITE_OFF", "L1"));
    assert!(matches!(write_off, Fact::ActionRefused { reason: Reason::UnknownLoan, .. }), "{write_off:?}");
    assert_eq!(ledger.apply(0, &write_off, &mut Discard), Outcome::Applied);

    let on_time = decide(&ledger, InputKind::Repayment, 1, &pay("P2", "L1", "10.00"));
    assert!(matches!(on_time, Fact::RepaymentAccepted { .. }), "{on_time:?}");
    assert_eq!(ledger.apply(1, &on_time, &mut Discard), Outcome::Applied);
}
