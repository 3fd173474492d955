//! Property tests: every core value that crosses the wire comes back exactly as it
//! left, both as a message (`into_proto` then `from_proto`) and as bytes (`encode`
//! then `decode`). One property per kind and variant, so that no variant can go
//! untested by chance.

use ledger_core::fact::{ActionEffect, ApplicationDecided, Disbursement, UpdateApplied};
use ledger_core::input::{Application, CollectionsAction, MerchantUpdate, OrderRef, RawAmount, Repayment};
use ledger_core::model::{ActionKind, Bucket, Product, Reason};
use ledger_core::scoring::{Merchant, MerchantKind};
use ledger_core::state::{
    Accrual, Derived, LoanExposure, LoanRecalled, NoticeKind, OverdueNotice, PaymentRecord, PaymentStatus, RiskWarning,
};
use ledger_core::{Date, Fact, Fingerprint, Input, Money};
use ledger_proto::{decode, encode, from_bytes, loan_event, pb, to_bytes, FromProto, IntoProto, Output};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;

// ---- strategies: valid core values ----

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}"
}

/// Any text, as an amount or currency may arrive: empty, well-formed, or junk
/// (including non-ASCII).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[0-9]{1,9}\\.[0-9]{2}", "\\PC{0,12}"]
}

fn raw_amount() -> impl Strategy<Value = RawAmount> {
    let currency = prop_oneof![Just(String::new()), Just("CNY".to_string()), "[A-Z]{3}", "\\PC{0,5}"];
    (text(), currency).prop_map(|(text, currency)| RawAmount { text, currency })
}

/// Money up to the largest external amount (15 integer digits), with the edges.
fn money() -> impl Strategy<Value = Money> {
    prop_oneof![Just(0_i64), Just(99_999_999_999_999_999), 0_i64..100_000_000, 0_i64..100_000_000_000_000_000,]
        .prop_map(Money::from_cents)
}

/// Dates from 0001-01-01 to 9999-12-31: everything "YYYY-MM-DD" can name.
fn date() -> impl Strategy<Value = Date> {
    (-719_162_i32..=2_932_896).prop_map(Date::from_day_number)
}

/// Decimals over the whole range: small ones with few places, and 96-bit mantissas
/// with up to 28 places (a score has 28 significant digits).
fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (any::<i32>(), 0_u32..=4).prop_map(|(m, scale)| Decimal::new(i64::from(m), scale)),
        (any::<i32>(), any::<u64>(), 0_u32..=28).prop_map(|(hi, lo, scale)| {
            Decimal::from_i128_with_scale((i128::from(hi) << 64) | i128::from(lo), scale)
        }),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
    ]
}

/// A fact's input fingerprint: absent (a fact written before fingerprints) or any
/// non-zero value, the edges included.
fn fingerprint() -> impl Strategy<Value = Option<Fingerprint>> {
    option::of(prop_oneof![Just(1_u64), Just(u64::MAX), 1_u64..].prop_map(|v| Fingerprint::from_u64(v).unwrap()))
}

fn product() -> impl Strategy<Value = Product> {
    select(vec![Product::Order, Product::Credit])
}

fn reason() -> impl Strategy<Value = Reason> {
    select(Reason::ALL.to_vec())
}

fn action_kind() -> impl Strategy<Value = ActionKind> {
    select(ActionKind::ALL.to_vec())
}

fn bucket() -> impl Strategy<Value = Bucket> {
    select(Bucket::ALL.to_vec())
}

fn merchant() -> impl Strategy<Value = Merchant> {
    let figures = vec(option::of(decimal()), 8);
    (select(vec![MerchantKind::Platform, MerchantKind::OffPlatform]), figures).prop_map(|(kind, f)| Merchant {
        kind,
        annual_sales: f[0],
        sales_growth: f[1],
        orders_12m: f[2],
        seller_rating: f[3],
        active_days_90: f[4],
        inventory_turnover: f[5],
        debt_ratio: f[6],
        positive_review_rate: f[7],
    })
}

fn application() -> impl Strategy<Value = Application> {
    let order = (id(), raw_amount()).prop_map(|(order_id, amount)| OrderRef { order_id, amount });
    (id(), id(), product(), raw_amount(), any::<i64>(), vec(order, 0..4), merchant()).prop_map(
        |(application_id, borrower_id, product, amount, term_days, orders, merchant)| Application {
            application_id,
            borrower_id,
            product,
            amount,
            term_days,
            orders,
            merchant,
        },
    )
}

