//! Every golden scenario (tests/scenarios/*.jsonl) folded into sled rows: the export
//! reassembled from the rows equals the fold's export and the golden file, and the
//! digest from the rows equals the fold's digest.

mod common;

use common::{decide_all, parse_scenario, scenarios_dir, Driver, TempDir};
use ledger_core::export::Export;
use ledger_core::Ledger;
use ledger_store::{Store, StoreTree};

fn golden() -> Vec<(String, String, serde_json::Value)> {
    let mut paths: Vec<_> = std::fs::read_dir(scenarios_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let out: Vec<_> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let expected = std::fs::read_to_string(path.with_extension("expected.json")).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, text, serde_json::from_str(&expected).unwrap())
        })
        .collect();
    assert!(out.len() >= 6, "expected at least 6 golden scenarios, found {}", out.len());
    out
}

/// The export without its portfolio (which is written once per batch, not per fact).
fn without_portfolio(mut e: Export, like: &Export) -> Export {
    e.portfolio = like.portfolio.clone();
    e
}

fn assert_rows_match(name: &str, tree: &StoreTree, ledger: &Ledger, expected: &serde_json::Value) {
    let from_rows = projector::export(tree).unwrap();
    assert_eq!(from_rows, ledger.export(), "{name}: export from rows differs from the fold's");
    assert_eq!(
        serde_json::to_value(&from_rows).unwrap(),
        *expected,
        "{name}: export from rows differs from the golden file"
    );
    assert_eq!(projector::digest(tree).unwrap(), ledger.digest(), "{name}: digest from rows differs from the fold's");
    assert_eq!(projector::portfolio(tree).unwrap(), ledger.portfolio_report(), "{name}: portfolio report");
}

#[test]
fn fact_by_fact_the_rows_follow_the_fold() {
    for (name, text, expected) in golden() {
        let (reference, facts) = decide_all(parse_scenario(&text));
        let dir = TempDir::new(&name);
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("projector").unwrap();
        let logs = vec![facts];
        let mut driver = Driver::open(tree.clone(), &logs, false);
        let mut n = 0;
        while !driver.done(&logs) {
            n += 1;
            // The portfolio row every third fact; every other row after every fact.
            let portfolio_fresh = n % 3 == 0;
            assert_eq!(driver.step(&logs, &[1], portfolio_fresh), 1);
            let expected_now = driver.ledger.export();
            let got = projector::export(&tree).unwrap();
            assert_eq!(without_portfolio(got.clone(), &expected_now), expected_now, "{name}: after fact {n}");
            if portfolio_fresh {
                assert_eq!(got, expected_now, "{name}: after fact {n}");
                assert_eq!(projector::digest(&tree).unwrap(), driver.ledger.digest(), "{name}: after fact {n}");
            }
        }
        driver.tree.commit(&projector::portfolio_rows(&driver.ledger), &[]).unwrap();
        assert_eq!(driver.ledger, reference);
        assert_rows_match(&name, &tree, &reference, &expected);
        assert_eq!(tree.positions().unwrap()[&(common::EVENTS.to_string(), 0)], i64::from(n));
    }
}

#[test]
fn in_batches_with_a_restart_the_rows_match() {
    for (name, text, expected) in golden() {
        let (reference, facts) = decide_all(parse_scenario(&text));
        let logs = vec![facts];
        let total = logs[0].len();
        for batch in [2usize, 7, 1000] {
            let dir = TempDir::new(&format!("{name}-{batch}"));
            // First run: half the log, in batches; rows are computed after the whole
            // batch was applied (as the runtime does), then the process "stops".
            {
                let store = Store::open(&dir.0).unwrap();
                let mut driver = Driver::open(store.tree("projector").unwrap(), &logs, false);
                while driver.stored()[0] < total / 2 {
                    driver.step(&logs, &[batch.min(total / 2 - driver.stored()[0])], true);
                }
            }
            // Second run: a new process re-folds what is stored, writes nothing for it,
            // and goes on from the stored position.
            let store = Store::open(&dir.0).unwrap();
            let tree = store.tree("projector").unwrap();
            let mut driver = Driver::open(tree.clone(), &logs, false);
            assert_eq!(driver.stored()[0], total / 2);
            while !driver.done(&logs) {
                driver.step(&logs, &[batch], true);
            }
            assert_rows_match(&format!("{name} (batches of {batch})"), &tree, &reference, &expected);
        }
    }
}
