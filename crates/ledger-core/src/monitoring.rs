//! In-loan monitoring and rewards (SPEC section 12): what an accepted merchant update
//! does to a book (rescoring, the warning notice, the recall of ACTIVE loans), and the
//! borrower states derived from the book (`warning`, `rewarded`).
//!
//! The fold derives the warning and the recall at the position of the update's fact,
//! exactly as it derives automatic blacklisting at a day close: the fact carries only
//! the score and the credit line, and every reader recalls the same loans to the same
//! date, because it uses the open business date and the loans *at that position*.

use std::collections::btree_map;

use rust_decimal::Decimal;

use crate::config::ProductConfig;
use crate::date::Date;
use crate::fact::UpdateApplied;
use crate::fingerprint::Fingerprint;
use crate::id::Id;
use crate::model::{LoanStatus, Reason};
use crate::money::{round_half_up, Money};
use crate::state::{Book, Borrower, Derived, Loan, Outcome, Recorded, Sink};

/// How one merchant update ended (the export's `merchant_updates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRecord {
    pub update_id: String,
    pub borrower_id: String,
    pub applied: bool,
    /// The update's score; `None` when it was refused.
    pub score: Option<Decimal>,
    pub reason: Option<Reason>,
}

/// RISK_WARNING for the collections team: an accepted update scored the borrower below
/// the warning threshold while it had an ACTIVE loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskWarning {
    pub borrower_id: String,
    /// The open business date of the update.
    pub date: Date,
    /// The new score and the one before, as shown (half up to 0.01).
    pub score: Decimal,
    pub previous_score: Decimal,
    /// Its ACTIVE loans (after any recall), in the order they were disbursed.
    pub loans: Vec<LoanExposure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanExposure {
    pub loan_id: String,
    pub principal_outstanding: Money,
}

/// LOAN_RECALLED for the collections team: a loan's maturity date was brought forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanRecalled {
    pub borrower_id: String,
    pub loan_id: String,
    /// The open business date of the update.
    pub date: Date,
    pub previous_maturity_date: Date,
    pub maturity_date: Date,
    pub principal_owed: Money,
    pub interest_owed: Money,
    pub penalty_owed: Money,
}

/// The score as it is shown: half up to 0.01, with exactly two decimals ("45.00").
pub fn shown(score: Decimal) -> Decimal {
    let mut shown = round_half_up(score, 2);
    shown.rescale(2);
    shown
}

impl Book {
    /// `warning`: the borrower's latest score is below the warning threshold. Stored
    /// scores are rounded down, so this is the comparison with the exact score.
    pub fn is_warning(&self, config: &ProductConfig, b: &Borrower) -> bool {
        b.score < config.monitoring.warning_score_below
    }

    /// `rewarded`: enough loans repaid on time, not blacklisted, nothing overdue, and
    /// no loan ever written off.
    pub fn is_rewarded(&self, config: &ProductConfig, b: &Borrower) -> bool {
        b.on_time_loans >= config.rewards.on_time_loans_min && !b.blacklisted && !b.written_off && !self.has_overdue(b)
    }

    pub(crate) fn apply_update(&mut self, config: &ProductConfig, u: &UpdateApplied, sink: &mut impl Sink) -> Outcome {
        let btree_map::Entry::Vacant(slot) = self.updates.entry(Id::new(&u.update_id)) else {
            return Outcome::Duplicate;
        };
        let Some(today) = self.open else {
            return Outcome::Ignored("merchant update before the book was opened");
        };
        let Some(borrower) = self.borrowers.get_mut(u.borrower_id.as_str()) else {
            return Outcome::Ignored("merchant update for a borrower this book does not hold");
        };
        let previous_score = borrower.score;
        borrower.score = u.score;
        borrower.credit_line = u.credit_line;
        let loan_ids = borrower.loans.clone();
        let record = UpdateRecord {
            update_id: u.update_id.clone(),
            borrower_id: u.borrower_id.clone(),
            applied: true,
            score: Some(u.score),
            reason: None,
        };
        slot.insert(Recorded::new(record, u.fingerprint));
        let recalls = if u.score < config.monitoring.recall_score_below {
            self.recall(&loan_ids, today.add_days(config.monitoring.recall_days))
        } else {
            Vec::new()
        };
        if !sink.enabled() {
            return Outcome::Applied;
        }
        let active: Vec<LoanExposure> = self
            .loans_by_id(&loan_ids)
            .filter(|l| l.status == LoanStatus::Active)
            .map(|l| LoanExposure { loan_id: l.loan_id.clone(), principal_outstanding: l.principal_outstanding })
            .collect();
        if u.score < config.monitoring.warning_score_below && !active.is_empty() {
            sink.emit(Derived::RiskWarning(RiskWarning {
                borrower_id: u.borrower_id.clone(),
                date: today,
                score: shown(u.score),
                previous_score: shown(previous_score),
                loans: active,
            }));
        }
        for (index, previous_maturity_date) in recalls {
            let loan = &self.loans[index];
            sink.emit(Derived::LoanRecalled(LoanRecalled {
                borrower_id: loan.borrower_id.clone(),
                loan_id: loan.loan_id.clone(),
                date: today,
                previous_maturity_date,
                maturity_date: loan.maturity_date,
                principal_owed: loan.principal_outstanding,
                interest_owed: loan.interest_owed(),
                penalty_owed: loan.penalty_owed(),
            }));
        }
        Outcome::Applied
    }

    /// Brings every ACTIVE loan maturing after `due` forward to `due` and marks it
    /// recalled; a loan already maturing by then is left as it is (a recall never moves
    /// a date later). Returns the recalled loans' indexes with their old maturity dates.
    fn recall(&mut self, loan_ids: &[String], due: Date) -> Vec<(usize, Date)> {
        let mut recalled = Vec::new();
        for id in loan_ids {
            let index = *self.loan_index.get(id.as_str()).expect("invariant: a borrower's loan exists");
            let loan = &mut self.loans[index];
            if loan.status == LoanStatus::Active && loan.maturity_date > due {
                recalled.push((index, loan.maturity_date));
                loan.maturity_date = due;
                loan.recalled = true;
                assert!(loan.maturity_date >= loan.disbursed_on, "invariant: loan {} matures before it was lent", loan.loan_id);
            }
        }
        recalled
    }

    fn loans_by_id<'a>(&'a self, ids: &'a [String]) -> impl Iterator<Item = &'a Loan> + 'a {
        ids.iter().filter_map(move |id| self.loan(id))
    }

    pub(crate) fn apply_update_refused(
        &mut self,
        update_id: &str,
        borrower_id: &str,
        reason: Reason,
        fingerprint: Option<Fingerprint>,
    ) -> Outcome {
        let btree_map::Entry::Vacant(slot) = self.updates.entry(Id::new(update_id)) else {
            return Outcome::Duplicate;
        };
        let record = UpdateRecord {
            update_id: update_id.to_string(),
            borrower_id: borrower_id.to_string(),
            applied: false,
            score: None,
            reason: Some(reason),
        };
        slot.insert(Recorded::new(record, fingerprint));
        Outcome::Applied
    }
}
