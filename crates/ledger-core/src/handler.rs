//! What a service does, without any I/O: the handler of one service (origination,
//! repayment, accrual, collections, monitoring) says which input it decides and which notices it
//! publishes. The runtime crate drives any handler: it consumes, decodes, folds
//! loan.events into the view, calls the handler, produces the outputs and stores its
//! offsets with its state.

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

/// One service's behaviour.
pub trait Handler: Send + Sync + 'static {
    /// The service's name; also its consumer group's suffix and its store's name.
    fn name(&self) -> &'static str;

    /// The input it decides into facts, if any.
    fn decides(&self) -> Option<InputKind> {
        None
    }

    /// Decides one input against the view (the fold of loan.events so far).
    fn decide(&self, view: &Ledger, input: &Input) -> Result<Decision, InputError> {
        view.decide(input)
    }

    /// What it answers when an input's id was seen before (the decision was
    /// [`Decision::Seen`]): `seen` says whether it is a re-sent copy of the first input
    /// with that id (DUPLICATE) or other content under the same id (ID_CONFLICT).
    fn on_duplicate(&self, _input: &Input, _seen: Seen) -> Option<Notice> {
        None
    }

    /// What it publishes for one event the fold derived.
    fn on_derived(&self, _event: &Derived) -> Option<Notice> {
        None
    }
}
