//! What a service does, without any I/O: the handler of one service (origination,
//! repayment, accrual, collections, monitoring) says which input it decides and how
//! (its `decide`, implemented in its own crate), which book an input belongs to, and
//! which notices it publishes. The runtime crate drives any handler: its intake routes
//! the service's input topic to the books, the book writer calls the handler's `decide`
//! against the book, and its publisher folds loan.events and produces the notices.
//! In process (`loanctl simulate`, the tests), [`decide_with`] routes each input to the
//! one of a composition's handlers that decides its kind.

use crate::fact::Fact;
use crate::input::Input;
use crate::ledger::{Decision, InputError, Ledger, Seen};
use crate::state::{Accrual, Derived, LoanRecalled, OverdueNotice, PaymentRecord, RiskWarning};
use crate::Date;

/// The input topics a service can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputKind {
    /// loan.applications
    Application,
    /// payments.repayments
    Repayment,
    /// collections.actions
    Collections,
    /// merchant.updates
    MerchantUpdate,
}

impl InputKind {
    /// The kind of a service's input; `None` for open and close_day, which the ledger
    /// decides itself ([`Ledger::decide_control`]).
    pub fn of(input: &Input) -> Option<InputKind> {
        match input {
            Input::Application(_) => Some(InputKind::Application),
            Input::Repayment(_) => Some(InputKind::Repayment),
            Input::Collections(_) => Some(InputKind::Collections),
            Input::MerchantUpdate(_) => Some(InputKind::MerchantUpdate),
            Input::Open { .. } | Input::CloseDay { .. } => None,
        }
    }

    pub fn accepts(self, input: &Input) -> bool {
        matches!(
            (self, input),
            (InputKind::Application, Input::Application(_))
                | (InputKind::Repayment, Input::Repayment(_))
                | (InputKind::Collections, Input::Collections(_))
                | (InputKind::MerchantUpdate, Input::MerchantUpdate(_))
        )
    }
}

/// Something a service publishes on an output topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// loan.accruals
    Accrual(Accrual),
    /// loan.overdue
    Overdue(OverdueNotice),
    /// loan.overdue
    Blacklisted { borrower_id: String, loan_id: String, dpd: u32, date: Date },
    /// loan.overdue: RISK_WARNING.
    RiskWarning(RiskWarning),
    /// loan.overdue: LOAN_RECALLED.
    LoanRecalled(LoanRecalled),
    /// loan.receipts: how a payment was applied, or why it was refused.
    Receipt(PaymentRecord),
    /// loan.receipts: a payment id seen before with the same content; nothing changed.
    /// (One seen with other content is answered with a REJECTED [`Notice::Receipt`],
    /// reason ID_CONFLICT.)
    DuplicatePayment { payment_id: String, loan_id: String },
}

/// Which borrower a loan belongs to, as far as loan.events says so far: the loan
/// index an intake routes payments and write-offs by.
pub trait LoanDirectory {
    fn borrower_of(&self, loan_id: &str) -> Option<&str>;
}

/// A directory that knows no loan.
pub struct NoLoans;

impl LoanDirectory for NoLoans {
    fn borrower_of(&self, _loan_id: &str) -> Option<&str> {
        None
    }
}

/// The book key of an input named by a loan: the loan's borrower; the loan id itself
/// when no loan has it (the refusal is then decided in, and kept by, that id's book,
/// as the fact's own partition key says).
pub fn loan_book_key(loan_id: &str, loans: &dyn LoanDirectory) -> String {
    loans.borrower_of(loan_id).unwrap_or(loan_id).to_string()
}

