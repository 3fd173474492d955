//! The project's scenarios (tests/scenarios/*.jsonl) run with every input, fact and
//! output passing through its protobuf bytes, as it does between the services: the
//! state must be the one the plain in-process run gives, and replaying the encoded
//! facts alone must rebuild it (SPEC section 9).

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::scenario::{self, parse_line};
use ledger_core::state::Derived;
use ledger_core::{Decision, Fact, Input, Ledger, Outcome, ProductConfig};
use ledger_proto::{decode, encode, from_bytes, loan_event, pb, to_bytes, FromProto, IntoProto, Output};

fn scenarios() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    files
        .into_iter()
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap()))
        .collect()
}

/// An input as the runtime would read it: from the bare message of its topic.
fn through_its_topic(input: &Input) -> Input {
    let read = match input {
        Input::Application(a) => from_bytes::<pb::LoanApplication, Input>(&to_bytes(a)),
        Input::Repayment(r) => from_bytes::<pb::Repayment, Input>(&to_bytes(r)),
        Input::Collections(c) => from_bytes::<pb::CollectionsAction, Input>(&to_bytes(c)),
        Input::MerchantUpdate(u) => from_bytes::<pb::MerchantUpdate, Input>(&to_bytes(u)),
        Input::Open { .. } | Input::CloseDay { .. } => from_bytes::<pb::LedgerInput, Input>(&to_bytes(input)),
    };
    read.unwrap_or_else(|e| panic!("{input:?} does not read back: {e}"))
}

fn through_bytes(derived: &Derived) -> Option<Derived> {
    let output = derived.into_proto()?;
    let bytes = output.encode();
    let decoded = match output {
        Output::Accrual(_) => Output::Accrual(decode(&bytes).unwrap()),
        Output::Collections(_) => Output::Collections(decode(&bytes).unwrap()),
        Output::Receipt(_) => Output::Receipt(decode(&bytes).unwrap()),
    };
    Some(Derived::from_proto(decoded).unwrap())
}

#[test]
fn scenarios_give_the_same_state_through_protobuf() {
    let config = Arc::new(ProductConfig::default());
    for (name, text) in scenarios() {
        let (plain, _) = scenario::run(&text, config.clone(), &mut Vec::new())
            .unwrap_or_else(|e| panic!("{name}: the plain run fails: {e}"));

        let mut live = Ledger::new(config.clone());
        let mut replay = Ledger::new(config.clone());
        let mut log: Vec<Vec<u8>> = Vec::new();
        let (mut outputs, mut published) = (0, 0);
        for (index, line) in text.lines().enumerate() {
            let Some(input) = parse_line(line).unwrap() else { continue };
            let read = through_its_topic(&input);
            assert_eq!(read, input, "{name}:{}: the input changed on the wire", index + 1);
            let Decision::Fact(fact) = live.decide(&read).unwrap() else { continue };

            let bytes = encode(&loan_event(&fact, format!("e{index}"), "scenario"));
            let fact_read = from_bytes::<pb::LoanEvent, Fact>(&bytes).unwrap();
            assert_eq!(fact_read, fact, "{name}:{}: the fact changed on the wire", index + 1);
            log.push(bytes);

            let mut derived = Vec::new();
            assert_eq!(live.apply(0, &fact_read, &mut derived), Outcome::Applied);
            for event in &derived {
                outputs += 1;
                if let Some(read) = through_bytes(event) {
                    published += 1;
                    assert_eq!(&read, event, "{name}:{}: an output changed on the wire", index + 1);
                }
            }
        }
        for bytes in &log {
            let fact: Fact = from_bytes::<pb::LoanEvent, Fact>(bytes).unwrap();
            replay.apply(0, &fact, &mut ledger_core::Discard);
        }
        assert_eq!(live.digest(), plain.digest(), "{name}: through protobuf differs from the plain run");
        assert_eq!(replay.digest(), plain.digest(), "{name}: replaying the encoded facts differs");
        assert!(published > 0 && outputs >= published, "{name}: published {published} of {outputs}");
    }
}
