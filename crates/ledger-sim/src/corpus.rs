//! A seeded corpus of bad input messages (issue 10): for each input topic, protobuf
//! payloads that are malformed (truncated, random bytes, wrong wire types, another
//! topic's message, unknown enum values, missing ids) or readable but invalid (bad
//! amounts, unknown loans and borrowers, ids re-sent with other content, limits, terms,
//! merchant figures out of range), each aimed at a ledger that already holds a
//! portfolio. Every message must be refused with a named reason (a fact that records
//! the refusal, or an ID_CONFLICT verdict) or dead-lettered with a message; nothing
//! else may change. [`verdict`] decides one message the way the services do (the same
//! protobuf conversions as the runtime's `decode_input`, then the handler's `decide`,
//! `answer_seen` for a seen id), so the in-process test and the end-to-end test judge
//! it alike.
//!
//! The corpus never names a borrower, loan or id that another bad message could make
//! known: applications of new borrowers use `XB…` ids, unknown borrowers and loans
//! `GHOST…`, and every fresh id carries the kind's `BAD…` prefix, so the messages'
//! verdicts do not depend on the order in which the topics are decided.

use std::collections::BTreeSet;

use ledger_core::handler::{Handler, InputKind};
use ledger_core::input::{Application, CollectionsAction, MerchantUpdate, OrderRef, RawAmount};
use ledger_core::scoring::{Merchant, MerchantKind};
use ledger_core::{ActionKind, Decision, Fact, Input, Ledger, Product, Reason, Seen};
use ledger_proto::{pb, FromProto, IntoProto};
use rust_decimal::Decimal;

use crate::Rng;

/// The four input topics, in the order the corpus lists them.
pub const KINDS: [InputKind; 4] = [InputKind::Application, InputKind::Repayment, InputKind::Collections, InputKind::MerchantUpdate];

/// The input topic's name (SPEC section 9).
pub fn topic(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Application => "loan.applications",
        InputKind::Repayment => "payments.repayments",
        InputKind::Collections => "collections.actions",
        InputKind::MerchantUpdate => "merchant.updates",
    }
}

/// One bad message: the topic it is sent to, what kind of bad it is, its key and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage {
    pub kind: InputKind,
    pub category: &'static str,
    pub key: String,
    pub bytes: Vec<u8>,
}

/// What the ledger does with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Cannot be read, or read but not decidable (a figure the score needs missing):
    /// dead-lettered with this reason and the original bytes.
    DeadLetter(String),
    /// Decided into this fact (appended to loan.events).
    Recorded(Fact),
    /// An id seen before, and no fact records the answer (only repayments have one).
    Seen(Seen),
}

impl Verdict {
    /// The named reasons it was refused for; `None` when it was not refused (accepted,
    /// or a DUPLICATE of the first input) or was dead-lettered.
    pub fn refusal(&self) -> Option<Vec<Reason>> {
        match self {
            Verdict::DeadLetter(_) | Verdict::Seen(Seen::Duplicate) => None,
            Verdict::Seen(Seen::IdConflict) => Some(vec![Reason::IdConflict]),
            Verdict::Recorded(fact) => refusal_of(fact),
        }
    }

    /// Refused with a reason, or dead-lettered with a non-empty message.
    pub fn is_refused_or_dead_lettered(&self) -> bool {
        match self {
            Verdict::DeadLetter(why) => !why.is_empty(),
            _ => self.refusal().is_some_and(|r| !r.is_empty()),
        }
    }
}

/// The reasons a fact records a refusal for; `None` for a fact that accepts its input.
pub fn refusal_of(fact: &Fact) -> Option<Vec<Reason>> {
    match fact {
        Fact::ApplicationDecided(d) if d.disbursement.is_none() => Some(d.reasons.clone()),
        Fact::RepaymentRefused { reason, .. } | Fact::ActionRefused { reason, .. } | Fact::MerchantUpdateRefused { reason, .. } => {
            Some(vec![*reason])
        }
        Fact::PaymentSeen { seen: Seen::IdConflict, .. } => Some(vec![Reason::IdConflict]),
        _ => None,
    }
}

