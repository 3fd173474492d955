//! The project's scenarios (tests/scenarios/*.jsonl) run with every input, fact and
//! output passing through its protobuf bytes, as it does between the services: the
//! state must be the one the plain in-process run gives, and replaying the encoded
//! facts alone must rebuild it (SPEC section 9), down to the verdict on every re-used id
//! (DUPLICATE or ID_CONFLICT), which a restarted service reaches from the log alone.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_core::scenario::parse_line;
use ledger_core::state::Derived;
use ledger_core::{Decision, Fact, Input, Ledger, Outcome, ProductConfig, Seen};
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
        let (plain, _) = ledger_sim::run(&text, config.clone(), &mut Vec::new())
            .unwrap_or_else(|e| panic!("{name}: the plain run fails: {e}"));

        let mut live = Ledger::new(config.clone());
        let mut replay = Ledger::new(config.clone());
        let mut log: Vec<Vec<u8>> = Vec::new();
        let (mut outputs, mut published) = (0, 0);
        // Every keyed input with the verdict a later copy of it gets, or got.
        let mut verdicts: Vec<(usize, Input, Decision)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let Some(input) = parse_line(line).unwrap() else { continue };
            let read = through_its_topic(&input);
            assert_eq!(read, input, "{name}:{}: the input changed on the wire", index + 1);
            let keyed = !matches!(read, Input::Open { .. } | Input::CloseDay { .. });
            let fact = match ledger_sim::decide(&live, &read).unwrap() {
                Decision::Fact(fact) => fact,
                seen => {
                    verdicts.push((index + 1, read, seen));
                    continue;
                }
            };
            if keyed {
                verdicts.push((index + 1, read.clone(), Decision::Seen(Seen::Duplicate)));
            }

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
        for (line, input, verdict) in &verdicts {
            assert_eq!(&ledger_sim::decide(&replay, input).unwrap(), verdict, "{name}:{line}: the replayed facts judge this id otherwise");
        }
        assert!(published > 0 && outputs >= published, "{name}: published {published} of {outputs}");
    }
}

/// Two messages that differ only in their protobuf layout (fields in another order, a
/// default written out) decode to the same input: the same content, so a DUPLICATE. A
/// figure written "0.50" instead of "0.5" is the same figure.
#[test]
fn inputs_that_differ_only_in_layout_are_duplicates() {
    let config = Arc::new(ProductConfig::default());
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/spec-example.jsonl")).unwrap();
    let (ledger, _) = ledger_sim::run(&text, config, &mut ledger_core::Discard).unwrap();

    let payment = pb::Repayment { payment_id: "P1".into(), loan_id: "A1".into(), amount: "100.00".into(), currency: String::new() };
    let single = |m: pb::Repayment| encode(&m);
    let mut shuffled = single(pb::Repayment { amount: payment.amount.clone(), ..Default::default() });
    shuffled.extend(single(pb::Repayment { loan_id: payment.loan_id.clone(), ..Default::default() }));
    shuffled.extend(single(pb::Repayment { payment_id: payment.payment_id.clone(), ..Default::default() }));
    shuffled.extend([0x22, 0x00]); // field 4 (currency), written out empty
    assert_ne!(shuffled, encode(&payment));
    let (first, again) = (
        from_bytes::<pb::Repayment, Input>(&encode(&payment)).unwrap(),
        from_bytes::<pb::Repayment, Input>(&shuffled).unwrap(),
    );
    assert_eq!(again, first);
    assert_eq!(ledger_sim::decide(&ledger, &again).unwrap(), Decision::Seen(Seen::Duplicate));
    let elsewhere = pb::Repayment { loan_id: "A2".into(), ..payment };
    assert_eq!(ledger_sim::decide(&ledger, &Input::from_proto(elsewhere).unwrap()).unwrap(), Decision::Seen(Seen::IdConflict));

    let Input::Application(a1) = parse_line(text.lines().nth(1).unwrap()).unwrap().unwrap() else { panic!("line 2 is A1") };
    let mut message = a1.into_proto();
    let merchant = message.merchant.as_mut().unwrap();
    assert_eq!(merchant.sales_growth.as_deref(), Some("0.30"));
    merchant.sales_growth = Some("0.3".into());
    assert_eq!(ledger_sim::decide(&ledger, &Input::from_proto(message.clone()).unwrap()).unwrap(), Decision::Seen(Seen::Duplicate));
    message.borrower_id = "B2".into();
    assert_eq!(ledger_sim::decide(&ledger, &Input::from_proto(message).unwrap()).unwrap(), Decision::Seen(Seen::IdConflict));
}
