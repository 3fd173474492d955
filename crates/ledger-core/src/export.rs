//! The canonical state export (SPEC section 11), the portfolio figures (section 8) and
//! the state digest.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::date::Date;
use crate::ledger::Ledger;
use crate::model::{Bucket, LoanStatus};
use crate::money::{format_fixed, Money};
use crate::config::ProductConfig;
use crate::state::{ActionRecord, ApplicationRecord, Book, Borrower, Loan, PaymentRecord, UpdateRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub business_date: Option<Date>,
    pub loans: Vec<LoanView>,
    pub borrowers: Vec<BorrowerView>,
    pub applications: Vec<ApplicationView>,
    pub payments: Vec<PaymentView>,
    pub collections_actions: Vec<ActionView>,
    pub merchant_updates: Vec<UpdateView>,
    pub portfolio: PortfolioView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanView {
    pub loan_id: String,
    pub borrower_id: String,
    pub product: String,
    pub status: String,
    pub principal: Money,
    pub disbursed_on: Date,
    pub maturity_date: Date,
    pub principal_outstanding: Money,
    pub interest_accrued: Money,
    pub interest_owed: Money,
    pub penalty_accrued: Money,
    pub penalty_owed: Money,
    pub overpayment: Money,
    pub recovered: Money,
    pub dpd: u32,
    pub bucket: String,
    /// The loan's own daily rate, e.g. "0.0006" or "0.00054".
    pub daily_rate: String,
    pub recalled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BorrowerView {
    pub borrower_id: String,
    pub credit_line: Money,
    pub outstanding_principal: Money,
    pub blacklisted: bool,
    pub malicious: bool,
    /// The latest score, half up to 0.01.
    pub score: String,
    pub warning: bool,
    pub on_time_loans: u32,
    pub rewarded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationView {
    pub application_id: String,
    pub borrower_id: String,
    pub decision: String,
    pub score: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub payment_id: String,
    pub loan_id: String,
    pub status: String,
    pub penalty: Money,
    pub interest: Money,
    pub principal: Money,
    pub overpayment: Money,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionView {
    pub action_id: String,
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateView {
    pub update_id: String,
    pub borrower_id: String,
    pub status: String,
    /// Null for a REJECTED update.
    pub score: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioView {
    pub outstanding_principal: Money,
    pub active_loans: u64,
    pub borrowers: u64,
    pub loans_disbursed: u64,
    pub amount_disbursed: Money,
    pub interest_income: Money,
    pub penalty_income: Money,
    pub overdue_principal: OverdueByBucket,
    pub npl_ratio: String,
    pub written_off_principal: Money,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueByBucket {
    #[serde(rename = "M1")]
    pub m1: Money,
    #[serde(rename = "M2")]
    pub m2: Money,
    #[serde(rename = "M3")]
    pub m3: Money,
    #[serde(rename = "NPL")]
    pub npl: Money,
}

impl OverdueByBucket {
    fn slot(&mut self, bucket: Bucket) -> Option<&mut Money> {
        match bucket {
            Bucket::Current => None,
            Bucket::M1 => Some(&mut self.m1),
            Bucket::M2 => Some(&mut self.m2),
            Bucket::M3 => Some(&mut self.m3),
            Bucket::Npl => Some(&mut self.npl),
        }
    }
}

/// One book's portfolio figures (SPEC section 8), kept by [`Book::apply`] as facts
/// apply: each loan's contribution is taken out before a fact that concerns it and put
/// back after, so the portfolio is a sum over books, not a scan of every loan (the
/// projector writes it after every batch). Exact: sums of money, no rounding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    disbursed: u64,
    amount_disbursed: Money,
    interest_income: Money,
    penalty_income: Money,
    active: u64,
    outstanding: Money,
    overdue: OverdueByBucket,
    written_off: Money,
    settled: u64,
    /// Days outstanding, summed over the settled loans.
    settled_days: i64,
    /// Borrowers with at least one loan.
    pub(crate) borrowers: u64,
}

impl Totals {
    /// Counted from every loan of `book`.
    pub(crate) fn of(book: &Book) -> Totals {
        // A count: the hash map's iteration order does not matter.
        let borrowers = book.borrowers().values().filter(|b| !b.loans.is_empty()).count() as u64;
        Totals::of_loans(book.loans(), borrowers)
    }

    /// Counted from `loans`, with the number of borrowers given.
    fn of_loans(loans: &[Loan], borrowers: u64) -> Totals {
        let mut totals = Totals { borrowers, ..Totals::default() };
        for loan in loans {
            totals.add(loan);
        }
        totals
    }

    /// A day close charged this interest and penalty (the sum of its postings).
    pub(crate) fn charged(&mut self, interest: Money, penalty: Money) {
        self.interest_income = self.interest_income.plus(interest);
        self.penalty_income = self.penalty_income.plus(penalty);
    }

    /// An active loan's outstanding principal moved from one bucket to another.
    pub(crate) fn moved(&mut self, from: Bucket, to: Bucket, principal: Money) {
        if let Some(slot) = self.overdue.slot(from) {
            *slot = slot.minus(principal);
        }
        if let Some(slot) = self.overdue.slot(to) {
            *slot = slot.plus(principal);
        }
    }

    pub(crate) fn add(&mut self, l: &Loan) {
        self.count(l, true);
    }

    /// Takes out what [`Totals::add`] put in for `l` as it stands.
    pub(crate) fn remove(&mut self, l: &Loan) {
        self.count(l, false);
    }

    fn count(&mut self, l: &Loan, add: bool) {
        let step = |total: &mut Money, amount: Money| *total = if add { total.plus(amount) } else { total.minus(amount) };
        let tally = |n: &mut u64| if add { *n += 1 } else { *n -= 1 };
        tally(&mut self.disbursed);
        step(&mut self.amount_disbursed, l.principal);
        step(&mut self.interest_income, l.interest_accrued);
        step(&mut self.penalty_income, l.penalty_accrued);
        match l.status {
            LoanStatus::Active => {
                tally(&mut self.active);
                step(&mut self.outstanding, l.principal_outstanding);
                if let Some(slot) = self.overdue.slot(l.bucket) {
                    step(slot, l.principal_outstanding);
                }
            }
            LoanStatus::WrittenOff => step(&mut self.written_off, l.written_off_principal),
            LoanStatus::Settled => {
                if let Some(on) = l.settled_on {
                    tally(&mut self.settled);
                    let days = on.days_since(l.disbursed_on);
                    self.settled_days += if add { days } else { -days };
                }
            }
        }
    }

    /// Adds another book's totals.
    fn absorb(&mut self, other: &Totals) {
        self.disbursed += other.disbursed;
        self.amount_disbursed = self.amount_disbursed.plus(other.amount_disbursed);
        self.interest_income = self.interest_income.plus(other.interest_income);
        self.penalty_income = self.penalty_income.plus(other.penalty_income);
        self.active += other.active;
        self.outstanding = self.outstanding.plus(other.outstanding);
        let (o, by) = (&mut self.overdue, &other.overdue);
        (o.m1, o.m2, o.m3, o.npl) = (o.m1.plus(by.m1), o.m2.plus(by.m2), o.m3.plus(by.m3), o.npl.plus(by.npl));
        self.written_off = self.written_off.plus(other.written_off);
        self.settled += other.settled;
        self.settled_days += other.settled_days;
        self.borrowers += other.borrowers;
    }
}

/// Portfolio figures beyond the export (SPEC section 8): income per day and the
/// average number of days a settled loan was outstanding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioReport {
    #[serde(flatten)]
    pub figures: PortfolioView,
    pub business_date: Option<Date>,
    /// Interest and penalty charged at each day's close, by business date.
    pub income_by_day: Vec<DayIncome>,
    pub settled_loans: u64,
    /// Mean of (settled_on - disbursed_on) over settled loans, to 0.01 day.
    pub average_days_outstanding: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayIncome {
    pub date: Date,
    pub interest: Money,
    pub penalty: Money,
}

pub fn loan_view(l: &Loan) -> LoanView {
    LoanView {
        loan_id: l.loan_id.clone(),
        borrower_id: l.borrower_id.clone(),
        product: l.product.as_str().to_string(),
        status: l.status.as_str().to_string(),
        principal: l.principal,
        disbursed_on: l.disbursed_on,
        maturity_date: l.maturity_date,
        principal_outstanding: l.principal_outstanding,
        interest_accrued: l.interest_accrued,
        interest_owed: l.interest_owed(),
        penalty_accrued: l.penalty_accrued,
        penalty_owed: l.penalty_owed(),
        overpayment: l.overpayment,
        recovered: l.recovered,
        dpd: l.dpd,
        bucket: l.bucket.as_str().to_string(),
        daily_rate: l.daily_rate.normalize().to_string(),
        recalled: l.recalled,
    }
}


pub fn borrower_view(config: &ProductConfig, book: &Book, b: &Borrower) -> BorrowerView {
    BorrowerView {
        borrower_id: b.borrower_id.clone(),
        credit_line: b.credit_line,
        outstanding_principal: book.outstanding_of(b),
        blacklisted: b.blacklisted,
        malicious: b.malicious,
        score: format_fixed(b.score, 2),
        warning: book.is_warning(config, b),
        on_time_loans: b.on_time_loans,
        rewarded: book.is_rewarded(config, b),
    }
}

pub fn update_view(u: &UpdateRecord) -> UpdateView {
    UpdateView {
        update_id: u.update_id.clone(),
        borrower_id: u.borrower_id.clone(),
        status: if u.applied { "APPLIED" } else { "REJECTED" }.to_string(),
        score: u.score.map(|s| format_fixed(s, 2)),
        reason: u.reason.map(|r| r.as_str().to_string()),
    }
}

pub fn application_view(a: &ApplicationRecord) -> ApplicationView {
    ApplicationView {
        application_id: a.application_id.clone(),
        borrower_id: a.borrower_id.clone(),
        decision: if a.approved { "APPROVED" } else { "REJECTED" }.to_string(),
        score: format_fixed(a.score, 2),
        reasons: a.reasons.iter().map(|r| r.as_str().to_string()).collect(),
    }
}

pub fn payment_view(p: &PaymentRecord) -> PaymentView {
    PaymentView {
        payment_id: p.payment_id.clone(),
        loan_id: p.loan_id.clone(),
        status: p.status.as_str().to_string(),
        penalty: p.penalty,
        interest: p.interest,
        principal: p.principal,
        overpayment: p.overpayment,
        reason: p.reason.map(|r| r.as_str().to_string()),
    }
}

pub fn action_view(a: &ActionRecord) -> ActionView {
    ActionView {
        action_id: a.action_id.clone(),
        status: if a.applied { "APPLIED" } else { "REJECTED" }.to_string(),
        reason: a.reason.map(|r| r.as_str().to_string()),
    }
}

impl Ledger {
    /// The canonical export: every list sorted by id.
    pub fn export(&self) -> Export {
        let books = self.books();
        let mut loans: Vec<LoanView> = books.values().flat_map(|b| b.loans().iter().map(loan_view)).collect();
        loans.sort_by(|a, b| a.loan_id.cmp(&b.loan_id));

        // A book's borrowers are a hash map, iterated in arbitrary order: the sort below
        // (by borrower id, unique within a book) is what makes this list canonical.
        let mut borrowers: Vec<BorrowerView> = books
            .values()
            .flat_map(|book| book.borrowers().values().map(move |b| borrower_view(self.config(), book, b)))
            .collect();
        borrowers.sort_by(|a, b| a.borrower_id.cmp(&b.borrower_id));

        let mut applications: Vec<ApplicationView> = books
            .values()
            .flat_map(|b| b.applications().values())
            .map(|r| application_view(&r.record))
            .collect();
        applications.sort_by(|a, b| a.application_id.cmp(&b.application_id));

        let mut payments: Vec<PaymentView> = books
            .values()
            .flat_map(|b| b.payments().values())
            .map(|r| payment_view(&r.record))
            .collect();
        payments.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));

        let mut collections_actions: Vec<ActionView> = books
            .values()
            .flat_map(|b| b.actions().values())
            .map(|r| action_view(&r.record))
            .collect();
        collections_actions.sort_by(|a, b| a.action_id.cmp(&b.action_id));

        let mut merchant_updates: Vec<UpdateView> =
            books.values().flat_map(|b| b.updates().values()).map(|r| update_view(&r.record)).collect();
        merchant_updates.sort_by(|a, b| a.update_id.cmp(&b.update_id));

        Export {
            business_date: self.business_date(),
            loans,
            borrowers,
            applications,
            payments,
            collections_actions,
            merchant_updates,
            portfolio: self.portfolio(),
        }
    }

    /// The portfolio figures: a sum of the books' kept totals (no loan is read).
    pub fn portfolio(&self) -> PortfolioView {
        let mut sum = Totals::default();
        for book in self.books().values() {
            sum.absorb(&book.totals);
        }
        let Totals { disbursed, amount_disbursed, interest_income, penalty_income, active, outstanding, overdue, written_off, borrowers, .. } = sum;
        let npl_ratio = if outstanding.is_zero() {
            Decimal::ZERO
        } else {
            overdue.npl.as_decimal() / outstanding.as_decimal()
        };
        PortfolioView {
            outstanding_principal: outstanding,
            active_loans: active,
            borrowers,
            loans_disbursed: disbursed,
            amount_disbursed,
            interest_income,
            penalty_income,
            overdue_principal: overdue,
            npl_ratio: format_fixed(npl_ratio, 4),
            written_off_principal: written_off,
        }
    }

    pub fn portfolio_report(&self) -> PortfolioReport {
        let mut by_day: BTreeMap<Date, (Money, Money)> = BTreeMap::new();
        let (mut settled, mut days_total) = (0u64, 0i64);
        for book in self.books().values() {
            for (date, (i, p)) in book.income_by_day() {
                let e = by_day.entry(*date).or_default();
                *e = (e.0.plus(*i), e.1.plus(*p));
            }
            settled += book.totals.settled;
            days_total += book.totals.settled_days;
        }
        let average = if settled == 0 { Decimal::ZERO } else { Decimal::from(days_total) / Decimal::from(settled) };
        PortfolioReport {
            figures: self.portfolio(),
            business_date: self.business_date(),
            income_by_day: by_day.into_iter().map(|(date, (interest, penalty))| DayIncome { date, interest, penalty }).collect(),
            settled_loans: settled,
            average_days_outstanding: format_fixed(average, 2),
        }
    }

    /// A stable hash of the canonical state: the export plus what the export rounds or
    /// leaves out (exact accumulators, financed orders). Identical states give identical
    /// digests on any machine, however the facts were spread over partitions.
    pub fn digest(&self) -> String {
        let orders: Vec<String> =
            self.books().values().flat_map(|b| b.financed_orders().iter().map(|order| order.as_str().to_string())).collect();
        digest_of(self.export(), self.exact_accruals(), orders)
    }

    /// The exact accumulators of every loan (what a read model keeps beside the export
    /// so that it can compute the same digest).
    pub fn exact_accruals(&self) -> Vec<ExactAccrual> {
        self.books()
            .values()
            .flat_map(|b| b.loans())
            .map(|l| ExactAccrual { loan_id: l.loan_id.clone(), interest_exact: l.interest_exact, penalty_exact: l.penalty_exact })
            .collect()
    }
}

/// A loan's exact (never rounded) interest and penalty accumulators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactAccrual {
    pub loan_id: String,
    pub interest_exact: Decimal,
    pub penalty_exact: Decimal,
}

/// The state digest from its parts, in any order: SHA-256 over a canonical JSON of the
/// export, the exact accumulators (normalised, sorted by loan) and the financed orders
/// (sorted). [`Ledger::digest`] and the projector's read models both use this.
pub fn digest_of(export: Export, mut exact: Vec<ExactAccrual>, mut financed_orders: Vec<String>) -> String {
    #[derive(Serialize)]
    struct Exact {
        loan_id: String,
        interest_exact: String,
        penalty_exact: String,
    }
    #[derive(Serialize)]
    struct Canonical {
        export: Export,
        exact: Vec<Exact>,
        financed_orders: Vec<String>,
    }
    exact.sort_by(|a, b| a.loan_id.cmp(&b.loan_id));
    financed_orders.sort_unstable();
    let exact = exact
        .into_iter()
        .map(|e| Exact {
            loan_id: e.loan_id,
            interest_exact: e.interest_exact.normalize().to_string(),
            penalty_exact: e.penalty_exact.normalize().to_string(),
        })
        .collect();
    let canonical = Canonical { export, exact, financed_orders };
    let bytes = serde_json::to_vec(&canonical).expect("state serializes");
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}
