//! Outputs: what the fold derives ([`Derived`]) as published on loan.accruals,
//! loan.overdue and loan.receipts. Writing is what the services do; reading back
//! ([`FromProto`]) is for consumers and tests that compare a topic with the fold.
//!
//! The `event_id` of each message is the publisher's to set (it is derived from the
//! source position, which the fold does not know); conversions leave it empty.

use ledger_core::state::{Accrual, Derived, LoanExposure, LoanRecalled, OverdueNotice, PaymentRecord, PaymentStatus, RiskWarning};
use ledger_core::Money;

use crate::field::{
    bucket_from, bucket_to, date, decimal, id, money, notice_kind_from, notice_kind_to, reason_to, set_reason_from,
};
use crate::pb::{self, collections_notice};
use crate::{FromProto, IntoProto, ProtoError};

/// One message for an output topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// For loan.accruals; key: borrower id.
    Accrual(pb::AccrualPosting),
    /// For loan.overdue; key: borrower id.
    Collections(pb::CollectionsNotice),
    /// For loan.receipts; key: loan id.
    Receipt(pb::RepaymentReceipt),
}

impl Output {
    /// The Kafka message key (the partitioning id) of the topic the message is for.
    pub fn key(&self) -> &str {
        match self {
            Output::Accrual(a) => &a.borrower_id,
            Output::Collections(c) => match &c.notice {
                Some(collections_notice::Notice::Overdue(o)) => &o.borrower_id,
                Some(collections_notice::Notice::Blacklisted(b)) => &b.borrower_id,
                Some(collections_notice::Notice::RiskWarning(w)) => &w.borrower_id,
                Some(collections_notice::Notice::LoanRecalled(r)) => &r.borrower_id,
                None => "",
            },
            Output::Receipt(r) => &r.loan_id,
        }
    }

    pub fn event_id(&self) -> &str {
        match self {
            Output::Accrual(a) => &a.event_id,
            Output::Collections(c) => &c.event_id,
            Output::Receipt(r) => &r.event_id,
        }
    }

    pub fn set_event_id(&mut self, event_id: impl Into<String>) {
        let slot = match self {
            Output::Accrual(a) => &mut a.event_id,
            Output::Collections(c) => &mut c.event_id,
            Output::Receipt(r) => &mut r.event_id,
        };
        *slot = event_id.into();
    }

    /// The protobuf encoding of the message (the record's value).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Output::Accrual(a) => crate::encode(a),
            Output::Collections(c) => crate::encode(c),
            Output::Receipt(r) => crate::encode(r),
        }
    }
}

impl IntoProto for Derived {
    /// `None` for [`Derived::Disbursed`]: a disbursement is already on loan.events (in
    /// `ApplicationDecided.disbursement`) and no output topic repeats it.
    type Proto = Option<Output>;

    fn into_proto(&self) -> Option<Output> {
        match self {
            Derived::Disbursed { .. } => None,
            Derived::Accrual(accrual) => Some(Output::Accrual(accrual.into_proto())),
            Derived::Overdue(notice) => Some(Output::Collections(pb::CollectionsNotice {
                event_id: String::new(),
                notice: Some(collections_notice::Notice::Overdue(notice.into_proto())),
            })),
            Derived::Receipt(record) => Some(Output::Receipt(record.into_proto())),
            Derived::AutoBlacklisted { borrower_id, loan_id, dpd, date } => {
                Some(Output::Collections(pb::CollectionsNotice {
                    event_id: String::new(),
                    notice: Some(collections_notice::Notice::Blacklisted(pb::BorrowerBlacklisted {
                        borrower_id: borrower_id.clone(),
                        loan_id: loan_id.clone(),
                        dpd: *dpd,
                        date: date.to_string(),
                    })),
                }))
            }
            Derived::RiskWarning(w) => Some(collections(collections_notice::Notice::RiskWarning(w.into_proto()))),
            Derived::LoanRecalled(r) => Some(collections(collections_notice::Notice::LoanRecalled(r.into_proto()))),
            Derived::PaymentSeen { payment_id, loan_id, seen } => Some(Output::Receipt(match seen {
                ledger_core::Seen::Duplicate => duplicate_receipt(payment_id, loan_id),
                ledger_core::Seen::IdConflict => {
                    ledger_core::state::PaymentRecord::refused(payment_id, loan_id, ledger_core::Reason::IdConflict).into_proto()
                }
            })),
        }
    }
}