fn repayment() -> impl Strategy<Value = Repayment> {
    (id(), id(), raw_amount()).prop_map(|(payment_id, loan_id, amount)| Repayment { payment_id, loan_id, amount })
}

/// A collections action that names what it acts on (the other id may be set too).
fn collections_action() -> impl Strategy<Value = CollectionsAction> {
    (id(), action_kind(), id(), id(), any::<bool>()).prop_map(|(action_id, action, borrower, loan, extra)| {
        let (borrower_id, loan_id) = match action {
            ActionKind::MarkMalicious | ActionKind::Reinstate => (Some(borrower), extra.then_some(loan)),
            ActionKind::WriteOff => (extra.then_some(borrower), Some(loan)),
        };
        CollectionsAction { action_id, action, borrower_id, loan_id }
    })
}

fn merchant_update() -> impl Strategy<Value = MerchantUpdate> {
    (id(), id(), merchant()).prop_map(|(update_id, borrower_id, merchant)| MerchantUpdate { update_id, borrower_id, merchant })
}

/// With a rate of its own (every fact written since rates are per loan) or without (an
/// older fact).
fn disbursement() -> impl Strategy<Value = Disbursement> {
    (id(), money(), date(), date(), vec(id(), 0..4), option::of(decimal())).prop_map(
        |(loan_id, principal, disbursed_on, maturity_date, order_ids, daily_rate)| Disbursement {
            loan_id,
            principal,
            disbursed_on,
            maturity_date,
            order_ids,
            daily_rate,
        },
    )
}

fn update_applied() -> impl Strategy<Value = UpdateApplied> {
    (id(), id(), decimal(), money(), fingerprint()).prop_map(|(update_id, borrower_id, score, credit_line, fingerprint)| {
        UpdateApplied { update_id, borrower_id, score, credit_line, fingerprint }
    })
}

/// A shown score: two decimals.
fn shown_score() -> impl Strategy<Value = Decimal> {
    (0_i64..=10_000).prop_map(|hundredths| Decimal::new(hundredths, 2))
}

fn risk_warning() -> impl Strategy<Value = RiskWarning> {
    let exposure = (id(), money()).prop_map(|(loan_id, principal_outstanding)| LoanExposure { loan_id, principal_outstanding });
    (id(), date(), shown_score(), shown_score(), vec(exposure, 0..4)).prop_map(
        |(borrower_id, date, score, previous_score, loans)| RiskWarning { borrower_id, date, score, previous_score, loans },
    )
}

fn loan_recalled() -> impl Strategy<Value = LoanRecalled> {
    (id(), id(), date(), date(), date(), money(), money(), money()).prop_map(
        |(borrower_id, loan_id, date, previous_maturity_date, maturity_date, principal_owed, interest_owed, penalty_owed)| {
            LoanRecalled {
                borrower_id,
                loan_id,
                date,
                previous_maturity_date,
                maturity_date,
                principal_owed,
                interest_owed,
                penalty_owed,
            }
        },
    )
}

fn application_decided(disbursed: bool) -> impl Strategy<Value = ApplicationDecided> {
    let disbursement = if disbursed { disbursement().prop_map(Some).boxed() } else { Just(None).boxed() };
    let reasons = if disbursed { Just(Vec::new()).boxed() } else { vec(reason(), 1..6).boxed() };
    let ids = (id(), id(), product(), option::of(money()), any::<i64>());
    (ids, decimal(), money(), reasons, disbursement, fingerprint()).prop_map(
        |((application_id, borrower_id, product, amount, term_days), score, credit_line, reasons, disbursement, fingerprint)| {
            ApplicationDecided {
                application_id,
                borrower_id,
                product,
                amount,
                term_days,
                score,
                credit_line,
                reasons,
                disbursement,
                fingerprint,
            }
        },
    )
}

fn action_effect() -> impl Strategy<Value = ActionEffect> {
    prop_oneof![
        id().prop_map(|borrower_id| ActionEffect::MarkedMalicious { borrower_id }),
        id().prop_map(|borrower_id| ActionEffect::Reinstated { borrower_id }),
        (id(), id()).prop_map(|(loan_id, borrower_id)| ActionEffect::WrittenOff { loan_id, borrower_id }),
    ]
}

