//! Log lines of the real binary, with standard error a pipe (as under a supervisor or a
//! log collector): `--log-format json` (here through LOANCTL_LOG_FORMAT) gives one JSON
//! object a line, and text has no terminal escape codes. `loanctl demo` logs without
//! any broker of ours (librdkafka's in-process mock cluster), so it is the command run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo's own lines for a person (not log lines): its progress and its report.
fn is_demo_prose(line: &str) -> bool {
    line.starts_with("loanctl demo:") || line.starts_with("              ")
}

/// Runs a small demo until it has fed everything (or 180 s), then stops it; returns
/// the lines of its standard error.
fn demo_stderr(args: &[&str], envs: &[(&str, &str)]) -> Vec<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_loanctl"));
    command
        .args(args)
        .args(["demo", "--merchants", "3", "--days", "2", "--http", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOANCTL_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child: Child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains("Ctrl-C ends the demo");
                out.push(line);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.iter().any(|l| l.contains("Ctrl-C ends the demo")), "the demo did not finish its feed:\n{}", out.join("\n"));
    out
}

#[test]
fn json_logs_are_one_object_a_line() {
    let lines = demo_stderr(&[], &[("LOANCTL_LOG_FORMAT", "json")]);
    let logs: Vec<&String> = lines.iter().filter(|l| !is_demo_prose(l)).collect();
    assert!(logs.len() >= 3, "expected log lines:\n{}", lines.join("\n"));
    for line in &logs {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        for key in ["timestamp", "level", "target"] {
            assert!(value.get(key).is_some(), "{key} missing in {line}");
        }
    }
    assert!(
        logs.iter().any(|l| l.contains("\"service\"") && l.contains("\"INFO\"")),
        "the services' fields are flattened into the object:\n{}",
        lines.join("\n")
    );
}

#[test]
fn text_logs_into_a_pipe_have_no_escape_codes() {
    let lines = demo_stderr(&["--log-format", "text"], &[]);
    assert!(lines.iter().any(|l| !is_demo_prose(l) && l.contains("INFO")), "expected log lines:\n{}", lines.join("\n"));
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
}
