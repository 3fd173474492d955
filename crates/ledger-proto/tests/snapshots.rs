//! A book's snapshot is its state exactly: for every scenario of tests/scenarios and
//! at every position of its facts, a book folded to that position, written as a
//! snapshot, read back and folded on to the end is the book folded straight through,
//! and derives the same events on the way. A snapshot of another configuration, or
//! one that does not read or does not make a book, is refused with a reason.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::scenario::parse_line;
use ledger_core::state::Derived;
use ledger_core::{Decision, Fact, Ledger, ProductConfig};
use ledger_proto::pb;
use ledger_proto::snapshot::{decode_snapshot, encode_snapshot, SnapshotError, SnapshotMeta};

fn scenarios() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// The facts of a scenario, decided and applied in process.
fn facts_of(text: &str, config: &Arc<ProductConfig>) -> Vec<Fact> {
    let mut ledger = Ledger::new(config.clone());
    let mut facts = Vec::new();
    for line in text.lines() {
        let Some(input) = parse_line(line).unwrap() else {
            continue;
        };
        if let Ok(Decision::Fact(fact)) = ledger_sim::decide(&ledger, &input) {
            ledger.apply(0, &fact, &mut Vec::new());
            facts.push(fact);
        }
    }
    facts
}

fn meta(next_offset: usize) -> SnapshotMeta {
    SnapshotMeta {
        book: 0,
        next_offset: next_offset as i64,
        decided: vec![
            ("loan.applications".into(), 2, 41),
            ("payments.repayments".into(), 0, 7),
        ],
    }
}

#[test]
fn a_book_restored_from_its_snapshot_folds_on_exactly_as_the_book_itself() {
    let config = Arc::new(ProductConfig::default());
    for (name, text) in scenarios() {
        let facts = facts_of(&text, &config);
        let mut straight = Ledger::new(config.clone());
        let mut straight_derived: Vec<Vec<Derived>> = Vec::new();
        for fact in &facts {
            let mut derived = Vec::new();
            straight.apply(0, fact, &mut derived);
            straight_derived.push(derived);
        }
        let mut prefix = Ledger::new(config.clone());
        for k in 0..=facts.len() {
            if k > 0 {
                prefix.apply(0, &facts[k - 1], &mut Vec::new());
            }
            let book = prefix.books().get(&0).cloned().unwrap_or_default();
            let bytes = encode_snapshot(&book, &meta(k), &config);
            let (restored, read_meta) =
                decode_snapshot(&bytes, &config).unwrap_or_else(|e| panic!("{name}@{k}: {e}"));
            assert_eq!(read_meta, meta(k), "{name}@{k}");
            assert_eq!(restored, book, "{name}@{k}: the restored book differs");
            let mut resumed = Ledger::new(config.clone());
            resumed.restore_book(0, restored);
            for (i, fact) in facts.iter().enumerate().skip(k) {
                let mut derived = Vec::new();
                resumed.apply(0, fact, &mut derived);
                assert_eq!(
                    derived, straight_derived[i],
                    "{name}@{k}: fact {i} derives otherwise after a restore"
                );
            }
            assert_eq!(
                resumed.books().get(&0),
                straight.books().get(&0),
                "{name}@{k}: the folds part"
            );
        }
    }
}

#[test]
fn a_snapshot_of_another_configuration_or_that_does_not_make_a_book_is_refused() {
    let config = Arc::new(ProductConfig::default());
    let (_, text) = scenarios()
        .into_iter()
        .find(|(_, t)| t.contains("REPAYMENT") || t.len() > 2000)
        .expect("a scenario");
    let facts = facts_of(&text, &config);
    let mut ledger = Ledger::new(config.clone());
    for fact in &facts {
        ledger.apply(0, fact, &mut Vec::new());
    }
    let book = ledger.books()[&0].clone();
    assert!(!book.loans().is_empty(), "the scenario lends");
    let bytes = encode_snapshot(&book, &meta(facts.len()), &config);

    let mut other = ProductConfig::default();
    other.penalty_multiplier += rust_decimal::Decimal::ONE;
    match decode_snapshot(&bytes, &other) {
        Err(SnapshotError::Unusable(why)) => {
            assert!(why.contains("another product configuration"), "{why}")
        }
        other => panic!("a snapshot of another configuration was read: {other:?}"),
    }
    assert!(matches!(
        decode_snapshot(b"\xff\xff\xff", &config),
        Err(SnapshotError::Proto(_))
    ));

    let mut message: pb::BookSnapshot = ledger_proto::decode(&bytes).unwrap();
    message.format = 2;
    assert!(matches!(
        decode_snapshot(&ledger_proto::encode(&message), &config),
        Err(SnapshotError::Unusable(_))
    ));
    message.format = 1;
    let first = message.loans[0].clone();
    message.loans.push(first);
    match decode_snapshot(&ledger_proto::encode(&message), &config) {
        Err(SnapshotError::Parts(e)) => assert!(e.to_string().contains("twice"), "{e}"),
        other => panic!("a book with a loan twice was read: {other:?}"),
    }
    message.loans.pop();
    message.loans[0].principal_repaid = "0.01".into();
    message.loans[0].principal_outstanding = message.loans[0].principal.clone();
    match decode_snapshot(&ledger_proto::encode(&message), &config) {
        Err(SnapshotError::Parts(e)) => {
            assert!(e.to_string().contains("principal conserved"), "{e}")
        }
        other => panic!("a loan that breaks an invariant was read: {other:?}"),
    }
}
