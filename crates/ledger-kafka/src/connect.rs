//! Checking, before a program starts work, that the brokers answer and accept the
//! client's credentials, so that a wrong password or address is one clear error
//! within seconds instead of a hang in the first request that happens to need them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result};

/// How long [`check_connection`] waits for a broker to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on one metadata attempt inside [`check_connection`].
const ATTEMPT: Duration = Duration::from_millis(500);

/// Remembers the last error librdkafka reported for the client (it reports
/// authentication failures and unreachable brokers through the error callback,
/// not through the request that is waiting).
#[derive(Default)]
struct ErrorWatch {
    last: Mutex<Option<(Option<RDKafkaErrorCode>, String)>>,
}

impl ErrorWatch {
    fn last(&self) -> Option<(Option<RDKafkaErrorCode>, String)> {
        self.last.lock().expect("error watch").clone()
    }
}

impl ClientContext for ErrorWatch {
    fn error(&self, error: RdKafkaError, reason: &str) {
        *self.last.lock().expect("error watch") = Some((error.rdkafka_error_code(), reason.to_owned()));
    }

    /// The check's own error says what failed; librdkafka's lines about the attempts
    /// (at its ERROR level for a refused connection) are detail, logged at debug.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, fac, "{log_message}");
    }
}

impl ConsumerContext for ErrorWatch {}

fn is_authentication(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(code, Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed))
}

/// Succeeds once a broker of `config` answers a metadata request; fails with
/// [`KafkaError::Authentication`] as soon as the brokers refuse the credentials,
/// or with [`KafkaError::Unreachable`] after [`CONNECT_TIMEOUT`]. Blocks.
pub fn check_connection(config: &KafkaConfig) -> Result<()> {
    let consumer: BaseConsumer<ErrorWatch> = config
        .probe_client_config()
        .create_with_context(ErrorWatch::default())
        .map_err(|source| KafkaError::Client { role: "connection check", source })?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut last_request_error;
    loop {
        match consumer.fetch_metadata(None, ATTEMPT) {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
            Ok(_) => last_request_error = "the metadata named no broker".to_owned(),
            Err(error) => last_request_error = error.to_string(),
        }
        // Error events reach the context only while the client is polled.
        if let Some(Err(error)) = consumer.poll(Duration::from_millis(50)) {
            last_request_error = error.to_string();
        }
        let reported = consumer.context().last();
        if let Some((code, reason)) = &reported {
            if is_authentication(*code) {
                return Err(KafkaError::Authentication { brokers: config.brokers.clone(), reason: reason.clone() });
            }
        }
        if Instant::now() >= deadline {
            let reason = reported.map(|(_, reason)| reason).unwrap_or(last_request_error);
            return Err(KafkaError::Unreachable {
                brokers: config.brokers.clone(),
                timeout_ms: u64::try_from(CONNECT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockBroker;

    #[test]
    fn a_broker_that_answers_passes() {
        let mock = MockBroker::start(&[]).unwrap();
        check_connection(&mock.config("connect-test")).unwrap();
    }

    #[test]
    fn nobody_listening_is_a_clear_error_within_the_bound() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let started = Instant::now();
        let error = check_connection(&KafkaConfig::new(format!("127.0.0.1:{port}"), "connect-test")).unwrap_err();
        assert!(matches!(error, KafkaError::Unreachable { .. }), "{error}");
        assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(3));
        assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
    }
}
