//! The book writer: one writer per book. Partition k of ledger.commands holds every
//! input of book k (routed there by the intakes) and the book's open and day closes,
//! in one order; the writer that owns partition k in the `ledger-books` group decides
//! them one after the other against book k exactly as it stands, and appends the facts
//! to partition k of loan.events. So a decision always sees every fact before it in its
//! book (a loan decided after a day close is a loan of the next day), a batch of
//! decisions is as correct as one at a time, and a fact that does not fit the fold
//! really is corruption.
//!
//! The service crates are the deciders it calls ([`Handler::decide`]); it knows them by
//! their trait only. Their notices are published by their own publishers from
//! loan.events; a re-sent payment is recorded as a fact that changes nothing, so that
//! its answer is derived in its place too.
//!
//! The view it decides against is the fold of every partition of loan.events: its own
//! books exactly as it writes them, the others as far as they were read when the batch
//! began. Only a book's own state decides its borrowers' matters; the other books
//! answer the ledger-wide questions of SPEC section 9 (is this id or order used
//! anywhere?). Two inputs with one id decided at the same moment in two books can
//! both pass that check: ARCHITECTURE.md, "Global uniqueness", says what is left.
//!
//! Exactly once: the writer holds no state of its own beyond the fold. When it is
//! handed a book (at start or at a rebalance) it reads the book's partition of
//! loan.events to its end and learns from the facts' sources which inputs are decided:
//! per input partition, the highest offset that became a fact. A command whose origin is
//! at or below that is skipped: forwarded again by an intake that crashed before it
//! committed, or read again after a rebalance. Commands that left no fact (a duplicate
//! answered, a dead letter) are decided again to the same answer under the same id.
//!
//! What one command does ([`writer::decide`], [`Decided`]) is decided without I/O in
//! [`crate::writer`], the same functions the deterministic simulation drives
//! (tests/simulation.rs); this module reads, produces, commits and snapshots around it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ledger_core::handler::Handler;
use ledger_core::Fact;
use ledger_kafka::rdkafka::consumer::Consumer;
use ledger_kafka::rdkafka::message::OwnedMessage;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::rdkafka::Message;
use ledger_kafka::topics;
use ledger_proto::pb;
use tokio::sync::watch;
use tracing::Instrument;

use crate::follower::Follower;
use crate::group::{self, DEFAULT_BOUNDS};
use crate::writer::{self, CommandError, Decided, InputOutcome, Verdict};
use crate::{snapshot, source, Context, Result, RuntimeError};

/// The book writer's name (`loanctl run books`).
pub const NAME: &str = "books";
/// Its consumer group on ledger.commands.
pub const GROUP: &str = "ledger-books";

/// How many facts a writer appends to a book between two snapshots of it, unless the
/// environment variable [`SNAPSHOT_EVERY_VAR`] says otherwise. A restart folds at most
/// about this many facts of each book after its snapshot (plus what came while it was
/// down); a planned stop (SIGTERM) takes a snapshot of every book it owns.
pub const SNAPSHOT_EVERY: u64 = 100_000;
/// The environment variable that sets [`SNAPSHOT_EVERY`]; 0 turns snapshots off.
pub const SNAPSHOT_EVERY_VAR: &str = "LEDGER_SNAPSHOT_EVERY";

