//! Inputs: what the outside world asks of the ledger (SPEC section 10). An input is
//! *decided* against the current state (by its service's `Handler::decide`, open and
//! close_day by [`crate::Ledger::decide_control`]), which turns it into one fact (or
//! recognises it as a duplicate); inputs are never applied directly.
//!
//! Amounts stay as the text that arrived: whether they are valid is part of the
//! decision (a bad amount is refused with INVALID_AMOUNT, not dropped).

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::fingerprint::Fingerprint;
use crate::model::{ActionKind, Product};
use crate::scoring::Merchant;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Sets the first open business date, once.
    Open { date: Date },
    Application(Application),
    Repayment(Repayment),
    /// Closes the open business date (must name it).
    CloseDay { date: Date },
    Collections(CollectionsAction),
    /// The platform's report of a borrower's operating figures (SPEC section 12).
    MerchantUpdate(MerchantUpdate),
}

/// An amount as it arrived: its text and the currency it names (empty = CNY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawAmount {
    pub text: String,
    pub currency: String,
}

impl RawAmount {
    pub fn cny(text: &str) -> RawAmount {
        RawAmount { text: text.to_string(), currency: String::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub application_id: String,
    pub borrower_id: String,
    pub product: Product,
    pub amount: RawAmount,
    pub term_days: i64,
    /// The orders an ORDER loan finances (ignored for CREDIT).
    pub orders: Vec<OrderRef>,
    pub merchant: Merchant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    pub order_id: String,
    pub amount: RawAmount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repayment {
    pub payment_id: String,
    pub loan_id: String,
    pub amount: RawAmount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionsAction {
    pub action_id: String,
    pub action: ActionKind,
    /// Names the borrower for MARK_MALICIOUS and REINSTATE (an action without it is
    /// refused as UNKNOWN_BORROWER).
    pub borrower_id: Option<String>,
    /// Names the loan for WRITE_OFF (an action without it is refused as UNKNOWN_LOAN).
    pub loan_id: Option<String>,
}

/// A borrower's latest operating figures, in the form of an application's `merchant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantUpdate {
    pub update_id: String,
    pub borrower_id: String,
    pub merchant: Merchant,
}

impl Input {
    /// The fingerprint of its content (see [`crate::fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }

    /// The ids SPEC section 9 makes unique across the whole ledger that this input
    /// claims, each prefixed by its kind ("application:", "order:", "payment:",
    /// "action:", "update:"): its idempotency key and, for an application, the order
    /// ids it would finance. Two inputs that share one of these must be decided one
    /// after the other even when they belong to two books (the runtime's id sequencer
    /// sees to it).
    pub fn unique_ids(&self) -> Vec<String> {
        match self {
            Input::Open { .. } | Input::CloseDay { .. } => Vec::new(),
            Input::Application(a) => {
                let mut ids = vec![self.key()];
                if a.product == Product::Order {
                    ids.extend(a.orders.iter().map(|o| format!("order:{}", o.order_id)));
                }
                ids
            }
            Input::Repayment(_) | Input::Collections(_) | Input::MerchantUpdate(_) => vec![self.key()],
        }
    }

    /// The idempotency key of the input, if it has one of its own.
    pub fn key(&self) -> String {
        match self {
            Input::Open { date } => format!("open:{date}"),
            Input::Application(a) => format!("application:{}", a.application_id),
            Input::Repayment(r) => format!("payment:{}", r.payment_id),
            Input::CloseDay { date } => format!("close:{date}"),
            Input::Collections(c) => format!("action:{}", c.action_id),
            Input::MerchantUpdate(u) => format!("update:{}", u.update_id),
        }
    }
}
