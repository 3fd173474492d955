//! The deterministic simulation (issue 10, item 3; TigerBeetle's VOPR and
//! FoundationDB's simulation are the models): seeded runs of the whole road an input
//! takes, input topic -> intake -> ledger.claims -> id sequencer -> ledger.commands ->
//! book writer -> loan.events, with every topic a `Vec` in memory, one thread, no clock
//! and no broker. The book writer's decision ([`ledger_runtime::writer`]) and the
//! sequencer's hold rule ([`ledger_runtime::window`]) are the runtime's own code; the
//! deciders are the services' (`ledger_sim::DECIDERS`); the intakes route with the
//! handlers' `book_key` over a simulated loan index; snapshots go through
//! `ledger_proto::snapshot`. What is simulated is only the broker and the loops around
//! those functions, written after books.rs, claims.rs and intake.rs.
//!
//! Each step the scheduler picks one thing to happen: the outside world sends an input
//! (new merchants' applications, payments, merchant updates, collections actions,
//! re-sent copies, ids re-used with other content), an intake forwards or commits, the
//! sequencer forwards or commits, a writer fetches a batch, decides one command,
//! delivers some of its produced facts or settles its batch (acknowledgements, commit,
//! snapshots), the operator closes the day, or a fault: a writer, an intake or the
//! sequencer crashes (state lost; a writer is rebuilt from its books' latest snapshots,
//! encoded and decoded, plus the log after them, and learns what it decided from the
//! snapshots' meta and the facts' sources; commands are read again from the committed
//! positions; produced facts not yet acknowledged are partly lost), or the group
//! rebalances (books move between writers, now and then given back a few steps later;
//! a writer in the middle of a batch goes on as a zombie, appending what it decides,
//! its commit refused; a book another writer appended to is read again, as books.rs
//! does after `writer::follows_on` says so).
//!
//! After every step: every new fact on loan.events applies to a fresh fold of its
//! partition (a copy of an earlier fact, same id and content, is a duplicate to the
//! fold; other content under one id is a failure), one input's origin is one fact,
//! every keyed fact is on its key's partition, every loan conserves its money, and the
//! committed positions only move forward. At the end, once everything is decided: the
//! export and digest of the log equal the in-process fold (`ledger_sim::decide`, one
//! book) of the same inputs in the order the sequencer forwarded them (each origin once,
//! the day's open and closes where the operator put them), the event ids are the same,
//! every writer's view of every book is the log's fold, and every book's latest
//! snapshot folded on to the end is too.
//!
//! `LEDGER_SIM_SEED` runs one seed, `LEDGER_SIM_RUNS` how many seeds (from
//! `LEDGER_SIM_SEED`, default 1), `LEDGER_SIM_STEPS` the steps of each. A failure
//! prints the seed and the command that repeats it.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ledger_core::handler::{Handler, InputKind, LoanDirectory, NoLoans};
use ledger_core::input::{Application, CollectionsAction, MerchantUpdate, OrderRef, RawAmount, Repayment};
use ledger_core::scoring::Merchant;
use ledger_core::{ActionKind, Date, Decision, Discard, Fact, Input, Ledger, Outcome, Product, ProductConfig};
use ledger_kafka::partition_for_key;
use ledger_proto::snapshot::{decode_snapshot, encode_snapshot, SnapshotMeta};
use ledger_proto::pb;
use ledger_runtime::window::Window;
use ledger_runtime::writer::{self, Decided, InputOutcome, Verdict};
use ledger_runtime::{input_topic, source};
use ledger_sim::Rng;

const KINDS: [InputKind; 4] = [InputKind::Application, InputKind::Repayment, InputKind::Collections, InputKind::MerchantUpdate];
/// Partitions of each input topic.
const INPUT_PARTITIONS: i32 = 2;

fn deciders() -> &'static [&'static dyn Handler] {
    &ledger_sim::DECIDERS[..]
}

/// The shape of one run, drawn from its seed.
#[derive(Debug, Clone)]
struct Shape {
    books: i32,
    writers: usize,
    merchants: u64,
    /// Facts between two snapshots of a book.
    snapshot_every: u64,
    /// Percent of the scheduler's picks that are faults, tenths.
    fault_permille: u64,
}

/// A message of an input topic (its key chose its partition).
struct Record {
    bytes: Vec<u8>,
}

/// A message of ledger.claims or ledger.commands.
#[derive(Clone)]
struct Command {
    key: String,
    command: pb::BookCommand,
}

/// A record of loan.events.
#[derive(Debug, Clone)]
struct Event {
    fact: Fact,
    event_id: String,
    source: String,
    key: String,
}

/// What the in-process fold decides, in the order the sequencer forwarded it.
enum Planned {
    Control(Input),
    Input { origin: String, kind: InputKind, bytes: Vec<u8> },
}

#[derive(Debug, Default, Clone)]
struct Stats {
    steps: u64,
    inputs_sent: u64,
    commands_decided: u64,
    skipped_decided_before: u64,
    sent_again: u64,
    facts_appended: u64,
    copies_on_log: u64,
    log_reads: u64,
    writer_crashes: u64,
    intake_crashes: u64,
    sequencer_crashes: u64,
    rebalances: u64,
    refused_commits: u64,
    snapshots_written: u64,
    snapshots_restored: u64,
    holds: u64,
    day_closes: u64,
    facts_lost_unacknowledged: u64,
    /// Own facts that did not follow on the writer's previous one (another writer
    /// appended in between): the book is read again.
    books_read_again: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.inputs_sent += o.inputs_sent;
        self.commands_decided += o.commands_decided;
        self.skipped_decided_before += o.skipped_decided_before;
        self.sent_again += o.sent_again;
        self.facts_appended += o.facts_appended;
        self.copies_on_log += o.copies_on_log;
        self.log_reads += o.log_reads;
        self.writer_crashes += o.writer_crashes;
        self.intake_crashes += o.intake_crashes;
        self.sequencer_crashes += o.sequencer_crashes;
        self.rebalances += o.rebalances;
        self.refused_commits += o.refused_commits;
        self.snapshots_written += o.snapshots_written;
        self.snapshots_restored += o.snapshots_restored;
        self.holds += o.holds;
        self.day_closes += o.day_closes;
        self.facts_lost_unacknowledged += o.facts_lost_unacknowledged;
        self.books_read_again += o.books_read_again;
    }
}

