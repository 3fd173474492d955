//! SPEC section 9's idempotency keys, one example per rule: an id (application = loan,
//! payment, action, update) is global across the ledger; the first input with it
//! counts; a later one changes nothing and is judged DUPLICATE (the same content) or
//! ID_CONFLICT (other content), whichever borrower, loan or book it names, and whatever
//! became of the first (a refused input uses its id up too).

use std::sync::Arc;

use ledger_core::export::Export;
use ledger_core::scenario::parse_line;
use ledger_sim::run;
use ledger_core::{Decision, Discard, Fact, Ledger, ProductConfig, Seen};

mod common;
use common::*;

const TOP_MERCHANT: &str = r#"{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}"#;

fn credit(id: &str, borrower: &str, amount: &str) -> String {
    credit_with(id, borrower, amount, 30, TOP_MERCHANT)
}

fn order(id: &str, borrower: &str, amount: &str, orders: &[(&str, &str)]) -> String {
    let list: Vec<String> = orders.iter().map(|(o, a)| format!(r#"{{"order_id":"{o}","amount":"{a}"}}"#)).collect();
    format!(
        r#"{{"type":"application","application_id":"{id}","borrower_id":"{borrower}","product":"ORDER","amount":"{amount}","term_days":30,"orders":[{}],"merchant":{TOP_MERCHANT}}}"#,
        list.join(",")
    )
}

fn action(id: &str, kind: &str, field: &str, target: &str) -> String {
    format!(r#"{{"type":"collections_action","action_id":"{id}","action":"{kind}","{field}":"{target}"}}"#)
}

fn update(id: &str, borrower: &str, merchant: &str) -> String {
    format!(r#"{{"type":"merchant_update","update_id":"{id}","borrower_id":"{borrower}","merchant":{merchant}}}"#)
}

/// Two borrowers with a loan each; a refused input of every kind.
fn base() -> Vec<String> {
    vec![
        open("2026-01-01"),
        credit("A1", "B1", "1000.00"),
        order("A2", "B2", "900.00", &[("O1", "500.00"), ("O2", "400.00")]),
        // Rejected: above the product maximum. Its id is used up all the same.
        credit("A3", "B3", "500000.01"),
        pay("P1", "A1", "100.00"),
        pay("PX", "NOPE", "5.00"),
        action("C1", "REINSTATE", "borrower_id", "B1"),
        action("C2", "WRITE_OFF", "loan_id", "A1"),
        update("U1", "B1", TOP_MERCHANT),
        update("UX", "B9", TOP_MERCHANT),
    ]
}

fn ledger(lines: &[String]) -> Ledger {
    run(&lines.join("\n"), Arc::new(ProductConfig::default()), &mut Discard).unwrap_or_else(|e| panic!("{e}")).0
}

fn export(lines: &[String]) -> Export {
    ledger(lines).export()
}

fn verdict(ledger: &Ledger, line: &str) -> Decision {
    let input = parse_line(line).unwrap().unwrap();
    ledger_sim::decide(ledger, &input).unwrap_or_else(|e| panic!("{line}: {e}"))
}

const DUPLICATE: Decision = Decision::Seen(Seen::Duplicate);
const ID_CONFLICT: Decision = Decision::Seen(Seen::IdConflict);

/// Later inputs with a seen id: the verdict each gets.
fn re_used() -> Vec<(String, Decision)> {
    let growth_as_text = TOP_MERCHANT.replace(r#""sales_growth":"0.5""#, r#""sales_growth":"0.50""#);
    let growth_as_number = TOP_MERCHANT.replace(r#""sales_growth":"0.5""#, r#""sales_growth":0.5"#);
    let weak = TOP_MERCHANT.replace(r#""seller_rating":5"#, r#""seller_rating":1"#);
    vec![
        // Applications: the same line; the same figures written otherwise (they decode to
        // the same values); another borrower; another amount; orders in another order.
        (credit("A1", "B1", "1000.00"), DUPLICATE),
        (credit_with("A1", "B1", "1000.00", 30, &growth_as_text), DUPLICATE),
        (credit_with("A1", "B1", "1000.00", 30, &growth_as_number), DUPLICATE),
        (credit("A1", "B2", "1000.00"), ID_CONFLICT),
        (credit("A1", "B9", "1000.00"), ID_CONFLICT),
        (credit("A1", "B1", "1000.01"), ID_CONFLICT),
        (credit_with("A1", "B1", "1000.00", 31, TOP_MERCHANT), ID_CONFLICT),
        (credit_with("A1", "B1", "1000.00", 30, &weak), ID_CONFLICT),
        (order("A2", "B2", "900.00", &[("O1", "500.00"), ("O2", "400.00")]), DUPLICATE),
        (order("A2", "B2", "900.00", &[("O2", "400.00"), ("O1", "500.00")]), ID_CONFLICT),
        (order("A2", "B2", "900.00", &[("O1", "500.00"), ("O3", "400.00")]), ID_CONFLICT),
        (credit("A3", "B3", "500000.01"), DUPLICATE),
        (credit("A3", "B3", "500000.00"), ID_CONFLICT),
        // Payments: an explicit CNY is what an absent currency means; another loan (of
        // another borrower), another amount text, another currency.
        (pay("P1", "A1", "100.00"), DUPLICATE),
        (r#"{"type":"repayment","payment_id":"P1","loan_id":"A1","amount":"100.00","currency":"CNY"}"#.into(), DUPLICATE),
        (pay("P1", "A2", "100.00"), ID_CONFLICT),
        (pay("P1", "A1", "100.01"), ID_CONFLICT),
        (pay("P1", "A1", "100.0"), ID_CONFLICT),
        (r#"{"type":"repayment","payment_id":"P1","loan_id":"A1","amount":"100.00","currency":"USD"}"#.into(), ID_CONFLICT),
        (pay("PX", "NOPE", "5.00"), DUPLICATE),
        (pay("PX", "A1", "5.00"), ID_CONFLICT),
        // Collections actions: another target, another kind, a loan instead of a borrower.
        (action("C1", "REINSTATE", "borrower_id", "B1"), DUPLICATE),
        (action("C1", "REINSTATE", "borrower_id", "B2"), ID_CONFLICT),
        (action("C1", "MARK_MALICIOUS", "borrower_id", "B1"), ID_CONFLICT),
        (action("C2", "WRITE_OFF", "loan_id", "A1"), DUPLICATE),
        (action("C2", "WRITE_OFF", "loan_id", "A2"), ID_CONFLICT),
        (action("C2", "WRITE_OFF", "borrower_id", "A1"), ID_CONFLICT),
        // Merchant updates: another borrower (a known one, for a refused update too),
        // other figures.
        (update("U1", "B1", TOP_MERCHANT), DUPLICATE),
        (update("U1", "B1", &growth_as_number), DUPLICATE),
        (update("U1", "B2", TOP_MERCHANT), ID_CONFLICT),
        (update("U1", "B1", &weak), ID_CONFLICT),
        (update("UX", "B9", TOP_MERCHANT), DUPLICATE),
        (update("UX", "B1", TOP_MERCHANT), ID_CONFLICT),
    ]
}

#[test]
fn a_re_used_id_is_a_duplicate_with_the_same_content_and_an_id_conflict_with_other_content() {
    let ledger = ledger(&base());
    for (line, expected) in re_used() {
        assert_eq!(verdict(&ledger, &line), expected, "{line}");
    }
}

#[test]
fn a_later_input_with_a_seen_id_changes_nothing_and_is_not_listed_again() {
    let before = export(&base());
    let mut lines = base();
    lines.extend(re_used().into_iter().map(|(line, _)| line));
    let text = lines.join("\n");
    let (after, stats) = run(&text, Arc::new(ProductConfig::default()), &mut Discard).unwrap();
    assert_eq!(after.export(), before);
    let duplicates = re_used().iter().filter(|(_, d)| *d == DUPLICATE).count() as u64;
    let conflicts = re_used().iter().filter(|(_, d)| *d == ID_CONFLICT).count() as u64;
    assert_eq!((stats.duplicates, stats.id_conflicts), (duplicates, conflicts));
    // Every verdict is the same after the others: the first input is the one that counts.
    for (line, expected) in re_used() {
        assert_eq!(verdict(&after, &line), expected, "{line}");
    }
}

#[test]
fn ids_are_global_across_books() {
    // The facts of B1 and B2 on books (partitions) of their own, as loan.events holds
    // them: a re-used id is caught whichever book holds the first.
    let (single, facts) = decide_all(&base());
    let mut books = Ledger::new(Arc::new(ProductConfig::default()));
    for fact in &facts {
        match fact.partition_key() {
            Some(key) => {
                let partition = u32::from(key.bytes().last().unwrap()) % 3;
                books.apply(partition, fact, &mut Discard);
            }
            None => (0..3).for_each(|p| {
                books.apply(p, fact, &mut Discard);
            }),
        }
    }
    assert!(books.books().len() > 1);
    assert_eq!(books.export(), single.export());
    for (line, expected) in re_used() {
        assert_eq!(verdict(&books, &line), expected, "{line}");
    }
}

#[test]
fn facts_without_fingerprints_judge_every_re_used_id_a_duplicate() {
    // Facts written before they carried fingerprints: nothing says the content differs.
    let (_, facts) = decide_all(&base());
    let mut old = Ledger::new(Arc::new(ProductConfig::default()));
    for mut fact in facts {
        strip_fingerprint(&mut fact);
        old.apply(0, &fact, &mut Discard);
    }
    for (line, _) in re_used() {
        assert_eq!(verdict(&old, &line), DUPLICATE, "{line}");
    }
}

#[test]
fn an_order_finances_one_loan_across_the_ledger() {
    // O1 financed A2 (B2); B3 and B1 cannot use it again, alone or beside a fresh order.
    let mut lines = base();
    lines.push(order("A4", "B3", "300.00", &[("O1", "300.00")]));
    lines.push(order("A5", "B1", "600.00", &[("O9", "300.00"), ("O2", "300.00")]));
    let e = export(&lines);
    assert_eq!(reasons(&e, "A4"), ["ORDER_ALREADY_FINANCED"]);
    assert_eq!(reasons(&e, "A5"), ["ORDER_ALREADY_FINANCED"]);
}

#[test]
fn validity_comes_before_the_id_for_a_merchant_update() {
    // SPEC section 12: figures that cannot be scored make the line invalid, also when
    // its id was seen.
    let ledger = ledger(&base());
    let input = parse_line(&update("U1", "B1", r#"{"kind":"PLATFORM","annual_sales":"1.00"}"#)).unwrap().unwrap();
    assert!(ledger_sim::decide(&ledger, &input).is_err());
}

/// Decides and applies every line on one book, keeping the facts.
fn decide_all(lines: &[String]) -> (Ledger, Vec<Fact>) {
    let mut ledger = Ledger::new(Arc::new(ProductConfig::default()));
    let mut facts = Vec::new();
    for line in lines {
        let Decision::Fact(fact) = verdict(&ledger, line) else { panic!("{line}: not a fact") };
        ledger.apply(0, &fact, &mut Discard);
        facts.push(fact);
    }
    (ledger, facts)
}

fn strip_fingerprint(fact: &mut Fact) {
    match fact {
        Fact::Opened { .. } | Fact::DayClosed { .. } | Fact::PaymentSeen { .. } => {}
        Fact::ApplicationDecided(a) => a.fingerprint = None,
        Fact::MerchantUpdateApplied(u) => u.fingerprint = None,
        Fact::RepaymentAccepted { fingerprint, .. }
        | Fact::RepaymentRefused { fingerprint, .. }
        | Fact::ActionApplied { fingerprint, .. }
        | Fact::ActionRefused { fingerprint, .. }
        | Fact::MerchantUpdateRefused { fingerprint, .. } => *fingerprint = None,
    }
    assert_eq!(fact.fingerprint(), None);
}
