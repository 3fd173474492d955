//! An application's checks (SPEC sections 3 and 6): the id, the score against the
//! approval threshold (the rewarded borrower's lower one, SPEC section 12), blacklist,
//! overdue, term, amounts, orders financed, limits; every failed reason named, sorted.

use ledger_core::fact::{ApplicationDecided, Disbursement};
use ledger_core::input::Application;
use ledger_core::state::FactKey;
use ledger_core::{Date, Decision, Fact, Fingerprint, InputError, Ledger, Money, Product, Reason};

use crate::scoring::score_of;

/// Decides an application on `today` against the view: a duplicate or conflict when its
/// id was seen, else one ApplicationDecided fact, which disburses an approved loan.
pub fn decide(view: &Ledger, a: &Application, fingerprint: Fingerprint, today: Date) -> Result<Decision, InputError> {
    if let Some(seen) = view.seen_as(FactKey::Application(&a.application_id), fingerprint) {
        return Ok(Decision::Seen(seen));
    }
    let config = view.config();
    let (score, line) = score_of(config, &a.merchant)?;
    let terms = config.terms(a.product);
    let borrower = view.borrower(&a.borrower_id);
    // A rewarded borrower is approved from a lower score and lent at a lower rate.
    let rewarded = borrower.is_some_and(|(book, b)| book.is_rewarded(config, b));
    let (score_min, daily_rate) = if rewarded {
        (config.rewards.approve_score_min, (terms.daily_rate * config.rewards.rate_multiplier).normalize())
    } else {
        (config.approve_score_min, terms.daily_rate.normalize())
    };

    let mut reasons = Vec::new();
    if !score.at_least(score_min) {
        reasons.push(Reason::ScoreTooLow);
    }
    if borrower.is_some_and(|(_, b)| b.blacklisted) {
        reasons.push(Reason::Blacklisted);
    }
    if borrower.is_some_and(|(book, b)| book.has_overdue(b)) {
        reasons.push(Reason::HasOverdue);
    }
    if !(1..=terms.max_term_days).contains(&a.term_days) {
        reasons.push(Reason::TermOutOfRange);
    }
    let amount = Money::parse_external(&a.amount.text, Some(&a.amount.currency)).ok();
    // ORDER loans: the orders' own amounts must be valid too, and each order may
    // finance one loan, ever (an order named twice in one application counts).
    let mut orders_sum = Some(Money::ZERO);
    let mut order_ids = Vec::new();
    if a.product == Product::Order {
        let mut already = false;
        for order in &a.orders {
            match Money::parse_external(&order.amount.text, Some(&order.amount.currency)) {
                Ok(m) => orders_sum = orders_sum.map(|s| s.plus(m)),
                Err(_) => orders_sum = None,
            }
            if view.order_financed(&order.order_id) || order_ids.contains(&order.order_id) {
                already = true;
            }
            order_ids.push(order.order_id.clone());
        }
        if amount.is_none() || orders_sum.is_none() {
            reasons.push(Reason::InvalidAmount);
        }
        if already {
            reasons.push(Reason::OrderAlreadyFinanced);
        }
    } else if amount.is_none() {
        reasons.push(Reason::InvalidAmount);
    }
    if let Some(amount) = amount {
        if terms.max_amount.is_some_and(|max| amount > max) {
            reasons.push(Reason::OverProductMax);
        }
        let outstanding = borrower.map_or(Money::ZERO, |(book, b)| book.outstanding_of(b));
        let exposure = outstanding.plus(amount);
        if exposure > line {
            reasons.push(Reason::OverCreditLine);
        }
        if exposure > config.total_limit {
            reasons.push(Reason::OverTotalLimit);
        }
        if a.product == Product::Order && orders_sum.is_some_and(|sum| amount > sum) {
            reasons.push(Reason::OrderAmountExceeded);
        }
    }
    reasons.sort();
    let disbursement = match (reasons.is_empty(), amount) {
        (true, Some(principal)) => Some(Disbursement {
            loan_id: a.application_id.clone(),
            principal,
            disbursed_on: today,
            maturity_date: today.add_days(a.term_days),
            order_ids,
            daily_rate: Some(daily_rate),
        }),
        _ => None,
    };
    Ok(Decision::Fact(Fact::ApplicationDecided(ApplicationDecided {
        application_id: a.application_id.clone(),
        borrower_id: a.borrower_id.clone(),
        product: a.product,
        amount,
        term_days: a.term_days,
        score: score.to_decimal(),
        credit_line: line,
        reasons,
        disbursement,
        fingerprint: Some(fingerprint),
    })))
}
