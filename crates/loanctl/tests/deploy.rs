//! docker-compose.yml and deploy/ (the Dockerfile, the Kubernetes manifests, the
//! Prometheus example) held to the code: every service of `ledger_runtime::service_names`
//! runs in a container of its own and none other; every service serves HTTP on the port
//! its container exposes, probes and scrapes; the topics are created by `loanctl topics
//! create` with a partition count no service has more replicas than; the day close is a
//! scheduled job and nothing else runs it; the Kafka release and broker settings are
//! those of scripts/kafka (the broker the tests run); and every environment variable a
//! ledger container is given is one the binary reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml::Value;

/// The image every ledger container runs.
const IMAGE: &str = "loan-ledger:latest";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every YAML document of a file, with `<<` merge keys applied.
fn documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document).unwrap_or_else(|e| panic!("{path}: {e}"));
            value.apply_merge().unwrap_or_else(|e| panic!("{path}: {e}"));
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|items| items.iter().map(text).collect()).unwrap_or_default()
}

/// A ledger container, from compose or Kubernetes: where it is, its arguments and
/// its environment.
#[derive(Debug)]
struct Container {
    origin: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Container {
    /// The service of `loanctl run SERVICE`, if it runs one.
    fn service(&self) -> Option<&str> {
        let at = self.args.iter().position(|a| a == "run")?;
        self.args.get(at + 1).map(String::as_str)
    }

    fn option(&self, name: &str) -> Option<&str> {
        let at = self.args.iter().position(|a| a == name)?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// The command (the first argument that is not a global option); none for a
    /// container of one-off commands.
    fn command(&self) -> Option<&str> {
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--config" | "--log-format" => {
                    args.next();
                }
                other => return Some(other),
            }
        }
        None
    }

    /// The port of `--http 0.0.0.0:PORT`.
    fn http_port(&self) -> u16 {
        let addr = self.option("--http").unwrap_or_else(|| panic!("{}: runs a service without --http", self.origin));
        let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{}: --http {addr}: {e}", self.origin));
        assert!(addr.ip().is_unspecified(), "{}: --http {addr} must listen on every address in a container", self.origin);
        addr.port()
    }
}

fn service_names() -> BTreeSet<String> {
    ledger_runtime::service_names(&ledger_sim::SERVICES).into_iter().map(String::from).collect()
}

// ---------------------------------------------------------------- docker-compose.yml

struct Compose {
    services: serde_yaml::Mapping,
}

impl Compose {
    fn load() -> Self {
        let mut docs = documents("docker-compose.yml");
        assert_eq!(docs.len(), 1);
        let services = docs.remove(0)["services"].as_mapping().expect("services").clone();
        Compose { services }
    }

    fn service(&self, name: &str) -> &Value {
        self.services.get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
    }

