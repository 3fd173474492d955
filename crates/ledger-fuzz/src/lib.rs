//! ledger-fuzz: the fuzz targets of issue 10 as plain functions of a byte slice. Each
//! panics (or fails an assertion) exactly when it finds a bug, so the same function
//! serves libFuzzer (`fuzz/`, run by `scripts/fuzz-short`) and the corpus test
//! (`tests/corpus.rs`: every input checked into `fuzz/corpus/<target>/` run as a
//! normal `cargo test`, no special toolchain).
//!
//! | target | what it checks |
//! |---|---|
//! | `proto_application`, `proto_repayment`, `proto_collections`, `proto_merchant_update` | the topic's decoder never panics; what it reads survives `into_proto`/`from_proto` unchanged (as the message and as a `LedgerInput`); deciding it against a small ledger never panics and its fact applies |
//! | `proto_ledger_input` | the same for `LedgerInput` (any input, the control ones too) |
//! | `proto_loan_event` | loan.events' decoder never panics, and a fact it reads is written back to the same fact |
//! | `scenario_line` | the scenario line parser never panics; an input it reads survives protobuf and is decided like one from a topic |
//! | `fold` | random input streams through decide and apply keep every invariant (see [`fold`]) |
//!
//! Architecture invariant: no I/O but what the corpus test reads; the targets are pure
//! functions of their bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use ledger_core::handler::InputKind;
use ledger_core::input::{Application, CollectionsAction, MerchantUpdate, OrderRef, RawAmount, Repayment};
use ledger_core::scoring::{Merchant, MerchantKind};
use ledger_core::{ActionKind, Date, Decision, Discard, Fact, Input, Ledger, Outcome, Product, ProductConfig};
use ledger_proto::{pb, FromProto, IntoProto};
use ledger_sim::corpus::{self, Verdict};
use rust_decimal::Decimal;

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: [(&str, fn(&[u8])); 8] = [
    ("proto_application", proto_application),
    ("proto_repayment", proto_repayment),
    ("proto_collections", proto_collections),
    ("proto_merchant_update", proto_merchant_update),
    ("proto_ledger_input", proto_ledger_input),
    ("proto_loan_event", proto_loan_event),
    ("scenario_line", scenario_line),
    ("fold", fold),
];

/// SPEC section 10's example folded: two borrowers, a recalled loan, refusals.
fn small_ledger() -> &'static Ledger {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let text = include_str!("../../../tests/scenarios/spec-example.jsonl");
        ledger_sim::run(text, Arc::new(ProductConfig::default()), &mut Discard).expect("the SPEC example runs").0
    })
}

/// An input survives protobuf as a `LedgerInput`.
fn round_trips(input: &Input) {
    let bytes = ledger_proto::to_bytes(input);
    let back = ledger_proto::from_bytes::<pb::LedgerInput, Input>(&bytes).expect("an input the ledger read is written readably");
    assert_eq!(&back, input, "an input changed through protobuf");
}

/// Decides a readable input against the small ledger as its topic's service would,
/// and applies the fact to a copy: the fact must fit.
fn decided_and_applied(input: &Input) {
    let view = small_ledger();
    let decision = match InputKind::of(input) {
        Some(kind) => match corpus::verdict(ledger_sim::decider(kind), view, 0, kind, &input_bytes(input, kind)) {
            Verdict::Recorded(fact) => Some(fact),
            Verdict::DeadLetter(why) => {
                assert!(!why.is_empty(), "a dead letter without a reason");
                None
            }
            Verdict::Seen(_) => None,
        },
        None => match view.decide_control(0, input) {
            Ok(Decision::Fact(fact)) => Some(fact),
            _ => None,
        },
    };
    if let Some(fact) = decision {
        let mut copy = view.clone();
        let outcome = copy.apply(0, &fact, &mut Discard);
        assert_eq!(outcome, Outcome::Applied, "a decided fact did not fit its book: {fact:?}");
    }
}

fn input_bytes(input: &Input, kind: InputKind) -> Vec<u8> {
    match (input, kind) {
        (Input::Application(a), _) => ledger_proto::to_bytes(a),
        (Input::Repayment(r), _) => ledger_proto::to_bytes(r),
        (Input::Collections(c), _) => ledger_proto::to_bytes(c),
        (Input::MerchantUpdate(u), _) => ledger_proto::to_bytes(u),
        _ => unreachable!("a control input has no topic"),
    }
}

