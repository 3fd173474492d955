//! Queries over the rows of one [`StoreTree`]: what the HTTP API and `loanctl` serve.

use std::sync::Arc;

use ledger_core::export::{digest_of, BorrowerView, ExactAccrual, Export, LoanView, PortfolioReport};
use ledger_core::{Bucket, Date, Ledger, ProductConfig};
use ledger_store::{StoreError, StoreTree};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rows::keys;

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
    tree.scan_prefix(prefix.as_bytes())
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
