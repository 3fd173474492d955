//! A service's publisher: folds the partitions of loan.events it is assigned in the
//! service's consumer group (`ledger-<service>-events`) and publishes the notices the
//! handler derives from them (postings, overdue notices, receipts, warnings).
//!
//! Exactly-once effects: the group's committed offset of a partition is how far its
//! notices were published; it is committed only after every notice up to it was
//! acknowledged. A member given a partition folds it from the beginning (or from where
//! its own fold of it stands, when the partition comes back to it) and publishes from
//! the committed offset on; a notice published again carries the same deterministic id.
//!
//! In `loanctl up` the publishers take the facts of their partitions from the
//! process's one fold instead ([`crate::fold`]), where it has not run past what the
//! group published.

use std::collections::BTreeMap;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Input, Ledger, Outcome};
use ledger_kafka::rdkafka::consumer::Consumer;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::rdkafka::Message;
use ledger_kafka::{topics, OffsetProbe};
use ledger_proto::{IntoProto, Output};
use tokio::sync::{mpsc, watch};

use crate::follower::{check_layout, read_fact};
use crate::group::{self, DEFAULT_BOUNDS};
use crate::{events_group, input_topic, Context, Result, RuntimeError};

/// Notices in flight before the publisher waits for their acknowledgements.
const IN_FLIGHT_MAX: usize = 10_000;

/// A fed publisher's batch bounds: its own consumer reads only the partitions it folds
/// itself (rare), so it waits on it only a moment and then on the shared batches.
const FED_BOUNDS: group::Bounds = group::Bounds { idle: std::time::Duration::from_millis(1), ..DEFAULT_BOUNDS };

