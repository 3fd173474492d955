//! A loan's history and payoff from the rows: for every loan of every golden scenario,
//! spread over three partitions and projected in batches with a restart, the statement
//! the rows give is the one ledger-core folds from the whole log (whose sums the core's
//! tests hold to the export), and it leaves the export's loan.

mod common;

use common::{config, decide_all, parse_scenario, scenarios_dir, spread, Driver, TempDir};
use ledger_core::statement::{payoff, statement};
use ledger_store::Store;

#[test]
fn every_loan_history_from_the_rows_is_the_fold_of_its_facts() {
    let mut loans = 0;
    for path in std::fs::read_dir(scenarios_dir()).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (reference, facts) = decide_all(parse_scenario(&std::fs::read_to_string(&path).unwrap()));
        let dir = TempDir::new(&name);
        let store = Store::open(&dir.0).unwrap();
        let logs = spread(&facts, 3);
        let mut driver = Driver::open(store.tree("projector").unwrap(), &logs, true);
        driver.step(&logs, &[4, 2, 1], true);
        // A restart: the fold is rebuilt up to the stored positions, and goes on.
        let mut driver = Driver::open(driver.tree.clone(), &logs, true);
        while !driver.done(&logs) {
            driver.step(&logs, &[3, 5, 2], true);
        }
        let tree = &driver.tree;
        for expected in reference.export().loans {
            let context = format!("{name}: loan {}", expected.loan_id);
            let folded = statement(&config(), &expected.loan_id, &facts).unwrap();
            let history = projector::history(tree, &expected.loan_id).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(history.loan, expected, "{context}");
            assert_eq!(history.entries, folded.entries, "{context}: entries from the rows");
            assert_eq!(Some(history.business_date), reference.business_date(), "{context}");
            let from_rows = projector::payoff(tree, &expected.loan_id).unwrap();
            assert_eq!(from_rows, payoff(&folded.loan, folded.business_date), "{context}: payoff");
            loans += 1;
        }
        assert!(matches!(projector::history(tree, "NOPE"), Err(projector::QueryError::NotFound { .. })));
    }
    assert!(loans >= 20, "{loans} loans");
}