fn collections(notice: collections_notice::Notice) -> Output {
    Output::Collections(pb::CollectionsNotice { event_id: String::new(), notice: Some(notice) })
}

impl FromProto<Output> for Derived {
    fn from_proto(proto: Output) -> Result<Derived, ProtoError> {
        match proto {
            Output::Accrual(a) => Accrual::from_proto(a).map(Derived::Accrual),
            Output::Collections(c) => Derived::from_proto(c),
            Output::Receipt(r) => PaymentRecord::from_proto(r).map(Derived::Receipt),
        }
    }
}

impl FromProto<pb::CollectionsNotice> for Derived {
    fn from_proto(proto: pb::CollectionsNotice) -> Result<Derived, ProtoError> {
        match proto.notice.ok_or(ProtoError::MissingField("notice"))? {
            collections_notice::Notice::Overdue(o) => OverdueNotice::from_proto(o).map(Derived::Overdue),
            collections_notice::Notice::Blacklisted(b) => Ok(Derived::AutoBlacklisted {
                borrower_id: id("blacklisted.borrower_id", b.borrower_id)?,
                loan_id: id("blacklisted.loan_id", b.loan_id)?,
                dpd: b.dpd,
                date: date("blacklisted.date", b.date)?,
            }),
            collections_notice::Notice::RiskWarning(w) => RiskWarning::from_proto(w).map(Derived::RiskWarning),
            collections_notice::Notice::LoanRecalled(r) => LoanRecalled::from_proto(r).map(Derived::LoanRecalled),
        }
    }
}

impl IntoProto for RiskWarning {
    type Proto = pb::RiskWarning;

    fn into_proto(&self) -> pb::RiskWarning {
        pb::RiskWarning {
            borrower_id: self.borrower_id.clone(),
            score: self.score.to_string(),
            previous_score: self.previous_score.to_string(),
            date: self.date.to_string(),
            loans: self
                .loans
                .iter()
                .map(|l| pb::LoanExposure {
                    loan_id: l.loan_id.clone(),
                    principal_outstanding: l.principal_outstanding.to_string(),
                })
                .collect(),
        }
    }
}

impl FromProto<pb::RiskWarning> for RiskWarning {
    fn from_proto(proto: pb::RiskWarning) -> Result<RiskWarning, ProtoError> {
        Ok(RiskWarning {
            borrower_id: id("risk_warning.borrower_id", proto.borrower_id)?,
            date: date("risk_warning.date", proto.date)?,
            score: decimal("risk_warning.score", proto.score)?,
            previous_score: decimal("risk_warning.previous_score", proto.previous_score)?,
            loans: proto
                .loans
                .into_iter()
                .map(|l| {
                    Ok(LoanExposure {
                        loan_id: id("risk_warning.loans.loan_id", l.loan_id)?,
                        principal_outstanding: money("risk_warning.loans.principal_outstanding", l.principal_outstanding)?,
                    })
                })
                .collect::<Result<_, ProtoError>>()?,
        })
    }
}

impl IntoProto for LoanRecalled {
    type Proto = pb::LoanRecalled;

    fn into_proto(&self) -> pb::LoanRecalled {
        pb::LoanRecalled {
            borrower_id: self.borrower_id.clone(),
            loan_id: self.loan_id.clone(),
            date: self.date.to_string(),
            previous_maturity_date: self.previous_maturity_date.to_string(),
            maturity_date: self.maturity_date.to_string(),
            principal_owed: self.principal_owed.to_string(),
            interest_owed: self.interest_owed.to_string(),
            penalty_owed: self.penalty_owed.to_string(),
        }
    }
}

