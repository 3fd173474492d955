//! Topics and offsets: creating topics, listing partitions, reading end offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result};

/// Bound on one metadata or offset request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on asking again after transient answers (a leader being elected, a broker
/// restarting: Apache Kafka 4 restarts in 5 to 20 s here). Past it the error stands.
pub const TRANSIENT_LIMIT: Duration = Duration::from_secs(60);

/// Bound on waiting for newly created topics to show up in metadata.
pub const TOPIC_VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Replication factor asked for when creating topics: -1, the broker's own
/// default (`default.replication.factor` on Apache Kafka 2.4 and later; one on
/// Tansu, which accepts it). Clusters that need more control create their
/// topics with their own tooling; [`create_topics`] then finds them present
/// and leaves them alone.
pub const REPLICATION_FACTOR: i32 = -1;

/// Creates each `(topic, partitions)` that does not exist yet, with the settings
/// of [`crate::topics::settings`], then waits
/// (bounded) until every one of them is visible in metadata, so that the
/// caller can produce to them at once.
///
/// A topic that already exists counts as success, whatever its partition
/// count; a different count is logged as a warning because keys would then
/// map to different partitions than the caller expects.
pub async fn create_topics(config: &KafkaConfig, topics: &[(&str, i32)]) -> Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin = config.admin()?;
    let settings: Vec<Vec<(&str, String)>> = topics.iter().map(|(name, _)| crate::topics::settings(name)).collect();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&settings)
        .map(|((name, partitions), settings)| {
            let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(REPLICATION_FACTOR));
            settings.iter().fold(topic, |topic, (key, value)| topic.set(key, value))
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(REQUEST_TIMEOUT))
        .request_timeout(Some(REQUEST_TIMEOUT));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(KafkaError::Admin)?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(%topic, "topic already exists");
            }
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }

    // Metadata and admin requests are separate round trips; wait here rather
    // than let the first produce fail with an unknown topic. The metadata
    // calls block, so they run off the async worker threads.
    let probe = config.probe_consumer()?;
    let topics: Vec<(String, i32)> = topics
        .iter()
        .map(|(name, partitions)| ((*name).to_owned(), *partitions))
        .collect();
    match tokio::task::spawn_blocking(move || wait_until_visible(&probe, &topics)).await {
        Ok(result) => result,
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

fn wait_until_visible(probe: &BaseConsumer, topics: &[(String, i32)]) -> Result<()> {
    let deadline = Instant::now() + TOPIC_VISIBLE_TIMEOUT;
    for (topic, partitions_wanted) in topics {
        let partitions = loop {
            match partitions_of(probe, topic) {
                Ok(partitions) if !partitions.is_empty() && all_led(probe, topic) => break partitions,
                Ok(_) | Err(KafkaError::UnknownTopic { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(_) | Err(KafkaError::UnknownTopic { .. }) => {
                    return Err(KafkaError::Timeout {
                        what: format!("topic {topic} to appear in metadata"),
                        timeout_ms: millis(TOPIC_VISIBLE_TIMEOUT),
                    });
                }
                Err(other) => return Err(other),
            }
        };
        if i32::try_from(partitions.len()).ok() != Some(*partitions_wanted) {
            tracing::warn!(
                %topic,
                partitions_wanted,
                partitions_found = partitions.len(),
                "topic exists with a different partition count"
            );
        }
    }
    Ok(())
}

/// Checks that `topic` exists with every `(setting, value)` of `required`, as the
/// broker reports them (DescribeConfigs); the first that differs is an error
/// naming the setting, its value and the value wanted.
///
/// A broker that does not implement DescribeConfigs (librdkafka's mock cluster;
/// perhaps Tansu) cannot be checked: that is logged as a warning and passes,
/// since refusing would make such a broker unusable rather than safer.
pub async fn check_topic_settings(config: &KafkaConfig, topic: &str, required: &[(&str, &str)]) -> Result<()> {
    let admin = config.admin()?;
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let answer = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options).await;
    let resource = match answer.map(|mut results| results.pop()) {
        Ok(Some(Ok(resource))) => resource,
        Ok(Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition))) => {
            return Err(KafkaError::UnknownTopic { topic: topic.to_owned(), reason: "absent from the broker".to_owned() });
        }
        Ok(Some(Err(code))) => {
            tracing::warn!(%topic, %code, "the broker does not describe topic settings; retention of the topic is not checked");
            return Ok(());
        }
        Ok(None) => {
            tracing::warn!(%topic, "the broker described no topic settings; retention of the topic is not checked");
            return Ok(());
        }
        Err(error) => {
            tracing::warn!(%topic, %error, "DescribeConfigs failed; retention of the topic is not checked");
            return Ok(());
        }
    };
    for (setting, wanted) in required {
        let found = resource.get(setting).and_then(|entry| entry.value.clone());
        if found.as_deref() != Some(*wanted) {
            return Err(KafkaError::TopicSetting {
                topic: topic.to_owned(),
                setting: (*setting).to_owned(),
                found: found.unwrap_or_else(|| "(unset)".to_owned()),
                wanted: (*wanted).to_owned(),
            });
        }
    }
    Ok(())
}

