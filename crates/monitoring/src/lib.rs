//! Monitoring (贷中监控): reads merchant.updates and decides each update against the view
//! of loan.events (figures, id, borrower) into a MerchantUpdateApplied or
//! MerchantUpdateRefused fact, and publishes on loan.overdue what the fold derives from
//! an accepted update for the collections team: RISK_WARNING (score below the warning
//! threshold while the borrower has an ACTIVE loan) and LOAN_RECALLED (one per loan
//! called early). The other notices of loan.overdue are the collections service's.

mod update;

use ledger_core::handler::{Handler, InputKind, Notice};
use ledger_core::{Decision, Derived, Fingerprint, Input, InputError, Ledger};

pub struct Monitoring;

impl Handler for Monitoring {
    fn name(&self) -> &'static str {
        "monitoring"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::MerchantUpdate)
    }

    fn publishes(&self) -> bool {
        true
    }

    fn decide(&self, view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
        let Input::MerchantUpdate(u) = input else { return Err(InputError::NotDecided(self.name())) };
        view.open_in(book).ok_or(InputError::NotOpen)?;
        update::decide(view, u, Fingerprint::of(input))
    }

    fn on_derived(&self, event: &Derived) -> Option<Notice> {
        match event {
            Derived::RiskWarning(w) => Some(Notice::RiskWarning(w.clone())),
            Derived::LoanRecalled(r) => Some(Notice::LoanRecalled(r.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::state::{LoanRecalled, RiskWarning};
    use ledger_core::{Date, Money};

    #[test]
    fn publishes_warnings_and_recalls_only() {
        let date = Date::from_day_number(0);
        let warning = RiskWarning {
            borrower_id: "B1".into(),
            date,
            score: "17.02".parse().unwrap(),
            previous_score: "79.44".parse().unwrap(),
            loans: vec![],
        };
        assert!(matches!(Monitoring.on_derived(&Derived::RiskWarning(warning)), Some(Notice::RiskWarning(_))));
        let recalled = LoanRecalled {
            borrower_id: "B1".into(),
            loan_id: "A1".into(),
            date,
            previous_maturity_date: date.add_days(90),
            maturity_date: date.add_days(7),
            principal_owed: Money::ZERO,
            interest_owed: Money::ZERO,
            penalty_owed: Money::ZERO,
        };
        assert!(matches!(Monitoring.on_derived(&Derived::LoanRecalled(recalled)), Some(Notice::LoanRecalled(_))));
        let blacklisted = Derived::AutoBlacklisted { borrower_id: "B".into(), loan_id: "L".into(), dpd: 91, date };
        assert!(Monitoring.on_derived(&blacklisted).is_none());
        assert_eq!(Monitoring.decides(), Some(InputKind::MerchantUpdate));
    }
}
