//! `loanctl feed`: plays a scenario (SPEC section 10) through the real input topics and
//! returns once the ledger has processed all of it.
//!
//! The ledger must decide the file's inputs as the in-process fold does, in the file's
//! order wherever order matters. Inputs on one topic with one key stay in order all the
//! way (one input partition, one intake, one book), so `feed` sends a run of inputs
//! together and waits once, and starts a new run before an input that could depend on
//! one sent in another lane (topic and key) of the current run: an input that names a
//! borrower, loan, id or order named by an earlier input of the run in another lane
//! (an application before its loan's repayments, inputs that share an id). `open` and
//! `close_day` close the run and go to every book as commands (as `loanctl open` and
//! `loanctl close-day` do). A run is processed when every intake has committed past
//! its inputs, the id sequencer past every claim and the book writers past every
//! command queued by then. At the end it
//! waits until every reader of loan.events has reached the end of the log.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ledger_core::handler::InputKind;
use ledger_core::{scenario, Input};
use ledger_kafka::rdkafka::consumer::StreamConsumer;
use ledger_kafka::rdkafka::producer::{DeliveryFuture, FutureProducer};
use ledger_kafka::{topics, OffsetProbe};
use ledger_proto::{encode, IntoProto};

use crate::follower::Follower;
use crate::{books, claims, control, event_readers, events_group, group, input_group, input_topic, Context, Result, RuntimeError};

/// The most inputs sent in one run.
const RUN_MAX: usize = 5_000;

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
    let probe = OffsetProbe::new(&kafka)?;
    let mut watchers: BTreeMap<InputKind, StreamConsumer> = BTreeMap::new();
    for handler in ctx.services {
        if let Some(kind) = handler.decides() {
            watchers.insert(kind, kafka.consumer(&input_group(handler.name()))?);
        }
    }
    let claims_watcher = kafka.consumer(claims::GROUP)?;
    let books_watcher = kafka.consumer(books::GROUP)?;
    let mut report = FeedReport { inputs: inputs.len(), ..FeedReport::default() };
    let total = inputs.len();
    let mut run = Run::default();
    for (done, (line, input)) in inputs.into_iter().enumerate() {
        let at_line = |e: RuntimeError| RuntimeError::Refused(format!("line {line}: {}", crate::error_chain(&e)));
        let Some((kind, key, payload)) = publishable(&input) else {
            run.finish(&watchers, &claims_watcher, &books_watcher, &probe, wait).await.map_err(at_line)?;
            progress(done, total);
            match &input {
                Input::Open { date } => control::open(&mut control_view, &producer, *date, wait).await.map_err(at_line)?,
                Input::CloseDay { date } => {
                    let closing = Instant::now();
                    control::close_day(&mut control_view, &producer, Some(*date), wait).await.map_err(at_line)?;
                    tracing::debug!(%date, ms = closing.elapsed().as_millis() as u64, "day closed");
                    report.day_closes += 1;
                }
                _ => unreachable!("every other input is publishable"),
            }
            continue;
        };
        let lane = (kind, key.clone());
        let names = run.names_of(&input);
        if run.len() >= RUN_MAX || run.depends(&lane, &names) {
            run.finish(&watchers, &claims_watcher, &books_watcher, &probe, wait).await.map_err(at_line)?;
            progress(done, total);
        }
        run.send(&producer, lane, names, &key, &payload).map_err(at_line)?;
        report.published += 1;
    }
    run.finish(&watchers, &claims_watcher, &books_watcher, &probe, wait).await?;
    progress(total, total);
    wait_for_readers(ctx, &control_view, wait).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Inputs sent together, not yet known to be processed.
#[derive(Default)]
struct Run {
    /// What each name (borrower, loan, id, order) was named by in this run: its lane.
    named: HashMap<String, (InputKind, String)>,
    in_flight: Vec<(InputKind, DeliveryFuture)>,
    /// The borrower of each loan the file applied for (a repayment names only its loan).
    borrower_of_loan: HashMap<String, String>,
}

impl Run {
    fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Every name an input touches, prefixed by its kind of name.
    fn names_of(&mut self, input: &Input) -> Vec<String> {
        let mut names = Vec::new();
        match input {
            Input::Application(a) => {
                self.borrower_of_loan.insert(a.application_id.clone(), a.borrower_id.clone());
                names.push(format!("borrower:{}", a.borrower_id));
                names.push(format!("loan:{}", a.application_id));
                names.extend(a.orders.iter().map(|o| format!("order:{}", o.order_id)));
            }
            Input::Repayment(r) => {
                names.push(format!("loan:{}", r.loan_id));
                names.push(format!("payment:{}", r.payment_id));
                if let Some(borrower) = self.borrower_of_loan.get(&r.loan_id) {
                    names.push(format!("borrower:{borrower}"));
                }
            }
            Input::Collections(c) => {
                names.push(format!("action:{}", c.action_id));
                if let Some(b) = &c.borrower_id {
                    names.push(format!("borrower:{b}"));
                }
                if let Some(l) = &c.loan_id {
                    names.push(format!("loan:{l}"));
                    if let Some(borrower) = self.borrower_of_loan.get(l) {
                        names.push(format!("borrower:{borrower}"));
                    }
                }
            }
            Input::MerchantUpdate(u) => {
                names.push(format!("borrower:{}", u.borrower_id));
                names.push(format!("update:{}", u.update_id));
            }
            Input::Open { .. } | Input::CloseDay { .. } => {}
        }
        names
    }

