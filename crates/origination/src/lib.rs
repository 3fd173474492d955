//! Origination: reads loan.applications and decides each application against the view
//! of loan.events (score, blacklist, overdue, limits, orders financed) into an
//! ApplicationDecided fact, which disburses an approved loan at once.

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
