//! The HTTP routes over a store filled from a scenario with awkward ids (spaces, '/',
//! non-ASCII, one borrower id a prefix of another) and loans in several overdue buckets.

mod common;

use common::{decide_all, parse_scenario, Driver, TempDir};
use ledger_core::Ledger;
use ledger_store::{Store, StoreTree};
use serde_json::{json, Value};

const TOP_MERCHANT: &str = r#"{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.50","orders_12m":10000,"seller_rating":5,"active_days_90":90}"#;

fn application(id: &str, borrower: &str, amount: &str, term_days: u32) -> String {
    format!(
        r#"{{"type":"application","application_id":{},"borrower_id":{},"product":"CREDIT","amount":"{amount}","term_days":{term_days},"merchant":{TOP_MERCHANT}}}"#,
        json!(id),
        json!(borrower)
    )
}

/// 95 business days from 2026-01-01. "A 1/é" (borrower "B/1", 1 day) ends in NPL,
/// "A2" (borrower "B", 60 days) in M2, "A3" (borrower "C", disbursed on day 80, 1 day)
/// in M1; "A4" (borrower "B") is repaid in full on its first day and settles; "A5" is
/// refused (B/1 is blacklisted and overdue by then); P2 names an unknown loan.
fn scenario() -> String {
    let mut lines = vec![r#"{"type":"open","date":"2026-01-01"}"#.to_string()];
    lines.push(application("A 1/é", "B/1", "1000.00", 1));
    lines.push(application("A2", "B", "2000.00", 60));
    lines.push(application("A4", "B", "300.00", 30));
    lines.push(r#"{"type":"repayment","payment_id":"P1","loan_id":"A4","amount":"300.00"}"#.to_string());
    lines.push(r#"{"type":"repayment","payment_id":"P2","loan_id":"NOPE","amount":"1.00"}"#.to_string());
    let start = ledger_core::Date::parse("2026-01-01").unwrap();
    for day in 0..95 {
        if day == 80 {
            lines.push(application("A3", "C", "500.00", 1));
        }
        if day == 93 {
            lines.push(application("A5", "B/1", "100.00", 10));
        }
        lines.push(format!(r#"{{"type":"close_day","date":"{}"}}"#, start.add_days(day)));
    }
    lines.join("\n")
}

fn filled(dir: &TempDir) -> (Store, StoreTree, Ledger) {
    let (ledger, facts) = decide_all(parse_scenario(&scenario()));
    let store = Store::open(&dir.0).unwrap();
    let tree = store.tree("projector").unwrap();
    let logs = vec![facts];
    let mut driver = Driver::open(tree.clone(), &logs, true);
    while !driver.done(&logs) {
        driver.step(&logs, &[10], true);
    }
    (store, tree, ledger)
}

fn get(tree: &StoreTree, target: &str) -> (u16, Value) {
    projector::route(tree, "GET", target)
}

fn loan_json(ledger: &Ledger, id: &str) -> Value {
    serde_json::to_value(ledger_core::export::loan_view(ledger.loan(id).unwrap().1)).unwrap()
}

#[test]
fn every_endpoint() {
    let dir = TempDir::new("route");
    let (_store, tree, ledger) = filled(&dir);
    let export = ledger.export();
    // The scenario reaches what the routes must show.
    let bucket_of = |id: &str| export.loans.iter().find(|l| l.loan_id == id).unwrap().bucket.clone();
    assert_eq!([bucket_of("A 1/é"), bucket_of("A2"), bucket_of("A3"), bucket_of("A4")], ["NPL", "M2", "M1", "CURRENT"]);

    assert_eq!(get(&tree, "/healthz"), (200, json!({"status": "ok"})));
    assert_eq!(get(&tree, "/v1/export"), (200, serde_json::to_value(&export).unwrap()));
    assert_eq!(get(&tree, "/v1/digest"), (200, json!({ "digest": ledger.digest() })));
    assert_eq!(get(&tree, "/v1/portfolio"), (200, serde_json::to_value(ledger.portfolio_report()).unwrap()));

    // Loans, ids percent-decoded.
    assert_eq!(get(&tree, "/v1/loans/A2"), (200, loan_json(&ledger, "A2")));
    assert_eq!(get(&tree, "/v1/loans/A%201%2F%C3%A9"), (200, loan_json(&ledger, "A 1/é")));
    assert_eq!(get(&tree, "/v1/loans/A%201%2f%c3%a9?x=1"), (200, loan_json(&ledger, "A 1/é")));
    assert_eq!(get(&tree, "/v1/loans/NOPE"), (404, json!({"error": "loan NOPE not found"})));
    assert_eq!(get(&tree, "/v1/loans/A%203"), (404, json!({"error": "loan A 3 not found"})));
    assert_eq!(get(&tree, "/v1/loans/").0, 404);
    assert_eq!(get(&tree, "/v1/loans/A%201/%C3%A9").0, 404, "a raw '/' is not part of an id");
    let (status, body) = get(&tree, "/v1/loans/A%2");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("hex"), "{body}");

    // Borrowers with their loans; "B" is a prefix of "B/1" in the index.
    let borrower = |id: &str, loans: &[&str]| {
        let mut v = serde_json::to_value(export.borrowers.iter().find(|b| b.borrower_id == id).unwrap()).unwrap();
        v["loans"] = Value::Array(loans.iter().map(|l| loan_json(&ledger, l)).collect());
        v
    };
    assert_eq!(get(&tree, "/v1/borrowers/B"), (200, borrower("B", &["A2", "A4"])));
    assert_eq!(get(&tree, "/v1/borrowers/B%2F1"), (200, borrower("B/1", &["A 1/é"])));
    assert_eq!(get(&tree, "/v1/borrowers/C"), (200, borrower("C", &["A3"])));
    let b1 = get(&tree, "/v1/borrowers/B%2F1").1;
    assert_eq!((b1["blacklisted"].clone(), b1["outstanding_principal"].clone()), (json!(true), json!("1000.00")));
    assert_eq!(get(&tree, "/v1/borrowers/X%20Y"), (404, json!({"error": "borrower X Y not found"})));

    // The overdue queue.
    let overdue = |bucket: Value, ids: &[&str]| json!({"bucket": bucket, "count": ids.len(), "loans": ids.iter().map(|l| loan_json(&ledger, l)).collect::<Vec<_>>()});
    assert_eq!(get(&tree, "/v1/overdue"), (200, overdue(Value::Null, &["A3", "A2", "A 1/é"])));
    assert_eq!(get(&tree, "/v1/overdue?bucket="), (200, overdue(Value::Null, &["A3", "A2", "A 1/é"])));
    assert_eq!(get(&tree, "/v1/overdue?bucket=M1"), (200, overdue(json!("M1"), &["A3"])));
    assert_eq!(get(&tree, "/v1/overdue?x=1&bucket=M2"), (200, overdue(json!("M2"), &["A2"])));
    assert_eq!(get(&tree, "/v1/overdue?bucket=M3"), (200, overdue(json!("M3"), &[])));
    assert_eq!(get(&tree, "/v1/overdue?bucket=NPL"), (200, overdue(json!("NPL"), &["A 1/é"])));
    for bad in ["M4", "m1", "CURRENT", "%zz"] {
        let (status, body) = get(&tree, &format!("/v1/overdue?bucket={bad}"));
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    assert_eq!(get(&tree, "/v1/overdue?bucket=M4").1, json!({"error": "unknown bucket \"M4\": use M1, M2, M3 or NPL"}));

    // Unknown paths and other methods.
    for path in ["", "/index.html", "/v1", "/v1/", "/v1/exports", "/v2/export", "/v1/loans", "/healthz/", "/v1/borrowers/B/x"] {
        let (status, body) = get(&tree, path);
        assert_eq!(status, 404, "{path}");
        assert!(body["error"].as_str().unwrap().starts_with("no such endpoint"), "{path}: {body}");
    }
    for (method, path) in
        [("POST", "/v1/export"), ("DELETE", "/v1/loans/A2"), ("PUT", "/healthz"), ("HEAD", "/v1/digest")]
    {
        let (status, body) = projector::route(&tree, method, path);
        assert_eq!(status, 405, "{method} {path}");
        assert!(body["error"].as_str().unwrap().contains(method), "{body}");
    }
    assert_eq!(projector::route(&tree, "POST", "/nowhere").0, 404);

    // The dashboard: its page, whole, as a string to be served as text/html.
    assert_eq!(get(&tree, "/"), (200, json!(projector::DASHBOARD)));
    assert_eq!(get(&tree, "/?q=A2").0, 200);
    assert_eq!(projector::route(&tree, "POST", "/").0, 405);
    assert!(projector::DASHBOARD.starts_with("<!DOCTYPE html>") && projector::DASHBOARD.ends_with("</html>\n"));
    // Nothing is fetched from another origin (the network may be closed), only the routes
    // (SVG's namespace is a name, not an address that is fetched).
    let page = projector::DASHBOARD.replace("\"http://www.w3.org/2000/svg\"", "");
    for outside in ["http://", "https://", "//cdn", "@import", "url("] {
        assert!(!page.contains(outside), "the dashboard refers to {outside}");
    }
    for route in ["/v1/portfolio", "/v1/overdue", "/v1/loans/", "/history", "/payoff", "/v1/borrowers/"] {
        assert!(projector::DASHBOARD.contains(route), "the dashboard does not read {route}");
    }
}

#[test]
fn an_empty_store_answers_like_an_empty_ledger() {
    let dir = TempDir::new("route-empty");
    let store = Store::open(&dir.0).unwrap();
    let tree = store.tree("projector").unwrap();
    let empty = Ledger::new(common::config());
    assert_eq!(get(&tree, "/v1/export"), (200, serde_json::to_value(empty.export()).unwrap()));
    assert_eq!(get(&tree, "/v1/digest"), (200, json!({ "digest": empty.digest() })));
    assert_eq!(get(&tree, "/v1/portfolio"), (200, serde_json::to_value(empty.portfolio_report()).unwrap()));
    assert_eq!(get(&tree, "/v1/overdue"), (200, json!({"bucket": null, "count": 0, "loans": []})));
    assert_eq!(get(&tree, "/v1/loans/A1").0, 404);
    assert_eq!(get(&tree, "/healthz").0, 200);
}

#[test]
fn a_corrupt_row_is_a_server_error() {
    let dir = TempDir::new("route-corrupt");
    let store = Store::open(&dir.0).unwrap();
    let tree = store.tree("projector").unwrap();
    let mut changes = ledger_store::Changes::new();
    changes.put("loan/L1", "not json");
    tree.commit(&changes, &[]).unwrap();
    let (status, body) = get(&tree, "/v1/loans/L1");
    assert_eq!(status, 500);
    assert!(body["error"].as_str().unwrap().contains("loan/L1"), "{body}");
    assert_eq!(get(&tree, "/v1/export").0, 500);
}
