//! An in-process broker (librdkafka's mock cluster) for the zero-install quick
//! start and for fast tests.
//!
//! It speaks the Kafka protocol on a local port: produce, fetch, consumer
//! groups, offset commits and idempotent producers work. It has no
//! CreateTopics (the admin call times out), so topics are created through the
//! mock's own API, and nothing survives the process.

use std::fmt;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result};

/// A one-broker mock cluster that lives as long as this value.
///
/// It is neither `Send` nor `Sync` (librdkafka hands out a raw pointer), so
/// keep it in the task that started it, typically `main`; clients connect to
/// [`MockBroker::bootstrap_servers`] from anywhere.
pub struct MockBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap_servers: String,
}

impl fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBroker")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .finish()
    }
}

impl MockBroker {
    /// Starts the cluster and creates each `(topic, partitions)`.
    pub fn start(topics: &[(&str, i32)]) -> Result<Self> {
        let cluster = MockCluster::new(1).map_err(KafkaError::Mock)?;
        let bootstrap_servers = cluster.bootstrap_servers();
        let broker = Self {
            cluster,
            bootstrap_servers,
        };
        for (topic, partitions) in topics {
            broker.create_topic(topic, *partitions)?;
        }
        tracing::info!(bootstrap_servers = %broker.bootstrap_servers, "mock Kafka broker started");
        Ok(broker)
    }

    /// Creates one more topic with replication factor one.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(KafkaError::Mock)
    }

    /// The `host:port` list clients should use.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// A client configuration pointing at this broker.
    pub fn config(&self, client_id: &str) -> KafkaConfig {
        KafkaConfig::new(self.bootstrap_servers.clone(), client_id)
    }
}
