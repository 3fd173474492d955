//! A broken log stops the reader: a fact the ledger wrote, copied to a partition its
//! key does not belong on (as a log written with another partitioner has it), makes
//! `loanctl replay` fail with an error that names topic, partition and offset, instead
//! of being skipped or folded into the wrong book.

use ledger_kafka::{partition_for_key, topics};

use crate::harness::*;

#[test]
fn a_fact_on_the_wrong_partition_stops_the_reader_naming_where_it_is() {
    let broker = Broker::start();
    let dir = TempDir::new("corruption");
    let up = Up::start(&broker.brokers(), &dir.path().join("data"), free_port());
    feed(&broker.brokers(), &repo_root().join("tests/scenarios/spec-example.jsonl"));
    up.stop();

    // B1's application fact, as the ledger wrote it, copied to another partition.
    let (key, payload) = super::read_topic(&broker.brokers(), topics::EVENTS)
        .into_iter()
        .map(|(key, payload, _)| (key, payload))
        .find(|(key, _)| key == "B1")
        .expect("a fact keyed B1");
    let home = partition_for_key(key.as_bytes(), 3);
    let wrong = (home + 1) % 3;
    let offset = super::produce_to(&broker.brokers(), topics::EVENTS, wrong, &key, &payload);

    let out = loanctl().args(["replay", "--brokers", &broker.brokers(), "--data"]).arg(dir.path().join("replay")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "replay folded a fact on the wrong partition");
    let expected = format!("corrupt log: loan.events/{wrong}/{offset}: a fact keyed \"B1\" belongs on partition {home}");
    assert!(stderr.lines().last().unwrap_or_default().contains(&expected), "wanted {expected:?} in: {stderr}");
}

/// A fact that does not fit its book where it stands (here a day close that skips a
/// business date, as no writer decides it) stops every reader: replay, and a book
/// writer or publisher given that partition, with the topic, partition and offset.
#[test]
fn a_fact_that_does_not_fit_its_book_stops_the_reader_naming_where_it_is() {
    use ledger_proto::IntoProto;

    let broker = Broker::start();
    let dir = TempDir::new("misfit");
    let up = Up::start(&broker.brokers(), &dir.path().join("data"), free_port());
    feed(&broker.brokers(), &repo_root().join("tests/scenarios/spec-example.jsonl"));
    up.stop();

    let gap = ledger_core::Fact::DayClosed { date: ledger_core::Date::parse("2026-01-09").unwrap() };
    let mut event = gap.into_proto();
    event.event_id = "close:2026-01-09@1".into();
    let offset = super::produce_to(&broker.brokers(), topics::EVENTS, 1, "close:2026-01-09", &ledger_proto::encode(&event));

    let out = loanctl().args(["replay", "--brokers", &broker.brokers(), "--data"]).arg(dir.path().join("replay")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "replay folded a fact that does not fit its book");
    let expected = format!("corrupt log: loan.events/1/{offset}: the fact close:2026-01-09 does not fit the book at its position");
    assert!(stderr.lines().last().unwrap_or_default().contains(&expected), "wanted {expected:?} in: {stderr}");
}
