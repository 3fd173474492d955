//! A generated portfolio (ledger-sim: 200 merchants, 120 days) spread over several
//! partitions of loan.events, projected in irregular interleaved batches with a restart
//! half-way: the rows give the fold's export and digest, the per-borrower and overdue
//! queries agree with the export, and every loan's statement leaves its loan.

mod common;

use common::{decide_all, spread, Driver, TempDir};
use ledger_core::export::{Export, LoanView};
use ledger_core::Bucket;
use ledger_sim::{generate, Profile, Rng};
use ledger_store::Store;

fn project(name: &str, seed: u64, partitions: usize, per_book: bool) {
    let (reference, facts) = decide_all(generate(&Profile::new(seed, 200, 120)));
    let expected = reference.export();
    // The simulation has to exercise what the rows model, or the test proves little.
    assert!(expected.loans.len() > 100, "seed {seed}: only {} loans", expected.loans.len());
    assert!(expected.loans.iter().any(|l| l.status == "SETTLED"), "seed {seed}");
    assert!(expected.loans.iter().any(|l| l.status == "ACTIVE" && l.dpd > 0), "seed {seed}: nothing overdue");
    assert!(expected.payments.iter().any(|p| p.status == "REJECTED"), "seed {seed}");

    let logs = spread(&facts, u32::try_from(partitions).unwrap());
    let total: usize = logs.iter().map(Vec::len).sum();
    let dir = TempDir::new(name);
    let mut rng = Rng::new(seed);
    let sizes =
        |rng: &mut Rng| -> Vec<usize> { (0..partitions).map(|_| usize::try_from(rng.below(60)).unwrap()).collect() };
    {
        let store = Store::open(&dir.0).unwrap();
        let mut driver = Driver::open(store.tree("projector").unwrap(), &logs, per_book);
        while driver.stored().iter().sum::<usize>() < total / 2 {
            let counts = sizes(&mut rng);
            driver.step(&logs, &counts, true);
        }
    }
    let store = Store::open(&dir.0).unwrap();
    let tree = store.tree("projector").unwrap();
    let mut driver = Driver::open(tree.clone(), &logs, per_book);
    assert!(driver.stored().iter().sum::<usize>() >= total / 2);
    while !driver.done(&logs) {
        let counts = sizes(&mut rng);
        driver.step(&logs, &counts, true);
    }
    // The last batch may have been empty for the rows; write the portfolio once more as
    // the runtime would after any change.
    tree.commit(&projector::portfolio_rows(&driver.ledger), &[]).unwrap();

    let context = format!("{name} (seed {seed}, {partitions} partitions)");
    assert_eq!(driver.ledger.export(), expected, "{context}: the partitioned fold");
    let from_rows = projector::export(&tree).unwrap();
    assert_exports_equal(&from_rows, &expected, &context);
    assert_eq!(projector::digest(&tree).unwrap(), reference.digest(), "{context}: digest");
    assert_eq!(projector::portfolio(&tree).unwrap(), reference.portfolio_report(), "{context}: portfolio report");
    assert_eq!(projector::business_date(&tree).unwrap(), reference.business_date());

    // Overdue queue: ACTIVE loans with DPD > 0, by bucket, then by id.
    let overdue = |bucket: Bucket| -> Vec<LoanView> {
        expected
            .loans
            .iter()
            .filter(|l| l.status == "ACTIVE" && l.dpd > 0 && l.bucket == bucket.as_str())
            .cloned()
            .collect()
    };
    let mut all = Vec::new();
    for bucket in [Bucket::M1, Bucket::M2, Bucket::M3, Bucket::Npl] {
        assert_eq!(projector::overdue(&tree, Some(bucket)).unwrap(), overdue(bucket), "{context}: {bucket:?}");
        all.extend(overdue(bucket));
    }
    assert!(!all.is_empty());
    assert_eq!(projector::overdue(&tree, None).unwrap(), all, "{context}: all overdue");

    // Every borrower with exactly its loans; every loan by id.
    for b in &expected.borrowers {
        let detail = projector::borrower(&tree, &b.borrower_id).unwrap();
        assert_eq!(&detail.borrower, b);
        let loans: Vec<LoanView> = expected.loans.iter().filter(|l| l.borrower_id == b.borrower_id).cloned().collect();
        assert_eq!(detail.loans, loans, "{context}: loans of {}", b.borrower_id);
    }
    for l in &expected.loans {
        assert_eq!(&projector::loan(&tree, &l.loan_id).unwrap(), l);
        // Statements are kept by a partitioned reader (changes_for_book) only; the query
        // refuses one whose fold does not leave the stored loan.
        if per_book {
            let history = projector::history(&tree, &l.loan_id).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(&history.loan, l, "{context}: the statement of {}", l.loan_id);
        }
    }
}

/// Compares list by list first, so that a failure names the part that differs.
fn assert_exports_equal(got: &Export, expected: &Export, context: &str) {
    assert_eq!(got.business_date, expected.business_date, "{context}: business_date");
    assert_eq!(got.loans.len(), expected.loans.len(), "{context}: loans");
    for (g, e) in got.loans.iter().zip(&expected.loans) {
        assert_eq!(g, e, "{context}: loan");
    }
    assert_eq!(got.borrowers, expected.borrowers, "{context}: borrowers");
    assert_eq!(got.applications, expected.applications, "{context}: applications");
    assert_eq!(got.payments, expected.payments, "{context}: payments");
    assert_eq!(got.collections_actions, expected.collections_actions, "{context}: collections_actions");
    assert_eq!(got.portfolio, expected.portfolio, "{context}: portfolio");
    assert_eq!(got, expected, "{context}");
}

#[test]
fn a_generated_portfolio_on_three_partitions() {
    project("sim-3", 7, 3, true);
}

#[test]
fn a_generated_portfolio_on_one_partition_whole_ledger_changes() {
    project("sim-1", 11, 1, false);
}

#[test]
fn a_generated_portfolio_on_four_partitions_whole_ledger_changes() {
    project("sim-4", 23, 4, false);
}