/// One input topic's decoder, then the checks of a readable input.
fn topic_message<P, T>(data: &[u8], kind: InputKind)
where
    P: prost::Message + Default + Clone,
    T: FromProto<P> + IntoProto<Proto = P> + PartialEq + std::fmt::Debug,
{
    let Ok(message) = ledger_proto::decode::<P>(data) else { return };
    let Ok(value) = T::from_proto(message) else { return };
    let again = T::from_proto(value.into_proto()).expect("a value the ledger read is written readably");
    assert_eq!(again, value, "a value changed through protobuf");
    let input = corpus::decode(kind, data).expect("read once, read again");
    round_trips(&input);
    decided_and_applied(&input);
}

pub fn proto_application(data: &[u8]) {
    topic_message::<pb::LoanApplication, Application>(data, InputKind::Application);
}

pub fn proto_repayment(data: &[u8]) {
    topic_message::<pb::Repayment, Repayment>(data, InputKind::Repayment);
}

pub fn proto_collections(data: &[u8]) {
    topic_message::<pb::CollectionsAction, CollectionsAction>(data, InputKind::Collections);
}

pub fn proto_merchant_update(data: &[u8]) {
    topic_message::<pb::MerchantUpdate, MerchantUpdate>(data, InputKind::MerchantUpdate);
}

pub fn proto_ledger_input(data: &[u8]) {
    let Ok(input) = ledger_proto::from_bytes::<pb::LedgerInput, Input>(data) else { return };
    round_trips(&input);
    decided_and_applied(&input);
}

pub fn proto_loan_event(data: &[u8]) {
    let Ok(event) = ledger_proto::decode::<pb::LoanEvent>(data) else { return };
    let (event_id, source) = (event.event_id.clone(), event.source.clone());
    let Ok(fact) = Fact::from_proto(event) else { return };
    let written = ledger_proto::encode(&ledger_proto::loan_event(&fact, event_id, source));
    let back = ledger_proto::from_bytes::<pb::LoanEvent, Fact>(&written).expect("a fact the ledger read is written readably");
    assert_eq!(back, fact, "a fact changed through protobuf");
}

pub fn scenario_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.lines() {
        if let Ok(Some(input)) = ledger_core::scenario::parse_line(line) {
            round_trips(&input);
            decided_and_applied(&input);
        }
    }
}

/// Reads the fuzzer's bytes as choices; past the end every choice is 0.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: u32) -> u32 {
        let v = u32::from(self.byte()) << 8 | u32::from(self.byte());
        v % n
    }

    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

const BAD_AMOUNTS: [&str; 8] = ["-1.00", "0.00", "1.005", "1e3", "12", "99999999999999999.00", "", "abc"];

fn cents(c: &mut Choices<'_>, max: u32) -> String {
    let v = c.below(max) + 1;
    if c.byte() < 8 {
        return BAD_AMOUNTS[usize::from(c.byte()) % BAD_AMOUNTS.len()].to_string();
    }
    format!("{}.{:02}", v / 100, v % 100)
}

fn merchant(c: &mut Choices<'_>) -> Merchant {
    let q = Decimal::from(c.below(121)) - Decimal::from(10);
    let hundred = Decimal::ONE_HUNDRED;
    let platform = c.byte() % 4 != 0;
    let missing = c.byte() < 6;
    Merchant {
        kind: if platform { MerchantKind::Platform } else { MerchantKind::OffPlatform },
        annual_sales: if missing { None } else { Some(q * Decimal::from(50_000)) },
        sales_growth: Some(q / hundred - Decimal::new(5, 1)),
        orders_12m: platform.then(|| q * hundred),
        seller_rating: platform.then(|| Decimal::ONE + q * Decimal::new(4, 2)),
        active_days_90: Some(q * Decimal::new(9, 1)),
        inventory_turnover: (!platform).then(|| q / Decimal::from(8)),
        debt_ratio: (!platform).then(|| Decimal::ONE - q / hundred),
        positive_review_rate: (!platform).then(|| q / hundred),
    }
}

