//! Client configuration: the one `ClientConfig` builder of the workspace.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

use crate::error::{KafkaError, Result};

/// Brokers used when neither an argument nor `LEDGER_KAFKA_BROKERS` names any:
/// the broker `scripts/kafka start` (or `scripts/dev-broker start`) runs. It is
/// 127.0.0.1 rather than localhost because both listen on IPv4 only.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Prefix of the environment variables that become client properties.
pub const ENV_PREFIX: &str = "LEDGER_KAFKA_";

/// The environment variable holding the bootstrap servers.
pub const ENV_BROKERS: &str = "LEDGER_KAFKA_BROKERS";

/// How long librdkafka may try to deliver one message before it reports a
/// failure. Bounded so that a dead broker surfaces as an error, not a hang, and long
/// enough to ride out a broker restart (5 to 30 s for Apache Kafka on a busy 2-core
/// machine); a wrong address or password is caught at once by the connection check.
pub const MESSAGE_TIMEOUT_MS: u32 = 120_000;

/// Consumer session timeout. A new group's first join can wait about half of
/// it (KAFKA-NOTES.md), so it is kept short.
pub const SESSION_TIMEOUT_MS: u32 = 6_000;

/// Producer properties the ledger's correctness depends on. They are applied
/// last, so a pass-through property cannot weaken them. `murmur2_random` is Kafka's
/// default partitioner (the Java client's): a keyed record lands on murmur2(key) mod
/// N, the partition other teams' producers choose for the same key, and the one
/// every reader of loan.events checks (librdkafka's own default hashes with CRC32).
const PRODUCER_INVARIANTS: &[(&str, &str)] =
    &[("enable.idempotence", "true"), ("acks", "all"), ("partitioner", "murmur2_random")];

/// Consumer properties the ledger's correctness depends on: offsets are stored
/// with the state they produced, never committed behind the reader's back.
const CONSUMER_INVARIANTS: &[(&str, &str)] = &[("enable.auto.commit", "false")];

/// Where to find the brokers and how to talk to them.
///
/// `extra` holds librdkafka properties passed through unchanged (SASL, TLS,
/// tuning). They override this crate's defaults, except for the few settings
/// that correctness depends on (idempotent producer, acks=all, no auto commit).
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub brokers: String,
    /// `client.id`, shown in broker logs and metrics.
    pub client_id: String,
    /// Additional librdkafka properties, applied to every client.
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaConfig {
    /// Prints the configuration with secrets (passwords, keys) redacted, so that
    /// it can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: BTreeMap<&str, &str> = self
            .extra
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("client_id", &self.client_id)
            .field("extra", &extra)
            .finish()
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".pem")
        || key.contains("jaas")
        || key == "ssl.key.location"
}

