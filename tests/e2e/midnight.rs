//! Midnight: applications keep arriving while days close. A fact belongs to the date
//! open where it stands in its partition, so every loan's disbursed_on must be the
//! date of the last Opened or DayClosed before its fact in its partition (plus one day
//! after a close), whichever moment the deciding service thought it was.

use std::collections::BTreeMap;
use std::time::Duration;

use ledger_core::{Date, Fact, Input};
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::{pb, FromProto, IntoProto};

use crate::harness::*;

/// Every fact of loan.events, partition by partition, in order.
pub(crate) fn facts_by_partition(brokers: &str) -> BTreeMap<i32, Vec<Fact>> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let kafka = KafkaConfig::new(brokers, "e2e-midnight");
        let ends = OffsetProbe::new(&kafka).unwrap().end_offsets(topics::EVENTS).unwrap();
        let consumer: StreamConsumer = kafka.consumer("e2e-midnight").unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in ends.keys() {
            tpl.add_partition_offset(topics::EVENTS, *p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut positions: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
        let mut out: BTreeMap<i32, Vec<Fact>> = BTreeMap::new();
        while ends.iter().any(|(p, e)| positions[p] < *e) {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("read timed out").unwrap();
            positions.insert(m.partition(), m.offset() + 1);
            let event: pb::LoanEvent = ledger_proto::decode(m.payload().unwrap_or_default()).unwrap();
            out.entry(m.partition()).or_default().push(Fact::from_proto(event).unwrap());
        }
        out
    })
}

pub(crate) fn application(n: usize) -> String {
    format!(
        r#"{{"type":"application","application_id":"M{n}","borrower_id":"MB{n}","product":"CREDIT","amount":"1000.00","term_days":30,"merchant":{{"kind":"PLATFORM","annual_sales":"3000000.00","sales_growth":"0.30","orders_12m":8000,"seller_rating":5,"active_days_90":85}}}}"#
    )
}

#[test]
fn applications_flowing_through_day_closes_are_dated_where_their_facts_stand() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("midnight");
    let up = Up::start(&brokers, &work.path().join("data"), free_port());
    run_ok(loanctl().args(["open", "--brokers", &brokers, "--date", "2026-03-01"]));
    // A producer sends the applications at a steady pace while three days close.
    let count = 3_000;
    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let producer = KafkaConfig::new(&brokers, "e2e-midnight-platform").producer().unwrap();
                for n in 0..count {
                    let Some(Input::Application(a)) = ledger_core::scenario::parse_line(&application(n)).unwrap() else { unreachable!() };
                    let payload = ledger_proto::encode(&a.into_proto());
                    let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topics::APPLICATIONS).key(a.borrower_id.as_str()).payload(payload.as_slice());
                    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
                    if n % 10 == 9 {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
            })
        })
    };
    let closes = 3;
    for _ in 0..closes {
        std::thread::sleep(Duration::from_millis(1_500));
        run_ok(loanctl().args(["close-day", "--brokers", &brokers]));
    }
    producer.join().unwrap();
    let expected_facts = 3 + count as i64 + 3 * closes;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while facts_on_events(&brokers) < expected_facts {
        assert!(std::time::Instant::now() < deadline, "the applications were not all decided");
        std::thread::sleep(Duration::from_millis(50));
    }
    up.stop();

    let mut loans = 0;
    let mut dates = std::collections::BTreeSet::new();
    let mut closes_seen = BTreeMap::new();
    for (partition, facts) in facts_by_partition(&brokers) {
        let mut open: Option<Date> = None;
        for fact in facts {
            match &fact {
                Fact::Opened { date } => open = Some(*date),
                Fact::DayClosed { date } => {
                    assert_eq!(open, Some(*date), "partition {partition}: closed a day that was not open");
                    open = Some(date.next());
                    *closes_seen.entry(partition).or_insert(0) += 1;
                }
                Fact::ApplicationDecided(decided) => {
                    let disbursement = decided.disbursement.as_ref().expect("every application here is approved");
                    assert_eq!(
                        Some(disbursement.disbursed_on),
                        open,
                        "partition {partition}: loan {} was disbursed on {} but its fact stands where {open:?} is open",
                        disbursement.loan_id,
                        disbursement.disbursed_on
                    );
                    assert_eq!(disbursement.maturity_date, disbursement.disbursed_on.add_days(30));
                    dates.insert(disbursement.disbursed_on);
                    loans += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(loans, count, "every application became one loan");
    assert!(dates.len() >= 2, "the closes fell between applications: loans were disbursed on {dates:?}");
    assert!(closes_seen.values().all(|n| *n == closes), "every partition closed {closes} days: {closes_seen:?}");
}
