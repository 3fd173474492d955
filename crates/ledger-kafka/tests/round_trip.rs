//! Produce, consume, end offsets and dead letters, against the in-process mock
//! broker and against the real broker (Tansu, Kafka) that `LEDGER_TEST_BROKERS` names
//! (scripts/test sets it; the test fails without it), e.g.:
//!
//! ```text
//! scripts/kafka start --port 19092 --dir "$(mktemp -d)"
//! LEDGER_TEST_BROKERS=127.0.0.1:19092 cargo test -p ledger-kafka -- --nocapture
//! ```
//!
//! Tansu 0.6.0's `memory://` storage (`dev-broker start --memory`) needs
//! `LEDGER_KAFKA_BATCH_NUM_MESSAGES=1` to pass: it keeps record batches whole,
//! answers ListOffsets with the last batch's base offset + 1, and returns
//! nothing to a fetch that starts inside a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use ledger_kafka::rdkafka::message::Message;
use ledger_kafka::rdkafka::producer::FutureRecord;
use ledger_kafka::rdkafka::{Offset, TopicPartitionList};
use ledger_kafka::{
    create_topics, dead_letter, end_offsets, topic_partitions, topics, DeadLetterOrigin,
    KafkaConfig, MockBroker, OffsetProbe,
};

const MESSAGES: usize = 100;
const PARTITIONS: i32 = 3;
const BORROWERS: usize = 7;
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A topic name no earlier run has used, so that the test can run again and
/// again against a broker that keeps its data.
fn fresh_topic(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test.{label}.{}.{nanos}", std::process::id())
}

#[tokio::test]
async fn mock_broker_round_trip() {
    let topic = fresh_topic("mock");
    let dlq_topic = topics::dlq(&topic);
    let broker = MockBroker::start(&[(&topic, PARTITIONS), (&dlq_topic, 1)]).unwrap();
    println!("mock broker at {}", broker.bootstrap_servers());
    round_trip(&broker.config("ledger-kafka-test"), &topic).await;
}

#[tokio::test]
async fn real_broker_round_trip() {
    // Not a silent skip: a run without a broker has not tested the real thing.
    // scripts/test (the project's test command) starts one and sets the variable.
    let brokers = std::env::var("LEDGER_TEST_BROKERS").expect(
        "LEDGER_TEST_BROKERS is not set: run scripts/test, or scripts/kafka start --port 19092 \
         and LEDGER_TEST_BROKERS=127.0.0.1:19092 cargo test -p ledger-kafka",
    );
    let config = KafkaConfig::from_env_and_args(Some(&brokers), "ledger-kafka-test", &[]).unwrap();
    let topic = fresh_topic("real");
    let dlq_topic = topics::dlq(&topic);
    let wanted = [(topic.as_str(), PARTITIONS), (dlq_topic.as_str(), 1)];

    let started = Instant::now();
    create_topics(&config, &wanted).await.unwrap();
    println!("created topics in {} ms", started.elapsed().as_millis());
    // A second call finds them present and succeeds.
    create_topics(&config, &wanted).await.unwrap();
    round_trip(&config, &topic).await;
}

