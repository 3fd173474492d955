//! Scenario files (SPEC section 10): JSON Lines, one input per line, and the in-process
//! run of one through the fold.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::config::ProductConfig;
use crate::date::Date;
use crate::handler::{decide_with, Handler};
use crate::input::{Application, CollectionsAction, Input, MerchantUpdate, OrderRef, RawAmount, Repayment};
use crate::ledger::{Decision, InputError, Ledger, Seen};
use crate::model::{ActionKind, Product};
use crate::scoring::{Merchant, MerchantKind};
use crate::state::{Outcome, Sink};

/// A line that stops the run: its number (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScenarioError {
    pub line: usize,
    pub message: String,
}

/// Parses one line. Blank lines give `Ok(None)`.
pub fn parse_line(text: &str) -> Result<Option<Input>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let kind = string(obj, "type")?;
    let input = match kind.as_str() {
        "open" => Input::Open { date: date(obj, "date")? },
        "close_day" => Input::CloseDay { date: date(obj, "date")? },
        "application" => Input::Application(application(obj)?),
        "repayment" => Input::Repayment(Repayment {
            payment_id: id(obj, "payment_id")?,
            loan_id: id(obj, "loan_id")?,
            amount: raw_amount(obj),
        }),
        "collections_action" => {
            let action_text = string(obj, "action")?;
            let action = ActionKind::parse(&action_text)
                .ok_or_else(|| format!("action {action_text:?} is not MARK_MALICIOUS, REINSTATE or WRITE_OFF"))?;
            Input::Collections(CollectionsAction {
                action_id: id(obj, "action_id")?,
                action,
                borrower_id: optional_id(obj, "borrower_id")?,
                loan_id: optional_id(obj, "loan_id")?,
            })
        }
        "merchant_update" => {
            // The figures first: an update that cannot be scored is invalid whatever
            // its ids say (SPEC section 12).
            let merchant = merchant(obj)?;
            Input::MerchantUpdate(MerchantUpdate {
                update_id: id(obj, "update_id")?,
                borrower_id: id(obj, "borrower_id")?,
                merchant,
            })
        }
        other => return Err(format!("unknown type {other:?}")),
    };
    Ok(Some(input))
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key} must be a string, got {other}")),
        None => Err(format!("{key} is missing")),
    }
}

fn id(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    let s = string(obj, key)?;
    if s.is_empty() {
        return Err(format!("{key} is empty"));
    }
    Ok(s)
}

fn optional_id(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => id(obj, key).map(Some),
    }
}

fn date(obj: &Map<String, Value>, key: &str) -> Result<Date, String> {
    Date::parse(&string(obj, key)?).map_err(|e| format!("{key}: {e}"))
}

/// An amount as it arrived. Only a JSON string can be a valid amount; anything else
/// (a number, null, absent) is kept as a text that the decision refuses with
/// INVALID_AMOUNT, so that the same line gives the same refusal in process and through
/// the services.
fn raw_amount(obj: &Map<String, Value>) -> RawAmount {
    let text = match obj.get("amount") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => format!("(not a string: {other})"),
        None => "(missing)".to_string(),
    };
    let currency = match obj.get("currency") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => format!("(not a string: {other})"),
    };
    RawAmount { text, currency }
}

/// A merchant figure: a JSON number or a decimal string.
fn figure(obj: &Map<String, Value>, key: &str) -> Result<Option<Decimal>, String> {
    let text = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("merchant.{key} must be a number, got {other}")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| format!("merchant.{key} is not a number: {text:?}"))
}

fn application(obj: &Map<String, Value>) -> Result<Application, String> {
    let product_text = string(obj, "product")?;
    let product = match product_text.as_str() {
        "ORDER" => Product::Order,
        "CREDIT" => Product::Credit,
        other => return Err(format!("product {other:?} is not ORDER or CREDIT")),
    };
    let term_days = match obj.get("term_days") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("term_days must be a whole number, got {n}"))?,
        Some(other) => return Err(format!("term_days must be a whole number, got {other}")),
        None => return Err("term_days is missing".into()),
    };
    let orders = match obj.get("orders") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let o = item.as_object().ok_or("each order must be an object")?;
                Ok(OrderRef { order_id: id(o, "order_id")?, amount: raw_amount(o) })
            })
            .collect::<Result<_, String>>()?,
        Some(other) => return Err(format!("orders must be a list, got {other}")),
    };
    let merchant = merchant(obj)?;
    Ok(Application {
        application_id: id(obj, "application_id")?,
        borrower_id: id(obj, "borrower_id")?,
        product,
        amount: raw_amount(obj),
        term_days,
        orders,
        merchant,
    })
}

/// The `merchant` object of an application or a merchant update.
fn merchant(obj: &Map<String, Value>) -> Result<Merchant, String> {
    let m = obj.get("merchant").and_then(Value::as_object).ok_or("merchant is missing or not an object")?;
    let kind = match string(m, "kind").map_err(|e| format!("merchant.{e}"))?.as_str() {
        "PLATFORM" => MerchantKind::Platform,
        "OFF_PLATFORM" => MerchantKind::OffPlatform,
        other => return Err(format!("merchant.kind {other:?} is not PLATFORM or OFF_PLATFORM")),
    };
    Ok(Merchant {
        kind,
        annual_sales: figure(m, "annual_sales")?,
        sales_growth: figure(m, "sales_growth")?,
        orders_12m: figure(m, "orders_12m")?,
        seller_rating: figure(m, "seller_rating")?,
        active_days_90: figure(m, "active_days_90")?,
        inventory_turnover: figure(m, "inventory_turnover")?,
        debt_ratio: figure(m, "debt_ratio")?,
        positive_review_rate: figure(m, "positive_review_rate")?,
    })
}

/// Counts of what a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub inputs: u64,
    pub facts: u64,
    /// Inputs with a seen id and the same content as the first (DUPLICATE).
    pub duplicates: u64,
    /// Inputs with a seen id and other content (ID_CONFLICT).
    pub id_conflicts: u64,
}

/// Runs a scenario through the fold in process: each line is decided against the state
/// so far by the one of `deciders` that decides its kind (open and close_day by the
/// ledger itself, [`decide_with`]), and the fact it becomes is applied at once (a single
/// partition, book 0). The core knows no service: the caller composes them
/// (`ledger_sim::run` gives every service of the ledger).
pub fn run(text: &str, config: Arc<ProductConfig>, deciders: &[&dyn Handler], sink: &mut impl Sink) -> Result<(Ledger, RunStats), ScenarioError> {
    let mut ledger = Ledger::new(config);
    let mut stats = RunStats::default();
    for (index, line) in text.lines().enumerate() {
        let fail = |message: String| ScenarioError { line: index + 1, message };
        let Some(input) = parse_line(line).map_err(fail)? else { continue };
        stats.inputs += 1;
        match decide_with(deciders, &ledger, 0, &input).map_err(|e: InputError| fail(e.to_string()))? {
            Decision::Seen(Seen::Duplicate) => stats.duplicates += 1,
            Decision::Seen(Seen::IdConflict) => stats.id_conflicts += 1,
            Decision::Fact(fact) => match ledger.apply(0, &fact, sink) {
                Outcome::Applied => stats.facts += 1,
                Outcome::Duplicate => stats.duplicates += 1,
                Outcome::Ignored(why) => return Err(fail(format!("internal error: decided fact was ignored: {why}"))),
            },
        }
    }
    Ok((ledger, stats))
}