/// Reads a payload of `kind`'s topic as the services do (ledger-runtime's
/// `service::decode_input`: the topic's message, then `from_proto`).
pub fn decode(kind: InputKind, payload: &[u8]) -> Result<Input, String> {
    ledger_proto::decode_input(kind, payload).map_err(|e| format!("cannot read {}: {e}", topic(kind)))
}

/// Decides one message of `kind`'s topic against book `book` of `view`, as the book
/// writer does: decode (or dead-letter), the handler's decision (an undecidable input
/// is dead-lettered too), and for a seen id the fact the handler records, if any.
pub fn verdict(handler: &dyn Handler, view: &Ledger, book: u32, kind: InputKind, payload: &[u8]) -> Verdict {
    let input = match decode(kind, payload) {
        Ok(input) => input,
        Err(why) => return Verdict::DeadLetter(why),
    };
    match handler.decide(view, book, &input) {
        Err(e) => Verdict::DeadLetter(e.to_string()),
        Ok(Decision::Fact(fact)) => Verdict::Recorded(fact),
        Ok(Decision::Seen(seen)) => match handler.answer_seen(&input, seen) {
            Some(fact) => Verdict::Recorded(fact),
            None => Verdict::Seen(seen),
        },
    }
}

/// What the corpus aims at: ids and states read from the ledger's export.
struct Target {
    loans: Vec<(String, String)>,
    current_loans: Vec<String>,
    borrowers: Vec<String>,
    not_blacklisted: Vec<String>,
    malicious: Vec<String>,
    still_overdue: Vec<String>,
    blacklisted_or_overdue: Vec<String>,
    application_ids: Vec<String>,
    payment_ids: Vec<String>,
    action_ids: Vec<String>,
    update_ids: Vec<String>,
    financed_orders: Vec<String>,
}

impl Target {
    fn of(ledger: &Ledger) -> Target {
        let e = ledger.export();
        let overdue: BTreeSet<&str> =
            e.loans.iter().filter(|l| l.status == "ACTIVE" && l.dpd > 0).map(|l| l.borrower_id.as_str()).collect();
        let ids = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<String>>();
        Target {
            loans: e.loans.iter().map(|l| (l.loan_id.clone(), l.borrower_id.clone())).collect(),
            current_loans: ids(e.loans.iter().filter(|l| l.dpd == 0 || l.status != "ACTIVE").map(|l| &l.loan_id).collect()),
            borrowers: ids(e.borrowers.iter().map(|b| &b.borrower_id).collect()),
            not_blacklisted: ids(e.borrowers.iter().filter(|b| !b.blacklisted).map(|b| &b.borrower_id).collect()),
            malicious: ids(e.borrowers.iter().filter(|b| b.malicious).map(|b| &b.borrower_id).collect()),
            still_overdue: ids(
                e.borrowers.iter().filter(|b| b.blacklisted && !b.malicious && overdue.contains(b.borrower_id.as_str())).map(|b| &b.borrower_id).collect(),
            ),
            blacklisted_or_overdue: ids(
                e.borrowers.iter().filter(|b| b.blacklisted || overdue.contains(b.borrower_id.as_str())).map(|b| &b.borrower_id).collect(),
            ),
            application_ids: ids(e.applications.iter().map(|a| &a.application_id).collect()),
            payment_ids: ids(e.payments.iter().map(|p| &p.payment_id).collect()),
            action_ids: ids(e.collections_actions.iter().map(|a| &a.action_id).collect()),
            update_ids: ids(e.merchant_updates.iter().map(|u| &u.update_id).collect()),
            financed_orders: ledger.books().values().flat_map(|b| b.financed_orders().iter().map(|o| o.as_str().to_string())).collect(),
        }
    }
}

fn pick<'a>(rng: &mut Rng, items: &'a [String], fallback: &'a str) -> &'a str {
    if items.is_empty() {
        fallback
    } else {
        &items[rng.below(items.len() as u64) as usize]
    }
}

/// Amounts SPEC section 2 refuses: negative, zero, three decimals, huge, floats,
/// exponents, blanks and other digits.
const BAD_AMOUNTS: [&str; 20] = [
    "-100.00", "-0.01", "0.00", "0", "100.005", "12.345", "99999999999999999.00", "1234567890123456.00", "1e3", "12.5", "12",
    " 12.00", "12.00 ", "+12.00", "1,000.00", "", "NaN", "１２.００", "0x10.00", "12.0.0",
];

