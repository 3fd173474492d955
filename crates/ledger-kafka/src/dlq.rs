//! Dead letters: input that cannot be decoded at all, kept byte for byte.

use std::time::Duration;

use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::error::{KafkaError, Result};
use crate::topics;

/// Header naming why the message was dead-lettered.
pub const HEADER_REASON: &str = "dlq.reason";
/// Header naming the topic the message was read from.
pub const HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
/// Header holding the source partition, as decimal text.
pub const HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
/// Header holding the source offset, as decimal text.
pub const HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";

/// Bound on waiting for room in the producer's queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Produces the original `key` and `payload` bytes, unchanged, to
/// `<source_topic>.dlq`, with headers saying where they came from and why they
/// were refused, and waits for the broker's acknowledgement. The caller may
/// advance past the source offset only after this returns `Ok`.
pub async fn dead_letter(
    producer: &FutureProducer,
    source_topic: &str,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    reason: &str,
) -> Result<()> {
    let dlq_topic = topics::dlq(source_topic);
    let partition_text = partition.to_string();
    let offset_text = offset.to_string();
    let headers = OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: HEADER_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: HEADER_SOURCE_TOPIC,
            value: Some(source_topic),
        })
        .insert(Header {
            key: HEADER_SOURCE_PARTITION,
            value: Some(partition_text.as_str()),
        })
        .insert(Header {
            key: HEADER_SOURCE_OFFSET,
            value: Some(offset_text.as_str()),
        });
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq_topic).headers(headers);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    match producer.send(record, QUEUE_TIMEOUT).await {
        Ok(delivery) => {
            tracing::warn!(
                topic = source_topic,
                partition,
                offset,
                reason,
                dlq_partition = delivery.partition,
                dlq_offset = delivery.offset,
                "dead-lettered a message"
            );
            Ok(())
        }
        Err((source, _message)) => Err(KafkaError::Produce {
            topic: dlq_topic,
            source,
        }),
    }
}

/// [`dead_letter`] for a message as the consumer returned it.
pub async fn dead_letter_message<M: Message>(
    producer: &FutureProducer,
    message: &M,
    reason: &str,
) -> Result<()> {
    dead_letter(
        producer,
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.payload(),
        reason,
    )
    .await
}

/// Where a dead letter came from and why, read back from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterOrigin {
    pub reason: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

impl DeadLetterOrigin {
    /// Reads the `dlq.*` headers of a dead letter; `None` when any is missing
    /// or malformed.
    pub fn from_message<M: Message>(message: &M) -> Option<Self> {
        use rdkafka::message::Headers;
        let headers = message.headers()?;
        let text = |name: &str| -> Option<String> {
            let header = headers.iter().find(|h| h.key == name)?;
            Some(std::str::from_utf8(header.value?).ok()?.to_owned())
        };
        Some(Self {
            reason: text(HEADER_REASON)?,
            source_topic: text(HEADER_SOURCE_TOPIC)?,
            source_partition: text(HEADER_SOURCE_PARTITION)?.parse().ok()?,
            source_offset: text(HEADER_SOURCE_OFFSET)?.parse().ok()?,
        })
    }
}