impl FromProto<pb::LoanRecalled> for LoanRecalled {
    fn from_proto(proto: pb::LoanRecalled) -> Result<LoanRecalled, ProtoError> {
        Ok(LoanRecalled {
            borrower_id: id("loan_recalled.borrower_id", proto.borrower_id)?,
            loan_id: id("loan_recalled.loan_id", proto.loan_id)?,
            date: date("loan_recalled.date", proto.date)?,
            previous_maturity_date: date("loan_recalled.previous_maturity_date", proto.previous_maturity_date)?,
            maturity_date: date("loan_recalled.maturity_date", proto.maturity_date)?,
            principal_owed: money("loan_recalled.principal_owed", proto.principal_owed)?,
            interest_owed: money("loan_recalled.interest_owed", proto.interest_owed)?,
            penalty_owed: money("loan_recalled.penalty_owed", proto.penalty_owed)?,
        })
    }
}

impl IntoProto for Accrual {
    type Proto = pb::AccrualPosting;

    fn into_proto(&self) -> pb::AccrualPosting {
        pb::AccrualPosting {
            event_id: String::new(),
            loan_id: self.loan_id.clone(),
            borrower_id: self.borrower_id.clone(),
            date: self.date.to_string(),
            interest: self.interest.to_string(),
            penalty: self.penalty.to_string(),
            interest_accrued: self.interest_accrued.to_string(),
            penalty_accrued: self.penalty_accrued.to_string(),
        }
    }
}

impl FromProto<pb::AccrualPosting> for Accrual {
    fn from_proto(proto: pb::AccrualPosting) -> Result<Accrual, ProtoError> {
        Ok(Accrual {
            loan_id: id("loan_id", proto.loan_id)?,
            borrower_id: id("borrower_id", proto.borrower_id)?,
            date: date("date", proto.date)?,
            interest: money("interest", proto.interest)?,
            penalty: money("penalty", proto.penalty)?,
            interest_accrued: money("interest_accrued", proto.interest_accrued)?,
            penalty_accrued: money("penalty_accrued", proto.penalty_accrued)?,
        })
    }
}

impl IntoProto for OverdueNotice {
    type Proto = pb::OverdueNotice;

    fn into_proto(&self) -> pb::OverdueNotice {
        pb::OverdueNotice {
            kind: notice_kind_to(self.kind).into(),
            borrower_id: self.borrower_id.clone(),
            loan_id: self.loan_id.clone(),
            date: self.date.to_string(),
            dpd: self.dpd,
            bucket: bucket_to(self.bucket).into(),
            previous_bucket: bucket_to(self.previous_bucket).into(),
            principal_owed: self.principal_owed.to_string(),
            interest_owed: self.interest_owed.to_string(),
            penalty_owed: self.penalty_owed.to_string(),
        }
    }
}

impl FromProto<pb::OverdueNotice> for OverdueNotice {
    fn from_proto(proto: pb::OverdueNotice) -> Result<OverdueNotice, ProtoError> {
        Ok(OverdueNotice {
            kind: notice_kind_from("overdue.kind", proto.kind)?,
            loan_id: id("overdue.loan_id", proto.loan_id)?,
            borrower_id: id("overdue.borrower_id", proto.borrower_id)?,
            date: date("overdue.date", proto.date)?,
            dpd: proto.dpd,
            bucket: bucket_from("overdue.bucket", proto.bucket)?,
            previous_bucket: bucket_from("overdue.previous_bucket", proto.previous_bucket)?,
            principal_owed: money("overdue.principal_owed", proto.principal_owed)?,
            interest_owed: money("overdue.interest_owed", proto.interest_owed)?,
            penalty_owed: money("overdue.penalty_owed", proto.penalty_owed)?,
        })
    }
}

fn receipt_status_to(status: PaymentStatus) -> pb::ReceiptStatus {
    match status {
        PaymentStatus::Applied => pb::ReceiptStatus::Applied,
        PaymentStatus::Recovery => pb::ReceiptStatus::Recovery,
        PaymentStatus::Rejected => pb::ReceiptStatus::Rejected,
    }
}

impl IntoProto for PaymentRecord {
    type Proto = pb::RepaymentReceipt;

