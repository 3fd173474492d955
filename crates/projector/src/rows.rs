//! The rows: what each fact changed, rebuilt from the ledger's current state.
//!
//! Row layout (keys ASCII prefixes with ids appended raw, so that sled's bytewise key
//! order is the export's order by id; values JSON unless said otherwise):
//!
//! | key | value |
//! |---|---|
//! | `loan/{loan_id}` | [`LoanView`](ledger_core::export::LoanView) |
//! | `exact/{loan_id}` | [`ExactAccrual`] (the exact accumulators the digest needs) |
//! | `borrower/{borrower_id}` | [`BorrowerView`](ledger_core::export::BorrowerView) |
//! | `borrower_loans/{borrower_id}/{loan_id}` | empty (index: a borrower's loans) |
//! | `application/{application_id}` | [`ApplicationView`](ledger_core::export::ApplicationView) |
//! | `payment/{payment_id}` | [`PaymentView`](ledger_core::export::PaymentView) |
//! | `action/{action_id}` | [`ActionView`](ledger_core::export::ActionView) |
//! | `update/{update_id}` | [`UpdateView`](ledger_core::export::UpdateView) |
//! | `order/{order_id}` | empty (a financed order) |
//! | `overdue/{M1,M2,M3,NPL}/{loan_id}` | empty (an ACTIVE loan with DPD > 0, in its bucket) |
//! | `meta/business_date` | the open business date, or null |
//! | `meta/config` | the [`ProductConfig`] the facts are folded with (a statement is a fold) |
//! | `portfolio` | [`ledger_core::export::PortfolioReport`] |
//! | `loan_fact/{loan_id}/{partition}/{offset}` | [`LogFact`]: a fact of the loan's statement |
//! | `close/{partition}/{offset}` | [`LogFact`]: a day close of the book (every loan's statement) |
//!
//! Partitions and offsets in keys are zero-padded decimals (10 and 20 digits), so that
//! key order is log order. Which facts are a loan's is
//! [`ledger_core::statement::concerns`]; a statement is folded from them and the book's
//! closes by [`ledger_core::statement::statement`] when it is asked for.
//!
//! The store keeps its positions under `pos/` in the same tree; no row here starts with
//! that prefix.

use std::collections::BTreeSet;

use ledger_core::export::{action_view, application_view, borrower_view, loan_view, payment_view, update_view, ExactAccrual};
use ledger_core::fact::{ActionEffect, Fact};
use ledger_core::state::{Book, Borrower, Loan};
use ledger_core::statement::{concerns, Concerns};
use ledger_core::{Ledger, LoanStatus, ProductConfig};
use ledger_store::Changes;
use serde::{Deserialize, Serialize};

/// A fact kept for statements, with its place in loan.events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFact {
    /// The loan whose statement it is kept for (`None` for a day close, kept once for
    /// every loan of the book).
    pub loan_id: Option<String>,
    pub partition: u32,
    pub offset: i64,
    pub fact: Fact,
}

/// Row keys. Ids are appended raw: an id may contain any character, '/' included.
pub mod keys {
    use ledger_core::Bucket;

    pub const LOAN: &str = "loan/";
    pub const EXACT: &str = "exact/";
    pub const BORROWER: &str = "borrower/";
    pub const BORROWER_LOANS: &str = "borrower_loans/";
    pub const APPLICATION: &str = "application/";
    pub const PAYMENT: &str = "payment/";
    pub const ACTION: &str = "action/";
    pub const UPDATE: &str = "update/";
    pub const ORDER: &str = "order/";
    pub const OVERDUE: &str = "overdue/";
    pub const BUSINESS_DATE: &str = "meta/business_date";
    pub const CONFIG: &str = "meta/config";
    pub const PORTFOLIO: &str = "portfolio";
    pub const LOAN_FACT: &str = "loan_fact/";
    pub const CLOSE: &str = "close/";

    /// The buckets a loan can be overdue in, in key (and DPD) order.
    pub const OVERDUE_BUCKETS: [Bucket; 4] = [Bucket::M1, Bucket::M2, Bucket::M3, Bucket::Npl];

