//! Collections: publishes on loan.overdue what the collections team works from
//! (LoanOverdue, bucket changes, LoanCured, automatic blacklisting at DPD 91, each with
//! the amounts owed), and decides the team's actions from collections.actions
//! (MARK_MALICIOUS, REINSTATE, WRITE_OFF) into facts.

use ledger_core::handler::{Handler, InputKind, Notice};
use ledger_core::Derived;

pub struct Collections;

impl Handler for Collections {
    fn name(&self) -> &'static str {
        "collections"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Collections)
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
