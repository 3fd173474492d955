//! The id sequencer: one order for every claim on a ledger-wide id.
//!
//! SPEC section 9 makes application (= loan), payment, action and update ids, and
//! order ids, unique across the whole ledger: the first input with an id counts, a
//! later one is a DUPLICATE or an ID_CONFLICT, an order finances one loan. A book
//! writer decides against the fold of every book, so it sees an id that any book has
//! decided. What it cannot see is an input another book's writer is deciding at the
//! same moment: two writers, each unaware of the other's undecided input, would both
//! accept the id.
//!
//! So every input passes through one queue, ledger.claims (one partition), on its
//! way from its intake to its book, carrying the ids it claims
//! ([`ledger_core::Input::unique_ids`]). The sequencer (one member of the
//! `ledger-claims` group at a time) forwards each command to its book's partition of
//! ledger.commands and remembers, for a while, which book each id went to. An input
//! that claims an id last forwarded to another book, which that book's writer has not
//! decided yet, is held back (and every input after it: the queue keeps its order)
//! until the book writers' group has committed past the earlier command; its own
//! writer then reads the earlier fact into its view before it decides (a writer
//! catches its view up to the log's end offsets at every batch). Inputs that claim
//! the same id in the same book need no wait: one partition of ledger.commands keeps
//! them in order.
//!
//! What it remembers is only the commands not yet known to be decided: every second
//! (and at every hold) it reads how far the book writers have committed and forgets
//! what lies below. So it holds no state that must survive it: a sequencer that
//! takes the queue over (at start, at a rebalance) first waits until the book writers
//! have decided everything ledger.commands holds, and starts with nothing to
//! remember. A claim it forwards again (read again after a crash before its commit)
//! reaches its book again and is skipped there by its origin.
//!
//! The cost is one more hop for every input and a hold when two books claim one id
//! within moments of each other (an id reused by another borrower or loan: a bug or
//! fraud upstream, not the daily traffic). ARCHITECTURE.md, "Global uniqueness", has
//! the argument and the alternatives.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::producer::DeliveryFuture;
use ledger_kafka::rdkafka::Message;
use ledger_kafka::{partition_for_key, topics, OffsetProbe};
use ledger_proto::pb;
use tokio::sync::watch;

use crate::follower::HINT_REFRESH;
use crate::group::{self, Bounds, DEFAULT_BOUNDS};
use crate::window::Window;
use crate::{books, intake, source, Context, Result, RuntimeError};

/// The sequencer's consumer group on ledger.claims.
pub const GROUP: &str = "ledger-claims";

/// How long the sequencer waits for a next batch while the previous one is unsettled.
const SETTLE_IDLE: Duration = Duration::from_millis(1);

/// How long a hold waits before it says so in the log (and waits on).
const HOLD_WARNING: Duration = Duration::from_secs(10);

