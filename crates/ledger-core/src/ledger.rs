//! The ledger: the books of every partition, the fold over them, and the decisions that
//! turn inputs into facts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::ProductConfig;
use crate::date::Date;
use crate::fact::{ActionEffect, ApplicationDecided, Disbursement, Fact, UpdateApplied};
use crate::fingerprint::Fingerprint;
use crate::id::Id;
use crate::input::{Application, CollectionsAction, Input, MerchantUpdate, Repayment};
use crate::model::{ActionKind, LoanStatus, Product, Reason};
use crate::money::Money;
use crate::scoring::{credit_line, Merchant, MerchantKind, Score, ScoreError};
use crate::state::{Book, Borrower, FactKey, Loan, Outcome, Sink};

/// An input that cannot be decided at all (as opposed to one that is refused with a
/// reason, which is a fact). The simulator stops on these; a service dead-letters them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the ledger is not open yet: the first input must be \"open\"")]
    NotOpen,
    #[error("the ledger is already open (business date {0})")]
    AlreadyOpen(Date),
    #[error("close_day names {got}, but the open business date is {expected}")]
    WrongCloseDate { expected: Date, got: Date },
    #[error("{0}")]
    Score(#[from] ScoreError),
    #[error("{0} is required")]
    Missing(&'static str),
}

/// What deciding an input produced.
// A decision lives for one input and is moved once, into `apply`: boxing its fact to
// shrink the rare `Seen` would cost an allocation per input for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The one fact this input becomes (accepted or refused).
    Fact(Fact),
    /// The input's idempotency key was seen before, on any book: it changes nothing and
    /// becomes no fact, whatever it says. [`Seen`] says how it compares with the first
    /// input with that key, which is what its answer says (SPEC section 9).
    Seen(Seen),
}

/// How a later input with an id the ledger has seen compares with the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Seen {
    /// The same content (the same [`Fingerprint`]): a re-sent input, answered DUPLICATE.
    /// Also the verdict when the first input's fact predates fingerprints, since
    /// nothing then says they differ.
    Duplicate,
    /// Other content under the same id, answered ID_CONFLICT: the sender re-used an id
    /// it had already used for something else. The first input still counts.
    IdConflict,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    config: Arc<ProductConfig>,
    books: BTreeMap<u32, Book>,
}

impl Ledger {
    pub fn new(config: Arc<ProductConfig>) -> Ledger {
        Ledger { config, books: BTreeMap::new() }
    }

    pub fn config(&self) -> &ProductConfig {
        &self.config
    }

    pub fn books(&self) -> &BTreeMap<u32, Book> {
        &self.books
    }

    /// The fold: applies one fact read from `partition` of loan.events.
    pub fn apply(&mut self, partition: u32, fact: &Fact, sink: &mut impl Sink) -> Outcome {
        let book = self.books.entry(partition).or_default();
        book.apply(&self.config, fact, sink)
    }

    /// Puts a book restored from a snapshot in place of `partition`'s (which must then
    /// be folded on from the offset the snapshot reflects).
    pub fn restore_book(&mut self, partition: u32, book: Book) {
        self.books.insert(partition, book);
    }

    /// The open business date: the earliest open date over the books (they are equal
    /// whenever no day close is half-way through the partitions).
    pub fn business_date(&self) -> Option<Date> {
        self.books.values().filter_map(|b| b.open).min()
    }

    pub fn loan(&self, loan_id: &str) -> Option<(&Book, &Loan)> {
        self.books.values().find_map(|b| b.loan(loan_id).map(|l| (b, l)))
    }

    pub fn borrower(&self, borrower_id: &str) -> Option<(&Book, &Borrower)> {
        self.books.values().find_map(|b| b.borrower(borrower_id).map(|x| (b, x)))
    }

    pub fn order_financed(&self, order_id: &str) -> bool {
        let order_id = Id::new(order_id);
        self.books.values().any(|b| b.financed_orders().contains(&order_id))
    }

    pub fn seen(&self, key: FactKey<'_>) -> bool {
        self.books.values().any(|b| b.has_key(&key))
    }

    /// Whether `key` was seen on any book (keys are global: SPEC section 9), and if so
    /// how an input with `fingerprint` compares with the first input with that key.
    pub fn seen_as(&self, key: FactKey<'_>, fingerprint: Fingerprint) -> Option<Seen> {
        let first = self.books.values().find_map(|b| b.first_input(&key))?;
        Some(match first {
            Some(first) if first != fingerprint => Seen::IdConflict,
            _ => Seen::Duplicate,
        })
    }

    /// Decides an input against the current state: the one fact it becomes, or that it
    /// is a duplicate. Never changes state; apply the fact to do that. The date is the
    /// ledger's business date (in process, every book closes together).
    pub fn decide(&self, input: &Input) -> Result<Decision, InputError> {
        self.decide_on(self.business_date(), input)
    }

    /// Decides an input of book `book` on the date open in that book, where its fact
    /// will stand: the books of a live ledger close one by one, and a loan decided in a
    /// book that has closed day d is a loan of day d+1 whatever the other books say.
    pub fn decide_in_book(&self, book: u32, input: &Input) -> Result<Decision, InputError> {
        self.decide_on(self.books.get(&book).and_then(|b| b.open), input)
    }

