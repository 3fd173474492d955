//! ledger-core: the loan ledger's shared rules (SPEC.md sections 2-8 and 12) as one pure,
//! deterministic fold, and the view every service decides against.
//!
//! Inputs are *decided* against the state into facts by the services (the service
//! crates implement [`handler::Handler::decide`]; the ledger decides only its own open
//! and close_day, [`Ledger::decide_control`]); facts are *applied* to the state
//! ([`Ledger::apply`]), which cannot fail and never re-decides. What the fold needs of a
//! decision (a score, a credit line, a loan's rate) the fact carries, so the core holds
//! the configuration of every rule but computes no decision of a service.
//! This crate does no I/O, reads no clock, has no async and knows nothing of Kafka,
//! sled or protobuf: the business date comes from the facts themselves.

pub mod config;
pub mod date;
pub mod export;
pub mod fact;
pub mod fingerprint;
pub mod handler;
pub mod id;
pub mod input;
pub mod ledger;
pub mod model;
pub mod money;
pub mod monitoring;
pub mod scenario;
pub mod scoring;
pub mod statement;
pub mod state;

pub use config::ProductConfig;
pub use date::Date;
pub use export::Export;
pub use fact::{ActionEffect, ApplicationDecided, Disbursement, Fact, UpdateApplied};
pub use fingerprint::Fingerprint;
pub use id::Id;
pub use input::Input;
pub use ledger::{Decision, InputError, Ledger, Seen};
pub use model::{ActionKind, Bucket, LoanStatus, Product, Reason};
pub use money::{round_half_up, Money};
pub use state::{Book, Derived, Discard, Outcome, Sink, FOLD_VERSION};