/// How long a fed publisher waits for a shared batch before it looks at its consumer
/// again (rebalances, its own partitions).
const FED_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a fed publisher holds the process's fold back while it has no assignment
/// (joining its group, or a rebalance): past that it takes the shared batches and
/// passes over what it does not own (a partition whose facts it passed over is folded
/// here when it is assigned).
const FED_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `handler`'s publisher until `shutdown` turns true. With `feed` it takes the
/// facts of its partitions from the process's fold where it can ([`crate::fold`]);
/// without, it folds every partition it is assigned itself.
pub async fn run_publisher(
    handler: &'static dyn Handler,
    ctx: Context,
    feed: Option<crate::fold::Subscription>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let name = handler.name();
    let kafka = ctx.kafka.with_client_id(format!("{}-{name}", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let partition_count = OffsetProbe::new(&kafka)?.topic_partitions(topics::EVENTS)?.len();
    let mut feed = feed;
    let consumer = match &mut feed {
        Some(sub) => {
            // Join only once the fold knows where it starts: the assignment compares it
            // with what the group has published.
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                started = sub.started.wait_for(|s| *s) => { started.map_err(|_| RuntimeError::Refused("the process's fold stopped before it started".into()))?; }
            }
            group::join_fed(&kafka, &events_group(name), topics::EVENTS, sub.state.clone())?
        }
        None => group::join_rewinding(&kafka, &events_group(name), topics::EVENTS)?,
    };
    let publisher = Publisher { handler, producer };
    // One fold per partition folded here: a book needs nothing of the others.
    let mut books: BTreeMap<i32, Ledger> = BTreeMap::new();
    // Per partition restored from its snapshot, the offset it was restored at (the
    // records before it, read from the beginning before the seek, are passed over);
    // and the partitions whose snapshot was looked for since they were assigned.
    let mut restored_at: BTreeMap<i32, i64> = BTreeMap::new();
    let mut looked: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();
    let mut positions = group::Positions::new(topics::EVENTS);
    let mut unassigned_since: Option<std::time::Instant> = Some(std::time::Instant::now());
    tracing::info!(service = name, fed = feed.is_some(), "publisher started");
    while !*shutdown.borrow() {
        let bounds = if feed.is_some() { FED_BOUNDS } else { DEFAULT_BOUNDS };
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            batch = group::receive(&consumer, bounds) => batch,
        };
        let membership = consumer.context();
        let folds = membership.folds();
        books.retain(|p, _| folds.contains_key(p));
        let published = membership.committed();
        let owned = membership.owned();
        let shared = feed.as_ref().map(|f| f.state.shared()).unwrap_or_default();
        looked.retain(|p| owned.contains(p));
        restored_at.retain(|p, _| books.contains_key(p) || folds.contains_key(p));
        let fresh: Vec<i32> =
            owned.iter().copied().filter(|p| !shared.contains(p) && !books.contains_key(p) && !folds.contains_key(p) && !looked.contains(p)).collect();
        if !fresh.is_empty() {
            looked.extend(fresh.iter().copied());
            for (partition, r) in crate::snapshot::read_latest(&kafka, &fresh, &ctx.config).await? {
                let at = r.meta.next_offset;
                // Only a snapshot at or before what the group has published: the
                // notices of every fact after it must still be derived here.
                if at > published.get(&partition).copied().unwrap_or(0) {
                    tracing::info!(service = name, partition, at, "the book's snapshot is past what was published: folding from the beginning");
                    continue;
                }
                let seek = tokio::task::block_in_place(|| consumer.seek(topics::EVENTS, partition, ledger_kafka::rdkafka::Offset::Offset(at), std::time::Duration::from_secs(10)));
                if let Err(error) = seek {
                    tracing::info!(service = name, partition, %error, "could not move to the book's snapshot: folding from the beginning");
                    continue;
                }
                let mut ledger = Ledger::new(ctx.config.clone());
                ledger.restore_book(partition as u32, r.book);
                books.insert(partition, ledger);
                membership.note_fold(partition, at);
                restored_at.insert(partition, at);
                tracing::info!(service = name, partition, at, "book restored from its snapshot");
            }
        }
        let mut in_flight: Vec<DeliveryFuture> = Vec::new();
        for message in &batch.messages {
            let (partition, offset) = (message.partition(), message.offset());
            if offset < restored_at.get(&partition).copied().unwrap_or(0) || shared.contains(&partition) {
                continue; // read from the beginning before the seek: in the snapshot
            }
            let (fact, _) = read_fact(message)?;
            check_layout(&fact, message, partition_count)?;
            let book = books.entry(partition).or_insert_with(|| Ledger::new(ctx.config.clone()));
            let mut derived = Vec::new();
            if let Outcome::Ignored(why) = book.apply(partition as u32, &fact, &mut derived) {
                return Err(RuntimeError::Corrupt(format!(
                    "{}: the fact {} does not fit the book at its position: {why}",
                    crate::source(topics::EVENTS, partition, offset),
                    fact.key()
                )));
            }
            membership.note_fold(partition, offset + 1);
            positions.handled(partition, offset);
            if offset < published.get(&partition).copied().unwrap_or(0) {
                continue; // published before
            }
            publisher.publish(partition, offset, message.timestamp().to_millis().unwrap_or(0), &derived, &mut in_flight).await?;
        }
        let mut took_shared = false;
        let mut fold_gone = false;
        if let Some(sub) = &mut feed {
            // Between a revocation and the next assignment nothing is taken: the fold
            // waits, so that a partition handed back is still shared.
            let take = match membership.is_assigned() {
                true => {
                    unassigned_since = None;
                    true
                }
                false => unassigned_since.get_or_insert_with(std::time::Instant::now).elapsed() >= FED_HOLD,
            };
            if take {
                let mut next = match sub.receiver.try_recv() {
                    Ok(shared) => Some(shared),
                    // Nothing from either side yet: wait for the fold a moment.
                    Err(mpsc::error::TryRecvError::Empty) if batch.messages.is_empty() => {
                        match tokio::time::timeout(FED_WAIT, sub.receiver.recv()).await {
                            Ok(shared) => {
                                fold_gone = shared.is_none();
                                shared
                            }
                            Err(_) => None,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        fold_gone = true;
                        None
                    }
                };
                while let Some(shared_batch) = next {
                    took_shared = true;
                    for folded in shared_batch.iter() {
                        let (partition, offset) = (folded.partition, folded.offset);
                        sub.state.passed(partition, offset);
                        // Owned and served from the fold, and not published before.
                        if !shared.contains(&partition) || !owned.contains(&partition) || offset < published.get(&partition).copied().unwrap_or(0) {
                            continue;
                        }
                        positions.handled(partition, offset);
                        publisher.publish(partition, offset, folded.timestamp_ms, &folded.derived, &mut in_flight).await?;
                    }
                    next = sub.receiver.try_recv().ok();
                }
            }
        }
        await_all(&mut in_flight).await?;
        if batch.messages.is_empty() && !took_shared {
            positions.refresh(&consumer)?;
        } else {
            positions.commit(&consumer)?;
        }
        if fold_gone {
            if *shutdown.borrow() {
                break; // the process is stopping: the projector stopped first
            }
            return Err(RuntimeError::Refused("the process's fold (the projector) stopped".into()));
        }
    }
    tracing::info!(service = name, "publisher stopped");
    Ok(())
}

/// What a publisher sends: its handler's notices, on its producer.
struct Publisher {
    handler: &'static dyn Handler,
    producer: FutureProducer,
}

impl Publisher {
    /// Queues the notices the handler makes of what the fold derived at the fact at
    /// `offset` of `partition`, each with its deterministic id.
    async fn publish(&self, partition: i32, offset: i64, timestamp_ms: i64, derived: &[ledger_core::Derived], in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
        for (index, event) in derived.iter().enumerate() {
            if let Some(notice) = self.handler.on_derived(event) {
                let mut out = notice.into_proto();
                out.set_event_id(format!("{partition}-{offset}-{index}"));
                in_flight.push(send_output(&self.producer, &out)?);
                crate::metrics::notice(self.handler.name(), timestamp_ms);
                if in_flight.len() >= IN_FLIGHT_MAX {
                    await_all(in_flight).await?;
                }
            }
        }
        Ok(())
    }
}

fn cancelled() -> RuntimeError {
    RuntimeError::Refused("delivery cancelled: the producer was dropped".into())
}

fn output_topic(out: &Output) -> &'static str {
    match out {
        Output::Accrual(_) => topics::ACCRUALS,
        Output::Collections(_) => topics::OVERDUE,
        Output::Receipt(_) => topics::RECEIPTS,
    }
}

/// Queues one output message on its topic, keyed as it says.
pub(crate) fn send_output(producer: &FutureProducer, out: &Output) -> Result<DeliveryFuture> {
    let topic = output_topic(out);
    crate::metrics::produced(topic);
    Ok(ledger_kafka::enqueue(producer, topic, None, out.key(), &out.encode())?)
}

pub(crate) async fn await_all(in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
    for delivery in in_flight.drain(..) {
        delivery.await.map_err(|_| cancelled())?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Decodes an input message of the service's topic; the reason when it cannot.
pub fn decode_input(kind: InputKind, payload: &[u8]) -> std::result::Result<Input, String> {
    ledger_proto::decode_input(kind, payload).map_err(|e| format!("cannot read {}: {e}", input_topic(kind)))
}
