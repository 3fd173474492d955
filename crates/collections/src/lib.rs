//! Collections: publishes on loan.overdue what the collections team works from
//! (LoanOverdue, bucket changes, LoanCured, automatic blacklisting at DPD 91, each with
//! the amounts owed), and decides the team's actions from collections.actions
//! (MARK_MALICIOUS, REINSTATE, WRITE_OFF) into facts.

mod action;

use ledger_core::handler::{loan_book_key, Handler, InputKind, LoanDirectory, Notice};
use ledger_core::{Decision, Derived, Fingerprint, Input, InputError, Ledger};

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

    fn decide(&self, view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
        let Input::Collections(c) = input else { return Err(InputError::NotDecided(self.name())) };
        view.open_in(book).ok_or(InputError::NotOpen)?;
        Ok(action::decide(view, book, c, Fingerprint::of(input)))
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