// ---------------------------------------------------------------- the loan index

/// The intakes' loan index (loans.rs): loan id -> borrower from the disbursements on
/// loan.events, caught up when a lookup misses.
#[derive(Default)]
struct SimIndex {
    borrowers: HashMap<String, String>,
    positions: Vec<usize>,
    missed: Cell<bool>,
}

impl SimIndex {
    fn catch_up(&mut self, log: &[Vec<Event>]) {
        self.missed.set(false);
        self.positions.resize(log.len(), 0);
        for (p, events) in log.iter().enumerate() {
            for e in &events[self.positions[p]..] {
                if let Fact::ApplicationDecided(d) = &e.fact {
                    if let Some(disbursement) = &d.disbursement {
                        self.borrowers.insert(disbursement.loan_id.clone(), d.borrower_id.clone());
                    }
                }
            }
            self.positions[p] = events.len();
        }
    }
}

impl LoanDirectory for SimIndex {
    fn borrower_of(&self, loan_id: &str) -> Option<&str> {
        let found = self.borrowers.get(loan_id).map(String::as_str);
        if found.is_none() {
            self.missed.set(true);
        }
        found
    }
}

// ---------------------------------------------------------------- the intake

/// A service's intake (intake.rs): reads its input topic, routes each input to its
/// book, queues it on ledger.claims with the ids it claims; commits later.
struct Intake {
    kind: InputKind,
    read: Vec<i64>,
    committed: Vec<i64>,
    index: SimIndex,
}

impl Intake {
    fn new(kind: InputKind) -> Intake {
        Intake { kind, read: vec![0; INPUT_PARTITIONS as usize], committed: vec![0; INPUT_PARTITIONS as usize], index: SimIndex::default() }
    }
}

// ---------------------------------------------------------------- the sequencer

/// The id sequencer (claims.rs) around the runtime's [`Window`].
#[derive(Default)]
struct Sequencer {
    window: Window,
    read: usize,
    committed: usize,
    /// Waiting until the book writers have committed at least these offsets.
    waiting: Option<BTreeMap<i32, i64>>,
}

// ---------------------------------------------------------------- the book writer

/// One member of the `ledger-books` group (books.rs's `Writer`), around the runtime's
/// [`writer::decide`] and [`writer::record`].
struct Writer {
    view: Ledger,
    /// Next offset of loan.events to read, per partition.
    positions: Vec<i64>,
    own: BTreeSet<i32>,
    own_end: BTreeMap<i32, i64>,
    foreign: BTreeSet<i32>,
    decided: BTreeMap<i32, Decided>,
    behind: BTreeMap<i32, u64>,
    /// The consumer's position in each owned book's queue.
    fetch: BTreeMap<i32, i64>,
    /// The group generation the writer last joined.
    generation: u64,
    batch: VecDeque<(i32, i64)>,
    batch_next: BTreeMap<i32, i64>,
    in_batch: bool,
    /// Produced, not acknowledged yet: (book, event).
    outbox: VecDeque<(i32, Event)>,
}

// ---------------------------------------------------------------- the checker

/// A fresh fold of every partition of loan.events, read as the log grows, with the
/// invariants checked at every record.
struct Checker {
    ledger: Ledger,
    read: Vec<usize>,
    /// event id -> (partition, first fact with it).
    ids: HashMap<String, (i32, Fact)>,
    /// origin -> event id of its fact.
    sources: HashMap<String, String>,
}

struct Sim {
    seed: u64,
    shape: Shape,
    rng: Rng,
    config: Arc<ProductConfig>,
    stats: Stats,
    // The outside world.
    figures: Arc<Vec<Merchant>>,
    sent: Vec<Input>,
    next_id: u64,
    // The topics.
    topics: BTreeMap<InputKind, Vec<Vec<Record>>>,
    claims: Vec<Command>,
    commands: Vec<Vec<Command>>,
    log: Vec<Vec<Event>>,
    /// The latest snapshot of each book (ledger.snapshots' pointer and chunks).
    snapshots: Vec<Option<Vec<u8>>>,
    /// Who wrote each book's latest snapshot: (writer, whether it owned the book by
    /// then, step), for a failure's message.
    snapshot_by: Vec<Option<(usize, bool, u64)>>,
    // The services.
    intakes: Vec<Intake>,
    sequencer: Sequencer,
    writers: Vec<Writer>,
    /// The `ledger-books` group: committed offsets, generation, assignment.
    committed: Vec<i64>,
    generation: u64,
    assignment: Vec<usize>,
    /// A rebalance that gives the books back after a while: (at step, assignment).
    back: Option<(u64, Vec<usize>)>,
    // The operator.
    date: Date,
    closing: Option<Date>,
    // What the reference decides, and what was routed where.
    plan: Vec<Planned>,
    routed: HashMap<String, String>,
    checker: Checker,
}

fn fail(seed: u64, step: u64, what: impl std::fmt::Display) -> ! {
    panic!("seed {seed}, step {step}: {what}")
}

impl Sim {
    fn new(seed: u64, figures: Arc<Vec<Merchant>>) -> Sim {
        let mut rng = Rng::new(seed ^ 0x5eed_0f_5111);
        let books = 2 + rng.below(3) as i32;
        let shape = Shape {
            books,
            writers: 2 + rng.below(2) as usize,
            merchants: 4 + rng.below(9),
            snapshot_every: 2 + rng.below(20),
            fault_permille: 5 + rng.below(40),
        };
        let config = Arc::new(ProductConfig::default());
        let date = Date::from_ymd(2026, 1, 1).expect("valid date");
        let writers = (0..shape.writers).map(|_| Writer::empty(books)).collect();
        let assignment = (0..books).map(|b| b as usize % shape.writers).collect();
        let mut sim = Sim {
            seed,
            rng,
            config: config.clone(),
            stats: Stats::default(),
            figures,
            sent: Vec::new(),
            next_id: 1,
            topics: KINDS.iter().map(|k| (*k, (0..INPUT_PARTITIONS).map(|_| Vec::new()).collect())).collect(),
            claims: Vec::new(),
            commands: (0..books).map(|_| Vec::new()).collect(),
            log: (0..books).map(|_| Vec::new()).collect(),
            snapshots: vec![None; books as usize],
            snapshot_by: vec![None; books as usize],
            intakes: KINDS.iter().map(|k| Intake::new(*k)).collect(),
            sequencer: Sequencer::default(),
            writers,
            committed: vec![0; books as usize],
            generation: 1,
            assignment,
            back: None,
            date,
            closing: None,
            plan: Vec::new(),
            routed: HashMap::new(),
            checker: Checker { ledger: Ledger::new(config), read: vec![0; books as usize], ids: HashMap::new(), sources: HashMap::new() },
            shape,
        };
        // `loanctl open`: one command to every book, before any input.
        sim.control_to_every_book(pb::book_command::Command::Open(pb::Open { date: date.to_string() }), Input::Open { date });
        sim
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        fail(self.seed, self.stats.steps, what)
    }

