//! Facts: what the ledger has decided, in the order it happened. loan.events is a log of
//! these; [`crate::Ledger::apply`] folds them into state and cannot fail. Every accepted
//! or refused input becomes exactly one fact, so one input is one idempotency key.
//!
//! Every fact that decided a keyed input (an application, a repayment, a collections
//! action, a merchant update) carries the [`Fingerprint`] of that input, so that a later
//! input with the same id can be told apart as a DUPLICATE (the same content) or an
//! ID_CONFLICT (other content) by any reader of the log (SPEC section 9). It is `None`
//! only in facts written before fingerprints were kept: a re-used id of such a fact is
//! answered as a DUPLICATE, as it was then.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::fingerprint::Fingerprint;
use crate::model::{ActionKind, Product, Reason};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// The first business date is open. Appended once to every partition.
    Opened { date: Date },
    /// An application was approved (and disbursed at once) or rejected.
    ApplicationDecided(ApplicationDecided),
    /// A repayment was accepted for a loan; the fold allocates it (penalty, interest,
    /// principal, overpayment) or records it as a recovery on a written-off loan.
    RepaymentAccepted {
        payment_id: String,
        loan_id: String,
        borrower_id: String,
        amount: Money,
        fingerprint: Option<Fingerprint>,
    },
    /// A repayment was refused (UNKNOWN_LOAN or INVALID_AMOUNT).
    /// `borrower_id` is set when the loan is known (the refusal then sits on the
    /// borrower's partition).
    RepaymentRefused {
        payment_id: String,
        loan_id: String,
        borrower_id: Option<String>,
        amount_text: String,
        reason: Reason,
        fingerprint: Option<Fingerprint>,
    },
    /// The business date `date` closed: interest, penalty, DPD, buckets and automatic
    /// blacklisting are computed for every loan of the partition. Appended to every
    /// partition; idempotent by date.
    DayClosed { date: Date },
    /// A collections action took effect.
    ActionApplied { action_id: String, effect: ActionEffect, fingerprint: Option<Fingerprint> },
    /// A collections action did not apply, for the first reason that held.
    /// `target_id` is the borrower or loan the action named; `borrower_id` is set when
    /// the borrower is known.
    ActionRefused {
        action_id: String,
        action: ActionKind,
        target_id: String,
        borrower_id: Option<String>,
        reason: Reason,
        fingerprint: Option<Fingerprint>,
    },
    /// A merchant update was accepted (SPEC section 12): the borrower's score and credit
    /// line become these. The fold derives the warning and the recall at the fact's
    /// position (as it derives automatic blacklisting at a close), so every reader
    /// recalls the same loans to the same date.
    MerchantUpdateApplied(UpdateApplied),
    /// A merchant update was refused (UNKNOWN_BORROWER): nothing else changes.
    MerchantUpdateRefused { update_id: String, borrower_id: String, reason: Reason, fingerprint: Option<Fingerprint> },
    /// A repayment whose payment id was seen before (SPEC sections 5 and 9): it changes
    /// nothing, but its answer on loan.receipts (DUPLICATE, or REJECTED with
    /// ID_CONFLICT) is derived here, at its place among the book's facts, so that it
    /// follows the first payment's receipt. `loan_id` is the loan this message named.
    PaymentSeen { payment_id: String, loan_id: String, seen: crate::ledger::Seen },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateApplied {
    pub update_id: String,
    pub borrower_id: String,
    /// The score of the update's figures, stored as scores are (see [`crate::scoring`]).
    pub score: Decimal,
    /// The borrower's credit line recomputed from the update's figures.
    pub credit_line: Money,
    /// The fingerprint of the merchant update decided.
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionEffect {
    MarkedMalicious { borrower_id: String },
    Reinstated { borrower_id: String },
    WrittenOff { loan_id: String, borrower_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationDecided {
    pub application_id: String,
    pub borrower_id: String,
    pub product: Product,
    /// The requested amount; `None` when it was not a valid amount.
    pub amount: Option<Money>,
    pub term_days: i64,
    /// The score at full precision (28 significant digits); shown rounded to 0.01.
    pub score: Decimal,
    /// The borrower's credit line recomputed from this application's figures.
    pub credit_line: Money,
    /// Empty when approved.
    pub reasons: Vec<Reason>,
    /// Present exactly when approved: the loan disbursed at once.
    pub disbursement: Option<Disbursement>,
    /// The fingerprint of the application decided.
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disbursement {
    pub loan_id: String,
    pub principal: Money,
    pub disbursed_on: Date,
    pub maturity_date: Date,
    pub order_ids: Vec<String>,
    /// The loan's own daily rate for life (a rewarded borrower's is discounted). `None`
    /// only in facts written before rates were kept per loan: the product's rate then.
    pub daily_rate: Option<Decimal>,
}

impl Fact {
    /// The idempotency key: facts with the same key are the same fact.
    pub fn key(&self) -> String {
        match self {
            Fact::Opened { date } => format!("open:{date}"),
            Fact::ApplicationDecided(a) => format!("application:{}", a.application_id),
            Fact::RepaymentAccepted { payment_id, .. } | Fact::RepaymentRefused { payment_id, .. } => {
                format!("payment:{payment_id}")
            }
            Fact::DayClosed { date } => format!("close:{date}"),
            Fact::ActionApplied { action_id, .. } | Fact::ActionRefused { action_id, .. } => {
                format!("action:{action_id}")
            }
            Fact::MerchantUpdateApplied(u) => format!("update:{}", u.update_id),
            Fact::MerchantUpdateRefused { update_id, .. } => format!("update:{update_id}"),
            // Not an idempotency key of its own: each re-sent payment is one such fact.
            Fact::PaymentSeen { payment_id, .. } => format!("seen:payment:{payment_id}"),
        }
    }

    /// The fingerprint of the input this fact decided; `None` for Opened and DayClosed
    /// (which decide no keyed input) and for facts written before fingerprints.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        match self {
            Fact::Opened { .. } | Fact::DayClosed { .. } | Fact::PaymentSeen { .. } => None,
            Fact::ApplicationDecided(a) => a.fingerprint,
            Fact::MerchantUpdateApplied(u) => u.fingerprint,
            Fact::RepaymentAccepted { fingerprint, .. }
            | Fact::RepaymentRefused { fingerprint, .. }
            | Fact::ActionApplied { fingerprint, .. }
            | Fact::ActionRefused { fingerprint, .. }
            | Fact::MerchantUpdateRefused { fingerprint, .. } => *fingerprint,
        }
    }

    /// The id loan.events is keyed (partitioned) by: the borrower when it is known, else
    /// the loan or action id. `None` for facts that go to every partition.
    pub fn partition_key(&self) -> Option<&str> {
        match self {
            Fact::Opened { .. } | Fact::DayClosed { .. } => None,
            Fact::ApplicationDecided(a) => Some(&a.borrower_id),
            Fact::RepaymentAccepted { borrower_id, .. } => Some(borrower_id),
            Fact::RepaymentRefused { loan_id, borrower_id, .. } => Some(borrower_id.as_deref().unwrap_or(loan_id)),
            Fact::ActionApplied { effect, .. } => Some(match effect {
                ActionEffect::MarkedMalicious { borrower_id }
                | ActionEffect::Reinstated { borrower_id }
                | ActionEffect::WrittenOff { borrower_id, .. } => borrower_id,
            }),
            Fact::ActionRefused { target_id, borrower_id, .. } => Some(borrower_id.as_deref().unwrap_or(target_id)),
            Fact::MerchantUpdateApplied(u) => Some(&u.borrower_id),
            Fact::MerchantUpdateRefused { borrower_id, .. } => Some(borrower_id),
            Fact::PaymentSeen { loan_id, .. } => Some(loan_id),
        }
    }
}