fn accrual() -> impl Strategy<Value = Accrual> {
    (id(), id(), date(), money(), money(), money(), money()).prop_map(
        |(loan_id, borrower_id, date, interest, penalty, interest_accrued, penalty_accrued)| Accrual {
            loan_id,
            borrower_id,
            date,
            interest,
            penalty,
            interest_accrued,
            penalty_accrued,
        },
    )
}

fn overdue_notice() -> impl Strategy<Value = OverdueNotice> {
    let kind = select(vec![NoticeKind::Overdue, NoticeKind::BucketChanged, NoticeKind::Cured]);
    (kind, id(), id(), date(), any::<u32>(), bucket(), bucket(), (money(), money(), money())).prop_map(
        |(
            kind,
            loan_id,
            borrower_id,
            date,
            dpd,
            bucket,
            previous_bucket,
            (principal_owed, interest_owed, penalty_owed),
        )| {
            OverdueNotice {
                kind,
                loan_id,
                borrower_id,
                date,
                dpd,
                bucket,
                previous_bucket,
                principal_owed,
                interest_owed,
                penalty_owed,
            }
        },
    )
}

fn payment_record() -> impl Strategy<Value = PaymentRecord> {
    let status = select(vec![PaymentStatus::Applied, PaymentStatus::Recovery, PaymentStatus::Rejected]);
    (id(), id(), status, money(), (money(), money(), money(), money()), option::of(reason())).prop_map(
        |(payment_id, loan_id, status, amount, (penalty, interest, principal, overpayment), reason)| PaymentRecord {
            payment_id,
            loan_id,
            status,
            amount,
            penalty,
            interest,
            principal,
            overpayment,
            reason,
        },
    )
}

// ---- the round trips ----

/// A message and its bytes both give back `value`; `P` is the message it is read from.
fn round_trips<T, P>(value: &T, proto: P) -> Result<(), TestCaseError>
where
    T: FromProto<P> + PartialEq + std::fmt::Debug,
    P: prost::Message + Default + Clone + PartialEq + std::fmt::Debug,
{
    let bytes = encode(&proto);
    prop_assert_eq!(&decode::<P>(&bytes)?, &proto, "the message survives its bytes");
    prop_assert_eq!(&from_bytes::<P, T>(&bytes)?, value, "the value survives its bytes");
    let back = T::from_proto(proto)?;
    // Decimal's `==` ignores scale (1.5 == 1.50); the debug text does not.
    prop_assert_eq!(format!("{back:?}"), format!("{value:?}"), "the value keeps its form");
    prop_assert_eq!(&back, value, "the value survives its message");
    Ok(())
}

/// An input comes back from its own message, from the mixed-stream envelope
/// (`LedgerInput`), and from their bytes.
fn input_round_trips(input: Input) -> Result<(), TestCaseError> {
    round_trips(&input, input.into_proto())?;
    let read = from_bytes::<pb::LedgerInput, Input>(&to_bytes(&input))?;
    // What a later input with the same id is compared by: it must not move on the wire.
    prop_assert_eq!(read.fingerprint(), input.fingerprint());
    prop_assert_eq!(read, input.clone());
    match &input {
        Input::Open { date } => round_trips(&input, pb::Open { date: date.to_string() }),
        Input::CloseDay { date } => round_trips(&input, pb::DayClose { date: date.to_string() }),
        Input::Application(a) => {
            round_trips(a, a.into_proto())?;
            round_trips(&input, a.into_proto())
        }
        Input::Repayment(r) => {
            round_trips(r, r.into_proto())?;
            round_trips(&input, r.into_proto())
        }
        Input::Collections(c) => {
            round_trips(c, c.into_proto())?;
            round_trips(&input, c.into_proto())
        }
        Input::MerchantUpdate(u) => {
            round_trips(u, u.into_proto())?;
            round_trips(&input, u.into_proto())
        }
    }
}