/// One service's behaviour.
pub trait Handler: Send + Sync + 'static {
    /// The service's name; also its consumer group's suffix and its store's name.
    fn name(&self) -> &'static str;

    /// The input it decides into facts, if any.
    fn decides(&self) -> Option<InputKind> {
        None
    }

    /// The key of the book (a partition of loan.events) that decides `input`: its
    /// borrower id. Services whose inputs name a loan instead override this (and
    /// [`Handler::routes_by_loan`]).
    fn book_key(&self, input: &Input, _loans: &dyn LoanDirectory) -> String {
        match input {
            Input::Application(a) => a.borrower_id.clone(),
            Input::MerchantUpdate(u) => u.borrower_id.clone(),
            Input::Collections(c) => c.borrower_id.clone().or_else(|| c.loan_id.clone()).unwrap_or_else(|| c.action_id.clone()),
            Input::Repayment(r) => r.loan_id.clone(),
            Input::Open { date } | Input::CloseDay { date } => date.to_string(),
        }
    }

    /// Whether [`Handler::book_key`] needs the loan index.
    fn routes_by_loan(&self) -> bool {
        false
    }

    /// Whether the service publishes notices derived from loan.events (its
    /// [`Handler::on_derived`] answers some events).
    fn publishes(&self) -> bool {
        false
    }

    /// Decides one input of book `book` against the view: that book exactly as it
    /// stands, on the date open in it ([`Ledger::open_in`]), and the other books for the
    /// ledger-wide questions. Every service that [`Handler::decides`] an input kind
    /// implements it in its own crate; the default refuses
    /// ([`InputError::NotDecided`]), as does a service asked an input of another kind.
    fn decide(&self, _view: &Ledger, _book: u32, _input: &Input) -> Result<Decision, InputError> {
        Err(InputError::NotDecided(self.name()))
    }

    /// The fact that records the answer to an input whose id was seen before (the
    /// decision was [`Decision::Seen`]), for an input kind that has an answer: `seen`
    /// says whether it is a re-sent copy of the first input with that id (DUPLICATE) or
    /// other content under the same id (ID_CONFLICT). The fact changes no state; the
    /// answer is derived from it at its place in the book, like every other notice.
    /// `None` (the default): nothing is recorded and nothing answered.
    fn answer_seen(&self, _input: &Input, _seen: Seen) -> Option<Fact> {
        None
    }

    /// What it publishes for one event the fold derived.
    fn on_derived(&self, _event: &Derived) -> Option<Notice> {
        None
    }
}

/// Decides one input of book `book` in process: open and close_day by the ledger itself,
/// every other input by the one of `deciders` that decides its kind (as the book writer
/// finds it), [`InputError::NoDecider`] when none does.
pub fn decide_with(deciders: &[&dyn Handler], view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
    let Some(kind) = InputKind::of(input) else { return view.decide_control(book, input) };
    match deciders.iter().find(|d| d.decides() == Some(kind)) {
        Some(decider) => decider.decide(view, book, input),
        None => Err(InputError::NoDecider(kind)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::input::{RawAmount, Repayment};
    use crate::{Date, ProductConfig};

    /// A service that publishes and decides nothing (as accrual).
    struct Publisher;

    impl Handler for Publisher {
        fn name(&self) -> &'static str {
            "publisher"
        }
    }

    #[test]
    fn inputs_go_to_the_decider_of_their_kind_and_control_to_the_ledger() {
        let view = Ledger::new(Arc::new(ProductConfig::default()));
        let date = Date::from_day_number(0);
        let payment = Input::Repayment(Repayment { payment_id: "P1".into(), loan_id: "L1".into(), amount: RawAmount::cny("1.00") });
        assert_eq!(InputKind::of(&payment), Some(InputKind::Repayment));
        assert_eq!(InputKind::of(&Input::Open { date }), None);
        assert_eq!(decide_with(&[&Publisher], &view, 0, &payment), Err(InputError::NoDecider(InputKind::Repayment)));
        assert_eq!(Publisher.decide(&view, 0, &payment), Err(InputError::NotDecided("publisher")));
        assert_eq!(view.decide_control(0, &payment), Err(InputError::NotDecided("the ledger")));
        assert_eq!(decide_with(&[], &view, 0, &Input::Open { date }), Ok(Decision::Fact(Fact::Opened { date })));
        assert_eq!(decide_with(&[], &view, 0, &Input::CloseDay { date }), Err(InputError::NotOpen));
    }
}
