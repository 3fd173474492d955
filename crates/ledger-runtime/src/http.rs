//! A small HTTP/1.1 server for the read models: GET requests in, JSON out (and the
//! operations dashboard's page at `/`), one request per connection. The routes are the
//! projector crate's (`projector::route`).

use std::net::SocketAddr;
use std::time::Duration;

use ledger_store::StoreTree;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::projection::Readiness;

/// The largest request head accepted.
const HEAD_BYTES_MAX: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` (the caller decides; `loanctl` defaults to 127.0.0.1).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` turns true.
/// Serves the read models of `tree`; while `ready` says they are not ready, every
/// route but /healthz answers 503 with the reason (never a part of the books).
pub async fn serve(listener: TcpListener, tree: StoreTree, ready: Readiness, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    accept(listener, Some((tree, ready)), shutdown).await
}

/// Serves only `/metrics` and `/healthz` until `shutdown` turns true: the HTTP port of
/// a process that runs services but no projector (`loanctl run SERVICE --http ADDR`).
pub async fn serve_metrics(listener: TcpListener, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    accept(listener, None, shutdown).await
}

/// Answers each connection in a task of its own until `shutdown` turns true.
async fn accept(listener: TcpListener, api: Option<(StoreTree, Readiness)>, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return Ok(());
                }
            }
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let api = api.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, api).await {
                        tracing::debug!(error = %e, "http connection ended");
                    }
                });
            }
        }
    }
}

/// The content type of `/metrics` (prometheus-client writes the OpenMetrics text format).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn answer(mut stream: TcpStream, api: Option<(StoreTree, Readiness)>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > HEAD_BYTES_MAX {
            return respond(&mut stream, 431, &serde_json::json!({"error": "request head too large"})).await;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    if target.split('?').next() == Some("/metrics") {
        let tree = api.as_ref().map(|(tree, _)| tree.clone());
        let text = tokio::task::spawn_blocking(move || {
            let portfolio = tree.and_then(|tree| projector::portfolio(&tree).ok()).map(|report| report.figures);
            crate::metrics::render(portfolio.as_ref())
        })
        .await
        .unwrap_or_else(|e| format!("# the metrics could not be rendered: {e}\n"));
        return respond_raw(&mut stream, 200, METRICS_CONTENT_TYPE, text.as_bytes()).await;
    }
    let Some((tree, ready)) = api else {
        return match target.split('?').next() {
            Some("/healthz") => respond(&mut stream, 200, &serde_json::json!({"status": "ok"})).await,
            _ => {
                let why = "this process serves /metrics and /healthz only: the read models are served where the projector runs";
                respond(&mut stream, 404, &serde_json::json!({ "error": why })).await
            }
        };
    };
    if let Some(why) = ready.not_ready().filter(|_| !projector::served_while_not_ready(&target)) {
        return respond(&mut stream, 503, &serde_json::json!({ "error": why })).await;
    }
    let media_type = projector::media_type(&target);
    let (status, body) = tokio::task::spawn_blocking(move || projector::route(&tree, &method, &target))
        .await
        .unwrap_or_else(|e| (500, serde_json::json!({"error": crate::error_chain(&e)})));
    match body {
        // A page (the dashboard) is a string to write out as it is; errors stay JSON.
        serde_json::Value::String(page) if status == 200 && media_type != "application/json" => {
            respond_raw(&mut stream, status, media_type, page.as_bytes()).await
        }
        body => respond(&mut stream, status, &body).await,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &serde_json::Value) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let body = serde_json::to_vec_pretty(body).unwrap_or_default();
    respond_with_reason(stream, status, reason, "application/json", &body).await
}

async fn respond_raw(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    respond_with_reason(stream, status, if status == 200 { "OK" } else { "Error" }, content_type, body).await
}

async fn respond_with_reason(stream: &mut TcpStream, status: u16, reason: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// GET `url` (http://host:port/path) and return the status and body: the client side,
/// for `loanctl export` and `loanctl digest`.
pub async fn get(url: &str) -> std::io::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Until the projector has caught up once, every route but /healthz is a 503 with
    /// the reason: never a part of the books.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_read_models_are_not_served_before_the_projector_caught_up() {
        let dir = std::env::temp_dir().join(format!("ledger-http-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ledger_store::Store::open(&dir).unwrap();
        let tree = store.tree("projector").unwrap();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let ready = Readiness::default();
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, tree, ready.clone(), stopped));

        let (status, body) = get(&format!("{base}/v1/export")).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("being rebuilt from loan.events"), "{body}");
        assert_eq!(get(&format!("{base}/healthz")).await.unwrap().0, 200);
        let (status, body) = get(&format!("{base}/metrics")).await.unwrap();
        assert_eq!(status, 200, "the metrics are served while not ready: {body}");
        assert!(body.contains("# EOF"), "{body}");
        let (status, body) = get(&format!("{base}/openapi.json")).await.unwrap();
        assert_eq!(status, 200, "the API's description is served while not ready: {body}");
        assert!(body.contains("\"openapi\": \"3.1"), "{body}");
        let (status, page) = get(&format!("{base}/")).await.unwrap();
        assert_eq!(status, 200, "the dashboard is served while not ready (it shows why): {page}");
        assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"), "{page}");

        ready.set(None);
        assert_eq!(get(&format!("{base}/v1/portfolio")).await.unwrap().0, 200);
        stop.send(true).unwrap();
        server.await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A process without the projector serves its metrics and /healthz, and says where
    /// the read models are for anything else.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_without_the_projector_serves_its_metrics_only() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve_metrics(listener, stopped));
        let (status, body) = get(&format!("{base}/metrics")).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("ledger_input_to_fact_seconds_count") && body.trim_end().ends_with("# EOF"), "{body}");
        assert_eq!(get(&format!("{base}/healthz")).await.unwrap().0, 200);
        let (status, body) = get(&format!("{base}/v1/export")).await.unwrap();
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("where the projector runs"), "{body}");
        stop.send(true).unwrap();
        server.await.unwrap().unwrap();
    }
}