/// Currencies other than CNY.
const BAD_CURRENCIES: [&str; 6] = ["USD", "cny", "RMB", "CNH", "EUR", " CNY"];

/// Figures that do not read as decimals (dead-lettered when set).
const UNREADABLE_FIGURES: [&str; 8] = ["abc", "1.2.3", "NaN", "inf", "--1", "1e", "", "0x1F"];

/// Figures far outside the scoring tables' ranges (the tables clamp them, SPEC section 6)
/// or beyond what the score can hold exactly (undecidable: dead-lettered).
const EXTREME_FIGURES: [&str; 12] = [
    "-5000000", "-1", "1e27", "79228162514264337593543950335", "-79228162514264337593543950335", "0.0000000000000000000000000001",
    "1e-28", "99", "1000000", "-0.99", "123456789012345678901234.5678", "5e6",
];

fn good_merchant(rng: &mut Rng, kind: MerchantKind) -> Merchant {
    let d = |s: String| Some(s.parse::<Decimal>().expect("generated figure"));
    match kind {
        MerchantKind::Platform => Merchant {
            kind,
            annual_sales: d(format!("{}.00", 1_000_000 + rng.below(4_000_000))),
            sales_growth: d(format!("0.{:02}", rng.below(50))),
            orders_12m: d((5_000 + rng.below(5_000)).to_string()),
            seller_rating: d((4 + rng.below(2)).to_string()),
            active_days_90: d((60 + rng.below(31)).to_string()),
            inventory_turnover: None,
            debt_ratio: None,
            positive_review_rate: None,
        },
        MerchantKind::OffPlatform => Merchant {
            kind,
            annual_sales: d(format!("{}.00", 1_000_000 + rng.below(4_000_000))),
            sales_growth: d(format!("0.{:02}", rng.below(50))),
            orders_12m: None,
            seller_rating: None,
            active_days_90: d((60 + rng.below(31)).to_string()),
            inventory_turnover: d(format!("{}.5", 6 + rng.below(6))),
            debt_ratio: d(format!("0.{:02}", 10 + rng.below(30))),
            positive_review_rate: d(format!("0.{:02}", 90 + rng.below(10))),
        },
    }
}

fn any_merchant(rng: &mut Rng) -> Merchant {
    let kind = any_kind(rng);
    good_merchant(rng, kind)
}

fn any_kind(rng: &mut Rng) -> MerchantKind {
    if rng.chance(50) {
        MerchantKind::Platform
    } else {
        MerchantKind::OffPlatform
    }
}

/// A merchant whose every figure is set to an extreme value (as protobuf, so that
/// values `Decimal` cannot hold are sent as text too).
fn extreme_merchant_proto(rng: &mut Rng) -> pb::Merchant {
    let kind = 1 + rng.below(2) as i32;
    let mut f = || Some(EXTREME_FIGURES[rng.below(EXTREME_FIGURES.len() as u64) as usize].to_string());
    pb::Merchant {
        kind,
        annual_sales: f(),
        sales_growth: f(),
        orders_12m: f(),
        seller_rating: f(),
        active_days_90: f(),
        inventory_turnover: f(),
        debt_ratio: f(),
        positive_review_rate: f(),
    }
}

/// A merchant whose figures are out of range on purpose (the tables clamp them) but
/// readable and complete.
fn out_of_range_merchant(rng: &mut Rng) -> Merchant {
    let mut m = any_merchant(rng);
    let wild = |rng: &mut Rng| -> Option<Decimal> {
        let v = ["-3000000", "-0.75", "7.5", "250000", "-90", "1000", "42", "-1"][rng.below(8) as usize];
        Some(v.parse().expect("figure"))
    };
    m.annual_sales = wild(rng);
    m.sales_growth = wild(rng);
    m.active_days_90 = wild(rng);
    match m.kind {
        MerchantKind::Platform => {
            m.orders_12m = wild(rng);
            m.seller_rating = wild(rng);
        }
        MerchantKind::OffPlatform => {
            m.inventory_turnover = wild(rng);
            m.debt_ratio = wild(rng);
            m.positive_review_rate = wild(rng);
        }
    }
    m
}

