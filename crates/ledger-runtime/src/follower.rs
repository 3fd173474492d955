//! Follows loan.events: reads its partitions (every one, or a given few) from the
//! beginning and folds each fact into a `Ledger`, partition by partition (a partition
//! is a book). The book writer restores its books with one, the publishers derive
//! their notices with one, the projector builds its read models with one.
//!
//! A broken log stops the reader: a record that cannot be read, a fact that does not
//! fit the fold at its position, a keyed fact on another partition than its key's.
//! Nothing is skipped: skipping a fact would fork the state of every reader.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::{Derived, Discard, Fact, Ledger, Outcome, ProductConfig};
use ledger_kafka::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::{pb, FromProto};

use crate::{Result, RuntimeError};

/// How long a catch-up waits for a message the end offsets promised.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// One fact as it was applied.
#[derive(Debug)]
pub struct Applied {
    pub partition: i32,
    pub offset: i64,
    pub fact: Fact,
    pub outcome: Outcome,
    /// The input it was decided from, "topic/partition/offset" (empty for a command).
    pub source: String,
    /// What the fold derived (empty unless the follower collects events).
    pub derived: Vec<Derived>,
    /// The record's CreateTime in milliseconds (0 when it has none).
    pub timestamp_ms: i64,
}

pub struct Follower {
    consumer: StreamConsumer,
    probe: OffsetProbe,
    ledger: Ledger,
    /// Next offset to read, per partition.
    positions: BTreeMap<i32, i64>,
    /// How many partitions loan.events has (the layout check needs it).
    partition_count: usize,
    /// Partitions whose facts this process writes and applies itself
    /// ([`Follower::apply_own`]): read past, not applied again.
    own: BTreeSet<i32>,
    collect_events: bool,
    group: String,
    /// When the hint was last committed.
    hinted_at: Instant,
    /// Whether a catch-up that finds nothing new commits the hint again (off for the
    /// projector, whose hint must not pass what its store holds).
    auto_hint: bool,
    /// A record [`Follower::wait_readable`] received, read first by the next catch-up.
    peeked: Option<ledger_kafka::rdkafka::message::OwnedMessage>,
}

impl Follower {
    /// A follower of every partition of loan.events from the beginning, committing its
    /// positions (as a hint for `feed`) under `group`.
    pub fn new(kafka: &KafkaConfig, group: &str, config: Arc<ProductConfig>, collect_events: bool) -> Result<Follower> {
        Follower::of_partitions(kafka, group, config, collect_events, None)
    }