/// Runs the id sequencer until `shutdown` turns true (`loanctl run books` runs it
/// beside the book writer; of all the instances, one holds the queue at a time).
pub async fn run_sequencer(ctx: Context, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let kafka = ctx.kafka.with_client_id(format!("{}-claims", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let probe = OffsetProbe::new(&kafka)?;
    let books = i32::try_from(probe.topic_partitions(topics::COMMANDS)?.len()).map_err(|_| RuntimeError::Refused("too many partitions".into()))?;
    if books == 0 {
        return Err(RuntimeError::Refused(format!("{} has no partitions: run `loanctl topics create`", topics::COMMANDS)));
    }
    let writers = kafka.consumer(books::GROUP)?;
    let consumer = group::join(&kafka, GROUP, topics::CLAIMS)?;
    tracing::info!(service = "claims", "id sequencer started");
    let mut window = Window::default();
    let mut positions = group::Positions::new(topics::CLAIMS);
    let mut epoch = None;
    let mut evicted_at = Instant::now();
    let mut previous = Pending::default();
    while !*shutdown.borrow() {
        // With a batch still to settle, wait for more only a moment: its commit (which
        // `feed` waits on) must not wait for traffic that is not coming.
        let bounds = if previous.last.is_some() { Bounds { idle: SETTLE_IDLE, ..DEFAULT_BOUNDS } } else { DEFAULT_BOUNDS };
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            batch = group::receive(&consumer, bounds) => batch,
        };
        if epoch != Some(batch.epoch) {
            epoch = Some(batch.epoch);
            // Forwarded before the rebalance: acknowledged or not, the group's next
            // holder reads it again from the committed offset.
            settle(&mut window, &mut previous, &mut positions, &consumer).await?;
            window = Window::default();
            if !consumer.context().owned().is_empty() {
                // What the previous holder forwarded is unknown: let it all be decided.
                let ends = tokio::task::block_in_place(|| probe.end_offsets(topics::COMMANDS))?;
                wait_decided(&writers, &ends, &mut window, &mut shutdown).await?;
                tracing::info!(service = "claims", "holding the id queue");
            }
        }
        // Every second, busy or idle, forget what the book writers have decided (the
        // window would otherwise grow with the traffic).
        if !window.is_empty() && evicted_at.elapsed() >= HINT_REFRESH {
            let committed = group::committed_offsets(&writers, topics::COMMANDS, window.books(), far_deadline()).await?;
            window.forget_decided(&committed);
            evicted_at = Instant::now();
        }
        if batch.messages.is_empty() {
            // Nothing new: commit the unsettled batch once its acknowledgements are in,
            // without waiting for them here (a batch arriving meanwhile is forwarded
            // at once, its predecessor's acknowledgements still on their way).
            if window.delivered_now(&mut previous.in_flight).await? {
                settle(&mut window, &mut previous, &mut positions, &consumer).await?;
            }
            positions.refresh(&consumer)?;
            continue;
        }
        // Forwarded while the previous batch's acknowledgements are still on their way;
        // those are awaited after this batch is queued, and then committed.
        let mut in_flight: Vec<(u64, DeliveryFuture)> = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            let (partition, offset) = (message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            let command = ledger_proto::decode::<pb::BookCommand>(payload).map_err(|e| {
                RuntimeError::Corrupt(format!("{}: cannot read the claim: {e}", source(topics::CLAIMS, partition, offset)))
            })?;
            let key = message.key().unwrap_or_default();
            let book = partition_for_key(key, books);
            if let Some(held) = window.held_by(&command.claims, book) {
                // An id another book may not have decided yet: its offset first, then
                // its writer past it.
                settle(&mut window, &mut previous, &mut positions, &consumer).await?;
                window.delivered(&mut in_flight).await?;
                let (other, at) = window.position(held);
                tracing::debug!(book, other, at, "an id claimed in another book: waiting until that book decided it");
                wait_decided(&writers, &BTreeMap::from([(other, at + 1)]), &mut window, &mut shutdown).await?;
                evicted_at = Instant::now();
            }
            let delivery = intake::send_command(&producer, &String::from_utf8_lossy(key), book, payload)?;
            in_flight.push((window.forwarded(book, command.claims), delivery));
            crate::metrics::produced(topics::COMMANDS);
        }
        settle(&mut window, &mut previous, &mut positions, &consumer).await?;
        let last = batch.messages.last().map(|m| (m.partition(), m.offset()));
        previous = Pending { in_flight, last };
    }
    settle(&mut window, &mut previous, &mut positions, &consumer).await?;
    tracing::info!(service = "claims", "id sequencer stopped");
    Ok(())
}

/// A forwarded batch whose acknowledgements are awaited after the next is queued.
#[derive(Default)]
struct Pending {
    in_flight: Vec<(u64, DeliveryFuture)>,
    /// The batch's last claim (partition, offset): committed once all is acknowledged.
    last: Option<(i32, i64)>,
}

/// Awaits the pending batch's acknowledgements and commits its position.
async fn settle(window: &mut Window, pending: &mut Pending, positions: &mut group::Positions, consumer: &group::GroupConsumer) -> Result<()> {
    window.delivered(&mut pending.in_flight).await?;
    if let Some((partition, offset)) = pending.last.take() {
        positions.handled(partition, offset);
        positions.commit(consumer)?;
    }
    Ok(())
}

fn far_deadline() -> Instant {
    Instant::now() + ledger_kafka::TRANSIENT_LIMIT
}

/// Waits until the book writers' group has committed at least `ends` (partition of
/// ledger.commands -> offset), forgetting what they decided meanwhile.
async fn wait_decided(
    writers: &StreamConsumer,
    ends: &BTreeMap<i32, i64>,
    window: &mut Window,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<()> {
    let ends: BTreeMap<i32, i64> = ends.iter().filter(|(_, end)| **end > 0).map(|(p, e)| (*p, *e)).collect();
    let started = Instant::now();
    let mut warned = started;
    loop {
        let mut partitions: Vec<i32> = ends.keys().copied().collect();
        partitions.extend(window.books());
        partitions.sort_unstable();
        partitions.dedup();
        let committed = group::committed_offsets(writers, topics::COMMANDS, partitions, far_deadline()).await?;
        window.forget_decided(&committed);
        let behind: Vec<(i32, i64)> =
            ends.iter().filter(|(p, end)| committed.get(p).copied().unwrap_or(-1) < **end).map(|(p, e)| (*p, *e)).collect();
        if behind.is_empty() {
            return Ok(());
        }
        if *shutdown.borrow() {
            return Err(RuntimeError::Refused("stopping while waiting for the book writers".into()));
        }
        if warned.elapsed() >= HOLD_WARNING {
            warned = Instant::now();
            tracing::warn!(
                waited_s = started.elapsed().as_secs(),
                behind = ?behind,
                "the id sequencer waits for book writers that have not decided these commands: is every book's writer running (`loanctl run books`)?"
            );
        }
        tokio::time::sleep(group::COMMITTED_POLL).await;
    }
}

impl Window {
    /// Awaits the acknowledgements of `in_flight`, noting each command's offset.
    async fn delivered(&mut self, in_flight: &mut Vec<(u64, DeliveryFuture)>) -> Result<()> {
        for (seq, delivery) in in_flight.drain(..) {
            let delivered = delivery
                .await
                .map_err(|_| RuntimeError::Refused("delivery cancelled: the producer was dropped".into()))?
                .map_err(|(e, _)| e)?;
            self.delivered_at(seq, delivered.offset);
        }
        Ok(())
    }

    /// Notes the acknowledgements of `in_flight` that are in already, without waiting
    /// for the others; whether all of them are in.
    async fn delivered_now(&mut self, in_flight: &mut Vec<(u64, DeliveryFuture)>) -> Result<bool> {
        let mut waiting = Vec::with_capacity(in_flight.len());
        for (seq, mut delivery) in in_flight.drain(..) {
            // A zero timeout polls the delivery once: ready, or kept for later.
            match tokio::time::timeout(Duration::ZERO, &mut delivery).await {
                Err(_) => waiting.push((seq, delivery)),
                Ok(outcome) => {
                    let delivered = outcome
                        .map_err(|_| RuntimeError::Refused("delivery cancelled: the producer was dropped".into()))?
                        .map_err(|(e, _)| e)?;
                    self.delivered_at(seq, delivered.offset);
                }
            }
        }
        *in_flight = waiting;
        Ok(in_flight.is_empty())
    }
}
