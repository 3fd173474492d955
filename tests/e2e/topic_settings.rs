//! Topics fit for a ledger: loan.events is kept forever, the others by time, as the
//! README's topic table says, and a loan.events that could lose facts is refused at
//! start-up with an error that says what to change.

use std::collections::BTreeMap;
use std::time::Duration;

use ledger_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use ledger_kafka::rdkafka::client::DefaultClientContext;
use ledger_kafka::rdkafka::config::ClientConfig;
use ledger_kafka::topics;

use crate::harness::*;

/// An admin client of the test's own, outside the ledger's client builder, as an
/// operator's tooling would be.
fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap()
}

fn settings_of(brokers: &str, topic: &str) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let mut answer = rt.block_on(admin(brokers).describe_configs(&[ResourceSpecifier::Topic(topic)], &options)).unwrap();
    let resource = answer.pop().unwrap().unwrap();
    resource.entries.into_iter().filter_map(|e| Some((e.name, e.value?))).collect()
}

#[test]
fn loan_events_is_kept_forever_and_a_topic_that_could_lose_facts_is_refused() {
    if Kind::from_env() != Kind::Kafka {
        eprintln!("topic settings test not run: Tansu 0.6.0 does not describe topic settings");
        return;
    }
    // A ledger's topics, created by the ledger.
    let broker = Broker::start();
    run_ok(loanctl().args(["topics", "create", "--partitions", "3", "--brokers", &broker.brokers()]));
    let events = settings_of(&broker.brokers(), topics::EVENTS);
    assert_eq!(events["retention.ms"], "-1");
    assert_eq!(events["retention.bytes"], "-1");
    assert_eq!(events["cleanup.policy"], "delete");
    assert_eq!(settings_of(&broker.brokers(), topics::REPAYMENTS)["retention.ms"], "604800000");
    assert_eq!(settings_of(&broker.brokers(), topics::RECEIPTS)["retention.ms"], "2592000000");
    assert_eq!(settings_of(&broker.brokers(), &topics::dlq(topics::APPLICATIONS))["retention.ms"], "2592000000");
    drop(broker);

    // loan.events created by someone else with Apache Kafka's defaults (7 days).
    let broker = Broker::start();
    create_without_settings(&broker.brokers(), topics::EVENTS, 3);
    let refusal = up_refusal(&broker.brokers(), "loanctl up started on a loan.events with a 7-day retention");
    assert!(
        refusal.contains("loan.events has retention.ms=604800000") && refusal.contains("retention.ms=-1"),
        "the refusal does not say what to change: {refusal}"
    );
}

#[test]
fn borrower_keyed_topics_with_another_partition_count_are_refused() {
    // loan.applications made by other tooling with 2 partitions, the rest by the ledger
    // with 3: a borrower's application and its facts would sit on different numbers.
    let broker = Broker::start();
    create_without_settings(&broker.brokers(), topics::APPLICATIONS, 2);
    let refusal = up_refusal(&broker.brokers(), "loanctl up started with loan.applications on 2 partitions and loan.events on 3");
    assert!(refusal.contains("loan.applications has 2 partitions but loan.events has 3"), "unclear refusal: {refusal}");
}

#[test]
fn a_claims_queue_of_more_than_one_partition_is_refused() {
    // Two partitions would give the ledger two id sequencers, and two inputs with one
    // id in two books could both be accepted again.
    let broker = Broker::start();
    create_without_settings(&broker.brokers(), topics::CLAIMS, 2);
    let refusal = up_refusal(&broker.brokers(), "loanctl up started with ledger.claims on 2 partitions");
    assert!(refusal.contains("ledger.claims has 2 partitions: it must have exactly 1"), "unclear refusal: {refusal}");
}

/// Creates `topic` as other tooling would: the broker's default settings.
fn create_without_settings(brokers: &str, topic: &str, partitions: i32) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let created = rt.block_on(admin(brokers).create_topics(&[new_topic], &AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");
}

/// Runs `loanctl up` (3 partitions), which must refuse to start; returns its last
/// stderr line. `started` is the failure message should it run.
fn up_refusal(brokers: &str, started: &str) -> String {
    let dir = TempDir::new("refusal");
    let out = loanctl()
        .args(["up", "--partitions", "3", "--http", &format!("127.0.0.1:{}", free_port()), "--brokers", brokers, "--data"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{started}: {stderr}");
    stderr.lines().last().unwrap_or_default().to_string()
}
