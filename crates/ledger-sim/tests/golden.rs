//! Golden scenarios: every tests/scenarios/NAME.jsonl at the repository root is run
//! through the fold and its whole export compared with NAME.expected.json (figures
//! checked by hand, see tests/scenarios/README.md).

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::{Discard, ProductConfig};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

#[test]
fn every_golden_scenario_reproduces_its_export() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(scenarios_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "jsonl")) {
        let text = std::fs::read_to_string(path).unwrap();
        let expected_path = path.with_extension("expected.json");
        let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
        let (ledger, _) = ledger_sim::run(&text, Arc::new(ProductConfig::default()), &mut Discard)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = serde_json::to_value(ledger.export()).unwrap();
        assert_eq!(got, expected, "{} differs from {}", path.display(), expected_path.display());
        checked += 1;
    }
    assert!(checked >= 8, "expected at least 8 golden scenarios, found {checked}");
}
