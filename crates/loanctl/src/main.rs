//! loanctl: the one binary users run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger_core::{Discard, ProductConfig};

#[derive(Parser)]
#[command(name = "loanctl", version, about = "Event-sourced loan ledger for small-merchant lending")]
struct Cli {
    /// Product configuration (TOML); keys left out keep SPEC's defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
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
    /// Print a generated scenario (JSON Lines): merchants borrowing and repaying over
    /// business days, with re-sent inputs, bad amounts and collections actions mixed in.
    Generate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        merchants: u64,
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
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
            let (ledger, _) = ledger_core::scenario::run(&text, config, &mut Discard)
                .with_context(|| format!("scenario {}", file.display()))?;
            if digest {
                println!("{}", ledger.digest());
            } else {
                println!("{}", serde_json::to_string_pretty(&ledger.export())?);
            }
        }
        Command::Config => print!("{}", config.to_toml_string()),
        Command::Bench { merchants, days, loans } => {
            let f = ledger_sim::bench::run(merchants, days, loans);
            println!("scenario: {merchants} merchants x {days} days = {} inputs -> {} facts", f.scenario_inputs, f.facts);
            println!("decide + apply (the simulator's path): {:.3} s", f.decide_and_apply_seconds);
            println!("replay of the facts: {:.3} s = {:.0} facts/s", f.replay_seconds, f.facts_per_second);
            println!("replay of keyed facts only (applications, payments, actions): {:.0} facts/s", f.keyed_facts_per_second);
            println!("replay with derived events collected: {:.3} s", f.replay_with_events_seconds);
            println!("day close over {} active loans: {:.3} s ({:.3} s with derived events)", f.close_loans, f.close_seconds, f.close_with_events_seconds);
        }
        Command::Generate { seed, merchants, days } => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for input in ledger_sim::generate(&ledger_sim::Profile::new(seed, merchants, days)) {
                writeln!(out, "{}", ledger_sim::to_line(&input))?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loanctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
