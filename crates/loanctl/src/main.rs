//! loanctl: the one binary users run.

mod live;
mod progress;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ledger_core::{Date, Discard, ProductConfig};
use live::BrokerArgs;

#[derive(Parser)]
#[command(name = "loanctl", version, about = "Event-sourced loan ledger for small-merchant lending")]
struct Cli {
    /// Product configuration (TOML); keys left out keep SPEC's defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How log lines (on standard error) look: `text` for a person, `json` (one object
    /// a line) for a log collector.
    #[arg(long, global = true, value_enum, env = "LOANCTL_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file (JSON Lines) through the ledger's fold in process and print
    /// the canonical state export as JSON.
    Simulate {
        /// The scenario file; `-` reads standard input.
        file: PathBuf,
        /// Print the state digest instead of the export.
        #[arg(long)]
        digest: bool,
    },
    /// Print the product configuration in force (SPEC's defaults plus --config).
    Config,
    /// The zero-install quick start: an in-process mock broker (keeps nothing after
    /// exit), every service, a generated portfolio fed through the topics, a portfolio
    /// report, and the HTTP API until Ctrl-C.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        merchants: u64,
        #[arg(long, default_value_t = 90)]
        days: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Manage the ledger's topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Run every service and the projector (with its HTTP API) in one process.
    Up {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Folder for the sled databases (positions and read models).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Address of the HTTP API (read models).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Create the topics first (idempotent) with this many partitions.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Run one service alone: books (the writer of every book), origination, repayment,
    /// collections, accrual, monitoring or projector. Run any number of each against one
    /// broker: the instances of a service share its partitions.
    Run {
        service: String,
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Address of the HTTP port: GET /metrics (Prometheus) and /healthz for every
        /// service, and the read-model API where the service is the projector.
        #[arg(long)]
        http: Option<SocketAddr>,
    },
    /// Open the first business date (every book's writer appends Opened).
    Open {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long)]
        date: String,
    },
    /// Close the open business date (every book's writer appends DayClosed, in its place
    /// among the book's inputs); refuses a gap or a repeated day.
    CloseDay {
        #[command(flatten)]
        broker: BrokerArgs,
        /// The date to close; must be the open business date (default: that date).
        #[arg(long)]
        date: Option<String>,
    },
    /// Publish a scenario through the real input topics and return once the ledger has
    /// processed all of it.
    Feed {
        #[command(flatten)]
        broker: BrokerArgs,
        file: PathBuf,
        /// How long one input may take to be processed before feed gives up.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Print the state export (SPEC section 11) from the live read models.
    Export {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Print the digest of the live read models.
    Digest {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Rebuild every read model from loan.events into an empty folder and print its digest.
    Replay {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, value_name = "NEWDIR")]
        data: PathBuf,
    },
    /// Benchmark the fold: replay of a generated scenario's facts (facts per second) and
    /// one day close over many active loans. Build with --release.
    Bench {
        #[arg(long, default_value_t = 20_000)]
        merchants: u64,
        #[arg(long, default_value_t = 180)]
        days: u64,
        /// Active loans for the day-close benchmark.
        #[arg(long, default_value_t = 1_000_000)]
        loans: usize,
    },
    /// Benchmark the ledger end to end through a real broker (which must hold no ledger
    /// yet) beside the broker's own produce and consume ceiling.
    BenchLive {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, default_value_t = 100)]
        merchants: u64,
        #[arg(long, default_value_t = 60)]
        days: u64,
        /// Messages for the broker's ceiling.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Repayments published at once for the end-to-end throughput.
        #[arg(long, default_value_t = 20_000)]
        repayments: usize,
        /// Inputs per second for the latency figures.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// How long each latency figure sends at --rate.
        #[arg(long, default_value_t = 10)]
        paced_seconds: u64,
        /// Then this many more loans through the broker, for the figures of a large
        /// book: memory per active loan, a day close over every active loan, a restart,
        /// a replay (0: skipped).
        #[arg(long, default_value_t = 0)]
        loans: usize,
    },
    /// Print a generated scenario (JSON Lines): merchants borrowing and repaying over
    /// business days, with re-sent inputs, bad amounts, collections actions and merchant updates
    /// (some weak enough to warn and to recall) mixed in.
    Generate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        merchants: u64,
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create every topic (inputs, loan.events, outputs, dead-letter topics); idempotent.
    Create {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// List the topics the ledger uses.
    List,
}

