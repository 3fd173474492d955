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
    #[error("could not create the Kafka {role} client")]
    Client {
        role: &'static str,
        #[source]
        source: RdKafkaError,
    },

    /// The CreateTopics request itself failed (timeout, broker unreachable).
    #[error("CreateTopics request failed")]
    Admin(#[source] RdKafkaError),

    /// The broker refused to create one topic.
    #[error("could not create topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },

    /// A topic exists with a setting the ledger cannot run with (loan.events
    /// must keep every fact forever).
    #[error(
        "topic {topic} has {setting}={found}, but the ledger needs {setting}={wanted} (nothing may ever be deleted \
         from it); change it with: kafka-configs.sh --bootstrap-server HOST:PORT --alter --entity-type topics \
         --entity-name {topic} --add-config {setting}={wanted}"
    )]
    TopicSetting { topic: String, setting: String, found: String, wanted: String },

    /// The brokers refused the client's credentials (SASL).
    #[error(
        "the brokers {brokers} refused the credentials: {reason}; check sasl.username and sasl.password \
         (-X sasl.password=... or LEDGER_KAFKA_SASL_PASSWORD) and sasl.mechanisms"
    )]
    Authentication { brokers: String, reason: String },

    /// No broker answered within the bound.
    #[error("no broker of {brokers} answered within {timeout_ms} ms: {reason}")]
    Unreachable { brokers: String, timeout_ms: u64, reason: String },

    /// A metadata request failed.
    #[error("metadata request for topic {topic} failed")]
    Metadata {
        topic: String,
        #[source]
        source: RdKafkaError,
    },

    /// The broker does not know the topic, or reports an error for it.
    #[error("topic {topic} is not available: {reason}")]
    UnknownTopic { topic: String, reason: String },

    /// A watermark (ListOffsets) request failed.
    #[error("offset request for {topic}/{partition} failed")]
    Watermarks {
        topic: String,
        partition: i32,
        #[source]
        source: RdKafkaError,
    },

    /// A message could not be delivered.
    #[error("could not produce to {topic}")]
    Produce {
        topic: String,
        #[source]
        source: RdKafkaError,
    },

    /// The embedded mock cluster failed.
    #[error("mock cluster failed")]
    Mock(#[source] RdKafkaError),

    /// A bounded wait ran out.
    #[error("timed out after {timeout_ms} ms waiting for {what}")]
    Timeout { what: String, timeout_ms: u64 },
}
