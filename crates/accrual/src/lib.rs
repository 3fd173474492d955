//! Accrual: follows loan.events and, at each day close, publishes every active loan's
//! interest and penalty posting for the day on loan.accruals (the change of the rounded
//! totals, which can be 0.00; the fold accumulates exactly and rounds once). It decides
//! no input: the postings are derived by the fold at the close, where every reader
//! computes the same cents, and this service publishes them.

use ledger_core::handler::{Handler, Notice};
use ledger_core::Derived;

pub struct Accrual;

impl Handler for Accrual {
    fn name(&self) -> &'static str {
        "accrual"
    }

    fn publishes(&self) -> bool {
        true
    }

    fn on_derived(&self, event: &Derived) -> Option<Notice> {
        match event {
            Derived::Accrual(a) => Some(Notice::Accrual(a.clone())),
            _ => None,
        }
    }
}
