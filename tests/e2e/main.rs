//! End-to-end tests against a real broker (Apache Kafka, fetched and started by
//! scripts/kafka; Tansu with LEDGER_TEST_BROKER=tansu)
//! and the real `loanctl` binary: every service in `loanctl up`,
//! inputs through the real topics, read models in sled, the HTTP API.

mod bad_inputs;
mod corruption;
mod faults;
mod harness;
mod midnight;
mod restart;
mod scale;
mod security;
mod snapshots;
mod topic_settings;
mod uniqueness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use harness::*;
use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::message::Headers;
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
use ledger_proto::{pb, FromProto};

/// Every message of `topic`: (key, payload, headers as text).
fn read_topic(brokers: &str, topic: &str) -> Vec<(String, Vec<u8>, BTreeMap<String, String>)> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let kafka = KafkaConfig::new(brokers, "e2e-reader");
        let probe = OffsetProbe::new(&kafka).unwrap();
        let ends = probe.end_offsets(topic).unwrap();
        let consumer: StreamConsumer = kafka.consumer(&format!("e2e-reader-{}", free_port())).unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in ends.keys() {
            tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut positions: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
        let mut out = Vec::new();
        while ends.iter().any(|(p, e)| positions[p] < *e) {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("topic read timed out").unwrap();
            positions.insert(m.partition(), m.offset() + 1);
            let headers = m
                .headers()
                .map(|h| h.iter().map(|x| (x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).to_string())).collect())
                .unwrap_or_default();
            out.push((String::from_utf8_lossy(m.key().unwrap_or_default()).to_string(), m.payload().unwrap_or_default().to_vec(), headers));
        }
        out
    })
}

fn produce(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let producer = KafkaConfig::new(brokers, "e2e-producer").producer().unwrap();
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key).payload(payload);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    });
}

/// Produces one record to a given partition; returns its offset.
fn produce_to(brokers: &str, topic: &str, partition: i32, key: &str, payload: &[u8]) -> i64 {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let producer = KafkaConfig::new(brokers, "e2e-producer").producer().unwrap();
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).partition(partition).key(key).payload(payload);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap().offset
    })
}

/// Feeds `file` through `loanctl up`, then checks the live export and digest against
/// `loanctl simulate`, and a replay into an empty folder against the live digest.
fn feed_and_compare(broker: &Broker, up: &Up, file: &Path, work: &Path) {
    let (expected, expected_digest) = simulate(file);
    feed(&broker.brokers(), file);
    let live = export(&up.api);
    assert_eq!(live, expected, "live export differs from loanctl simulate for {}", file.display());
    let live_digest = digest(&up.api);
    assert_eq!(live_digest, expected_digest, "live digest differs from the in-process fold");
    let replayed = replay(&broker.brokers(), &work.join("replay"));
    assert_eq!(replayed, live_digest, "replay into an empty folder gives another digest");
}

#[test]
fn golden_scenarios_through_the_broker_equal_simulate_and_replay() {
    for name in ["spec-example", "overdue-cure", "writeoff-recovery", "limits-and-orders", "npl-blacklist", "first-month", "rewards", "id-reuse"] {
        // A fresh ledger for each (the topics have fixed names): a broker each.
        let broker = Broker::start();
        let dir = TempDir::new(name);
        let up = Up::start(&broker.brokers(), &dir.path().join("data"), free_port());
        feed_and_compare(&broker, &up, &repo_root().join(format!("tests/scenarios/{name}.jsonl")), dir.path());
        up.stop();
    }
}

#[test]
fn generated_portfolio_through_the_broker_equals_simulate() {
    let broker = Broker::start();
    let work = TempDir::new("generated");
    let file = generated(work.path(), "portfolio", 11, 40, 75);
    let up = Up::start(&broker.brokers(), &work.path().join("data"), free_port());
    feed_and_compare(&broker, &up, &file, work.path());
    assert_statements_add_up(&up.api, &export(&up.api));
    assert_metrics_count_what_was_fed(&broker.brokers(), &up.api, &file);
    up.stop();
}

