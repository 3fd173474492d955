//! Every failure of a command is a non-zero exit and one line on standard error that
//! says what failed and what to do (no log lines before it, at the default log level,
//! and nothing on standard output): a broker nobody runs, missing files, an HTTP API
//! nobody serves, an unknown service, a command line clap refuses.

use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scenario(name: &str) -> String {
    format!("{}/../../tests/scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs loanctl with `args`; asserts the exit code and that standard error is exactly
/// one line, `loanctl: ...`, holding every one of `wanted`. Returns the line.
fn fails(args: &[&str], code: i32, wanted: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loanctl"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOANCTL_LOG_FORMAT")
        .env_remove("LEDGER_KAFKA_BROKERS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}\n{stderr}", out.status);
    assert!(out.stdout.is_empty(), "{args:?} printed on standard output: {}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line on standard error:\n{stderr}");
    assert!(lines[0].starts_with("loanctl: "), "{args:?}: {stderr}");
    for w in wanted {
        assert!(lines[0].contains(w), "{args:?}: {w:?} missing in {stderr}");
    }
    lines[0].to_string()
}

#[test]
fn feed_against_a_port_with_no_broker() {
    let brokers = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    fails(
        &["feed", "--brokers", &brokers, &scenario("spec-example.jsonl")],
        1,
        &[&format!("no broker of {brokers} answered within"), "start the broker or point --brokers (or LEDGER_KAFKA_BROKERS) at a running one"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "gave up only after {:?}", started.elapsed());
}

#[test]
fn missing_files_are_named_without_waiting_for_a_broker() {
    let brokers = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    fails(&["feed", "--brokers", &brokers, "/no/such/scenario.jsonl"], 1, &["reading /no/such/scenario.jsonl", "check the path"]);
    fails(&["simulate", "/no/such/scenario.jsonl"], 1, &["reading /no/such/scenario.jsonl", "check the path"]);
    fails(&["--config", "/no/such/product.toml", "config"], 1, &["reading /no/such/product.toml", "check the path"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a missing file took {:?}", started.elapsed());
}

#[test]
fn an_api_nobody_serves_and_an_unknown_service() {
    let api = format!("http://127.0.0.1:{}", free_port());
    fails(&["export", "--api", &api], 1, &["GET ", "/v1/export", "nothing answers there: start loanctl up"]);
    fails(&["digest", "--api", &api], 1, &["/v1/digest", "point --api at it"]);
    fails(&["run", "nosuch", "--data", "/tmp/unused", "--brokers", "127.0.0.1:1"], 1, &["no service \"nosuch\"; one of books, origination"]);
}

#[test]
fn a_command_line_clap_refuses_is_one_line_and_exit_code_2() {
    let line = fails(&["up"], 2, &["--data <DIR>", "Usage: loanctl up", "--help"]);
    assert!(!line.contains("error:"), "{line}");
    fails(&["frobnicate"], 2, &["unrecognized subcommand 'frobnicate'"]);
    fails(&["feed", "--wait-seconds", "soon", "x"], 2, &["invalid value 'soon'", "--wait-seconds"]);
}

#[test]
fn a_scenario_line_that_is_not_valid_names_its_line() {
    let dir = std::env::temp_dir().join(format!("loanctl-failures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.jsonl");
    std::fs::write(&file, "{\"type\":\"open\",\"date\":\"2026-01-01\"}\n{\"type\":\"repayment\",\"payment_id\":\"P1\"}\n").unwrap();
    fails(&["simulate", file.to_str().unwrap()], 1, &["line 2"]);
    let _ = std::fs::remove_dir_all(&dir);
}