    /// `{prefix}{id}`.
    pub fn of(prefix: &str, id: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(prefix.len() + id.len());
        key.extend_from_slice(prefix.as_bytes());
        key.extend_from_slice(id.as_bytes());
        key
    }

    /// `overdue/{BUCKET}/`.
    pub fn overdue_prefix(bucket: Bucket) -> Vec<u8> {
        format!("{OVERDUE}{}/", bucket.as_str()).into_bytes()
    }

    /// `overdue/{BUCKET}/{loan_id}`.
    pub fn overdue(bucket: Bucket, loan_id: &str) -> Vec<u8> {
        let mut key = overdue_prefix(bucket);
        key.extend_from_slice(loan_id.as_bytes());
        key
    }

    /// `borrower_loans/{borrower_id}/`.
    pub fn borrower_loans_prefix(borrower_id: &str) -> Vec<u8> {
        let mut key = of(BORROWER_LOANS, borrower_id);
        key.push(b'/');
        key
    }

    /// `loan_fact/{loan_id}/`. As for `borrower_loans`, the prefix of "L1" also covers the
    /// rows of a loan "L1/x": readers check the row's own loan_id.
    pub fn loan_facts_prefix(loan_id: &str) -> Vec<u8> {
        let mut key = of(LOAN_FACT, loan_id);
        key.push(b'/');
        key
    }

    /// `loan_fact/{loan_id}/{partition}/{offset}`.
    pub fn loan_fact(loan_id: &str, partition: u32, offset: i64) -> Vec<u8> {
        let mut key = loan_facts_prefix(loan_id);
        key.extend_from_slice(format!("{partition:010}/{offset:020}").as_bytes());
        key
    }

    /// `close/{partition}/`.
    pub fn closes_prefix(partition: u32) -> Vec<u8> {
        format!("{CLOSE}{partition:010}/").into_bytes()
    }

    /// `close/{partition}/{offset}`.
    pub fn close(partition: u32, offset: i64) -> Vec<u8> {
        format!("{CLOSE}{partition:010}/{offset:020}").into_bytes()
    }

    /// `borrower_loans/{borrower_id}/{loan_id}`. Because ids may contain '/', a scan of
    /// one borrower's prefix can also meet loans of a borrower whose id extends it
    /// ("B1" and "B1/x"): readers check the loan's own borrower_id.
    pub fn borrower_loan(borrower_id: &str, loan_id: &str) -> Vec<u8> {
        let mut key = borrower_loans_prefix(borrower_id);
        key.extend_from_slice(loan_id.as_bytes());
        key
    }
}

/// The rows that changed when `fact` was applied to `ledger`.
///
/// Call it after the apply; later facts may have been applied too (see the crate docs).
/// A day close rewrites the ACTIVE loans of every book; [`changes_for_book`] limits that
/// to the book the fact was applied to, and is what a partitioned reader should use.
///
/// Precondition (for this function, [`changes_for_book`] and [`portfolio_rows`]): the
/// ledger has folded every partition at least as far as the positions whose rows are
/// already stored. A process that stored only what it folded always satisfies it; one
/// that restarts must first re-fold every partition up to its stored position before it
/// computes rows again. Otherwise rows that span books (a day close's loans here, the
/// business date, the portfolio) would be rebuilt from a book still behind what is
/// stored, and overwrite newer rows with older ones.
pub fn changes_for(ledger: &Ledger, fact: &Fact) -> Changes {
    changes(ledger, Scope::Ledger, fact)
}

/// As [`changes_for`], for the fact at `offset` of `partition`, applied to that
/// partition's book (`ledger.apply(partition, fact, ..)`): rows are looked up in that
/// book only, and a day close rewrites only that book's loans, which is all it changed
/// (with N partitions, [`changes_for`] rewrites every ACTIVE loan N times per business
/// day). It also keeps the fact for the statements it belongs to (the `loan_fact/` and
/// `close/` rows), which need its place in the log: [`changes_for`] keeps none.
pub fn changes_for_book(ledger: &Ledger, partition: u32, offset: i64, fact: &Fact) -> Changes {
    match ledger.books().get(&partition) {
        Some(book) => {
            let mut changes = changes(ledger, Scope::Book(book), fact);
            statement_rows(&mut changes, book, partition, offset, fact);
            changes
        }
        // Nothing was applied to a book that does not exist.
        None => Changes::new(),
    }
}