/// A merchant that lacks a figure its kind's table needs (readable, undecidable).
fn incomplete_merchant(rng: &mut Rng) -> Merchant {
    let mut m = any_merchant(rng);
    match rng.below(4) {
        0 => m.annual_sales = None,
        1 => m.sales_growth = None,
        2 => m.active_days_90 = None,
        _ if m.kind == MerchantKind::Platform => m.seller_rating = None,
        _ => m.debt_ratio = None,
    }
    m
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(160) as usize;
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Cuts a payload somewhere before its end (at least one byte shorter).
fn truncate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.is_empty() {
        let len = rng.below(bytes.len() as u64) as usize;
        bytes.truncate(len);
    }
    bytes
}

/// Appends field `field` with a wire type that does not match its declaration, or a
/// reserved wire type (6, 7), or a length running past the end of the message.
fn wrong_wire_type(rng: &mut Rng, mut bytes: Vec<u8>, string_fields: &[u32], varint_fields: &[u32]) -> Vec<u8> {
    let tag = |field: u32, wire: u32| -> u8 { u8::try_from((field << 3) | wire).expect("small field number") };
    let choice = rng.below(4);
    let tail: Vec<u8> = match choice {
        // A string field as a varint or a fixed64.
        0 | 1 if !string_fields.is_empty() => {
            let f = string_fields[rng.below(string_fields.len() as u64) as usize];
            if choice == 0 {
                vec![tag(f, 0), 0x2a]
            } else {
                let mut v = vec![tag(f, 1)];
                v.extend_from_slice(&rng.next_u64().to_le_bytes());
                v
            }
        }
        // An enum or integer field as a length-delimited string.
        2 if !varint_fields.is_empty() => {
            let f = varint_fields[rng.below(varint_fields.len() as u64) as usize];
            vec![tag(f, 2), 3, b'a', b'b', b'c']
        }
        // Reserved wire types, or a string whose length runs past the end.
        _ => {
            let f = string_fields.first().copied().unwrap_or(1);
            match rng.below(3) {
                0 => vec![tag(f, 6), 1],
                1 => vec![tag(f, 7), 1],
                _ => vec![tag(f, 2), 0x7f, b'x'],
            }
        }
    };
    // Before or after the valid fields: either way the message is unreadable.
    if rng.chance(50) {
        bytes.extend(tail);
        bytes
    } else {
        let mut v = tail;
        v.extend(bytes);
        v
    }
}

/// Bytes of another topic's message, sent to `kind`'s topic.
fn other_topics_message(rng: &mut Rng, kind: InputKind, n: u64) -> Vec<u8> {
    let options: Vec<u64> = (0..4).filter(|k| KINDS[*k as usize] != kind).collect();
    match KINDS[options[rng.below(options.len() as u64) as usize] as usize] {
        InputKind::Application => ledger_proto::to_bytes(&bad_application_input(rng, n)),
        InputKind::Repayment => ledger_proto::encode(&pb::Repayment {
            payment_id: format!("BADPAYX{n}"),
            loan_id: format!("GHOSTL{n}"),
            amount: "10.00".into(),
            currency: "CNY".into(),
        }),
        InputKind::Collections => ledger_proto::encode(&pb::CollectionsAction {
            action_id: format!("BADACTX{n}"),
            action: 1 + rng.below(3) as i32,
            borrower_id: Some(format!("GHOSTB{n}")),
            loan_id: None,
        }),
        InputKind::MerchantUpdate => {
            let m = any_merchant(rng);
            ledger_proto::to_bytes(&MerchantUpdate { update_id: format!("BADUPDX{n}"), borrower_id: format!("GHOSTB{n}"), merchant: m })
        }
    }
}

/// A readable application that is refused: an invalid amount from a new borrower.
fn bad_application_input(rng: &mut Rng, n: u64) -> Application {
    Application {
        application_id: format!("BADAPP{n}"),
        borrower_id: format!("XB{n}"),
        product: Product::Credit,
        amount: RawAmount::cny(BAD_AMOUNTS[rng.below(BAD_AMOUNTS.len() as u64) as usize]),
        term_days: 30,
        orders: Vec::new(),
        merchant: any_merchant(rng),
    }
}

