//! Queuing records on a producer.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Queues one record on `topic` (on `partition`, or where the producer's partitioner
/// puts `key`) and returns its delivery report to await. While the producer's queue is
/// full it waits a moment for room: the producer's own thread drains the queue.
pub fn enqueue(producer: &FutureProducer, topic: &str, partition: Option<i32>, key: &str, payload: &[u8]) -> Result<DeliveryFuture, KafkaError> {
    loop {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => std::thread::sleep(Duration::from_millis(5)),
            Err((e, _)) => return Err(e),
        }
    }
}
