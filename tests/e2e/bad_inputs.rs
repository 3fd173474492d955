//! The bad-input corpus through the real broker (issue 10, item 1): a few hundred
//! messages of every kind of bad (ledger_sim::corpus) published straight to the four
//! input topics of a ledger that holds a generated portfolio. Each one is refused (its
//! refusal fact on loan.events, a REJECTED receipt for a payment; an id re-used with
//! other content is answered ID_CONFLICT and recorded only for payments) or
//! dead-lettered on `<topic>.dlq` with its original bytes, exactly as the in-process
//! verdict says; the services keep running (a valid payment afterwards is applied and
//! `loanctl up` stops cleanly); and the live export and digest equal the in-process
//! fold of the portfolio and the corpus, whose portfolio part equals `loanctl
//! simulate` of the file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ledger_core::handler::InputKind;
use ledger_core::{Discard, Fact, ProductConfig};
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::{pb, FromProto};
use ledger_sim::corpus::{self, BadMessage, Verdict};

use crate::harness::*;

const SEED: u64 = 10;
const PER_TOPIC: usize = 300;


#[test]
fn bad_inputs_through_the_broker_are_refused_or_dead_lettered_and_change_nothing_else() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("bad-inputs");
    let file = generated(work.path(), "portfolio", SEED, 30, 80);
    let up = Up::start(&brokers, &work.path().join("data"), free_port());
    feed(&brokers, &file);

    // The expected state: the portfolio folded in process (it is what simulate says),
    // then every message decided as the book writer decides it.
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut expected, _) = ledger_sim::run(&text, std::sync::Arc::new(ProductConfig::default()), &mut Discard).unwrap();
    assert_eq!(serde_json::to_value(expected.export()).unwrap(), simulate(&file).0, "the in-process fold is simulate's");
    let messages = corpus::generate(SEED, &expected, PER_TOPIC);
    let verdicts: Vec<Verdict> = messages
        .iter()
        .map(|m| {
            // The runtime's own decoder reads every message as the corpus does.
            assert_eq!(ledger_runtime::service::decode_input(m.kind, &m.bytes), corpus::decode(m.kind, &m.bytes), "{}", m.category);
            let v = corpus::verdict(ledger_sim::decider(m.kind), &expected, 0, m.kind, &m.bytes);
            assert!(v.is_refused_or_dead_lettered(), "{} {}: {v:?}", corpus::topic(m.kind), m.category);
            if let Verdict::Recorded(fact) = &v {
                expected.apply(0, fact, &mut Discard);
            }
            v
        })
        .collect();
    let sources = publish(&brokers, &messages);
    // A valid payment afterwards: the repayment service is still deciding.
    let loan = expected.export().loans.into_iter().find(|l| l.status == "ACTIVE").expect("an active loan");
    let good = pb::Repayment { payment_id: "GOODPAY1".into(), loan_id: loan.loan_id.clone(), amount: "1.00".into(), currency: String::new() };
    let good_message = BadMessage { kind: InputKind::Repayment, category: "valid", key: loan.loan_id.clone(), bytes: ledger_proto::encode(&good) };
    publish(&brokers, std::slice::from_ref(&good_message));
    let Verdict::Recorded(fact) = corpus::verdict(ledger_sim::decider(InputKind::Repayment), &expected, 0, InputKind::Repayment, &good_message.bytes) else {
        panic!("the valid payment is not accepted in process")
    };
    assert!(matches!(fact, Fact::RepaymentAccepted { .. }));
    expected.apply(0, &fact, &mut Discard);
    wait_until_decided(&brokers);

    // The live state is the fold's, once the projector has read it all.
    let want = serde_json::to_value(expected.export()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while export(&up.api) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
    }
    let live = export(&up.api);
    for part in ["business_date", "loans", "borrowers", "applications", "payments", "collections_actions", "merchant_updates", "portfolio"] {
        assert_eq!(live[part], want[part], "live export's {part} differs from the in-process fold");
    }
    assert_eq!(digest(&up.api), expected.digest());

    // Each message where its verdict says: a fact with its source, a dead letter with
    // its bytes, or (an id re-used with other content, not a payment) nothing at all.
    let mut facts: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for (_, payload, _) in read_all(&brokers, topics::EVENTS) {
        let event: pb::LoanEvent = ledger_proto::decode(&payload).unwrap();
        let source = event.source.clone();
        facts.entry(source).or_default().push(Fact::from_proto(event).unwrap());
    }
    let mut dead: BTreeMap<String, (Vec<u8>, String)> = BTreeMap::new();
    for kind in corpus::KINDS {
        for (_, payload, headers) in read_all(&brokers, &topics::dlq(corpus::topic(kind))) {
            let source = format!("{}/{}/{}", headers["dlq.source.topic"], headers["dlq.source.partition"], headers["dlq.source.offset"]);
            assert!(dead.insert(source.clone(), (payload, headers["dlq.reason"].clone())).is_none(), "{source} dead-lettered twice");
        }
    }
    let receipts: BTreeMap<String, pb::RepaymentReceipt> = read_all(&brokers, topics::RECEIPTS)
        .into_iter()
        .map(|(_, p, _)| ledger_proto::decode::<pb::RepaymentReceipt>(&p).unwrap())
        .filter(|r| r.status == pb::ReceiptStatus::Rejected as i32)
        .map(|r| (r.payment_id.clone(), r))
        .collect();
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for ((m, verdict), source) in messages.iter().zip(&verdicts).zip(&sources) {
        let at = format!("{} {} at {source}", corpus::topic(m.kind), m.category);
        let recorded = facts.get(source).map(Vec::as_slice).unwrap_or_default();
        match verdict {
            Verdict::DeadLetter(_) => {
                let (bytes, reason) = dead.get(source).unwrap_or_else(|| panic!("{at}: not dead-lettered"));
                assert_eq!(bytes, &m.bytes, "{at}: the dead letter is not the original bytes");
                assert!(!reason.is_empty(), "{at}: a dead letter without a reason");
                assert!(recorded.is_empty(), "{at}: dead-lettered and decided: {recorded:?}");
                *counts.entry((corpus::topic(m.kind), "dead-lettered")).or_default() += 1;
            }
            Verdict::Recorded(fact) => {
                assert_eq!(recorded, std::slice::from_ref(fact), "{at}: another fact than the in-process refusal");
                assert!(!dead.contains_key(source), "{at}: refused and dead-lettered");
                if let Fact::RepaymentRefused { payment_id, .. } | Fact::PaymentSeen { payment_id, .. } = fact {
                    assert!(receipts.contains_key(payment_id), "{at}: no REJECTED receipt for {payment_id}");
                }
                *counts.entry((corpus::topic(m.kind), "refused")).or_default() += 1;
            }
            Verdict::Seen(_) => {
                assert!(recorded.is_empty() && !dead.contains_key(source), "{at}: a re-used id left a trace: {recorded:?}");
                *counts.entry((corpus::topic(m.kind), "id conflict, unrecorded")).or_default() += 1;
            }
        }
    }
    eprintln!("bad inputs through the broker: {counts:?}");
    assert_eq!(dead.len(), verdicts.iter().filter(|v| matches!(v, Verdict::DeadLetter(_))).count(), "dead letters the corpus did not cause");
    up.stop();
}