/// A fact comes back from its loan.events record, and the envelope set around it
/// survives the bytes untouched.
fn fact_round_trips(fact: Fact, event_id: &str, source: &str) -> Result<(), TestCaseError> {
    round_trips(&fact, fact.into_proto())?;
    let record = loan_event(&fact, event_id, source);
    let decoded = decode::<pb::LoanEvent>(&encode(&record))?;
    prop_assert_eq!(&decoded.event_id, event_id);
    prop_assert_eq!(&decoded.source, source);
    prop_assert_eq!(Fact::from_proto(decoded)?, fact);
    Ok(())
}

/// A derived event comes back from the output message it is published as, with the
/// publisher's event id intact.
fn derived_round_trips(derived: Derived, event_id: &str) -> Result<(), TestCaseError> {
    let mut output = derived.into_proto().expect("published on an output topic");
    output.set_event_id(event_id);
    prop_assert_eq!(output.event_id(), event_id);
    let bytes = output.encode();
    let decoded = match &output {
        Output::Accrual(_) => Output::Accrual(decode(&bytes)?),
        Output::Collections(_) => Output::Collections(decode(&bytes)?),
        Output::Receipt(_) => Output::Receipt(decode(&bytes)?),
    };
    prop_assert_eq!(&decoded, &output);
    prop_assert_eq!(decoded.event_id(), event_id);
    prop_assert_eq!(Derived::from_proto(decoded)?, derived);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // Inputs: every variant, each collections action kind.

    #[test]
    fn input_open(date in date()) {
        input_round_trips(Input::Open { date })?;
    }

    #[test]
    fn input_close_day(date in date()) {
        input_round_trips(Input::CloseDay { date })?;
    }

    #[test]
    fn input_application(a in application()) {
        input_round_trips(Input::Application(a))?;
    }

    #[test]
    fn input_repayment(r in repayment()) {
        input_round_trips(Input::Repayment(r))?;
    }

    #[test]
    fn input_collections_action(c in collections_action()) {
        input_round_trips(Input::Collections(c))?;
    }

    #[test]
    fn input_merchant_update(u in merchant_update()) {
        input_round_trips(Input::MerchantUpdate(u))?;
    }

    #[test]
    fn input_every_action_kind(action_id in id(), borrower_id in id(), loan_id in id()) {
        // `collections_action` picks kinds at random; this pins each one.
        for action in ActionKind::ALL {
            let c = CollectionsAction {
                action_id: action_id.clone(),
                action,
                borrower_id: Some(borrower_id.clone()),
                loan_id: Some(loan_id.clone()),
            };
            input_round_trips(Input::Collections(c))?;
        }
    }

    // Facts: every variant, with and without a disbursement, every effect.

    #[test]
    fn fact_opened(date in date(), event_id in id(), source in text()) {
        fact_round_trips(Fact::Opened { date }, &event_id, &source)?;
    }

    #[test]
    fn fact_application_approved(d in application_decided(true), event_id in id(), source in text()) {
        fact_round_trips(Fact::ApplicationDecided(d), &event_id, &source)?;
    }

    #[test]
    fn fact_application_rejected(d in application_decided(false), event_id in id(), source in text()) {
        fact_round_trips(Fact::ApplicationDecided(d), &event_id, &source)?;
    }

    #[test]
    fn fact_repayment_accepted(
        payment_id in id(),
        loan_id in id(),
        borrower_id in id(),
        amount in money(),
        fingerprint in fingerprint(),
    ) {
        fact_round_trips(Fact::RepaymentAccepted { payment_id, loan_id, borrower_id, amount, fingerprint }, "e", "")?;
    }

    #[test]
    fn fact_repayment_refused(
        payment_id in id(),
        loan_id in id(),
        borrower_id in option::of(id()),
        amount_text in text(),
        reason in reason(),
        fingerprint in fingerprint(),
    ) {
        let fact = Fact::RepaymentRefused { payment_id, loan_id, borrower_id, amount_text, reason, fingerprint };
        fact_round_trips(fact, "e", "payments.repayments/0/7")?;
    }

    #[test]
    fn fact_day_closed(date in date()) {
        fact_round_trips(Fact::DayClosed { date }, "", "")?;
    }

    #[test]
    fn fact_action_applied(action_id in id(), effect in action_effect(), fingerprint in fingerprint()) {
        fact_round_trips(Fact::ActionApplied { action_id, effect, fingerprint }, "e", "collections.actions/1/2")?;
    }

    #[test]
    fn fact_action_refused(
        action_id in id(),
        action in action_kind(),
        target_id in id(),
        borrower_id in option::of(id()),
        reason in reason(),
        fingerprint in fingerprint(),
    ) {
        let fact = Fact::ActionRefused { action_id, action, target_id, borrower_id, reason, fingerprint };
        fact_round_trips(fact, "e", "collections.actions/0/0")?;
    }

    #[test]
    fn fact_merchant_update_applied(u in update_applied(), event_id in id()) {
        fact_round_trips(Fact::MerchantUpdateApplied(u), &event_id, "merchant.updates/2/9")?;
    }

    #[test]
    fn fact_merchant_update_refused(update_id in id(), borrower_id in id(), reason in reason(), fingerprint in fingerprint()) {
        let fact = Fact::MerchantUpdateRefused { update_id, borrower_id, reason, fingerprint };
        fact_round_trips(fact, "e", "merchant.updates/0/1")?;
    }

    #[test]
    fn fact_payment_seen(payment_id in id(), loan_id in id(), conflict in any::<bool>()) {
        let seen = if conflict { ledger_core::Seen::IdConflict } else { ledger_core::Seen::Duplicate };
        fact_round_trips(Fact::PaymentSeen { payment_id, loan_id, seen }, "seen:payments.repayments/0/4", "payments.repayments/0/4")?;
    }

    // Outputs: every published kind of derived event.

    #[test]
    fn output_accrual(a in accrual(), event_id in id()) {
        derived_round_trips(Derived::Accrual(a), &event_id)?;
    }

    #[test]
    fn output_overdue_notice(n in overdue_notice(), event_id in id()) {
        derived_round_trips(Derived::Overdue(n), &event_id)?;
    }

    #[test]
    fn output_auto_blacklisted(borrower_id in id(), loan_id in id(), dpd in any::<u32>(), date in date()) {
        derived_round_trips(Derived::AutoBlacklisted { borrower_id, loan_id, dpd, date }, "e")?;
    }

    #[test]
    fn output_receipt(r in payment_record(), event_id in id()) {
        derived_round_trips(Derived::Receipt(r), &event_id)?;
    }

    #[test]
    fn output_risk_warning(w in risk_warning(), event_id in id()) {
        derived_round_trips(Derived::RiskWarning(w), &event_id)?;
    }

    #[test]
    fn output_loan_recalled(r in loan_recalled(), event_id in id()) {
        derived_round_trips(Derived::LoanRecalled(r), &event_id)?;
    }
}

