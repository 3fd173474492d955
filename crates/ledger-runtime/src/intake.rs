//! The intake of a service's input topic: reads it as a member of the service's
//! consumer group, dead-letters what cannot be read, and forwards every other input,
//! byte for byte, as a command for its book with the ledger-wide ids it claims, to
//! ledger.claims, the id sequencer's queue ([`crate::claims`]), which forwards it to
//! its book's partition of ledger.commands. The book's key comes from the handler
//! ([`Handler::book_key`]): the borrower named, or for an input keyed by loan id, the
//! loan's borrower in the loan index. An input that arrived on another
//! partition than its book's (a producer with another partitioner) is routed like any
//! other: the partition it came on decides nothing.
//!
//! Batches: what arrived is read together (bounded), the loan index caught up once,
//! everything forwarded, the acknowledgements awaited once, the positions committed.
//! A crash before the commit forwards the batch again; the book writer knows each
//! command by its origin and decides it once.


use ledger_core::handler::{Handler, NoLoans};
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::rdkafka::Message;
use ledger_kafka::topics;
use ledger_proto::pb;
use tokio::sync::watch;

use crate::group::{self, DEFAULT_BOUNDS};
use crate::loans::LoanIndex;
use crate::service::{await_all, decode_input};
use crate::{input_group, input_topic, source, Context, Result, RuntimeError};

/// Runs the intake of `handler`'s input topic until `shutdown` turns true.
pub async fn run_intake(handler: &'static dyn Handler, ctx: Context, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let name = handler.name();
    let Some(kind) = handler.decides() else {
        return Err(RuntimeError::Refused(format!("{name} decides no input: it has no intake")));
    };
    let topic = input_topic(kind);
    let kafka = ctx.kafka.with_client_id(format!("{}-{name}-intake", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let mut loans = match handler.routes_by_loan() {
        true => Some(LoanIndex::restored(&kafka, &ctx.config).await?),
        false => None,
    };
    let consumer = group::join(&kafka, &input_group(name), topic)?;
    tracing::info!(service = name, topic, "intake started");
    let mut positions = group::Positions::new(topic);
    while !*shutdown.borrow() {
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            batch = group::receive(&consumer, DEFAULT_BOUNDS) => batch,
        };
        if batch.messages.is_empty() {
            positions.refresh(&consumer)?;
            continue;
        }
        // Decode and route; a batch that names a loan the index does not know is routed
        // again after the index caught up (a payment for a loan disbursed a moment ago).
        let decoded: Vec<std::result::Result<ledger_core::Input, String>> =
            batch.messages.iter().map(|m| decode_input(kind, m.payload().unwrap_or_default())).collect();
        let route = |loans: Option<&LoanIndex>| -> Vec<Option<String>> {
            decoded
                .iter()
                .map(|input| {
                    let input = input.as_ref().ok()?;
                    Some(match loans {
                        Some(loans) => handler.book_key(input, loans),
                        None => handler.book_key(input, &NoLoans),
                    })
                })
                .collect()
        };
        let mut keys = route(loans.as_ref());
        if let Some(index) = loans.as_mut() {
            if index.missed() {
                index.catch_up().await?;
                keys = route(loans.as_ref());
            }
        }
        let mut in_flight: Vec<DeliveryFuture> = Vec::with_capacity(batch.messages.len());
        for ((message, input), key) in batch.messages.iter().zip(&decoded).zip(&keys) {
            let (partition, offset) = (message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            match (input, key) {
                (Err(reason), _) => {
                    ledger_kafka::dead_letter(&producer, topic, partition, offset, message.key(), message.payload(), reason).await?;
                    crate::metrics::dead_lettered(topic);
                }
                (Ok(input), key) => {
                    let key = key.as_deref().unwrap_or_default();
                    let command = pb::BookCommand {
                        origin: source(topic, partition, offset),
                        command: Some(pb::book_command::Command::Input(payload.to_vec())),
                        claims: input.unique_ids(),
                        input_timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
                    };
                    let payload = ledger_proto::encode(&command);
                    in_flight.push(ledger_kafka::enqueue(&producer, topics::CLAIMS, Some(0), key, &payload)?);
                    crate::metrics::produced(topics::CLAIMS);
                }
            }
            positions.handled(partition, offset);
        }
        await_all(&mut in_flight).await?;
        positions.commit(&consumer)?;
        tracing::debug!(
            service = name,
            topic,
            inputs = batch.messages.len(),
            first = ?batch.messages.first().map(|m| (m.partition(), m.offset())),
            "forwarded a batch to ledger.claims"
        );
    }
    tracing::info!(service = name, "intake stopped");
    Ok(())
}

/// Queues one command for book `partition`.
pub fn send_command(producer: &FutureProducer, key: &str, partition: i32, payload: &[u8]) -> Result<DeliveryFuture> {
    Ok(ledger_kafka::enqueue(producer, topics::COMMANDS, Some(partition), key, payload)?)
}
