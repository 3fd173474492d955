//! Helpers shared by the projector's tests: temporary sled databases and the fold
//! driven fact by fact, as the runtime drives it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ledger_core::input::Input;
use ledger_core::scenario::parse_line;
use ledger_core::{Decision, Discard, Fact, Ledger, Outcome, ProductConfig};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("projector-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn config() -> Arc<ProductConfig> {
    Arc::new(ProductConfig::default())
}

pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// Decides and applies inputs one by one on a single partition, as
/// `ledger_core::scenario::run` does, keeping the facts.
pub fn decide_all(inputs: impl IntoIterator<Item = Input>) -> (Ledger, Vec<Fact>) {
    let mut ledger = Ledger::new(config());
    let mut facts = Vec::new();
    for (n, input) in inputs.into_iter().enumerate() {
        match ledger_sim::decide(&ledger, &input).unwrap_or_else(|e| panic!("input {n}: {e}")) {
            Decision::Seen(_) => {}
            Decision::Fact(fact) => {
                assert_eq!(ledger.apply(0, &fact, &mut Discard), Outcome::Applied, "input {n}");
                facts.push(fact);
            }
        }
    }
    (ledger, facts)
}

/// A scenario file's inputs.
pub fn parse_scenario(text: &str) -> Vec<Input> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1)))
        .collect()
}

/// The partition loan.events puts a fact on (FNV-1a of its key), or `None` for facts
/// that go to every partition.
pub fn partition_of(fact: &Fact, partitions: u32) -> Option<u32> {
    fact.partition_key()
        .map(|key| key.bytes().fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619)) % partitions)
}

/// loan.events as the services would have written it: one log per partition.
pub fn spread(facts: &[Fact], partitions: u32) -> Vec<Vec<Fact>> {
    let mut logs = vec![Vec::new(); partitions as usize];
    for fact in facts {
        match partition_of(fact, partitions) {
            Some(p) => logs[p as usize].push(fact.clone()),
            None => logs.iter_mut().for_each(|log| log.push(fact.clone())),
        }
    }
    logs
}

pub const EVENTS: &str = "loan.events";

/// Drives the projection as the runtime does: folds a batch of facts from each
/// partition's log into the ledger, then (with every fact of the batch applied) asks for
/// each fact's changed rows, adds the portfolio row, and commits them with the new
/// positions in one batch. On start it first re-folds every partition up to the stored
/// position without writing rows (the projector's precondition).
pub struct Driver {
    pub ledger: Ledger,
    pub tree: ledger_store::StoreTree,
    /// Next offset to fold, per partition.
    next: Vec<usize>,
    /// Next offset whose rows are not stored yet, per partition.
    stored: Vec<usize>,
    /// Use `changes_for_book` (a day close rewrites only its own book's loans).
    pub per_book: bool,
}

impl Driver {
    pub fn open(tree: ledger_store::StoreTree, logs: &[Vec<Fact>], per_book: bool) -> Driver {
        let partitions = logs.len();
        let mut stored = vec![0; partitions];
        for ((topic, p), offset) in tree.positions().unwrap() {
            assert_eq!(topic, EVENTS);
            stored[usize::try_from(p).unwrap()] = usize::try_from(offset).unwrap();
        }
        let mut ledger = Ledger::new(config());
        for (p, log) in logs.iter().enumerate() {
            for fact in &log[..stored[p]] {
                ledger.apply(u32::try_from(p).unwrap(), fact, &mut Discard);
            }
        }
        Driver { ledger, tree, next: stored.clone(), stored, per_book }
    }

    pub fn stored(&self) -> &[usize] {
        &self.stored
    }

    pub fn done(&self, logs: &[Vec<Fact>]) -> bool {
        self.next.iter().zip(logs).all(|(n, log)| *n == log.len())
    }

    /// Folds up to `counts[p]` facts of each partition `p`, commits, and returns how many
    /// facts it folded. `portfolio`: also write the portfolio row (when anything changed).
    pub fn step(&mut self, logs: &[Vec<Fact>], counts: &[usize], portfolio: bool) -> usize {
        let mut applied = Vec::new();
        for (p, log) in logs.iter().enumerate() {
            let start = self.next[p];
            let end = (start + counts[p]).min(log.len());
            for (offset, fact) in log.iter().enumerate().take(end).skip(start) {
                let partition = u32::try_from(p).unwrap();
                let outcome = self.ledger.apply(partition, fact, &mut Discard);
                assert!(!matches!(outcome, Outcome::Ignored(_)), "{outcome:?}: {fact:?}");
                applied.push((p, offset));
            }
            self.next[p] = end;
        }
        let mut changes = ledger_store::Changes::default();
        for &(p, offset) in &applied {
            if offset >= self.stored[p] {
                let fact = &logs[p][offset];
                changes.extend(if self.per_book {
                    projector::changes_for_book(&self.ledger, u32::try_from(p).unwrap(), i64::try_from(offset).unwrap(), fact)
                } else {
                    projector::changes_for(&self.ledger, fact)
                });
            }
        }
        if portfolio && !changes.is_empty() {
            changes.extend(projector::portfolio_rows(&self.ledger));
        }
        let positions: Vec<(&str, i32, i64)> = (0..logs.len())
            .filter(|&p| self.next[p] > self.stored[p])
            .map(|p| (EVENTS, i32::try_from(p).unwrap(), i64::try_from(self.next[p]).unwrap()))
            .collect();
        self.tree.commit(&changes, &positions).unwrap();
        for p in 0..logs.len() {
            self.stored[p] = self.stored[p].max(self.next[p]);
        }
        applied.len()
    }
}
