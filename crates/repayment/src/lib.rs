//! Repayment: reads payments.repayments, decides each payment (UNKNOWN_LOAN,
//! INVALID_AMOUNT, or accepted) into a fact, and publishes on loan.receipts how the fold
//! applied each payment (penalty, interest, principal, overpayment, or a recovery), why
//! it was refused, or that it was a duplicate.

use ledger_core::handler::{loan_book_key, Handler, InputKind, LoanDirectory, Notice};
use ledger_core::{Derived, Input};

pub struct Repayment;

impl Handler for Repayment {
    fn name(&self) -> &'static str {
        "repayment"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Repayment)
    }

    /// Payments are keyed by loan id (the payment system knows no borrower): they
    /// are routed to the book of the loan's borrower through the loan index.
    fn book_key(&self, input: &Input, loans: &dyn LoanDirectory) -> String {
        match input {
            Input::Repayment(r) => loan_book_key(&r.loan_id, loans),
            _ => String::new(),
        }
    }

    fn routes_by_loan(&self) -> bool {
        true
    }

    fn publishes(&self) -> bool {
        true
    }

    fn on_duplicate(&self, input: &Input) -> Option<Notice> {
        match input {
            Input::Repayment(r) => Some(Notice::DuplicatePayment { payment_id: r.payment_id.clone(), loan_id: r.loan_id.clone() }),
            _ => None,
        }
    }

    fn on_derived(&self, event: &Derived) -> Option<Notice> {
        match event {
            Derived::Receipt(record) => Some(Notice::Receipt(record.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::input::{RawAmount, Repayment as Payment};

    #[test]
    fn answers_duplicates_and_publishes_receipts_only() {
        let input = Input::Repayment(Payment { payment_id: "P1".into(), loan_id: "L1".into(), amount: RawAmount::cny("1.00") });
        assert!(matches!(Repayment.on_duplicate(&input), Some(Notice::DuplicatePayment { .. })));
        assert!(Repayment.on_derived(&Derived::AutoBlacklisted { borrower_id: "B".into(), loan_id: "L".into(), dpd: 91, date: ledger_core::Date::from_day_number(0) }).is_none());
    }
}
