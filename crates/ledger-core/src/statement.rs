//! A loan's statement and payoff (issue 9): every fact and posting of one loan, in the
//! order of its book, with the balances after each; and what settles it today.
//!
//! Both come from the fold itself, not from a second set of money rules: [`statement`]
//! applies the loan's own facts and its book's day closes, in log order, to a book that
//! holds only this loan (with [`Book::apply`], the function every reader folds with),
//! and turns what the fold derives at each fact (the disbursement, each day's accrual
//! posting, the receipts, the overdue notices, the recall) into entries. A loan's
//! numbers depend only on its own facts and the closes of its book, so the loan this
//! leaves is the ledger's loan, field for field, and the entries add up to it: the
//! principal disbursed less the principal paid is the principal outstanding, the
//! interest charged is `interest_accrued`, less the interest paid it is `interest_owed`,
//! and so on.

use serde::{Deserialize, Serialize};

use crate::config::ProductConfig;
use crate::date::Date;
use crate::fact::{ActionEffect, Fact};
use crate::model::{Bucket, LoanStatus};
use crate::money::Money;
use crate::state::{Book, Derived, Discard, Loan, NoticeKind, Outcome, PaymentRecord, PaymentStatus};

/// What an entry of a statement records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryKind {
    /// The loan was lent: `principal_disbursed`.
    Disbursement,
    /// A day's close: the day's interest or penalty posting (the change of the rounded
    /// total, possibly 0.00), and the DPD and bucket after it.
    Accrual,
    /// The close at which the loan became overdue (DPD 1, bucket M1).
    LoanOverdue,
    /// The close at which the loan moved to a later bucket.
    BucketChanged,
    /// A repayment and its allocation: penalty, interest, principal, overpayment.
    Payment,
    /// A repayment refused for a known loan (INVALID_AMOUNT): nothing changes.
    PaymentRefused,
    /// A payment settled the loan while it was overdue.
    LoanCured,
    /// A merchant update brought the maturity date forward (SPEC section 12).
    LoanRecalled,
    /// The collections team wrote the loan off.
    WriteOff,
    /// A payment on a written-off loan: `recovered`, nothing else changes.
    Recovery,
}

/// One line of a statement: what moved, and the loan after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The business date it belongs to (the closed date for a close).
    pub date: Date,
    pub kind: EntryKind,
    /// The payment, collections action or merchant update id, where there is one.
    pub reference: Option<String>,
    /// Why a payment was refused.
    pub reason: Option<String>,
    pub principal_disbursed: Money,
    pub interest_charged: Money,
    pub penalty_charged: Money,
    /// The amount received (a payment or a recovery).
    pub amount: Money,
    pub penalty_paid: Money,
    pub interest_paid: Money,
    pub principal_paid: Money,
    pub overpayment: Money,
    pub recovered: Money,
    /// The running balances after the entry.
    pub principal_outstanding: Money,
    pub interest_owed: Money,
    pub penalty_owed: Money,
    pub total_owed: Money,
    pub status: LoanStatus,
    pub dpd: u32,
    pub bucket: Bucket,
    pub maturity_date: Date,
}

/// A loan's statement: its entries in order and the loan they leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The business date open in the loan's book after its last fact.
    pub business_date: Date,
    pub entries: Vec<Entry>,
    /// The loan as the fold of its facts leaves it.
    pub loan: Loan,
}

/// What the borrower must pay to settle a loan on the open business date, by component,
/// in the order a payment is allocated (SPEC section 5). A payment is applied on the
/// open date before that date's close, and the close charges the day's interest (or
/// penalty) on the principal outstanding after every payment of the date (SPEC section
/// 4): paying `total` today settles the loan and adds nothing for today. After the
/// close of `date` the figure no longer holds (the day's interest or penalty is added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payoff {
    pub loan_id: String,
    pub status: LoanStatus,
    /// The open business date the figures hold for (until its close).
    pub date: Date,
    pub penalty: Money,
    pub interest: Money,
    pub principal: Money,
    pub total: Money,
    /// Whether paying `total` settles the loan: only an ACTIVE loan can be settled (a
    /// SETTLED loan owes nothing; a payment on a WRITTEN_OFF loan is a recovery, which
    /// settles nothing, so its figures are what it owed when it was written off).
    pub settles: bool,
}

/// Why the facts given do not make a statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("no disbursement of loan {0} among its facts")]
    NoDisbursement(String),
    /// A fact the loan's book applied does not fit the loan's own facts: the facts
    /// given are not the book's, in its order (a broken read model).
    #[error("fact {key} does not fit the facts of loan {loan_id}: {why}")]
    DoesNotFit { loan_id: String, key: String, why: &'static str },
}