/// The next input of a fuzzed stream: mostly valid inputs on a few ids (so they meet:
/// repayments find loans, ids are re-used with other content), some invalid ones, day
/// closes (now and then for a wrong date), and re-sends of an earlier input.
fn next_input(c: &mut Choices<'_>, open: Date, earlier: &[Input]) -> Input {
    match c.byte() % 12 {
        0..=2 => {
            let credit = c.byte() % 2 == 0;
            let amount = cents(c, 3_000_000);
            let orders = (0..c.byte() % 3)
                .map(|_| OrderRef { order_id: format!("O{}", c.byte() % 30), amount: RawAmount::cny(&cents(c, 2_000_000)) })
                .collect();
            Input::Application(Application {
                application_id: format!("A{}", c.byte() % 40),
                borrower_id: format!("B{}", c.byte() % 8),
                product: if credit { Product::Credit } else { Product::Order },
                amount: RawAmount::cny(&amount),
                term_days: i64::from(c.below(420)) - 10,
                orders,
                merchant: merchant(c),
            })
        }
        3..=5 => Input::Repayment(Repayment {
            payment_id: format!("P{}", c.byte() % 60),
            loan_id: format!("A{}", c.byte() % 42),
            amount: RawAmount::cny(&cents(c, 2_000_000)),
        }),
        6..=8 => {
            let wrong = c.byte() < 10;
            Input::CloseDay { date: if wrong { open.add_days(i64::from(c.byte()) - 128) } else { open } }
        }
        9 => {
            let action = [ActionKind::MarkMalicious, ActionKind::Reinstate, ActionKind::WriteOff][usize::from(c.byte() % 3)];
            let target = c.byte();
            Input::Collections(CollectionsAction {
                action_id: format!("C{}", c.byte() % 20),
                action,
                borrower_id: (action != ActionKind::WriteOff || target % 5 == 0).then(|| format!("B{}", target % 10)),
                loan_id: (action == ActionKind::WriteOff).then(|| format!("A{}", target % 42)),
            })
        }
        10 => Input::MerchantUpdate(MerchantUpdate {
            update_id: format!("U{}", c.byte() % 30),
            borrower_id: format!("B{}", c.byte() % 10),
            merchant: merchant(c),
        }),
        _ if !earlier.is_empty() => earlier[c.below(earlier.len() as u32) as usize].clone(),
        _ => Input::CloseDay { date: open },
    }
}

/// Random input streams through decide and apply (SPEC's whole rulebook), checking
/// after every input that every loan conserves money (principal = outstanding +
/// repaid), owes nothing below zero, owes nothing once settled, and that a decided fact
/// always fits its book; and at the end that the export adds up (every cent received
/// is placed), that replaying the facts (once, twice, spread over partitions) gives
/// the same state, and that re-sending any input changes nothing.
pub fn fold(data: &[u8]) {
    let mut c = Choices(data);
    let start = Date::from_ymd(2026, 1, 1).expect("a date");
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let open = Input::Open { date: start };
    let Ok(Decision::Fact(opened)) = ledger.decide_control(0, &open) else { panic!("a new ledger opens") };
    assert_eq!(ledger.apply(0, &opened, &mut Discard), Outcome::Applied);
    let mut facts = vec![opened];
    let mut inputs: Vec<Input> = vec![open];
    let partitions = u32::from(c.byte() % 5) + 1;
    for _ in 0..2_000 {
        if c.done() {
            break;
        }
        let today = ledger.business_date().expect("open");
        let input = next_input(&mut c, today, &inputs);
        let decision = match InputKind::of(&input) {
            Some(kind) => ledger_sim::decider(kind).decide(&ledger, 0, &input).map(|d| match d {
                Decision::Seen(seen) => ledger_sim::decider(kind).answer_seen(&input, seen).map(Decision::Fact).unwrap_or(Decision::Seen(seen)),
                d => d,
            }),
            None => ledger.decide_control(0, &input),
        };
        match decision {
            Ok(Decision::Fact(fact)) => {
                let outcome = ledger.apply(0, &fact, &mut Discard);
                assert_eq!(outcome, Outcome::Applied, "a decided fact did not fit its book: {fact:?}");
                assert!(ledger.books()[&0].totals_are_kept(), "the kept portfolio figures differ from a count after {fact:?}");
                facts.push(fact);
            }
            Ok(Decision::Seen(_)) => {}
            Err(e) => {
                // Only what a service dead-letters or control refuses: a close for another
                // date, a second open, a figure
                // the score needs missing.
                let expected = matches!(e, ledger_core::InputError::WrongCloseDate { .. } | ledger_core::InputError::AlreadyOpen(_) | ledger_core::InputError::Score(_) | ledger_core::InputError::Missing(_));
                assert!(expected, "unexpected refusal to decide {input:?}: {e}");
            }
        }
        inputs.push(input);
        check_loans(&ledger);
    }
    check_export(&ledger);
    check_replay(&ledger, &facts, partitions);
    check_resend(&ledger, &inputs);
}

