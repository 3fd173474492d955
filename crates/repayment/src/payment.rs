//! A payment's validation (SPEC section 5): the id, then the loan (UNKNOWN_LOAN), then
//! the amount (INVALID_AMOUNT). How an accepted payment is allocated is the fold's.

use ledger_core::input::Repayment;
use ledger_core::state::FactKey;
use ledger_core::{Decision, Fact, Fingerprint, Ledger, Money, Reason};

/// Decides a payment against the view: a duplicate or conflict when its id was seen,
/// else RepaymentAccepted or RepaymentRefused.
pub fn decide(view: &Ledger, r: &Repayment, fingerprint: Fingerprint) -> Decision {
    if let Some(seen) = view.seen_as(FactKey::Payment(&r.payment_id), fingerprint) {
        return Decision::Seen(seen);
    }
    let refuse = |reason, borrower_id: Option<&str>| {
        Decision::Fact(Fact::RepaymentRefused {
            payment_id: r.payment_id.clone(),
            loan_id: r.loan_id.clone(),
            borrower_id: borrower_id.map(str::to_string),
            amount_text: r.amount.text.clone(),
            reason,
            fingerprint: Some(fingerprint),
        })
    };
    let Some((_, loan)) = view.loan(&r.loan_id) else {
        return refuse(Reason::UnknownLoan, None);
    };
    match Money::parse_external(&r.amount.text, Some(&r.amount.currency)) {
        Err(_) => refuse(Reason::InvalidAmount, Some(&loan.borrower_id)),
        Ok(amount) => Decision::Fact(Fact::RepaymentAccepted {
            payment_id: r.payment_id.clone(),
            loan_id: r.loan_id.clone(),
            borrower_id: loan.borrower_id.clone(),
            amount,
            fingerprint: Some(fingerprint),
        }),
    }
}