/// The statement of `loan_id` from facts of its book in log order: its own facts (its
/// application, payments, write-off, and its borrower's merchant updates) and the
/// book's day closes. Facts before its disbursement and facts about anything else are
/// passed over, so the whole log of the book is a valid argument too.
pub fn statement<'a>(
    config: &ProductConfig,
    loan_id: &str,
    facts: impl IntoIterator<Item = &'a Fact>,
) -> Result<Statement, StatementError> {
    let mut book = Book::default();
    let mut disbursed = false;
    let mut entries = Vec::new();
    let mut derived = Vec::new();
    for fact in facts {
        if !disbursed {
            let Some(disbursed_on) = disbursement_date(fact, loan_id) else { continue };
            // The loan is decided and disbursed on the date open in its book.
            book.apply(config, &Fact::Opened { date: disbursed_on }, &mut Discard);
            disbursed = true;
        } else {
            match concerns(fact, &book) {
                Concerns::Book => {}
                Concerns::Loans(loans) if loans.contains(loan_id) => {}
                Concerns::Loans(_) | Concerns::Nothing => continue,
            }
        }
        entries.extend(apply(config, &mut book, loan_id, fact, &mut derived)?);
    }
    let loan = match book.loan(loan_id) {
        Some(loan) => loan.clone(),
        None => return Err(StatementError::NoDisbursement(loan_id.to_string())),
    };
    let business_date = book.open.expect("invariant: a book that holds a loan is open");
    Ok(Statement { business_date, entries, loan })
}

/// The payoff of `loan` on the open business date `date`.
pub fn payoff(loan: &Loan, date: Date) -> Payoff {
    let (penalty, interest, principal) = (loan.penalty_owed(), loan.interest_owed(), loan.principal_outstanding);
    let total = penalty.plus(interest).plus(principal);
    assert_eq!(total, loan.total_owed(), "invariant: the payoff of {} is what it owes", loan.loan_id);
    Payoff {
        loan_id: loan.loan_id.clone(),
        status: loan.status,
        date,
        penalty,
        interest,
        principal,
        total,
        settles: loan.status == LoanStatus::Active,
    }
}

/// The disbursement date when `fact` disburses `loan_id`.
fn disbursement_date(fact: &Fact, loan_id: &str) -> Option<Date> {
    match fact {
        Fact::ApplicationDecided(d) => d.disbursement.as_ref().filter(|x| x.loan_id == loan_id).map(|x| x.disbursed_on),
        _ => None,
    }
}

/// Whose statements a fact belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concerns<'a> {
    /// No loan's: it changes none of a loan's numbers (another borrower's matters, a
    /// refusal, a re-sent payment, the borrower's blacklist) or is the book's opening.
    Nothing,
    /// These loans' (a disbursement, a payment or a refusal naming a known loan, a
    /// write-off, a merchant update of the loans' borrower, which may recall them).
    Loans(LoanIds<'a>),
    /// Every loan of its book: a day close.
    Book,
}