/// Keeps `fact` for the statements it belongs to. Rewriting a row (a fact folded again
/// after a restart) writes the same bytes under the same key.
fn statement_rows(changes: &mut Changes, book: &Book, partition: u32, offset: i64, fact: &Fact) {
    let kept = |loan_id: Option<&str>| LogFact { loan_id: loan_id.map(str::to_string), partition, offset, fact: fact.clone() };
    match concerns(fact, book) {
        Concerns::Nothing => {}
        Concerns::Book => changes.put(keys::close(partition, offset), json(&kept(None))),
        Concerns::Loans(loans) => {
            for loan_id in loans.iter() {
                changes.put(keys::loan_fact(loan_id, partition, offset), json(&kept(Some(loan_id))));
            }
        }
    }
}

/// The `portfolio` row: the portfolio report over the whole ledger (same precondition
/// as [`changes_for`]). A scan of every loan to compute, so the runtime writes it once
/// per batch.
pub fn portfolio_rows(ledger: &Ledger) -> Changes {
    let mut changes = Changes::new();
    changes.put(keys::PORTFOLIO, json(&ledger.portfolio_report()));
    changes
}

/// Where the rows of a fact are looked up.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Every book (a fact whose partition is not known).
    Ledger,
    /// The book the fact was applied to.
    Book(&'a Book),
}

fn changes(ledger: &Ledger, scope: Scope<'_>, fact: &Fact) -> Changes {
    let mut rows = Rows { ledger, scope, changes: Changes::new() };
    match fact {
        Fact::Opened { .. } => rows.business_date(),
        Fact::ApplicationDecided(d) => {
            rows.application(&d.application_id);
            rows.borrower(&d.borrower_id);
            if let Some(disbursement) = &d.disbursement {
                rows.loan(&disbursement.loan_id);
                for order_id in &disbursement.order_ids {
                    rows.order(order_id);
                }
            }
        }
        Fact::RepaymentAccepted { payment_id, loan_id, .. } => {
            rows.payment(payment_id);
            rows.loan(loan_id);
        }
        // A refused payment changes no loan (and an unknown loan's id may later be
        // disbursed on another partition: its rows are not this fact's to write).
        Fact::RepaymentRefused { payment_id, .. } => rows.payment(payment_id),
        Fact::DayClosed { .. } => {
            match scope {
                Scope::Book(book) => rows.day_closed(book),
                Scope::Ledger => ledger.books().values().for_each(|book| rows.day_closed(book)),
            }
            rows.business_date();
        }
        Fact::ActionApplied { action_id, effect, .. } => {
            rows.action(action_id);
            match effect {
                ActionEffect::MarkedMalicious { borrower_id } | ActionEffect::Reinstated { borrower_id } => {
                    rows.borrower(borrower_id)
                }
                ActionEffect::WrittenOff { loan_id, .. } => rows.loan(loan_id),
            }
        }
        Fact::ActionRefused { action_id, .. } => rows.action(action_id),
        // An accepted update rescores the borrower and may recall any of its loans.
        Fact::MerchantUpdateApplied(u) => {
            rows.update(&u.update_id);
            rows.borrower_and_loans(&u.borrower_id);
        }
        Fact::MerchantUpdateRefused { update_id, .. } => rows.update(update_id),
        // A re-sent payment changes nothing; it is a fact only for its answer.
        Fact::PaymentSeen { .. } => {}
    }
    rows.changes
}

struct Rows<'a> {
    ledger: &'a Ledger,
    scope: Scope<'a>,
    changes: Changes,
}

