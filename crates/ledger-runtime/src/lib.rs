//! ledger-runtime: the one road the data takes,
//! input topic -> intake -> ledger.claims -> id sequencer -> ledger.commands -> book
//! writer -> loan.events -> publishers and projector -> output topics and sled.
//!
//! - [`intake::run_intake`] reads a service's input topic in the service's consumer
//!   group, dead-letters what cannot be read, and queues every input on ledger.claims
//!   for its book (found through the [`loans::LoanIndex`] for inputs keyed by loan id).
//! - [`claims::run_sequencer`] forwards the queue to the books' partitions of
//!   ledger.commands in one order, holding back an input that claims a ledger-wide id
//!   another book has not decided yet.
//! - [`books::run_books`] is the one writer per book: it decides each book's commands
//!   in order with the services' deciders and appends the facts to loan.events.
//! - [`follower::Follower`] folds loan.events (all partitions, or a few) into a
//!   `Ledger`; [`service::run_publisher`] publishes a service's notices from it.
//! - [`projection::run_projector`] folds loan.events into the sled read models, and
//!   [`http`] serves them.
//! - [`control`] sends the day's open and close to every book; [`feed`] plays a
//!   scenario through the input topics; [`replay`] rebuilds the read models.

pub mod books;
pub mod claims;
pub mod control;
pub mod feed;
pub mod fold;
pub mod follower;
pub mod group;
pub mod http;
pub mod intake;
pub mod loans;
pub mod metrics;
pub mod projection;
pub mod replay;
pub mod service;
pub mod snapshot;
pub mod window;
pub mod writer;

use std::sync::Arc;

use ledger_core::handler::{Handler, InputKind};
use ledger_kafka::topics;

/// Everything a service needs to know about its surroundings.
#[derive(Clone)]
pub struct Context {
    pub kafka: ledger_kafka::KafkaConfig,
    pub config: Arc<ledger_core::ProductConfig>,
    /// The services of the ledger, as the caller composes them (`loanctl` gives
    /// `ledger_sim::SERVICES`): the runtime knows them by their trait only.
    pub services: &'static [&'static dyn Handler],
}

