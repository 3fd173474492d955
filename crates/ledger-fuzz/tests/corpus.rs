//! The fuzz targets over the corpus checked in under fuzz/corpus/<target>/ (the seeds
//! and what the fuzzer kept): the fallback that needs no special toolchain, run by
//! `cargo test --workspace`. A crash the fuzzer found is added to the corpus with its
//! fix, and stays a regression test here.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

#[test]
fn every_target_passes_over_its_checked_in_corpus() {
    let mut total = 0;
    for (name, target) in ledger_fuzz::TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 10, "{name}: only {} inputs in {}", files.len(), dir.display());
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name} fails on {}", file.display());
        }
        total += files.len();
    }
    eprintln!("{total} corpus inputs passed");
}
