//! Test harness: a real broker per test, started by the project's own scripts on a
//! free port with its data in a temporary folder, and the real `loanctl` binary.
//!
//! The broker is Apache Kafka (scripts/kafka: KRaft, one node) unless
//! `LEDGER_TEST_BROKER=tansu` asks for Tansu 0.6.0 (scripts/dev-broker, SQLite
//! storage: its memory storage reports end offsets wrongly and loses records for a
//! consumer that resumes inside a batch, which is exactly what the ledger's readers do).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

pub fn loanctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loanctl"))
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("loanledger-e2e-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Which broker the tests run against (`LEDGER_TEST_BROKER`: `kafka`, the default,
/// or `tansu`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Kafka,
    Tansu,
}

impl Kind {
    pub fn from_env() -> Kind {
        match std::env::var("LEDGER_TEST_BROKER").as_deref() {
            Err(_) | Ok("") | Ok("kafka") => Kind::Kafka,
            Ok("tansu") => Kind::Tansu,
            Ok(other) => panic!("LEDGER_TEST_BROKER={other}: expected kafka or tansu"),
        }
    }

    fn script(self) -> PathBuf {
        repo_root().join(match self {
            Kind::Kafka => "scripts/kafka",
            Kind::Tansu => "scripts/dev-broker",
        })
    }
}

