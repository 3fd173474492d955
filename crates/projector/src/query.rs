//! Queries over the rows of one [`StoreTree`]: what the HTTP API and `loanctl` serve.

use std::sync::Arc;

use ledger_core::export::{digest_of, loan_view, BorrowerView, ExactAccrual, Export, LoanView, PortfolioReport};
use ledger_core::statement::{self, Entry, Payoff, Statement};
use ledger_core::{Bucket, Date, Fact, Ledger, ProductConfig};
use ledger_store::{StoreError, StoreTree};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rows::{keys, LogFact};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// What was asked for does not exist: `loan X not found`.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("row {key:?} is not valid: {why}")]
    Corrupt { key: String, why: String },
    /// A whole-state read (export, digest) kept overlapping with commits.
    #[error("the read models changed during each of {0} attempts to read them at one position; try again")]
    Busy(usize),
}

/// A borrower as the API shows it: its export view plus the views of its loans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BorrowerDetail {
    #[serde(flatten)]
    pub borrower: BorrowerView,
    /// Sorted by loan id.
    pub loans: Vec<LoanView>,
}

/// A loan's statement as the API shows it: every entry in order, and the loan they add
/// up to (its view, as `/v1/loans/{id}` shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanHistory {
    pub loan_id: String,
    pub borrower_id: String,
    /// The business date open in the loan's book.
    pub business_date: Date,
    pub entries: Vec<Entry>,
    pub loan: LoanView,
}

/// How many times a whole-state read is retried when a commit overlapped it.
const CONSISTENT_READ_ATTEMPTS: usize = 5;

/// The canonical export (SPEC section 11) reassembled from the rows. Lists come out
/// sorted by id because sled's keys are; the portfolio is the `portfolio` row's figures.
///
/// sled reads are not snapshots: the export is read between two identical readings of
/// the tree's positions, so that it is the state at one position, not a mix of two
/// batches (a tree whose commits never move positions gets no such guarantee).
pub fn export(tree: &StoreTree) -> Result<Export, QueryError> {
    consistent(tree, export_once)
}

/// The state digest, as [`Ledger::digest`] computes it for the same state.
pub fn digest(tree: &StoreTree) -> Result<String, QueryError> {
    consistent(tree, |tree| {
        let export = export_once(tree)?;
        let exact: Vec<ExactAccrual> = list(tree, keys::EXACT)?;
        let orders = ids(tree, keys::ORDER.as_bytes())?;
        Ok(digest_of(export, exact, orders))
    })
}

/// The open business date (`None` before the ledger was opened).
pub fn business_date(tree: &StoreTree) -> Result<Option<Date>, QueryError> {
    Ok(row(tree, keys::BUSINESS_DATE.as_bytes())?.flatten())
}

pub fn loan(tree: &StoreTree, loan_id: &str) -> Result<LoanView, QueryError> {
    row(tree, &keys::of(keys::LOAN, loan_id))?.ok_or_else(|| not_found("loan", loan_id))
}

/// A borrower and its loans.
pub fn borrower(tree: &StoreTree, borrower_id: &str) -> Result<BorrowerDetail, QueryError> {
    let borrower: BorrowerView =
        row(tree, &keys::of(keys::BORROWER, borrower_id))?.ok_or_else(|| not_found("borrower", borrower_id))?;
    let mut loans = Vec::new();
    for candidate in ids(tree, &keys::borrower_loans_prefix(borrower_id))? {
        // The prefix of "B1" also covers the index rows of a borrower "B1/x", whose
        // rest ("x/L7") need not name a loan of B1, or any loan at all.
        let view: Option<LoanView> = row(tree, &keys::of(keys::LOAN, &candidate))?;
        if let Some(view) = view.filter(|v| v.borrower_id == borrower_id) {
            loans.push(view);
        }
    }
    Ok(BorrowerDetail { borrower, loans })
}

/// The portfolio figures and report (SPEC section 8). Before anything was stored, the
/// report of an empty ledger.
pub fn portfolio(tree: &StoreTree) -> Result<PortfolioReport, QueryError> {
    match row(tree, keys::PORTFOLIO.as_bytes())? {
        Some(report) => Ok(report),
        None => Ok(Ledger::new(Arc::new(ProductConfig::default())).portfolio_report()),
    }
}

/// The overdue loans (ACTIVE, DPD > 0) of one bucket, sorted by loan id; or, with
/// `None`, of every bucket: M1, M2, M3, then NPL. `Some(Bucket::Current)` is empty.
pub fn overdue(tree: &StoreTree, bucket: Option<Bucket>) -> Result<Vec<LoanView>, QueryError> {
    let buckets: Vec<Bucket> = match bucket {
        Some(b) => vec![b],
        None => keys::OVERDUE_BUCKETS.to_vec(),
    };
    let mut loans = Vec::new();
    for bucket in buckets.into_iter().filter(|b| *b != Bucket::Current) {
        for loan_id in ids(tree, &keys::overdue_prefix(bucket))? {
            loans.push(loan_row(tree, &loan_id)?);
        }
    }
    Ok(loans)
}

/// A loan's statement (ledger_core::statement), folded from the facts the rows kept for
/// it and its book's day closes.
pub fn history(tree: &StoreTree, loan_id: &str) -> Result<LoanHistory, QueryError> {
    let (statement, view) = consistent(tree, |tree| statement_of(tree, loan_id))?;
    Ok(LoanHistory {
        loan_id: view.loan_id.clone(),
        borrower_id: view.borrower_id.clone(),
        business_date: statement.business_date,
        entries: statement.entries,
        loan: view,
    })
}

