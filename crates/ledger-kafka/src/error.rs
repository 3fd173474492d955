//! The one error type of this crate.

use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Result with this crate's error as the default.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to a Kafka-protocol broker.
///
/// Each variant says which operation failed and on what, so that a log line
/// carrying only the error is enough to find the cause.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A client property given on the command line was not `key=value`.
    #[error("invalid client property {0:?}: expected key=value")]
    InvalidProperty(String),

    /// librdkafka refused the configuration (unknown property, bad value, a
    /// feature the build lacks such as SSL).
    #[error("could not create the Kafka {role} client: {source}")]
    Client {
        role: &'static str,
        #[source]
        source: RdKafkaError,
    },

    /// The CreateTopics request itself failed (timeout, broker unreachable).
    #[error("CreateTopics request failed: {0}")]
    Admin(#[source] RdKafkaError),

    /// The broker refused to create one topic.
    #[error("could not create topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },

    /// A metadata request failed.
    #[error("metadata request for topic {topic} failed: {source}")]
    Metadata {
        topic: String,
        #[source]
        source: RdKafkaError,
    },

    /// The broker does not know the topic, or reports an error for it.
    #[error("topic {topic} is not available: {reason}")]
    UnknownTopic { topic: String, reason: String },

    /// A watermark (ListOffsets) request failed.
    #[error("offset request for {topic}/{partition} failed: {source}")]
    Watermarks {
        topic: String,
        partition: i32,
        #[source]
        source: RdKafkaError,
    },

    /// A message could not be delivered.
    #[error("could not produce to {topic}: {source}")]
    Produce {
        topic: String,
        #[source]
        source: RdKafkaError,
    },

    /// The embedded mock cluster failed.
    #[error("mock cluster: {0}")]
    Mock(#[source] RdKafkaError),

    /// A bounded wait ran out.
    #[error("timed out after {timeout_ms} ms waiting for {what}")]
    Timeout { what: String, timeout_ms: u64 },
}
