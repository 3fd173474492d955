//! The HTTP API's routes, without HTTP: a method and a request target in, a status and
//! a JSON body out. The runtime owns the sockets.
//!
//! | route | body |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok"}` |
//! | `GET /v1/export` | the canonical export (SPEC section 11) |
//! | `GET /v1/digest` | `{"digest": "<sha-256 hex>"}` |
//! | `GET /v1/loans/{id}` | the loan's view |
//! | `GET /v1/borrowers/{id}` | the borrower's view plus `"loans"`: its loans' views |
//! | `GET /v1/portfolio` | the portfolio report |
//! | `GET /v1/overdue[?bucket=M1\|M2\|M3\|NPL]` | `{"bucket", "count", "loans"}` |
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

enum Endpoint {
    Health,
    Export,
    Digest,
    Loan(String),
    Borrower(String),
    Portfolio,
    Overdue,
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
        Endpoint::Health => Ok(json!({"status": "ok"})),
        Endpoint::Export => query::export(tree).map(to_json),
        Endpoint::Digest => query::digest(tree).map(|digest| json!({ "digest": digest })),
        Endpoint::Loan(id) => query::loan(tree, &id).map(to_json),
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
        "/healthz" => Endpoint::Health,
        "/v1/export" => Endpoint::Export,
        "/v1/digest" => Endpoint::Digest,
        "/v1/portfolio" => Endpoint::Portfolio,
        "/v1/overdue" => Endpoint::Overdue,
        _ => {
            if let Some(rest) = path.strip_prefix("/v1/loans/") {
                Endpoint::Loan(id(rest)?)
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
    use super::percent_decode;

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
