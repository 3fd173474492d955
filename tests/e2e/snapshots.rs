//! Snapshots: the book writer writes one of each book it owns every few facts
//! (`LEDGER_SNAPSHOT_EVERY`) and at a planned stop; a start restores every book from
//! its latest snapshot and folds only the facts after it (the writer, the loan
//! indexes, and the projector's fold, which feeds the publishers, up to its rows and
//! to what they published). Killed twice mid-feed and
//! stopped once, the ledger restarts from its snapshots and ends where `loanctl
//! simulate` does: the same export and digest, a replay from offset 0 into empty
//! stores the same digest, every notice once.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Waits until `up`'s log (of this start) has a line with `text`; returns that line.
fn wait_for_log(data: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(Up::log_path(data)).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains(text)) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log of loanctl up:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn books_restored_from_their_snapshots_fold_on_to_the_ledger_simulate_gives() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("snapshots");
    let file = generated(work.path(), "snapshots", 23, 30, 60);
    let (expected, expected_digest) = simulate(&file);
    let data = work.path().join("data");
    let port = free_port();
    let envs = [("LEDGER_SNAPSHOT_EVERY".to_string(), "10".to_string())];
    let mut up = Some(Up::start_with(&brokers, &data, port, &[], &envs));
    let mut feeder = loanctl()
        .args(["feed", "--wait-seconds", "180", "--brokers", &brokers])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = line_count(&file);
    for third in 1..=2 {
        wait_for_facts(&brokers, lines * third / 3, &mut feeder);
        up.take().unwrap().kill();
        up = Some(Up::start_with(&brokers, &data, port, &[], &envs));
        let restored = wait_for_log(&data, "books restored from their snapshots");
        eprintln!("after kill {third}: {restored}");
    }
    assert!(feeder.wait().unwrap().success(), "feed failed");
    let api = up.as_ref().unwrap().api.clone();
    assert_eq!(export(&api), expected, "export after restarts from snapshots differs from loanctl simulate");
    assert_eq!(digest(&api), expected_digest);

    // A planned stop snapshots every book at its end: the next start folds no fact of
    // loan.events in the book writer.
    up.take().unwrap().stop();
    let up = Up::start_with(&brokers, &data, port, &[], &envs);
    let restored = wait_for_log(&data, "group=ledger-books-view books=3");
    eprintln!("after a stop: {restored}");
    // The projector restores too (its rows are stored up to the end, and each
    // publisher has published up to the end), and its fold feeds every publisher of
    // the process: none folds a partition itself.
    wait_for_log(&data, "group=ledger-projector-events books=3");
    let publisher = wait_for_log(&data, "partitions from the process's fold");
    eprintln!("a publisher: {publisher}");
    let log = std::fs::read_to_string(Up::log_path(&data)).unwrap();
    let fed: Vec<&str> = log.lines().filter(|l| l.contains("partitions from the process's fold")).collect();
    assert!(fed.iter().all(|l| l.contains("own=[]")), "a publisher folds a partition itself after a planned stop:\n{}", fed.join("\n"));
    let (_, metrics) = get_text(&up.api, "/metrics");
    let restored_books: f64 = metrics
        .lines()
        .find(|l| l.starts_with("ledger_snapshots_restored_total{outcome=\"restored\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no count of restored books in /metrics:\n{metrics}"));
    assert!(restored_books >= 6.0, "{restored_books} books restored");
    assert!(metrics.contains("ledger_snapshot_taken_timestamp_seconds{book=\"0\"}"), "no snapshot age of book 0");
    assert_eq!(export(&up.api), expected, "export after a start from snapshots differs");
    assert_eq!(digest(&up.api), expected_digest);
    assert_eq!(replay(&brokers, &work.path().join("replay")), expected_digest, "replay from offset 0");
    crate::assert_every_notice_once(&brokers, &file, &expected);
    up.stop();
}