#[test]
fn every_effect_and_reason_is_covered() {
    // The properties above draw effects and reasons at random; this walks each one.
    let effects = [
        ActionEffect::MarkedMalicious { borrower_id: "B".into() },
        ActionEffect::Reinstated { borrower_id: "B".into() },
        ActionEffect::WrittenOff { loan_id: "L".into(), borrower_id: "B".into() },
    ];
    for effect in effects {
        fact_round_trips(Fact::ActionApplied { action_id: "C".into(), effect, fingerprint: Fingerprint::from_u64(1) }, "e", "").unwrap();
    }
    for reason in Reason::ALL {
        let refused = Fact::RepaymentRefused {
            payment_id: "P".into(),
            loan_id: "L".into(),
            borrower_id: None,
            amount_text: "1.5".into(),
            reason,
            fingerprint: None,
        };
        fact_round_trips(refused, "e", "").unwrap();
    }
    let decided = ApplicationDecided {
        application_id: "A".into(),
        borrower_id: "B".into(),
        product: Product::Order,
        amount: None,
        term_days: 0,
        score: Decimal::ZERO,
        credit_line: Money::ZERO,
        reasons: Reason::ALL.to_vec(),
        disbursement: None,
        fingerprint: Fingerprint::from_u64(u64::MAX),
    };
    fact_round_trips(Fact::ApplicationDecided(decided), "e", "").unwrap();
}

#[test]
fn a_disbursement_is_not_an_output() {
    let disbursed = Derived::Disbursed {
        loan_id: "A1".into(),
        borrower_id: "B1".into(),
        product: Product::Credit,
        principal: Money::from_cents(2_000_000),
        disbursed_on: Date::parse("2026-01-01").unwrap(),
        maturity_date: Date::parse("2026-04-01").unwrap(),
    };
    assert_eq!(disbursed.into_proto(), None);
}