impl KafkaConfig {
    /// A configuration with no extra properties.
    pub fn new(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: client_id.into(),
            extra: BTreeMap::new(),
        }
    }

    /// The usual constructor for programs: reads the process environment, then
    /// the command-line arguments, which win.
    ///
    /// - `brokers`: the `--brokers` argument if given, else `LEDGER_KAFKA_BROKERS`,
    ///   else [`DEFAULT_BROKERS`].
    /// - Every other `LEDGER_KAFKA_<NAME>` variable becomes the property `<name>`
    ///   lower-cased with `_` turned into `.`: `LEDGER_KAFKA_SECURITY_PROTOCOL=SASL_SSL`
    ///   sets `security.protocol`. Empty values are ignored.
    /// - `properties`: `key=value` strings (e.g. repeated `-X key=value`
    ///   arguments), applied after the environment.
    pub fn from_env_and_args(
        brokers: Option<&str>,
        client_id: &str,
        properties: &[String],
    ) -> Result<Self> {
        // Variables that are not valid UTF-8 cannot be librdkafka properties;
        // they are skipped rather than making std::env::vars panic.
        let vars = std::env::vars_os()
            .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
        Self::from_vars_and_args(vars, brokers, client_id, properties)
    }

    /// [`KafkaConfig::from_env_and_args`] with the environment given explicitly
    /// (for tests, and for programs that read their environment elsewhere).
    pub fn from_vars_and_args(
        vars: impl IntoIterator<Item = (String, String)>,
        brokers: Option<&str>,
        client_id: &str,
        properties: &[String],
    ) -> Result<Self> {
        let mut env_brokers = None;
        let mut config = Self::new(DEFAULT_BROKERS, client_id);
        for (name, value) in vars {
            let Some(suffix) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if suffix.is_empty() || value.is_empty() {
                continue;
            }
            if name == ENV_BROKERS {
                env_brokers = Some(value);
            } else {
                config.extra.insert(env_suffix_to_property(suffix), value);
            }
        }
        for property in properties {
            let (key, value) = parse_property(property)?;
            config.extra.insert(key, value);
        }
        config.brokers = match (brokers, env_brokers) {
            (Some(arg), _) => arg.to_owned(),
            (None, Some(env)) => env,
            (None, None) => DEFAULT_BROKERS.to_owned(),
        };
        Ok(config)
    }

    /// Adds or replaces one pass-through property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The same brokers and properties under another client id (one per
    /// service or role, so that broker logs tell them apart).
    pub fn with_client_id(&self, client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            ..self.clone()
        }
    }

    /// `bootstrap.servers`, `client.id` and the pass-through properties: the
    /// part every client shares.
    pub fn base_client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        // An input crosses several clients in turn, each request small: Nagle's
        // algorithm would hold each back until the broker's delayed ACK (40 ms on Linux).
        set_default(&mut config, "socket.nagle.disable", "true");
        config
    }

    /// The producer configuration: idempotent, acks=all, a short linger and a
    /// bounded delivery timeout. For a producer with a custom context; use
    /// [`KafkaConfig::producer`] otherwise.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base_client_config();
        // Each input crosses three of the ledger's producers (intake, book writer,
        // publisher): a millisecond each; under load batches form anyway while earlier
        // requests are in flight.
        set_default(&mut config, "linger.ms", "1");
        set_default(
            &mut config,
            "message.timeout.ms",
            &MESSAGE_TIMEOUT_MS.to_string(),
        );
        set_invariants(&mut config, PRODUCER_INVARIANTS);
        config
    }

    /// The consumer configuration for `group_id`: no auto commit, start at the
    /// earliest offset when nothing is stored, short session timeout, no EOF
    /// events. For a consumer with a custom context (rebalance callbacks); use
    /// [`KafkaConfig::consumer`] otherwise.
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base_client_config();
        config.set("group.id", group_id);
        set_default(&mut config, "auto.offset.reset", "earliest");
        set_default(
            &mut config,
            "session.timeout.ms",
            &SESSION_TIMEOUT_MS.to_string(),
        );
        set_default(&mut config, "heartbeat.interval.ms", "2000");
        set_default(&mut config, "enable.partition.eof", "false");
        // The ledger's readers wait on each other (a service decides only after it has
        // read the fact before); a fetch that idles for librdkafka's default 500 ms
        // adds that to every step.
        set_default(&mut config, "fetch.wait.max.ms", "5");
        set_invariants(&mut config, CONSUMER_INVARIANTS);
        config
    }

    /// An idempotent producer (see [`KafkaConfig::producer_config`]).
    pub fn producer(&self) -> Result<FutureProducer> {
        self.producer_config()
            .create()
            .map_err(|source| KafkaError::Client {
                role: "producer",
                source,
            })
    }

    /// A consumer in `group_id` (see [`KafkaConfig::consumer_config`]).
    pub fn consumer(&self, group_id: &str) -> Result<StreamConsumer> {
        self.consumer_config(group_id)
            .create()
            .map_err(|source| KafkaError::Client {
                role: "consumer",
                source,
            })
    }

    /// A consumer outside any group, for metadata and end-offset queries
    /// (see `OffsetProbe`).
    pub(crate) fn probe_consumer(&self) -> Result<BaseConsumer> {
        self.probe_client_config().create().map_err(|source| KafkaError::Client {
            role: "metadata",
            source,
        })
    }

    /// The configuration of a consumer outside any group that only asks for
    /// metadata and offsets.
    pub(crate) fn probe_client_config(&self) -> ClientConfig {
        let mut config = self.base_client_config();
        // A probe must not create topics by asking for their metadata.
        config.set("allow.auto.create.topics", "false");
        config
    }

    /// An admin client (topic creation).
    pub(crate) fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        self.base_client_config()
            .create()
            .map_err(|source| KafkaError::Client {
                role: "admin",
                source,
            })
    }
}

