//! The HTTP API's routes, without HTTP: a method and a request target in, a status and
//! a JSON body out. The runtime owns the sockets.
//!
//! | route | body |
//! |---|---|
//! | `GET /` | the operations dashboard: one HTML page ([`DASHBOARD`]), a JSON string here |
//! | `GET /healthz` | `{"status":"ok"}` |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of these routes ([`OPENAPI`]) |
//! | `GET /v1/export` | the canonical export (SPEC section 11) |
//! | `GET /v1/digest` | `{"digest": "<sha-256 hex>"}` |
//! | `GET /v1/loans/{id}` | the loan's view |
//! | `GET /v1/loans/{id}/history` | the loan's statement: every entry, running balances |
//! | `GET /v1/loans/{id}/payoff` | what settles the loan on the open business date |
//! | `GET /v1/borrowers/{id}` | the borrower's view plus `"loans"`: its loans' views |
//! | `GET /v1/portfolio` | the portfolio report |
//! | `GET /v1/overdue[?bucket=M1\|M2\|M3\|NPL]` | `{"bucket", "count", "loans"}` |
//!
//! Every body is JSON (`application/json`) but the dashboard's, a string that the server
//! writes out as it is with [`media_type`]'s `text/html`.
//!
//! Ids in paths are percent-decoded (`%2F` is a '/' inside an id; '+' is a plus).
//! Errors are `{"error": "..."}`: 400 a malformed request (bad escape, unknown bucket),
//! 404 an unknown path or id (`loan X not found`), 405 a method other than GET on a
//! known path, 500 a store failure, 503 a whole-state read that kept overlapping
//! commits.

use ledger_core::Bucket;
use ledger_store::StoreTree;
use serde_json::{json, Value};

use crate::query::{self, QueryError};

/// The OpenAPI 3.1 document of the routes (checked in beside this crate's Cargo.toml;
/// a test holds it to [`ROUTES`] and the responses to its schemas).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The operations dashboard (issue 9): one page, its style sheet and script inline,
/// that reads the JSON routes below from the browser. It computes no money: every
/// figure it shows is a string of an answer (the chart's bar heights excepted).
pub const DASHBOARD: &str = concat!(
    include_str!("../dashboard/index.html"),
    "<style>\n",
    include_str!("../dashboard/dashboard.css"),
    "</style>\n<script>\n",
    include_str!("../dashboard/dashboard.js"),
    "</script>\n</body>\n</html>\n",
);

/// Every route, as the OpenAPI document names its path (`{id}` for an id).
pub const ROUTES: [&str; 11] = [
    "/",
    "/healthz",
    "/openapi.json",
    "/v1/export",
    "/v1/digest",
    "/v1/loans/{id}",
    "/v1/loans/{id}/history",
    "/v1/loans/{id}/payoff",
    "/v1/borrowers/{id}",
    "/v1/portfolio",
    "/v1/overdue",
];

#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Dashboard,
    Health,
    OpenApi,
    Export,
    Digest,
    Loan(String),
    History(String),
    Payoff(String),
    Borrower(String),
    Portfolio,
    Overdue,
}

impl Endpoint {
    /// Its entry of [`ROUTES`] (what the tests hold the table and the router to).
    #[cfg(test)]
    fn route(&self) -> &'static str {
        match self {
            Endpoint::Dashboard => "/",
            Endpoint::Health => "/healthz",
            Endpoint::OpenApi => "/openapi.json",
            Endpoint::Export => "/v1/export",
            Endpoint::Digest => "/v1/digest",
            Endpoint::Loan(_) => "/v1/loans/{id}",
            Endpoint::History(_) => "/v1/loans/{id}/history",
            Endpoint::Payoff(_) => "/v1/loans/{id}/payoff",
            Endpoint::Borrower(_) => "/v1/borrowers/{id}",
            Endpoint::Portfolio => "/v1/portfolio",
            Endpoint::Overdue => "/v1/overdue",
        }
    }
}

/// Whether a request target is answered while the read models are not ready (they
/// are not read): the health check, the API's description and the dashboard (which
/// then shows the reason the API gives).
pub fn served_while_not_ready(path_and_query: &str) -> bool {
    matches!(endpoint(path_of(path_and_query)), Ok(Endpoint::Health | Endpoint::OpenApi | Endpoint::Dashboard))
}

/// The media type of a successful answer to the request target: `text/html` for the
/// dashboard (whose body [`route`] gives as a JSON string, to be written out as it is),
/// `application/json` for every other route and for every error.
pub fn media_type(path_and_query: &str) -> &'static str {
    match endpoint(path_of(path_and_query)) {
        Ok(Endpoint::Dashboard) => "text/html; charset=utf-8",
        _ => "application/json",
    }
}

fn path_of(path_and_query: &str) -> &str {
    path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path)
}