    /// A follower of the given partitions of loan.events (every one when `None`) from
    /// the beginning.
    pub fn of_partitions(
        kafka: &KafkaConfig,
        group: &str,
        config: Arc<ProductConfig>,
        collect_events: bool,
        only: Option<&[i32]>,
    ) -> Result<Follower> {
        let consumer = kafka.consumer(group)?;
        let probe = OffsetProbe::new(kafka)?;
        let all = probe.topic_partitions(topics::EVENTS)?;
        let partition_count = all.len();
        let partitions: Vec<i32> = match only {
            Some(only) => all.into_iter().filter(|p| only.contains(p)).collect(),
            None => all,
        };
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topics::EVENTS, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        Ok(Follower {
            consumer,
            probe,
            ledger: Ledger::new(config),
            positions: partitions.iter().map(|p| (*p, 0)).collect(),
            partition_count,
            own: BTreeSet::new(),
            collect_events,
            group: group.to_string(),
            hinted_at: Instant::now(),
            auto_hint: true,
            peeked: None,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Restores each followed book that has a usable snapshot on ledger.snapshots and
    /// moves its position to the offset the snapshot reflects; the others are folded
    /// from the beginning. With `at_most`, only a snapshot at or before the offset it
    /// gives the partition (a reader that must see every fact after that offset: the
    /// projector writes rows from its stored positions on). Call it before reading
    /// anything. Returns what was restored.
    pub async fn restore(&mut self, kafka: &KafkaConfig, at_most: Option<&BTreeMap<i32, i64>>) -> Result<BTreeMap<i32, crate::snapshot::Restored>> {
        let started = Instant::now();
        let partitions = self.partitions();
        let mut restored = crate::snapshot::read_latest(kafka, &partitions, self.ledger.config()).await?;
        if let Some(at_most) = at_most {
            restored.retain(|p, r| r.meta.next_offset <= at_most.get(p).copied().unwrap_or(0));
        }
        if restored.is_empty() {
            return Ok(restored);
        }
        self.consumer.assign(&crate::snapshot::assignment(&partitions, &restored)?)?;
        for (p, r) in restored.iter_mut() {
            self.ledger.restore_book(*p as u32, std::mem::take(&mut r.book));
            self.positions.insert(*p, r.meta.next_offset);
        }
        let at: BTreeMap<i32, i64> = restored.iter().map(|(p, r)| (*p, r.meta.next_offset)).collect();
        tracing::info!(group = %self.group, books = restored.len(), ?at, took_ms = started.elapsed().as_millis() as u64, "books restored from their snapshots");
        Ok(restored)
    }

    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    pub fn partitions(&self) -> Vec<i32> {
        self.positions.keys().copied().collect()
    }

    /// Marks the partitions whose facts the caller writes from now on and applies with
    /// [`Follower::apply_own`]. Catch up first: what a partition held before it became
    /// one's own is applied only by reading it.
    /// Own partitions are paused: no other process writes them, so a catch-up need not
    /// wait for them. When one stops being own, the follower reads it on from where it
    /// paused: its own facts read again are duplicates to the fold.
    pub fn set_own(&mut self, own: BTreeSet<i32>) -> Result<()> {
        let list = |partitions: Vec<&i32>| -> Result<TopicPartitionList> {
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                tpl.add_partition(topics::EVENTS, *p);
            }
            Ok(tpl)
        };
        let gained = list(own.difference(&self.own).collect())?;
        let lost = list(self.own.difference(&own).collect())?;
        if gained.count() > 0 {
            self.consumer.pause(&gained)?;
        }
        if lost.count() > 0 {
            self.consumer.resume(&lost)?;
        }
        self.own = own;
        Ok(())
    }

    /// Before an own partition is given up: its next offset is `next` (past the caller's
    /// own facts, which are applied already), so that it is not read again. Reading it
    /// again would be correct (the fold counts the copies as duplicates), only slower;
    /// so a seek the client refuses is no error.
    pub fn skip_own_to(&mut self, partition: i32, next: i64) {
        if !self.own.contains(&partition) {
            return;
        }
        match self.consumer.seek(topics::EVENTS, partition, Offset::Offset(next), Duration::from_secs(5)) {
            Ok(()) => {
                self.positions.insert(partition, next);
            }
            Err(error) => tracing::debug!(partition, %error, "could not skip past own facts; they are read again"),
        }
    }

    /// Applies a fact the caller is appending to one of its own partitions.
    pub fn apply_own(&mut self, partition: i32, fact: &Fact) -> Outcome {
        self.ledger.apply(partition as u32, fact, &mut Discard)
    }

    /// The end offsets of the followed partitions of loan.events now (not the own ones,
    /// which the caller writes itself).
    pub fn end_offsets(&self) -> Result<BTreeMap<i32, i64>> {
        if self.positions.keys().all(|p| self.own.contains(p)) {
            return Ok(BTreeMap::new());
        }
        let probe = &self.probe;
        let mut ends = tokio::task::block_in_place(|| probe.end_offsets(topics::EVENTS))?;
        ends.retain(|p, _| self.positions.contains_key(p) && !self.own.contains(p));
        Ok(ends)
    }

    /// Reads and applies what loan.events holds up to its end offsets as of this call,
    /// at most `max` facts. Returns what it applied (empty when already caught up).
    pub async fn catch_up(&mut self, max: usize) -> Result<Vec<Applied>> {
        let ends = self.end_offsets()?;
        let applied = self.catch_up_to(&ends, max).await?;
        if applied.is_empty() && self.auto_hint {
            self.refresh_hint()?;
        }
        Ok(applied)
    }

    /// Like [`Follower::catch_up`], up to given end offsets.
    pub async fn catch_up_to(&mut self, ends: &BTreeMap<i32, i64>, max: usize) -> Result<Vec<Applied>> {
        let mut applied = Vec::new();
        let mut read = 0;
        while applied.len() < max && ends.iter().any(|(p, end)| self.positions.get(p).copied().unwrap_or(0) < *end) {
            if let Some(message) = self.peeked.take() {
                read += usize::from(self.split().1.take(&message, &mut applied)?);
                continue;
            }
            let (consumer, reader) = self.split();
            let message = match tokio::time::timeout(RECEIVE_TIMEOUT, consumer.recv()).await {
                Err(_) => return Err(RuntimeError::Timeout(format!("reading {} (group {})", topics::EVENTS, reader.group))),
                Ok(Ok(message)) => message,
                Ok(Err(e)) => {
                    // librdkafka reports passing trouble (a broker restart, a lost
                    // connection) here and recovers by itself: wait and read on.
                    tracing::warn!(group = %reader.group, error = %e, "reading loan.events");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            read += usize::from(reader.take(&message, &mut applied)?);
        }
        crate::metrics::consumed(topics::EVENTS, &self.group, read);
        for (partition, end) in ends {
            crate::metrics::lag(&self.group, topics::EVENTS, *partition, end - self.positions.get(partition).copied().unwrap_or(0));
        }
        Ok(applied)
    }

    /// Waits up to `timeout` for a record to arrive, and keeps it for the next
    /// catch-up: an idle reader wakes when the log grows, without asking the broker
    /// for end offsets in a loop. Returns whether one is there.
    pub async fn wait_readable(&mut self, timeout: Duration) -> bool {
        if self.peeked.is_some() {
            return true;
        }
        match tokio::time::timeout(timeout, self.consumer.recv()).await {
            Ok(Ok(message)) => {
                self.peeked = Some(message.detach());
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(group = %self.group, error = %e, "reading loan.events");
                false
            }
            Err(_) => false,
        }
    }

    /// The consumer, and the parts that apply what it received (a received record
    /// borrows the consumer).
    fn split(&mut self) -> (&StreamConsumer, Reader<'_>) {
        let reader = Reader {
            positions: &mut self.positions,
            own: &self.own,
            ledger: &mut self.ledger,
            collect_events: self.collect_events,
            partition_count: self.partition_count,
            group: &self.group,
        };
        (&self.consumer, reader)
    }

    /// Catches up completely (in bounded steps), discarding what was applied.
    pub async fn catch_up_fully(&mut self) -> Result<()> {
        loop {
            if self.catch_up(10_000).await?.is_empty() {
                return Ok(());
            }
        }
    }

    /// Commits the positions to Kafka under the follower's group: only a hint (for
    /// `feed` and for monitoring); the positions that count are stored in sled.
    pub fn commit_hint(&mut self) -> Result<()> {
        let positions = self.positions.clone();
        self.commit_hint_of(&positions)
    }

    /// Commits `positions` as the hint (the caller's own, which may trail what the
    /// follower has read), and no longer commits a hint by itself when idle.
    pub fn commit_hint_of(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
        self.auto_hint = false;
        let mut tpl = TopicPartitionList::new();
        for (p, next) in positions {
            if *next > 0 {
                tpl.add_partition_offset(topics::EVENTS, *p, Offset::Offset(*next))?;
            }
        }
        if tpl.count() > 0 {
            commit_hint(&self.consumer, &tpl);
        }
        self.hinted_at = Instant::now();
        Ok(())
    }

    /// Commits the hint again when [`HINT_REFRESH`] has passed since the last one: an
    /// asynchronous commit that fails (a broker restarting) is not retried by
    /// librdkafka, and a reader with nothing new to read would otherwise never heal it.
    pub fn refresh_hint(&mut self) -> Result<()> {
        if self.hinted_at.elapsed() >= HINT_REFRESH {
            self.commit_hint()?;
        }
        Ok(())
    }

    /// [`Follower::refresh_hint`] with the caller's positions.
    pub fn refresh_hint_of(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
        if self.hinted_at.elapsed() >= HINT_REFRESH {
            self.commit_hint_of(positions)?;
        }
        Ok(())
    }
}

/// The parts of a follower that apply a record (apart from its consumer, which a
/// received record borrows).
struct Reader<'a> {
    positions: &'a mut BTreeMap<i32, i64>,
    own: &'a BTreeSet<i32>,
    ledger: &'a mut Ledger,
    collect_events: bool,
    partition_count: usize,
    group: &'a str,
}

impl Reader<'_> {
    /// Applies one record read; whether it was one of the followed partitions'.
    fn take<M: Message>(self, message: &M, applied: &mut Vec<Applied>) -> Result<bool> {
        let (partition, offset) = (message.partition(), message.offset());
        if !self.positions.contains_key(&partition) {
            return Ok(false);
        }
        self.positions.insert(partition, offset + 1);
        if self.own.contains(&partition) {
            // Written by this process's book writer, which applied it already.
            return Ok(true);
        }
        let (fact, source) = read_fact(message)?;
        check_layout(&fact, message, self.partition_count)?;
        let at = || crate::source(topics::EVENTS, partition, offset);
        let mut derived = Vec::new();
        let outcome = if self.collect_events {
            self.ledger.apply(partition as u32, &fact, &mut derived)
        } else {
            self.ledger.apply(partition as u32, &fact, &mut Discard)
        };
        if let Outcome::Ignored(why) = outcome {
            tracing::error!(partition, offset, key = %fact.key(), why, "fact does not fit the ledger");
            return Err(RuntimeError::Corrupt(format!("{}: the fact {} does not fit the book at its position: {why}", at(), fact.key())));
        }
        let timestamp_ms = message.timestamp().to_millis().unwrap_or(0);
        applied.push(Applied { partition, offset, fact, outcome, source, derived, timestamp_ms });
        Ok(true)
    }
}

/// How often an idle reader commits its hint again (see [`Follower::refresh_hint`]).
pub const HINT_REFRESH: Duration = Duration::from_secs(1);

/// Commits `tpl` asynchronously as a hint. A refused commit (no coordinator during a
/// broker restart) is no error: the positions that count are in sled, and the hint is
/// committed again soon.
pub fn commit_hint(consumer: &StreamConsumer, tpl: &TopicPartitionList) {
    if let Err(error) = consumer.commit(tpl, CommitMode::Async) {
        tracing::debug!(%error, "committing a position hint failed; it is committed again later");
    }
}

/// Reads one record of loan.events: its fact and source. A record that cannot be read
/// is a broken log (only the ledger writes loan.events), or a fact of a kind this
/// build does not know yet: the reader stops.
pub(crate) fn read_fact<M: Message>(message: &M) -> Result<(Fact, String)> {
    let (partition, offset) = (message.partition(), message.offset());
    ledger_proto::decode::<pb::LoanEvent>(message.payload().unwrap_or_default())
        .and_then(|event| {
            let source = event.source.clone();
            Fact::from_proto(event).map(|fact| (fact, source))
        })
        .map_err(|e| {
            tracing::error!(partition, offset, error = %e, "unreadable fact on loan.events");
            RuntimeError::Corrupt(format!(
                "{}: cannot read the fact: {e}; is this loanctl older than the one that wrote it?",
                crate::source(topics::EVENTS, partition, offset)
            ))
        })
}

/// A keyed fact must sit on the partition Kafka's default partitioner gives its key
/// (the ledger's producers use murmur2): a fact elsewhere means the log was written
/// with another partitioner (the first release's ledgers used librdkafka's CRC32
/// default), and folding it would split a borrower's book in two. That stops the
/// reader. `Opened` and `DayClosed` are written to every partition on purpose.
pub(crate) fn check_layout<M: Message>(fact: &Fact, message: &M, partitions: usize) -> Result<()> {
    if matches!(fact, Fact::Opened { .. } | Fact::DayClosed { .. }) {
        return Ok(());
    }
    let (Some(key), Ok(count)) = (message.key(), i32::try_from(partitions)) else {
        return Ok(());
    };
    let wanted = ledger_kafka::partition_for_key(key, count);
    if wanted == message.partition() {
        return Ok(());
    }
    tracing::error!(partition = message.partition(), offset = message.offset(), wanted, "fact on the wrong partition of loan.events");
    Err(RuntimeError::Corrupt(format!(
        "{}/{}/{}: a fact keyed {:?} belongs on partition {wanted} (murmur2, Kafka's default partitioner); this \
         loan.events was written with another partitioner (the first release's ledgers were) and cannot be folded: \
         start a new ledger (README, \"Upgrading from the first release\")",
        topics::EVENTS,
        message.partition(),
        message.offset(),
        String::from_utf8_lossy(key)
    )))
}
