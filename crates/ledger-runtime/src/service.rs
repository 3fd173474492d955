//! A service's publisher: folds loan.events and publishes the notices the handler
//! derives from it (postings, overdue notices, receipts, warnings), with its positions
//! stored in sled.
//!
//! Exactly-once effects: a published position is stored only after every notice up to
//! it was acknowledged. After a crash the publisher refolds and resumes from sled; a
//! notice published again carries the same deterministic id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::Input;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use ledger_kafka::topics;
use ledger_proto::{pb, FromProto, IntoProto, Output};
use ledger_store::{Changes, StoreTree};
use tokio::sync::watch;

use crate::follower::Follower;
use crate::{events_group, input_topic, Context, Result, RuntimeError};

/// How often an idle service looks for new facts to publish.
const IDLE_POLL: Duration = Duration::from_millis(25);
/// Facts folded per step before positions are stored.
const BATCH_FACTS: usize = 2_000;
/// Notices in flight before the service waits for their acknowledgements.
const IN_FLIGHT_MAX: usize = 10_000;

/// Runs `handler`'s publisher until `shutdown` turns true; then stores its positions
/// and returns.
pub async fn run_publisher(handler: Arc<dyn Handler>, ctx: Context, tree: StoreTree, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let name = handler.name();
    let kafka = ctx.kafka.with_client_id(format!("{}-{name}", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let mut follower = Follower::new(&kafka, &events_group(name), ctx.config.clone(), true)?;
    let mut published: BTreeMap<i32, i64> = tree
        .positions()?
        .iter()
        .filter(|((t, _), _)| t == topics::EVENTS)
        .map(|((_, p), o)| (*p, *o))
        .collect();
    tracing::info!(service = name, "publisher started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        publish_new(handler.as_ref(), &producer, &tree, &mut follower, &mut published).await?;
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
    tracing::info!(service = name, "publisher stopped");
    Ok(())
}

/// Folds what is new on loan.events and publishes the handler's notices for it.
async fn publish_new(
    handler: &dyn Handler,
    producer: &FutureProducer,
    tree: &StoreTree,
    follower: &mut Follower,
    published: &mut BTreeMap<i32, i64>,
) -> Result<()> {
    loop {
        let applied = follower.catch_up(BATCH_FACTS).await?;
        if applied.is_empty() {
            return Ok(());
        }
        let mut in_flight: Vec<DeliveryFuture> = Vec::new();
        let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
        for a in &applied {
            reached.insert(a.partition, a.offset + 1);
            if a.offset < published.get(&a.partition).copied().unwrap_or(0) {
                continue; // published before a restart
            }
            for (index, event) in a.derived.iter().enumerate() {
                if let Some(notice) = handler.on_derived(event) {
                    let mut out = notice.into_proto();
                    out.set_event_id(format!("{}-{}-{}", a.partition, a.offset, index));
                    in_flight.push(send_output(producer, &out)?);
                    if in_flight.len() >= IN_FLIGHT_MAX {
                        await_all(&mut in_flight).await?;
                    }
                }
            }
        }
        await_all(&mut in_flight).await?;
        let positions: Vec<(&str, i32, i64)> = reached.iter().map(|(p, o)| (topics::EVENTS, *p, *o)).collect();
        tree.commit(&Changes::default(), &positions)?;
        published.extend(reached);
        follower.commit_hint()?;
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

/// Queues one output message; retries while the producer's queue is full.
pub(crate) fn send_output(producer: &FutureProducer, out: &Output) -> Result<DeliveryFuture> {
    let payload = out.encode();
    let topic = output_topic(out);
    loop {
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(out.key()).payload(payload.as_slice());
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((ledger_kafka::rdkafka::error::KafkaError::MessageProduction(ledger_kafka::rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                // The producer's own thread drains the queue; wait a moment for room.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

pub(crate) async fn await_all(in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
    for delivery in in_flight.drain(..) {
        delivery.await.map_err(|_| cancelled())?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Decodes an input message of the service's topic; the reason when it cannot.
pub fn decode_input(kind: InputKind, payload: &[u8]) -> std::result::Result<Input, String> {
    let decoded = match kind {
        InputKind::Application => ledger_proto::decode::<pb::LoanApplication>(payload).and_then(Input::from_proto),
        InputKind::Repayment => ledger_proto::decode::<pb::Repayment>(payload).and_then(Input::from_proto),
        InputKind::Collections => ledger_proto::decode::<pb::CollectionsAction>(payload).and_then(Input::from_proto),
        InputKind::MerchantUpdate => ledger_proto::decode::<pb::MerchantUpdate>(payload).and_then(Input::from_proto),
    };
    decoded.map_err(|e| format!("cannot read {}: {e}", input_topic(kind)))
}