impl<'a> Rows<'a> {
    /// The first book in scope for which `find` finds something.
    fn find<T>(&self, find: impl Fn(&'a Book) -> Option<T>) -> Option<T> {
        match self.scope {
            Scope::Book(book) => find(book),
            Scope::Ledger => self.ledger.books().values().find_map(find),
        }
    }

    /// The business date, and the configuration the facts are folded with (written
    /// with the open date, so that every read model that has a loan has it).
    fn business_date(&mut self) {
        self.changes.put(keys::BUSINESS_DATE, json(&self.ledger.business_date()));
        let config: &ProductConfig = self.ledger.config();
        self.changes.put(keys::CONFIG, json(config));
    }

    fn application(&mut self, id: &str) {
        if let Some(a) = self.find(|b| b.applications().get(id).map(|r| &r.record)) {
            self.changes.put(keys::of(keys::APPLICATION, id), json(&application_view(a)));
        }
    }

    fn payment(&mut self, id: &str) {
        if let Some(p) = self.find(|b| b.payments().get(id).map(|r| &r.record)) {
            self.changes.put(keys::of(keys::PAYMENT, id), json(&payment_view(p)));
        }
    }

    fn action(&mut self, id: &str) {
        if let Some(a) = self.find(|b| b.actions().get(id).map(|r| &r.record)) {
            self.changes.put(keys::of(keys::ACTION, id), json(&action_view(a)));
        }
    }

    fn update(&mut self, id: &str) {
        if let Some(u) = self.find(|b| b.updates().get(id).map(|r| &r.record)) {
            self.changes.put(keys::of(keys::UPDATE, id), json(&update_view(u)));
        }
    }

    fn borrower_and_loans(&mut self, id: &str) {
        if let Some((book, b)) = self.find(|book| book.borrower(id).map(|b| (book, b))) {
            for loan in book.loans_of(b) {
                self.loan_rows(loan);
            }
            self.borrower_row(book, b);
        }
    }

    fn order(&mut self, order_id: &str) {
        if self.find(|b| b.financed_orders().contains(order_id).then_some(())).is_some() {
            self.changes.put(keys::of(keys::ORDER, order_id), Vec::new());
        }
    }

    fn borrower(&mut self, id: &str) {
        if let Some((book, b)) = self.find(|book| book.borrower(id).map(|b| (book, b))) {
            self.borrower_row(book, b);
        }
    }

    /// A loan and its borrower (whose outstanding principal follows the loan's).
    fn loan(&mut self, id: &str) {
        if let Some((book, loan)) = self.find(|book| book.loan(id).map(|l| (book, l))) {
            self.loan_rows(loan);
            if let Some(b) = book.borrower(&loan.borrower_id) {
                self.borrower_row(book, b);
            }
        }
    }

    /// A day close changes the accruals, DPD and bucket of every ACTIVE loan of the book
    /// and can blacklist their borrowers; nothing else (no loan changes status).
    fn day_closed(&mut self, book: &'a Book) {
        let mut borrowers = BTreeSet::new();
        for loan in book.loans().iter().filter(|l| l.status == LoanStatus::Active) {
            self.loan_rows(loan);
            borrowers.insert(loan.borrower_id.as_str());
        }
        for id in borrowers {
            if let Some(b) = book.borrower(id) {
                self.borrower_row(book, b);
            }
        }
    }

    fn loan_rows(&mut self, loan: &Loan) {
        let id = loan.loan_id.as_str();
        self.changes.put(keys::of(keys::LOAN, id), json(&loan_view(loan)));
        let exact = ExactAccrual {
            loan_id: loan.loan_id.clone(),
            interest_exact: loan.interest_exact,
            penalty_exact: loan.penalty_exact,
        };
        self.changes.put(keys::of(keys::EXACT, id), json(&exact));
        self.changes.put(keys::borrower_loan(&loan.borrower_id, id), Vec::new());
        let overdue_in = loan.is_overdue().then_some(loan.bucket);
        for bucket in keys::OVERDUE_BUCKETS {
            let key = keys::overdue(bucket, id);
            if overdue_in == Some(bucket) {
                self.changes.put(key, Vec::new());
            } else {
                self.changes.delete(key);
            }
        }
    }

    fn borrower_row(&mut self, book: &Book, b: &Borrower) {
        self.changes.put(keys::of(keys::BORROWER, &b.borrower_id), json(&borrower_view(self.ledger.config(), book, b)));
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("read model rows serialize")
}
