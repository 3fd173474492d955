//! The OpenAPI document (crates/projector/openapi.json) against the routes: every route
//! of `projector::ROUTES` is in it and nothing else is, and every answer of every route
//! over read models filled from the golden scenarios (and its errors) validates
//! against the schema the document gives for that status.

mod common;

use std::collections::BTreeSet;

use common::{decide_all, parse_scenario, scenarios_dir, spread, Driver, TempDir};
use ledger_store::{Store, StoreTree};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(projector::OPENAPI).expect("openapi.json is JSON")
}

#[test]
fn the_document_names_exactly_the_routes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = projector::ROUTES.into_iter().collect();
    assert_eq!(documented, routed, "paths of openapi.json vs projector::ROUTES");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{path}: the API is GET only");
        let responses = item["get"]["responses"].as_object().unwrap();
        assert!(responses.contains_key("200") && responses.contains_key("default"), "{path}");
    }
    // Every reference resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(resolve(&doc, &r).is_some(), "unresolved {r}");
    }
}

#[test]
fn every_answer_of_every_route_validates_against_its_schema() {
    let doc = document();
    let mut checked = 0;
    for path in std::fs::read_dir(scenarios_dir()).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let (reference, facts) = decide_all(parse_scenario(&std::fs::read_to_string(&path).unwrap()));
        let dir = TempDir::new("openapi");
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("projector").unwrap();
        let logs = spread(&facts, 3);
        let mut driver = Driver::open(tree.clone(), &logs, true);
        while !driver.done(&logs) {
            driver.step(&logs, &[7, 5, 3], true);
        }
        let export = reference.export();
        let mut targets: Vec<String> =
            ["/", "/healthz", "/openapi.json", "/v1/export", "/v1/digest", "/v1/portfolio", "/v1/overdue"].map(String::from).to_vec();
        for bucket in ["M1", "M2", "M3", "NPL", "", "bogus", "%zz"] {
            targets.push(format!("/v1/overdue?bucket={bucket}"));
        }
        for l in &export.loans {
            for suffix in ["", "/history", "/payoff"] {
                targets.push(format!("/v1/loans/{}{suffix}", escape(&l.loan_id)));
            }
        }
        for b in &export.borrowers {
            targets.push(format!("/v1/borrowers/{}", escape(&b.borrower_id)));
        }
        for unknown in ["/v1/loans/NOPE", "/v1/loans/NOPE/history", "/v1/loans/NOPE/payoff", "/v1/borrowers/NOPE", "/v1/loans/%zz", "/v1/nothing"] {
            targets.push(unknown.to_string());
        }
        for target in targets {
            checked += check(&doc, &tree, &target);
        }
    }
    assert!(checked > 100, "checked only {checked} answers");
}

/// Routes `target` and validates the answer against the document; returns 1.
fn check(doc: &Value, tree: &StoreTree, target: &str) -> usize {
    let (status, body) = projector::route(tree, "GET", target);
    assert!(status < 500, "{target}: {status} {body}");
    let path = target.split('?').next().unwrap();
    let template = projector::ROUTES.into_iter().find(|r| matches(r, path));
    let schema = match template {
        Some(template) => {
            let responses = &doc["paths"][template]["get"]["responses"];
            let response = responses.get(status.to_string()).unwrap_or_else(|| panic!("{target}: status {status} is not documented"));
            // The dashboard's page is a string (text/html); everything else is JSON.
            let media_type = if status == 200 { projector::media_type(target) } else { "application/json" };
            let media_type = media_type.split(';').next().unwrap();
            response["content"][media_type]["schema"].clone()
        }
        // An unknown path is answered with the error every operation documents.
        None => {
            assert_eq!(status, 404, "{target}");
            serde_json::json!({"$ref": "#/components/schemas/Error"})
        }
    };
    if let Err(why) = validate(doc, &schema, &body, "$") {
        panic!("{target}: {status} answer does not fit its schema: {why}\n{body:#}");
    }
    1
}

/// Whether a request path fits a route template (`{id}` is one non-empty segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| if *t == "{id}" { !p.is_empty() } else { t == p })
}

fn escape(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// The part of JSON Schema the document uses: $ref, type (one or a list), enum,
/// required, properties, additionalProperties: false, items, minimum, minLength and
/// the document's own patterns (money, dates, scores, ratios, rates, digests).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(Value::String(r)) = schema.get("$ref") {
        let target = resolve(doc, r).ok_or_else(|| format!("{at}: unresolved {r}"))?;
        return validate(doc, target, value, at);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: bad type {other}")),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !names.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not {names:?}"));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), value.as_i64()) {
        if n < min {
            return Err(format!("{at}: {n} < {min}"));
        }
    }
    if let Value::String(text) = value {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (text.chars().count() as u64) < min {
                return Err(format!("{at}: {text:?} is shorter than {min}"));
            }
        }
        if let Some(Value::String(pattern)) = schema.get("pattern") {
            if !fits_pattern(pattern, text) {
                return Err(format!("{at}: {text:?} does not match {pattern}"));
            }
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !map.contains_key(name) {
                return Err(format!("{at}: {name} is required"));
            }
        }
        for (name, v) in map {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: {name} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            validate(doc, s, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The document's patterns, checked by hand (no regex engine in this crate's tests).
fn fits_pattern(pattern: &str, text: &str) -> bool {
    let digits = |s: &str, n: Option<usize>| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && n.is_none_or(|n| s.len() == n);
    let decimal = |fraction: Option<usize>| match text.split_once('.') {
        Some((int, frac)) => digits(int, None) && digits(frac, fraction),
        None => false,
    };
    match pattern {
        r"^[0-9]+\.[0-9]{2}$" => decimal(Some(2)),
        r"^[0-9]+\.[0-9]{4}$" => decimal(Some(4)),
        r"^[0-9]+(\.[0-9]+)?$" => digits(text, None) || decimal(None),
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" => {
            let parts: Vec<&str> = text.split('-').collect();
            parts.len() == 3 && digits(parts[0], Some(4)) && digits(parts[1], Some(2)) && digits(parts[2], Some(2))
        }
        "^[0-9a-f]{64}$" => text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        other => panic!("a pattern this test does not know: {other}"),
    }
}
