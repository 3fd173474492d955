//! Consumer groups: which partitions this instance owns, and batches of what arrives.
//!
//! Every instance of a service joins the service's consumer group, and Kafka hands
//! each partition to one member. The group uses an eager assignor (librdkafka's
//! `range`): at a rebalance every member gives up all of its partitions before any is
//! handed out again, and a member resumes a partition at the group's committed
//! offset. So what a member read but did not commit before a rebalance is read again
//! by whoever owns the partition next, and a member drops the messages it received
//! before a rebalance (see [`Batch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ledger_kafka::rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use ledger_kafka::rdkafka::types::RDKafkaRespErr;
use ledger_kafka::rdkafka::message::OwnedMessage;
use ledger_kafka::rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use ledger_kafka::KafkaConfig;

use crate::{Result, RuntimeError};

/// What a consumer's rebalance callbacks saw; read by the consumer's own task (the
/// callbacks run inside its receive, never while it handles a batch).
#[derive(Default)]
pub struct Membership {
    /// The consumer group (a label of the metrics).
    group: String,
    /// Bumped at every revocation and assignment.
    epoch: AtomicU64,
    owned: Mutex<BTreeSet<i32>>,
    /// A rewinding member (a publisher) reads each assigned partition from the
    /// beginning, to fold it, unless it still holds the partition's fold.
    rewind: bool,
    /// Rewinding: partition -> the next offset of the fold this member holds.
    folds: Mutex<BTreeMap<i32, i64>>,
    /// Rewinding: partition -> the group's committed offset when it was assigned
    /// (what was published before; 0 when unknown).
    committed: Mutex<BTreeMap<i32, i64>>,
    /// Rewinding, fed by the process's fold ([`crate::fold`]): which assigned
    /// partitions are served from its shared batches (paused here) and which this
    /// member folds itself.
    feed: Option<std::sync::Arc<crate::fold::FeedState>>,
    /// Between an assignment and the next revocation.
    assigned: std::sync::atomic::AtomicBool,
}

