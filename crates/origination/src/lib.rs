//! Origination: its intake routes loan.applications to the borrowers' books, and the
//! book writer calls it to decide each application against the book (score, blacklist,
//! overdue, limits, orders financed) into an ApplicationDecided fact, which disburses an
//! approved loan at once. The scoring (both tables and the credit line, exact fractions)
//! is origination's too; monitoring rescores merchant updates with [`scoring::score_of`].

mod application;
pub mod scoring;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Decision, Fingerprint, Input, InputError, Ledger};

pub struct Origination;

impl Handler for Origination {
    fn name(&self) -> &'static str {
        "origination"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Application)
    }

    fn decide(&self, view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
        let Input::Application(a) = input else { return Err(InputError::NotDecided(self.name())) };
        let today = view.open_in(book).ok_or(InputError::NotOpen)?;
        application::decide(view, a, Fingerprint::of(input), today)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ledger_core::input::{Application, RawAmount};
    use ledger_core::scoring::{Merchant, MerchantKind};
    use ledger_core::{Date, Discard, Fact, Product, ProductConfig};

    use super::*;

    fn application() -> Input {
        let merchant = Merchant {
            kind: MerchantKind::Platform,
            annual_sales: Some(3_000_000.into()),
            sales_growth: Some("0.30".parse().unwrap()),
            orders_12m: Some(8000.into()),
            seller_rating: Some(5.into()),
            active_days_90: Some(85.into()),
            inventory_turnover: None,
            debt_ratio: None,
            positive_review_rate: None,
        };
        Input::Application(Application {
            application_id: "A1".into(),
            borrower_id: "B1".into(),
            product: Product::Credit,
            amount: RawAmount::cny("1000.00"),
            term_days: 30,
            orders: vec![],
            merchant,
        })
    }

    #[test]
    fn decides_applications_on_the_books_open_date_only() {
        let mut view = Ledger::new(Arc::new(ProductConfig::default()));
        assert_eq!(Origination.decide(&view, 0, &application()), Err(InputError::NotOpen));
        let date = Date::from_day_number(0);
        assert_eq!(Origination.decide(&view, 0, &Input::Open { date }), Err(InputError::NotDecided("origination")));
        view.apply(0, &Fact::Opened { date }, &mut Discard);
        let Ok(Decision::Fact(Fact::ApplicationDecided(decided))) = Origination.decide(&view, 0, &application()) else {
            panic!("an application is decided into ApplicationDecided")
        };
        // SPEC section 6's example figures: 79.44, line 476,600.00; approved today.
        assert_eq!(decided.reasons, vec![]);
        assert_eq!(decided.credit_line.to_string(), "476600.00");
        assert_eq!(decided.disbursement.map(|d| d.disbursed_on), Some(date));
        // Another book has not opened: nothing is decided there.
        assert_eq!(Origination.decide(&view, 1, &application()), Err(InputError::NotOpen));
    }
}
