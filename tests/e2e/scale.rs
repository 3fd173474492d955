//! Scale-out: `loanctl up` twice against one broker shares the partitions (each
//! service's instances form one consumer group; each book has one writer at a time).
//! One instance is SIGKILLed and a third is added while a feed runs: the books move
//! between instances, and nothing is lost or decided twice.

use std::process::Stdio;

use crate::harness::*;

#[test]
fn two_ledgers_share_the_books_one_killed_and_a_third_added_mid_feed_change_nothing() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("scale");
    let file = generated(work.path(), "scale", 23, 30, 40);
    let (expected, expected_digest) = simulate(&file);
    let six = vec!["--partitions".to_string(), "6".to_string()];
    let first = Up::start_with(&brokers, &work.path().join("first"), free_port(), &six, &[]);
    let second = Up::start_with(&brokers, &work.path().join("second"), free_port(), &six, &[]);
    let mut feeder = loanctl()
        .args(["feed", "--wait-seconds", "180", "--brokers", &brokers])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("feed.log")).unwrap())
        .spawn()
        .unwrap();
    let lines = line_count(&file);
    wait_for_facts(&brokers, lines / 3, &mut feeder);
    first.kill();
    wait_for_facts(&brokers, lines * 2 / 3, &mut feeder);
    let third = Up::start_with(&brokers, &work.path().join("third"), free_port(), &six, &[]);
    let status = feeder.wait().unwrap();
    assert!(status.success(), "feed failed: {}", std::fs::read_to_string(work.path().join("feed.log")).unwrap());

    // Every instance answers for the whole ledger, and the same.
    for up in [&second, &third] {
        assert_eq!(export(&up.api), expected, "{}: export differs from loanctl simulate", up.api);
        assert_eq!(digest(&up.api), expected_digest, "{}: digest differs", up.api);
    }
    assert_eq!(replay(&brokers, &work.path().join("replay")), expected_digest, "replay gives another digest");
    super::assert_every_notice_once(&brokers, &file, &expected);
    // Both survivors wrote books (the group shared them).
    for name in ["second", "third"] {
        let log = std::fs::read_to_string(Up::log_path(&work.path().join(name))).unwrap();
        assert!(log.contains("writing these books"), "{name} never wrote a book:\n{log}");
    }
    second.stop();
    third.stop();
}

/// A producer with librdkafka's default partitioner (CRC32) puts a borrower's input on
/// another partition than Kafka's default (murmur2) gives its key: the intake routes
/// it to its book, where its fact lands, and a payment keyed by loan id reaches the
/// same book through the loan index.
#[test]
fn an_input_on_another_partition_than_its_book_is_decided_in_its_book() {
    use ledger_core::{Fact, Input};
    use ledger_kafka::{partition_for_key, topics};
    use ledger_proto::IntoProto;

    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("routing");
    let up = Up::start(&brokers, &work.path().join("data"), free_port());
    run_ok(loanctl().args(["open", "--brokers", &brokers, "--date", "2026-03-01"]));
    let Some(Input::Application(a)) = ledger_core::scenario::parse_line(&crate::midnight::application(7)).unwrap() else { unreachable!() };
    let home = partition_for_key(a.borrower_id.as_bytes(), 3);
    let wrong = (home + 1) % 3;
    super::produce_to(&brokers, topics::APPLICATIONS, wrong, &a.borrower_id, &ledger_proto::encode(&a.into_proto()));
    let payment = ledger_proto::pb::Repayment { payment_id: "P7".into(), loan_id: a.application_id.clone(), amount: "10.00".into(), currency: "CNY".into() };
    let payment_home = partition_for_key(a.application_id.as_bytes(), 3);
    wait_until_facts(&brokers, 4);
    super::produce_to(&brokers, topics::REPAYMENTS, payment_home, &a.application_id, &ledger_proto::encode(&payment));
    wait_until_facts(&brokers, 5);
    up.stop();

    let facts = crate::midnight::facts_by_partition(&brokers);
    let on = |wanted: &dyn Fn(&Fact) -> bool| facts.iter().find(|(_, fs)| fs.iter().any(wanted)).map(|(p, _)| *p);
    assert_eq!(on(&|f| matches!(f, Fact::ApplicationDecided(d) if d.application_id == a.application_id)), Some(home), "the application's fact is in its borrower's book");
    assert_eq!(on(&|f| matches!(f, Fact::RepaymentAccepted { payment_id, .. } if payment_id == "P7")), Some(home), "the payment reached the loan's book");
}

fn wait_until_facts(brokers: &str, facts: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while facts_on_events(brokers) < facts {
        assert!(std::time::Instant::now() < deadline, "loan.events did not reach {facts} facts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
