//! The commands that talk to a broker: topics, up, run, open, close-day, feed, export,
//! digest, replay, demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use ledger_core::{Date, ProductConfig};
use ledger_kafka::KafkaConfig;
use ledger_runtime::follower::Follower;
use ledger_runtime::{books, claims, control, feed, fold, http, intake, projection, replay, service, Context};
use ledger_store::Store;
use tokio::sync::watch;

use crate::progress::Progress;
use tokio::task::JoinSet;

/// Where the broker is and how to reach it.
#[derive(clap::Args, Clone, Debug)]
pub struct BrokerArgs {
    /// Kafka bootstrap servers (default: $LEDGER_KAFKA_BROKERS, else 127.0.0.1:9092).
    #[arg(long, value_name = "HOST:PORT")]
    pub brokers: Option<String>,
    /// Extra librdkafka property (repeatable), e.g. -X security.protocol=SASL_SSL.
    /// LEDGER_KAFKA_<NAME> environment variables set properties too.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub property: Vec<String>,
}

impl BrokerArgs {
    pub fn context(&self, config: Arc<ProductConfig>) -> anyhow::Result<Context> {
        let kafka = KafkaConfig::from_env_and_args(self.brokers.as_deref(), "loanctl", &self.property)?;
        // A wrong address or password is one clear error now, not a hang later.
        ledger_kafka::check_connection(&kafka)?;
        Ok(Context { kafka, config, services: &ledger_sim::SERVICES })
    }
}

/// Creates every topic (idempotent).
pub async fn topics_create(ctx: &Context, partitions: i32) -> anyhow::Result<()> {
    ledger_runtime::create_topics(&ctx.kafka, partitions).await?;
    Ok(())
}

/// Runs the named services (all of them for `up`) and the projector with its HTTP API,
/// until Ctrl-C or SIGTERM; then drains and stops.
pub async fn run_services(ctx: Context, data: &Path, names: &[&str], http_addr: Option<SocketAddr>) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let store = Store::open(data).with_context(|| format!("opening the store in {}", data.display()))?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    // Without the projector, the HTTP port serves the metrics (and /healthz) alone.
    if let (Some(addr), false) = (http_addr, names.contains(&projection::NAME)) {
        let listener = http::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(url = %format!("http://{}/metrics", listener.local_addr()?), "metrics listening (GET /metrics, /healthz)");
        let stopped = stopped.clone();
        tasks.spawn(async move { Ok(http::serve_metrics(listener, stopped).await?) });
    }
    // One fold for the readers of loan.events in this process: with the projector
    // here, its fold feeds the publishers here (ledger_runtime::fold).
    let mut feeds = Vec::new();
    let mut subscriptions = std::collections::BTreeMap::new();
    if names.contains(&projection::NAME) && shared_fold() {
        for name in names {
            if let Some(service) = ctx.service(name).filter(|s| s.publishes()) {
                let (feed, subscription) = fold::feed(&ledger_runtime::events_group(service.name()));
                feeds.push(feed);
                subscriptions.insert(*name, subscription);
            }
        }
    }
    for name in names {
        if *name == projection::NAME {
            let tree = store.tree(projection::NAME)?;
            let ready = projection::Readiness::default();
            if let Some(addr) = http_addr {
                let listener = http::bind(addr).await.with_context(|| format!("binding {addr}"))?;
                let url = format!("http://{}", listener.local_addr()?);
                tracing::info!(%url, openapi = %format!("{url}/openapi.json"), "HTTP API listening (GET /v1/export, /v1/portfolio, /v1/loans/ID, ...)");
                let (tree, ready, stopped) = (tree.clone(), ready.clone(), stopped.clone());
                tasks.spawn(async move { Ok(http::serve(listener, tree, ready, stopped).await?) });
            }
            let (ctx, stopped, feeds) = (ctx.clone(), stopped.clone(), std::mem::take(&mut feeds));
            tasks.spawn(async move { Ok(projection::run_projector_feeding(ctx, tree, ready, feeds, stopped).await?) });
        } else if *name == books::NAME {
            // The one writer per book, with every service that decides an input.
            let (books_ctx, books_stopped) = (ctx.clone(), stopped.clone());
            tasks.spawn(async move { Ok(books::run_books(books_ctx, books_stopped).await?) });
            // And the id sequencer in front of them (one instance holds its queue).
            let (claims_ctx, claims_stopped) = (ctx.clone(), stopped.clone());
            tasks.spawn(async move { Ok(claims::run_sequencer(claims_ctx, claims_stopped).await?) });
        } else {
            let handler = ctx.service(name).with_context(|| format!("no service named {name}"))?;
            if handler.decides().is_some() {
                let (ctx, stopped) = (ctx.clone(), stopped.clone());
                tasks.spawn(async move { Ok(intake::run_intake(handler, ctx, stopped).await?) });
            }
            if handler.publishes() {
                let (ctx, stopped) = (ctx.clone(), stopped.clone());
                let subscription = subscriptions.remove(name);
                tasks.spawn(async move { Ok(service::run_publisher(handler, ctx, subscription, stopped).await?) });
            }
        }
    }
    tracing::info!(services = %names.join(","), brokers = %ctx.kafka.brokers, data = %data.display(), "running; Ctrl-C stops");
    let mut failure = None;
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("stopping (finishing the messages in hand)"),
        Some(done) = tasks.join_next() => {
            failure = Some(match done {
                Ok(Ok(())) => anyhow::anyhow!("a service stopped unexpectedly"),
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!(e),
            });
        }
    }
    let _ = stop.send(true);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            failure.get_or_insert(e);
        }
    }
    store.flush()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The environment variable that turns the process's one fold off (`0`): every
