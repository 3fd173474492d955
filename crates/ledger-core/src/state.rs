//! The state and the fold: `apply(state, fact) -> state' + derived events`.
//!
//! The ledger is a set of [`Book`]s, one per partition of loan.events (a scenario run in
//! process has one). A borrower and all its loans live in the book of the partition its
//! facts are keyed to, so a book's facts are totally ordered and `DayClosed` closes the
//! day for exactly the loans of its book. Applying a fact cannot fail: a fact whose
//! idempotency key was seen is a no-op ([`Outcome::Duplicate`]).

use std::collections::{btree_map, hash_map, BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;

use crate::config::ProductConfig;
use crate::date::Date;
use crate::fact::{ActionEffect, ApplicationDecided, Fact};
use crate::fingerprint::Fingerprint;
pub use crate::monitoring::{LoanExposure, LoanRecalled, RiskWarning, UpdateRecord};
use crate::id::Id;
use crate::model::{Bucket, LoanStatus, Product, Reason};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    pub loan_id: String,
    pub borrower_id: String,
    pub product: Product,
    pub principal: Money,
    pub disbursed_on: Date,
    pub maturity_date: Date,
    /// Its own daily rate, for life (the penalty rate is this x the multiplier).
    pub daily_rate: Decimal,
    /// Called early by a merchant update (its maturity date was moved to D + 7).
    pub recalled: bool,
    pub principal_outstanding: Money,
    pub principal_repaid: Money,
    /// Exact accumulators: never rounded.
    pub interest_exact: Decimal,
    pub penalty_exact: Decimal,
    /// round(interest_exact), round(penalty_exact): what has been charged.
    pub interest_accrued: Money,
    pub penalty_accrued: Money,
    pub interest_paid: Money,
    pub penalty_paid: Money,
    pub overpayment: Money,
    pub recovered: Money,
    pub dpd: u32,
    pub bucket: Bucket,
    pub status: LoanStatus,
    /// The business date it was settled on (for the average days outstanding).
    pub settled_on: Option<Date>,
    /// Principal outstanding when it was written off.
    pub written_off_principal: Money,
}

impl Loan {
    pub fn interest_owed(&self) -> Money {
        self.interest_accrued.minus(self.interest_paid)
    }

    pub fn penalty_owed(&self) -> Money {
        self.penalty_accrued.minus(self.penalty_paid)
    }

    pub fn total_owed(&self) -> Money {
        self.principal_outstanding.plus(self.interest_owed()).plus(self.penalty_owed())
    }

    /// Overdue in SPEC's sense: ACTIVE with DPD > 0.
    pub fn is_overdue(&self) -> bool {
        self.status == LoanStatus::Active && self.dpd > 0
    }

    fn check_invariants(&self) {
        if let Some(broken) = self.broken_invariant() {
            panic!("invariant: {broken} for loan {}", self.loan_id);
        }
    }

    /// The first of the loan's invariants it breaks, if any.
    pub fn broken_invariant(&self) -> Option<&'static str> {
        if self.principal != self.principal_outstanding.plus(self.principal_repaid) {
            Some("principal conserved")
        } else if self.interest_paid > self.interest_accrued {
            Some("interest not overpaid")
        } else if self.penalty_paid > self.penalty_accrued {
            Some("penalty not overpaid")
        } else if self.status == LoanStatus::Settled && !self.total_owed().is_zero() {
            Some("a settled loan owes nothing")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrower {
    pub borrower_id: String,
    pub credit_line: Money,
    pub blacklisted: bool,
    pub malicious: bool,
    /// Ids of its loans, in the order they were disbursed.
    pub loans: Vec<String>,
    /// The score of its latest application or accepted merchant update.
    pub score: Decimal,
    /// Loans it repaid on time (SETTLED with DPD 0 after the day they were lent).
    pub on_time_loans: u32,
    /// Whether any of its loans was ever written off.
    pub written_off: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    pub application_id: String,
    pub borrower_id: String,
    pub approved: bool,
    pub score: Decimal,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PaymentStatus {
    Applied,
    Recovery,
    Rejected,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Applied => "APPLIED",
            PaymentStatus::Recovery => "RECOVERY",
            PaymentStatus::Rejected => "REJECTED",
        }
    }
}

/// How one payment was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub loan_id: String,
    pub status: PaymentStatus,
    /// The amount received (zero when refused).
    pub amount: Money,
    pub penalty: Money,
    pub interest: Money,
    pub principal: Money,
    pub overpayment: Money,
    pub reason: Option<Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub action_id: String,
    pub applied: bool,
    pub reason: Option<Reason>,
}