fn snapshot_every() -> u64 {
    std::env::var(SNAPSHOT_EVERY_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(SNAPSHOT_EVERY)
}

/// Runs the book writer until `shutdown` turns true. It decides with the context's
/// services that decide inputs (each names its [`ledger_core::handler::InputKind`]).
pub async fn run_books(ctx: Context, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let deciders = ctx.deciders().collect();
    let kafka = ctx.kafka.with_client_id(format!("{}-{NAME}", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let mut view = Follower::new(&kafka, "ledger-books-view", ctx.config.clone(), false)?;
    let restored = view.restore(&kafka, None).await?;
    let consumer = group::join(&kafka, GROUP, topics::COMMANDS)?;
    let mut writer = Writer {
        producer,
        deciders,
        view,
        decided: restored.iter().map(|(p, r)| (*p, Decided::from_entries(&r.meta.decided))).collect(),
        own: BTreeSet::new(),
        own_end: BTreeMap::new(),
        foreign: BTreeSet::new(),
        epoch: None,
        snapshots: Snapshots {
            // A producer of their own: megabytes of chunks must not queue ahead of facts.
            producer: Some(kafka.producer()?),
            every: snapshot_every(),
            config: ctx.config.clone(),
            slot: restored.iter().map(|(p, r)| (*p, r.slot.other())).collect(),
            ..Snapshots::default()
        },
    };
    writer.read_view().await?;
    tracing::info!(service = NAME, "started");
    let mut positions = group::Positions::new(topics::COMMANDS);
    let mut idle_since: Option<std::time::Instant> = None;
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            batch = group::receive(&consumer, DEFAULT_BOUNDS) => batch,
        };
        writer.take_over(consumer.context().owned(), batch.epoch).await?;
        if batch.messages.is_empty() {
            if positions.refresh(&consumer)? {
                writer.read_view().await?;
            }
            // Idle for a while, not a gap between two batches of a burst.
            if idle_since.get_or_insert_with(std::time::Instant::now).elapsed() >= IDLE_BEFORE_SNAPSHOT {
                writer.snapshot(Take::Idle).await?;
            }
            continue;
        }
        idle_since = None;
        writer.read_view().await?;
        let span = tracing::debug_span!("batch", stage = NAME, topic = topics::COMMANDS, messages = batch.messages.len());
        writer.decide_batch(&batch.messages).instrument(span).await?;
        for message in &batch.messages {
            positions.handled(message.partition(), message.offset());
        }
        positions.commit(&consumer)?;
        writer.snapshot(Take::Due).await?;
    }
    // A planned stop leaves a snapshot of every book this writer owns: the next start
    // folds nothing of them. Bounded, so that a broker that is down does not hold the
    // stop (the books are then folded from their last snapshot).
    match tokio::time::timeout(STOP_SNAPSHOTS, writer.snapshot(Take::All)).await {
        Ok(written) => written?,
        Err(_) => tracing::warn!(service = NAME, "the snapshots of the stop were not all written within {STOP_SNAPSHOTS:?}"),
    }
    tracing::info!(service = NAME, "stopped");
    Ok(())
}

/// Which books [`Writer::snapshot`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Those [`SNAPSHOT_EVERY`] facts behind.
    Due,
    /// The writer has nothing to decide: also those behind at all whose latest
    /// snapshot is [`SNAPSHOT_IDLE`] old (so a ledger between bursts restarts from
    /// where it stands).
    Idle,
    /// A planned stop: every book behind at all, waiting until they are written.
    All,
}

/// How long the writer must have had nothing to decide before it takes idle snapshots.
const IDLE_BEFORE_SNAPSHOT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a stop waits for its snapshots to be written.
const STOP_SNAPSHOTS: std::time::Duration = std::time::Duration::from_secs(10);

/// How old a book's latest snapshot must be before an idle writer takes another.
pub const SNAPSHOT_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The writer's snapshots of its own books.
#[derive(Default)]
struct Snapshots {
    producer: Option<FutureProducer>,
    /// Facts between two snapshots of a book (0: none are taken).
    every: u64,
    config: Arc<ledger_core::ProductConfig>,
    /// Per book, facts appended since its latest snapshot was taken.
    behind: BTreeMap<i32, u64>,
    /// Per book, the event id of the last fact this writer appended to it.
    last_event: BTreeMap<i32, String>,
    /// Per book, the slot its next snapshot goes to.
    slot: BTreeMap<i32, snapshot::Slot>,
    /// Per book, the snapshot being written (what it returns: its size and when it
    /// was taken).
    writing: BTreeMap<i32, tokio::task::JoinHandle<Result<(usize, i64)>>>,
    /// Per book, when its latest snapshot was taken by this writer.
    taken: BTreeMap<i32, std::time::Instant>,
}

