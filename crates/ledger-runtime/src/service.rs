//! A service's publisher: folds the partitions of loan.events it is assigned in the
//! service's consumer group (`ledger-<service>-events`) and publishes the notices the
//! handler derives from them (postings, overdue notices, receipts, warnings).
//!
//! Exactly-once effects: the group's committed offset of a partition is how far its
//! notices were published; it is committed only after every notice up to it was
//! acknowledged. A member given a partition folds it from the beginning (or from where
//! its own fold of it stands, when the partition comes back to it) and publishes from
//! the committed offset on; a notice published again carries the same deterministic id.

use std::collections::BTreeMap;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Input, Ledger, Outcome};
use ledger_kafka::rdkafka::consumer::Consumer;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::rdkafka::Message;
use ledger_kafka::{topics, OffsetProbe};
use ledger_proto::{IntoProto, Output};
use tokio::sync::watch;

use crate::follower::{check_layout, read_fact};
use crate::group::{self, DEFAULT_BOUNDS};
use crate::{events_group, input_topic, Context, Result, RuntimeError};

/// Notices in flight before the publisher waits for their acknowledgements.
const IN_FLIGHT_MAX: usize = 10_000;

/// Runs `handler`'s publisher until `shutdown` turns true.
pub async fn run_publisher(handler: &'static dyn Handler, ctx: Context, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let name = handler.name();
    let kafka = ctx.kafka.with_client_id(format!("{}-{name}", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let partition_count = OffsetProbe::new(&kafka)?.topic_partitions(topics::EVENTS)?.len();
    let consumer = group::join_rewinding(&kafka, &events_group(name), topics::EVENTS)?;
    // One fold per partition: a book needs nothing of the others.
    let mut books: BTreeMap<i32, Ledger> = BTreeMap::new();
    // Per partition restored from its snapshot, the offset it was restored at (the
    // records before it, read from the beginning before the seek, are passed over);
    // and the partitions whose snapshot was looked for since they were assigned.
    let mut restored_at: BTreeMap<i32, i64> = BTreeMap::new();
    let mut looked: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();
    let mut positions = group::Positions::new(topics::EVENTS);
    tracing::info!(service = name, "publisher started");
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            batch = group::receive(&consumer, DEFAULT_BOUNDS) => batch,
        };
        let membership = consumer.context();
        let folds = membership.folds();
        books.retain(|p, _| folds.contains_key(p));
        let published = membership.committed();
        let owned = membership.owned();
        looked.retain(|p| owned.contains(p));
        restored_at.retain(|p, _| books.contains_key(p) || folds.contains_key(p));
        let fresh: Vec<i32> = owned.iter().copied().filter(|p| !books.contains_key(p) && !folds.contains_key(p) && !looked.contains(p)).collect();
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
            if offset < restored_at.get(&partition).copied().unwrap_or(0) {
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
            for (index, event) in derived.iter().enumerate() {
                if let Some(notice) = handler.on_derived(event) {
                    let mut out = notice.into_proto();
                    out.set_event_id(format!("{partition}-{offset}-{index}"));
                    in_flight.push(send_output(&producer, &out)?);
                    crate::metrics::notice(name, message.timestamp().to_millis().unwrap_or(0));
                    if in_flight.len() >= IN_FLIGHT_MAX {
                        await_all(&mut in_flight).await?;
                    }
                }
            }
        }
        await_all(&mut in_flight).await?;
        if batch.messages.is_empty() {
            positions.refresh(&consumer)?;
        } else {
            positions.commit(&consumer)?;
        }
    }
    tracing::info!(service = name, "publisher stopped");
    Ok(())
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