fn parse_date(text: &str) -> anyhow::Result<Date> {
    Ok(Date::parse(text)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Arc<ProductConfig>> {
    let config = match path {
        None => ProductConfig::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            ProductConfig::from_toml_str(&text).with_context(|| format!("in {}", p.display()))?
        }
    };
    Ok(Arc::new(config))
}

fn read_input(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(cli.config.as_ref())?;
    match cli.command {
        Command::Simulate { file, digest } => {
            let text = read_input(&file)?;
            let (ledger, _) = ledger_sim::run(&text, config, &mut Discard)
                .with_context(|| format!("scenario {}", file.display()))?;
            if digest {
                println!("{}", ledger.digest());
            } else {
                println!("{}", serde_json::to_string_pretty(&ledger.export())?);
            }
        }
        Command::Config => print!("{}", config.to_toml_string()),
        Command::Demo { http, merchants, days, seed } => runtime()?.block_on(live::demo(config, http, merchants, days, seed))?,
        Command::Topics { command: TopicsCommand::List } => {
            for t in ledger_runtime::all_topics() {
                println!("{t}");
            }
        }
        Command::Topics { command: TopicsCommand::Create { broker, partitions } } => {
            let ctx = broker.context(config)?;
            runtime()?.block_on(live::topics_create(&ctx, partitions))?;
            println!("{}", serde_json::json!({"created": ledger_runtime::all_topics(), "partitions": partitions}));
        }
        Command::Up { broker, data, http, partitions } => {
            let ctx = broker.context(config)?;
            runtime()?.block_on(async {
                live::topics_create(&ctx, partitions).await?;
                live::run_services(ctx, &data, &live::all_services(), Some(http)).await
            })?;
        }
        Command::Run { service, broker, data, http } => {
            let names = live::all_services();
            let name = names.iter().find(|n| **n == service).with_context(|| format!("no service {service:?}; one of {}", names.join(", ")))?;
            let ctx = broker.context(config)?;
            runtime()?.block_on(async {
                // `up` checks through its topic creation; a service started alone here.
                ledger_runtime::check_topics(&ctx.kafka).await?;
                live::run_services(ctx, &data, &[name], http).await
            })?;
        }
        Command::Open { broker, date } => {
            let ctx = broker.context(config)?;
            runtime()?.block_on(live::open(&ctx, parse_date(&date)?))?;
        }
        Command::CloseDay { broker, date } => {
            let ctx = broker.context(config)?;
            let date = date.as_deref().map(parse_date).transpose()?;
            runtime()?.block_on(live::close_day(&ctx, date))?;
        }
        Command::Feed { broker, file, wait_seconds } => {
            // A missing file is said at once, not after the broker's answer.
            std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
            let ctx = broker.context(config)?;
            runtime()?.block_on(live::feed_file(&ctx, &file, wait_seconds))?;
        }
        Command::Export { api } => println!("{}", runtime()?.block_on(live::get_json(&api, "/v1/export"))?.trim_end()),
        Command::Digest { api } => {
            let body = runtime()?.block_on(live::get_json(&api, "/v1/digest"))?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            println!("{}", v["digest"].as_str().unwrap_or_default());
        }
        Command::Replay { broker, data } => {
            let ctx = broker.context(config)?;
            runtime()?.block_on(live::replay_into(&ctx, &data))?;
        }
        Command::Bench { merchants, days, loans } => {
            let f = ledger_sim::bench::run(merchants, days, loans);
            println!("scenario: {merchants} merchants x {days} days = {} inputs -> {} facts", f.scenario_inputs, f.facts);
            println!("decide + apply (the simulator's path): {:.3} s", f.decide_and_apply_seconds);
            println!("replay of the facts: {:.3} s = {:.0} facts/s", f.replay_seconds, f.facts_per_second);
            println!("replay of keyed facts only (applications, payments, actions): {:.0} facts/s", f.keyed_facts_per_second);
            println!("replay with derived events collected: {:.3} s", f.replay_with_events_seconds);
            println!("day close over {} active loans: {:.3} s ({:.3} s with derived events)", f.close_loans, f.close_seconds, f.close_with_events_seconds);
        }
        Command::BenchLive { broker, merchants, days, messages, repayments, rate, paced_seconds, loans } => {
            let ctx = broker.context(config)?;
            runtime()?.block_on(live::bench_live(ctx, merchants, days, messages, repayments, rate, paced_seconds, loans))?;
        }
        Command::Generate { seed, merchants, days } => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(ledger_sim::scenario_text(&ledger_sim::Profile::new(seed, merchants, days)).as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Logs go to standard error, filtered by RUST_LOG (default: warnings, and the
/// services' and loanctl's own progress at info). Text is coloured only for a person at a terminal
/// (never escape codes in a file or a pipe, nor with NO_COLOR set); JSON never is.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ledger_runtime=info,loanctl=info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init();
        }
        // One JSON object a line: the event's fields flattened beside level, target and
        // timestamp, and the spans it is in.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(true).with_ansi(false).init(),
    }
}

/// Every failure ends the process with one line on standard error, `loanctl: ` and
/// what failed, and what to do about it where the error itself does not say: exit code
/// 1 for a failed command, 2 for a command line clap refused.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to standard output and succeed.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("loanctl: {}", usage_error_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    init_logs(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loanctl: {}", failure_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line (a cause's text may hold line breaks, such as
/// an HTTP answer's body), with advice appended where the error holds none.
fn failure_line(error: &anyhow::Error) -> String {
    let causes: Vec<&(dyn std::error::Error + 'static)> = error.chain().collect();
    let text = one_line(&ledger_runtime::join_causes(&causes));
    match advice(error) {
        Some(advice) => format!("{text}; {advice}"),
        None => text,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// clap's message (an error, a tip, the usage, where to read more) on one line.
fn usage_error_line(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = line.strip_prefix("error: ").unwrap_or(line);
        match parts.last_mut() {
            // "...were not provided:" and the arguments listed below it.
            Some(last) if last.ends_with(':') => {
                last.push(' ');
                last.push_str(line);
            }
            _ => parts.push(line.to_string()),
        }
    }
    parts.join("; ")
}

/// What to do about the failures whose messages say only what went wrong.
fn advice(error: &anyhow::Error) -> Option<&'static str> {
    use ledger_kafka::KafkaError;
    use std::io::ErrorKind;
    for cause in error.chain() {
        let kafka = cause.downcast_ref::<KafkaError>().or_else(|| match cause.downcast_ref::<ledger_runtime::RuntimeError>() {
            Some(ledger_runtime::RuntimeError::Kafka(e)) => Some(e),
            _ => None,
        });
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| match cause.downcast_ref::<ledger_runtime::RuntimeError>() {
            Some(ledger_runtime::RuntimeError::Io(e)) => Some(e),
            _ => None,
        });
        match kafka {
            Some(KafkaError::Unreachable { .. }) => {
                return Some(
                    "start the broker or point --brokers (or LEDGER_KAFKA_BROKERS) at a running one; a SASL or TLS \
                     listener also needs -X security.protocol=... (README \"Security\")",
                )
            }
            Some(KafkaError::Client { .. }) => {
                return Some("check the -X options and LEDGER_KAFKA_* variables: librdkafka's property names and values")
            }
            Some(KafkaError::UnknownTopic { .. }) => {
                return Some("create the topics first: loanctl topics create --brokers ... --partitions N (loanctl up does it too)")
            }
            _ => {}
        }
        match io.map(std::io::Error::kind) {
            Some(ErrorKind::NotFound) => return Some("check the path"),
            Some(ErrorKind::PermissionDenied) => return Some("check the permissions of that file or folder"),
            Some(ErrorKind::ConnectionRefused) => {
                return Some("nothing answers there: start loanctl up (or loanctl run projector --http ADDR), or point --api at it")
            }
            Some(ErrorKind::AddrInUse) => return Some("another process holds that address: stop it or choose another --http"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
    }

    /// The HTTP API has no authentication: it listens on loopback unless an
    /// operator names another address.
    #[test]
    fn http_is_bound_to_loopback_unless_told() {
        match command(&["loanctl", "up", "--data", "d"]) {
            Command::Up { http, .. } => assert_eq!(http.to_string(), "127.0.0.1:8080"),
            _ => unreachable!(),
        }
        match command(&["loanctl", "demo"]) {
            Command::Demo { http, .. } => assert!(http.ip().is_loopback()),
            _ => unreachable!(),
        }
        match command(&["loanctl", "run", "projector", "--data", "d", "--http", "0.0.0.0:9000"]) {
            Command::Run { http, .. } => assert_eq!(http.unwrap().to_string(), "0.0.0.0:9000"),
            _ => unreachable!(),
        }
        match command(&["loanctl", "run", "projector", "--data", "d"]) {
            Command::Run { http, .. } => assert_eq!(http, None),
            _ => unreachable!(),
        }
    }

    /// A failure is one line, with what to do where the error does not say it.
    #[test]
    fn failures_are_one_line_with_advice() {
        let missing = std::fs::read_to_string("/no/such/file").map_err(anyhow::Error::from).context("reading /no/such/file").unwrap_err();
        assert_eq!(failure_line(&missing), "reading /no/such/file: No such file or directory (os error 2); check the path");
        let http = anyhow::anyhow!("GET http://x/v1/export: HTTP 503: {{\n  \"error\": \"being rebuilt\"\n}}");
        assert_eq!(failure_line(&http), r#"GET http://x/v1/export: HTTP 503: { "error": "being rebuilt" }"#);
        let unreachable = anyhow::Error::from(ledger_runtime::RuntimeError::Kafka(ledger_kafka::KafkaError::Unreachable {
            brokers: "127.0.0.1:1".into(),
            timeout_ms: 10,
            reason: "down".into(),
        }));
        assert!(failure_line(&unreachable).starts_with("no broker of 127.0.0.1:1 answered within 10 ms: down; start the broker"));
        let usage = Cli::try_parse_from(["loanctl", "up"]).err().unwrap().render().to_string();
        let line = usage_error_line(&usage);
        assert!(!line.contains('\n') && line.starts_with("the following required arguments were not provided: --data <DIR>"), "{line}");
        assert!(line.contains("Usage: loanctl up"), "{line}");
    }

    /// --log-format is global (before or after the command) and text by default.
    #[test]
    fn log_format_is_a_global_option() {
        let format = |args: &[&str]| Cli::try_parse_from(args).unwrap().log_format;
        assert_eq!(format(&["loanctl", "--log-format", "json", "config"]), LogFormat::Json);
        assert_eq!(format(&["loanctl", "config", "--log-format", "json"]), LogFormat::Json);
        assert!(Cli::try_parse_from(["loanctl", "--log-format", "xml", "config"]).is_err());
    }
}