    fn containers(&self) -> Vec<(String, &Value, Container)> {
        self.services
            .iter()
            .filter(|(_, s)| s["image"].as_str() == Some(IMAGE))
            .map(|(name, s)| {
                let name = text(name);
                let env = match &s["environment"] {
                    Value::Mapping(m) => m.iter().map(|(k, v)| (text(k), text(v))).collect(),
                    Value::Sequence(items) => items
                        .iter()
                        .map(|i| {
                            let i = text(i);
                            let (k, v) = i.split_once('=').unwrap_or((&i, ""));
                            (k.to_string(), v.to_string())
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                };
                let container = Container { origin: format!("docker-compose.yml {name}"), args: strings(&s["command"]), env };
                (name, s, container)
            })
            .collect()
    }
}

// ---------------------------------------------------------------- deploy/k8s

struct K8s {
    docs: Vec<(String, Value)>,
}

impl K8s {
    fn load() -> Self {
        let mut docs = Vec::new();
        for entry in std::fs::read_dir(repo().join("deploy/k8s")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let name = format!("deploy/k8s/{}", path.file_name().unwrap().to_string_lossy());
                docs.extend(documents(&name).into_iter().map(|d| (name.clone(), d)));
            }
        }
        assert!(!docs.is_empty());
        K8s { docs }
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().map(|(_, d)| d).filter(move |d| d["kind"].as_str() == Some(kind))
    }

    fn named<'a>(&'a self, kind: &'a str, name: &'a str) -> &'a Value {
        self.of_kind(kind)
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
    }

    /// The pod template of a workload.
    fn pod(workload: &Value) -> &Value {
        match workload["kind"].as_str().unwrap() {
            "CronJob" => &workload["spec"]["jobTemplate"]["spec"]["template"],
            _ => &workload["spec"]["template"],
        }
    }

    /// Every ledger container of every workload, its environment resolved (`env`, and
    /// `envFrom` ConfigMaps and Secrets, whose keys become variables).
    fn containers(&self) -> Vec<(&Value, &Value, Container)> {
        let mut out = Vec::new();
        for kind in ["Deployment", "StatefulSet", "Job", "CronJob"] {
            for workload in self.of_kind(kind) {
                let name = text(&workload["metadata"]["name"]);
                for c in Self::pod(workload)["spec"]["containers"].as_sequence().expect("containers") {
                    if c["image"].as_str() != Some(IMAGE) {
                        continue;
                    }
                    let mut env = BTreeMap::new();
                    for e in c["env"].as_sequence().into_iter().flatten() {
                        env.insert(text(&e["name"]), e.get("value").map(text).unwrap_or_default());
                    }
                    for source in c["envFrom"].as_sequence().into_iter().flatten() {
                        let (kind, key, data) = if let Some(r) = source.get("configMapRef") {
                            ("ConfigMap", r, "data")
                        } else {
                            ("Secret", &source["secretRef"], "stringData")
                        };
                        let object = self.named(kind, key["name"].as_str().unwrap());
                        for (k, v) in object[data].as_mapping().expect("data") {
                            env.insert(text(k), text(v));
                        }
                    }
                    let container = Container { origin: format!("deploy/k8s {kind} {name}"), args: strings(&c["args"]), env };
                    out.push((workload, c, container));
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------- scripts/kafka

/// KAFKA_VERSION's default in scripts/kafka.
fn kafka_version() -> String {
    let script = read("scripts/kafka");
    let line = script.lines().find(|l| l.starts_with("readonly KAFKA_VERSION=")).expect("KAFKA_VERSION in scripts/kafka");
    let start = line.find(":-").expect("a default") + 2;
    line[start..line[start..].find('}').unwrap() + start].to_string()
}

/// The broker settings scripts/kafka writes into server.properties that do not depend
/// on the machine (no `$`: ports, folders and listeners are the deployment's own).
fn broker_settings() -> BTreeMap<String, String> {
    let script = read("scripts/kafka");
    let body = script.split("cat > \"$properties\" <<EOF\n").nth(1).expect("the server.properties heredoc");
    let body = &body[..body.find("\nEOF").unwrap()];
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('$'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The apache/kafka image's variable for a broker property.
fn kafka_env_name(property: &str) -> String {
    format!("KAFKA_{}", property.to_uppercase().replace('.', "_"))
}

// ---------------------------------------------------------------- the tests

#[test]
fn every_service_runs_in_a_container_of_its_own() {
    let compose = Compose::load();
    let ran: Vec<(String, String)> =
        compose.containers().into_iter().filter_map(|(name, _, c)| c.service().map(|s| (name, s.to_string()))).collect();
    for (name, service) in &ran {
        assert_eq!(name, service, "docker-compose.yml: service {name} runs `run {service}`: name it after the service");
    }
    assert_eq!(ran.iter().map(|(_, s)| s.clone()).collect::<BTreeSet<_>>(), service_names(), "docker-compose.yml");
    assert_eq!(ran.len(), service_names().len(), "docker-compose.yml: one compose service per ledger service");

    let k8s = K8s::load();
    let mut k8s_services = Vec::new();
    for (workload, _, c) in k8s.containers() {
        let Some(service) = c.service() else { continue };
        assert_eq!(text(&workload["metadata"]["name"]), format!("loan-ledger-{service}"), "{}", c.origin);
        let kind = workload["kind"].as_str().unwrap();
        let wanted = if service == "projector" { "StatefulSet" } else { "Deployment" };
        assert_eq!(kind, wanted, "{}: the projector keeps its read models in a volume of each replica's own", c.origin);
        k8s_services.push(service.to_string());
    }
    assert_eq!(k8s_services.iter().cloned().collect::<BTreeSet<_>>(), service_names(), "deploy/k8s");
    assert_eq!(k8s_services.len(), service_names().len(), "deploy/k8s: one workload per service");
}

#[test]
fn every_service_serves_http_on_the_port_that_is_probed_and_scraped() {
    let port = 8080;
    assert!(read("deploy/Dockerfile").lines().any(|l| l.trim() == format!("EXPOSE {port}")), "deploy/Dockerfile exposes {port}");

    let compose = Compose::load();
    for (name, s, c) in compose.containers() {
        if c.service().is_none() {
            continue;
        }
        assert_eq!(c.http_port(), port, "{}", c.origin);
        assert!(strings(&s["expose"]).contains(&port.to_string()), "{}: exposes {port}", c.origin);
        let health = strings(&s["healthcheck"]["test"]).join(" ");
        assert!(health.contains(&format!("127.0.0.1:{port}/healthz")), "{}: health check {health:?} on /healthz", c.origin);
        let published = strings(&s["ports"]);
        if name == "projector" {
            assert_eq!(published, [format!("{port}:{port}")], "{}: the API and dashboard on the host", c.origin);
        } else {
            assert!(published.is_empty(), "{}: only the projector publishes a port (replicas share none)", c.origin);
        }
    }
    let prometheus = &documents("deploy/prometheus.yml")[0]["scrape_configs"][0];
    assert_eq!(prometheus["metrics_path"].as_str(), Some("/metrics"));
    let sd = &prometheus["dns_sd_configs"][0];
    assert_eq!(sd["port"].as_u64(), Some(u64::from(port)));
    assert_eq!(strings(&sd["names"]).into_iter().collect::<BTreeSet<_>>(), service_names(), "deploy/prometheus.yml scrapes every service");

    let k8s = K8s::load();
    let routes: BTreeSet<&str> = projector::ROUTES.into_iter().collect();
    for (workload, container, c) in k8s.containers() {
        let Some(service) = c.service() else { continue };
        assert_eq!(c.http_port(), port, "{}", c.origin);
        let ports = container["ports"].as_sequence().expect("ports");
        assert!(ports.iter().any(|p| p["name"].as_str() == Some("http") && p["containerPort"].as_u64() == Some(u64::from(port))), "{}: port http is {port}", c.origin);
        let probe = |name: &str| (container[name]["httpGet"]["path"].as_str().map(String::from), container[name]["httpGet"]["port"].as_str().map(String::from));
        assert_eq!(probe("livenessProbe"), (Some("/healthz".into()), Some("http".into())), "{}", c.origin);
        let (ready, ready_port) = probe("readinessProbe");
        assert_eq!(ready_port.as_deref(), Some("http"), "{}", c.origin);
        let ready = ready.unwrap_or_else(|| panic!("{}: no readiness probe", c.origin));
        if service == "projector" {
            assert!(routes.contains(ready.as_str()) && ready.starts_with("/v1/"), "{}: ready once a read-model route answers, not {ready}", c.origin);
        } else {
            assert_eq!(ready, "/healthz", "{}", c.origin);
        }
        let annotations = &K8s::pod(workload)["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"), "{}", c.origin);
        assert_eq!(annotations["prometheus.io/port"].as_str(), Some(port.to_string().as_str()), "{}", c.origin);
        assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"), "{}", c.origin);
    }
    let service = k8s.named("Service", "loan-ledger-projector");
    assert_eq!(service["spec"]["ports"][0]["targetPort"].as_str(), Some("http"));
    assert_eq!(service["spec"]["selector"]["service"].as_str(), Some("projector"));
}

#[test]
fn topics_are_created_by_the_ledger_with_no_fewer_partitions_than_replicas() {
    // ledger.claims has one partition whatever the count (one order of every claim).
    for partitions in [1, 6, 12] {
        assert_eq!(ledger_kafka::topics::partitions_of(ledger_kafka::topics::CLAIMS, partitions), 1);
    }
    let compose = Compose::load();
    let topics: Vec<Container> = compose.containers().into_iter().map(|(_, _, c)| c).filter(|c| c.command() == Some("topics")).collect();
    assert_eq!(topics.len(), 1, "docker-compose.yml: one topics service");
    let partitions: u32 = topics[0].option("--partitions").expect("--partitions").parse().unwrap();
    assert_eq!(topics[0].args[..2], ["topics", "create"]);
    assert_eq!(compose.service("topics")["restart"].as_str(), Some("no"));
    for (name, s, c) in compose.containers() {
        if c.service().is_none() {
            continue;
        }
        assert_eq!(s["depends_on"]["topics"]["condition"].as_str(), Some("service_completed_successfully"), "{name} starts after the topics exist");
        let replicas = s["deploy"]["replicas"].as_u64().unwrap_or(1);
        assert!(replicas <= u64::from(partitions), "{name}: {replicas} replicas for {partitions} partitions");
    }
    assert!(compose.service("books")["deploy"]["replicas"].as_u64().unwrap_or(1) >= 2, "a standby id sequencer and book writer");

    let k8s = K8s::load();
    let jobs: Vec<Container> = k8s.containers().into_iter().map(|(_, _, c)| c).filter(|c| c.command() == Some("topics")).collect();
    assert_eq!(jobs.len(), 1, "deploy/k8s: one topics Job");
    assert!(jobs[0].origin.starts_with("deploy/k8s Job "), "{}", jobs[0].origin);
    let partitions: u64 = jobs[0].option("--partitions").expect("--partitions").parse().unwrap();
    for (workload, _, c) in k8s.containers() {
        let Some(service) = c.service() else { continue };
        let replicas = workload["spec"]["replicas"].as_u64().unwrap_or(1);
        assert!((1..=partitions).contains(&replicas), "{service}: {replicas} replicas for {partitions} partitions");
        if service == "books" {
            assert!(replicas >= 2, "a standby id sequencer and book writer");
        }
    }

    // Every topic the files name is one of the ledger's.
    let known: BTreeSet<String> = ledger_runtime::all_topics().into_iter().collect();
    for path in ["docker-compose.yml", "deploy/k8s/ledger.yaml", "deploy/k8s/kafka.yaml"] {
        for word in read(path).split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')) {
            let word = word.trim_end_matches('.');
            let prefix = word.split('.').next().unwrap();
            let file = [".yaml", ".yml", ".toml", ".json"].iter().any(|e| word.ends_with(e));
            if word.contains('.') && !file && ["loan", "ledger", "payments", "collections", "merchant"].contains(&prefix) {
                assert!(known.contains(word), "{path} names a topic the ledger does not have: {word}");
            }
        }
    }
}

#[test]
fn the_day_close_is_a_scheduled_job_and_runs_nowhere_else() {
    let k8s = K8s::load();
    let closes: Vec<(&Value, Container)> = k8s.containers().into_iter().filter(|(_, _, c)| c.command() == Some("close-day")).map(|(w, _, c)| (w, c)).collect();
    assert_eq!(closes.len(), 1, "deploy/k8s: the day close runs in exactly one place");
    let (cron, _) = &closes[0];
    assert_eq!(cron["kind"].as_str(), Some("CronJob"));
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"), "never two closes at once");
    assert!(cron["spec"]["schedule"].as_str().is_some());

    let compose = Compose::load();
    for (name, _, c) in compose.containers() {
        assert_ne!(c.command(), Some("close-day"), "docker-compose.yml: {name} must not close days by itself");
    }
    assert!(read("docker-compose.yml").contains("docker compose run --rm loanctl close-day"), "docker-compose.yml documents the day close");
    for (workload, _, c) in k8s.containers() {
        assert!(!matches!(c.command(), Some("open" | "feed")), "{}: {:?}", c.origin, workload["kind"]);
    }
}

#[test]
fn the_broker_is_the_release_and_settings_of_scripts_kafka() {
    let version = kafka_version();
    assert!(version.starts_with("4."), "{version}");
    let image = format!("apache/kafka:{version}");
    let settings = broker_settings();
    for wanted in ["auto.create.topics.enable", "offsets.topic.replication.factor", "group.initial.rebalance.delay.ms", "num.partitions"] {
        assert!(settings.contains_key(wanted), "scripts/kafka's settings as read here: {settings:?}");
    }
    let check = |origin: &str, env: &BTreeMap<String, String>| {
        for (property, value) in &settings {
            let name = kafka_env_name(property);
            assert_eq!(env.get(&name), Some(value), "{origin}: {name} (scripts/kafka sets {property}={value})");
        }
    };

    let compose = Compose::load();
    let kafka = compose.service("kafka");
    assert_eq!(kafka["image"].as_str(), Some(image.as_str()), "docker-compose.yml kafka");
    let env: BTreeMap<String, String> = kafka["environment"].as_mapping().unwrap().iter().map(|(k, v)| (text(k), text(v))).collect();
    check("docker-compose.yml kafka", &env);

    let k8s = K8s::load();
    let broker = k8s.named("StatefulSet", "kafka");
    let container = &K8s::pod(broker)["spec"]["containers"][0];
    assert_eq!(container["image"].as_str(), Some(image.as_str()), "deploy/k8s/kafka.yaml");
    let env: BTreeMap<String, String> = container["env"].as_sequence().unwrap().iter().map(|e| (text(&e["name"]), text(&e["value"]))).collect();
    check("deploy/k8s/kafka.yaml", &env);
}

#[test]
fn every_environment_variable_given_is_read_by_the_binary() {
    // Read by the binary itself: clap's `env` of --log-format (shown in --help), and
    // tracing's filter (EnvFilter::try_from_default_env reads DEFAULT_ENV).
    let help = Command::new(env!("CARGO_BIN_EXE_loanctl")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: LOANCTL_LOG_FORMAT="), "{help}");
    assert_eq!(tracing_subscriber::EnvFilter::DEFAULT_ENV, "RUST_LOG");
    assert!(read("crates/loanctl/src/main.rs").contains("EnvFilter::try_from_default_env"));

    let mut containers: Vec<Container> = Compose::load().containers().into_iter().map(|(_, _, c)| c).collect();
    containers.extend(K8s::load().containers().into_iter().map(|(_, _, c)| c));
    assert!(containers.len() >= 2 * service_names().len());
    for c in &containers {
        assert!(c.env.contains_key(ledger_kafka::ENV_BROKERS), "{}: no {}", c.origin, ledger_kafka::ENV_BROKERS);
        let mut kafka_vars = Vec::new();
        for (name, value) in &c.env {
            match name.as_str() {
                "RUST_LOG" => {
                    tracing_subscriber::EnvFilter::try_new(value).unwrap_or_else(|e| panic!("{}: RUST_LOG={value}: {e}", c.origin));
                }
                "LOANCTL_LOG_FORMAT" => assert!(["text", "json"].contains(&value.as_str()), "{}: LOANCTL_LOG_FORMAT={value}", c.origin),
                name if name.starts_with(ledger_kafka::ENV_PREFIX) => kafka_vars.push((name.to_string(), sample(name, value))),
                other => panic!("{}: sets {other}, which loanctl does not read", c.origin),
            }
        }
        // Every LEDGER_KAFKA_<NAME> must name a librdkafka property: a client built
        // from them (no broker needed) refuses an unknown one.
        let config = ledger_kafka::KafkaConfig::from_vars_and_args(kafka_vars.clone(), None, "deploy-test", &[])
            .unwrap_or_else(|e| panic!("{}: {e}", c.origin));
        if let Err(e) = config.producer() {
            panic!("{}: {kafka_vars:?} are not all librdkafka properties: {e}", c.origin);
        }
    }
}

/// A value for a variable the manifests leave empty (empty ones are ignored), so that
/// the property is checked all the same.
fn sample(name: &str, value: &str) -> String {
    if !value.is_empty() {
        return value.to_string();
    }
    match name {
        "LEDGER_KAFKA_SECURITY_PROTOCOL" => "SASL_PLAINTEXT".into(),
        "LEDGER_KAFKA_SASL_MECHANISMS" => "PLAIN".into(),
        _ => "sample".into(),
    }
}
