//! Facts of loan.events. The conversion covers the fact itself; the envelope's
//! `event_id` and `source` belong to whoever appends the fact ([`loan_event`]).
//!
//! The ledger wrote these messages itself, so every field is checked strictly: a fact
//! that does not read back exactly is a broken log, not a refusal.
//!
//! The fingerprint of the input a fact decided is on the envelope
//! (`LoanEvent.input_fingerprint`, one field for every kind of fact) and on the core
//! fact itself: it is part of the fact, which the conversion covers.

use ledger_core::fact::{ActionEffect, ApplicationDecided, Disbursement, UpdateApplied};
use ledger_core::{Fact, Fingerprint};

use crate::field::{
    action_from, action_to, date, decimal, id, money, optional_id, optional_money, product_from, product_to,
    reason_from, reason_list_from, reason_to,
};
use crate::pb::{self, action_applied, loan_event};
use crate::{FromProto, IntoProto, ProtoError};

/// The loan.events record of `fact`, with its envelope: `event_id` is the record's
/// deterministic id, `source` is "topic/partition/offset" of the input that caused it
/// (empty for a command).
pub fn loan_event(fact: &Fact, event_id: impl Into<String>, source: impl Into<String>) -> pb::LoanEvent {
    pb::LoanEvent { event_id: event_id.into(), source: source.into(), ..fact.into_proto() }
}

impl IntoProto for Fact {
    /// The record with an empty envelope (`event_id` and `source` unset).
    type Proto = pb::LoanEvent;

    fn into_proto(&self) -> pb::LoanEvent {
        let fact = match self {
            Fact::Opened { date } => loan_event::Fact::Opened(pb::Opened { date: date.to_string() }),
            Fact::ApplicationDecided(decided) => loan_event::Fact::ApplicationDecided(decided.into_proto()),
            Fact::RepaymentAccepted { payment_id, loan_id, borrower_id, amount, fingerprint: _ } => {
                loan_event::Fact::RepaymentAccepted(pb::RepaymentAccepted {
                    payment_id: payment_id.clone(),
                    loan_id: loan_id.clone(),
                    borrower_id: borrower_id.clone(),
                    amount: amount.to_string(),
                })
            }
            Fact::RepaymentRefused { payment_id, loan_id, borrower_id, amount_text, reason, fingerprint: _ } => {
                loan_event::Fact::RepaymentRefused(pb::RepaymentRefused {
                    payment_id: payment_id.clone(),
                    loan_id: loan_id.clone(),
                    borrower_id: borrower_id.clone(),
                    amount_text: amount_text.clone(),
                    reason: reason_to(*reason).into(),
                })
            }
            Fact::DayClosed { date } => loan_event::Fact::DayClosed(pb::DayClosed { date: date.to_string() }),
            Fact::ActionApplied { action_id, effect, fingerprint: _ } => loan_event::Fact::ActionApplied(pb::ActionApplied {
                action_id: action_id.clone(),
                effect: Some(effect.into_proto()),
            }),
            Fact::ActionRefused { action_id, action, target_id, borrower_id, reason, fingerprint: _ } => {
                loan_event::Fact::ActionRefused(pb::ActionRefused {
                    action_id: action_id.clone(),
                    action: action_to(*action).into(),
                    target_id: target_id.clone(),
                    borrower_id: borrower_id.clone(),
                    reason: reason_to(*reason).into(),
                })
            }
            Fact::MerchantUpdateApplied(u) => loan_event::Fact::MerchantUpdateApplied(pb::MerchantUpdateApplied {
                update_id: u.update_id.clone(),
                borrower_id: u.borrower_id.clone(),
                score: u.score.to_string(),
                credit_line: u.credit_line.to_string(),
            }),
            Fact::MerchantUpdateRefused { update_id, borrower_id, reason, fingerprint: _ } => {
                loan_event::Fact::MerchantUpdateRefused(pb::MerchantUpdateRefused {
                    update_id: update_id.clone(),
                    borrower_id: borrower_id.clone(),
                    reason: reason_to(*reason).into(),
                })
            }
            Fact::PaymentSeen { payment_id, loan_id, seen } => loan_event::Fact::PaymentSeen(pb::PaymentSeen {
                payment_id: payment_id.clone(),
                loan_id: loan_id.clone(),
                id_conflict: *seen == ledger_core::Seen::IdConflict,
            }),
        };
        pb::LoanEvent {
            event_id: String::new(),
            source: String::new(),
            input_fingerprint: self.fingerprint().map(Fingerprint::get),
            fact: Some(fact),
        }
    }
}

