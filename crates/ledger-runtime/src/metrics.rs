//! The process's metrics, served at `GET /metrics` in Prometheus' text format (by every
//! `loanctl up` and `loanctl run SERVICE --http ADDR`).
//!
//! One registry per process: every task of it (intakes, id sequencer, book writer,
//! publishers, projector) counts into the same families, labelled by topic and by
//! consumer group or stage. Counters start at zero with the process, as Prometheus
//! expects (it takes rates across restarts itself).
//!
//! Money in metrics is in cents (fen), as integers: the ledger's amounts are exact
//! decimals with two places, and a gauge of cents keeps them exact up to 2^63. Latencies
//! are seconds (Prometheus' convention), observed as floats: times, never money.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use ledger_core::export::PortfolioView;
use ledger_core::{Fact, Seen};
use ledger_kafka::topics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReaderLabel {
    topic: String,
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    topic: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

/// A label known at compile time: no allocation for a counter bumped per message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublisherLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    group: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BookLabel {
    book: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestoreLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BucketLabel {
    bucket: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    consumed: Family<ReaderLabel, Counter>,
    produced: Family<TopicLabel, Counter>,
    refused: Family<RefusalLabel, Counter>,
    dead_lettered: Family<TopicLabel, Counter>,
    batch_size: Histograms<StageLabel>,
    input_to_fact: Histogram,
    fact_to_notice: Histograms<PublisherLabel>,
    lag: Family<PartitionLabel, Gauge>,
    active_loans: Gauge,
    principal_outstanding: Gauge,
    overdue_principal: Family<BucketLabel, Gauge>,
    snapshot_taken: Family<BookLabel, Gauge>,
    snapshot_facts: Family<BookLabel, Gauge>,
    restores: Family<RestoreLabel, Counter>,
}

fn seconds() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn sizes() -> Histogram {
    // 1 to 8,192 messages (a batch holds at most group::DEFAULT_BOUNDS.max).
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ledger");
        let metrics = Metrics {
            consumed: Family::default(),
            produced: Family::default(),
            refused: Family::default(),
            dead_lettered: Family::default(),
            batch_size: Family::new_with_constructor(sizes),
            input_to_fact: seconds(),
            fact_to_notice: Family::new_with_constructor(seconds),
            lag: Family::default(),
            active_loans: Gauge::default(),
            principal_outstanding: Gauge::default(),
            overdue_principal: Family::default(),
            snapshot_taken: Family::default(),
            snapshot_facts: Family::default(),
            restores: Family::default(),
            registry: Registry::default(),
        };
        registry.register("messages_consumed", "Messages read, by topic and consumer group", metrics.consumed.clone());
        registry.register("messages_produced", "Messages queued for the broker (acknowledged before any position moves past them), by topic", metrics.produced.clone());
        registry.register("inputs_refused", "Inputs decided as refusals, by input topic and reason (DUPLICATE and ID_CONFLICT for a seen id)", metrics.refused.clone());
        registry.register("messages_dead_lettered", "Inputs that could not be read or decided, sent to <topic>.dlq, by input topic", metrics.dead_lettered.clone());
        registry.register("batch_size_messages", "Messages per batch, by stage (consumer group)", metrics.batch_size.clone());
        registry.register("input_to_fact_seconds", "From an input's timestamp on its topic to its fact's decision by the book writer", metrics.input_to_fact.clone());
        registry.register("fact_to_notice_seconds", "From a fact's timestamp on loan.events to a notice derived from it being queued, by publisher", metrics.fact_to_notice.clone());
        registry.register("consumer_lag_messages", "Messages behind the partition's end, by consumer group, topic and partition", metrics.lag.clone());
        registry.register("active_loans", "ACTIVE loans in the read models (processes running the projector)", metrics.active_loans.clone());
        registry.register("principal_outstanding_cents", "Principal outstanding in the read models, in cents (fen) of CNY", metrics.principal_outstanding.clone());
        registry.register("overdue_principal_cents", "Overdue principal in the read models by delinquency bucket, in cents (fen) of CNY", metrics.overdue_principal.clone());
        registry.register(
            "snapshot_taken_timestamp_seconds",
            "When the latest snapshot of a book this process writes or restored was taken (Unix time; its age is time() minus this), by book",
            metrics.snapshot_taken.clone(),
        );
        registry.register(
            "snapshot_behind_facts",
            "Facts the book writer appended to its book since the book's latest snapshot, by book",
            metrics.snapshot_facts.clone(),
        );
        registry.register(
            "snapshots_restored",
            "Books the readers of loan.events started, by outcome: restored from a snapshot, or folded from the beginning because there was none or it was passed_over",
            metrics.restores.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Notes `count` messages read from `topic` by a member of `group`, in one batch.
pub fn consumed(topic: &str, group: &str, count: usize) {
    if count > 0 {
        METRICS.consumed.get_or_create(&ReaderLabel { topic: topic.to_string(), group: group.to_string() }).inc_by(count as u64);
        METRICS.batch_size.get_or_create(&StageLabel { stage: group.to_string() }).observe(count as f64);
    }
}

/// Notes the latest snapshot of `book`, taken at `taken_at_ms` (Unix milliseconds).
pub fn snapshot_taken(book: i32, taken_at_ms: i64) {
    METRICS.snapshot_taken.get_or_create(&BookLabel { book: book.to_string() }).set(taken_at_ms / 1000);
}

/// Notes how many facts `book`'s writer appended since its latest snapshot.
pub fn snapshot_behind(book: i32, facts: u64) {
    METRICS.snapshot_facts.get_or_create(&BookLabel { book: book.to_string() }).set(facts as i64);
}

/// Notes how a reader started a book: `restored` from a snapshot, or from the
/// beginning because it had `none` or it was `passed_over`.
pub fn restore(outcome: &'static str) {
    METRICS.restores.get_or_create(&RestoreLabel { outcome }).inc();
}

/// Notes one message queued for `topic`.
pub fn produced(topic: &'static str) {
    METRICS.produced.get_or_create(&TopicLabel { topic }).inc();
}

/// Notes an input of `topic` dead-lettered.
pub fn dead_lettered(topic: &'static str) {
    METRICS.dead_lettered.get_or_create(&TopicLabel { topic }).inc();
}

/// Notes an input decided as a seen id (DUPLICATE or ID_CONFLICT).
pub fn seen(topic: &'static str, seen: Seen) {
    let reason = match seen {
        Seen::Duplicate => "DUPLICATE",
        Seen::IdConflict => "ID_CONFLICT",
    };
    METRICS.refused.get_or_create(&RefusalLabel { topic, reason }).inc();
}

/// Notes a decided fact: the refusals among facts, and the time since its input was
/// published (`input_ms`, the input's timestamp; 0 when unknown).
pub fn decided(fact: &Fact, input_ms: i64) {
    let (topic, reasons): (&'static str, Vec<&'static str>) = match fact {
        Fact::ApplicationDecided(d) => (topics::APPLICATIONS, d.reasons.iter().map(|r| r.as_str()).collect()),
        Fact::RepaymentRefused { reason, .. } => (topics::REPAYMENTS, vec![reason.as_str()]),
        Fact::ActionRefused { reason, .. } => (topics::ACTIONS, vec![reason.as_str()]),
        Fact::MerchantUpdateRefused { reason, .. } => (topics::MERCHANT_UPDATES, vec![reason.as_str()]),
        _ => (topics::APPLICATIONS, Vec::new()),
    };
    for reason in reasons {
        METRICS.refused.get_or_create(&RefusalLabel { topic, reason }).inc();
    }
    if input_ms > 0 {
        METRICS.input_to_fact.observe(since(input_ms));
    }
}

/// Notes a notice queued by `publisher`, derived from a fact stamped `fact_ms`.
pub fn notice(publisher: &'static str, fact_ms: i64) {
    if fact_ms > 0 {
        METRICS.fact_to_notice.get_or_create(&PublisherLabel { stage: publisher }).observe(since(fact_ms));
    }
}

/// Sets a consumer's lag on one partition.
pub fn lag(group: &str, topic: &str, partition: i32, behind: i64) {
    let label = PartitionLabel { group: group.to_string(), topic: topic.to_string(), partition: partition.to_string() };
    METRICS.lag.get_or_create(&label).set(behind.max(0));
}

/// The milliseconds since the Unix epoch now (a Kafka timestamp's clock).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn since(ms: i64) -> f64 {
    (now_ms() - ms).max(0) as f64 / 1000.0
}

/// The metrics in Prometheus' text format; `portfolio` (where the process has read
/// models) sets the portfolio gauges first.
pub fn render(portfolio: Option<&PortfolioView>) -> String {
    if let Some(p) = portfolio {
        METRICS.active_loans.set(i64::try_from(p.active_loans).unwrap_or(i64::MAX));
        METRICS.principal_outstanding.set(p.outstanding_principal.cents());
        let o = &p.overdue_principal;
        for (bucket, amount) in [("M1", o.m1), ("M2", o.m2), ("M3", o.m3), ("NPL", o.npl)] {
            METRICS.overdue_principal.get_or_create(&BucketLabel { bucket }).set(amount.cents());
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &METRICS.registry).expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_in_the_text_format() {
        consumed("test.topic", "test-group", 3);
        produced("test.out");
        dead_lettered("test.in");
        let text = render(None);
        assert!(text.contains(r#"ledger_messages_consumed_total{topic="test.topic",group="test-group"} 3"#), "{text}");
        assert!(text.contains(r#"ledger_messages_produced_total{topic="test.out"} 1"#), "{text}");
        assert!(text.contains(r#"ledger_messages_dead_lettered_total{topic="test.in"} 1"#), "{text}");
        assert!(text.contains("ledger_batch_size_messages_bucket"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
