//! Faults through the real broker (issue 10, item 4): a generated scenario of 10,000+
//! inputs fed through three ledgers (`loanctl up` three times, 6 partitions) while
//! random instances are SIGKILLed at random moments and started again, and the broker
//! restarts once. Then every instance's export equals `simulate`, a replay's digest
//! equals the live one, and every posting, notice and receipt is on its topic once by
//! id (copies only with the same bytes). The books are snapshotted every 300 facts,
//! so the restarted instances start from snapshots.
//!
//! `LEDGER_FAULT_KILLS` (default 20) and `LEDGER_FAULT_SEED` (default 7) set the run;
//! the long run is `LEDGER_FAULT_KILLS=100 cargo test -p loanctl --test e2e faults`
//! (RELIABILITY.md). The seed is printed, so a failing run can be repeated.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_kills_and_a_broker_restart_mid_feed_lose_nothing_and_double_nothing() {
    let kills = env_number("LEDGER_FAULT_KILLS", 20) as usize;
    let seed = env_number("LEDGER_FAULT_SEED", 7);
    eprintln!("faults: {kills} kills, seed {seed} (LEDGER_FAULT_KILLS, LEDGER_FAULT_SEED)");
    let broker = Broker::start();
    let brokers = broker.brokers();
    let work = TempDir::new("faults");
    let file = generated(work.path(), "faults", 31, 5_000, 60);
    let lines = line_count(&file);
    assert!(lines >= 10_000, "a scenario of 10,000+ inputs, not {lines}");
    let (expected, expected_digest) = simulate(&file);
    let six = vec!["--partitions".to_string(), "6".to_string()];
    // Snapshots every 300 facts of a book: the instances started again restore books
    // from snapshots taken by other instances, mid-feed, across rebalances.
    let snapshots = [("LEDGER_SNAPSHOT_EVERY".to_string(), "300".to_string())];
    let mut ledgers: Vec<(PathBuf, u16, Option<Up>)> = (0..3)
        .map(|i| {
            let data = work.path().join(format!("ledger-{i}"));
            let port = free_port();
            let up = Up::start_with(&brokers, &data, port, &six, &snapshots);
            (data, port, Some(up))
        })
        .collect();
    let mut feeder = loanctl()
        .args(["feed", "--wait-seconds", "300", "--brokers", &brokers])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("feed.log")).unwrap())
        .spawn()
        .unwrap();

    // A seeded xorshift: which instance, and how long to wait before the next kill.
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    let mut killed_mid_feed = 0;
    for kill in 0..kills {
        std::thread::sleep(Duration::from_millis(300 + next() % 1_700));
        if kill == kills / 2 {
            broker.restart();
        }
        let (data, port, up) = &mut ledgers[(next() % 3) as usize];
        up.take().unwrap().kill();
        if feeder.try_wait().unwrap().is_none() {
            killed_mid_feed += 1;
        }
        *up = Some(Up::start_with(&brokers, data, *port, &six, &snapshots));
    }
    let status = feeder.wait().unwrap();
    assert!(status.success(), "feed failed (seed {seed}): {}", std::fs::read_to_string(work.path().join("feed.log")).unwrap());
    eprintln!("faults: {kills} kills ({killed_mid_feed} while feed ran) and a broker restart; feed done after {:.0} s", started.elapsed().as_secs_f64());

    for (_, _, up) in &ledgers {
        let api = &up.as_ref().unwrap().api;
        // Each instance's projector reads the log on its own: let it reach the end.
        let deadline = Instant::now() + Duration::from_secs(120);
        while digest(api) != expected_digest && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(export(api), expected, "{api}: export differs from loanctl simulate (seed {seed})");
        assert_eq!(digest(api), expected_digest, "{api}: digest differs (seed {seed})");
    }
    assert_eq!(replay(&brokers, &work.path().join("replay")), expected_digest, "replay gives another digest (seed {seed})");
    super::assert_every_notice_once(&brokers, &file, &expected);
    for (_, _, up) in ledgers {
        up.unwrap().stop();
    }
}
