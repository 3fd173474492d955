//! A payment's validation (SPEC section 5): the id, then the loan (UNKNOWN_LOAN), then
//! the amount (INVALID_AMOUNT). How an accepted payment is allocated is the fold's.

use ledger_core::input::Repayment;
use ledger_core::state::FactKey;
use ledger_core::{Decision, Fact, Fingerprint, Ledger, Money, Reason};

/// Decides a payment against the view, in `book`: a duplicate or conflict when its id
/// was seen (anywhere: ids are ledger-wide), else RepaymentAccepted or
/// RepaymentRefused. The loan must be in `book`: the intake routes a payment to its
/// loan's book, so a loan found only in another book was not on the log when the
/// payment was routed (it raced its loan); in the ledger's order the payment came
/// first, and it is UNKNOWN_LOAN, as it is in process when a payment precedes its loan.
/// (Accepting it would append a fact its own book cannot apply: the writer would stop.)
pub fn decide(view: &Ledger, book: u32, r: &Repayment, fingerprint: Fingerprint) -> Decision {
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
    let Some(loan) = view.books().get(&book).and_then(|b| b.loan(&r.loan_id)) else {
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