/// publisher then folds its partitions itself, as in `loanctl run SERVICE`. For
/// comparisons (BENCHMARKS.md); on by default.
pub const SHARED_FOLD_VAR: &str = "LEDGER_SHARED_FOLD";

fn shared_fold() -> bool {
    std::env::var(SHARED_FOLD_VAR).map_or(true, |v| v != "0")
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub fn all_services() -> Vec<&'static str> {
    ledger_runtime::service_names(&ledger_sim::SERVICES)
}

pub async fn open(ctx: &Context, date: Date) -> anyhow::Result<()> {
    let mut view = Follower::new(&ctx.kafka, "ledger-control", ctx.config.clone(), false)?;
    control::open(&mut view, &ctx.kafka.producer()?, date, control::WAIT).await?;
    println!("{}", serde_json::json!({"opened": date.to_string()}));
    Ok(())
}

pub async fn close_day(ctx: &Context, date: Option<Date>) -> anyhow::Result<()> {
    let mut view = Follower::new(&ctx.kafka, "ledger-control", ctx.config.clone(), false)?;
    let closed = control::close_day(&mut view, &ctx.kafka.producer()?, date, control::WAIT).await?;
    println!("{}", serde_json::json!({"closed": closed.to_string(), "business_date": closed.next().to_string()}));
    Ok(())
}

pub async fn feed_file(ctx: &Context, file: &Path, wait_seconds: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut progress = Progress::new("feed");
    let report = feed::feed(ctx, &text, Duration::from_secs(wait_seconds), |done, total| {
        progress.step("processed", done as u64, total as u64, "inputs");
    })
    .await
    .with_context(|| format!("feeding {}", file.display()))?;
    progress.finish();
    println!(
        "{}",
        serde_json::json!({"inputs": report.inputs, "published": report.published, "day_closes": report.day_closes, "seconds": format!("{:.1}", report.seconds)})
    );
    Ok(())
}

pub async fn get_json(api: &str, path: &str) -> anyhow::Result<String> {
    let url = format!("{}{path}", api.trim_end_matches('/'));
    let (status, body) = http::get(&url).await.with_context(|| format!("GET {url}"))?;
    if status != 200 {
        bail!("GET {url}: HTTP {status}: {}", body.trim());
    }
    Ok(body)
}

pub async fn replay_into(ctx: &Context, data: &Path) -> anyhow::Result<()> {
    if data.exists() && std::fs::read_dir(data)?.next().is_some() {
        bail!("{} is not empty: replay rebuilds into an empty folder", data.display());
    }
    std::fs::create_dir_all(data)?;
    let store = Store::open(data)?;
    let tree = store.tree(projection::NAME)?;
    let mut progress = Progress::new("replay");
    let report = replay::replay(ctx, tree, |done, total| progress.step(ledger_kafka::topics::EVENTS, done, total, "records")).await?;
    progress.finish();
    store.flush()?;
    tracing::info!(facts = report.facts, seconds = format!("{:.1}", report.seconds), data = %data.display(), "replayed loan.events");
    println!("{}", report.digest);
    Ok(())
}