/// Answers one request. `path_and_query` is the request target (`/v1/overdue?bucket=M1`).
pub fn route(tree: &StoreTree, method: &str, path_and_query: &str) -> (u16, Value) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_and_query, ""),
    };
    let endpoint = match endpoint(path) {
        Ok(endpoint) => endpoint,
        Err(response) => return response,
    };
    if method != "GET" {
        return error(405, format!("method {method} is not allowed on {path}: use GET"));
    }
    let result = match endpoint {
        Endpoint::Dashboard => Ok(Value::String(DASHBOARD.to_string())),
        Endpoint::Health => Ok(json!({"status": "ok"})),
        Endpoint::OpenApi => Ok(serde_json::from_str(OPENAPI).expect("the OpenAPI document is JSON")),
        Endpoint::Export => query::export(tree).map(to_json),
        Endpoint::Digest => query::digest(tree).map(|digest| json!({ "digest": digest })),
        Endpoint::Loan(id) => query::loan(tree, &id).map(to_json),
        Endpoint::History(id) => query::history(tree, &id).map(to_json),
        Endpoint::Payoff(id) => query::payoff(tree, &id).map(to_json),
        Endpoint::Borrower(id) => query::borrower(tree, &id).map(to_json),
        Endpoint::Portfolio => query::portfolio(tree).map(to_json),
        Endpoint::Overdue => {
            let bucket = match bucket_param(query) {
                Ok(bucket) => bucket,
                Err(response) => return response,
            };
            query::overdue(tree, bucket)
                .map(|loans| json!({ "bucket": bucket.map(Bucket::as_str), "count": loans.len(), "loans": loans }))
        }
    };
    match result {
        Ok(body) => (200, body),
        Err(e) => {
            let status = match e {
                QueryError::NotFound { .. } => 404,
                QueryError::Busy(_) => 503,
                QueryError::Store(_) | QueryError::Corrupt { .. } => 500,
            };
            error(status, e.to_string())
        }
    }
}

fn endpoint(path: &str) -> Result<Endpoint, (u16, Value)> {
    let id = |rest: &str| -> Result<String, (u16, Value)> {
        if rest.is_empty() || rest.contains('/') {
            return Err(no_such_path(path));
        }
        percent_decode(rest).map_err(|why| error(400, format!("bad id in {path}: {why}")))
    };
    Ok(match path {
        "/" => Endpoint::Dashboard,
        "/healthz" => Endpoint::Health,
        "/openapi.json" => Endpoint::OpenApi,
        "/v1/export" => Endpoint::Export,
        "/v1/digest" => Endpoint::Digest,
        "/v1/portfolio" => Endpoint::Portfolio,
        "/v1/overdue" => Endpoint::Overdue,
        _ => {
            if let Some(rest) = path.strip_prefix("/v1/loans/") {
                match rest.split_once('/') {
                    None => Endpoint::Loan(id(rest)?),
                    Some((loan, "history")) => Endpoint::History(id(loan)?),
                    Some((loan, "payoff")) => Endpoint::Payoff(id(loan)?),
                    Some(_) => return Err(no_such_path(path)),
                }
            } else if let Some(rest) = path.strip_prefix("/v1/borrowers/") {
                Endpoint::Borrower(id(rest)?)
            } else {
                return Err(no_such_path(path));
            }
        }
    })
}

/// The `bucket` query parameter: absent or empty for every overdue bucket.
fn bucket_param(query: &str) -> Result<Option<Bucket>, (u16, Value)> {
    let mut bucket = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "bucket" {
            continue;
        }
        let value = percent_decode(value).map_err(|why| error(400, format!("bad bucket parameter: {why}")))?;
        if value.is_empty() {
            continue;
        }
        match Bucket::parse(&value).filter(|b| *b != Bucket::Current) {
            Some(b) => bucket = Some(b),
            None => return Err(error(400, format!("unknown bucket {value:?}: use M1, M2, M3 or NPL"))),
        }
    }
    Ok(bucket)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let byte = hex
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                .ok_or_else(|| format!("{text:?} has a '%' not followed by two hex digits"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

fn to_json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).expect("views serialize")
}

fn error(status: u16, message: String) -> (u16, Value) {
    (status, json!({ "error": message }))
}

fn no_such_path(path: &str) -> (u16, Value) {
    error(404, format!("no such endpoint: {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of ROUTES, its `{id}` filled in, is routed to the endpoint that names
    /// it (so the table is the router's), ids with an escaped '/' included.
    #[test]
    fn every_route_of_the_table_is_routed_to_itself() {
        for route in ROUTES {
            for id in ["A1", "A%2F1", "%E5%80%9F"] {
                let path = route.replace("{id}", id);
                let endpoint = endpoint(&path).unwrap_or_else(|(status, body)| panic!("{path}: {status} {body}"));
                assert_eq!(endpoint.route(), route, "{path}");
            }
        }
        for path in ["/v1/loans/A1/other", "/v1/loans/A1/history/x", "/v1/loans//history", "/v1/loans/", "/v2/export"] {
            assert_eq!(endpoint(path).unwrap_err().0, 404, "{path}");
        }
        assert!(served_while_not_ready("/healthz") && served_while_not_ready("/openapi.json?x=1"));
        assert!(!served_while_not_ready("/v1/export") && !served_while_not_ready("/healthzz"));
        assert!(served_while_not_ready("/?refresh=1"));
        assert_eq!(media_type("/"), "text/html; charset=utf-8");
        assert_eq!(media_type("/v1/portfolio"), "application/json");
        assert_eq!(media_type("/nowhere"), "application/json");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("A1").unwrap(), "A1");
        assert_eq!(percent_decode("A%201%2Fx").unwrap(), "A 1/x");
        assert_eq!(percent_decode("%E5%80%9F+").unwrap(), "借+");
        assert_eq!(percent_decode("%e5%80%9f").unwrap(), "借");
        assert!(percent_decode("A%2").is_err());
        assert!(percent_decode("A%zz").is_err());
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%FF").is_err());
    }
}