/// The envelope's fingerprint, for a fact that decided a keyed input. Unset reads as
/// `None` (a fact written before fingerprints); 0 is no fingerprint at all.
fn fingerprint(value: Option<u64>) -> Result<Option<Fingerprint>, ProtoError> {
    match value {
        None => Ok(None),
        Some(v) => Fingerprint::from_u64(v).map(Some).ok_or_else(|| ProtoError::InvalidValue {
            field: "input_fingerprint",
            value: v.to_string(),
            why: "a fingerprint is never 0; leave the field unset instead".to_string(),
        }),
    }
}

impl FromProto<pb::LoanEvent> for Fact {
    /// Reads the fact; the envelope (`event_id`, `source`) is the caller's to keep.
    fn from_proto(proto: pb::LoanEvent) -> Result<Fact, ProtoError> {
        let input_fingerprint = proto.input_fingerprint;
        let fact = proto.fact.ok_or(ProtoError::MissingField("fact"))?;
        if matches!(fact, loan_event::Fact::Opened(_) | loan_event::Fact::DayClosed(_)) {
            if let Some(v) = input_fingerprint {
                return Err(ProtoError::InvalidValue {
                    field: "input_fingerprint",
                    value: v.to_string(),
                    why: "Opened and DayClosed decide no keyed input".to_string(),
                });
            }
        }
        let fingerprint = fingerprint(input_fingerprint)?;
        Ok(match fact {
            loan_event::Fact::Opened(opened) => Fact::Opened { date: date("opened.date", opened.date)? },
            loan_event::Fact::ApplicationDecided(decided) => {
                Fact::ApplicationDecided(ApplicationDecided { fingerprint, ..ApplicationDecided::from_proto(decided)? })
            }
            loan_event::Fact::RepaymentAccepted(r) => Fact::RepaymentAccepted {
                payment_id: id("repayment_accepted.payment_id", r.payment_id)?,
                loan_id: id("repayment_accepted.loan_id", r.loan_id)?,
                borrower_id: id("repayment_accepted.borrower_id", r.borrower_id)?,
                amount: money("repayment_accepted.amount", r.amount)?,
                fingerprint,
            },
            loan_event::Fact::RepaymentRefused(r) => Fact::RepaymentRefused {
                payment_id: id("repayment_refused.payment_id", r.payment_id)?,
                loan_id: id("repayment_refused.loan_id", r.loan_id)?,
                borrower_id: optional_id("repayment_refused.borrower_id", r.borrower_id)?,
                // Whatever text was refused, kept as it came (it may be empty).
                amount_text: r.amount_text,
                reason: reason_from("repayment_refused.reason", r.reason)?,
                fingerprint,
            },
            loan_event::Fact::DayClosed(closed) => Fact::DayClosed { date: date("day_closed.date", closed.date)? },
            loan_event::Fact::ActionApplied(a) => Fact::ActionApplied {
                action_id: id("action_applied.action_id", a.action_id)?,
                effect: ActionEffect::from_proto(a.effect.ok_or(ProtoError::MissingField("action_applied.effect"))?)?,
                fingerprint,
            },
            loan_event::Fact::ActionRefused(a) => Fact::ActionRefused {
                action_id: id("action_refused.action_id", a.action_id)?,
                action: action_from("action_refused.action", a.action)?,
                target_id: id("action_refused.target_id", a.target_id)?,
                borrower_id: optional_id("action_refused.borrower_id", a.borrower_id)?,
                reason: reason_from("action_refused.reason", a.reason)?,
                fingerprint,
            },
            loan_event::Fact::MerchantUpdateApplied(u) => Fact::MerchantUpdateApplied(UpdateApplied {
                update_id: id("merchant_update_applied.update_id", u.update_id)?,
                borrower_id: id("merchant_update_applied.borrower_id", u.borrower_id)?,
                score: decimal("merchant_update_applied.score", u.score)?,
                credit_line: money("merchant_update_applied.credit_line", u.credit_line)?,
                fingerprint,
            }),
            loan_event::Fact::MerchantUpdateRefused(u) => Fact::MerchantUpdateRefused {
                update_id: id("merchant_update_refused.update_id", u.update_id)?,
                borrower_id: id("merchant_update_refused.borrower_id", u.borrower_id)?,
                reason: reason_from("merchant_update_refused.reason", u.reason)?,
                fingerprint,
            },
            loan_event::Fact::PaymentSeen(s) => Fact::PaymentSeen {
                payment_id: id("payment_seen.payment_id", s.payment_id)?,
                loan_id: s.loan_id,
                seen: if s.id_conflict { ledger_core::Seen::IdConflict } else { ledger_core::Seen::Duplicate },
            },
        })
    }
}

