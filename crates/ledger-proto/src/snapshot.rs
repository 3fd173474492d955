//! A book's snapshot (proto/loan/v1/snapshots.proto): its whole state, with the offset
//! of loan.events it reflects and which inputs it has decided. Written from a book,
//! read back into an equal book; a snapshot this build cannot use (another format,
//! fold version or configuration) is [`SnapshotError::Unusable`], one that does not
//! read is [`SnapshotError::Proto`] or [`SnapshotError::Parts`]: either way the reader
//! folds the log instead.

use ledger_core::state::{
    ActionRecord, ApplicationRecord, Book, BookParts, Borrower, Loan, PaymentRecord, PaymentStatus,
    Recorded, UpdateRecord, FOLD_VERSION,
};
use ledger_core::{Fingerprint, LoanStatus, ProductConfig, Reason};

use crate::field::{
    bucket_from, bucket_to, date, decimal, money, product_from, product_to, reason_from,
    reason_list_from, reason_to,
};
use crate::{pb, ProtoError};

/// The encoding's version (`BookSnapshot.format`).
pub const SNAPSHOT_FORMAT: u32 = 1;

/// What a snapshot says besides the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub book: u32,
    /// The offset of loan.events the state reflects: every fact before it is folded
    /// in, none at or after it.
    pub next_offset: i64,
    /// Per input topic and partition, the highest offset that became a fact of the book.
    pub decided: Vec<(String, i32, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot cannot be used here: {0}")]
    Unusable(String),
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error(transparent)]
    Parts(#[from] ledger_core::state::PartsError),
}