impl Membership {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The partitions assigned to this member now.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.owned.lock().expect("membership lock").clone()
    }

    /// Rewinding: the folds the member keeps (the others it must drop).
    pub fn folds(&self) -> BTreeMap<i32, i64> {
        self.folds.lock().expect("membership lock").clone()
    }

    /// Rewinding: notes how far the member's fold of `partition` has read.
    pub fn note_fold(&self, partition: i32, next: i64) {
        self.folds.lock().expect("membership lock").insert(partition, next);
    }

    /// Rewinding: the group's committed offsets as of the assignment.
    pub fn committed(&self) -> BTreeMap<i32, i64> {
        self.committed.lock().expect("membership lock").clone()
    }

    /// Whether the member holds an assignment (possibly empty) now: after one, before
    /// the next revocation.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::SeqCst)
    }

    fn assigned(&self, partitions: BTreeSet<i32>) {
        tracing::info!(partitions = ?partitions, "partitions assigned");
        *self.owned.lock().expect("membership lock") = partitions;
        self.assigned.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn revoked(&self) {
        tracing::info!("partitions revoked");
        self.owned.lock().expect("membership lock").clear();
        self.assigned.store(false, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl ClientContext for Membership {
    /// librdkafka's statistics (every `statistics.interval.ms`): each assigned
    /// partition's lag, for the metrics.
    fn stats(&self, statistics: ledger_kafka::rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    crate::metrics::lag(&self.group, topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Membership {
    /// The eager protocol's assign and revoke (as librdkafka's default handler does
    /// them), noting the membership; a rewinding member assigns each partition at
    /// the beginning, or where its kept fold of it stands.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                let mut assignment = tpl.clone();
                // Fed by the process's fold: the partitions it serves (paused here) and
                // those this member folds itself.
                let (mut shared, mut own) = (TopicPartitionList::new(), TopicPartitionList::new());
                if self.rewind {
                    let committed: BTreeMap<i32, i64> = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
                        Ok(list) => list
                            .elements()
                            .iter()
                            .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { 0 }))
                            .collect(),
                        Err(error) => {
                            // Publishing again from the start is safe (same ids), only slow.
                            tracing::warn!(%error, "committed offsets unknown at assignment: publishing from the start");
                            BTreeMap::new()
                        }
                    };
                    let mut folds = self.folds.lock().expect("membership lock");
                    folds.retain(|p, _| partitions.contains(p));
                    assignment = TopicPartitionList::new();
                    for element in tpl.elements() {
                        let partition = element.partition();
                        let published = committed.get(&partition).copied().unwrap_or(0);
                        let at = if self.feed.as_ref().is_some_and(|feed| feed.take_shared(partition, published)) {
                            // Served from the process's fold: this consumer reads nothing of it.
                            folds.remove(&partition);
                            shared.add_partition(element.topic(), partition);
                            Offset::End
                        } else {
                            own.add_partition(element.topic(), partition);
                            folds.get(&partition).map_or(Offset::Beginning, |o| Offset::Offset(*o))
                        };
                        if let Err(error) = assignment.add_partition_offset(element.topic(), partition, at) {
                            tracing::warn!(%error, "building the assignment");
                        }
                    }
                    *self.committed.lock().expect("membership lock") = committed;
                }
                if let Err(error) = consumer.assign(&assignment) {
                    tracing::warn!(%error, "assigning partitions");
                }
                if self.feed.is_some() {
                    let names = |list: &TopicPartitionList| list.elements().iter().map(|e| e.partition()).collect::<Vec<_>>();
                    tracing::info!(shared = ?names(&shared), own = ?names(&own), "partitions from the process's fold, and folded here");
                    // A partition's pause outlives an assignment: set both ways each time.
                    for (list, pause) in [(&shared, true), (&own, false)] {
                        let done = match (list.count(), pause) {
                            (0, _) => Ok(()),
                            (_, true) => consumer.pause(list),
                            (_, false) => consumer.resume(list),
                        };
                        if let Err(error) = done {
                            tracing::warn!(%error, pause, "pausing or resuming partitions");
                        }
                    }
                }
                self.assigned(partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoked();
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(%error, "revoking partitions");
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                self.revoked();
                let _ = consumer.unassign();
            }
        }
    }
}

pub type GroupConsumer = StreamConsumer<Membership>;

/// A member of `group` subscribed to `topic`.
pub fn join(kafka: &KafkaConfig, group: &str, topic: &str) -> Result<GroupConsumer> {
    join_with(kafka, group, topic, Membership { group: group.to_string(), ..Membership::default() })
}

/// A rewinding member of `group` subscribed to `topic`: it reads every partition it is
/// assigned from the beginning (to fold it), and learns the group's committed offsets
/// (up to where the group has published) from [`Membership::committed`].
pub fn join_rewinding(kafka: &KafkaConfig, group: &str, topic: &str) -> Result<GroupConsumer> {
    join_with(kafka, group, topic, Membership { group: group.to_string(), rewind: true, ..Membership::default() })
}

/// A rewinding member fed by the process's fold: at each assignment, the partitions
/// `feed` can serve are paused here (see [`crate::fold`]).
pub fn join_fed(kafka: &KafkaConfig, group: &str, topic: &str, feed: std::sync::Arc<crate::fold::FeedState>) -> Result<GroupConsumer> {
    join_with(kafka, group, topic, Membership { group: group.to_string(), rewind: true, feed: Some(feed), ..Membership::default() })
}

fn join_with(kafka: &KafkaConfig, group: &str, topic: &str, membership: Membership) -> Result<GroupConsumer> {
    let mut config = kafka.consumer_config(group);
    // Eager, so that a rebalance hands over whole partitions at the committed offset.
    config.set("partition.assignment.strategy", "range");
    // Each partition's lag for the metrics, from librdkafka's own statistics.
    config.set("statistics.interval.ms", "5000");
    let consumer: GroupConsumer = config.create_with_context(membership)?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Messages received together, all from partitions the member owned throughout.
pub struct Batch {
    pub messages: Vec<OwnedMessage>,
    /// The membership epoch the messages belong to.
    pub epoch: u64,
}

/// Bounds of a batch: how many messages, how long to wait for the first one, how long
/// to keep taking what arrives after it.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max: usize,
    pub idle: Duration,
    pub linger: Duration,
}

pub const DEFAULT_BOUNDS: Bounds = Bounds { max: 5_000, idle: Duration::from_millis(100), linger: Duration::from_millis(2) };

/// Receives one batch: waits up to `bounds.idle` for a first message, then takes what
/// arrives within `bounds.linger`, at most `bounds.max`. Messages received before a
/// rebalance (which happens inside a receive) are dropped: the partition's next owner,
/// perhaps this member again, reads them again from the committed offset.
pub async fn receive(consumer: &GroupConsumer, bounds: Bounds) -> Batch {
    let mut messages = Vec::new();
    let mut epoch = consumer.context().epoch();
    let started = Instant::now();
    let mut first_at = started;
    while messages.len() < bounds.max {
        let wait = if messages.is_empty() {
            bounds.idle.saturating_sub(started.elapsed())
        } else {
            bounds.linger.saturating_sub(first_at.elapsed())
        };
        if wait.is_zero() {
            break;
        }
        let received = tokio::time::timeout(wait, consumer.recv()).await;
        let now = consumer.context().epoch();
        if now != epoch {
            messages.clear();
            epoch = now;
        }
        match received {
            Err(_) => break,
            Ok(Ok(message)) => {
                if consumer.context().owned.lock().expect("membership lock").contains(&message.partition()) {
                    if messages.is_empty() {
                        first_at = Instant::now();
                    }
                    messages.push(message.detach());
                }
            }
            Ok(Err(e)) => {
                // Passing broker trouble: librdkafka reconnects by itself.
                tracing::warn!(error = %e, "receiving");
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
    }
    if let Some(first) = messages.first() {
        crate::metrics::consumed(first.topic(), &consumer.context().group, messages.len());
    }
    Batch { messages, epoch }
}

/// What a member handled, per partition, and when it last committed it.
pub struct Positions {
    topic: String,
    next: BTreeMap<i32, i64>,
    committed_at: Instant,
}

impl Positions {
    pub fn new(topic: &str) -> Positions {
        Positions { topic: topic.to_string(), next: BTreeMap::new(), committed_at: Instant::now() }
    }

    /// Notes that the message at `offset` of `partition` was handled.
    pub fn handled(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset + 1);
    }

    /// Commits what was handled (after a batch's outputs were acknowledged).
    pub fn commit(&mut self, consumer: &GroupConsumer) -> Result<()> {
        commit(consumer, &self.topic, &mut self.next)?;
        self.committed_at = Instant::now();
        Ok(())
    }

    /// When idle, commits again once [`crate::follower::HINT_REFRESH`] has passed: an
    /// asynchronous commit refused during a broker restart is not retried, and `feed`
    /// waits on these positions. Returns whether it committed.
    pub fn refresh(&mut self, consumer: &GroupConsumer) -> Result<bool> {
        if self.committed_at.elapsed() < crate::follower::HINT_REFRESH {
            return Ok(false);
        }
        self.commit(consumer)?;
        Ok(true)
    }
}

/// Commits the next offsets of what a member handled, asynchronously. A refused commit
/// (a rebalance under way, a broker restarting) is no error: whoever owns the
/// partition next reads those messages again, and every reader makes that harmless.
/// Positions of partitions the member no longer owns are forgotten first (committing
/// them would move the new owner's position back).
fn commit(consumer: &GroupConsumer, topic: &str, next: &mut BTreeMap<i32, i64>) -> Result<()> {
    let owned = consumer.context().owned();
    next.retain(|p, _| owned.contains(p));
    if next.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in next {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o)).map_err(RuntimeError::from)?;
    }
    if let Err(error) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::debug!(%error, "committing positions failed; they are committed again later");
    }
    Ok(())
}

/// The offsets `watcher`'s group has committed on `partitions` of `topic` (-1 where
/// nothing is committed). A coordinator that answers transiently (a new broker
/// loading its groups, one restarting) is asked again until `deadline`.
pub async fn committed_offsets(
    watcher: &StreamConsumer,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    deadline: Instant,
) -> Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for partition in partitions {
        tpl.add_partition(topic, partition);
    }
    loop {
        match tokio::task::block_in_place(|| watcher.committed_offsets(tpl.clone(), Duration::from_secs(5))) {
            Ok(committed) => {
                return Ok(committed
                    .elements()
                    .iter()
                    .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { -1 }))
                    .collect())
            }
            Err(e) if ledger_kafka::is_transient(&e) && Instant::now() < deadline => {
                tracing::debug!(topic, error = %e, "committed offsets answered transiently; asking again");
                tokio::time::sleep(COMMITTED_POLL).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How often a waiter asks a group's committed offsets again.
pub const COMMITTED_POLL: Duration = Duration::from_millis(3);