    // ------------------------------------------------------------ the scheduler

    /// One step: the scheduler picks what happens. `faults`: whether crashes and
    /// rebalances may be picked; `world`: whether the outside world sends inputs.
    fn step(&mut self, faults: bool, world: bool) {
        self.stats.steps += 1;
        if let Some((at, assignment)) = &self.back {
            if self.stats.steps >= *at {
                self.assignment = assignment.clone();
                self.back = None;
                self.generation += 1;
                self.stats.rebalances += 1;
            }
        }
        if faults && self.rng.below(1000) < self.shape.fault_permille {
            match self.rng.below(10) {
                0..=4 => {
                    let w = self.rng.below(self.writers.len() as u64) as usize;
                    self.crash_writer(w);
                }
                5 | 6 => {
                    let i = self.rng.below(self.intakes.len() as u64) as usize;
                    self.crash_intake(i);
                }
                7 => self.crash_sequencer(),
                _ => self.rebalance(),
            }
        } else {
            let pick = self.rng.below(100);
            match pick {
                0..=17 if world => self.send_input(),
                0..=17 => self.sequencer_forward(),
                18..=29 => {
                    let i = self.rng.below(self.intakes.len() as u64) as usize;
                    if self.rng.chance(70) {
                        self.intake_forward(i);
                    } else {
                        self.intake_commit(i);
                    }
                }
                30..=47 => self.sequencer_forward(),
                48..=50 => self.sequencer.committed = self.sequencer.read,
                51..=90 => {
                    let w = self.rng.below(self.writers.len() as u64) as usize;
                    if self.rng.chance(85) {
                        self.writer_step(w);
                    } else {
                        let n = 1 + self.rng.below(3) as usize;
                        self.deliver(w, n);
                    }
                }
                91 | 92 if world => self.close_day(),
                _ => self.check_control(),
            }
        }
        self.checker_catch_up();
    }

    /// Runs until nothing is left to do (no faults, no new inputs, the day not closed):
    /// every input forwarded, every command decided and committed, every fact on the log.
    fn drain(&mut self) {
        for _ in 0..2_000_000 {
            if self.quiet() {
                return;
            }
            self.step(false, false);
        }
        self.fail("not quiet after 2,000,000 steps without faults: something waits forever");
    }

    fn quiet(&self) -> bool {
        let intakes = self.intakes.iter().all(|i| {
            (0..INPUT_PARTITIONS as usize).all(|p| i.committed[p] as usize == self.topics[&i.kind][p].len() && i.read[p] == i.committed[p])
        });
        let sequencer = self.sequencer.read == self.claims.len() && self.sequencer.waiting.is_none() && self.sequencer.committed == self.sequencer.read;
        let books = (0..self.shape.books as usize).all(|b| self.committed[b] as usize == self.commands[b].len());
        let writers = self.writers.iter().all(|w| !w.in_batch && w.outbox.is_empty());
        intakes && sequencer && books && writers && self.closing.is_none()
    }