/// The categories of each topic, in the order they are dealt out round-robin.
pub fn categories(kind: InputKind) -> &'static [&'static str] {
    const COMMON: [&str; 4] = ["random_bytes", "truncated", "wrong_wire_type", "other_topic"];
    match kind {
        InputKind::Application => &[
            COMMON[0], COMMON[1], COMMON[2], COMMON[3], "missing_id", "unknown_enum", "missing_merchant", "unreadable_figure",
            "missing_figure", "bad_amount", "bad_currency", "term_out_of_range", "over_product_max", "order_amounts",
            "order_already_financed", "score_too_low", "figures_out_of_range", "figures_extreme", "id_reused",
            "blacklisted_or_overdue",
        ],
        InputKind::Repayment => &[
            COMMON[0], COMMON[1], COMMON[2], COMMON[3], "missing_id", "bad_amount", "bad_currency", "unknown_loan", "id_reused",
        ],
        InputKind::Collections => &[
            COMMON[0], COMMON[1], COMMON[2], COMMON[3], "missing_id", "unknown_enum", "empty_target", "no_target",
            "unknown_borrower", "unknown_loan", "loan_of_other_borrower", "not_overdue", "not_blacklisted", "malicious",
            "still_overdue", "id_reused",
        ],
        InputKind::MerchantUpdate => &[
            COMMON[0], COMMON[1], COMMON[2], COMMON[3], "missing_id", "unknown_enum", "missing_merchant", "unreadable_figure",
            "missing_figure", "unknown_borrower", "figures_out_of_range", "figures_extreme", "id_reused",
        ],
    }
}

/// `per_topic` bad messages for each input topic, aimed at `ledger` (which should hold
/// a portfolio), from `seed`. The same seed and ledger give the same corpus.
pub fn generate(seed: u64, ledger: &Ledger, per_topic: usize) -> Vec<BadMessage> {
    let target = Target::of(ledger);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(per_topic * KINDS.len());
    for kind in KINDS {
        let cats = categories(kind);
        for i in 0..per_topic {
            let category = cats[i % cats.len()];
            let n = i as u64;
            let (key, bytes) = match kind {
                InputKind::Application => application(&mut rng, &target, category, n),
                InputKind::Repayment => repayment(&mut rng, &target, category, n),
                InputKind::Collections => action(&mut rng, &target, category, n),
                InputKind::MerchantUpdate => update(&mut rng, &target, category, n),
            };
            out.push(BadMessage { kind, category, key, bytes });
        }
    }
    out
}

fn common(rng: &mut Rng, kind: InputKind, category: &str, n: u64, base: Vec<u8>, strings: &[u32], varints: &[u32]) -> Option<Vec<u8>> {
    match category {
        "random_bytes" => Some(random_bytes(rng)),
        "truncated" => Some(truncate(rng, base)),
        "wrong_wire_type" => Some(wrong_wire_type(rng, base, strings, varints)),
        "other_topic" => Some(other_topics_message(rng, kind, n)),
        _ => None,
    }
}