/// What settles a loan on the open business date of its book (ledger_core::statement).
pub fn payoff(tree: &StoreTree, loan_id: &str) -> Result<Payoff, QueryError> {
    let (statement, _) = consistent(tree, |tree| statement_of(tree, loan_id))?;
    Ok(statement::payoff(&statement.loan, statement.business_date))
}

/// The statement of a loan and its stored view, which the statement's fold must leave
/// exactly: the rows of one loan kept two ways must agree.
fn statement_of(tree: &StoreTree, loan_id: &str) -> Result<(Statement, LoanView), QueryError> {
    let view = loan(tree, loan_id)?;
    let corrupt = |key: &[u8], why: String| QueryError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), why };
    let config: ProductConfig = row(tree, keys::CONFIG.as_bytes())?
        .ok_or_else(|| corrupt(keys::CONFIG.as_bytes(), "missing: rebuild the read models (loanctl replay)".into()))?;
    let prefix = keys::loan_facts_prefix(loan_id);
    let own: Vec<LogFact> = list_bytes(tree, &prefix)?.into_iter().filter(|f: &LogFact| f.loan_id.as_deref() == Some(loan_id)).collect();
    // Its book is where it was disbursed (its facts all sit on its borrower's partition).
    let disbursed = own.iter().find(|f| matches!(&f.fact, Fact::ApplicationDecided(d) if d.disbursement.is_some()));
    let Some(&LogFact { partition, offset: from, .. }) = disbursed else {
        let why = "no disbursement is kept for the loan: rebuild the read models (loanctl replay)";
        return Err(corrupt(&prefix, why.into()));
    };
    let mut facts: Vec<LogFact> = own.into_iter().filter(|f| f.partition == partition).collect();
    let closes: Vec<LogFact> = list_bytes(tree, &keys::closes_prefix(partition))?;
    facts.extend(closes.into_iter().filter(|f| f.offset > from));
    facts.sort_by_key(|f| f.offset);
    let statement = statement::statement(&config, loan_id, facts.iter().map(|f| &f.fact)).map_err(|e| corrupt(&prefix, e.to_string()))?;
    if loan_view(&statement.loan) != view {
        return Err(corrupt(&keys::of(keys::LOAN, loan_id), "the fold of the loan's kept facts leaves another loan".into()));
    }
    Ok((statement, view))
}

fn export_once(tree: &StoreTree) -> Result<Export, QueryError> {
    Ok(Export {
        business_date: business_date(tree)?,
        loans: list(tree, keys::LOAN)?,
        borrowers: list(tree, keys::BORROWER)?,
        applications: list(tree, keys::APPLICATION)?,
        payments: list(tree, keys::PAYMENT)?,
        collections_actions: list(tree, keys::ACTION)?,
        merchant_updates: list(tree, keys::UPDATE)?,
        portfolio: portfolio(tree)?.figures,
    })
}

fn consistent<T>(tree: &StoreTree, read: impl Fn(&StoreTree) -> Result<T, QueryError>) -> Result<T, QueryError> {
    for _ in 0..CONSISTENT_READ_ATTEMPTS {
        let before = tree.positions()?;
        let value = read(tree)?;
        if tree.positions()? == before {
            return Ok(value);
        }
    }
    Err(QueryError::Busy(CONSISTENT_READ_ATTEMPTS))
}

/// A loan an index row points at: it must exist (both are written in one batch).
fn loan_row(tree: &StoreTree, loan_id: &str) -> Result<LoanView, QueryError> {
    let key = keys::of(keys::LOAN, loan_id);
    row(tree, &key)?.ok_or_else(|| QueryError::Corrupt {
        key: String::from_utf8_lossy(&key).into_owned(),
        why: "an index row points at it, but it does not exist".into(),
    })
}

fn row<T: DeserializeOwned>(tree: &StoreTree, key: &[u8]) -> Result<Option<T>, QueryError> {
    tree.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Every row under `prefix`, decoded, in key order.
fn list<T: DeserializeOwned>(tree: &StoreTree, prefix: &str) -> Result<Vec<T>, QueryError> {
    list_bytes(tree, prefix.as_bytes())
}

fn list_bytes<T: DeserializeOwned>(tree: &StoreTree, prefix: &[u8]) -> Result<Vec<T>, QueryError> {
    tree.scan_prefix(prefix)
        .map(|r| {
            let (key, value) = r?;
            decode(&key, &value)
        })
        .collect()
}

/// The rest of every key under `prefix` (an id), in key order.
fn ids(tree: &StoreTree, prefix: &[u8]) -> Result<Vec<String>, QueryError> {
    tree.scan_prefix(prefix)
        .map(|r| {
            let (key, _) = r?;
            String::from_utf8(key[prefix.len()..].to_vec()).map_err(|_| QueryError::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                why: "the id is not UTF-8".into(),
            })
        })
        .collect()
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, QueryError> {
    serde_json::from_slice(value)
        .map_err(|e| QueryError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), why: e.to_string() })
}

fn not_found(kind: &'static str, id: &str) -> QueryError {
    QueryError::NotFound { kind, id: id.to_string() }
}
