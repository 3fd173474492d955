//! The ledger: the books of every partition, the fold over them, the ledger-wide
//! look-ups the services decide with (SPEC section 9: is an id seen anywhere, whose is a
//! loan, is an order financed), and the ledger's own decision of open and close_day.
//! The decisions that turn the services' inputs into facts are the service crates'
//! (`Handler::decide`): the view is what they decide against.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::ProductConfig;
use crate::date::Date;
use crate::fact::Fact;
use crate::fingerprint::Fingerprint;
use crate::handler::InputKind;
use crate::id::Id;
use crate::input::Input;
use crate::scoring::ScoreError;
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
    /// Asked of the wrong decider: a service (by name) or the ledger itself asked to
    /// decide an input of another kind. A composition that routes inputs by their kind
    /// never meets it.
    #[error("{0} decides no such input")]
    NotDecided(&'static str),
    /// No decider given decides this kind of input.
    #[error("no service given decides {0:?} inputs")]
    NoDecider(InputKind),
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

    /// The business date open in book `book` (None: the book has not opened, or the
    /// ledger has no such book). A service decides an input of that book on this date,
    /// where its fact will stand: the books of a live ledger close one by one, and a loan
    /// decided in a book that has closed day d is a loan of day d+1 whatever the other
    /// books say.
    pub fn open_in(&self, book: u32) -> Option<Date> {
        self.books.get(&book).and_then(|b| b.open)
    }

    /// The ledger's own decision: open and close_day in book `book`, on the date open
    /// in it. Every other input is a service's to decide (`Handler::decide`); it is
    /// refused here with [`InputError::NotDecided`].
    pub fn decide_control(&self, book: u32, input: &Input) -> Result<Decision, InputError> {
        let today = self.open_in(book);
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
            _ => Err(InputError::NotDecided("the ledger")),
        }
    }
}