/// GET /metrics counts what the feed sent and the ledger decided: every input read by
/// its intake and by the id sequencer, every fact produced, every refusal by its
/// reason, and the portfolio's gauges equal the export's figures.
fn assert_metrics_count_what_was_fed(brokers: &str, api: &str, file: &Path) {
    use ledger_core::{Fact, Input};
    let (status, text) = get_text(api, "/metrics");
    assert_eq!(status, 200, "{text}");
    let value = |name: &str, labels: &str| -> i64 {
        let series = if labels.is_empty() { name.to_string() } else { format!("{name}{{{labels}}}") };
        text.lines()
            .find_map(|l| l.strip_prefix(&series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0, |v| v.parse::<f64>().unwrap_or_else(|_| panic!("{series}: {v}")) as i64)
    };
    let inputs: Vec<Input> = std::fs::read_to_string(file).unwrap().lines().filter_map(|l| ledger_core::scenario::parse_line(l).unwrap()).collect();
    let count = |f: &dyn Fn(&Input) -> bool| inputs.iter().filter(|i| f(i)).count() as i64;
    let topics = [
        ("loan.applications", "ledger-origination", count(&|i| matches!(i, Input::Application(_)))),
        ("payments.repayments", "ledger-repayment", count(&|i| matches!(i, Input::Repayment(_)))),
        ("collections.actions", "ledger-collections", count(&|i| matches!(i, Input::Collections(_)))),
        ("merchant.updates", "ledger-monitoring", count(&|i| matches!(i, Input::MerchantUpdate(_)))),
    ];
    let mut all = 0;
    for (topic, group, fed) in topics {
        assert_eq!(value("ledger_messages_consumed_total", &format!(r#"topic="{topic}",group="{group}""#)), fed, "{topic} read by {group}\n{text}");
        all += fed;
    }
    assert!(all > 100, "a portfolio was fed");
    assert_eq!(value("ledger_messages_consumed_total", r#"topic="ledger.claims",group="ledger-claims""#), all, "claims read by the id sequencer");
    assert_eq!(value("ledger_messages_produced_total", r#"topic="ledger.claims""#), all, "claims queued by the intakes");
    let facts: Vec<Fact> = crate::midnight::facts_by_partition(brokers).into_values().flatten().collect();
    assert_eq!(value("ledger_messages_produced_total", r#"topic="loan.events""#), facts.len() as i64, "facts appended");
    // Refusals by reason, from the facts the writer appended.
    let mut reasons: BTreeMap<(String, String), i64> = BTreeMap::new();
    for fact in &facts {
        let (topic, why): (&str, Vec<String>) = match fact {
            Fact::ApplicationDecided(d) => ("loan.applications", d.reasons.iter().map(|r| r.as_str().to_string()).collect()),
            Fact::RepaymentRefused { reason, .. } => ("payments.repayments", vec![reason.as_str().to_string()]),
            Fact::ActionRefused { reason, .. } => ("collections.actions", vec![reason.as_str().to_string()]),
            Fact::MerchantUpdateRefused { reason, .. } => ("merchant.updates", vec![reason.as_str().to_string()]),
            _ => continue,
        };
        for reason in why {
            *reasons.entry((topic.to_string(), reason)).or_default() += 1;
        }
    }
    assert!(!reasons.is_empty(), "the portfolio has refusals");
    for ((topic, reason), n) in &reasons {
        assert_eq!(value("ledger_inputs_refused_total", &format!(r#"topic="{topic}",reason="{reason}""#)), *n, "{topic} {reason}");
    }
    assert_eq!(value("ledger_messages_dead_lettered_total", r#"topic="loan.applications""#), 0);
    // The portfolio's gauges.
    let portfolio = get_json(api, "/v1/portfolio").1;
    let cents = |v: &serde_json::Value| -> i64 { (v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap() * rust_decimal::Decimal::ONE_HUNDRED).try_into().unwrap() };
    assert_eq!(value("ledger_active_loans", ""), portfolio["active_loans"].as_i64().unwrap());
    assert_eq!(value("ledger_principal_outstanding_cents", ""), cents(&portfolio["outstanding_principal"]));
    for bucket in ["M1", "M2", "M3", "NPL"] {
        assert_eq!(value("ledger_overdue_principal_cents", &format!(r#"bucket="{bucket}""#)), cents(&portfolio["overdue_principal"][bucket]), "{bucket}");
    }
    // Latencies were observed, and lag is reported for the groups.
    assert!(value("ledger_input_to_fact_seconds_count", "") > 0, "{text}");
    assert!(text.contains("ledger_consumer_lag_messages{"), "{text}");
}

/// Every loan's statement (GET /v1/loans/{id}/history) from the live read models adds
/// up to the loan in /v1/export, and its payoff is what it owes by component.
fn assert_statements_add_up(api: &str, export: &serde_json::Value) {
    use rust_decimal::Decimal;
    let money = |v: &serde_json::Value| -> Decimal { v.as_str().unwrap_or_else(|| panic!("{v} is not money")).parse().unwrap() };
    let loans = export["loans"].as_array().unwrap();
    assert!(loans.len() >= 20, "expected a portfolio, got {} loans", loans.len());
    let mut kinds = BTreeSet::new();
    for loan in loans {
        let id = loan["loan_id"].as_str().unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id} would need escaping");
        let (status, history) = get_json(api, &format!("/v1/loans/{id}/history"));
        assert_eq!(status, 200, "{id}: {history}");
        assert_eq!(history["loan"], *loan, "{id}: the statement's loan is the export's");
        let entries = history["entries"].as_array().unwrap();
        let sum = |field: &str| entries.iter().map(|e| money(&e[field])).sum::<Decimal>();
        let owed = |field: &str| money(&loan[field]);
        assert_eq!(sum("principal_disbursed"), owed("principal"), "{id}");
        assert_eq!(sum("principal_disbursed") - sum("principal_paid"), owed("principal_outstanding"), "{id}");
        assert_eq!(sum("interest_charged"), owed("interest_accrued"), "{id}");
        assert_eq!(sum("interest_charged") - sum("interest_paid"), owed("interest_owed"), "{id}");
        assert_eq!(sum("penalty_charged"), owed("penalty_accrued"), "{id}");
        assert_eq!(sum("penalty_charged") - sum("penalty_paid"), owed("penalty_owed"), "{id}");
        assert_eq!((sum("overpayment"), sum("recovered")), (owed("overpayment"), owed("recovered")), "{id}");
        let last = entries.last().unwrap();
        for field in ["principal_outstanding", "interest_owed", "penalty_owed", "status", "dpd", "bucket", "maturity_date"] {
            assert_eq!(last[field], loan[field], "{id}: {field} after the last entry");
        }
        kinds.extend(entries.iter().map(|e| e["kind"].as_str().unwrap().to_string()));
        let (status, payoff) = get_json(api, &format!("/v1/loans/{id}/payoff"));
        assert_eq!(status, 200, "{id}: {payoff}");
        assert_eq!(payoff["date"], export["business_date"], "{id}");
        assert_eq!(
            [money(&payoff["penalty"]), money(&payoff["interest"]), money(&payoff["principal"])],
            [owed("penalty_owed"), owed("interest_owed"), owed("principal_outstanding")],
            "{id}: payoff"
        );
        assert_eq!(money(&payoff["total"]), owed("penalty_owed") + owed("interest_owed") + owed("principal_outstanding"), "{id}");
        assert_eq!(payoff["settles"], loan["status"] == "ACTIVE", "{id}");
    }
    for kind in ["DISBURSEMENT", "ACCRUAL", "PAYMENT", "LOAN_OVERDUE"] {
        assert!(kinds.contains(kind), "no {kind} entry in any statement: {kinds:?}");
    }
    let (status, body) = get_json(api, "/v1/loans/NO-SUCH-LOAN/history");
    assert!(status == 404 && body["error"].is_string(), "{status} {body}");
}

/// Notices on an output topic, deduplicated by event id; a duplicate must carry the
/// same content as the first copy.
fn notices(brokers: &str, topic: &str) -> (usize, BTreeMap<String, Vec<u8>>) {
    let messages = read_topic(brokers, topic);
    let mut by_id: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (_, payload, _) in &messages {
        let id = match topic {
            t if t == topics::ACCRUALS => ledger_proto::decode::<pb::AccrualPosting>(payload).unwrap().event_id,
            t if t == topics::OVERDUE => ledger_proto::decode::<pb::CollectionsNotice>(payload).unwrap().event_id,
            _ => ledger_proto::decode::<pb::RepaymentReceipt>(payload).unwrap().event_id,
        };
        assert!(!id.is_empty(), "{topic}: a notice without an event id");
        if let Some(first) = by_id.get(&id) {
            assert_eq!(first, payload, "{topic}: two different notices share the id {id}");
        }
        by_id.insert(id, payload.clone());
    }
    (messages.len(), by_id)
}

#[test]
fn services_killed_mid_feed_lose_nothing_and_count_nothing_twice() {
    let broker = Broker::start();
    let work = TempDir::new("sigkill");
    let file = generated(work.path(), "kill", 5, 30, 60);
    let (expected, expected_digest) = simulate(&file);
    let data = work.path().join("data");
    let api_port = free_port();
    let up = Up::start(&broker.brokers(), &data, api_port);
    let mut feeder = loanctl()
        .args(["feed", "--wait-seconds", "180", "--brokers", &broker.brokers()])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill every service three times, at a quarter, a half and three quarters of the
    // feed (by facts on loan.events: each non-duplicate input is one, each close three),
    // whatever the machine's and the broker's speed.
    let mut up = Some(up);
    let lines = line_count(&file);
    for quarter in 1..=3 {
        wait_for_facts(&broker.brokers(), lines * quarter / 4, &mut feeder);
        up.take().unwrap().kill();
        up = Some(Up::start(&broker.brokers(), &data, api_port));
    }
    let status = feeder.wait().unwrap();
    assert!(status.success(), "feed failed after the services were killed and restarted");
    let up = up.unwrap();
    assert_eq!(export(&up.api), expected, "export after SIGKILLs differs from loanctl simulate");
    assert_eq!(digest(&up.api), expected_digest);

    assert_every_notice_once(&broker.brokers(), &file, &expected);
    up.stop();
}

/// Nothing lost on the output topics: every notice the in-process fold of `file`
/// derives is there, once by id (copies re-sent after a restart or by a second
/// instance carry the same id and bytes); the interest postings add up to the income
/// of `expected` (its export).
fn assert_every_notice_once(brokers: &str, file: &Path, expected: &serde_json::Value) {
    let (_, accruals) = notices(brokers, topics::ACCRUALS);
    let (_, overdue) = notices(brokers, topics::OVERDUE);
    let (_, receipts) = notices(brokers, topics::RECEIPTS);
    let mut sink = Vec::new();
    let (ledger, _) = ledger_sim::run(
        &std::fs::read_to_string(file).unwrap(),
        std::sync::Arc::new(ledger_core::ProductConfig::default()),
        &mut sink,
    )
    .unwrap();
    drop(ledger);
    let expected_accruals = sink.iter().filter(|d| matches!(d, ledger_core::Derived::Accrual(_))).count();
    let expected_overdue = sink
        .iter()
        .filter(|d| {
            use ledger_core::Derived::{AutoBlacklisted, LoanRecalled, Overdue, RiskWarning};
            matches!(d, Overdue(_) | AutoBlacklisted { .. } | RiskWarning(_) | LoanRecalled(_))
        })
        .count();
    let expected_receipts = sink.iter().filter(|d| matches!(d, ledger_core::Derived::Receipt(_))).count();
    assert_eq!(accruals.len(), expected_accruals, "accrual postings lost or doubled");
    assert_eq!(overdue.len(), expected_overdue, "overdue notices lost or doubled");
    // Receipts: one per payment fact, plus one answer per later payment with a seen id
    // (DUPLICATE, or REJECTED with ID_CONFLICT when it says something else).
    let duplicates = receipts
        .values()
        .filter(|p| {
            let receipt = ledger_proto::decode::<pb::RepaymentReceipt>(p).unwrap();
            receipt.status == pb::ReceiptStatus::Duplicate as i32 || receipt.reason == Some(pb::Reason::IdConflict as i32)
        })
        .count();
    assert_eq!(receipts.len() - duplicates, expected_receipts, "receipts lost or doubled");
    // A DUPLICATE receipt only for a payment id the file really re-sends: a restart's
    // own re-delivered input must stay silent.
    let mut seen = BTreeSet::new();
    let resent = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| ledger_core::scenario::parse_line(l).unwrap())
        .filter(|i| matches!(i, ledger_core::Input::Repayment(r) if !seen.insert(r.payment_id.clone())))
        .count();
    assert_eq!(duplicates, resent, "DUPLICATE receipts that the file did not cause");
    // The postings add up to the income in the export.
    let interest: rust_decimal::Decimal = accruals
        .values()
        .map(|p| ledger_proto::decode::<pb::AccrualPosting>(p).unwrap().interest.parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    let income: rust_decimal::Decimal = expected["portfolio"]["interest_income"].as_str().unwrap().parse().unwrap();
    assert_eq!(interest, income, "the interest postings add up to the interest income");
}

#[test]
fn malformed_message_goes_to_the_dlq_unknown_loan_is_refused_and_bad_closes_too() {
    let broker = Broker::start();
    let work = TempDir::new("dlq");
    let up = Up::start(&broker.brokers(), &work.path().join("data"), free_port());
    let file = repo_root().join("tests/scenarios/spec-example.jsonl");
    feed(&broker.brokers(), &file);
    let before = export(&up.api);

    // Bytes that are no Repayment message, then a payment for a loan nobody has.
    produce(&broker.brokers(), topics::REPAYMENTS, "A1", b"\xff\xff not protobuf \x00");
    let unknown = pb::Repayment { payment_id: "PX".into(), loan_id: "NO-SUCH-LOAN".into(), amount: "10.00".into(), currency: String::new() };
    produce(&broker.brokers(), topics::REPAYMENTS, "NO-SUCH-LOAN", &ledger_proto::encode(&unknown));
    // A valid payment afterwards shows the service kept running.
    let good = pb::Repayment { payment_id: "PG".into(), loan_id: "A1".into(), amount: "1.00".into(), currency: "CNY".into() };
    produce(&broker.brokers(), topics::REPAYMENTS, "A1", &ledger_proto::encode(&good));
    wait_until(Duration::from_secs(60), || export(&up.api)["payments"].as_array().unwrap().iter().any(|p| p["payment_id"] == "PG"));

    let dlq = read_topic(&broker.brokers(), &topics::dlq(topics::REPAYMENTS));
    assert_eq!(dlq.len(), 1, "exactly the malformed message is dead-lettered");
    let (_, payload, headers) = &dlq[0];
    assert_eq!(payload.as_slice(), b"\xff\xff not protobuf \x00", "the DLQ keeps the original bytes");
    assert!(headers["dlq.reason"].contains("cannot read payments.repayments"), "{headers:?}");
    assert_eq!(headers["dlq.source.topic"], topics::REPAYMENTS);

    let receipts: Vec<pb::RepaymentReceipt> =
        read_topic(&broker.brokers(), topics::RECEIPTS).iter().map(|(_, p, _)| ledger_proto::decode(p).unwrap()).collect();
    let refused = receipts.iter().find(|r| r.payment_id == "PX").expect("a receipt for PX");
    assert_eq!(refused.status, pb::ReceiptStatus::Rejected as i32);
    assert_eq!(ledger_core::state::PaymentRecord::from_proto(refused.clone()).unwrap().reason, Some(ledger_core::Reason::UnknownLoan));

    // Day close refuses a gap and a repeated day, and changes nothing then.
    for (date, why) in [("2026-01-05", "the open business date is 2026-01-02"), ("2026-01-01", "2026-01-01 is already closed")] {
        let out = loanctl().args(["close-day", "--brokers", &broker.brokers(), "--date", date]).output().unwrap();
        assert!(!out.status.success(), "close-day {date} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let after = export(&up.api);
    assert_eq!(after["business_date"], "2026-01-02");
    // Only PG changed the loan: 1.00 against the 11.94 of interest charged at the close.
    assert_eq!(after["loans"][0]["principal_outstanding"], "19900.00");
    assert_eq!(after["loans"][0]["interest_owed"], "10.94");
    assert_eq!(after["borrowers"], before["borrowers"]);
    let px = after["payments"].as_array().unwrap().iter().find(|p| p["payment_id"] == "PX").unwrap();
    assert_eq!((px["status"].as_str(), px["reason"].as_str()), (Some("REJECTED"), Some("UNKNOWN_LOAN")));
    up.stop();
}

#[test]
fn collections_consumer_sees_overdue_bucket_change_and_cure_with_amounts() {
    let broker = Broker::start();
    let work = TempDir::new("overdue");
    let up = Up::start(&broker.brokers(), &work.path().join("data"), free_port());
    feed(&broker.brokers(), &repo_root().join("tests/scenarios/overdue-cure.jsonl"));
    // Wait until every reader is done (feed does), then read loan.overdue as the
    // collections team would.
    let notices: Vec<pb::OverdueNotice> = read_topic(&broker.brokers(), topics::OVERDUE)
        .iter()
        .filter_map(|(_, p, _)| match ledger_proto::decode::<pb::CollectionsNotice>(p).unwrap().notice {
            Some(pb::collections_notice::Notice::Overdue(o)) => Some(o),
            _ => None,
        })
        .collect();
    let summary: BTreeSet<(String, u32, String, String, String, String, String)> = notices
        .iter()
        .map(|n| {
            let kind = pb::NoticeKind::try_from(n.kind).map(|k| k.as_str_name().to_string()).unwrap_or_default();
            (kind, n.dpd, pb::Bucket::try_from(n.bucket).unwrap().as_str_name().to_string(), n.date.clone(), n.principal_owed.clone(), n.interest_owed.clone(), n.penalty_owed.clone())
        })
        .collect();
    let s = |x: &str| x.to_string();
    // Worked out in tests/scenarios/README.md (overdue-cure).
    let expected: BTreeSet<_> = [
        (s("LOAN_OVERDUE"), 1, s("M1"), s("2026-03-06"), s("2000.00"), s("6.00"), s("1.80")),
        (s("BUCKET_CHANGED"), 31, s("M2"), s("2026-04-05"), s("2000.00"), s("6.00"), s("55.80")),
        (s("LOAN_CURED"), 32, s("CURRENT"), s("2026-04-07"), s("0.00"), s("0.00"), s("0.00")),
    ]
    .into_iter()
    .collect();
    assert_eq!(summary, expected);
    assert!(notices.iter().all(|n| n.loan_id == "A1" && n.borrower_id == "B1"));
    up.stop();
}

#[test]
fn merchant_updates_through_the_broker_equal_simulate_and_collections_sees_warnings_and_recalls() {
    let broker = Broker::start();
    let work = TempDir::new("monitoring");
    let up = Up::start(&broker.brokers(), &work.path().join("data"), free_port());
    feed_and_compare(&broker, &up, &repo_root().join("tests/scenarios/monitoring-recall.jsonl"), work.path());
    // loan.overdue as the collections team reads it: every RISK_WARNING and
    // LOAN_RECALLED decodes, with the figures of tests/scenarios/README.md
    // (monitoring-recall).
    let mut warnings = BTreeSet::new();
    let mut recalls = BTreeSet::new();
    for (key, payload, _) in read_topic(&broker.brokers(), topics::OVERDUE) {
        let notice = ledger_proto::decode::<pb::CollectionsNotice>(&payload).unwrap();
        match ledger_core::Derived::from_proto(notice).unwrap() {
            ledger_core::Derived::RiskWarning(w) => {
                assert_eq!(key, w.borrower_id, "a notice is keyed by its borrower");
                let loans: Vec<(String, String)> = w.loans.iter().map(|l| (l.loan_id.clone(), l.principal_outstanding.to_string())).collect();
                warnings.insert((w.borrower_id, w.date.to_string(), w.score.to_string(), w.previous_score.to_string(), loans));
            }
            ledger_core::Derived::LoanRecalled(r) => {
                assert_eq!(key, r.borrower_id, "a notice is keyed by its borrower");
                recalls.insert((
                    r.loan_id,
                    r.date.to_string(),
                    r.previous_maturity_date.to_string(),
                    r.maturity_date.to_string(),
                    [r.principal_owed.to_string(), r.interest_owed.to_string(), r.penalty_owed.to_string()],
                ));
            }
            _ => {}
        }
    }
    let s = |x: &str| x.to_string();
    let exposure = vec![(s("A1"), s("10000.00")), (s("A2"), s("2000.00"))];
    let expected_warnings: BTreeSet<_> = [
        (s("B1"), s("2026-02-03"), s("45.00"), s("100.00"), exposure.clone()),
        (s("B1"), s("2026-02-03"), s("39.80"), s("45.00"), exposure),
    ]
    .into_iter()
    .collect();
    assert_eq!(warnings, expected_warnings);
    let expected_recalls: BTreeSet<_> = [
        (s("A1"), s("2026-02-03"), s("2026-04-02"), s("2026-02-10"), [s("10000.00"), s("12.00"), s("0.00")]),
        (s("A2"), s("2026-02-03"), s("2026-02-11"), s("2026-02-10"), [s("2000.00"), s("2.00"), s("0.00")]),
    ]
    .into_iter()
    .collect();
    assert_eq!(recalls, expected_recalls);
    up.stop();
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "condition not reached within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
