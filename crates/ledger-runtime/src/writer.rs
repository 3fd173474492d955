//! The book writer's decision, without the broker: what one command of a book's queue
//! does to the book, given the view it is decided against and which inputs the book
//! has decided ([`Decided`]). [`crate::books`] runs it between reading ledger.commands
//! and producing to loan.events; the deterministic simulation
//! (crates/ledger-runtime/tests/simulation.rs) runs the same functions over a simulated
//! log, with crashes, rebalances and zombies, so that the rule tested is the rule run.
//!
//! No rdkafka, no tokio, no clock here: a command and a view in, a [`Verdict`] out.

use std::borrow::Borrow;
use std::collections::HashMap;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Date, Decision, Fact, Input, Ledger, Outcome, Seen};
use ledger_proto::pb;

use crate::service::decode_input;
use crate::input_topic;

/// Which inputs a book has decided: input topic -> partition -> the highest offset that
/// became a fact of the book. Looked up once per command, without allocating.
///
/// A command whose origin is at or below it is skipped: forwarded again by an intake
/// that crashed before it committed, or read again after a rebalance or a restart.
/// Commands that left no fact (a duplicate answered with nothing, a dead letter) are
/// decided again to the same answer under the same id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decided(HashMap<String, HashMap<i32, i64>>);

impl Decided {
    /// Notes the source of a fact of this book ("topic/partition/offset"; an open's or
    /// a close's empty source notes nothing).
    pub fn note(&mut self, source: &str) {
        if let Some((topic, partition, offset)) = parse_origin(source) {
            let partitions = match self.0.get_mut(topic) {
                Some(partitions) => partitions,
                None => self.0.entry(topic.to_string()).or_default(),
            };
            let highest = partitions.entry(partition).or_insert(offset);
            *highest = (*highest).max(offset);
        }
    }

    /// Whether the input at `offset` of `topic`'s `partition` is decided.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.0.get(topic).and_then(|p| p.get(&partition)).is_some_and(|highest| offset <= *highest)
    }

    /// As a snapshot keeps it: (topic, partition, highest offset), in order.
    pub fn entries(&self) -> Vec<(String, i32, i64)> {
        let mut entries: Vec<(String, i32, i64)> =
            self.0.iter().flat_map(|(t, ps)| ps.iter().map(move |(p, o)| (t.clone(), *p, *o))).collect();
        entries.sort();
        entries
    }

    /// As a snapshot's meta says it ([`Decided::entries`]).
    pub fn from_entries(entries: &[(String, i32, i64)]) -> Decided {
        let mut decided = Decided::default();
        for (topic, partition, offset) in entries {
            decided.0.entry(topic.clone()).or_default().insert(*partition, *offset);
        }
        decided
    }
}

/// "topic/partition/offset" -> its three parts.
pub fn parse_origin(origin: &str) -> Option<(&str, i32, i64)> {
    let (rest, offset) = origin.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic, partition.parse().ok()?, offset.parse().ok()?))
}

/// What one command does to its book.
// A verdict lives for one command: boxing its fact would cost an allocation per command.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An open or a close the book takes: append this fact (its source is empty).
    Control(Fact),
    /// An open or a close the book has taken already (sent again): nothing to do.
    SentAgain,
    /// An open or a close the book cannot take (another date): warned, nothing else.
    Ignored(String),
    /// An input whose origin became a fact of the book already: skipped.
    DecidedBefore,
    /// An input decided.
    Input(InputDecision),
}

/// An input decided: where it came from and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDecision {
    pub kind: InputKind,
    pub input: Input,
    /// The input's message as it came (what a dead letter carries).
    pub bytes: Vec<u8>,
    /// "topic/partition/offset": the source of the fact it becomes.
    pub origin: String,
    /// The input topic and the partition and offset the input had there.
    pub topic: &'static str,
    pub partition: i32,
    pub offset: i64,
    pub outcome: InputOutcome,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputOutcome {
    /// The one fact it becomes (accepted or refused): append it.
    Fact(Fact),
    /// Its id was seen before: recorded by `answer` (appended) where its kind has an
    /// answer, else nothing.
    Seen { seen: Seen, answer: Option<Fact> },
    /// Readable but undecidable (the ledger not open yet, a figure the score needs
    /// missing): dead-lettered as it came, with this reason.
    DeadLetter(String),
}

/// A command that cannot be decided at all: the writer stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The command does not read (said without where it is; the caller adds that).
    Corrupt(String),
    /// This writer cannot decide it (no decider of its kind here; a decision that does
    /// not fit its own book: a bug).
    Refused(String),
}