fn application(rng: &mut Rng, t: &Target, category: &str, n: u64) -> (String, Vec<u8>) {
    let mut a = bad_application_input(rng, n);
    // The base of the byte-level categories is refused too (an invalid amount, the
    // merchant last): any prefix of it lacks the merchant or cuts a field short.
    let base = ledger_proto::to_bytes(&a);
    if let Some(bytes) = common(rng, InputKind::Application, category, n, base, &[1, 2, 4, 5, 7, 8], &[3, 6]) {
        return (a.borrower_id, bytes);
    }
    let valid = |rng: &mut Rng| RawAmount::cny(&format!("{}.{:02}", 1_000 + rng.below(9_000), rng.below(100)));
    let mut p = a.into_proto();
    match category {
        "missing_id" => {
            if rng.chance(50) {
                p.application_id.clear();
            } else {
                p.borrower_id.clear();
            }
        }
        "unknown_enum" => match rng.below(3) {
            0 => p.product = [0, 3, 99, -1][rng.below(4) as usize],
            _ => p.merchant.as_mut().expect("merchant").kind = [0, 3, 77, -5][rng.below(4) as usize],
        },
        "missing_merchant" => p.merchant = None,
        "unreadable_figure" => {
            let m = p.merchant.as_mut().expect("merchant");
            let bad = Some(UNREADABLE_FIGURES[rng.below(UNREADABLE_FIGURES.len() as u64) as usize].to_string());
            match rng.below(3) {
                0 => m.annual_sales = bad,
                1 => m.sales_growth = bad,
                _ => m.active_days_90 = bad,
            }
        }
        "figures_extreme" => {
            p.merchant = Some(extreme_merchant_proto(rng));
            p.amount = "0.00".into();
        }
        _ => {
            a = Application::from_proto(p).expect("the base application reads");
            match category {
                "missing_figure" => a.merchant = incomplete_merchant(rng),
                "bad_amount" => {}
                "bad_currency" => {
                    a.amount = valid(rng);
                    a.amount.currency = BAD_CURRENCIES[rng.below(BAD_CURRENCIES.len() as u64) as usize].to_string();
                }
                "term_out_of_range" => {
                    a.amount = valid(rng);
                    a.product = if rng.chance(50) { Product::Credit } else { Product::Order };
                    a.orders = vec![OrderRef { order_id: format!("BADORD{n}"), amount: a.amount.clone() }];
                    a.term_days = match a.product {
                        Product::Credit => [0, -1, 366, 10_000, i64::MAX, i64::MIN][rng.below(6) as usize],
                        Product::Order => [0, -30, 61, 365, i64::MAX, i64::MIN][rng.below(6) as usize],
                    };
                }
                "over_product_max" => a.amount = RawAmount::cny(&format!("{}.00", 500_001 + rng.below(10_000_000))),
                "order_amounts" => {
                    a.product = Product::Order;
                    a.amount = valid(rng);
                    a.orders = match rng.below(3) {
                        // The orders add up to less than the amount.
                        0 => vec![OrderRef { order_id: format!("BADORD{n}"), amount: RawAmount::cny("1.00") }],
                        // An order with an invalid amount.
                        1 => vec![OrderRef {
                            order_id: format!("BADORD{n}"),
                            amount: RawAmount::cny(BAD_AMOUNTS[rng.below(BAD_AMOUNTS.len() as u64) as usize]),
                        }],
                        // No orders at all.
                        _ => Vec::new(),
                    };
                }
                "order_already_financed" => {
                    a.product = Product::Order;
                    a.amount = valid(rng);
                    // An order financed before, or one order named twice.
                    let second = if !t.financed_orders.is_empty() && rng.chance(70) {
                        pick(rng, &t.financed_orders, "").to_string()
                    } else {
                        format!("BADORD{n}")
                    };
                    a.orders = vec![
                        OrderRef { order_id: format!("BADORD{n}"), amount: a.amount.clone() },
                        OrderRef { order_id: second, amount: RawAmount::cny("1.00") },
                    ];
                }
                "score_too_low" => {
                    a.amount = valid(rng);
                    let m = &mut a.merchant;
                    m.sales_growth = Some("-0.50".parse().expect("figure"));
                    m.active_days_90 = Some(Decimal::ZERO);
                    m.annual_sales = Some("1000.00".parse().expect("figure"));
                    if m.kind == MerchantKind::Platform {
                        m.orders_12m = Some(Decimal::ZERO);
                        m.seller_rating = Some(Decimal::ONE);
                    } else {
                        m.debt_ratio = Some(Decimal::ONE);
                        m.inventory_turnover = Some(Decimal::ZERO);
                    }
                }
                "figures_out_of_range" => a.merchant = out_of_range_merchant(rng),
                "id_reused" => {
                    // A used application id, from another borrower or for another amount.
                    // (With none used yet, the invalid amount of the base refuses it.)
                    if !t.application_ids.is_empty() {
                        a.application_id = pick(rng, &t.application_ids, "").to_string();
                        a.amount = valid(rng);
                    }
                }
                "blacklisted_or_overdue" => {
                    // (With none such, the invalid amount of the base refuses it.)
                    if !t.blacklisted_or_overdue.is_empty() {
                        a.borrower_id = pick(rng, &t.blacklisted_or_overdue, "").to_string();
                        a.amount = RawAmount::cny("1000.00");
                    }
                }
                other => unreachable!("application category {other}"),
            }
            p = a.into_proto();
        }
    }
    (p.borrower_id.clone(), ledger_proto::encode(&p))
}