/// The encoding of `book`'s snapshot.
pub fn encode_snapshot(book: &Book, meta: &SnapshotMeta, config: &ProductConfig) -> Vec<u8> {
    let mut borrowers: Vec<&Borrower> = book.borrowers().values().collect();
    borrowers.sort_by(|a, b| a.borrower_id.cmp(&b.borrower_id));
    let snapshot = pb::BookSnapshot {
        format: SNAPSHOT_FORMAT,
        fold_version: FOLD_VERSION,
        config_digest: config.digest(),
        book: meta.book,
        next_offset: meta.next_offset,
        open: book.open.map(|d| d.to_string()),
        loans: book.loans().iter().map(loan_to).collect(),
        borrowers: borrowers.into_iter().map(borrower_to).collect(),
        applications: book.applications().values().map(application_to).collect(),
        payments: book.payments().values().map(payment_to).collect(),
        actions: book.actions().values().map(action_to).collect(),
        financed_orders: book
            .financed_orders()
            .iter()
            .map(|o| o.as_str().to_string())
            .collect(),
        updates: book.updates().values().map(update_to).collect(),
        income: book
            .income_by_day()
            .iter()
            .map(|(d, (i, p))| pb::DayIncome {
                date: d.to_string(),
                interest: i.to_string(),
                penalty: p.to_string(),
            })
            .collect(),
        decided: meta
            .decided
            .iter()
            .map(|(topic, partition, offset)| pb::DecidedUpTo {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect(),
    };
    crate::encode(&snapshot)
}

/// Reads a snapshot back, for a ledger folded with `config`.
pub fn decode_snapshot(
    bytes: &[u8],
    config: &ProductConfig,
) -> Result<(Book, SnapshotMeta), SnapshotError> {
    let s: pb::BookSnapshot = crate::decode(bytes)?;
    if s.format != SNAPSHOT_FORMAT {
        return Err(SnapshotError::Unusable(format!(
            "format {} (this build reads {SNAPSHOT_FORMAT})",
            s.format
        )));
    }
    if s.fold_version != FOLD_VERSION {
        return Err(SnapshotError::Unusable(format!(
            "fold version {} (this build's is {FOLD_VERSION})",
            s.fold_version
        )));
    }
    if s.config_digest != config.digest() {
        return Err(SnapshotError::Unusable(format!(
            "folded with another product configuration (digest {}, this one's {})",
            s.config_digest,
            config.digest()
        )));
    }
    let parts = BookParts {
        open: s.open.map(|d| date("open", d)).transpose()?,
        loans: s
            .loans
            .into_iter()
            .map(loan_from)
            .collect::<Result<_, _>>()?,
        borrowers: s
            .borrowers
            .into_iter()
            .map(borrower_from)
            .collect::<Result<_, _>>()?,
        applications: s
            .applications
            .into_iter()
            .map(application_from)
            .collect::<Result<_, _>>()?,
        payments: s
            .payments
            .into_iter()
            .map(payment_from)
            .collect::<Result<_, _>>()?,
        actions: s
            .actions
            .into_iter()
            .map(action_from)
            .collect::<Result<_, _>>()?,
        financed_orders: s.financed_orders,
        updates: s
            .updates
            .into_iter()
            .map(update_from)
            .collect::<Result<_, _>>()?,
        income_by_day: s
            .income
            .into_iter()
            .map(|d| {
                Ok((
                    date("income.date", d.date)?,
                    money("income.interest", d.interest)?,
                    money("income.penalty", d.penalty)?,
                ))
            })
            .collect::<Result<_, ProtoError>>()?,
    };
    let meta = SnapshotMeta {
        book: s.book,
        next_offset: s.next_offset,
        decided: s
            .decided
            .into_iter()
            .map(|d| (d.topic, d.partition, d.offset))
            .collect(),
    };
    Ok((Book::from_parts(parts)?, meta))
}

fn loan_to(l: &Loan) -> pb::LoanState {
    pb::LoanState {
        loan_id: l.loan_id.clone(),
        borrower_id: l.borrower_id.clone(),
        product: product_to(l.product).into(),
        principal: l.principal.to_string(),
        disbursed_on: l.disbursed_on.to_string(),
        maturity_date: l.maturity_date.to_string(),
        daily_rate: l.daily_rate.to_string(),
        recalled: l.recalled,
        principal_outstanding: l.principal_outstanding.to_string(),
        principal_repaid: l.principal_repaid.to_string(),
        interest_exact: l.interest_exact.to_string(),
        penalty_exact: l.penalty_exact.to_string(),
        interest_accrued: l.interest_accrued.to_string(),
        penalty_accrued: l.penalty_accrued.to_string(),
        interest_paid: l.interest_paid.to_string(),
        penalty_paid: l.penalty_paid.to_string(),
        overpayment: l.overpayment.to_string(),
        recovered: l.recovered.to_string(),
        dpd: l.dpd,
        bucket: bucket_to(l.bucket).into(),
        status: l.status.as_str().to_string(),
        settled_on: l.settled_on.map(|d| d.to_string()),
        written_off_principal: l.written_off_principal.to_string(),
    }
}

fn loan_from(l: pb::LoanState) -> Result<Loan, ProtoError> {
    Ok(Loan {
        product: product_from("loan.product", l.product)?,
        principal: money("loan.principal", l.principal)?,
        disbursed_on: date("loan.disbursed_on", l.disbursed_on)?,
        maturity_date: date("loan.maturity_date", l.maturity_date)?,
        daily_rate: decimal("loan.daily_rate", l.daily_rate)?,
        recalled: l.recalled,
        principal_outstanding: money("loan.principal_outstanding", l.principal_outstanding)?,
        principal_repaid: money("loan.principal_repaid", l.principal_repaid)?,
        interest_exact: decimal("loan.interest_exact", l.interest_exact)?,
        penalty_exact: decimal("loan.penalty_exact", l.penalty_exact)?,
        interest_accrued: money("loan.interest_accrued", l.interest_accrued)?,
        penalty_accrued: money("loan.penalty_accrued", l.penalty_accrued)?,
        interest_paid: money("loan.interest_paid", l.interest_paid)?,
        penalty_paid: money("loan.penalty_paid", l.penalty_paid)?,
        overpayment: money("loan.overpayment", l.overpayment)?,
        recovered: money("loan.recovered", l.recovered)?,
        dpd: l.dpd,
        bucket: bucket_from("loan.bucket", l.bucket)?,
        status: loan_status_from(l.status)?,
        settled_on: l
            .settled_on
            .map(|d| date("loan.settled_on", d))
            .transpose()?,
        written_off_principal: money("loan.written_off_principal", l.written_off_principal)?,
        loan_id: l.loan_id,
        borrower_id: l.borrower_id,
    })
}

fn loan_status_from(text: String) -> Result<LoanStatus, ProtoError> {
    [
        LoanStatus::Active,
        LoanStatus::Settled,
        LoanStatus::WrittenOff,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| ProtoError::InvalidValue {
        field: "loan.status",
        value: text,
        why: "not a loan status".into(),
    })
}

fn payment_status_from(text: String) -> Result<PaymentStatus, ProtoError> {
    [
        PaymentStatus::Applied,
        PaymentStatus::Recovery,
        PaymentStatus::Rejected,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| ProtoError::InvalidValue {
        field: "payment.status",
        value: text,
        why: "not a payment status".into(),
    })
}

fn borrower_to(b: &Borrower) -> pb::BorrowerState {
    pb::BorrowerState {
        borrower_id: b.borrower_id.clone(),
        credit_line: b.credit_line.to_string(),
        blacklisted: b.blacklisted,
        malicious: b.malicious,
        loans: b.loans.clone(),
        score: b.score.to_string(),
        on_time_loans: b.on_time_loans,
        written_off: b.written_off,
    }
}

fn borrower_from(b: pb::BorrowerState) -> Result<Borrower, ProtoError> {
    Ok(Borrower {
        credit_line: money("borrower.credit_line", b.credit_line)?,
        blacklisted: b.blacklisted,
        malicious: b.malicious,
        loans: b.loans,
        score: decimal("borrower.score", b.score)?,
        on_time_loans: b.on_time_loans,
        written_off: b.written_off,
        borrower_id: b.borrower_id,
    })
}

/// 0 (REASON_UNSPECIFIED) is "no reason".
fn optional_reason_to(reason: Option<Reason>) -> i32 {
    reason.map_or(0, |r| reason_to(r).into())
}

fn optional_reason_from(field: &'static str, value: i32) -> Result<Option<Reason>, ProtoError> {
    if value == 0 {
        return Ok(None);
    }
    reason_from(field, value).map(Some)
}

fn first_input_from(
    field: &'static str,
    value: Option<u64>,
) -> Result<Option<Fingerprint>, ProtoError> {
    value
        .map(|v| {
            Fingerprint::from_u64(v).ok_or(ProtoError::InvalidValue {
                field,
                value: v.to_string(),
                why: "a fingerprint is never 0".into(),
            })
        })
        .transpose()
}

fn application_to(r: &Recorded<ApplicationRecord>) -> pb::ApplicationState {
    let a = &r.record;
    pb::ApplicationState {
        application_id: a.application_id.clone(),
        borrower_id: a.borrower_id.clone(),
        approved: a.approved,
        score: a.score.to_string(),
        reasons: a.reasons.iter().map(|r| reason_to(*r).into()).collect(),
        first_input: r.first_input.map(Fingerprint::get),
    }
}

fn application_from(a: pb::ApplicationState) -> Result<Recorded<ApplicationRecord>, ProtoError> {
    let record = ApplicationRecord {
        approved: a.approved,
        score: decimal("application.score", a.score)?,
        reasons: reason_list_from("application.reasons", a.reasons)?,
        application_id: a.application_id,
        borrower_id: a.borrower_id,
    };
    Ok(Recorded {
        record,
        first_input: first_input_from("application.first_input", a.first_input)?,
    })
}

fn payment_to(r: &Recorded<PaymentRecord>) -> pb::PaymentState {
    let p = &r.record;
    pb::PaymentState {
        payment_id: p.payment_id.clone(),
        loan_id: p.loan_id.clone(),
        status: p.status.as_str().to_string(),
        amount: p.amount.to_string(),
        penalty: p.penalty.to_string(),
        interest: p.interest.to_string(),
        principal: p.principal.to_string(),
        overpayment: p.overpayment.to_string(),
        reason: optional_reason_to(p.reason),
        first_input: r.first_input.map(Fingerprint::get),
    }
}

fn payment_from(p: pb::PaymentState) -> Result<Recorded<PaymentRecord>, ProtoError> {
    let record = PaymentRecord {
        status: payment_status_from(p.status)?,
        amount: money("payment.amount", p.amount)?,
        penalty: money("payment.penalty", p.penalty)?,
        interest: money("payment.interest", p.interest)?,
        principal: money("payment.principal", p.principal)?,
        overpayment: money("payment.overpayment", p.overpayment)?,
        reason: optional_reason_from("payment.reason", p.reason)?,
        payment_id: p.payment_id,
        loan_id: p.loan_id,
    };
    Ok(Recorded {
        record,
        first_input: first_input_from("payment.first_input", p.first_input)?,
    })
}

fn action_to(r: &Recorded<ActionRecord>) -> pb::ActionState {
    let a = &r.record;
    pb::ActionState {
        action_id: a.action_id.clone(),
        applied: a.applied,
        reason: optional_reason_to(a.reason),
        first_input: r.first_input.map(Fingerprint::get),
    }
}

fn action_from(a: pb::ActionState) -> Result<Recorded<ActionRecord>, ProtoError> {
    let record = ActionRecord {
        applied: a.applied,
        reason: optional_reason_from("action.reason", a.reason)?,
        action_id: a.action_id,
    };
    Ok(Recorded {
        record,
        first_input: first_input_from("action.first_input", a.first_input)?,
    })
}

fn update_to(r: &Recorded<UpdateRecord>) -> pb::UpdateState {
    let u = &r.record;
    pb::UpdateState {
        update_id: u.update_id.clone(),
        borrower_id: u.borrower_id.clone(),
        applied: u.applied,
        score: u.score.map(|s| s.to_string()),
        reason: optional_reason_to(u.reason),
        first_input: r.first_input.map(Fingerprint::get),
    }
}

fn update_from(u: pb::UpdateState) -> Result<Recorded<UpdateRecord>, ProtoError> {
    let record = UpdateRecord {
        applied: u.applied,
        score: u.score.map(|s| decimal("update.score", s)).transpose()?,
        reason: optional_reason_from("update.reason", u.reason)?,
        update_id: u.update_id,
        borrower_id: u.borrower_id,
    };
    Ok(Recorded {
        record,
        first_input: first_input_from("update.first_input", u.first_input)?,
    })
}