    // ------------------------------------------------------------ the outside world

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:05}", self.next_id)
    }

    fn merchant(&mut self) -> String {
        format!("M{:03}", self.rng.below(self.shape.merchants))
    }

    fn figures(&mut self) -> Merchant {
        self.figures[self.rng.below(self.figures.len() as u64) as usize].clone()
    }

    /// Loans on the log now (what a borrower or the collections team can name).
    fn some_loan(&mut self) -> Option<(String, String, u64)> {
        let loans: Vec<(String, String, u64, bool)> = self
            .checker
            .ledger
            .books()
            .values()
            .flat_map(|b| b.loans().iter())
            .map(|l| (l.loan_id.clone(), l.borrower_id.clone(), l.principal.cents().max(100) as u64, l.status == ledger_core::LoanStatus::Active))
            .collect();
        // Mostly active loans; now and then a settled or written-off one.
        let loans: Vec<(String, String, u64)> =
            loans.into_iter().filter(|l| l.3 || self.rng.chance(10)).map(|(id, borrower, cents, _)| (id, borrower, cents)).collect();
        if loans.is_empty() {
            return None;
        }
        let i = self.rng.below(loans.len() as u64) as usize;
        Some(loans[i].clone())
    }

    fn new_input(&mut self) -> Input {
        let pick = self.rng.below(100);
        if pick < 9 && !self.sent.is_empty() {
            // Re-sent: the same content under the same id.
            let i = self.rng.below(self.sent.len() as u64) as usize;
            return self.sent[i].clone();
        }
        if pick < 14 && !self.sent.is_empty() {
            // An id used before, with other content (maybe for another book).
            let i = self.rng.below(self.sent.len() as u64) as usize;
            let mut input = self.sent[i].clone();
            let other = self.merchant();
            match &mut input {
                Input::Application(a) => {
                    a.borrower_id = other;
                    a.amount = RawAmount::cny(&amount(1_000 + self.rng.below(9_000), 0));
                }
                Input::Repayment(r) => r.amount = RawAmount::cny(&amount(1 + self.rng.below(500), self.rng.below(100))),
                Input::Collections(c) => c.borrower_id = Some(other),
                Input::MerchantUpdate(u) => u.borrower_id = other,
                Input::Open { .. } | Input::CloseDay { .. } => {}
            }
            return input;
        }
        match pick {
            0..=40 => self.application(),
            41..=79 => self.repayment(),
            80..=89 => {
                let borrower_id = if self.rng.chance(85) { self.merchant() } else { self.fresh("NEWCO") };
                let update_id = self.fresh("U");
                Input::MerchantUpdate(MerchantUpdate { update_id, borrower_id, merchant: self.figures() })
            }
            _ => self.action(),
        }
    }

    fn application(&mut self) -> Input {
        let application_id = self.fresh("A");
        let borrower_id = self.merchant();
        let whole = 1_000 + self.rng.below(14_000);
        let cents_part = self.rng.below(100);
        let (product, term_days, orders) = if self.rng.chance(55) {
            let mut orders = Vec::new();
            let n = 1 + self.rng.below(2);
            let total = whole * 100 + cents_part;
            let mut left = total;
            for i in 0..n {
                let part = if i + 1 == n { left } else { left / 2 };
                left -= part;
                // Now and then an order another application financed (or will).
                let order_id = if self.rng.chance(4) { format!("O{:05}", self.rng.below(self.next_id.max(1))) } else { self.fresh("O") };
                orders.push(OrderRef { order_id, amount: RawAmount::cny(&amount(part / 100, part % 100)) });
            }
            (Product::Order, [15, 30, 45, 60][self.rng.below(4) as usize], orders)
        } else {
            (Product::Credit, [30, 60, 90][self.rng.below(3) as usize], Vec::new())
        };
        Input::Application(Application {
            application_id,
            borrower_id,
            product,
            amount: RawAmount::cny(&amount(whole, cents_part)),
            term_days,
            orders,
            merchant: self.figures(),
        })
    }

    fn repayment(&mut self) -> Input {
        let payment_id = self.fresh("P");
        let Some((loan_id, _, principal)) = self.some_loan().filter(|_| self.rng.chance(95)) else {
            let loan_id = self.fresh("GHOST");
            return Input::Repayment(Repayment { payment_id, loan_id, amount: RawAmount::cny("100.00") });
        };
        let text = match self.rng.below(20) {
            0 => ["12.345", "-3.00", "0.00", "1e3", "abc"][self.rng.below(5) as usize].to_string(),
            1..=9 => amount(principal / 400, principal / 4 % 100),
            10..=16 => amount(principal * 12 / 1000, 0),
            _ => amount(1 + self.rng.below(50), self.rng.below(100)),
        };
        Input::Repayment(Repayment { payment_id, loan_id, amount: RawAmount::cny(&text) })
    }

    fn action(&mut self) -> Input {
        let action_id = self.fresh("C");
        let pick = self.rng.below(10);
        if pick < 5 {
            if let Some((loan_id, borrower, _)) = self.some_loan() {
                let borrower_id = match self.rng.below(10) {
                    0..=5 => None,
                    6..=8 => Some(borrower),
                    _ => Some(self.merchant()),
                };
                return Input::Collections(CollectionsAction { action_id, action: ActionKind::WriteOff, borrower_id, loan_id: Some(loan_id) });
            }
        }
        let action = if pick < 8 { ActionKind::Reinstate } else { ActionKind::MarkMalicious };
        Input::Collections(CollectionsAction { action_id, action, borrower_id: Some(self.merchant()), loan_id: None })
    }

    /// The outside world sends one input to its topic (keyed as `loanctl feed` keys it).
    fn send_input(&mut self) {
        let input = self.new_input();
        // As `loanctl feed` publishes it: the topic's kind, the key, the protobuf bytes.
        let (kind, key, bytes) = ledger_runtime::feed::publishable(&input).expect("the world sends no control");
        let partition = partition_for_key(key.as_bytes(), INPUT_PARTITIONS) as usize;
        self.topics.get_mut(&kind).expect("every kind has a topic")[partition].push(Record { bytes });
        self.sent.push(input);
        self.stats.inputs_sent += 1;
    }

    // ------------------------------------------------------------ the operator

    fn control_to_every_book(&mut self, command: pb::book_command::Command, planned: Input) {
        let key = match &planned {
            Input::Open { date } | Input::CloseDay { date } => date.to_string(),
            _ => unreachable!("control only"),
        };
        let command = pb::BookCommand { origin: String::new(), command: Some(command), claims: Vec::new(), input_timestamp_ms: 0 };
        for b in 0..self.shape.books as usize {
            self.commands[b].push(Command { key: key.clone(), command: command.clone() });
        }
        self.plan.push(Planned::Control(planned));
    }

    /// `loanctl close-day`: the open date's close to every book; the next close waits
    /// until every book has taken it (`close-day` waits for the books).
    fn close_day(&mut self) {
        if self.closing.is_some() {
            return self.check_control();
        }
        let date = self.date;
        self.control_to_every_book(pb::book_command::Command::DayClose(pb::DayClose { date: date.to_string() }), Input::CloseDay { date });
        self.closing = Some(date.next());
        self.date = date.next();
        self.stats.day_closes += 1;
        // Now and then a close sent again, or one for a day not open.
        if self.rng.chance(5) {
            let again = if self.rng.chance(50) { date } else { date.add_days(3) };
            let command = pb::BookCommand {
                origin: String::new(),
                command: Some(pb::book_command::Command::DayClose(pb::DayClose { date: again.to_string() })),
                claims: Vec::new(),
                input_timestamp_ms: 0,
            };
            let b = self.rng.below(self.shape.books as u64) as usize;
            self.commands[b].push(Command { key: again.to_string(), command });
        }
    }

    fn check_control(&mut self) {
        if let Some(open) = self.closing {
            if self.checker.ledger.books().len() == self.shape.books as usize && self.checker.ledger.books().values().all(|b| b.open == Some(open)) {
                self.closing = None;
            }
        }
    }

    // ------------------------------------------------------------ intakes

    fn intake_forward(&mut self, i: usize) {
        let kind = self.intakes[i].kind;
        let p = self.rng.below(INPUT_PARTITIONS as u64) as usize;
        let end = self.topics[&kind][p].len() as i64;
        let from = self.intakes[i].read[p];
        let to = end.min(from + 1 + self.rng.below(4) as i64);
        if from >= to {
            return;
        }
        let handler = ledger_sim::decider(kind);
        let decoded: Vec<Input> = (from..to)
            .map(|o| {
                ledger_runtime::service::decode_input(kind, &self.topics[&kind][p][o as usize].bytes)
                    .unwrap_or_else(|e| self.fail(format!("the world sent an input that does not read: {e}")))
            })
            .collect();
        let intake = &mut self.intakes[i];
        let route = |index: &SimIndex| -> Vec<String> {
            decoded.iter().map(|input| if handler.routes_by_loan() { handler.book_key(input, index) } else { handler.book_key(input, &NoLoans) }).collect()
        };
        if intake.index.positions.is_empty() {
            intake.index.catch_up(&self.log);
        }
        let mut keys = route(&intake.index);
        if intake.index.missed.get() {
            intake.index.catch_up(&self.log);
            keys = route(&intake.index);
        }
        for ((offset, input), key) in (from..to).zip(&decoded).zip(keys) {
            let origin = source(input_topic(kind), p as i32, offset);
            // A payment keyed by a loan is routed again after an intake's crash: to the
            // same book, since the world names only loans on the log.
            if let Some(before) = self.routed.insert(origin.clone(), key.clone()) {
                if before != key {
                    self.fail(format!("{origin} routed to {before:?} and then {key:?}"));
                }
            }
            let command = pb::BookCommand {
                origin,
                command: Some(pb::book_command::Command::Input(self.topics[&kind][p][offset as usize].bytes.clone())),
                claims: input.unique_ids(),
                input_timestamp_ms: 0,
            };
            self.claims.push(Command { key, command });
        }
        self.intakes[i].read[p] = to;
    }

    fn intake_commit(&mut self, i: usize) {
        let intake = &mut self.intakes[i];
        for p in 0..INPUT_PARTITIONS as usize {
            if intake.read[p] < intake.committed[p] {
                self.fail("an intake's committed position went back");
            }
            intake.committed[p] = intake.read[p];
        }
    }

    fn crash_intake(&mut self, i: usize) {
        self.stats.intake_crashes += 1;
        let intake = &mut self.intakes[i];
        intake.read = intake.committed.clone();
        intake.index = SimIndex::default();
    }

    // ------------------------------------------------------------ the sequencer

    fn committed_map(&self) -> BTreeMap<i32, i64> {
        self.committed.iter().enumerate().map(|(b, c)| (b as i32, *c)).collect()
    }

    fn sequencer_forward(&mut self) {
        let committed = self.committed_map();
        if let Some(ends) = &self.sequencer.waiting {
            self.sequencer.window.forget_decided(&committed);
            if ends.iter().any(|(b, end)| committed[b] < *end) {
                return;
            }
            self.sequencer.waiting = None;
        }
        if self.rng.chance(10) {
            self.sequencer.window.forget_decided(&committed);
        }
        let Some(claim) = self.claims.get(self.sequencer.read).cloned() else { return };
        let book = partition_for_key(claim.key.as_bytes(), self.shape.books);
        if let Some(held) = self.sequencer.window.held_by(&claim.command.claims, book) {
            // An id another book may not have decided yet: its offset first, then its
            // writer past it (settled first, as claims.rs does).
            let (other, at) = self.sequencer.window.position(held);
            self.sequencer.committed = self.sequencer.read;
            self.sequencer.waiting = Some(BTreeMap::from([(other, at + 1)]));
            self.stats.holds += 1;
            return;
        }
        let queue = &mut self.commands[book as usize];
        let offset = queue.len() as i64;
        queue.push(claim.clone());
        let seq = self.sequencer.window.forwarded(book, claim.command.claims.clone());
        self.sequencer.window.delivered_at(seq, offset);
        self.sequencer.read += 1;
        let origin = claim.command.origin.clone();
        let kind = KINDS.into_iter().find(|k| origin.starts_with(&format!("{}/", input_topic(*k)))).expect("an input topic");
        let Some(pb::book_command::Command::Input(bytes)) = claim.command.command else { unreachable!("claims are inputs") };
        self.plan.push(Planned::Input { origin, kind, bytes });
    }

    fn crash_sequencer(&mut self) {
        self.stats.sequencer_crashes += 1;
        // What the previous holder forwarded is unknown: let it all be decided first.
        let ends: BTreeMap<i32, i64> = self.commands.iter().enumerate().map(|(b, q)| (b as i32, q.len() as i64)).collect();
        self.sequencer = Sequencer { window: Window::default(), read: self.sequencer.committed, committed: self.sequencer.committed, waiting: Some(ends) };
    }

    // ------------------------------------------------------------ the group

    fn rebalance(&mut self) {
        self.stats.rebalances += 1;
        if self.back.is_none() && self.rng.chance(30) {
            // A member leaves and comes back soon: its books go to others and back.
            let soon = if self.rng.chance(50) { 6 } else { 60 };
            let at = self.stats.steps + 1 + self.rng.below(soon);
            self.back = Some((at, self.assignment.clone()));
        }
        for b in 0..self.shape.books as usize {
            self.assignment[b] = self.rng.below(self.writers.len() as u64) as usize;
        }
        self.generation += 1;
    }

    fn owned_by(&self, w: usize) -> BTreeSet<i32> {
        (0..self.shape.books).filter(|b| self.assignment[*b as usize] == w).collect()
    }

    // ------------------------------------------------------------ the book writers

    fn crash_writer(&mut self, w: usize) {
        self.stats.writer_crashes += 1;
        // What it produced and the broker acknowledged stays; the rest is lost.
        let keep = self.rng.below(self.writers[w].outbox.len() as u64 + 1) as usize;
        self.deliver(w, keep);
        self.stats.facts_lost_unacknowledged += self.writers[w].outbox.len() as u64;
        self.writers[w] = Writer::empty(self.shape.books);
        self.start_writer(w);
        // It joins the group again: a new generation (the same books).
        self.generation += 1;
    }

    /// A writer's start (books.rs `run_books`): its books restored from their latest
    /// snapshots (decoded, checked), what they decided from the snapshots' meta, then
    /// the log read on from each snapshot's offset.
    fn start_writer(&mut self, w: usize) {
        let books = self.shape.books;
        for b in 0..books {
            let Some(bytes) = &self.snapshots[b as usize] else { continue };
            // Now and then a snapshot that cannot be read: the book is folded from 0.
            if self.rng.chance(10) {
                continue;
            }
            let (book, meta) = decode_snapshot(bytes, &self.config).unwrap_or_else(|e| self.fail(format!("book {b}'s snapshot does not read: {e}")));
            if meta.book != b as u32 {
                self.fail("a snapshot of another book");
            }
            let writer = &mut self.writers[w];
            writer.view.restore_book(b as u32, book);
            writer.positions[b as usize] = meta.next_offset;
            writer.decided.insert(b, Decided::from_entries(&meta.decided));
            self.stats.snapshots_restored += 1;
        }
        self.read_view(w);
        // A restored book folded on is the log's fold of it.
        for b in 0..books {
            self.checker_catch_up();
            let mine = self.writers[w].view.books().get(&(b as u32));
            let log = self.checker.ledger.books().get(&(b as u32));
            if mine.is_some_and(|m| Some(m) != log) {
                self.fail(format!(
                    "writer {w} restarted with book {b} otherwise than the log's fold (its snapshot by {:?}: {}; log {})",
                    self.snapshot_by[b as usize],
                    mine.map(outline).unwrap_or_default(),
                    log.map(outline).unwrap_or_default()
                ));
            }
        }
    }

    /// Reads what is new on loan.events (all but the own books) into the view, noting
    /// every fact's source (books.rs `read_view`).
    fn read_view(&mut self, w: usize) {
        let writer = &mut self.writers[w];
        for p in 0..self.shape.books {
            if writer.own.contains(&p) {
                continue;
            }
            let from = writer.positions[p as usize] as usize;
            if from > self.log[p as usize].len() {
                fail(self.seed, self.stats.steps, format!("writer {w}'s position on book {p} is past the log's end"));
            }
            for e in &self.log[p as usize][from..] {
                let outcome = writer.view.apply(p as u32, &e.fact, &mut Discard);
                if let Outcome::Ignored(why) = outcome {
                    fail(self.seed, self.stats.steps, format!("writer {w} read a fact that does not fit book {p}: {} ({why})", e.fact.key()));
                }
                writer.decided.entry(p).or_default().note(&e.source);
                self.stats.log_reads += 1;
            }
            writer.positions[p as usize] = self.log[p as usize].len() as i64;
        }
    }

    /// Takes the books of the writer's assignment (books.rs `take_over`), after a
    /// rebalance the positions at the group's committed offsets.
    fn take_over(&mut self, w: usize) {
        let owned = self.owned_by(w);
        let generation = self.generation;
        // A new generation: the positions at the group's committed offsets, and every
        // book read on from the writer's own end (another writer may have had it).
        let moved = self.writers[w].generation != generation;
        if moved {
            self.writers[w].generation = generation;
            self.writers[w].fetch = owned.iter().map(|b| (*b, self.committed[*b as usize])).collect();
        }
        if owned == self.writers[w].own && self.writers[w].foreign.is_empty() && !moved {
            return;
        }
        self.read_view(w);
        let writer = &mut self.writers[w];
        let ends: Vec<(i32, i64)> = writer.own_end.iter().map(|(p, n)| (*p, *n)).collect();
        for (p, next) in ends {
            if (moved || !owned.contains(&p)) && writer.own.contains(&p) && !writer.foreign.contains(&p) && next > writer.positions[p as usize] {
                // skip_own_to: past its own facts, applied when written.
                writer.positions[p as usize] = next;
            }
        }
        for p in std::mem::take(&mut writer.foreign) {
            writer.own_end.remove(&p);
            writer.own.remove(&p);
        }
        writer.own_end.retain(|p, _| owned.contains(p));
        writer.behind.retain(|p, _| owned.contains(p));
        writer.own = if moved { BTreeSet::new() } else { owned.intersection(&writer.own).copied().collect() };
        self.read_view(w);
        self.writers[w].own = owned;
    }

    /// The writer's next move: fetch a batch, decide its next command, or settle it.
    fn writer_step(&mut self, w: usize) {
        if !self.writers[w].in_batch {
            self.take_over(w);
            let writer = &mut self.writers[w];
            let mut per_book: Vec<VecDeque<(i32, i64)>> = Vec::new();
            for b in writer.own.iter().copied() {
                let from = writer.fetch.get(&b).copied().unwrap_or(self.committed[b as usize]);
                let to = (self.commands[b as usize].len() as i64).min(from + 1 + self.rng.below(6) as i64);
                if from < to {
                    per_book.push((from..to).map(|o| (b, o)).collect());
                    writer.batch_next.insert(b, to);
                    writer.fetch.insert(b, to);
                }
            }
            // The books' messages interleaved, each book's in order.
            while !per_book.is_empty() {
                let i = self.rng.below(per_book.len() as u64) as usize;
                writer.batch.push_back(per_book[i].pop_front().expect("not empty"));
                if per_book[i].is_empty() {
                    per_book.swap_remove(i);
                }
            }
            if writer.batch.is_empty() {
                // Idle: now and then the idle snapshots.
                if self.rng.chance(20) {
                    self.snapshot(w, 1);
                }
                return;
            }
            writer.in_batch = true;
            self.read_view(w);
            return;
        }
        if let Some((b, offset)) = self.writers[w].batch.pop_front() {
            return self.decide_one(w, b, offset);
        }
        self.settle(w);
    }

    /// Decides one command with the runtime's rule and appends what it says.
    fn decide_one(&mut self, w: usize, b: i32, offset: i64) {
        let command = self.commands[b as usize][offset as usize].clone();
        self.stats.commands_decided += 1;
        let me = &self.writers[w];
        let verdict = writer::decide(deciders(), &me.view, b, me.decided.get(&b), command.command)
            .unwrap_or_else(|e| self.fail(format!("writer {w}, book {b}, command {offset}: {e:?}")));
        match verdict {
            Verdict::Control(fact) => self.append(w, b, &command.key, fact, ""),
            Verdict::SentAgain | Verdict::Ignored(_) => self.stats.sent_again += 1,
            Verdict::DecidedBefore => self.stats.skipped_decided_before += 1,
            Verdict::Input(decided) => match decided.outcome {
                InputOutcome::DeadLetter(reason) => self.fail(format!("{} dead-lettered: {reason}", decided.origin)),
                InputOutcome::Seen { answer, .. } => {
                    if let Some(fact) = answer {
                        self.append(w, b, &command.key, fact, &decided.origin);
                    }
                }
                InputOutcome::Fact(fact) => self.append(w, b, &command.key, fact, &decided.origin),
            },
        }
    }

    /// books.rs `append`: applied to the own book, noted, produced (not yet acknowledged).
    fn append(&mut self, w: usize, b: i32, key: &str, fact: Fact, origin: &str) {
        let me = &mut self.writers[w];
        let outcome = me.view.apply(b as u32, &fact, &mut Discard);
        let event_id = writer::record(me.decided.entry(b).or_default(), b, &fact, origin, outcome)
            .unwrap_or_else(|e| fail(self.seed, self.stats.steps, format!("writer {w}, book {b}: {e:?}")));
        *me.behind.entry(b).or_insert(0) += 1;
        me.outbox.push_back((b, Event { fact, event_id, source: origin.to_string(), key: key.to_string() }));
        self.stats.facts_appended += 1;
    }

    /// The broker acknowledges the first `n` facts the writer produced.
    fn deliver(&mut self, w: usize, n: usize) {
        for _ in 0..n {
            let Some((b, event)) = self.writers[w].outbox.pop_front() else { return };
            let log = &mut self.log[b as usize];
            let offset = log.len() as i64;
            log.push(event);
            let me = &mut self.writers[w];
            if !writer::follows_on(me.own_end.get(&b).copied(), Some(me.positions[b as usize]), offset) && me.foreign.insert(b) {
                self.stats.books_read_again += 1;
            }
            let end = me.own_end.entry(b).or_insert(0);
            *end = (*end).max(offset + 1);
        }
    }

    /// The end of a batch: every fact acknowledged, the positions committed (refused
    /// when the group has moved on: a zombie's), the due snapshots taken.
    fn settle(&mut self, w: usize) {
        let n = self.writers[w].outbox.len();
        self.deliver(w, n);
        let writer = &mut self.writers[w];
        writer.in_batch = false;
        let next = std::mem::take(&mut writer.batch_next);
        if writer.generation != self.generation {
            self.stats.refused_commits += 1;
        } else {
            for (b, offset) in next {
                if self.assignment[b as usize] != w {
                    continue;
                }
                if offset < self.committed[b as usize] {
                    self.fail(format!("book {b}'s committed position would go back from {} to {offset}", self.committed[b as usize]));
                }
                self.committed[b as usize] = offset;
            }
        }
        self.snapshot(w, self.shape.snapshot_every);
    }

    /// books.rs `snapshot`: each own book `every` facts behind, as it stands, with
    /// what it decided, encoded as ledger.snapshots holds it.
    fn snapshot(&mut self, w: usize, every: u64) {
        let writer = &mut self.writers[w];
        for b in writer.own.iter().copied() {
            let behind = writer.behind.get(&b).copied().unwrap_or(0);
            if behind == 0 || behind < every || writer.foreign.contains(&b) {
                continue;
            }
            let (Some(next_offset), Some(state)) = (writer.own_end.get(&b), writer.view.books().get(&(b as u32))) else { continue };
            let meta = SnapshotMeta { book: b as u32, next_offset: *next_offset, decided: writer.decided.get(&b).map(Decided::entries).unwrap_or_default() };
            self.snapshots[b as usize] = Some(encode_snapshot(state, &meta, &self.config));
            self.snapshot_by[b as usize] = Some((w, self.assignment[b as usize] == w && writer.generation == self.generation, self.stats.steps));
            writer.behind.insert(b, 0);
            self.stats.snapshots_written += 1;
        }
    }

    // ------------------------------------------------------------ the checks

    /// Folds what is new on the log into the checker's fresh fold, checking each fact.
    fn checker_catch_up(&mut self) {
        let books = self.shape.books;
        for p in 0..books as usize {
            while self.checker.read[p] < self.log[p].len() {
                let offset = self.checker.read[p];
                let e = &self.log[p][offset];
                self.checker.read[p] += 1;
                let at = format!("loan.events/{p}/{offset} ({})", e.event_id);
                let outcome = self.checker.ledger.apply(p as u32, &e.fact, &mut Discard);
                match self.checker.ids.get(&e.event_id) {
                    None => {
                        if outcome != Outcome::Applied {
                            fail(self.seed, self.stats.steps, format!("{at}: a new fact does not apply to a fresh fold: {outcome:?}"));
                        }
                        self.checker.ids.insert(e.event_id.clone(), (p as i32, e.fact.clone()));
                    }
                    Some((q, first)) => {
                        if *q != p as i32 || *first != e.fact {
                            fail(self.seed, self.stats.steps, format!("{at}: two facts of content under one id:\n  first {first:?} (book {q})\n  then  {:?}", e.fact));
                        }
                        if let Outcome::Ignored(why) = outcome {
                            fail(self.seed, self.stats.steps, format!("{at}: a copy does not fit: {why}"));
                        }
                        self.stats.copies_on_log += 1;
                    }
                }
                if !e.source.is_empty() {
                    let first = self.checker.sources.entry(e.source.clone()).or_insert_with(|| e.event_id.clone());
                    if *first != e.event_id {
                        fail(self.seed, self.stats.steps, format!("{at}: the input {} became two facts, {first} and {}", e.source, e.event_id));
                    }
                }
                if e.fact.partition_key().is_some() && partition_for_key(e.key.as_bytes(), books) != p as i32 {
                    fail(self.seed, self.stats.steps, format!("{at}: keyed {:?}, on another partition than its key's", e.key));
                }
                if let Some(book) = self.checker.ledger.books().get(&(p as u32)) {
                    for loan in book.loans() {
                        if let Some(broken) = loan.broken_invariant() {
                            fail(self.seed, self.stats.steps, format!("{at}: invariant {broken} broken for loan {}", loan.loan_id));
                        }
                    }
                }
            }
        }
    }

    /// At the end: the log against the in-process fold, every view and every snapshot
    /// against the log.
    fn check_end(&mut self) {
        self.checker_catch_up();
        // The reference: the in-process composition, one book, in the order forwarded.
        let mut reference = Ledger::new(self.config.clone());
        let mut reference_ids: BTreeSet<String> = BTreeSet::new();
        let mut seen_origins: BTreeSet<&str> = BTreeSet::new();
        for planned in &self.plan {
            let (input, origin, kind) = match planned {
                Planned::Control(input) => (input.clone(), "", None),
                Planned::Input { origin, kind, bytes } => {
                    if !seen_origins.insert(origin) {
                        continue;
                    }
                    (ledger_runtime::service::decode_input(*kind, bytes).expect("read before"), origin.as_str(), Some(*kind))
                }
            };
            let fact = match ledger_sim::decide(&reference, &input) {
                Ok(Decision::Fact(fact)) => Some(fact),
                Ok(Decision::Seen(seen)) => kind.and_then(|k| ledger_sim::decider(k).answer_seen(&input, seen)),
                Err(e) => self.fail(format!("the reference cannot decide {}: {e}", input.key())),
            };
            if let Some(fact) = fact {
                if kind.is_some() {
                    reference_ids.insert(writer::event_id(&fact, 0, origin));
                }
                reference.apply(0, &fact, &mut Discard);
            }
        }
        let log_ids: BTreeSet<String> = self.checker.ids.keys().filter(|id| !id.contains('@')).cloned().collect();
        if log_ids != reference_ids {
            let only_log: Vec<&String> = log_ids.difference(&reference_ids).take(5).collect();
            let only_ref: Vec<&String> = reference_ids.difference(&log_ids).take(5).collect();
            self.fail(format!("the log's facts are not the in-process fold's: only on the log {only_log:?}, only in process {only_ref:?}"));
        }
        let (live, want) = (self.checker.ledger.export(), reference.export());
        if live != want {
            let a = serde_json::to_string_pretty(&live).unwrap_or_default();
            let b = serde_json::to_string_pretty(&want).unwrap_or_default();
            let diff: Vec<String> =
                a.lines().zip(b.lines()).enumerate().filter(|(_, (x, y))| x != y).take(8).map(|(i, (x, y))| format!("line {i}: log {x} / in process {y}")).collect();
            self.fail(format!("the export of the log differs from the in-process fold's:\n{}", diff.join("\n")));
        }
        if self.checker.ledger.digest() != reference.digest() {
            self.fail("the digests differ (the exports are equal)");
        }
        // Every writer's view, read to the end, is the log's fold of every book.
        for w in 0..self.writers.len() {
            self.read_view(w);
            for b in 0..self.shape.books as u32 {
                if self.writers[w].view.books().get(&b) != self.checker.ledger.books().get(&b) {
                    self.fail(format!("writer {w}'s view of book {b} is not the log's fold"));
                }
            }
        }
        // Every book's latest snapshot, folded on from its offset, is the log's fold.
        for b in 0..self.shape.books as usize {
            let Some(bytes) = &self.snapshots[b] else { continue };
            let (book, meta) = decode_snapshot(bytes, &self.config).expect("read before");
            let mut ledger = Ledger::new(self.config.clone());
            ledger.restore_book(b as u32, book);
            for e in &self.log[b][meta.next_offset as usize..] {
                ledger.apply(b as u32, &e.fact, &mut Discard);
            }
            if ledger.books().get(&(b as u32)) != self.checker.ledger.books().get(&(b as u32)) {
                self.fail(format!("book {b}'s latest snapshot (offset {}) folded on is not the log's fold", meta.next_offset));
            }
        }
    }
}