fn repayment(rng: &mut Rng, t: &Target, category: &str, n: u64) -> (String, Vec<u8>) {
    let (loan, _) = if t.loans.is_empty() {
        (format!("GHOSTL{n}"), String::new())
    } else {
        t.loans[rng.below(t.loans.len() as u64) as usize].clone()
    };
    let bad_amount = BAD_AMOUNTS[rng.below(BAD_AMOUNTS.len() as u64) as usize].to_string();
    // The base (an invalid amount on a known loan) is refused, so is any prefix of it:
    // it lacks the amount, or cuts a field short.
    let mut p = pb::Repayment { payment_id: format!("BADPAY{n}"), loan_id: loan.clone(), amount: bad_amount, currency: String::new() };
    if let Some(bytes) = common(rng, InputKind::Repayment, category, n, ledger_proto::encode(&p), &[1, 2, 3, 4], &[]) {
        return (loan, bytes);
    }
    match category {
        "missing_id" => {
            if rng.chance(50) {
                p.payment_id.clear();
            } else {
                p.loan_id.clear();
            }
        }
        "bad_amount" => {}
        "bad_currency" => {
            p.amount = "10.00".into();
            p.currency = BAD_CURRENCIES[rng.below(BAD_CURRENCIES.len() as u64) as usize].to_string();
        }
        "unknown_loan" => {
            p.loan_id = format!("GHOSTL{n}");
            p.amount = "10.00".into();
        }
        "id_reused" => {
            // A used payment id, for a loan nobody has (so surely other content).
            p.payment_id = pick(rng, &t.payment_ids, "BADPAY-NONE").to_string();
            p.loan_id = format!("GHOSTL{n}");
            p.amount = format!("{}.{:02}", 1 + rng.below(5_000), rng.below(100));
        }
        other => unreachable!("repayment category {other}"),
    }
    (p.loan_id.clone(), ledger_proto::encode(&p))
}

fn action(rng: &mut Rng, t: &Target, category: &str, n: u64) -> (String, Vec<u8>) {
    let mut c = CollectionsAction {
        action_id: format!("BADACT{n}"),
        action: ActionKind::Reinstate,
        borrower_id: Some(format!("GHOSTB{n}")),
        loan_id: None,
    };
    // The base (reinstating a borrower nobody knows) is refused, and so is any prefix.
    let base = ledger_proto::to_bytes(&c);
    if let Some(bytes) = common(rng, InputKind::Collections, category, n, base, &[1, 3, 4], &[2]) {
        return (format!("GHOSTB{n}"), bytes);
    }
    let mut p = c.into_proto();
    match category {
        "missing_id" => p.action_id.clear(),
        "unknown_enum" => p.action = [0, 4, 99, -1, i32::MAX][rng.below(5) as usize],
        "empty_target" => {
            if rng.chance(50) {
                p.borrower_id = Some(String::new());
            } else {
                p.loan_id = Some(String::new());
            }
        }
        _ => {
            c = CollectionsAction::from_proto(p).expect("the base action reads");
            match category {
                "no_target" => {
                    c.action = [ActionKind::MarkMalicious, ActionKind::Reinstate, ActionKind::WriteOff][rng.below(3) as usize];
                    c.borrower_id = None;
                }
                "unknown_borrower" => {
                    c.action = [ActionKind::MarkMalicious, ActionKind::Reinstate, ActionKind::WriteOff][rng.below(3) as usize];
                    if c.action == ActionKind::WriteOff {
                        c.loan_id = Some(pick(rng, &t.loans.iter().map(|l| l.0.clone()).collect::<Vec<_>>(), "GHOSTL").to_string());
                    }
                }
                "unknown_loan" => {
                    c.action = ActionKind::WriteOff;
                    c.borrower_id = None;
                    c.loan_id = Some(format!("GHOSTL{n}"));
                }
                "loan_of_other_borrower" => {
                    c.action = ActionKind::WriteOff;
                    let (loan, owner) = t.loans.get(rng.below(t.loans.len().max(1) as u64) as usize).cloned().unwrap_or_default();
                    let other = t.borrowers.iter().find(|b| **b != owner).cloned().unwrap_or_else(|| format!("GHOSTB{n}"));
                    c.borrower_id = Some(other);
                    c.loan_id = Some(if loan.is_empty() { format!("GHOSTL{n}") } else { loan });
                }
                "not_overdue" => {
                    c.action = ActionKind::WriteOff;
                    c.borrower_id = None;
                    c.loan_id = Some(pick(rng, &t.current_loans, "GHOSTL").to_string());
                }
                "not_blacklisted" => c.borrower_id = Some(pick(rng, &t.not_blacklisted, "GHOSTB").to_string()),
                "malicious" => c.borrower_id = Some(pick(rng, &t.malicious, "GHOSTB").to_string()),
                "still_overdue" => c.borrower_id = Some(pick(rng, &t.still_overdue, "GHOSTB").to_string()),
                "id_reused" => {
                    // A used action id, with (almost surely) other content.
                    c.action_id = pick(rng, &t.action_ids, "BADACT-NONE").to_string();
                    c.borrower_id = Some(format!("GHOSTB{n}"));
                }
                other => unreachable!("collections category {other}"),
            }
            p = c.into_proto();
        }
    }
    let key = p.borrower_id.clone().or_else(|| p.loan_id.clone()).unwrap_or_else(|| p.action_id.clone());
    (key, ledger_proto::encode(&p))
}

