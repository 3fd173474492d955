//! SASL/PLAIN against Apache Kafka: the ledger connects with `-X` and
//! `LEDGER_KAFKA_*` settings, a wrong password or none is one clear error within
//! seconds (not a hang), and the password appears in no log of the ledger's.

use std::time::{Duration, Instant};

use crate::harness::*;

const USER: &str = "ledger";
const PASSWORD: &str = "pw-7f3a-ledger-secret";
const WRONG: &str = "pw-wrong-9c1d";

fn sasl_args(password: &str) -> Vec<String> {
    ["security.protocol=SASL_PLAINTEXT", "sasl.mechanisms=PLAIN", &format!("sasl.username={USER}"), &format!("sasl.password={password}")]
        .iter()
        .flat_map(|p| ["-X".to_string(), p.to_string()])
        .collect()
}

fn sasl_env(password: &str) -> Vec<(String, String)> {
    [
        ("LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("LEDGER_KAFKA_SASL_MECHANISMS", "PLAIN"),
        ("LEDGER_KAFKA_SASL_USERNAME", USER),
        ("LEDGER_KAFKA_SASL_PASSWORD", password),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "{what} shows a password:\n{text}");
    }
}

/// `loanctl topics create` with `args`: it must fail within `limit`, and its one
/// error line must contain `expected`.
fn refused_within(brokers: &str, args: &[String], expected: &str, limit: Duration) {
    let started = Instant::now();
    let out = loanctl().args(["topics", "create", "--brokers", brokers]).args(args).env("RUST_LOG", "debug").output().unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "topics create succeeded with {args:?}");
    assert!(elapsed < limit, "the refusal took {elapsed:?} (more than {limit:?}): {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("loanctl: ") && last.contains(expected), "unclear error (wanted {expected:?}): {stderr}");
    assert_no_secret("loanctl's stderr", &stderr);
}

#[test]
fn sasl_plain_right_password_works_wrong_or_missing_one_is_a_clear_error() {
    if Kind::from_env() != Kind::Kafka {
        eprintln!("SASL test not run: it needs Apache Kafka (LEDGER_TEST_BROKER=tansu)");
        return;
    }
    let broker = Broker::start_sasl(USER, PASSWORD);
    let brokers = broker.brokers();

    refused_within(&brokers, &sasl_args(WRONG), "refused the credentials", Duration::from_secs(10));
    // Plaintext to a SASL listener: the broker hangs up; bounded by CONNECT_TIMEOUT.
    refused_within(&brokers, &[], "answered within", Duration::from_secs(20));

    // The right password through the environment for the services, through -X for
    // the commands; every log at debug level.
    let dir = TempDir::new("sasl");
    let data = dir.path().join("data");
    let mut envs = sasl_env(PASSWORD);
    envs.push(("RUST_LOG".into(), "debug".into()));
    let up = Up::start_with(&brokers, &data, free_port(), &[], &envs);
    let file = repo_root().join("tests/scenarios/spec-example.jsonl");
    let fed = run_ok(loanctl().args(["feed", "--wait-seconds", "120", "--brokers", &brokers]).args(sasl_args(PASSWORD)).arg(&file).env("RUST_LOG", "debug"));
    assert_no_secret("feed's stderr", &String::from_utf8_lossy(&fed.stderr));
    let (expected, _) = simulate(&file);
    assert_eq!(export(&up.api), expected, "the export through SASL differs from loanctl simulate");
    up.stop();
    let log = std::fs::read_to_string(Up::log_path(&data)).unwrap();
    assert!(!log.is_empty(), "loanctl up logged nothing at debug level");
    assert_no_secret("loanctl up's log", &log);
}