/// Publishes each message to its topic with its key; returns each one's
/// "topic/partition/offset", as facts and dead letters name their source.
fn publish(brokers: &str, messages: &[BadMessage]) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let producer = KafkaConfig::new(brokers, "e2e-bad-inputs").producer().unwrap();
        let mut sent = Vec::new();
        for m in messages {
            let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(corpus::topic(m.kind)).key(m.key.as_str()).payload(m.bytes.as_slice());
            sent.push((corpus::topic(m.kind), producer.send_result(record).map_err(|(e, _)| e).unwrap()));
        }
        let mut sources = Vec::new();
        for (topic, delivery) in sent {
            let delivered = delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            sources.push(format!("{topic}/{}/{}", delivered.partition, delivered.offset));
        }
        sources
    })
}

/// Every record of `topic` (empty when it has none or does not exist yet).
fn read_all(brokers: &str, topic: &str) -> Vec<(String, Vec<u8>, BTreeMap<String, String>)> {
    let kafka = KafkaConfig::new(brokers, "e2e-bad-inputs-probe");
    match OffsetProbe::new(&kafka).and_then(|p| p.end_offsets(topic)) {
        Ok(ends) if ends.values().any(|e| *e > 0) => crate::read_topic(brokers, topic),
        _ => Vec::new(),
    }
}