async fn round_trip(config: &KafkaConfig, topic: &str) {
    assert_eq!(topic_partitions(config, topic).unwrap(), vec![0, 1, 2]);
    let before = end_offsets(config, topic).unwrap();
    assert_eq!(before, BTreeMap::from([(0, 0), (1, 0), (2, 0)]));

    // Produce: keys spread over the partitions; each key's messages must come
    // back in the order sent.
    let producer = config.producer().unwrap();
    let started = Instant::now();
    // Enqueue everything first so that the producer batches, then wait for
    // each acknowledgement in order.
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let key = format!("borrower-{}", i % BORROWERS);
        let payload = format!("message-{i}");
        let record = FutureRecord::to(topic).key(&key).payload(&payload);
        let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
        pending.push((key, i, delivery));
    }
    let mut deliveries = Vec::with_capacity(MESSAGES);
    for (key, i, delivery) in pending {
        let delivery = delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
        deliveries.push((key, i, delivery.partition));
    }
    println!(
        "produced {MESSAGES} messages in {} ms",
        started.elapsed().as_millis()
    );

    let mut sent_per_partition: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    for (key, _, partition) in &deliveries {
        *sent_per_partition.get_mut(partition).unwrap() += 1;
        let first = *partition_of_key.entry(key.clone()).or_insert(*partition);
        assert_eq!(first, *partition, "one key, one partition");
    }
    assert!(
        sent_per_partition.values().filter(|n| **n > 0).count() > 1,
        "keys should spread over partitions: {sent_per_partition:?}"
    );

    // End offsets are the per-partition message counts on a fresh topic, both
    // through the one-shot helper and a kept probe.
    let ends = end_offsets(config, topic).unwrap();
    assert_eq!(
        ends, sent_per_partition,
        "end offsets disagree with the deliveries. Tansu 0.6.0 with memory:// storage \
         answers ListOffsets with the last batch's base offset + 1; use its sqlite \
         storage, or set LEDGER_KAFKA_BATCH_NUM_MESSAGES=1"
    );
    let probe = OffsetProbe::new(config).unwrap();
    assert_eq!(probe.end_offsets(topic).unwrap(), sent_per_partition);
    println!("end offsets {sent_per_partition:?}");

    // Consume everything back through a consumer group.
    let consumer = config.consumer(&format!("{topic}.group")).unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let received = receive(&consumer, MESSAGES).await;
    println!(
        "consumed {MESSAGES} messages in {} ms",
        started.elapsed().as_millis()
    );
    let mut last_index_per_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (key, payload, _, _) in &received {
        let key = String::from_utf8(key.clone()).unwrap();
        let index: usize = String::from_utf8(payload.clone()).unwrap()["message-".len()..]
            .parse()
            .unwrap();
        assert!(seen.insert(index), "message {index} received twice");
        if let Some(last) = last_index_per_key.insert(key.clone(), index) {
            assert!(last < index, "key {key}: {index} after {last}");
        }
    }
    assert_eq!(seen.len(), MESSAGES);

    // Resume from an offset in the middle of the busiest partition, as a reader
    // does when it seeks to the offsets stored with its state: it must get
    // exactly the rest of that partition. The producer batched, so the offset
    // most likely falls inside a record batch.
    let (busiest, count) = sent_per_partition.iter().max_by_key(|(_, n)| **n).unwrap();
    let resume_at = count / 2;
    let resumer = config.consumer(&format!("{topic}.resume")).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, *busiest, Offset::Offset(resume_at))
        .unwrap();
    resumer.assign(&assignment).unwrap();
    let rest = usize::try_from(count - resume_at).unwrap();
    let offsets: Vec<i64> = receive(&resumer, rest).await.iter().map(|m| m.3).collect();
    assert_eq!(offsets, (resume_at..*count).collect::<Vec<_>>());

    // Dead-letter the first received message and read it back, bytes and
    // headers.
    let (key, payload, partition, offset) = received[0].clone();
    dead_letter(
        &producer,
        topic,
        partition,
        offset,
        Some(&key),
        Some(&payload),
        "bad protobuf",
    )
    .await
    .unwrap();
    let dlq_topic = topics::dlq(topic);
    let dlq_consumer: StreamConsumer = config.consumer(&format!("{topic}.dlq-reader")).unwrap();
    dlq_consumer.subscribe(&[&dlq_topic]).unwrap();
    let message = tokio::time::timeout(RECEIVE_TIMEOUT, dlq_consumer.recv())
        .await
        .expect("dead letter not received in time")
        .unwrap();
    assert_eq!(message.key(), Some(key.as_slice()));
    assert_eq!(message.payload(), Some(payload.as_slice()));
    assert_eq!(
        DeadLetterOrigin::from_message(&message),
        Some(DeadLetterOrigin {
            reason: "bad protobuf".to_owned(),
            source_topic: topic.to_owned(),
            source_partition: partition,
            source_offset: offset,
        })
    );
    assert_eq!(
        end_offsets(config, &dlq_topic).unwrap(),
        BTreeMap::from([(0, 1)])
    );
}

/// Receives `count` messages as (key, payload, partition, offset), bounded by
/// [`RECEIVE_TIMEOUT`] in all.
async fn receive(consumer: &StreamConsumer, count: usize) -> Vec<(Vec<u8>, Vec<u8>, i32, i64)> {
    let deadline = tokio::time::Instant::now() + RECEIVE_TIMEOUT;
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages received", received.len()))
            .unwrap();
        received.push((
            message.key().unwrap().to_vec(),
            message.payload().unwrap().to_vec(),
            message.partition(),
            message.offset(),
        ));
    }
    received
}
