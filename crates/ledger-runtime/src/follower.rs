//! Follows loan.events: reads every partition from the beginning and folds each fact
//! into a `Ledger`, partition by partition (a partition is a book). Every service keeps
//! one: its view to decide against, and the source of the events it publishes.

use std::collections::{BTreeMap, HashMap};
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
    /// What the fold derived (empty unless the follower collects events).
    pub derived: Vec<Derived>,
}

/// A loan.events record that could not be read.
#[derive(Debug)]
pub struct Unreadable {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
    pub reason: String,
}

pub struct Follower {
    unreadable: Vec<Unreadable>,
    consumer: StreamConsumer,
    probe: OffsetProbe,
    ledger: Ledger,
    /// Next offset to read, per partition.
    positions: BTreeMap<i32, i64>,
    /// Fact key -> the input ("topic/partition/offset") it came from.
    sources: HashMap<String, String>,
    collect_events: bool,
    group: String,
    /// When the hint was last committed.
    hinted_at: Instant,
}

impl Follower {
    /// A follower of every partition of loan.events from the beginning, committing its
    /// positions (as a hint for `feed`) under `group`.
    pub fn new(kafka: &KafkaConfig, group: &str, config: Arc<ProductConfig>, collect_events: bool) -> Result<Follower> {
        let consumer = kafka.consumer(group)?;
        let probe = OffsetProbe::new(kafka)?;
        let partitions = probe.topic_partitions(topics::EVENTS)?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topics::EVENTS, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        Ok(Follower {
            consumer,
            probe,
            ledger: Ledger::new(config),
            unreadable: Vec::new(),
            positions: partitions.iter().map(|p| (*p, 0)).collect(),
            sources: HashMap::new(),
            collect_events,
            group: group.to_string(),
            hinted_at: Instant::now(),
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    pub fn partitions(&self) -> Vec<i32> {
        self.positions.keys().copied().collect()
    }

    /// The input a fact (by its idempotency key) came from, if it names one.
    pub fn source_of(&self, fact_key: &str) -> Option<&str> {
        self.sources.get(fact_key).map(String::as_str)
    }

    /// The end offsets of loan.events now.
    pub fn end_offsets(&self) -> Result<BTreeMap<i32, i64>> {
        let probe = &self.probe;
        Ok(tokio::task::block_in_place(|| probe.end_offsets(topics::EVENTS))?)
    }

    /// Reads and applies what loan.events holds up to its end offsets as of this call,
    /// at most `max` facts. Returns what it applied (empty when already caught up).
    pub async fn catch_up(&mut self, max: usize) -> Result<Vec<Applied>> {
        let ends = self.end_offsets()?;
        let applied = self.catch_up_to(&ends, max).await?;
        if applied.is_empty() {
            self.refresh_hint()?;
        }
        Ok(applied)
    }

    /// Like [`Follower::catch_up`], up to given end offsets.
    pub async fn catch_up_to(&mut self, ends: &BTreeMap<i32, i64>, max: usize) -> Result<Vec<Applied>> {
        let mut applied = Vec::new();
        while applied.len() < max && ends.iter().any(|(p, end)| self.positions.get(p).copied().unwrap_or(0) < *end) {
            let message = match tokio::time::timeout(RECEIVE_TIMEOUT, self.consumer.recv()).await {
                Err(_) => return Err(RuntimeError::Timeout(format!("reading {} (group {})", topics::EVENTS, self.group))),
                Ok(Ok(message)) => message,
                Ok(Err(e)) => {
                    // librdkafka reports passing trouble (a broker restart, a lost
                    // connection) here and recovers by itself: wait and read on.
                    tracing::warn!(group = %self.group, error = %e, "reading loan.events");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let (partition, offset) = (message.partition(), message.offset());
            self.positions.insert(partition, offset + 1);
            let decoded = ledger_proto::decode::<pb::LoanEvent>(message.payload().unwrap_or_default())
                .and_then(|event| {
                    let source = event.source.clone();
                    Fact::from_proto(event).map(|fact| (fact, source))
                });
            let (fact, source) = match decoded {
                Ok(x) => {
                    check_layout(&x.0, &message, self.positions.len())?;
                    x
                }
                Err(e) => {
                    // Only the ledger writes loan.events: a record it cannot read is a
                    // broken log. Every reader skips it the same way (the projector
                    // also dead-letters it), so all views stay equal.
                    tracing::error!(partition, offset, error = %e, "unreadable fact on loan.events; skipped");
                    if self.unreadable.len() < 10_000 {
                        self.unreadable.push(Unreadable {
                            partition,
                            offset,
                            payload: message.payload().unwrap_or_default().to_vec(),
                            reason: format!("cannot read loan.events: {e}"),
                        });
                    }
                    continue;
                }
            };
            let mut derived = Vec::new();
            let outcome = if self.collect_events {
                self.ledger.apply(partition as u32, &fact, &mut derived)
            } else {
                self.ledger.apply(partition as u32, &fact, &mut Discard)
            };
            if let Outcome::Ignored(why) = outcome {
                tracing::error!(partition, offset, key = %fact.key(), why, "fact does not fit the ledger; ignored");
            }
            if !source.is_empty() && outcome == Outcome::Applied {
                self.sources.insert(fact.key(), source);
            }
            applied.push(Applied { partition, offset, fact, outcome, derived });
        }
        Ok(applied)
    }

    /// The records skipped as unreadable since the last call.
    pub fn take_unreadable(&mut self) -> Vec<Unreadable> {
        std::mem::take(&mut self.unreadable)
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
        let mut tpl = TopicPartitionList::new();
        for (p, next) in &self.positions {
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

/// A keyed fact must sit on the partition Kafka's default partitioner gives its key
/// (the ledger's producers use murmur2): a fact elsewhere means the log was written
/// with another partitioner (the first release's ledgers used librdkafka's CRC32
/// default), and folding it would split a borrower's book in two. That stops the
/// reader. `Opened` and `DayClosed` are written to every partition on purpose.
fn check_layout(fact: &Fact, message: &ledger_kafka::rdkafka::message::BorrowedMessage<'_>, partitions: usize) -> Result<()> {
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
