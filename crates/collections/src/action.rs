//! A collections action (SPEC section 7): MARK_MALICIOUS and REINSTATE name a borrower,
//! WRITE_OFF a loan (and may name its borrower); each is applied or refused with its
//! reason.

use ledger_core::input::CollectionsAction;
use ledger_core::state::FactKey;
use ledger_core::{ActionEffect, ActionKind, Decision, Fact, Fingerprint, Ledger, LoanStatus, Reason};

/// Decides an action against the view, in `book`: a duplicate or conflict when its id
/// was seen, else ActionApplied or ActionRefused. A write-off's loan must be in `book`
/// (as a payment's: one found only in another book raced its loan to the intake and is
/// UNKNOWN_LOAN; see `repayment::payment::decide`).
pub fn decide(view: &Ledger, book: u32, c: &CollectionsAction, fingerprint: Fingerprint) -> Decision {
    if let Some(seen) = view.seen_as(FactKey::Action(&c.action_id), fingerprint) {
        return Decision::Seen(seen);
    }
    let refuse = |target: &str, borrower_id: Option<&str>, reason| {
        Decision::Fact(Fact::ActionRefused {
            action_id: c.action_id.clone(),
            action: c.action,
            target_id: target.to_string(),
            borrower_id: borrower_id.map(str::to_string),
            reason,
            fingerprint: Some(fingerprint),
        })
    };
    let applied = |effect| Decision::Fact(Fact::ActionApplied { action_id: c.action_id.clone(), effect, fingerprint: Some(fingerprint) });
    match c.action {
        ActionKind::MarkMalicious | ActionKind::Reinstate => {
            // An action that names no borrower names no known one.
            let Some(id) = c.borrower_id.as_deref() else {
                return refuse(&c.action_id, None, Reason::UnknownBorrower);
            };
            let Some((book, borrower)) = view.borrower(id) else {
                return refuse(id, None, Reason::UnknownBorrower);
            };
            let owner = Some(id);
            if c.action == ActionKind::MarkMalicious {
                return applied(ActionEffect::MarkedMalicious { borrower_id: id.to_string() });
            }
            if !borrower.blacklisted {
                refuse(id, owner, Reason::NotBlacklisted)
            } else if borrower.malicious {
                refuse(id, owner, Reason::Malicious)
            } else if book.has_overdue(borrower) {
                refuse(id, owner, Reason::StillOverdue)
            } else {
                applied(ActionEffect::Reinstated { borrower_id: id.to_string() })
            }
        }
        ActionKind::WriteOff => {
            if let Some(named) = c.borrower_id.as_deref() {
                if view.borrower(named).is_none() {
                    return refuse(c.loan_id.as_deref().unwrap_or(named), None, Reason::UnknownBorrower);
                }
            }
            // An action that names no loan names no known one.
            let Some(loan_id) = c.loan_id.as_deref() else {
                return refuse(&c.action_id, c.borrower_id.as_deref(), Reason::UnknownLoan);
            };
            let loan = view.books().get(&book).and_then(|b| b.loan(loan_id));
            let Some(loan) = loan.filter(|l| c.borrower_id.as_deref().is_none_or(|b| b == l.borrower_id)) else {
                return refuse(loan_id, c.borrower_id.as_deref(), Reason::UnknownLoan);
            };
            if loan.status != LoanStatus::Active || loan.dpd == 0 {
                return refuse(loan_id, Some(&loan.borrower_id), Reason::NotOverdue);
            }
            applied(ActionEffect::WrittenOff { loan_id: loan_id.to_string(), borrower_id: loan.borrower_id.clone() })
        }
    }
}