/// Parses one `key=value` property. The key is trimmed; the value is kept as
/// given (it may contain `=`).
pub fn parse_property(property: &str) -> Result<(String, String)> {
    match property.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(KafkaError::InvalidProperty(property.to_owned())),
    }
}

/// `SECURITY_PROTOCOL` -> `security.protocol`.
fn env_suffix_to_property(suffix: &str) -> String {
    suffix.to_ascii_lowercase().replace('_', ".")
}

fn set_default(config: &mut ClientConfig, key: &str, value: &str) {
    if config.get(key).is_none() {
        config.set(key, value);
    }
}

fn set_invariants(config: &mut ClientConfig, invariants: &[(&str, &str)]) {
    for (key, value) in invariants {
        if let Some(given) = config.get(key) {
            if given != *value {
                tracing::warn!(
                    property = key,
                    given,
                    enforced = value,
                    "ignoring a Kafka client property that the ledger's correctness depends on"
                );
            }
        }
        config.set(*key, *value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_and_arguments_become_properties() {
        let config = KafkaConfig::from_vars_and_args(
            vars(&[
                ("LEDGER_KAFKA_BROKERS", "kafka-1:9093,kafka-2:9093"),
                ("LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                ("LEDGER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                ("LEDGER_KAFKA_SASL_PASSWORD", "hunter2"),
                ("LEDGER_KAFKA_LINGER_MS", ""),
                ("PATH", "/usr/bin"),
            ]),
            None,
            "repayment",
            &[
                "sasl.mechanism=PLAIN".to_owned(),
                "ssl.ca.pem=a=b".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(config.brokers, "kafka-1:9093,kafka-2:9093");
        assert_eq!(config.client_id, "repayment");
        let expected: BTreeMap<String, String> = vars(&[
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", "hunter2"),
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.pem", "a=b"),
        ])
        .into_iter()
        .collect();
        assert_eq!(config.extra, expected);
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn brokers_argument_wins_and_default_applies() {
        let env = vars(&[("LEDGER_KAFKA_BROKERS", "env:9092")]);
        let config = KafkaConfig::from_vars_and_args(env, Some("arg:9092"), "x", &[]).unwrap();
        assert_eq!(config.brokers, "arg:9092");
        let config = KafkaConfig::from_vars_and_args(vec![], None, "x", &[]).unwrap();
        assert_eq!(config.brokers, DEFAULT_BROKERS);
    }

    #[test]
    fn malformed_property_is_refused() {
        for bad in ["novalue", "=value", " =x"] {
            let err = KafkaConfig::from_vars_and_args(vec![], None, "x", &[bad.to_owned()]);
            assert!(matches!(err, Err(KafkaError::InvalidProperty(_))), "{bad}");
        }
    }

    /// Without the `ssl` feature librdkafka has no TLS; asking for it must fail
    /// when the client is built, not later on the first connection.
    #[cfg(not(feature = "ssl"))]
    #[test]
    fn tls_without_the_ssl_feature_is_refused_at_creation() {
        let config =
            KafkaConfig::new("127.0.0.1:1", "c").with_property("security.protocol", "SASL_SSL");
        let err = config
            .producer()
            .err()
            .expect("TLS should need the ssl feature");
        assert!(
            matches!(
                err,
                KafkaError::Client {
                    role: "producer",
                    ..
                }
            ),
            "{err}"
        );
        // The cause is the source, not part of the error's own message.
        let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(cause.contains("SSL"), "{err}: {cause}");
    }

    #[test]
    fn extras_override_defaults_but_not_invariants() {
        let config = KafkaConfig::new("b:1", "c")
            .with_property("linger.ms", "50")
            .with_property("acks", "1")
            .with_property("partitioner", "consistent_random")
            .with_property("enable.auto.commit", "true")
            .with_property("session.timeout.ms", "10000");
        let producer = config.producer_config();
        assert_eq!(producer.get("linger.ms"), Some("50"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("partitioner"), Some("murmur2_random"));
        assert_eq!(producer.get("message.timeout.ms"), Some("120000"));
        let consumer = config.consumer_config("g");
        assert_eq!(consumer.get("group.id"), Some("g"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("session.timeout.ms"), Some("10000"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(consumer.get("enable.partition.eof"), Some("false"));
        assert_eq!(consumer.get("bootstrap.servers"), Some("b:1"));
        assert_eq!(consumer.get("client.id"), Some("c"));
    }
}
