//! SPEC section 9 across books: ids and order ids reused by inputs of two books sent at
//! the same moment, while two ledgers (two book writers) share the books. Whichever
//! of a pair is decided first counts; the other changes nothing: one loan per
//! application id, one loan per order, one accepted payment per payment id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ledger_core::{Fact, Input, Reason, Seen};
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::{partition_for_key, topics, KafkaConfig};
use ledger_proto::IntoProto;

use crate::harness::*;

const PAIRS: usize = 40;

fn application(id: &str, borrower: &str, product: &str, order: Option<&str>) -> String {
    let orders = order.map_or(String::new(), |o| format!(r#","orders":[{{"order_id":"{o}","amount":"1000.00"}}]"#));
    format!(
        r#"{{"type":"application","application_id":"{id}","borrower_id":"{borrower}","product":"{product}","amount":"1000.00","term_days":30{orders},"merchant":{{"kind":"PLATFORM","annual_sales":"3000000.00","sales_growth":"0.30","orders_12m":8000,"seller_rating":5,"active_days_90":85}}}}"#
    )
}

#[test]
fn ids_reused_in_two_books_at_the_same_moment_count_once() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("uniqueness");
    let six = vec!["--partitions".to_string(), "6".to_string()];
    let first = Up::start_with(&brokers, &work.path().join("first"), free_port(), &six, &[]);
    let second = Up::start_with(&brokers, &work.path().join("second"), free_port(), &six, &[]);
    // Both write books: the group split partitions 0-2 and 3-5 between them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(Up::log_path(&work.path().join("second"))).unwrap_or_default().contains("writing these books") {
        assert!(Instant::now() < deadline, "the second ledger never got a book");
        std::thread::sleep(Duration::from_millis(100));
    }
    run_ok(loanctl().args(["open", "--brokers", &brokers, "--date", "2026-03-01"]));

    // Borrowers of the low books (0-2) and of the high books (3-5): each pair's two
    // inputs go to books of different writers.
    let borrowers = |low: bool| (0..).map(|n| format!("UB{n}")).filter(move |b| (partition_for_key(b.as_bytes(), 6) < 3) == low);
    let (low, high): (Vec<String>, Vec<String>) = (borrowers(true).take(2 * PAIRS).collect(), borrowers(false).take(2 * PAIRS).collect());
    let mut lines = Vec::new();
    for i in 0..PAIRS {
        // One application id from two borrowers (other content: ID_CONFLICT).
        lines.push(application(&format!("UA{i}"), &low[i], "CREDIT", None));
        lines.push(application(&format!("UA{i}"), &high[i], "CREDIT", None));
        // One order in two applications of two borrowers (ORDER_ALREADY_FINANCED).
        lines.push(application(&format!("UOL{i}"), &low[PAIRS + i], "ORDER", Some(&format!("ORD{i}"))));
        lines.push(application(&format!("UOH{i}"), &high[PAIRS + i], "ORDER", Some(&format!("ORD{i}"))));
    }
    publish(&brokers, &lines);
    wait_until_decided(&brokers);

    let facts = crate::midnight::facts_by_partition(&brokers);
    let all: Vec<&Fact> = facts.values().flatten().collect();
    let decided = |id: &str| -> Vec<&ledger_core::fact::ApplicationDecided> {
        all.iter().filter_map(|f| if let Fact::ApplicationDecided(d) = f { Some(d) } else { None }).filter(|d| d.application_id == id).collect()
    };
    let mut loans_of = BTreeMap::new();
    for i in 0..PAIRS {
        let id = format!("UA{i}");
        let decisions = decided(&id);
        assert_eq!(decisions.len(), 1, "application id {id} sent by two borrowers was decided {} times: {decisions:?}", decisions.len());
        assert!(decisions[0].disbursement.is_some(), "{id}: the first counts and is approved");
        loans_of.insert(i, (id, decisions[0].borrower_id.clone()));
        let order = format!("ORD{i}");
        let financing: Vec<_> = all
            .iter()
            .filter_map(|f| if let Fact::ApplicationDecided(d) = f { d.disbursement.as_ref() } else { None })
            .filter(|d| d.order_ids.contains(&order))
            .collect();
        assert_eq!(financing.len(), 1, "order {order} financed {} times", financing.len());
        let refused: Vec<_> = [format!("UOL{i}"), format!("UOH{i}")].iter().flat_map(|id| decided(id)).filter(|d| d.disbursement.is_none()).collect();
        assert_eq!(refused.len(), 1, "order {order}: one of the two applications is refused");
        assert_eq!(refused[0].reasons, vec![Reason::OrderAlreadyFinanced], "order {order}");
    }

    // One payment id for two loans of two books, sent at the same moment.
    let mut payments = Vec::new();
    for i in 0..PAIRS {
        let order_loan = [format!("UOL{i}"), format!("UOH{i}")].into_iter().find(|id| decided(id)[0].disbursement.is_some()).unwrap();
        for loan in [&loans_of[&i].0, &order_loan] {
            payments.push(format!(r#"{{"type":"repayment","payment_id":"UP{i}","loan_id":"{loan}","amount":"10.00"}}"#));
        }
    }
    publish(&brokers, &payments);
    wait_until_decided(&brokers);
    let facts = crate::midnight::facts_by_partition(&brokers);
    let all: Vec<&Fact> = facts.values().flatten().collect();
    for i in 0..PAIRS {
        let id = format!("UP{i}");
        let accepted = all.iter().filter(|f| matches!(f, Fact::RepaymentAccepted { payment_id, .. } if *payment_id == id)).count();
        assert_eq!(accepted, 1, "payment id {id} for two loans was accepted {accepted} times");
        let conflicts = all
            .iter()
            .filter(|f| matches!(f, Fact::PaymentSeen { payment_id, seen: Seen::IdConflict, .. } if *payment_id == id))
            .count();
        assert_eq!(conflicts, 1, "payment id {id}: the other is answered ID_CONFLICT");
    }

    // Both ledgers answer the same books, and a replay gives the same digest.
    let deadline = Instant::now() + Duration::from_secs(60);
    while digest(&first.api) != digest(&second.api) {
        assert!(Instant::now() < deadline, "the two ledgers' read models differ");
        std::thread::sleep(Duration::from_millis(200));
    }
    let live = export(&first.api);
    assert_eq!(live["loans"].as_array().unwrap().len(), 2 * PAIRS, "one loan per application id and per order");
    assert_eq!(replay(&brokers, &work.path().join("replay")), digest(&first.api), "replay gives another digest");
    first.stop();
    second.stop();
}

/// Sends scenario lines to their input topics, each keyed as the contract says (the
/// default murmur2 partitioner), all at once.
fn publish(brokers: &str, lines: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let producer = KafkaConfig::new(brokers, "e2e-uniqueness").producer().unwrap();
        let mut sent = Vec::new();
        for line in lines {
            let (topic, key, payload) = match ledger_core::scenario::parse_line(line).unwrap() {
                Some(Input::Application(a)) => (topics::APPLICATIONS, a.borrower_id.clone(), ledger_proto::encode(&a.into_proto())),
                Some(Input::Repayment(r)) => (topics::REPAYMENTS, r.loan_id.clone(), ledger_proto::encode(&r.into_proto())),
                other => panic!("not sent here: {other:?}"),
            };
            let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key.as_str()).payload(payload.as_slice());
            sent.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        for delivery in sent {
            delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    });
}