    /// Whether an input in `lane` naming `names` could depend on an input of the run.
    fn depends(&self, lane: &(InputKind, String), names: &[String]) -> bool {
        names.iter().any(|n| self.named.get(n).is_some_and(|l| l != lane))
    }

    fn send(&mut self, producer: &FutureProducer, lane: (InputKind, String), names: Vec<String>, key: &str, payload: &[u8]) -> Result<()> {
        let delivery = ledger_kafka::enqueue(producer, input_topic(lane.0), None, key, payload)?;
        self.in_flight.push((lane.0, delivery));
        for name in names {
            self.named.insert(name, lane.clone());
        }
        Ok(())
    }

    /// Waits until every input of the run is decided: acknowledged by the broker,
    /// forwarded by its intake and by the id sequencer, and every command queued by
    /// then decided.
    async fn finish(
        &mut self,
        watchers: &BTreeMap<InputKind, StreamConsumer>,
        claims_watcher: &StreamConsumer,
        books_watcher: &StreamConsumer,
        probe: &OffsetProbe,
        wait: Duration,
    ) -> Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let (inputs, started) = (self.in_flight.len(), Instant::now());
        let mut reached: BTreeMap<(InputKind, i32), i64> = BTreeMap::new();
        for (kind, delivery) in self.in_flight.drain(..) {
            let delivery = delivery
                .await
                .map_err(|_| RuntimeError::Refused("delivery cancelled: the producer was dropped".into()))?
                .map_err(|(e, _)| e)?;
            let (partition, offset) = (delivery.partition, delivery.offset);
            let next = reached.entry((kind, partition)).or_insert(0);
            *next = (*next).max(offset + 1);
        }
        self.named.clear();
        let acknowledged = started.elapsed();
        // One question per group and poll, for all of its partitions at once.
        let mut by_kind: BTreeMap<InputKind, BTreeMap<i32, i64>> = BTreeMap::new();
        for ((kind, partition), next) in reached {
            by_kind.entry(kind).or_default().insert(partition, next);
        }
        for (kind, targets) in &by_kind {
            wait_all_committed(&watchers[kind], input_topic(*kind), targets, wait).await?;
        }
        let forwarded = started.elapsed();
        // Then the id sequencer past every claim queued by then, then the book writers.
        let claimed = tokio::task::block_in_place(|| probe.end_offsets(topics::CLAIMS))?;
        wait_all_committed(claims_watcher, topics::CLAIMS, &claimed, wait).await?;
        let sequenced = started.elapsed();
        let ends = tokio::task::block_in_place(|| probe.end_offsets(topics::COMMANDS))?;
        wait_all_committed(books_watcher, topics::COMMANDS, &ends, wait).await?;
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::debug!(
            inputs,
            acknowledged_ms = ms(acknowledged),
            forwarded_ms = ms(forwarded),
            sequenced_ms = ms(sequenced),
            ms = ms(started.elapsed()),
            "run decided"
        );
        Ok(())
    }
}

/// The input topic, record key (the partitioning id) and encoded message of an input
/// that goes through a service; `None` for the day's open and close (appended, not
/// published).
pub fn publishable(input: &Input) -> Option<(InputKind, String, Vec<u8>)> {
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

/// Waits until `watcher`'s group has committed every partition of `topic` in
/// `targets` at least at its offset (partitions at 0 need nothing), asking for all of
/// them at once each time.
pub(crate) async fn wait_all_committed(watcher: &StreamConsumer, topic: &str, targets: &BTreeMap<i32, i64>, wait: Duration) -> Result<()> {
    let targets: BTreeMap<i32, i64> = targets.iter().filter(|(_, at)| **at > 0).map(|(p, at)| (*p, *at)).collect();
    if targets.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + wait;
    loop {
        let committed = group::committed_offsets(watcher, topic, targets.keys().copied(), deadline).await?;
        let behind = targets.iter().find(|(p, at)| committed.get(p).copied().unwrap_or(-1) < **at);
        let Some((partition, at_least)) = behind else { return Ok(()) };
        if Instant::now() > deadline {
            return Err(RuntimeError::Timeout(format!(
                "{topic} partition {partition} offset {} was not processed within {} s; is `loanctl up` running against these brokers?",
                at_least - 1,
                wait.as_secs()
            )));
        }
        tokio::time::sleep(group::COMMITTED_POLL).await;
    }
}

/// Waits until every reader of loan.events (the services and the projector) has
/// committed the end of every partition.
pub async fn wait_for_readers(ctx: &Context, view: &Follower, wait: Duration) -> Result<()> {
    let ends = view.end_offsets()?;
    for reader in event_readers(ctx.services) {
        let watcher = ctx.kafka.consumer(&events_group(reader))?;
        wait_all_committed(&watcher, topics::EVENTS, &ends, wait).await?;
    }
    Ok(())
}
