//! `loanctl feed`: plays a scenario (SPEC section 10) through the real input topics and
//! returns once the ledger has processed all of it.
//!
//! Each input is published on its topic and `feed` waits until the service that decides
//! it has committed past it (its fact is then on loan.events) before sending the next,
//! so the services see the inputs in the file's order, as the in-process fold does.
//! `open` and `close_day` are appended to every partition of loan.events (as
//! `loanctl open` and `loanctl close-day` do). At the end it waits until every reader
//! of loan.events has reached the end of the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ledger_core::handler::InputKind;
use ledger_core::{scenario, Input};
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::rdkafka::{Offset, TopicPartitionList};
use ledger_kafka::topics;
use ledger_proto::{encode, IntoProto};

use crate::follower::Follower;
use crate::{control, event_readers, events_group, input_group, input_topic, Context, Result, RuntimeError};

const POLL: Duration = Duration::from_millis(3);

#[derive(Debug, Clone, Default)]
pub struct FeedReport {
    pub inputs: usize,
    pub published: usize,
    pub day_closes: usize,
    pub seconds: f64,
}

/// Parses every line first (a file with an invalid line sends nothing), then feeds it.
/// `wait` bounds how long one input may take to be processed.
pub async fn feed(ctx: &Context, text: &str, wait: Duration, mut progress: impl FnMut(usize, usize)) -> Result<FeedReport> {
    let started = Instant::now();
    let mut inputs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match scenario::parse_line(line) {
            Ok(Some(input)) => inputs.push((index + 1, input)),
            Ok(None) => {}
            Err(message) => return Err(scenario::ScenarioError { line: index + 1, message }.into()),
        }
    }
    let kafka = ctx.kafka.with_client_id(format!("{}-feed", ctx.kafka.client_id));
    let producer = kafka.producer()?;
    let mut control_view = Follower::new(&kafka, "ledger-feed", ctx.config.clone(), false)?;
    let mut watchers: BTreeMap<InputKind, StreamConsumer> = BTreeMap::new();
    let deciders = [
        (InputKind::Application, "origination"),
        (InputKind::Repayment, "repayment"),
        (InputKind::Collections, "collections"),
        (InputKind::MerchantUpdate, "monitoring"),
    ];
    for (kind, service) in deciders {
        watchers.insert(kind, kafka.consumer(&input_group(service))?);
    }
    let mut report = FeedReport { inputs: inputs.len(), ..FeedReport::default() };
    let total = inputs.len();
    for (done, (line, input)) in inputs.into_iter().enumerate() {
        let at_line = |e: RuntimeError| RuntimeError::Refused(format!("line {line}: {}", crate::error_chain(&e)));
        match &input {
            Input::Open { date } => control::open(&mut control_view, &producer, *date).await.map_err(at_line)?,
            Input::CloseDay { date } => {
                control::close_day(&mut control_view, &producer, Some(*date)).await.map_err(at_line)?;
                report.day_closes += 1;
            }
            Input::Application(_) | Input::Repayment(_) | Input::Collections(_) | Input::MerchantUpdate(_) => {
                let Some((kind, key, payload)) = publishable(&input) else { continue };
                send_and_wait(&producer, &watchers[&kind], kind, &key, &payload, wait).await.map_err(at_line)?;
                report.published += 1;
            }
        }
        progress(done + 1, total);
    }
    wait_for_readers(ctx, &control_view, wait).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The input topic, record key (the partitioning id) and encoded message of an input
/// that goes through a service; `None` for the day's open and close (appended, not
/// published).
fn publishable(input: &Input) -> Option<(InputKind, String, Vec<u8>)> {
    Some(match input {
        Input::Application(a) => (InputKind::Application, a.borrower_id.clone(), encode(&a.into_proto())),
        Input::Repayment(r) => (InputKind::Repayment, r.loan_id.clone(), encode(&r.into_proto())),
        Input::Collections(c) => {
            let key = c.borrower_id.as_deref().or(c.loan_id.as_deref()).unwrap_or(&c.action_id).to_string();
            (InputKind::Collections, key, encode(&c.into_proto()))
        }
        Input::MerchantUpdate(u) => (InputKind::MerchantUpdate, u.borrower_id.clone(), encode(&u.into_proto())),
        Input::Open { .. } | Input::CloseDay { .. } => return None,
    })
}

async fn send_and_wait(
    producer: &ledger_kafka::rdkafka::producer::FutureProducer,
    watcher: &StreamConsumer,
    kind: InputKind,
    key: &str,
    payload: &[u8],
    wait: Duration,
) -> Result<()> {
    let topic = input_topic(kind);
    let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key).payload(payload);
    let delivery = producer.send(record, Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
    tracing::debug!(topic, partition = delivery.partition, offset = delivery.offset, "fed");
    wait_committed(watcher, topic, delivery.partition, delivery.offset + 1, wait).await?;
    tracing::debug!(topic, partition = delivery.partition, offset = delivery.offset, "processed");
    Ok(())
}

/// Waits until `watcher`'s group has committed `topic`/`partition` at `at_least`.
async fn wait_committed(watcher: &StreamConsumer, topic: &str, partition: i32, at_least: i64, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    loop {
        let committed = match tokio::task::block_in_place(|| watcher.committed_offsets(tpl.clone(), Duration::from_secs(5))) {
            Ok(committed) => committed,
            // A new broker's group coordinator is still loading: ask again.
            Err(e) if ledger_kafka::is_transient(&e) && Instant::now() < deadline => {
                tracing::debug!(topic, partition, error = %e, "committed offsets answered transiently; asking again");
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let reached = committed
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(-1);
        if reached >= at_least {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Timeout(format!(
                "{topic} partition {partition} offset {} was not processed within {} s; is `loanctl up` running against these brokers?",
                at_least - 1,
                wait.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every reader of loan.events (the services and the projector) has
/// committed the end of every partition.
pub async fn wait_for_readers(ctx: &Context, view: &Follower, wait: Duration) -> Result<()> {
    let ends = view.end_offsets()?;
    for reader in event_readers() {
        let watcher = ctx.kafka.consumer(&events_group(reader))?;
        for (p, end) in &ends {
            if *end > 0 {
                wait_committed(&watcher, topics::EVENTS, *p, *end, wait).await?;
            }
        }
    }
    Ok(())
}