impl Context {
    /// The services that decide an input (the book writer's deciders).
    pub fn deciders(&self) -> impl Iterator<Item = &'static dyn Handler> + '_ {
        self.services.iter().copied().filter(|s| s.decides().is_some())
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&'static dyn Handler> {
        self.services.iter().copied().find(|s| s.name() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Kafka(#[from] ledger_kafka::KafkaError),
    #[error("Kafka client error")]
    Rdkafka(#[from] ledger_kafka::rdkafka::error::KafkaError),
    #[error(transparent)]
    Store(#[from] ledger_store::StoreError),
    #[error("{0}")]
    Refused(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// The log does not fit the ledger: the reader stops.
    #[error("corrupt log: {0}")]
    Corrupt(String),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Scenario(#[from] ledger_core::scenario::ScenarioError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// An error and its sources, joined by ": ", for a message that stands alone (an
/// error's own Display never repeats its source; see STYLE.md).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = vec![error];
    while let Some(cause) = causes.last().and_then(|e| e.source()) {
        causes.push(cause);
    }
    join_causes(&causes)
}

/// Errors joined by ": ", outermost first, leaving out a cause whose text the line
/// already holds (rdkafka's errors repeat their code as their source).
pub fn join_causes(causes: &[&(dyn std::error::Error + 'static)]) -> String {
    let mut text = String::new();
    for cause in causes {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Every service `loanctl up` runs and `loanctl run` accepts, given the services: the
/// book writer, each service (its intake, its publisher or both), and the projector.
pub fn service_names(services: &[&dyn Handler]) -> Vec<&'static str> {
    let mut names = vec![books::NAME];
    names.extend(services.iter().map(|h| h.name()));
    names.push(projection::NAME);
    names
}

/// The input topic of a kind of input.
pub fn input_topic(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Application => topics::APPLICATIONS,
        InputKind::Repayment => topics::REPAYMENTS,
        InputKind::Collections => topics::ACTIONS,
        InputKind::MerchantUpdate => topics::MERCHANT_UPDATES,
    }
}

/// The consumer group a service reads its input topic with (its committed offsets are
/// what `feed` waits on).
pub fn input_group(service: &str) -> String {
    format!("ledger-{service}")
}

/// The consumer group a reader of loan.events commits its positions under.
pub fn events_group(reader: &str) -> String {
    format!("ledger-{reader}-events")
}

/// Every reader of loan.events that `loanctl up` runs and `feed` waits for: the
/// services' publishers and the projector.
pub fn event_readers(services: &[&dyn Handler]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = services.iter().filter(|h| h.publishes()).map(|h| h.name()).collect();
    names.push(projection::NAME);
    names
}

/// "topic/partition/offset": where an input came from (a fact's `source`).
pub fn source(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// Every topic the ledger uses: inputs, loan.events, outputs and dead-letter topics.
pub fn all_topics() -> Vec<String> {
    let mut names: Vec<String> = topics::ALL.iter().map(|t| t.to_string()).collect();
    for input in [topics::APPLICATIONS, topics::REPAYMENTS, topics::ACTIONS, topics::MERCHANT_UPDATES, topics::EVENTS] {
        names.push(topics::dlq(input));
    }
    names
}

/// Creates every topic (idempotent) with the settings of
/// [`ledger_kafka::topics::settings`], then checks loan.events.
pub async fn create_topics(kafka: &ledger_kafka::KafkaConfig, partitions: i32) -> Result<()> {
    let names = all_topics();
    let list: Vec<(&str, i32)> = names.iter().map(|n| (n.as_str(), topics::partitions_of(n, partitions))).collect();
    ledger_kafka::create_topics(kafka, &list).await?;
    check_topics(kafka).await
}

/// Refuses to start on a loan.events that could lose facts: the source of truth
/// must be kept forever and never compacted (an existing topic created with the
/// broker's defaults is deleted after 7 days on Apache Kafka).
/// Refuses, too, topics that must be co-partitioned with loan.events
/// ([`topics::CO_PARTITIONED`]) and have another partition count, and a ledger.claims
/// of more than one partition.
pub async fn check_topics(kafka: &ledger_kafka::KafkaConfig) -> Result<()> {
    ledger_kafka::check_topic_settings(kafka, topics::EVENTS, topics::EVENTS_REQUIRED).await?;
    let probe_config = kafka.clone();
    let mut counts = tokio::task::spawn_blocking(move || -> Result<Vec<(&'static str, usize)>> {
        let probe = ledger_kafka::OffsetProbe::new(&probe_config)?;
        let mut counts: Vec<(&'static str, usize)> =
            topics::CO_PARTITIONED.iter().map(|t| Ok((*t, probe.topic_partitions(t)?.len()))).collect::<Result<_>>()?;
        counts.push((topics::CLAIMS, probe.topic_partitions(topics::CLAIMS)?.len()));
        Ok(counts)
    })
    .await
    .map_err(|e| RuntimeError::Refused(format!("checking partition counts: {e}")))??;
    let claims = counts.pop().map_or(0, |(_, n)| n);
    if claims != 1 {
        return Err(RuntimeError::Refused(format!(
            "{} has {claims} partitions: it must have exactly 1 (one order of every claim on a ledger-wide id); \
             delete it and run `loanctl topics create`, or create it with --partitions 1",
            topics::CLAIMS
        )));
    }
    let (_, events) = counts[0];
    if let Some((topic, found)) = counts.iter().find(|(_, n)| *n != events) {
        return Err(RuntimeError::Refused(format!(
            "{topic} has {found} partitions but loan.events has {events}: borrower-keyed topics must have as many \
             partitions as loan.events ({}), so that a borrower's inputs and facts share a partition number; \
             add partitions (kafka-topics.sh --alter --partitions {events}) before any record is written, or start a new ledger",
            topics::CO_PARTITIONED.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let outer = RuntimeError::Io(io);
        assert_eq!(error_chain(&outer), "i/o error: disk full");
        let code = ledger_kafka::rdkafka::error::KafkaError::MetadataFetch(ledger_kafka::rdkafka::types::RDKafkaErrorCode::UnknownPartition);
        let text = error_chain(&RuntimeError::Rdkafka(code));
        assert_eq!(text.matches("Unknown partition").count(), 1, "{text}");
        assert!(text.starts_with("Kafka client error: Meta data fetch error"), "{text}");
    }
}
