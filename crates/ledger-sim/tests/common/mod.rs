//! Scenario lines (SPEC section 10) and export look-ups shared by the example tests.

#![allow(dead_code)] // Each test binary uses its own subset.

use ledger_core::export::{Export, LoanView};

pub fn open(date: &str) -> String {
    format!(r#"{{"type":"open","date":"{date}"}}"#)
}

pub fn close(date: &str) -> String {
    format!(r#"{{"type":"close_day","date":"{date}"}}"#)
}

/// Closes `n` days starting at `from` (YYYY-MM-DD).
pub fn closes(from: &str, n: i64) -> Vec<String> {
    let start = ledger_core::Date::parse(from).unwrap();
    (0..n).map(|i| close(&start.add_days(i).to_string())).collect()
}

/// A CREDIT application with the merchant figures given as a JSON object.
pub fn credit_with(id: &str, borrower: &str, amount: &str, term: i64, merchant: &str) -> String {
    format!(
        r#"{{"type":"application","application_id":"{id}","borrower_id":"{borrower}","product":"CREDIT","amount":"{amount}","term_days":{term},"merchant":{merchant}}}"#
    )
}

pub fn pay(id: &str, loan: &str, amount: &str) -> String {
    format!(r#"{{"type":"repayment","payment_id":"{id}","loan_id":"{loan}","amount":"{amount}"}}"#)
}

pub fn lines(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

pub fn loan<'a>(e: &'a Export, id: &str) -> &'a LoanView {
    e.loans.iter().find(|l| l.loan_id == id).unwrap_or_else(|| panic!("no loan {id}"))
}

pub fn reasons(e: &Export, application: &str) -> Vec<String> {
    e.applications.iter().find(|a| a.application_id == application).unwrap().reasons.clone()
}