/// The loans a fact concerns, borrowed (the fold asks for every fact it applies, so
/// nothing is allocated): one the fact names, or a borrower's loans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoanIds<'a> {
    One(&'a str),
    Of(&'a [String]),
}

impl<'a> LoanIds<'a> {
    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (one, many) = match self {
            LoanIds::One(id) => (Some(id), &[][..]),
            LoanIds::Of(ids) => (None, ids),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    pub fn contains(self, loan_id: &str) -> bool {
        self.iter().any(|id| id == loan_id)
    }
}

/// Whose statements `fact` belongs to, in `book` (the book it was applied to, which
/// knows a borrower's loans). A reader that keeps the facts of each statement keeps
/// each fact for these loans; [`statement`] applies exactly these.
pub fn concerns<'a>(fact: &'a Fact, book: &'a Book) -> Concerns<'a> {
    let loans = match fact {
        Fact::DayClosed { .. } => return Concerns::Book,
        Fact::ApplicationDecided(d) => match &d.disbursement {
            Some(x) => LoanIds::One(&x.loan_id),
            None => LoanIds::Of(&[]),
        },
        Fact::RepaymentAccepted { loan_id, .. } => LoanIds::One(loan_id),
        // A refusal for a known loan sits on its book; UNKNOWN_LOAN is for no loan.
        Fact::RepaymentRefused { loan_id, borrower_id: Some(_), .. } => LoanIds::One(loan_id),
        Fact::ActionApplied { effect: ActionEffect::WrittenOff { loan_id, .. }, .. } => LoanIds::One(loan_id),
        Fact::MerchantUpdateApplied(u) => LoanIds::Of(book.borrower(&u.borrower_id).map_or(&[][..], |b| &b.loans[..])),
        Fact::Opened { .. }
        | Fact::RepaymentRefused { .. }
        | Fact::ActionApplied { .. }
        | Fact::ActionRefused { .. }
        | Fact::MerchantUpdateRefused { .. }
        | Fact::PaymentSeen { .. } => return Concerns::Nothing,
    };
    Concerns::Loans(loans)
}

/// Applies one fact to the loan's book and returns its entries (none for a duplicate).
fn apply(
    config: &ProductConfig,
    book: &mut Book,
    loan_id: &str,
    fact: &Fact,
    derived: &mut Vec<Derived>,
) -> Result<Vec<Entry>, StatementError> {
    let date = book.open.expect("invariant: the loan's book is opened before its first fact");
    derived.clear();
    match book.apply(config, fact, derived) {
        Outcome::Applied => {}
        Outcome::Duplicate => return Ok(Vec::new()),
        Outcome::Ignored(why) => {
            return Err(StatementError::DoesNotFit { loan_id: loan_id.to_string(), key: fact.key(), why });
        }
    }
    let loan = book.loan(loan_id).expect("invariant: the loan exists once disbursed");
    let mut entries: Vec<Entry> = derived.iter().filter_map(|event| entry_of(event, date, loan)).collect();
    if let Fact::ActionApplied { action_id, effect: ActionEffect::WrittenOff { .. }, .. } = fact {
        let mut entry = blank(date, EntryKind::WriteOff, loan);
        entry.reference = Some(action_id.clone());
        entries.push(entry);
    }
    if let Fact::MerchantUpdateApplied(u) = fact {
        for entry in entries.iter_mut().filter(|e| e.kind == EntryKind::LoanRecalled) {
            entry.reference = Some(u.update_id.clone());
        }
    }
    // The fold announces a cure before the receipt of the payment that cured; the
    // statement shows the payment first.
    entries.sort_by_key(|e| e.kind == EntryKind::LoanCured);
    Ok(entries)
}

fn entry_of(event: &Derived, date: Date, loan: &Loan) -> Option<Entry> {
    let entry = match event {
        Derived::Disbursed { principal, .. } => {
            let mut e = blank(date, EntryKind::Disbursement, loan);
            e.principal_disbursed = *principal;
            e
        }
        Derived::Accrual(a) => {
            let mut e = blank(a.date, EntryKind::Accrual, loan);
            e.interest_charged = a.interest;
            e.penalty_charged = a.penalty;
            e
        }
        Derived::Overdue(n) => blank(
            n.date,
            match n.kind {
                NoticeKind::Overdue => EntryKind::LoanOverdue,
                NoticeKind::BucketChanged => EntryKind::BucketChanged,
                NoticeKind::Cured => EntryKind::LoanCured,
            },
            loan,
        ),
        Derived::Receipt(record) => receipt(record, date, loan),
        Derived::LoanRecalled(r) => blank(r.date, EntryKind::LoanRecalled, loan),
        // About the borrower, not the loan's numbers.
        Derived::RiskWarning(_) | Derived::AutoBlacklisted { .. } | Derived::PaymentSeen { .. } => return None,
    };
    Some(entry)
}

fn receipt(record: &PaymentRecord, date: Date, loan: &Loan) -> Entry {
    let kind = match record.status {
        PaymentStatus::Applied => EntryKind::Payment,
        PaymentStatus::Recovery => EntryKind::Recovery,
        PaymentStatus::Rejected => EntryKind::PaymentRefused,
    };
    let mut e = blank(date, kind, loan);
    e.reference = Some(record.payment_id.clone());
    e.reason = record.reason.map(|r| r.as_str().to_string());
    e.amount = record.amount;
    if record.status == PaymentStatus::Recovery {
        e.recovered = record.amount;
    } else {
        e.penalty_paid = record.penalty;
        e.interest_paid = record.interest;
        e.principal_paid = record.principal;
        e.overpayment = record.overpayment;
    }
    e
}

/// An entry that moves nothing, with the loan's balances as they are.
fn blank(date: Date, kind: EntryKind, loan: &Loan) -> Entry {
    Entry {
        date,
        kind,
        reference: None,
        reason: None,
        principal_disbursed: Money::ZERO,
        interest_charged: Money::ZERO,
        penalty_charged: Money::ZERO,
        amount: Money::ZERO,
        penalty_paid: Money::ZERO,
        interest_paid: Money::ZERO,
        principal_paid: Money::ZERO,
        overpayment: Money::ZERO,
        recovered: Money::ZERO,
        principal_outstanding: loan.principal_outstanding,
        interest_owed: loan.interest_owed(),
        penalty_owed: loan.penalty_owed(),
        total_owed: loan.total_owed(),
        status: loan.status,
        dpd: loan.dpd,
        bucket: loan.bucket,
        maturity_date: loan.maturity_date,
    }
}
