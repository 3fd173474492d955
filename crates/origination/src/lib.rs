//! Origination: its intake routes loan.applications to the borrowers' books, and the
//! book writer calls it to decide each application against the book (score, blacklist,
//! overdue, limits, orders financed) into an ApplicationDecided fact, which disburses an
//! approved loan at once.

use ledger_core::handler::{Handler, InputKind};

pub struct Origination;

impl Handler for Origination {
    fn name(&self) -> &'static str {
        "origination"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Application)
    }
}