fn check_loans(ledger: &Ledger) {
    for book in ledger.books().values() {
        for l in book.loans() {
            assert_eq!(l.principal, l.principal_outstanding.plus(l.principal_repaid), "{}: principal not conserved", l.loan_id);
            assert!(l.interest_paid <= l.interest_accrued && l.penalty_paid <= l.penalty_accrued, "{}: paid more than charged", l.loan_id);
            if l.status == ledger_core::LoanStatus::Settled {
                assert!(l.total_owed().is_zero() && l.dpd == 0, "{}: settled but owes", l.loan_id);
            }
            if l.status == ledger_core::LoanStatus::Active {
                assert!(!l.total_owed().is_zero(), "{}: active but owes nothing", l.loan_id);
            }
        }
    }
}

fn check_export(ledger: &Ledger) {
    let e = ledger.export();
    let mut repaid: BTreeMap<&str, Decimal> = BTreeMap::new();
    for p in &e.payments {
        *repaid.entry(p.loan_id.as_str()).or_default() += p.principal.as_decimal();
    }
    for l in &e.loans {
        let paid = repaid.get(l.loan_id.as_str()).copied().unwrap_or_default();
        assert_eq!(l.principal.as_decimal(), l.principal_outstanding.as_decimal() + paid, "{}: principal not conserved in the export", l.loan_id);
        assert!(l.interest_owed <= l.interest_accrued && l.penalty_owed <= l.penalty_accrued, "{}", l.loan_id);
    }
    let received: Decimal = ledger.books().values().flat_map(|b| b.payments().values()).map(|p| p.record.amount.as_decimal()).sum();
    let placed: Decimal = e.payments.iter().map(|p| (p.penalty.plus(p.interest).plus(p.principal).plus(p.overpayment)).as_decimal()).sum::<Decimal>()
        + e.loans.iter().map(|l| l.recovered.as_decimal()).sum::<Decimal>();
    assert_eq!(received, placed, "a received cent is nowhere");
    let outstanding: Decimal = e.loans.iter().filter(|l| l.status == "ACTIVE").map(|l| l.principal_outstanding.as_decimal()).sum();
    assert_eq!(e.portfolio.outstanding_principal.as_decimal(), outstanding);
}

fn check_replay(ledger: &Ledger, facts: &[Fact], partitions: u32) {
    let digest = ledger.digest();
    let mut replay = Ledger::new(Arc::new(ProductConfig::default()));
    for f in facts {
        assert_eq!(replay.apply(0, f, &mut Discard), Outcome::Applied, "replay: {f:?}");
    }
    assert_eq!(replay.digest(), digest, "a replay of the facts gives another state");
    for f in facts {
        replay.apply(0, f, &mut Discard);
    }
    assert_eq!(replay.digest(), digest, "applying every fact twice changed the state");
    // loan.events: keyed facts on their key's partition, opens and closes on all.
    let mut logs: BTreeMap<u32, Vec<&Fact>> = BTreeMap::new();
    for f in facts {
        match f.partition_key() {
            Some(key) => logs.entry(fnv(key) % partitions).or_default().push(f),
            None => (0..partitions).for_each(|p| logs.entry(p).or_default().push(f)),
        }
    }
    let mut spread = Ledger::new(Arc::new(ProductConfig::default()));
    for (p, log) in logs.iter().rev() {
        for f in log {
            spread.apply(*p, f, &mut Discard);
        }
    }
    assert_eq!(spread.export(), ledger.export(), "facts spread over {partitions} partitions give another export");
    assert_eq!(spread.digest(), digest);
}

fn check_resend(ledger: &Ledger, inputs: &[Input]) {
    let digest = ledger.digest();
    let mut after = ledger.clone();
    for input in inputs {
        let Some(kind) = InputKind::of(input) else { continue };
        match ledger_sim::decider(kind).decide(&after, 0, input) {
            Ok(Decision::Seen(seen)) => {
                if let Some(fact) = ledger_sim::decider(kind).answer_seen(input, seen) {
                    after.apply(0, &fact, &mut Discard);
                }
            }
            Ok(Decision::Fact(f)) => {
                // Only an input that was never decided (dead-lettered first) may be
                // decided now; it was undecidable then, it must be now.
                panic!("a re-sent input became a new fact: {f:?}");
            }
            Err(_) => {}
        }
    }
    assert_eq!(after.digest(), digest, "re-sending the inputs changed the state");
    assert_eq!(&after, ledger);
}

fn fnv(key: &str) -> u32 {
    key.bytes().fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619))
}
