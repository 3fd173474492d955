//! The broker restarted in the middle of a feed: `feed` and every service of
//! `loanctl up` ride it out (librdkafka reconnects and re-sends, the ledger asks again
//! after transient answers) and the result is the one `loanctl simulate` gives.

use std::process::Stdio;
use std::time::Instant;

use crate::harness::*;

#[test]
fn a_broker_restart_mid_feed_changes_nothing() {
    let broker = Broker::start();
    let work = TempDir::new("broker-restart");
    let file = generated(work.path(), "restart", 17, 30, 60);
    let (expected, expected_digest) = simulate(&file);
    let up = Up::start(&broker.brokers(), &work.path().join("data"), free_port());
    let mut feeder = loanctl()
        .args(["feed", "--wait-seconds", "180", "--brokers", &broker.brokers()])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("feed.log")).unwrap())
        .spawn()
        .unwrap();
    // A third of the way through the feed (by facts on loan.events).
    wait_for_facts(&broker.brokers(), line_count(&file) / 3, &mut feeder);
    let restarted = Instant::now();
    broker.restart();
    eprintln!("broker restarted in {:?}", restarted.elapsed());

    let status = feeder.wait().unwrap();
    let feed_log = std::fs::read_to_string(work.path().join("feed.log")).unwrap_or_default();
    let up_log = std::fs::read_to_string(Up::log_path(&work.path().join("data"))).unwrap_or_default();
    let tail = |text: &str| text.lines().filter(|l| !l.contains("librdkafka")).rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(status.success(), "feed did not survive the broker restart:\n{}\n--- loanctl up:\n{}", tail(&feed_log), tail(&up_log));
    assert_eq!(export(&up.api), expected, "export after a broker restart differs from loanctl simulate");
    assert_eq!(digest(&up.api), expected_digest);
    assert_eq!(replay(&broker.brokers(), &work.path().join("replay")), expected_digest, "replay after the restart");
    up.stop();
}