struct Writer {
    producer: FutureProducer,
    deciders: Vec<&'static dyn Handler>,
    /// The fold of loan.events: the own books as written, the others as read.
    view: Follower,
    /// Per book, the inputs it has decided.
    decided: BTreeMap<i32, Decided>,
    /// The books this writer owns now.
    own: BTreeSet<i32>,
    /// Per own book, the offset after the last fact this writer appended to it.
    own_end: BTreeMap<i32, i64>,
    /// Own books another writer appended to since this one took them (a zombie of the
    /// previous owner; [`writer::follows_on`]): no snapshot of them is taken, and the
    /// next batch reads them again as books gained.
    foreign: BTreeSet<i32>,
    /// The group membership's epoch of the last take-over.
    epoch: Option<u64>,
    snapshots: Snapshots,
}

impl Writer {
    /// Takes a snapshot of the own books `take` says. A book is taken as it stands
    /// once every fact appended to it is acknowledged (between batches), cloned, and
    /// written by a task of its own while the writer goes on.
    async fn snapshot(&mut self, take: Take) -> Result<()> {
        let all = take == Take::All;
        if self.snapshots.every == 0 {
            return Ok(());
        }
        loop {
            self.collect_snapshots(all).await;
            let s = &mut self.snapshots;
            for book in self.own.iter().copied() {
                let behind = s.behind.get(&book).copied().unwrap_or(0);
                // Once per batch (not per fact: the gauge's label is a String).
                crate::metrics::snapshot_behind(book, behind);
                let due = match take {
                    Take::Due => behind >= s.every,
                    Take::Idle => behind >= s.every || s.taken.get(&book).is_none_or(|t| t.elapsed() >= SNAPSHOT_IDLE),
                    Take::All => true,
                };
                if behind == 0 || !due || s.writing.contains_key(&book) || self.foreign.contains(&book) {
                    continue;
                }
                let (Some(next_offset), Some(last_event_id)) = (self.own_end.get(&book), s.last_event.get(&book)) else { continue };
                let Some(state) = self.view.ledger().books().get(&(book as u32)) else { continue };
                let taken = snapshot::Taken {
                    book: state.clone(),
                    meta: ledger_proto::snapshot::SnapshotMeta {
                        book: book as u32,
                        next_offset: *next_offset,
                        decided: self.decided.get(&book).map(Decided::entries).unwrap_or_default(),
                    },
                    last_event_id: last_event_id.clone(),
                    taken_at_ms: crate::metrics::now_ms(),
                };
                let slot = s.slot.get(&book).copied().unwrap_or(snapshot::Slot::A);
                let Some(producer) = s.producer.clone() else { continue };
                let config = s.config.clone();
                s.behind.insert(book, 0);
                s.taken.insert(book, std::time::Instant::now());
                crate::metrics::snapshot_behind(book, 0);
                tracing::debug!(service = NAME, book, next_offset, ?slot, "taking a snapshot");
                let taken_at_ms = taken.taken_at_ms;
                s.writing.insert(book, tokio::spawn(async move { Ok((snapshot::write(&producer, taken, config, slot).await?, taken_at_ms)) }));
            }
            if !all || self.snapshots.writing.is_empty() {
                return Ok(());
            }
        }
    }