/// Decides one command of book `book`'s queue against `view`, given what the book has
/// decided: the book writer's rule. `deciders` are the services (each finds its inputs
/// by [`Handler::decides`]).
pub fn decide<H: Borrow<dyn Handler>>(
    deciders: &[H],
    view: &Ledger,
    book: i32,
    decided: Option<&Decided>,
    command: pb::BookCommand,
) -> Result<Verdict, CommandError> {
    let open_date = view.books().get(&(book as u32)).and_then(|b| b.open);
    match command.command {
        None => Err(CommandError::Corrupt("a command with nothing in it".into())),
        Some(pb::book_command::Command::Open(open)) => {
            let date = parse_date(&open.date)?;
            Ok(match open_date {
                None => Verdict::Control(Fact::Opened { date }),
                Some(open) if open == date => Verdict::SentAgain,
                Some(open) => Verdict::Ignored(format!("open of {date} ignored: the book is open already ({open})")),
            })
        }
        Some(pb::book_command::Command::DayClose(close)) => {
            let date = parse_date(&close.date)?;
            Ok(match open_date {
                Some(open) if open == date => Verdict::Control(Fact::DayClosed { date }),
                Some(open) if open == date.next() => Verdict::SentAgain,
                open => Verdict::Ignored(format!("day close of {date} ignored: it is not the book's open date ({open:?})")),
            })
        }
        Some(pb::book_command::Command::Input(bytes)) => {
            let origin = command.origin;
            let Some((topic, partition, offset)) = parse_origin(&origin) else {
                return Err(CommandError::Corrupt(format!("the command's origin {origin:?} names no input")));
            };
            if decided.is_some_and(|d| d.contains(topic, partition, offset)) {
                return Ok(Verdict::DecidedBefore);
            }
            let Some(kind) = [InputKind::Application, InputKind::Repayment, InputKind::Collections, InputKind::MerchantUpdate]
                .into_iter()
                .find(|k| input_topic(*k) == topic)
            else {
                return Err(CommandError::Corrupt(format!("the command's origin {origin:?} is no input topic")));
            };
            let topic = input_topic(kind);
            let Some(decider) = deciders.iter().map(Borrow::borrow).find(|d| d.decides() == Some(kind)) else {
                return Err(CommandError::Refused(format!("no service here decides {topic}")));
            };
            let input = decode_input(kind, &bytes).map_err(CommandError::Corrupt)?;
            let outcome = match decider.decide(view, book as u32, &input) {
                Err(e) => InputOutcome::DeadLetter(e.to_string()),
                Ok(Decision::Seen(seen)) => InputOutcome::Seen { seen, answer: decider.answer_seen(&input, seen) },
                Ok(Decision::Fact(fact)) => InputOutcome::Fact(fact),
            };
            Ok(Verdict::Input(InputDecision { kind, input, bytes, origin, topic, partition, offset, outcome }))
        }
    }
}

/// After a decided fact was applied to its own book (with `outcome`): checks that it
/// fit, notes its source in what the book decided, and returns the event id it is
/// appended under.
pub fn record(decided: &mut Decided, book: i32, fact: &Fact, origin: &str, outcome: Outcome) -> Result<String, CommandError> {
    if outcome != Outcome::Applied {
        return Err(CommandError::Refused(format!("the decision {} does not fit its own book ({outcome:?}): a bug", fact.key())));
    }
    decided.note(origin);
    Ok(event_id(fact, book, origin))
}

/// The event id a fact of book `book` decided from `origin` is appended under: the
/// fact's key, per book for the facts written to every book, per input for a payment
/// seen again (each re-sent payment is a fact of its own).
pub fn event_id(fact: &Fact, book: i32, origin: &str) -> String {
    match fact {
        Fact::Opened { .. } | Fact::DayClosed { .. } => format!("{}@{book}", fact.key()),
        Fact::PaymentSeen { .. } => format!("seen:{origin}"),
        _ => fact.key(),
    }
}

/// Whether an own fact acknowledged at `offset` of its book follows on the writer's
/// previous own fact there (`own_end`, the offset after it) or, for the first since the
/// writer took the book, on what its view had read of the book (`read_to`). If not,
/// another writer appended in between (a zombie of the book's previous owner, whose
/// session the group ended while it still produced): the view's book is then not the
/// log's fold up to the writer's end, so it must not be snapshotted at that end nor
/// skipped to it, but read again.
pub fn follows_on(own_end: Option<i64>, read_to: Option<i64>, offset: i64) -> bool {
    own_end.or(read_to).is_none_or(|expected| expected == offset)
}

fn parse_date(text: &str) -> Result<Date, CommandError> {
    Date::parse(text).map_err(|e| CommandError::Corrupt(format!("the command's date {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_splits_into_topic_partition_and_offset() {
        assert_eq!(parse_origin("payments.repayments/3/1042"), Some(("payments.repayments", 3, 1042)));
        assert_eq!(parse_origin(""), None);
        assert_eq!(parse_origin("a/b/c"), None);
    }

    #[test]
    fn a_command_at_or_below_the_highest_decided_offset_is_skipped() {
        let mut decided = Decided::default();
        decided.note("loan.applications/0/7");
        decided.note("loan.applications/0/5");
        decided.note("");
        assert!(decided.contains("loan.applications", 0, 7));
        assert!(decided.contains("loan.applications", 0, 2));
        assert!(!decided.contains("loan.applications", 0, 8));
        assert!(!decided.contains("loan.applications", 1, 0));
        assert_eq!(Decided::from_entries(&decided.entries()), decided);
    }

    #[test]
    fn an_own_fact_after_another_writers_does_not_follow_on() {
        assert!(follows_on(None, Some(10), 10));
        assert!(follows_on(Some(12), Some(10), 12));
        assert!(!follows_on(None, Some(10), 11), "a zombie appended at 10 after the take-over read");
        assert!(!follows_on(Some(12), Some(10), 13));
        assert!(follows_on(None, None, 3));
    }
}