impl Writer {
    fn empty(books: i32) -> Writer {
        Writer {
            view: Ledger::new(Arc::new(ProductConfig::default())),
            positions: vec![0; books as usize],
            own: BTreeSet::new(),
            own_end: BTreeMap::new(),
            foreign: BTreeSet::new(),
            decided: BTreeMap::new(),
            behind: BTreeMap::new(),
            fetch: BTreeMap::new(),
            generation: 0,
            batch: VecDeque::new(),
            batch_next: BTreeMap::new(),
            in_batch: false,
            outbox: VecDeque::new(),
        }
    }
}

/// What a book holds, in a line: to tell two books apart in a failure's message.
fn outline(book: &ledger_core::Book) -> String {
    format!(
        "open {:?}, {} loans, {} applications, {} payments, {} actions, {} updates",
        book.open,
        book.loans().len(),
        book.applications().len(),
        book.payments().len(),
        book.actions().len(),
        book.updates().len()
    )
}

fn amount(whole: u64, hundredths: u64) -> String {
    format!("{whole}.{hundredths:02}")
}

/// Merchant figures as the scenario generator makes them (most decent, some weak,
/// updates some collapsed), to draw from.
fn figure_pool() -> Arc<Vec<Merchant>> {
    let mut figures = Vec::new();
    for input in ledger_sim::generate(&ledger_sim::Profile::new(7, 60, 40)) {
        match input {
            Input::Application(a) => figures.push(a.merchant),
            Input::MerchantUpdate(u) => figures.push(u.merchant),
            _ => {}
        }
    }
    assert!(figures.len() > 50, "the generator makes applications");
    Arc::new(figures)
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// One seeded run: `steps` steps with faults, then everything drained and checked.
fn run(seed: u64, steps: u64, figures: Arc<Vec<Merchant>>) -> Stats {
    let mut sim = Sim::new(seed, figures);
    for w in 0..sim.writers.len() {
        sim.start_writer(w);
    }
    for _ in 0..steps {
        sim.step(true, true);
    }
    sim.drain();
    sim.check_end();
    sim.stats
}

#[test]
fn seeded_runs_through_crashes_and_rebalances_end_as_the_pure_fold() {
    let seed = env("LEDGER_SIM_SEED");
    let runs = env("LEDGER_SIM_RUNS").unwrap_or(if seed.is_some() { 1 } else { 40 });
    let steps = env("LEDGER_SIM_STEPS").unwrap_or(20_000);
    let first = seed.unwrap_or(1);
    let figures = figure_pool();
    let started = Instant::now();
    let mut total = Stats::default();
    for seed in first..first + runs {
        let figures = figures.clone();
        let outcome = std::panic::catch_unwind(move || run(seed, steps, figures));
        match outcome {
            Ok(stats) => total.add(&stats),
            Err(panic) => {
                eprintln!("\nsimulation failed: LEDGER_SIM_SEED={seed} LEDGER_SIM_STEPS={steps} cargo test -p ledger-runtime --test simulation -- --nocapture   to reproduce\n");
                std::panic::resume_unwind(panic);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "simulation: {runs} runs from seed {first}, {} steps in {seconds:.1} s ({:.0} steps/s); {:?}",
        total.steps,
        total.steps as f64 / seconds.max(1e-9),
        total
    );
    assert!(total.writer_crashes > 0 && total.rebalances > 0 && total.snapshots_restored > 0 || runs * steps < 10_000, "faults happened: {total:?}");
}