/// Whether every partition of `topic` has a leader: a topic just created is in
/// metadata before its partitions are led, and a ListOffsets or produce sent then
/// is answered NotLeaderForPartition.
fn all_led(probe: &BaseConsumer, topic: &str) -> bool {
    let Ok(metadata) = probe.fetch_metadata(Some(topic), REQUEST_TIMEOUT) else {
        return false;
    };
    metadata.topics().iter().filter(|t| t.name() == topic).all(|t| {
        !t.partitions().is_empty() && t.partitions().iter().all(|p| p.leader() >= 0 && p.error().is_none())
    })
}

/// Errors a broker answers while a partition's leadership or a group's coordinator
/// settles (a topic just created, a broker just started or restarted, the offsets
/// topic still loading): asked again a moment later, it answers.
pub fn is_transient(error: &rdkafka::error::KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
        )
    )
}

/// The partition ids of `topic`, ascending. Blocks for at most
/// [`REQUEST_TIMEOUT`]; from async code call it through
/// `tokio::task::spawn_blocking` or keep an [`OffsetProbe`].
pub fn topic_partitions(config: &KafkaConfig, topic: &str) -> Result<Vec<i32>> {
    OffsetProbe::new(config)?.topic_partitions(topic)
}

/// The end offset (high watermark: the offset the next message will get) of
/// every partition of `topic`. Blocks for at most [`REQUEST_TIMEOUT`] per
/// request; see [`topic_partitions`].
pub fn end_offsets(config: &KafkaConfig, topic: &str) -> Result<BTreeMap<i32, i64>> {
    OffsetProbe::new(config)?.end_offsets(topic)
}

/// A connection kept for repeated metadata and end-offset queries (a reader
/// catching up before each batch), so that each query costs one round trip
/// per partition instead of a new connection. Its methods block, bounded by
/// [`REQUEST_TIMEOUT`].
pub struct OffsetProbe {
    consumer: BaseConsumer,
    /// Partition ids per topic, looked up once (the ledger never shrinks a topic).
    partitions: std::sync::Mutex<BTreeMap<String, Vec<i32>>>,
}

impl OffsetProbe {
    /// Connects lazily: the first query opens the connection.
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self {
            consumer: config.probe_consumer()?,
            partitions: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// See [`topic_partitions`].
    pub fn topic_partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let partitions = partitions_of(&self.consumer, topic)?;
        if partitions.is_empty() {
            return Err(KafkaError::UnknownTopic {
                topic: topic.to_owned(),
                reason: "no partitions".to_owned(),
            });
        }
        Ok(partitions)
    }

    /// See [`end_offsets`]. One ListOffsets (latest) request for all partitions
    /// (the partition list is looked up once per probe and topic), since a reader
    /// asks this before every decision.
    pub fn end_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        let partitions = self.cached_partitions(topic)?;
        let mut query = TopicPartitionList::new();
        for partition in &partitions {
            query
                .add_partition_offset(topic, *partition, Offset::End)
                .map_err(|source| KafkaError::Watermarks { topic: topic.to_owned(), partition: *partition, source })?;
        }
        let answer = self.consumer.offsets_for_times(query, REQUEST_TIMEOUT);
        let mut ends = BTreeMap::new();
        if let Ok(answer) = answer {
            for element in answer.elements_for_topic(topic) {
                if let (Offset::Offset(end), None) = (element.offset(), element.error().err()) {
                    ends.insert(element.partition(), end);
                }
            }
        }
        // A broker that does not answer "latest" by timestamp: ask per partition.
        for partition in partitions {
            if ends.contains_key(&partition) {
                continue;
            }
            let high = self.high_watermark(topic, partition)?;
            ends.insert(partition, high);
        }
        Ok(ends)
    }

    /// One partition's high watermark; transient answers (leadership settling, a
    /// broker restarting) are asked again until [`TRANSIENT_LIMIT`] has passed.
    fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64> {
        let deadline = Instant::now() + TRANSIENT_LIMIT;
        loop {
            match self.consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT) {
                Ok((_low, high)) => return Ok(high),
                Err(source) if is_transient(&source) && Instant::now() < deadline => {
                    tracing::debug!(%topic, partition, error = %source, "offset request answered transiently; asking again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(source) => return Err(KafkaError::Watermarks { topic: topic.to_owned(), partition, source }),
            }
        }
    }

    fn cached_partitions(&self, topic: &str) -> Result<Vec<i32>> {
        if let Some(found) = self.partitions.lock().expect("probe cache").get(topic) {
            return Ok(found.clone());
        }
        let found = self.topic_partitions(topic)?;
        self.partitions.lock().expect("probe cache").insert(topic.to_owned(), found.clone());
        Ok(found)
    }
}

/// The partitions metadata reports for `topic`, ascending; empty when the
/// topic exists without partitions (only seen while it is being created).
fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|source| KafkaError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(KafkaError::UnknownTopic {
            topic: topic.to_owned(),
            reason: "absent from metadata".to_owned(),
        });
    };
    if let Some(error) = found.error() {
        return Err(KafkaError::UnknownTopic {
            topic: topic.to_owned(),
            reason: RDKafkaErrorCode::from(error).to_string(),
        });
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
