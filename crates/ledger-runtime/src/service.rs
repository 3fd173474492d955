//! Drives one handler: decides its input topic into facts on loan.events and publishes
//! the notices it derives from loan.events, with its positions stored in sled.
//!
//! Exactly-once effects: an input's position is stored only after its fact (or its
//! dead letter, or its duplicate notice) was acknowledged by the broker; a published
//! position only after every notice up to it was. After a crash the service resumes
//! from sled: a re-decided input finds its own fact in the log and is a silent
//! duplicate, and a re-published notice carries the same deterministic id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::handler::{Handler, InputKind};
use ledger_core::{Decision, Input};
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::message::BorrowedMessage;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, OffsetProbe};
use ledger_proto::{pb, FromProto, IntoProto, Output};
use ledger_store::{Changes, StoreTree};
use tokio::sync::watch;

use crate::follower::Follower;
use crate::{events_group, input_group, input_topic, source, Context, Result, RuntimeError};

/// How often an idle service looks for new facts to publish.
const IDLE_POLL: Duration = Duration::from_millis(25);
/// Facts folded per step before positions are stored.
const BATCH_FACTS: usize = 2_000;
/// Notices in flight before the service waits for their acknowledgements.
const IN_FLIGHT_MAX: usize = 10_000;

/// Runs `handler` until `shutdown` turns true; then finishes the message in hand,
/// stores its positions and returns.
pub async fn run_service(handler: Arc<dyn Handler>, ctx: Context, tree: StoreTree, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let name = handler.name();
    let kafka = ctx.kafka.with_client_id(format!("{}-{name}", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let mut follower = Follower::new(&kafka, &events_group(name), ctx.config.clone(), true)?;
    let stored = tree.positions()?;
    let mut published: BTreeMap<i32, i64> = stored
        .iter()
        .filter(|((t, _), _)| t == topics::EVENTS)
        .map(|((_, p), o)| (*p, *o))
        .collect();
    let input = match handler.decides() {
        Some(kind) => {
            let topic = input_topic(kind);
            let consumer = kafka.consumer(&input_group(name))?;
            let partitions = OffsetProbe::new(&kafka)?.topic_partitions(topic)?;
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                let offset = stored.get(&(topic.to_string(), p)).map_or(Offset::Beginning, |o| Offset::Offset(*o));
                tpl.add_partition_offset(topic, p, offset)?;
            }
            consumer.assign(&tpl)?;
            Some((kind, topic, consumer))
        }
        None => None,
    };
    tracing::info!(service = name, "started");
    let mut svc = Service {
        handler: handler.clone(),
        producer,
        tree,
        follower: &mut follower,
        published: &mut published,
        inputs: BTreeMap::new(),
        inputs_hinted_at: Instant::now(),
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        match &input {
            Some((kind, topic, consumer)) => {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    message = consumer.recv() => match message {
                        Ok(message) => svc.handle_input(*kind, topic, consumer, &message).await?,
                        Err(e) => {
                            // Passing broker trouble: librdkafka reconnects by itself.
                            tracing::warn!(service = name, error = %e, "reading {topic}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                    _ = tokio::time::sleep(IDLE_POLL) => {
                        svc.publish_new().await?;
                        svc.refresh_input_hint(topic, consumer)?;
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => svc.publish_new().await?,
                }
            }
        }
    }
    tracing::info!(service = name, "stopped");
    Ok(())
}

struct Service<'a> {
    handler: Arc<dyn Handler>,
    producer: FutureProducer,
    tree: StoreTree,
    follower: &'a mut Follower,
    published: &'a mut BTreeMap<i32, i64>,
    /// Next input offset per partition, as handled and stored.
    inputs: BTreeMap<i32, i64>,
    inputs_hinted_at: Instant,
}

impl Service<'_> {
    async fn handle_input(&mut self, kind: InputKind, topic: &str, consumer: &StreamConsumer, message: &BorrowedMessage<'_>) -> Result<()> {
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let from = source(topic, partition, offset);
        tracing::debug!(service = self.handler.name(), %from, "received");
        match decode_input(kind, payload) {
            Err(reason) => {
                ledger_kafka::dead_letter_message(&self.producer, message, &reason).await?;
            }
            Ok(input) => {
                // Decide against everything loan.events holds now: a loan disbursed a
                // moment ago is not unknown, a borrower blacklisted at the last close
                // is blacklisted.
                self.publish_new().await?;
                tracing::debug!(service = self.handler.name(), %from, "caught up");
                match self.handler.decide(self.follower.ledger(), &input) {
                    Err(e) => ledger_kafka::dead_letter_message(&self.producer, message, &e.to_string()).await?,
                    Ok(Decision::Seen(seen)) => {
                        // Our own earlier attempt (crashed before its position was
                        // stored) is silent; a re-sent input, or another input with
                        // the same id (ID_CONFLICT), gets its notice.
                        if self.follower.source_of(&input.key()) != Some(from.as_str()) {
                            if let Some(notice) = self.handler.on_duplicate(&input, seen) {
                                let mut out = notice.into_proto();
                                out.set_event_id(format!("dup:{from}"));
                                send_output(&self.producer, &out)?.await.map_err(|_| cancelled())?.map_err(|(e, _)| e)?;
                            }
                        }
                    }
                    Ok(Decision::Fact(fact)) => {
                        let event = ledger_proto::loan_event(&fact, fact.key(), from.clone());
                        let payload = ledger_proto::encode(&event);
                        let key = fact.partition_key().unwrap_or_default().to_string();
                        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topics::EVENTS).key(key.as_str()).payload(payload.as_slice());
                        self.producer.send(record, Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
                        tracing::debug!(service = self.handler.name(), key = %fact.key(), "appended");
                    }
                }
            }
        }
        tracing::debug!(service = self.handler.name(), %from, "handled");
        self.tree.commit(&Changes::default(), &[(topic, partition, offset + 1)])?;
        tracing::debug!(service = self.handler.name(), %from, "stored");
        self.inputs.insert(partition, offset + 1);
        self.commit_input_hint(topic, consumer)?;
        Ok(())
    }

    /// Commits the handled inputs' positions under the service's input group: the
    /// hint `feed` waits on (the positions that count are in sled).
    fn commit_input_hint(&mut self, topic: &str, consumer: &StreamConsumer) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in &self.inputs {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        crate::follower::commit_hint(consumer, &tpl);
        self.inputs_hinted_at = Instant::now();
        Ok(())
    }

    /// Commits the input hint again after [`crate::follower::HINT_REFRESH`]: an
    /// asynchronous commit refused during a broker restart is not retried, and an
    /// idle service would otherwise leave `feed` waiting for ever.
    fn refresh_input_hint(&mut self, topic: &str, consumer: &StreamConsumer) -> Result<()> {
        if !self.inputs.is_empty() && self.inputs_hinted_at.elapsed() >= crate::follower::HINT_REFRESH {
            self.commit_input_hint(topic, consumer)?;
        }
        Ok(())
    }

    /// Folds what is new on loan.events and publishes the handler's notices for it.
    async fn publish_new(&mut self) -> Result<()> {
        loop {
            let applied = self.follower.catch_up(BATCH_FACTS).await?;
            if applied.is_empty() {
                return Ok(());
            }
            let mut in_flight: Vec<DeliveryFuture> = Vec::new();
            let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
            for a in &applied {
                reached.insert(a.partition, a.offset + 1);
                if a.offset < self.published.get(&a.partition).copied().unwrap_or(0) {
                    continue; // published before a restart
                }
                for (index, event) in a.derived.iter().enumerate() {
                    if let Some(notice) = self.handler.on_derived(event) {
                        let mut out = notice.into_proto();
                        out.set_event_id(format!("{}-{}-{}", a.partition, a.offset, index));
                        in_flight.push(send_output(&self.producer, &out)?);
                        if in_flight.len() >= IN_FLIGHT_MAX {
                            await_all(&mut in_flight).await?;
                        }
                    }
                }
            }
            await_all(&mut in_flight).await?;
            let positions: Vec<(&str, i32, i64)> = reached.iter().map(|(p, o)| (topics::EVENTS, *p, *o)).collect();
            self.tree.commit(&Changes::default(), &positions)?;
            self.published.extend(reached);
            self.follower.commit_hint()?;
        }
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
fn send_output(producer: &FutureProducer, out: &Output) -> Result<DeliveryFuture> {
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

async fn await_all(in_flight: &mut Vec<DeliveryFuture>) -> Result<()> {
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