fn update(rng: &mut Rng, t: &Target, category: &str, n: u64) -> (String, Vec<u8>) {
    let mut u = MerchantUpdate { update_id: format!("BADUPD{n}"), borrower_id: format!("GHOSTB{n}"), merchant: any_merchant(rng) };
    // The base (an update for a borrower nobody knows) is refused, and so is any prefix:
    // without its merchant (the last field) it cannot be read.
    let base = ledger_proto::to_bytes(&u);
    if let Some(bytes) = common(rng, InputKind::MerchantUpdate, category, n, base, &[1, 2, 3], &[]) {
        return (u.borrower_id, bytes);
    }
    let mut p = u.into_proto();
    match category {
        "missing_id" => {
            if rng.chance(50) {
                p.update_id.clear();
            } else {
                p.borrower_id.clear();
            }
        }
        "unknown_enum" => p.merchant.as_mut().expect("merchant").kind = [0, 3, 77, -5][rng.below(4) as usize],
        "missing_merchant" => p.merchant = None,
        "unreadable_figure" => {
            let bad = Some(UNREADABLE_FIGURES[rng.below(UNREADABLE_FIGURES.len() as u64) as usize].to_string());
            p.merchant.as_mut().expect("merchant").annual_sales = bad;
        }
        "figures_extreme" => p.merchant = Some(extreme_merchant_proto(rng)),
        _ => {
            u = MerchantUpdate::from_proto(p).expect("the base update reads");
            match category {
                "missing_figure" => {
                    // Undecidable even for a known borrower: validity comes first.
                    u.merchant = incomplete_merchant(rng);
                    u.borrower_id = pick(rng, &t.borrowers, "GHOSTB").to_string();
                }
                "unknown_borrower" => {}
                "figures_out_of_range" => u.merchant = out_of_range_merchant(rng),
                "id_reused" => u.update_id = pick(rng, &t.update_ids, "BADUPD-NONE").to_string(),
                other => unreachable!("merchant update category {other}"),
            }
            p = u.into_proto();
        }
    }
    (p.borrower_id.clone(), ledger_proto::encode(&p))
}

/// The input a message reads as, if any (for the expected state of a live run).
pub fn readable(message: &BadMessage) -> Option<Input> {
    decode(message.kind, &message.bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_dealt_and_the_corpus_is_deterministic() {
        let ledger = Ledger::new(std::sync::Arc::new(ledger_core::ProductConfig::default()));
        let a = generate(3, &ledger, 200);
        assert_eq!(a, generate(3, &ledger, 200));
        for kind in KINDS {
            for c in categories(kind) {
                assert!(a.iter().any(|m| m.kind == kind && m.category == *c), "{kind:?} {c}");
            }
        }
    }
}