    /// Collects the snapshots written since the last look (with `wait`, waits for
    /// every one being written): the next snapshot of a book goes to the other slot.
    async fn collect_snapshots(&mut self, wait: bool) {
        let s = &mut self.snapshots;
        let books: Vec<i32> = s.writing.keys().copied().collect();
        for book in books {
            if !(wait || s.writing[&book].is_finished()) {
                continue;
            }
            let handle = s.writing.remove(&book).expect("listed");
            let slot = s.slot.get(&book).copied().unwrap_or(snapshot::Slot::A);
            match handle.await {
                Ok(Ok((bytes, taken_at_ms))) => {
                    tracing::info!(service = NAME, book, bytes, slot = ?slot, "snapshot written");
                    crate::metrics::snapshot_taken(book, taken_at_ms);
                    s.slot.insert(book, slot.other());
                }
                Ok(Err(error)) => tracing::warn!(service = NAME, book, error = %crate::error_chain(&error), "a snapshot could not be written; the next one is tried later"),
                Err(error) => tracing::warn!(service = NAME, book, %error, "a snapshot task failed"),
            }
        }
    }

    /// Reads what is new on loan.events (the other books' facts) into the view.
    async fn read_view(&mut self) -> Result<()> {
        loop {
            let applied = self.view.catch_up(10_000).await?;
            if applied.is_empty() {
                return Ok(());
            }
            for a in &applied {
                self.decided.entry(a.partition).or_default().note(&a.source);
            }
        }
    }

    /// Takes the books of a new assignment: each is read to its end first (its previous
    /// owner may have written to it up to the moment it gave it up).
    /// A rebalance (a new membership `epoch`) that leaves the writer the books it had
    /// may still have given them to another writer in between (two rebalances within
    /// one poll, or this member's session ended and it joined again): each is read on
    /// from the writer's own end then.
    async fn take_over(&mut self, owned: BTreeSet<i32>, epoch: u64) -> Result<()> {
        let moved = self.epoch != Some(epoch);
        if owned == self.own && self.foreign.is_empty() && !moved {
            return Ok(());
        }
        self.epoch = Some(epoch);
        // Past this writer's own facts first (applied when written), then the books it
        // gained from their previous owners, as any other book. A book another writer
        // appended to in between is read again instead (its own facts are copies to the
        // fold), kept or not.
        self.read_view().await?;
        for (partition, next) in &self.own_end {
            let read_to = self.view.positions().get(partition).copied().unwrap_or(0);
            if (moved || !owned.contains(partition)) && !self.foreign.contains(partition) && *next > read_to {
                self.view.skip_own_to(*partition, *next);
            }
        }
        for partition in &self.foreign {
            self.own_end.remove(partition);
            self.snapshots.last_event.remove(partition);
        }
        self.own_end.retain(|p, _| owned.contains(p));
        self.snapshots.behind.retain(|p, _| owned.contains(p));
        self.snapshots.last_event.retain(|p, _| owned.contains(p));
        let kept: BTreeSet<i32> = match moved {
            true => BTreeSet::new(),
            false => owned.intersection(&self.own).filter(|p| !self.foreign.contains(p)).copied().collect(),
        };
        self.view.set_own(kept)?;
        self.read_view().await?;
        self.foreign.clear();
        tracing::info!(service = NAME, books = ?owned, "writing these books");
        self.view.set_own(owned.clone())?;
        self.own = owned;
        Ok(())
    }

    /// Decides a batch of commands in order, each against its book as the decisions
    /// before it left it; appends the facts and answers; awaits every acknowledgement.
    async fn decide_batch(&mut self, messages: &[OwnedMessage]) -> Result<()> {
        let mut in_flight: Vec<DeliveryFuture> = Vec::with_capacity(messages.len());
        for message in messages {
            if self.own.contains(&message.partition()) {
                let span = tracing::debug_span!(
                    "command",
                    topic = topics::COMMANDS,
                    partition = message.partition(),
                    offset = message.offset(),
                    origin = tracing::field::Empty,
                    id = tracing::field::Empty
                );
                self.decide_one(message, &mut in_flight).instrument(span).await?;
            }
        }
        for delivery in in_flight {
            let delivered = delivery
                .await
                .map_err(|_| RuntimeError::Refused("delivery cancelled: the producer was dropped".into()))?
                .map_err(|(e, _)| e)?;
            let partition = delivered.partition;
            let read_to = self.view.positions().get(&partition).copied();
            if !writer::follows_on(self.own_end.get(&partition).copied(), read_to, delivered.offset) && self.foreign.insert(partition) {
                tracing::warn!(service = NAME, partition, offset = delivered.offset, "another writer appended to this book: it is read again before the next batch");
            }
            let end = self.own_end.entry(partition).or_insert(0);
            *end = (*end).max(delivered.offset + 1);
        }
        Ok(())
    }