    fn into_proto(&self) -> pb::RepaymentReceipt {
        pb::RepaymentReceipt {
            event_id: String::new(),
            payment_id: self.payment_id.clone(),
            loan_id: self.loan_id.clone(),
            status: receipt_status_to(self.status).into(),
            penalty: self.penalty.to_string(),
            interest: self.interest.to_string(),
            principal: self.principal.to_string(),
            overpayment: self.overpayment.to_string(),
            reason: self.reason.map(|r| reason_to(r).into()),
            amount: self.amount.to_string(),
        }
    }
}

impl FromProto<pb::RepaymentReceipt> for PaymentRecord {
    /// A DUPLICATE receipt is not a payment record (the first receipt for the payment
    /// id is) and reads as an invalid status.
    fn from_proto(proto: pb::RepaymentReceipt) -> Result<PaymentRecord, ProtoError> {
        let status = match pb::ReceiptStatus::try_from(proto.status) {
            Ok(pb::ReceiptStatus::Applied) => PaymentStatus::Applied,
            Ok(pb::ReceiptStatus::Recovery) => PaymentStatus::Recovery,
            Ok(pb::ReceiptStatus::Rejected) => PaymentStatus::Rejected,
            Ok(pb::ReceiptStatus::Duplicate) => {
                return Err(ProtoError::InvalidValue {
                    field: "status",
                    value: pb::ReceiptStatus::Duplicate.as_str_name().to_string(),
                    why: "a duplicate receipt has no payment record of its own".to_string(),
                })
            }
            Ok(pb::ReceiptStatus::Unspecified) => return Err(ProtoError::MissingField("status")),
            Err(_) => return Err(ProtoError::UnknownEnum { field: "status", value: proto.status }),
        };
        Ok(PaymentRecord {
            payment_id: id("payment_id", proto.payment_id)?,
            loan_id: id("loan_id", proto.loan_id)?,
            status,
            amount: money("amount", proto.amount)?,
            penalty: money("penalty", proto.penalty)?,
            interest: money("interest", proto.interest)?,
            principal: money("principal", proto.principal)?,
            overpayment: money("overpayment", proto.overpayment)?,
            reason: proto.reason.map(|r| set_reason_from("reason", r)).transpose()?,
        })
    }
}

/// The receipt for a repayment whose payment id was seen before: nothing changed, all
/// amounts are 0.00 (SPEC section 5). The fold records no such payment, so the
/// repayment service builds this one itself; `event_id` is its to set.
pub fn duplicate_receipt(payment_id: &str, loan_id: &str) -> pb::RepaymentReceipt {
    let zero = Money::ZERO.to_string();
    pb::RepaymentReceipt {
        event_id: String::new(),
        payment_id: payment_id.to_string(),
        loan_id: loan_id.to_string(),
        status: pb::ReceiptStatus::Duplicate.into(),
        penalty: zero.clone(),
        interest: zero.clone(),
        principal: zero.clone(),
        overpayment: zero.clone(),
        reason: None,
        amount: zero,
    }
}

impl IntoProto for ledger_core::handler::Notice {
    /// The output message of a service's notice (its `event_id` left empty).
    type Proto = Output;

    fn into_proto(&self) -> Output {
        use ledger_core::handler::Notice;
        let derived = match self {
            Notice::Accrual(a) => Derived::Accrual(a.clone()),
            Notice::Overdue(o) => Derived::Overdue(o.clone()),
            Notice::Blacklisted { borrower_id, loan_id, dpd, date } => Derived::AutoBlacklisted {
                borrower_id: borrower_id.clone(),
                loan_id: loan_id.clone(),
                dpd: *dpd,
                date: *date,
            },
            Notice::Receipt(r) => Derived::Receipt(r.clone()),
            Notice::RiskWarning(w) => Derived::RiskWarning(w.clone()),
            Notice::LoanRecalled(r) => Derived::LoanRecalled(r.clone()),
            Notice::DuplicatePayment { payment_id, loan_id } => {
                return Output::Receipt(duplicate_receipt(payment_id, loan_id));
            }
        };
        derived.into_proto().expect("every notice but a disbursement has an output")
    }
}
