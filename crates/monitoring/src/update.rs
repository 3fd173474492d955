//! A merchant update (SPEC section 12): figures first (an update that cannot be scored
//! is invalid, whatever its id or borrower), then the id, then the borrower. It is
//! scored with origination's tables, exactly; the warning and the recall are the fold's.

use ledger_core::fact::UpdateApplied;
use ledger_core::input::MerchantUpdate;
use ledger_core::state::FactKey;
use ledger_core::{Decision, Fact, Fingerprint, InputError, Ledger, Reason};
use origination::scoring::score_of;

/// Decides an update against the view: an error when its figures cannot be scored, a
/// duplicate or conflict when its id was seen, else MerchantUpdateApplied or
/// MerchantUpdateRefused.
pub fn decide(view: &Ledger, u: &MerchantUpdate, fingerprint: Fingerprint) -> Result<Decision, InputError> {
    let (score, credit_line) = score_of(view.config(), &u.merchant)?;
    if let Some(seen) = view.seen_as(FactKey::Update(&u.update_id), fingerprint) {
        return Ok(Decision::Seen(seen));
    }
    if view.borrower(&u.borrower_id).is_none() {
        return Ok(Decision::Fact(Fact::MerchantUpdateRefused {
            update_id: u.update_id.clone(),
            borrower_id: u.borrower_id.clone(),
            reason: Reason::UnknownBorrower,
            fingerprint: Some(fingerprint),
        }));
    }
    Ok(Decision::Fact(Fact::MerchantUpdateApplied(UpdateApplied {
        update_id: u.update_id.clone(),
        borrower_id: u.borrower_id.clone(),
        score: score.to_decimal(),
        credit_line,
        fingerprint: Some(fingerprint),
    })))
}