    async fn decide_one(&mut self, message: &OwnedMessage, in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
        let (partition, offset) = (message.partition(), message.offset());
        let at = || source(topics::COMMANDS, partition, offset);
        let command = ledger_proto::decode::<pb::BookCommand>(message.payload().unwrap_or_default())
            .map_err(|e| RuntimeError::Corrupt(format!("{}: cannot read the command: {e}", at())))?;
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let input_timestamp_ms = command.input_timestamp_ms;
        let verdict = writer::decide(&self.deciders, self.view.ledger(), partition, self.decided.get(&partition), command)
            .map_err(|e| command_error(e, &at()))?;
        match verdict {
            Verdict::Control(fact) => self.append(partition, &key, fact, "", in_flight)?,
            Verdict::SentAgain => {}
            Verdict::Ignored(why) => tracing::warn!(partition, offset, "{why}"),
            Verdict::DecidedBefore => tracing::debug!(partition, offset, "decided before; skipped"),
            Verdict::Input(decided) => {
                let span = tracing::Span::current();
                if !span.is_disabled() {
                    span.record("origin", decided.origin.as_str());
                    span.record("id", decided.input.key().as_str());
                }
                match decided.outcome {
                    InputOutcome::DeadLetter(reason) => {
                        // Readable but undecidable (the ledger not open yet, a figure
                        // the score needs missing): dead-lettered as it came.
                        ledger_kafka::dead_letter(&self.producer, decided.topic, decided.partition, decided.offset, message.key(), Some(&decided.bytes), &reason)
                            .await?;
                        crate::metrics::dead_lettered(decided.topic);
                    }
                    InputOutcome::Seen { seen, answer } => {
                        crate::metrics::seen(decided.topic, seen);
                        // A re-sent input (DUPLICATE) or another input with a used id
                        // (ID_CONFLICT): recorded where its kind has an answer, so that
                        // the answer follows the first input's.
                        if let Some(fact) = answer {
                            self.append(partition, &key, fact, &decided.origin, in_flight)?;
                        }
                    }
                    InputOutcome::Fact(fact) => {
                        crate::metrics::decided(&fact, input_timestamp_ms);
                        self.append(partition, &key, fact, &decided.origin, in_flight)?
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies a decided fact to its book and queues it on the book's partition of
    /// loan.events, keyed as the command was (the key that chose the book).
    fn append(&mut self, partition: i32, key: &str, fact: Fact, origin: &str, in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
        let outcome = self.view.apply_own(partition, &fact);
        let event_id = writer::record(self.decided.entry(partition).or_default(), partition, &fact, origin, outcome)
            .map_err(|e| command_error(e, topics::EVENTS))?;
        *self.snapshots.behind.entry(partition).or_insert(0) += 1;
        self.snapshots.last_event.insert(partition, event_id.clone());
        let payload = ledger_proto::encode(&ledger_proto::loan_event(&fact, event_id, origin));
        in_flight.push(ledger_kafka::enqueue(&self.producer, topics::EVENTS, Some(partition), key, &payload)?);
        crate::metrics::produced(topics::EVENTS);
        Ok(())
    }
}

/// A command that cannot be decided, as the writer's error: a corrupt one says where it is.
fn command_error(error: CommandError, at: &str) -> RuntimeError {
    match error {
        CommandError::Corrupt(why) => RuntimeError::Corrupt(format!("{at}: {why}")),
        CommandError::Refused(why) => RuntimeError::Refused(why),
    }
}