/// The record of an id together with the fingerprint of the first input with that id,
/// the one that counts (SPEC section 9): what the deciders compare a later
/// input with the same id against (DUPLICATE or ID_CONFLICT). It is kept beside the
/// record rather than in it, so that the record stays what the export and the receipts
/// show; it costs eight bytes per id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<R> {
    pub record: R,
    /// `None` when the fact was written before facts carried fingerprints.
    pub first_input: Option<Fingerprint>,
}

impl<R> Recorded<R> {
    pub(crate) fn new(record: R, first_input: Option<Fingerprint>) -> Recorded<R> {
        Recorded { record, first_input }
    }
}

impl PaymentRecord {
    /// A refused payment: nothing received, nothing allocated, and why.
    pub fn refused(payment_id: &str, loan_id: &str, reason: Reason) -> PaymentRecord {
        PaymentRecord {
            payment_id: payment_id.to_string(),
            loan_id: loan_id.to_string(),
            status: PaymentStatus::Rejected,
            amount: Money::ZERO,
            penalty: Money::ZERO,
            interest: Money::ZERO,
            principal: Money::ZERO,
            overpayment: Money::ZERO,
            reason: Some(reason),
        }
    }
}

/// What applying a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The fact's idempotency key was seen before: nothing changed.
    Duplicate,
    /// The fact does not fit this book (a broken log); nothing changed. The reason is
    /// for the operator's log.
    Ignored(&'static str),
}

/// One partition's state.
///
/// The maps are keyed by [`Id`] (short ids inline: no allocation, and comparing keys
/// reads no other memory). Ids the system generates grow (APP0000001, PAY00000001,
/// ORD00000001), so the maps of records keep B-trees, whose inserts then stay on the
/// tree's right edge. Borrowers and the loan index are looked up at random, so they are
/// hash maps; their iteration order is arbitrary and must never reach output: every
/// reader that iterates `borrowers` sorts what it collects (the export), or only counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    /// The open business date: the day after the last closed one.
    pub open: Option<Date>,
    pub(crate) loans: Vec<Loan>,
    pub(crate) loan_index: HashMap<Id, usize>,
    pub(crate) borrowers: HashMap<Id, Borrower>,
    pub(crate) applications: BTreeMap<Id, Recorded<ApplicationRecord>>,
    pub(crate) payments: BTreeMap<Id, Recorded<PaymentRecord>>,
    pub(crate) actions: BTreeMap<Id, Recorded<ActionRecord>>,
    pub(crate) financed_orders: BTreeSet<Id>,
    pub(crate) updates: BTreeMap<Id, Recorded<UpdateRecord>>,
    /// Derived income figures by business date: (interest, penalty) charged at its close.
    pub(crate) income_by_day: BTreeMap<Date, (Money, Money)>,
    /// The book's portfolio figures, kept as each fact applies (derived from the loans:
    /// never in a snapshot, recomputed by [`Book::from_parts`]).
    pub(crate) totals: crate::export::Totals,
}

/// What the fold does to a book, as a number: a release that changes what any fact
/// does to a book's state (a rule fixed, a field added) raises it, and every snapshot
/// of an older fold version is then passed over, so the books are folded again from the
/// log with the new rules.
pub const FOLD_VERSION: u32 = 1;

/// A book's state taken apart, for a snapshot: every field a book holds, in plain
/// collections. [`Book::from_parts`] checks it before it becomes a book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookParts {
    pub open: Option<Date>,
    /// In the order they were disbursed.
    pub loans: Vec<Loan>,
    pub borrowers: Vec<Borrower>,
    pub applications: Vec<Recorded<ApplicationRecord>>,
    pub payments: Vec<Recorded<PaymentRecord>>,
    pub actions: Vec<Recorded<ActionRecord>>,
    pub financed_orders: Vec<String>,
    pub updates: Vec<Recorded<UpdateRecord>>,
    pub income_by_day: Vec<(Date, Money, Money)>,
}

