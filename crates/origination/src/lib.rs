//! Origination: its intake routes loan.applications to the borrowers' books, and the
//! book writer calls it to decide each application against the book (score, blacklist,
//! overdue, limits, orders financed) into an ApplicationDecided fact, which disburses an
//! approved loan at once. The scoring (both tables and the credit line, exact fractions)
//! is origination's too; monitoring rescores merchant updates with [`scoring::score_of`].

mod application;
pub mod scoring;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Decision, Fingerprint, Input, InputError, Ledger};

pub struct Origination;

impl Handler for Origination {
    fn name(&self) -> &'static str {
        "origination"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Application)
    }

    fn decide(&self, view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
        let Input::Application(a) = input else { return Err(InputError::NotDecided(self.name())) };
        let today = view.open_in(book).ok_or(InputError::NotOpen)?;
        application::decide(view, a, Fingerprint::of(input), today)
    }
}