/// A broker of this test's own.
pub struct Broker {
    pub port: u16,
    pub kind: Kind,
    dir: TempDir,
    /// `--sasl-plain USER:PASSWORD` (Apache Kafka only).
    sasl: Option<String>,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(None)
    }

    /// An Apache Kafka broker whose client listener requires SASL/PLAIN with this
    /// one user.
    pub fn start_sasl(user: &str, password: &str) -> Broker {
        assert_eq!(Kind::from_env(), Kind::Kafka, "SASL tests need Apache Kafka");
        Broker::start_with(Some(format!("{user}:{password}")))
    }

    /// Ports are picked free, but another process (a parallel test) may take one
    /// before the broker binds it: a start that failed on a port in use is tried again
    /// on new ports, twice.
    fn start_with(sasl: Option<String>) -> Broker {
        for attempt in 1.. {
            let broker = Broker { port: free_port(), kind: Kind::from_env(), dir: TempDir::new("broker"), sasl: sasl.clone() };
            if broker.try_start() {
                return broker;
            }
            let log = std::fs::read_to_string(broker.dir.path().join("broker.log")).unwrap_or_default();
            if attempt == 3 || !log.contains("Address already in use") {
                broker.run_start(); // fails again, with the message below
            }
            eprintln!("e2e: a port of the broker was taken meanwhile; starting it on new ports");
        }
        unreachable!()
    }

    fn run_start(&self) {
        assert!(
            self.try_start(),
            "{} could not start a {:?} broker on port {}; run scripts/test, which installs it (see {}/broker.log)",
            self.kind.script().display(),
            self.kind,
            self.port,
            self.dir.path().display()
        );
    }

    fn try_start(&self) -> bool {
        let mut cmd = Command::new("bash");
        cmd.arg(self.kind.script())
            .args(["start", "--port", &self.port.to_string(), "--dir"])
            .arg(self.dir.path())
            .args(["--wait", "120"]);
        if let Some(sasl) = &self.sasl {
            cmd.args(["--sasl-plain", sasl]);
        }
        cmd.stdout(Stdio::null()).status().expect("running the broker script").success()
    }

    fn run_stop(&self) {
        let _ = Command::new("bash")
            .arg(self.kind.script())
            .args(["stop", "--port", &self.port.to_string(), "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .status();
    }

    /// Stops the broker (a clean shutdown) and starts it again on the same port with
    /// the same data.
    pub fn restart(&self) {
        self.run_stop();
        self.run_start();
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.run_stop();
    }
}

/// `loanctl up` as a child process; killed (SIGKILL) on drop if still running.
pub struct Up {
    child: Child,
    pub api: String,
}

impl Up {
    pub fn start(brokers: &str, data: &Path, http_port: u16) -> Up {
        Up::start_with(brokers, data, http_port, &[], &[])
    }

    /// `loanctl up` with extra arguments (e.g. `-X key=value`) and environment
    /// variables; its stderr goes to `data` + ".log".
    pub fn start_with(brokers: &str, data: &Path, http_port: u16, args: &[String], envs: &[(String, String)]) -> Up {
        let log = std::fs::File::create(Up::log_path(data)).unwrap();
        let mut command = loanctl();
        command.args(["up", "--brokers", brokers, "--http", &format!("127.0.0.1:{http_port}"), "--data"]).arg(data);
        if !args.iter().any(|a| a == "--partitions") {
            command.args(["--partitions", "3"]);
        }
        let child = command
            .args(args)
            .env("RUST_LOG", "warn,ledger_runtime=info")
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting loanctl up");
        let up = Up { child, api: format!("http://127.0.0.1:{http_port}") };
        up.wait_healthy(Duration::from_secs(60));
        up
    }

    /// Where `start_with` writes the process's stderr.
    pub fn log_path(data: &Path) -> PathBuf {
        data.with_extension("log")
    }

    fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let out = loanctl().args(["export", "--api", &self.api]).output().unwrap();
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "loanctl up did not serve {} in time: {}", self.api, String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Ctrl-C equivalent: SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "loanctl up exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("loanctl up did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `loanctl simulate FILE` (the in-process fold): export and digest.
pub fn simulate(file: &Path) -> (serde_json::Value, String) {
    let export = stdout_json(&run_ok(loanctl().arg("simulate").arg(file)));
    let digest = stdout_line(&run_ok(loanctl().arg("simulate").arg("--digest").arg(file)));
    (export, digest)
}

pub fn feed(brokers: &str, file: &Path) -> Output {
    quiet_in_a_pipe(run_ok(loanctl().args(["feed", "--wait-seconds", "120", "--brokers", brokers]).arg(file)))
}

/// A long command draws its progress only on a terminal: into a pipe (as here) its
/// standard error has no redrawn line and no escape codes.
pub fn quiet_in_a_pipe(out: Output) -> Output {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "progress drawn into a pipe:\n{stderr}");
    out
}

pub fn export(api: &str) -> serde_json::Value {
    stdout_json(&run_ok(loanctl().args(["export", "--api", api])))
}

/// GET `path` of the HTTP API: the status and the JSON body.
pub fn get_text(api: &str, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(ledger_runtime::http::get(&format!("{api}{path}"))).unwrap()
}

pub fn get_json(api: &str, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get_text(api, path);
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
    (status, value)
}

pub fn digest(api: &str) -> String {
    stdout_line(&run_ok(loanctl().args(["digest", "--api", api])))
}

pub fn replay(brokers: &str, data: &Path) -> String {
    stdout_line(&quiet_in_a_pipe(run_ok(loanctl().args(["replay", "--brokers", brokers, "--data"]).arg(data))))
}

/// Writes a generated scenario to `dir/name.jsonl`.
pub fn generated(dir: &Path, name: &str, seed: u64, merchants: u64, days: u64) -> PathBuf {
    let out = run_ok(loanctl().args(["generate", "--seed", &seed.to_string(), "--merchants", &merchants.to_string(), "--days", &days.to_string()]));
    let path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// How many records loan.events holds (the sum of its partitions' end offsets); 0
/// before the topic exists.
pub fn facts_on_events(brokers: &str) -> i64 {
    let kafka = ledger_kafka::KafkaConfig::new(brokers, "e2e-progress");
    ledger_kafka::OffsetProbe::new(&kafka)
        .and_then(|probe| probe.end_offsets(ledger_kafka::topics::EVENTS))
        .map(|ends| ends.values().sum())
        .unwrap_or(0)
}

/// Waits until loan.events holds at least `facts` records while `feeder` runs, so
/// that a fault lands in the middle of a feed whatever the machine's speed; panics
/// when the feed ends first or after three minutes.
pub fn wait_for_facts(brokers: &str, facts: i64, feeder: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while facts_on_events(brokers) < facts {
        assert!(feeder.try_wait().unwrap().is_none(), "the feed ended before loan.events held {facts} facts");
        assert!(Instant::now() < deadline, "loan.events did not reach {facts} facts in three minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number of lines of a scenario file (its inputs, opens and closes).
pub fn line_count(file: &Path) -> i64 {
    std::fs::read_to_string(file).unwrap().lines().filter(|l| !l.trim().is_empty()).count() as i64
}

/// Waits until every input sent so far is decided: every intake, the id sequencer and
/// the book writers have committed the end of their topics (their groups as the
/// runtime names them), in that order.
pub fn wait_until_decided(brokers: &str) {
    use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
    use ledger_kafka::rdkafka::{Offset, TopicPartitionList};
    use ledger_kafka::{topics, KafkaConfig, OffsetProbe};
    use ledger_runtime::{books, claims, input_group, input_topic};

    let mut stages: Vec<(&str, String)> = ledger_sim::SERVICES
        .iter()
        .filter_map(|h| h.decides().map(|kind| (input_topic(kind), input_group(h.name()))))
        .collect();
    stages.push((topics::CLAIMS, claims::GROUP.to_string()));
    stages.push((topics::COMMANDS, books::GROUP.to_string()));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let _inside = rt.enter(); // a StreamConsumer needs a runtime to live in
    let kafka = KafkaConfig::new(brokers, "e2e-decided-watch");
    let probe = OffsetProbe::new(&kafka).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    for (topic, group) in stages {
        let ends = probe.end_offsets(topic).unwrap();
        let watcher: StreamConsumer = kafka.consumer(&group).unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in ends.keys() {
            tpl.add_partition(topic, *p);
        }
        loop {
            let committed = watcher.committed_offsets(tpl.clone(), Duration::from_secs(5)).unwrap();
            let behind = ends.iter().any(|(p, end)| {
                *end > 0 && committed.find_partition(topic, *p).is_none_or(|e| !matches!(e.offset(), Offset::Offset(o) if o >= *end))
            });
            if !behind {
                break;
            }
            assert!(Instant::now() < deadline, "{group} did not process {topic} to its end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
