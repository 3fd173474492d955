//! projector: the read models loan.events is folded into, and the queries the HTTP API
//! serves.
//!
//! The runtime folds facts into a [`Ledger`] (the one fold of ledger-core), and after
//! applying them asks [`changes_for`] which rows they changed; it commits those rows
//! together with its consumed offsets in one [`ledger_store::StoreTree::commit`].
//! Rows are always rebuilt from the ledger's *current* state, never from the fact
//! itself, so the changes of a fact may be computed after later facts of the same batch
//! were applied: the batch is committed as a whole and its rows end up as the ledger is.
//! The one precondition: the ledger has folded every partition at least as far as the
//! rows already stored (after a restart, re-fold up to the stored positions before
//! computing rows again); see [`changes_for`]. A partitioned reader should call
//! [`changes_for_book`] with the partition it applied the fact to.
//!
//! The queries ([`export`], [`digest`], [`loan`], [`borrower`], [`portfolio`],
//! [`overdue`], and a loan's [`history`] and [`payoff`], folded from the facts the rows
//! keep for it with ledger-core's own fold) read only the rows, so a process that serves them needs no ledger in
//! memory; [`route`] maps HTTP requests onto them.
//!
//! This crate does no Kafka and no async: it is called by the runtime and tested
//! against real sled databases without a broker.

mod query;
mod route;
mod rows;

pub use query::{borrower, business_date, digest, export, history, loan, overdue, payoff, portfolio, BorrowerDetail, LoanHistory, QueryError};
pub use route::{media_type, route, served_while_not_ready, DASHBOARD, OPENAPI, ROUTES};
pub use rows::{changes_for, changes_for_book, keys, portfolio_rows, LogFact};

#[doc(no_inline)]
pub use ledger_core::Ledger;
