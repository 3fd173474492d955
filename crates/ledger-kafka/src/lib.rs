//! The one place that builds rdkafka clients.
//!
//! Services and the runtime never assemble a `ClientConfig` themselves: they
//! take a [`KafkaConfig`] and ask it for a producer or a consumer, so that the
//! settings the ledger depends on (idempotent producer, acks=all, no auto
//! commit) are set once. The crate also owns the topic names, topic creation,
//! end-offset queries, dead-lettering, and an in-process [`MockBroker`].
//!
//! It knows nothing of the ledger's messages: keys and payloads are bytes.

mod admin;
mod config;
mod connect;
mod dlq;
mod error;
mod mock;
mod partition;
mod produce;
pub mod topics;

pub use admin::{
    check_topic_settings, create_topics, end_offsets, is_transient, topic_partitions, OffsetProbe, REPLICATION_FACTOR, REQUEST_TIMEOUT, TRANSIENT_LIMIT,
    TOPIC_VISIBLE_TIMEOUT,
};
pub use config::{
    parse_property, KafkaConfig, DEFAULT_BROKERS, ENV_BROKERS, ENV_PREFIX, MESSAGE_TIMEOUT_MS,
    SESSION_TIMEOUT_MS,
};
pub use connect::{check_connection, CONNECT_TIMEOUT};
pub use dlq::{
    dead_letter, dead_letter_message, DeadLetterOrigin, HEADER_REASON, HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
pub use error::{KafkaError, Result};
pub use mock::MockBroker;
pub use partition::{murmur2, partition_for_key};
pub use produce::enqueue;

/// The rdkafka version this crate builds against, re-exported so that callers
/// name message and consumer types (`Message`, `Consumer`, `StreamConsumer`)
/// from the same copy.
pub use rdkafka;