    fn decide_on(&self, today: Option<Date>, input: &Input) -> Result<Decision, InputError> {
        match input {
            Input::Open { date } => match today {
                Some(open) => Err(InputError::AlreadyOpen(open)),
                None => Ok(Decision::Fact(Fact::Opened { date: *date })),
            },
            Input::CloseDay { date } => {
                let open = today.ok_or(InputError::NotOpen)?;
                if *date != open {
                    return Err(InputError::WrongCloseDate { expected: open, got: *date });
                }
                Ok(Decision::Fact(Fact::DayClosed { date: *date }))
            }
            Input::Application(a) => {
                self.decide_application(a, Fingerprint::of(input), today.ok_or(InputError::NotOpen)?)
            }
            Input::Repayment(r) => {
                today.ok_or(InputError::NotOpen)?;
                Ok(self.decide_repayment(r, Fingerprint::of(input)))
            }
            Input::Collections(c) => {
                today.ok_or(InputError::NotOpen)?;
                self.decide_action(c, Fingerprint::of(input))
            }
            Input::MerchantUpdate(u) => {
                today.ok_or(InputError::NotOpen)?;
                self.decide_update(u, Fingerprint::of(input))
            }
        }
    }

    /// The score and credit line of a merchant's figures (SPEC section 6); an error when
    /// a figure the merchant kind's table needs is missing.
    fn score_of(&self, merchant: &Merchant) -> Result<(Score, Money), InputError> {
        let config = &self.config;
        let table = match merchant.kind {
            MerchantKind::Platform => &config.scoring.platform,
            MerchantKind::OffPlatform => &config.scoring.off_platform,
        };
        let score = table.score(merchant)?;
        let annual_sales = merchant.annual_sales.ok_or(InputError::Missing("merchant.annual_sales"))?;
        let line = credit_line(annual_sales, config.credit_line_factor, score, config.credit_line_step, config.total_limit)?;
        Ok((score, line))
    }

    /// SPEC section 12: figures first (an update that cannot be scored is invalid,
    /// whatever its id or borrower), then the id, then the borrower.
    fn decide_update(&self, u: &MerchantUpdate, fingerprint: Fingerprint) -> Result<Decision, InputError> {
        let (score, credit_line) = self.score_of(&u.merchant)?;
        if let Some(seen) = self.seen_as(FactKey::Update(&u.update_id), fingerprint) {
            return Ok(Decision::Seen(seen));
        }
        if self.borrower(&u.borrower_id).is_none() {
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

    fn decide_application(&self, a: &Application, fingerprint: Fingerprint, today: Date) -> Result<Decision, InputError> {
        if let Some(seen) = self.seen_as(FactKey::Application(&a.application_id), fingerprint) {
            return Ok(Decision::Seen(seen));
        }
        let config = &self.config;
        let (score, line) = self.score_of(&a.merchant)?;
        let terms = config.terms(a.product);
        let borrower = self.borrower(&a.borrower_id);
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
                if self.order_financed(&order.order_id) || order_ids.contains(&order.order_id) {
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

    fn decide_repayment(&self, r: &Repayment, fingerprint: Fingerprint) -> Decision {
        if let Some(seen) = self.seen_as(FactKey::Payment(&r.payment_id), fingerprint) {
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
        let Some((_, loan)) = self.loan(&r.loan_id) else {
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

    fn decide_action(&self, c: &CollectionsAction, fingerprint: Fingerprint) -> Result<Decision, InputError> {
        if let Some(seen) = self.seen_as(FactKey::Action(&c.action_id), fingerprint) {
            return Ok(Decision::Seen(seen));
        }
        let refuse = |target: &str, borrower_id: Option<&str>, reason| {
            Ok(Decision::Fact(Fact::ActionRefused {
                action_id: c.action_id.clone(),
                action: c.action,
                target_id: target.to_string(),
                borrower_id: borrower_id.map(str::to_string),
                reason,
                fingerprint: Some(fingerprint),
            }))
        };
        let applied = |effect| {
            Ok(Decision::Fact(Fact::ActionApplied { action_id: c.action_id.clone(), effect, fingerprint: Some(fingerprint) }))
        };
        match c.action {
            ActionKind::MarkMalicious | ActionKind::Reinstate => {
                // An action that names no borrower names no known one.
                let Some(id) = c.borrower_id.as_deref() else {
                    return refuse(&c.action_id, None, Reason::UnknownBorrower);
                };
                let Some((book, borrower)) = self.borrower(id) else {
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
                    if self.borrower(named).is_none() {
                        return refuse(c.loan_id.as_deref().unwrap_or(named), None, Reason::UnknownBorrower);
                    }
                }
                // An action that names no loan names no known one.
                let Some(loan_id) = c.loan_id.as_deref() else {
                    return refuse(&c.action_id, c.borrower_id.as_deref(), Reason::UnknownLoan);
                };
                let loan = self.loan(loan_id).map(|(_, l)| l);
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
}