impl IntoProto for ApplicationDecided {
    type Proto = pb::ApplicationDecided;

    fn into_proto(&self) -> pb::ApplicationDecided {
        pb::ApplicationDecided {
            application_id: self.application_id.clone(),
            borrower_id: self.borrower_id.clone(),
            product: product_to(self.product).into(),
            amount: self.amount.map(|m| m.to_string()),
            term_days: self.term_days,
            score: self.score.to_string(),
            credit_line: self.credit_line.to_string(),
            reasons: self.reasons.iter().map(|r| reason_to(*r).into()).collect(),
            disbursement: self.disbursement.as_ref().map(IntoProto::into_proto),
        }
    }
}

impl FromProto<pb::ApplicationDecided> for ApplicationDecided {
    fn from_proto(proto: pb::ApplicationDecided) -> Result<ApplicationDecided, ProtoError> {
        Ok(ApplicationDecided {
            application_id: id("application_decided.application_id", proto.application_id)?,
            borrower_id: id("application_decided.borrower_id", proto.borrower_id)?,
            product: product_from("application_decided.product", proto.product)?,
            amount: optional_money("application_decided.amount", proto.amount)?,
            term_days: proto.term_days,
            score: decimal("application_decided.score", proto.score)?,
            credit_line: money("application_decided.credit_line", proto.credit_line)?,
            reasons: reason_list_from("application_decided.reasons", proto.reasons)?,
            disbursement: proto.disbursement.map(Disbursement::from_proto).transpose()?,
            // On the envelope: see `FromProto<pb::LoanEvent> for Fact`.
            fingerprint: None,
        })
    }
}

impl IntoProto for Disbursement {
    type Proto = pb::Disbursement;

    fn into_proto(&self) -> pb::Disbursement {
        pb::Disbursement {
            loan_id: self.loan_id.clone(),
            principal: self.principal.to_string(),
            disbursed_on: self.disbursed_on.to_string(),
            maturity_date: self.maturity_date.to_string(),
            order_ids: self.order_ids.clone(),
            daily_rate: self.daily_rate.map(|r| r.to_string()),
        }
    }
}

impl FromProto<pb::Disbursement> for Disbursement {
    fn from_proto(proto: pb::Disbursement) -> Result<Disbursement, ProtoError> {
        Ok(Disbursement {
            loan_id: id("application_decided.disbursement.loan_id", proto.loan_id)?,
            principal: money("application_decided.disbursement.principal", proto.principal)?,
            disbursed_on: date("application_decided.disbursement.disbursed_on", proto.disbursed_on)?,
            maturity_date: date("application_decided.disbursement.maturity_date", proto.maturity_date)?,
            order_ids: proto
                .order_ids
                .into_iter()
                .map(|order_id| id("application_decided.disbursement.order_ids", order_id))
                .collect::<Result<_, _>>()?,
            daily_rate: proto
                .daily_rate
                .map(|r| decimal("application_decided.disbursement.daily_rate", r))
                .transpose()?,
        })
    }
}

impl IntoProto for ActionEffect {
    type Proto = action_applied::Effect;

    fn into_proto(&self) -> action_applied::Effect {
        match self {
            ActionEffect::MarkedMalicious { borrower_id } => {
                action_applied::Effect::MarkedMalicious(pb::MarkedMalicious { borrower_id: borrower_id.clone() })
            }
            ActionEffect::Reinstated { borrower_id } => {
                action_applied::Effect::Reinstated(pb::Reinstated { borrower_id: borrower_id.clone() })
            }
            ActionEffect::WrittenOff { loan_id, borrower_id } => action_applied::Effect::WrittenOff(pb::WrittenOff {
                loan_id: loan_id.clone(),
                borrower_id: borrower_id.clone(),
            }),
        }
    }
}

impl FromProto<action_applied::Effect> for ActionEffect {
    fn from_proto(proto: action_applied::Effect) -> Result<ActionEffect, ProtoError> {
        Ok(match proto {
            action_applied::Effect::MarkedMalicious(m) => ActionEffect::MarkedMalicious {
                borrower_id: id("action_applied.marked_malicious.borrower_id", m.borrower_id)?,
            },
            action_applied::Effect::Reinstated(r) => {
                ActionEffect::Reinstated { borrower_id: id("action_applied.reinstated.borrower_id", r.borrower_id)? }
            }
            action_applied::Effect::WrittenOff(w) => ActionEffect::WrittenOff {
                loan_id: id("action_applied.written_off.loan_id", w.loan_id)?,
                borrower_id: id("action_applied.written_off.borrower_id", w.borrower_id)?,
            },
        })
    }
}
