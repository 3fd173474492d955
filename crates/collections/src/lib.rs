//! Collections: publishes on loan.overdue what the collections team works from
//! (LoanOverdue, bucket changes, LoanCured, automatic blacklisting at DPD 91, each with
//! the amounts owed), and decides the team's actions from collections.actions
//! (MARK_MALICIOUS, REINSTATE, WRITE_OFF) into facts.

use ledger_core::handler::{loan_book_key, Handler, InputKind, LoanDirectory, Notice};
use ledger_core::{Derived, Input};

pub struct Collections;

impl Handler for Collections {
    fn name(&self) -> &'static str {
        "collections"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Collections)
    }

    /// An action names a borrower (blacklisting, reinstating) or a loan (a write-off,
    /// routed to the loan's borrower through the loan index).
    fn book_key(&self, input: &Input, loans: &dyn LoanDirectory) -> String {
        match input {
            Input::Collections(c) => match (&c.borrower_id, &c.loan_id) {
                (Some(borrower), _) => borrower.clone(),
                (None, Some(loan)) => loan_book_key(loan, loans),
                (None, None) => c.action_id.clone(),
            },
            _ => String::new(),
        }
    }

    fn routes_by_loan(&self) -> bool {
        true
    }

    fn publishes(&self) -> bool {
        true
    }

    fn on_derived(&self, event: &Derived) -> Option<Notice> {
        match event {
            Derived::Overdue(n) => Some(Notice::Overdue(n.clone())),
            Derived::AutoBlacklisted { borrower_id, loan_id, dpd, date } => Some(Notice::Blacklisted {
                borrower_id: borrower_id.clone(),
                loan_id: loan_id.clone(),
                dpd: *dpd,
                date: *date,
            }),
            _ => None,
        }
    }
}
