//! Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (files named
//! by content, so running it again adds nothing): valid messages of a generated
//! portfolio, the bad-input corpus, the golden scenarios' lines and random op streams.
//!
//!     cargo run -p ledger-fuzz --example seed_corpus

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger_core::handler::InputKind;
use ledger_core::{Discard, Input, Ledger, ProductConfig};
use ledger_proto::IntoProto;
use ledger_sim::{corpus, generate, Profile, Rng};

fn write(dir: &Path, data: &[u8]) {
    let name = format!("seed-{:016x}", data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)));
    std::fs::write(dir.join(name), data).unwrap();
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let dir = |name: &str| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let stream = generate(&Profile::new(3, 20, 40));
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let mut events = Vec::new();
    for (i, input) in stream.iter().enumerate().step_by(7) {
        let (name, bytes) = match input {
            Input::Application(a) => ("proto_application", ledger_proto::to_bytes(a)),
            Input::Repayment(r) => ("proto_repayment", ledger_proto::to_bytes(r)),
            Input::Collections(c) => ("proto_collections", ledger_proto::to_bytes(c)),
            Input::MerchantUpdate(u) => ("proto_merchant_update", ledger_proto::to_bytes(u)),
            _ => ("proto_ledger_input", ledger_proto::to_bytes(input)),
        };
        write(&dir(name), &bytes);
        if i % 3 == 0 {
            write(&dir("proto_ledger_input"), &ledger_proto::encode(&input.into_proto()));
        }
    }
    for input in &stream {
        if let Ok(ledger_core::Decision::Fact(fact)) = ledger_sim::decide(&ledger, input) {
            ledger.apply(0, &fact, &mut Discard);
            events.push(fact);
        }
    }
    for (i, fact) in events.iter().enumerate().step_by(5) {
        write(&dir("proto_loan_event"), &ledger_proto::encode(&ledger_proto::loan_event(fact, fact.key(), format!("t/0/{i}"))));
    }
    for m in corpus::generate(5, &ledger, 60) {
        let name = match m.kind {
            InputKind::Application => "proto_application",
            InputKind::Repayment => "proto_repayment",
            InputKind::Collections => "proto_collections",
            InputKind::MerchantUpdate => "proto_merchant_update",
        };
        write(&dir(name), &m.bytes);
    }
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    for entry in std::fs::read_dir(scenarios).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                write(&dir("scenario_line"), line.as_bytes());
            }
        }
    }
    let mut rng = Rng::new(1);
    for len in [0usize, 1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 4096, 4096, 8192, 8192, 16384] {
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write(&dir("fold"), &data);
    }
}