/// Why parts do not make a book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a book: {0}")]
pub struct PartsError(pub String);

/// Events the fold derives while applying a fact: what the accrual, collections and
/// repayment services publish. Every reader derives the same ones at the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derived {
    Disbursed { loan_id: String, borrower_id: String, product: Product, principal: Money, disbursed_on: Date, maturity_date: Date },
    /// The day's interest and penalty posting of one loan: the change of the rounded
    /// totals (it can be 0.00).
    Accrual(Accrual),
    /// LoanOverdue, bucket change or LoanCured, for the collections team.
    Overdue(OverdueNotice),
    /// How a payment was applied, or why it was refused.
    Receipt(PaymentRecord),
    /// The borrower was blacklisted automatically (a loan reached the configured DPD).
    AutoBlacklisted { borrower_id: String, loan_id: String, dpd: u32, date: Date },
    /// A merchant update scored the borrower below the warning threshold while it had
    /// an ACTIVE loan.
    RiskWarning(RiskWarning),
    /// A merchant update called a loan early.
    LoanRecalled(LoanRecalled),
    /// A repayment whose payment id was seen before: answered DUPLICATE or ID_CONFLICT.
    PaymentSeen { payment_id: String, loan_id: String, seen: crate::ledger::Seen },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accrual {
    pub loan_id: String,
    pub borrower_id: String,
    pub date: Date,
    pub interest: Money,
    pub penalty: Money,
    pub interest_accrued: Money,
    pub penalty_accrued: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoticeKind {
    /// DPD became 1 (or more): the loan entered M1.
    Overdue,
    /// The loan moved to a later bucket.
    BucketChanged,
    /// An overdue loan was paid off.
    Cured,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Overdue => "LOAN_OVERDUE",
            NoticeKind::BucketChanged => "BUCKET_CHANGED",
            NoticeKind::Cured => "LOAN_CURED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueNotice {
    pub kind: NoticeKind,
    pub loan_id: String,
    pub borrower_id: String,
    /// The business date whose close (or, for a cure, whose payment) caused it.
    pub date: Date,
    pub dpd: u32,
    pub bucket: Bucket,
    pub previous_bucket: Bucket,
    pub principal_owed: Money,
    pub interest_owed: Money,
    pub penalty_owed: Money,
}

/// Receives derived events. `enabled() == false` lets a reader that needs none (a
/// benchmark, the simulator) skip building them.
pub trait Sink {
    fn emit(&mut self, event: Derived);
    fn enabled(&self) -> bool {
        true
    }
}

impl Sink for Vec<Derived> {
    fn emit(&mut self, event: Derived) {
        self.push(event);
    }
}

/// A sink that wants nothing.
pub struct Discard;

impl Sink for Discard {
    fn emit(&mut self, _: Derived) {}
    fn enabled(&self) -> bool {
        false
    }
}

impl Book {
    /// A book from its parts (a snapshot's), checked: ids unique, every borrower's
    /// loans and every loan's borrower present, and each loan's invariants holding.
    pub fn from_parts(parts: BookParts) -> Result<Book, PartsError> {
        let fail = |what: String| Err(PartsError(what));
        let mut book = Book { open: parts.open, ..Book::default() };
        for (i, loan) in parts.loans.into_iter().enumerate() {
            if book.loan_index.insert(Id::new(&loan.loan_id), i).is_some() {
                return fail(format!("loan {} twice", loan.loan_id));
            }
            book.loans.push(loan);
        }
        for borrower in parts.borrowers {
            for loan_id in &borrower.loans {
                if book.loan(loan_id).is_none_or(|l| l.borrower_id != borrower.borrower_id) {
                    return fail(format!("borrower {} lists loan {loan_id}, which is not its", borrower.borrower_id));
                }
            }
            if book.borrowers.insert(Id::new(&borrower.borrower_id), borrower.clone()).is_some() {
                return fail(format!("borrower {} twice", borrower.borrower_id));
            }
        }
        for loan in &book.loans {
            if !book.borrowers.get(loan.borrower_id.as_str()).is_some_and(|b| b.loans.contains(&loan.loan_id)) {
                return fail(format!("loan {}'s borrower {} does not list it", loan.loan_id, loan.borrower_id));
            }
            if let Some(broken) = loan.broken_invariant() {
                return fail(format!("loan {} breaks an invariant: {broken}", loan.loan_id));
            }
        }
        fn keyed<R>(records: Vec<Recorded<R>>, id: impl Fn(&R) -> &str, kind: &str) -> Result<BTreeMap<Id, Recorded<R>>, PartsError> {
            let mut map = BTreeMap::new();
            for r in records {
                let key = Id::new(id(&r.record));
                if map.insert(key.clone(), r).is_some() {
                    return Err(PartsError(format!("{kind} {key} twice")));
                }
            }
            Ok(map)
        }
        book.applications = keyed(parts.applications, |a| &a.application_id, "application")?;
        book.payments = keyed(parts.payments, |p| &p.payment_id, "payment")?;
        book.actions = keyed(parts.actions, |a| &a.action_id, "action")?;
        book.updates = keyed(parts.updates, |u| &u.update_id, "update")?;
        book.financed_orders = parts.financed_orders.iter().map(|o| Id::new(o)).collect();
        for (date, interest, penalty) in parts.income_by_day {
            if book.income_by_day.insert(date, (interest, penalty)).is_some() {
                return fail(format!("the income of {date} twice"));
            }
        }
        book.totals = crate::export::Totals::of(&book);
        Ok(book)
    }

    pub fn loan(&self, loan_id: &str) -> Option<&Loan> {
        self.loan_index.get(loan_id).map(|&i| &self.loans[i])
    }

    pub fn borrower(&self, borrower_id: &str) -> Option<&Borrower> {
        self.borrowers.get(borrower_id)
    }

    pub fn loans_of<'a>(&'a self, borrower: &'a Borrower) -> impl Iterator<Item = &'a Loan> + 'a {
        borrower.loans.iter().filter_map(move |id| self.loan(id))
    }

    pub fn has_overdue(&self, borrower: &Borrower) -> bool {
        self.loans_of(borrower).any(Loan::is_overdue)
    }

    /// Outstanding principal of the borrower's ACTIVE loans.
    pub fn outstanding_of(&self, borrower: &Borrower) -> Money {
        self.loans_of(borrower)
            .filter(|l| l.status == LoanStatus::Active)
            .map(|l| l.principal_outstanding)
            .sum()
    }

    pub fn loans(&self) -> &[Loan] {
        &self.loans
    }

    /// The borrowers by id, in no particular order: sort before anything reaches output.
    pub fn borrowers(&self) -> &HashMap<Id, Borrower> {
        &self.borrowers
    }

    pub fn applications(&self) -> &BTreeMap<Id, Recorded<ApplicationRecord>> {
        &self.applications
    }

    pub fn payments(&self) -> &BTreeMap<Id, Recorded<PaymentRecord>> {
        &self.payments
    }

    pub fn actions(&self) -> &BTreeMap<Id, Recorded<ActionRecord>> {
        &self.actions
    }

    pub fn financed_orders(&self) -> &BTreeSet<Id> {
        &self.financed_orders
    }

    pub fn updates(&self) -> &BTreeMap<Id, Recorded<UpdateRecord>> {
        &self.updates
    }

    pub fn income_by_day(&self) -> &BTreeMap<Date, (Money, Money)> {
        &self.income_by_day
    }

    pub fn has_key(&self, key: &FactKey<'_>) -> bool {
        self.first_input(key).is_some()
    }

    /// `None` when this book has not seen the id; else the fingerprint of the first
    /// input with it (itself `None` when its fact predates fingerprints).
    pub fn first_input(&self, key: &FactKey<'_>) -> Option<Option<Fingerprint>> {
        match key {
            FactKey::Application(id) => self.applications.get(&Id::new(id)).map(|r| r.first_input),
            FactKey::Payment(id) => self.payments.get(&Id::new(id)).map(|r| r.first_input),
            FactKey::Action(id) => self.actions.get(&Id::new(id)).map(|r| r.first_input),
            FactKey::Update(id) => self.updates.get(&Id::new(id)).map(|r| r.first_input),
        }
    }

    /// Applies one fact. Never fails; see [`Outcome`]. Keeps the book's portfolio
    /// figures: the loans the fact concerns ([`crate::statement::concerns`], the same
    /// answer a loan's statement is built on) are taken out of them before and put back
    /// after; a day close, which concerns every loan, moves them itself (the day's
    /// income, and the principal of each loan whose bucket changed).
    pub fn apply(&mut self, config: &ProductConfig, fact: &Fact, sink: &mut impl Sink) -> Outcome {
        // The loans' places in `loans`: the one a fact names without allocating, a
        // borrower's (a merchant update) in a vector.
        let (one, many): (Option<usize>, Vec<usize>) = match crate::statement::concerns(fact, self) {
            crate::statement::Concerns::Book => {
                // A day close, which keeps the figures as it goes (it changes every
                // active loan: taking each out and in again would double its cost).
                return self.apply_fact(config, fact, sink);
            }
            crate::statement::Concerns::Nothing => (None, Vec::new()),
            crate::statement::Concerns::Loans(crate::statement::LoanIds::One(id)) => (self.loan_index.get(&Id::new(id)).copied(), Vec::new()),
            crate::statement::Concerns::Loans(ids) => (None, ids.iter().filter_map(|id| self.loan_index.get(&Id::new(id)).copied()).collect()),
        };
        let touched = one.into_iter().chain(many);
        for i in touched.clone() {
            self.totals.remove(&self.loans[i]);
        }
        // Loans are only ever added, at the end: those the fact disbursed follow `before`.
        let before = self.loans.len();
        let outcome = self.apply_fact(config, fact, sink);
        for i in touched.chain(before..self.loans.len()) {
            self.totals.add(&self.loans[i]);
        }
        for i in before..self.loans.len() {
            // A borrower's first loan makes it one of the borrowers with loans.
            if self.borrowers.get(&Id::new(&self.loans[i].borrower_id)).is_some_and(|b| b.loans.len() == 1) {
                self.totals.borrowers += 1;
            }
        }
        outcome
    }

    /// Whether the kept portfolio figures are those a count of every loan gives (the
    /// property tests check it at every fact).
    pub fn totals_are_kept(&self) -> bool {
        self.totals == crate::export::Totals::of(self)
    }

    fn apply_fact(&mut self, config: &ProductConfig, fact: &Fact, sink: &mut impl Sink) -> Outcome {
        match fact {
            Fact::Opened { date } => {
                if self.open.is_some() {
                    return Outcome::Duplicate;
                }
                self.open = Some(*date);
                Outcome::Applied
            }
            Fact::ApplicationDecided(decided) => self.apply_application(config, decided, sink),
            Fact::RepaymentAccepted { payment_id, loan_id, amount, fingerprint, .. } => {
                self.apply_repayment(payment_id, loan_id, *amount, *fingerprint, sink)
            }
            Fact::RepaymentRefused { payment_id, loan_id, reason, fingerprint, .. } => {
                let btree_map::Entry::Vacant(slot) = self.payments.entry(Id::new(payment_id)) else {
                    return Outcome::Duplicate;
                };
                let record = PaymentRecord::refused(payment_id, loan_id, *reason);
                if sink.enabled() {
                    sink.emit(Derived::Receipt(record.clone()));
                }
                slot.insert(Recorded::new(record, *fingerprint));
                Outcome::Applied
            }
            Fact::DayClosed { date } => self.close_day(config, *date, sink),
            Fact::ActionApplied { action_id, effect, fingerprint } => self.apply_action(action_id, effect, *fingerprint),
            Fact::ActionRefused { action_id, reason, fingerprint, .. } => {
                let btree_map::Entry::Vacant(slot) = self.actions.entry(Id::new(action_id)) else {
                    return Outcome::Duplicate;
                };
                let record = ActionRecord { action_id: action_id.clone(), applied: false, reason: Some(*reason) };
                slot.insert(Recorded::new(record, *fingerprint));
                Outcome::Applied
            }
            Fact::MerchantUpdateApplied(update) => self.apply_update(config, update, sink),
            Fact::PaymentSeen { payment_id, loan_id, seen } => {
                if sink.enabled() {
                    sink.emit(Derived::PaymentSeen { payment_id: payment_id.clone(), loan_id: loan_id.clone(), seen: *seen });
                }
                Outcome::Applied
            }
            Fact::MerchantUpdateRefused { update_id, borrower_id, reason, fingerprint } => {
                self.apply_update_refused(update_id, borrower_id, *reason, *fingerprint)
            }
        }
    }

    fn apply_application(&mut self, config: &ProductConfig, d: &ApplicationDecided, sink: &mut impl Sink) -> Outcome {
        // One search of each map: the entry found for the duplicate check is the one
        // filled in below (the key is needed anyway when the fact applies).
        let btree_map::Entry::Vacant(application) = self.applications.entry(Id::new(&d.application_id)) else {
            return Outcome::Duplicate;
        };
        let loan_slot = match &d.disbursement {
            Some(disb) => {
                let hash_map::Entry::Vacant(slot) = self.loan_index.entry(Id::new(&disb.loan_id)) else {
                    return Outcome::Ignored("approved application with reasons, or its loan exists");
                };
                if !d.reasons.is_empty() {
                    return Outcome::Ignored("approved application with reasons, or its loan exists");
                }
                Some((disb, slot))
            }
            None if d.reasons.is_empty() => return Outcome::Ignored("rejected application without a reason"),
            None => None,
        };
        let new_loan_id = loan_slot.as_ref().map(|(disb, _)| disb.loan_id.clone());
        // Most applications come from a borrower the book holds: one lookup, and an
        // insert only for a new borrower.
        match self.borrowers.get_mut(d.borrower_id.as_str()) {
            Some(borrower) => {
                borrower.credit_line = d.credit_line;
                borrower.score = d.score;
                borrower.loans.extend(new_loan_id);
            }
            None => {
                self.borrowers.insert(
                    Id::new(&d.borrower_id),
                    Borrower {
                        borrower_id: d.borrower_id.clone(),
                        credit_line: d.credit_line,
                        blacklisted: false,
                        malicious: false,
                        loans: new_loan_id.into_iter().collect(),
                        score: d.score,
                        on_time_loans: 0,
                        written_off: false,
                    },
                );
            }
        }
        let record = ApplicationRecord {
            application_id: d.application_id.clone(),
            borrower_id: d.borrower_id.clone(),
            approved: d.disbursement.is_some(),
            score: d.score,
            reasons: d.reasons.clone(),
        };
        application.insert(Recorded::new(record, d.fingerprint));
        if let Some((disb, slot)) = loan_slot {
            self.financed_orders.extend(disb.order_ids.iter().map(|order| Id::new(order)));
            let loan = Loan {
                loan_id: disb.loan_id.clone(),
                borrower_id: d.borrower_id.clone(),
                product: d.product,
                principal: disb.principal,
                disbursed_on: disb.disbursed_on,
                maturity_date: disb.maturity_date,
                daily_rate: disb.daily_rate.unwrap_or(config.terms(d.product).daily_rate),
                recalled: false,
                principal_outstanding: disb.principal,
                principal_repaid: Money::ZERO,
                interest_exact: Decimal::ZERO,
                penalty_exact: Decimal::ZERO,
                interest_accrued: Money::ZERO,
                penalty_accrued: Money::ZERO,
                interest_paid: Money::ZERO,
                penalty_paid: Money::ZERO,
                overpayment: Money::ZERO,
                recovered: Money::ZERO,
                dpd: 0,
                bucket: Bucket::Current,
                status: LoanStatus::Active,
                settled_on: None,
                written_off_principal: Money::ZERO,
            };
            if sink.enabled() {
                sink.emit(Derived::Disbursed {
                    loan_id: loan.loan_id.clone(),
                    borrower_id: loan.borrower_id.clone(),
                    product: loan.product,
                    principal: loan.principal,
                    disbursed_on: loan.disbursed_on,
                    maturity_date: loan.maturity_date,
                });
            }
            slot.insert(self.loans.len());
            self.loans.push(loan);
        }
        Outcome::Applied
    }

    fn apply_repayment(
        &mut self,
        payment_id: &str,
        loan_id: &str,
        amount: Money,
        fingerprint: Option<Fingerprint>,
        sink: &mut impl Sink,
    ) -> Outcome {
        let btree_map::Entry::Vacant(slot) = self.payments.entry(Id::new(payment_id)) else {
            return Outcome::Duplicate;
        };
        let Some(&index) = self.loan_index.get(loan_id) else {
            return Outcome::Ignored("repayment for a loan this book does not hold");
        };
        let today = self.open;
        let loan = &mut self.loans[index];
        let mut record = PaymentRecord {
            payment_id: payment_id.to_string(),
            loan_id: loan_id.to_string(),
            status: PaymentStatus::Applied,
            amount,
            penalty: Money::ZERO,
            interest: Money::ZERO,
            principal: Money::ZERO,
            overpayment: Money::ZERO,
            reason: None,
        };
        let mut cured = None;
        let mut on_time = false;
        match loan.status {
            LoanStatus::WrittenOff => {
                record.status = PaymentStatus::Recovery;
                loan.recovered = loan.recovered.plus(amount);
            }
            LoanStatus::Settled => {
                record.overpayment = amount;
                loan.overpayment = loan.overpayment.plus(amount);
            }
            LoanStatus::Active => {
                let mut rest = amount;
                record.penalty = rest.min(loan.penalty_owed());
                rest = rest.minus(record.penalty);
                record.interest = rest.min(loan.interest_owed());
                rest = rest.minus(record.interest);
                record.principal = rest.min(loan.principal_outstanding);
                rest = rest.minus(record.principal);
                record.overpayment = rest;
                loan.penalty_paid = loan.penalty_paid.plus(record.penalty);
                loan.interest_paid = loan.interest_paid.plus(record.interest);
                loan.principal_outstanding = loan.principal_outstanding.minus(record.principal);
                loan.principal_repaid = loan.principal_repaid.plus(record.principal);
                loan.overpayment = loan.overpayment.plus(record.overpayment);
                if loan.total_owed().is_zero() {
                    if loan.dpd > 0 {
                        cured = Some((loan.dpd, loan.bucket));
                    }
                    // On time: paid off by its maturity date, and not on the day it was
                    // lent (SPEC section 12).
                    on_time = loan.dpd == 0 && today.is_some_and(|d| d > loan.disbursed_on);
                    loan.status = LoanStatus::Settled;
                    loan.settled_on = today;
                    loan.dpd = 0;
                    loan.bucket = Bucket::Current;
                }
            }
        }
        loan.check_invariants();
        if on_time {
            let borrower = self.borrowers.get_mut(loan.borrower_id.as_str()).expect("invariant: a loan's borrower exists");
            borrower.on_time_loans += 1;
        }
        if sink.enabled() {
            if let Some((dpd, previous_bucket)) = cured {
                sink.emit(Derived::Overdue(OverdueNotice {
                    kind: NoticeKind::Cured,
                    loan_id: loan.loan_id.clone(),
                    borrower_id: loan.borrower_id.clone(),
                    date: today.unwrap_or(loan.disbursed_on),
                    dpd,
                    bucket: Bucket::Current,
                    previous_bucket,
                    principal_owed: Money::ZERO,
                    interest_owed: Money::ZERO,
                    penalty_owed: Money::ZERO,
                }));
            }
            sink.emit(Derived::Receipt(record.clone()));
        }
        slot.insert(Recorded::new(record, fingerprint));
        Outcome::Applied
    }

    fn close_day(&mut self, config: &ProductConfig, date: Date, sink: &mut impl Sink) -> Outcome {
        let Some(open) = self.open else {
            return Outcome::Ignored("day closed before the book was opened");
        };
        if date < open {
            return Outcome::Duplicate;
        }
        if date > open {
            return Outcome::Ignored("day closed out of order (a gap in the business dates)");
        }
        let multiplier = config.penalty_multiplier;
        let (mut interest_income, mut penalty_income) = (Money::ZERO, Money::ZERO);
        let mut to_blacklist: Vec<(usize, u32)> = Vec::new();
        for (index, loan) in self.loans.iter_mut().enumerate() {
            if loan.status != LoanStatus::Active {
                continue;
            }
            let p = loan.principal_outstanding.as_decimal();
            let rate = loan.daily_rate;
            let (mut interest, mut penalty) = (Money::ZERO, Money::ZERO);
            if !p.is_zero() {
                if date < loan.maturity_date {
                    loan.interest_exact += p * rate;
                    let total = Money::round(loan.interest_exact);
                    interest = total.minus(loan.interest_accrued);
                    loan.interest_accrued = total;
                } else {
                    loan.penalty_exact += p * rate * multiplier;
                    let total = Money::round(loan.penalty_exact);
                    penalty = total.minus(loan.penalty_accrued);
                    loan.penalty_accrued = total;
                }
            }
            interest_income = interest_income.plus(interest);
            penalty_income = penalty_income.plus(penalty);
            // An ACTIVE loan always owes something, so DPD counts from maturity.
            let previous = (loan.dpd, loan.bucket);
            loan.dpd = if date >= loan.maturity_date {
                u32::try_from(date.days_since(loan.maturity_date) + 1).expect("invariant: DPD fits u32")
            } else {
                0
            };
            loan.bucket = Bucket::of(loan.dpd, &config.buckets);
            if loan.bucket != previous.1 {
                self.totals.moved(previous.1, loan.bucket, loan.principal_outstanding);
            }
            if loan.dpd >= config.auto_blacklist_dpd && previous.0 < config.auto_blacklist_dpd {
                to_blacklist.push((index, loan.dpd));
            }
            if sink.enabled() {
                sink.emit(Derived::Accrual(Accrual {
                    loan_id: loan.loan_id.clone(),
                    borrower_id: loan.borrower_id.clone(),
                    date,
                    interest,
                    penalty,
                    interest_accrued: loan.interest_accrued,
                    penalty_accrued: loan.penalty_accrued,
                }));
                if loan.bucket != previous.1 {
                    sink.emit(Derived::Overdue(OverdueNotice {
                        kind: if previous.0 == 0 { NoticeKind::Overdue } else { NoticeKind::BucketChanged },
                        loan_id: loan.loan_id.clone(),
                        borrower_id: loan.borrower_id.clone(),
                        date,
                        dpd: loan.dpd,
                        bucket: loan.bucket,
                        previous_bucket: previous.1,
                        principal_owed: loan.principal_outstanding,
                        interest_owed: loan.interest_owed(),
                        penalty_owed: loan.penalty_owed(),
                    }));
                }
            }
        }
        for (index, dpd) in to_blacklist {
            let loan = &self.loans[index];
            let borrower = self.borrowers.get_mut(loan.borrower_id.as_str()).expect("invariant: a loan's borrower exists");
            if !borrower.blacklisted {
                borrower.blacklisted = true;
                if sink.enabled() {
                    sink.emit(Derived::AutoBlacklisted {
                        borrower_id: borrower.borrower_id.clone(),
                        loan_id: loan.loan_id.clone(),
                        dpd,
                        date,
                    });
                }
            }
        }
        self.totals.charged(interest_income, penalty_income);
        self.income_by_day.insert(date, (interest_income, penalty_income));
        self.open = Some(date.next());
        Outcome::Applied
    }

    fn apply_action(&mut self, action_id: &str, effect: &ActionEffect, fingerprint: Option<Fingerprint>) -> Outcome {
        if self.actions.contains_key(&Id::new(action_id)) {
            return Outcome::Duplicate;
        }
        match effect {
            ActionEffect::MarkedMalicious { borrower_id } | ActionEffect::Reinstated { borrower_id } => {
                let Some(borrower) = self.borrowers.get_mut(borrower_id.as_str()) else {
                    return Outcome::Ignored("collections action for a borrower this book does not hold");
                };
                if matches!(effect, ActionEffect::MarkedMalicious { .. }) {
                    borrower.malicious = true;
                    borrower.blacklisted = true;
                } else {
                    borrower.blacklisted = false;
                }
            }
            ActionEffect::WrittenOff { loan_id, .. } => {
                let Some(&index) = self.loan_index.get(loan_id.as_str()) else {
                    return Outcome::Ignored("write-off of a loan this book does not hold");
                };
                let loan = &mut self.loans[index];
                if loan.status != LoanStatus::Active {
                    return Outcome::Ignored("write-off of a loan that is not ACTIVE");
                }
                loan.status = LoanStatus::WrittenOff;
                loan.written_off_principal = loan.principal_outstanding;
                let borrower = self.borrowers.get_mut(loan.borrower_id.as_str()).expect("invariant: a loan's borrower exists");
                borrower.written_off = true;
            }
        }
        let record = ActionRecord { action_id: action_id.to_string(), applied: true, reason: None };
        self.actions.insert(Id::new(action_id), Recorded::new(record, fingerprint));
        Outcome::Applied
    }
}

/// An idempotency key of an input kind that can be re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKey<'a> {
    Application(&'a str),
    Payment(&'a str),
    Action(&'a str),
    Update(&'a str),
}