/// The zero-install quick start: an in-process mock broker, every service, a generated
/// portfolio fed through the topics, a report, and the HTTP API until Ctrl-C.
pub async fn demo(config: Arc<ProductConfig>, http_addr: SocketAddr, merchants: u64, days: u64, seed: u64) -> anyhow::Result<()> {
    eprintln!("loanctl demo: starting librdkafka's in-process mock broker. It keeps NOTHING after this process exits;");
    eprintln!("              for a durable broker see README \"Run with Apache Kafka\".");
    let partitions = 3;
    let names = ledger_runtime::all_topics();
    let list: Vec<(&str, i32)> = names.iter().map(|n| (n.as_str(), partitions)).collect();
    let broker = ledger_kafka::MockBroker::start(&list)?;
    let ctx = Context { kafka: broker.config("loanctl-demo"), config, services: &ledger_sim::SERVICES };
    let data: PathBuf = std::env::temp_dir().join(format!("loanctl-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let services_ctx = ctx.clone();
    let services_data = data.clone();
    let services = tokio::spawn(async move { run_services(services_ctx, &services_data, &all_services(), Some(http_addr)).await });
    let scenario = ledger_sim::scenario_text(&ledger_sim::Profile::new(seed, merchants, days));
    eprintln!("loanctl demo: feeding {merchants} merchants over {days} business days through the topics ...");
    let mut last = 0;
    let report = feed::feed(&ctx, &scenario, Duration::from_secs(120), |done, total| {
        if done == total || done >= last + 1_000 {
            eprintln!("loanctl demo: {done}/{total} inputs processed");
            last = done;
        }
    })
    .await?;
    let api = format!("http://{http_addr}");
    let portfolio: serde_json::Value = serde_json::from_str(&get_json(&api, "/v1/portfolio").await?)?;
    print!("{}", portfolio_report(&portfolio));
    eprintln!(
        "loanctl demo: {} inputs and {} day closes in {:.1} s. The HTTP API stays up at {api} (the dashboard at {api}/; try /v1/portfolio, /v1/overdue?bucket=M1, /v1/export); Ctrl-C ends the demo.",
        report.inputs, report.day_closes, report.seconds
    );
    let result = services.await?;
    let _ = std::fs::remove_dir_all(&data);
    drop(broker);
    result
}

/// The portfolio figures (SPEC section 8) as a short report for a person.
fn portfolio_report(p: &serde_json::Value) -> String {
    let s = |key: &str| p[key].as_str().map(str::to_string).unwrap_or_else(|| p[key].to_string());
    let o = |bucket: &str| p["overdue_principal"][bucket].as_str().unwrap_or("?").to_string();
    let mut out = String::new();
    out += &format!("Portfolio at the open of {} (CNY)\n", s("business_date"));
    out += &format!("  loans disbursed          {:>14}   amount disbursed   {:>16}\n", s("loans_disbursed"), s("amount_disbursed"));
    out += &format!("  borrowers (ever lent to) {:>14}   active loans       {:>16}\n", s("borrowers"), s("active_loans"));
    out += &format!("  outstanding principal    {:>14}   written off        {:>16}\n", s("outstanding_principal"), s("written_off_principal"));
    out += &format!("  interest income          {:>14}   penalty income     {:>16}\n", s("interest_income"), s("penalty_income"));
    out += &format!("  overdue principal   M1 {}   M2 {}   M3 {}   NPL {}\n", o("M1"), o("M2"), o("M3"), o("NPL"));
    out += &format!("  NPL ratio                {:>14}   settled loans      {:>16}\n", s("npl_ratio"), s("settled_loans"));
    out += &format!("  average days a settled loan was outstanding: {}\n", s("average_days_outstanding"));
    if let Some(days) = p["income_by_day"].as_array() {
        out += "  income of the last days closed:\n";
        for day in days.iter().rev().take(5).rev() {
            out += &format!("    {}  interest {:>12}  penalty {:>12}\n", day["date"].as_str().unwrap_or("?"), day["interest"].as_str().unwrap_or("?"), day["penalty"].as_str().unwrap_or("?"));
        }
    }
    out
}

/// `loanctl bench-live`: the ledger end to end through a real broker, beside the
/// broker's own ceiling (raw produce and consume of 100-byte messages).
pub async fn bench_live(
    ctx: Context,
    merchants: u64,
    days: u64,
    ceiling_messages: usize,
    repayments: usize,
    rate: u64,
    paced_seconds: u64,
    loans: usize,
) -> anyhow::Result<()> {
    use ledger_kafka::rdkafka::consumer::Consumer;
    use ledger_kafka::rdkafka::producer::FutureRecord;
    use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
    use std::time::Instant;

    let probe = ledger_kafka::OffsetProbe::new(&ctx.kafka)?;
    if probe.end_offsets(ledger_kafka::topics::EVENTS).map(|e| e.values().sum::<i64>()).unwrap_or(0) > 0 {
        bail!("loan.events already holds facts on {}: bench-live needs a broker with no ledger on it", ctx.kafka.brokers);
    }
    let mut progress = Progress::new("bench-live");
    // The broker's ceiling first, on a topic of its own.
    progress.phase("the broker's ceiling: producing");
    let topic = CEILING_TOPIC;
    ledger_kafka::create_topics(&ctx.kafka, &[(topic, 3)]).await?;
    let producer = ctx.kafka.producer()?;
    let payload = [7u8; 100];
    let started = Instant::now();
    let mut in_flight = Vec::new();
    for i in 0..ceiling_messages {
        let key = format!("k{}", i % 1000);
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key.as_str()).payload(&payload[..]);
        in_flight.push(producer.send_result(record).map_err(|(e, _)| e)?);
        if in_flight.len() >= 10_000 {
            for d in in_flight.drain(..) {
                d.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for d in in_flight.drain(..) {
        d.await?.map_err(|(e, _)| e)?;
    }
    let produce_rate = ceiling_messages as f64 / started.elapsed().as_secs_f64();
    progress.phase("the broker's ceiling: consuming");
    let consumer = ctx.kafka.consumer(&format!("ledger-bench-{}", std::process::id()))?;
    let ends = probe.end_offsets(topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let total: i64 = ends.values().sum();
    let started = Instant::now();
    let mut read = 0i64;
    while read < total {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.context("consuming the ceiling topic")??;
        read += i64::from(m.payload().is_some());
    }
    let consume_rate = read as f64 / started.elapsed().as_secs_f64();

    // The ledger: every service in process, a generated scenario through feed.
    progress.phase("starting the ledger");
    ledger_runtime::create_topics(&ctx.kafka, 3).await?;
    let data = std::env::temp_dir().join(format!("loanctl-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (services_ctx, services_data) = (ctx.clone(), data.clone());
    let services = tokio::spawn(async move { run_services(services_ctx, &services_data, &all_services(), None).await });
    let scenario = ledger_sim::scenario_text(&ledger_sim::Profile::new(7, merchants, days));
    // Timed on a running ledger: the scenario's open first (it waits until every book
    // has a writer), then the rest of the file.
    let (open_line, rest) = scenario.split_once('\n').context("an empty scenario")?;
    let Ok(Some(ledger_core::Input::Open { date })) = ledger_core::scenario::parse_line(open_line) else {
        anyhow::bail!("a generated scenario starts with its open: {open_line}");
    };
    let mut view = Follower::new(&ctx.kafka, "ledger-control", ctx.config.clone(), false)?;
    control::open(&mut view, &ctx.kafka.producer()?, date, control::WAIT).await?;
    let mut report = feed::feed(&ctx, rest, Duration::from_secs(120), |done, total| {
        progress.step("feed", done as u64, total as u64, "inputs");
    })
    .await?;
    report.inputs += 1;
    let facts: i64 = probe.end_offsets(ledger_kafka::topics::EVENTS)?.values().sum();

    // Repayments and applications straight to the input topics, as the payment system
    // and the merchant platform publish them, against the loans the feed left active.
    let (ledger, _) = ledger_sim::run(&scenario, ctx.config.clone(), &mut ledger_core::Discard)?;
    let active: Vec<String> = ledger
        .books()
        .values()
        .flat_map(|b| b.loans().iter().filter(|l| l.status == ledger_core::model::LoanStatus::Active).map(|l| l.loan_id.clone()))
        .collect();
    anyhow::ensure!(!active.is_empty(), "the scenario left no active loan to repay");
    let payment = |i: usize, tag: &str| {
        let loan_id = active[i % active.len()].clone();
        let id = format!("BENCH-{tag}-{i}");
        let message = ledger_proto::pb::Repayment { payment_id: id.clone(), loan_id: loan_id.clone(), amount: "0.01".into(), currency: "CNY".into() };
        (loan_id, ledger_proto::encode(&message), id)
    };
    let burst: Vec<_> = (0..repayments).map(|i| payment(i, "burst")).collect();
    let receipt_id = |bytes: &[u8]| ledger_proto::decode::<ledger_proto::pb::RepaymentReceipt>(bytes).ok().map(|r| r.payment_id);
    let burst_started = Instant::now();
    let (burst_seconds, _) =
        round_trip(&ctx, ledger_kafka::topics::REPAYMENTS, ledger_kafka::topics::RECEIPTS, burst, None, receipt_id, &mut progress).await?;
    // Each paced run starts on a quiet ledger: every reader done with what came before
    // (the projector's read models among them: the burst's end to end in the read model).
    let quiet = Follower::new(&ctx.kafka, "ledger-bench-quiet", ctx.config.clone(), false)?;
    progress.phase("waiting for every reader");
    feed::wait_for_readers(&ctx, &quiet, Duration::from_secs(120)).await?;
    let read_model_seconds = burst_started.elapsed().as_secs_f64();
    let paced: Vec<_> = (0..rate as usize * paced_seconds as usize).map(|i| payment(i, "paced")).collect();
    let (_, payment_latency) =
        round_trip(&ctx, ledger_kafka::topics::REPAYMENTS, ledger_kafka::topics::RECEIPTS, paced, Some(rate), receipt_id, &mut progress).await?;
    let application = |i: usize| {
        let line = format!(
            r#"{{"type":"application","application_id":"BENCH-A{i}","borrower_id":"BENCH-B{i}","product":"CREDIT","amount":"1000.00","term_days":30,"merchant":{{"kind":"PLATFORM","annual_sales":"3000000.00","sales_growth":"0.30","orders_12m":8000,"seller_rating":5,"active_days_90":85}}}}"#
        );
        let Ok(Some(ledger_core::Input::Application(a))) = ledger_core::scenario::parse_line(&line) else { unreachable!("a valid line") };
        (a.borrower_id.clone(), ledger_proto::encode(&ledger_proto::IntoProto::into_proto(&a)), a.application_id.clone())
    };
    let applications: Vec<_> = (0..rate as usize * paced_seconds as usize).map(application).collect();
    progress.phase("waiting for every reader");
    feed::wait_for_readers(&ctx, &quiet, Duration::from_secs(120)).await?;
    let decided_id = |bytes: &[u8]| match ledger_proto::decode::<ledger_proto::pb::LoanEvent>(bytes).ok()?.fact? {
        ledger_proto::pb::loan_event::Fact::ApplicationDecided(d) => Some(d.application_id),
        _ => None,
    };
    let (_, application_latency) =
        round_trip(&ctx, ledger_kafka::topics::APPLICATIONS, ledger_kafka::topics::EVENTS, applications, Some(rate), decided_id, &mut progress)
            .await?;
    let history = if loans > 0 {
        progress.phase("more loans through the broker");
        let lines = bench_history(&ctx, services, &data, loans, produce_rate, consume_rate, &mut progress).await?;
        Some(lines)
    } else {
        services.abort();
        None
    };
    progress.finish();
    let _ = std::fs::remove_dir_all(&data);
    println!("broker {}:", ctx.kafka.brokers);
    println!("  ceiling: produce {produce_rate:.0} msg/s, consume {consume_rate:.0} msg/s ({ceiling_messages} messages of 100 bytes, 3 partitions)");
    println!(
        "  feed: {} inputs ({} day closes) of a generated scenario fed and processed in {:.1} s = {:.0} inputs/s; {} facts on loan.events = {:.0} facts/s",
        report.inputs,
        report.day_closes,
        report.seconds,
        report.inputs as f64 / report.seconds,
        facts,
        facts as f64 / report.seconds
    );
    let per_second = repayments as f64 / burst_seconds;
    println!(
        "  repayments end to end: {repayments} published at once, every receipt on {} after {burst_seconds:.1} s = {per_second:.0} repayments/s \
         ({:.1} % of the produce ceiling; {:.1} % counting the 5 broker writes each costs: input, claim, command, fact, receipt)",
        ledger_kafka::topics::RECEIPTS,
        100.0 * per_second / produce_rate,
        500.0 * per_second / produce_rate
    );
    println!(
        "  the same repayments in the read models: every reader of loan.events (publishers, projector) done after {read_model_seconds:.1} s = {:.0} repayments/s",
        repayments as f64 / read_model_seconds
    );
    println!("  repayments at {rate}/s for {paced_seconds} s, publish to receipt: {}", percentiles(&payment_latency));
    println!("  applications at {rate}/s for {paced_seconds} s, publish to decision on loan.events: {}", percentiles(&application_latency));
    for line in history.unwrap_or_default() {
        println!("  {line}");
    }
    Ok(())
}

/// bench-live --loans N: N more loans through the broker, then the figures of a large
/// book: memory per active loan, a day close over every active loan with each posting
/// published, a restart until the ledger decides again, and a replay against a plain
/// consumer of loan.events. Returns the report's lines.
async fn bench_history(
    ctx: &Context,
    services: tokio::task::JoinHandle<anyhow::Result<()>>,
    data: &Path,
    loans: usize,
    produce_rate: f64,
    consume_rate: f64,
    progress: &mut Progress,
) -> anyhow::Result<Vec<String>> {
    use ledger_kafka::rdkafka::consumer::Consumer;
    use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
    use ledger_kafka::topics;
    use std::time::Instant;

    let probe = ledger_kafka::OffsetProbe::new(&ctx.kafka)?;
    let total = |topic: &str| -> anyhow::Result<i64> { Ok(probe.end_offsets(topic)?.values().sum()) };
    let quiet = Follower::new(&ctx.kafka, "ledger-bench-quiet", ctx.config.clone(), false)?;
    let wait = Duration::from_secs(1_800);
    let mut lines = Vec::new();
    let rss_before = rss_bytes();
    let application = |i: usize| {
        let message = ledger_proto::pb::LoanApplication {
            application_id: format!("BH-A{i}"),
            borrower_id: format!("BH-B{i}"),
            ..bench_application()
        };
        (message.borrower_id.clone(), ledger_proto::encode(&message), message.application_id.clone())
    };
    let decided_id = |bytes: &[u8]| match ledger_proto::decode::<ledger_proto::pb::LoanEvent>(bytes).ok()?.fact? {
        ledger_proto::pb::loan_event::Fact::ApplicationDecided(d) => Some(d.application_id),
        _ => None,
    };
    let (seconds, _) =
        round_trip(ctx, topics::APPLICATIONS, topics::EVENTS, (0..loans).map(application).collect(), None, decided_id, progress).await?;
    progress.phase("waiting for every reader");
    feed::wait_for_readers(ctx, &quiet, wait).await?;
    let rss_after = rss_bytes();
    lines.push(format!("history: {loans} applications published at once, every one decided after {seconds:.1} s = {:.0}/s", loans as f64 / seconds));
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        lines.push(format!(
            "memory: the process grew by {:.0} MiB for {loans} more active loans = {:.0} bytes per active loan for all of `up` \
             (the book writer's view; the projector's fold, which feeds the publishers unless LEDGER_SHARED_FOLD=0, its queued rows \
             and sled; 2 loan indexes)",
            (after as f64 - before as f64) / 1048576.0,
            (after as f64 - before as f64) / loans as f64
        ));
    }

    // A day close over every active loan, until its last posting is on loan.accruals.
    progress.phase("a day close over every active loan");
    let postings_before = total(topics::ACCRUALS)?;
    let mut view = Follower::new(&ctx.kafka, "ledger-control", ctx.config.clone(), false)?;
    let started = Instant::now();
    let date = control::close_day(&mut view, &ctx.kafka.producer()?, None, wait).await?;
    let closed = started.elapsed().as_secs_f64();
    let (mut postings, mut last) = (0, started.elapsed());
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_secs(3) {
        let now = total(topics::ACCRUALS)? - postings_before;
        if now > postings {
            postings = now;
            last = started.elapsed();
            still = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lines.push(format!(
        "day close of {date}: every book closed after {closed:.1} s, {postings} postings on loan.accruals after {:.1} s; \
         the broker takes {postings} messages in {:.1} s at its ceiling (goal: 10 s, or within 1.5x of the broker)",
        last.as_secs_f64(),
        postings as f64 / produce_rate
    ));
    feed::wait_for_readers(ctx, &quiet, wait).await?;

    // A restart (every service in the process, killed): until an application is decided.
    progress.phase("a restart of every service");
    services.abort();
    let _ = services.await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (services_ctx, services_data) = (ctx.clone(), data.to_path_buf());
    let services = tokio::spawn(async move { run_services(services_ctx, &services_data, &all_services(), None).await });
    let probe_app = vec![application(loans)];
    round_trip(ctx, topics::APPLICATIONS, topics::EVENTS, probe_app, None, decided_id, progress).await?;
    let facts = total(topics::EVENTS)?;
    lines.push(format!(
        "restart of every service with {facts} facts of history: {:.1} s until a new application is decided (goal 5 s); each book restored from its latest snapshot (every {} facts), the facts after it folded",
        started.elapsed().as_secs_f64(),
        std::env::var(ledger_runtime::books::SNAPSHOT_EVERY_VAR).unwrap_or_else(|_| ledger_runtime::books::SNAPSHOT_EVERY.to_string())
    ));
    services.abort();
    let _ = services.await;

    // Replay into an empty store against a plain consumer of loan.events.
    progress.phase("a replay of loan.events");
    let consumer = ctx.kafka.consumer(&format!("ledger-bench-plain-{}", std::process::id()))?;
    let mut tpl = TopicPartitionList::new();
    for p in probe.end_offsets(topics::EVENTS)?.keys() {
        tpl.add_partition_offset(topics::EVENTS, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut read = 0i64;
    while read < facts {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.context("reading loan.events")??;
        read += i64::from(m.payload().is_some());
    }
    let plain = read as f64 / started.elapsed().as_secs_f64();
    let replay_dir = data.with_extension("replay");
    let _ = std::fs::remove_dir_all(&replay_dir);
    let store = Store::open(&replay_dir)?;
    let report = replay::replay(ctx, store.tree(projection::NAME)?, |_, _| {}).await?;
    let replayed = report.facts as f64 / report.seconds;
    drop(store);
    let _ = std::fs::remove_dir_all(&replay_dir);
    lines.push(format!(
        "replay into empty read models: {} facts in {:.1} s = {replayed:.0} facts/s; a plain consumer reads them at {plain:.0}/s: {:.2}x (goal 0.8x; the broker's consume ceiling {consume_rate:.0}/s)",
        report.facts,
        report.seconds,
        replayed / plain
    ));
    Ok(lines)
}

/// The bench's applications: approved, 1,000.00 CREDIT for 30 days.
fn bench_application() -> ledger_proto::pb::LoanApplication {
    let line = r#"{"type":"application","application_id":"X","borrower_id":"X","product":"CREDIT","amount":"1000.00","term_days":30,"merchant":{"kind":"PLATFORM","annual_sales":"3000000.00","sales_growth":"0.30","orders_12m":8000,"seller_rating":5,"active_days_90":85}}"#;
    let Ok(Some(ledger_core::Input::Application(a))) = ledger_core::scenario::parse_line(line) else { unreachable!("a valid line") };
    ledger_proto::IntoProto::into_proto(&a)
}

/// The process's resident memory (Linux), in bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// The topic bench-live measures the broker's ceiling on.
const CEILING_TOPIC: &str = "ledger.bench.ceiling";

/// "p50 X ms, p99 Y ms, max Z ms" of some latencies.
fn percentiles(latencies: &[Duration]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| sorted.get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} measured)", ms(at(0.50)), ms(at(0.99)), ms(at(1.0)), sorted.len())
}

/// Publishes `messages` (key, payload, id) to `input`, paced at `rate` per second or
/// all at once, and waits until `output` holds an answer for every id (`answer_id`
/// reads the id an output message answers). Returns the seconds from the first send to
/// the last answer, and each message's latency from its send to its answer. An
/// answer's time is its record's CreateTime (the moment the ledger produced it, same
/// machine's clock), so that this reader's own delays are not counted.
async fn round_trip(
    ctx: &Context,
    input: &str,
    output: &str,
    messages: Vec<(String, Vec<u8>, String)>,
    rate: Option<u64>,
    answer_id: impl Fn(&[u8]) -> Option<String>,
    progress: &mut Progress,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    use ledger_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
    use ledger_kafka::rdkafka::message::BorrowedMessage;
    use ledger_kafka::rdkafka::producer::FutureRecord;
    use ledger_kafka::rdkafka::{Message, Offset, TopicPartitionList};
    use std::collections::HashMap;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    let now_ms = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let probe = ledger_kafka::OffsetProbe::new(&ctx.kafka)?;
    let consumer: StreamConsumer = ctx.kafka.consumer(&format!("ledger-bench-answers-{}", std::process::id()))?;
    let mut tpl = TopicPartitionList::new();
    for (p, end) in probe.end_offsets(output)? {
        tpl.add_partition_offset(output, p, Offset::Offset(end))?;
    }
    consumer.assign(&tpl)?;
    let producer = ctx.kafka.producer()?;
    // A new idempotent producer first waits for its producer id: not the ledger's time.
    let warm_up: FutureRecord<'_, str, [u8]> = FutureRecord::to(CEILING_TOPIC).key("warm-up").payload(&[0u8][..]);
    producer.send(warm_up, Duration::from_secs(30)).await.map_err(|(e, _)| e)?;
    // Milliseconds since the epoch: when each id was sent, and when its answer was made.
    let mut sent: HashMap<String, i64> = HashMap::with_capacity(messages.len());
    let mut answered: HashMap<String, i64> = HashMap::with_capacity(messages.len());
    let note = |m: &BorrowedMessage<'_>, sent: &HashMap<String, i64>, answered: &mut HashMap<String, i64>| {
        if let Some(answer) = m.payload().and_then(&answer_id).filter(|a| sent.contains_key(a)) {
            answered.entry(answer).or_insert_with(|| m.timestamp().to_millis().unwrap_or_else(now_ms));
        }
    };
    let (sent_label, answered_label) = (format!("{input} -> {output}: sent"), format!("{input} -> {output}: answered"));
    let started = Instant::now();
    let first_sent = now_ms();
    let mut in_flight = Vec::new();
    for (i, (key, payload, id)) in messages.iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            // Read answers while waiting for the next send's moment.
            while Instant::now() < due {
                let wait = due.saturating_duration_since(Instant::now());
                if let Ok(Ok(m)) = tokio::time::timeout(wait, consumer.recv()).await {
                    note(&m, &sent, &mut answered);
                }
            }
        }
        sent.insert(id.clone(), now_ms());
        in_flight.push(ledger_kafka::enqueue(&producer, input, None, key, payload)?);
        progress.step(&sent_label, i as u64 + 1, messages.len() as u64, "");
    }
    for d in in_flight.drain(..) {
        d.await?.map_err(|(e, _)| e)?;
    }
    while answered.len() < sent.len() {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("waiting for answers on {output}: {} of {} answered", answered.len(), sent.len()))??;
        note(&m, &sent, &mut answered);
        progress.step(&answered_label, answered.len() as u64, sent.len() as u64, "");
    }
    // In send order.
    let latencies: Vec<Duration> = messages
        .iter()
        .filter_map(|(_, _, id)| Some(Duration::from_millis((answered.get(id)? - sent.get(id)?).max(0) as u64)))
        .collect();
    if std::env::var_os("LOANCTL_BENCH_TRACE").is_some() {
        for (second, chunk) in latencies.chunks(latencies.len().div_ceil(10).max(1)).enumerate() {
            eprintln!("bench trace {output} tenth {second}: {}", percentiles(chunk));
        }
    }
    let last = answered.values().copied().max().unwrap_or(first_sent);
    Ok(((last - first_sent).max(1) as f64 / 1000.0, latencies))
}
