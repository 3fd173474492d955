//! What makes a message unreadable, and the error that says so. These are the reasons a
//! dead letter carries, so each names the field.

use ledger_core::input::{RawAmount, Repayment};
use ledger_core::Fact;
use ledger_core::Input;
use ledger_proto::pb::{self, action_applied, collections_notice, ledger_input, loan_event};
use ledger_proto::{decode, duplicate_receipt, encode, from_bytes, FromProto, ProtoError};

fn application() -> pb::LoanApplication {
    pb::LoanApplication {
        application_id: "A1".into(),
        borrower_id: "B1".into(),
        product: pb::Product::Credit.into(),
        amount: "20000.00".into(),
        currency: String::new(),
        term_days: 90,
        orders: vec![],
        merchant: Some(pb::Merchant {
            kind: pb::MerchantKind::Platform.into(),
            annual_sales: Some("3000000.00".into()),
            sales_growth: Some("0.30".into()),
            orders_12m: Some("8000".into()),
            seller_rating: Some("5".into()),
            active_days_90: Some("85".into()),
            ..Default::default()
        }),
    }
}

fn read_application(proto: pb::LoanApplication) -> Result<Input, ProtoError> {
    Input::from_proto(proto)
}

fn action(kind: pb::ActionKind, borrower_id: Option<&str>, loan_id: Option<&str>) -> pb::CollectionsAction {
    pb::CollectionsAction {
        action_id: "C1".into(),
        action: kind.into(),
        borrower_id: borrower_id.map(Into::into),
        loan_id: loan_id.map(Into::into),
    }
}

fn event(fact: loan_event::Fact) -> pb::LoanEvent {
    pb::LoanEvent { event_id: "e1".into(), source: String::new(), input_fingerprint: None, fact: Some(fact) }
}

fn refused(reason: i32) -> pb::LoanEvent {
    event(loan_event::Fact::RepaymentRefused(pb::RepaymentRefused {
        payment_id: "P1".into(),
        loan_id: "L1".into(),
        borrower_id: None,
        amount_text: "abc".into(),
        reason,
    }))
}

fn decided() -> pb::ApplicationDecided {
    pb::ApplicationDecided {
        application_id: "A1".into(),
        borrower_id: "B1".into(),
        product: pb::Product::Order.into(),
        amount: Some("900.00".into()),
        term_days: 30,
        score: "61.5".into(),
        credit_line: "9800.00".into(),
        reasons: vec![],
        disbursement: None,
    }
}

#[test]
fn a_valid_application_reads() {
    let Input::Application(a) = read_application(application()).unwrap() else { panic!("an application") };
    assert_eq!(a.amount, RawAmount::cny("20000.00"));
    assert_eq!(a.merchant.orders_12m, Some(8000.into()));
    assert_eq!(a.merchant.inventory_turnover, None);
}

#[test]
fn missing_required_fields_are_named() {
    let cases: Vec<(pb::LoanApplication, &str)> = vec![
        (pb::LoanApplication { application_id: String::new(), ..application() }, "application_id"),
        (pb::LoanApplication { borrower_id: String::new(), ..application() }, "borrower_id"),
        (pb::LoanApplication { product: 0, ..application() }, "product"),
        (pb::LoanApplication { merchant: None, ..application() }, "merchant"),
        (
            pb::LoanApplication {
                orders: vec![pb::Order { order_id: String::new(), ..Default::default() }],
                ..application()
            },
            "orders.order_id",
        ),
        (
            pb::LoanApplication {
                merchant: Some(pb::Merchant { kind: 0, ..application().merchant.unwrap() }),
                ..application()
            },
            "merchant.kind",
        ),
    ];
    for (proto, field) in cases {
        assert_eq!(read_application(proto), Err(ProtoError::MissingField(field)), "{field}");
    }

    let repayment =
        pb::Repayment { payment_id: "P1".into(), loan_id: "L1".into(), amount: "1.00".into(), currency: String::new() };
    assert_eq!(
        Input::from_proto(pb::Repayment { payment_id: String::new(), ..repayment.clone() }),
        Err(ProtoError::MissingField("payment_id"))
    );
    assert_eq!(
        Input::from_proto(pb::Repayment { loan_id: String::new(), ..repayment }),
        Err(ProtoError::MissingField("loan_id"))
    );

    assert_eq!(Input::from_proto(pb::LedgerInput { input: None }), Err(ProtoError::MissingField("input")));
    assert_eq!(Input::from_proto(pb::Open { date: String::new() }), Err(ProtoError::MissingField("date")));
    assert_eq!(Input::from_proto(pb::DayClose::default()), Err(ProtoError::MissingField("date")));
}

#[test]
fn unknown_enum_values_are_named() {
    assert_eq!(
        read_application(pb::LoanApplication { product: 99, ..application() }),
        Err(ProtoError::UnknownEnum { field: "product", value: 99 })
    );
    let merchant = pb::Merchant { kind: 7, ..application().merchant.unwrap() };
    assert_eq!(
        read_application(pb::LoanApplication { merchant: Some(merchant), ..application() }),
        Err(ProtoError::UnknownEnum { field: "merchant.kind", value: 7 })
    );
    let mut unknown_action = action(pb::ActionKind::WriteOff, None, Some("L1"));
    unknown_action.action = 42;
    assert_eq!(Input::from_proto(unknown_action), Err(ProtoError::UnknownEnum { field: "action", value: 42 }));
    assert_eq!(
        Fact::from_proto(refused(1000)),
        Err(ProtoError::UnknownEnum { field: "repayment_refused.reason", value: 1000 })
    );
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::ApplicationDecided(pb::ApplicationDecided {
            reasons: vec![pb::Reason::ScoreTooLow.into(), 77],
            ..decided()
        }))),
        Err(ProtoError::UnknownEnum { field: "application_decided.reasons", value: 77 })
    );
}

#[test]
fn an_invalid_amount_is_not_an_error_but_reaches_the_core() {
    // INVALID_AMOUNT is a refusal the core records as a fact; the message is readable.
    for (amount, currency) in [("", ""), ("12.3", ""), ("-1.00", "CNY"), ("1.00", "USD"), ("七千", "")] {
        let proto = pb::Repayment {
            payment_id: "P1".into(),
            loan_id: "L1".into(),
            amount: amount.into(),
            currency: currency.into(),
        };
        assert_eq!(
            Input::from_proto(proto),
            Ok(Input::Repayment(Repayment {
                payment_id: "P1".into(),
                loan_id: "L1".into(),
                amount: RawAmount { text: amount.into(), currency: currency.into() },
            }))
        );
    }
}

#[test]
fn merchant_figures_must_be_numbers() {
    let merchant = pb::Merchant { debt_ratio: Some("forty".into()), ..application().merchant.unwrap() };
    let err = read_application(pb::LoanApplication { merchant: Some(merchant), ..application() }).unwrap_err();
    assert!(
        matches!(&err, ProtoError::InvalidValue { field: "merchant.debt_ratio", value, .. } if value == "forty"),
        "{err:?}"
    );
    // Scientific notation is accepted, as in a scenario file.
    let merchant = pb::Merchant { annual_sales: Some("3e6".into()), ..application().merchant.unwrap() };
    let Input::Application(a) =
        read_application(pb::LoanApplication { merchant: Some(merchant), ..application() }).unwrap()
    else {
        panic!("an application")
    };
    assert_eq!(a.merchant.annual_sales, Some(3_000_000.into()));
}

#[test]
fn collections_actions_without_their_target_are_readable_and_refused_by_the_core() {
    for (kind, borrower, loan) in [
        (pb::ActionKind::WriteOff, Some("B1"), None),
        (pb::ActionKind::MarkMalicious, None, Some("L1")),
        (pb::ActionKind::Reinstate, None, None),
    ] {
        let Ok(Input::Collections(c)) = Input::from_proto(action(kind, borrower, loan)) else {
            panic!("{kind:?} without its target must read")
        };
        assert_eq!((c.borrower_id.as_deref(), c.loan_id.as_deref()), (borrower, loan));
    }
    assert_eq!(
        Input::from_proto(action(pb::ActionKind::Unspecified, Some("B1"), None)),
        Err(ProtoError::MissingField("action"))
    );
    assert!(matches!(
        Input::from_proto(action(pb::ActionKind::Reinstate, Some(""), None)),
        Err(ProtoError::InvalidValue { field: "borrower_id", .. })
    ));
    assert!(Input::from_proto(action(pb::ActionKind::Reinstate, Some("B1"), None)).is_ok());
}

#[test]
fn bad_dates_are_invalid_values() {
    for text in ["2026-02-30", "2026-1-01", "01/02/2026"] {
        assert_eq!(
            Input::from_proto(pb::LedgerInput {
                input: Some(ledger_input::Input::DayClose(pb::DayClose { date: text.into() }))
            }),
            Err(ProtoError::InvalidValue {
                field: "date",
                value: text.into(),
                why: format!("{text:?} is not a date in the form YYYY-MM-DD"),
            })
        );
    }
}

#[test]
fn facts_are_read_strictly() {
    assert_eq!(
        Fact::from_proto(pb::LoanEvent { event_id: "e1".into(), source: String::new(), input_fingerprint: None, fact: None }),
        Err(ProtoError::MissingField("fact"))
    );
    assert_eq!(Fact::from_proto(refused(0)), Err(ProtoError::MissingField("repayment_refused.reason")));
    assert!(matches!(
        Fact::from_proto(event(loan_event::Fact::ApplicationDecided(pb::ApplicationDecided {
            reasons: vec![0],
            ..decided()
        }))),
        Err(ProtoError::InvalidValue { field: "application_decided.reasons", .. })
    ));
    assert!(matches!(
        Fact::from_proto(event(loan_event::Fact::ApplicationDecided(pb::ApplicationDecided {
            credit_line: "9800.5".into(),
            ..decided()
        }))),
        Err(ProtoError::InvalidValue { field: "application_decided.credit_line", .. })
    ));
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::ApplicationDecided(pb::ApplicationDecided {
            score: String::new(),
            ..decided()
        }))),
        Err(ProtoError::MissingField("application_decided.score"))
    );
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::ActionApplied(pb::ActionApplied {
            action_id: "C1".into(),
            effect: None
        }))),
        Err(ProtoError::MissingField("action_applied.effect"))
    );
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::ActionApplied(pb::ActionApplied {
            action_id: "C1".into(),
            effect: Some(action_applied::Effect::WrittenOff(pb::WrittenOff {
                loan_id: "L1".into(),
                borrower_id: String::new()
            })),
        }))),
        Err(ProtoError::MissingField("action_applied.written_off.borrower_id"))
    );
    let accepted = pb::RepaymentAccepted {
        payment_id: "P1".into(),
        loan_id: "L1".into(),
        borrower_id: "B1".into(),
        amount: "1e2".into(),
    };
    assert!(matches!(
        Fact::from_proto(event(loan_event::Fact::RepaymentAccepted(accepted))),
        Err(ProtoError::InvalidValue { field: "repayment_accepted.amount", .. })
    ));
}

#[test]
fn outputs_are_read_strictly() {
    use ledger_core::state::{Derived, PaymentRecord};
    assert_eq!(
        Derived::from_proto(pb::CollectionsNotice { event_id: "e".into(), notice: None }),
        Err(ProtoError::MissingField("notice"))
    );
    let overdue = pb::OverdueNotice {
        kind: pb::NoticeKind::LoanOverdue.into(),
        borrower_id: "B1".into(),
        loan_id: "L1".into(),
        date: "2026-04-01".into(),
        dpd: 1,
        bucket: 9,
        previous_bucket: pb::Bucket::Current.into(),
        principal_owed: "1.00".into(),
        interest_owed: "0.00".into(),
        penalty_owed: "0.00".into(),
    };
    assert_eq!(
        Derived::from_proto(pb::CollectionsNotice {
            event_id: "e".into(),
            notice: Some(collections_notice::Notice::Overdue(overdue))
        }),
        Err(ProtoError::UnknownEnum { field: "overdue.bucket", value: 9 })
    );
    // A duplicate has no payment record of its own: the first receipt is the record.
    let duplicate = duplicate_receipt("P1", "L1");
    assert_eq!(duplicate.status, i32::from(pb::ReceiptStatus::Duplicate));
    assert_eq!(
        [&duplicate.amount, &duplicate.penalty, &duplicate.interest, &duplicate.principal, &duplicate.overpayment],
        ["0.00"; 5]
    );
    assert_eq!(duplicate.reason, None);
    assert!(matches!(PaymentRecord::from_proto(duplicate), Err(ProtoError::InvalidValue { field: "status", .. })));
}

#[test]
fn bytes_that_are_not_the_message_are_a_decode_error() {
    // A field 1 with wire type 7 (there is none), then a truncated varint.
    for garbage in [&[0x0f_u8, 0x01][..], &[0x08, 0xff][..]] {
        let err = from_bytes::<pb::Repayment, Input>(garbage).unwrap_err();
        assert!(matches!(err, ProtoError::Decode(_)), "{err:?}");
        assert!(err.to_string().starts_with("cannot decode protobuf message"), "{err}");
    }
    // Empty bytes are a valid, empty message: it is the required fields that fail.
    assert_eq!(from_bytes::<pb::Repayment, Input>(&[]), Err(ProtoError::MissingField("payment_id")));
    assert_eq!(decode::<pb::Repayment>(&encode(&pb::Repayment::default())), Ok(pb::Repayment::default()));
}

#[test]
fn errors_read_well_in_a_dead_letter() {
    assert_eq!(ProtoError::MissingField("payment_id").to_string(), "missing field: payment_id");
    assert_eq!(
        ProtoError::UnknownEnum { field: "product", value: 99 }.to_string(),
        "unknown value 99 in enum field product"
    );
}


fn update() -> pb::MerchantUpdate {
    pb::MerchantUpdate { update_id: "U1".into(), borrower_id: "B1".into(), merchant: application().merchant }
}

#[test]
fn a_merchant_update_reads_its_figures_before_its_ids() {
    let Input::MerchantUpdate(u) = Input::from_proto(update()).unwrap() else { panic!("a merchant update") };
    assert_eq!((u.update_id.as_str(), u.borrower_id.as_str()), ("U1", "B1"));
    assert_eq!(u.merchant.annual_sales, Some("3000000.00".parse().unwrap()));
    assert_eq!(Input::from_proto(pb::MerchantUpdate { update_id: String::new(), ..update() }), Err(ProtoError::MissingField("update_id")));
    assert_eq!(Input::from_proto(pb::MerchantUpdate { borrower_id: String::new(), ..update() }), Err(ProtoError::MissingField("borrower_id")));
    // Validity first (SPEC section 12): without figures, the missing ids are not what is named.
    let bare = pb::MerchantUpdate { update_id: String::new(), borrower_id: String::new(), merchant: None };
    assert_eq!(Input::from_proto(bare), Err(ProtoError::MissingField("merchant")));
    let unreadable = pb::Merchant { seller_rating: Some("five".into()), ..application().merchant.unwrap() };
    assert!(matches!(
        Input::from_proto(pb::MerchantUpdate { update_id: String::new(), merchant: Some(unreadable), ..update() }),
        Err(ProtoError::InvalidValue { field: "merchant.seller_rating", .. })
    ));
}

#[test]
fn merchant_update_facts_and_notices_are_read_strictly() {
    use ledger_core::state::Derived;
    let applied = pb::MerchantUpdateApplied {
        update_id: "U1".into(),
        borrower_id: "B1".into(),
        score: "17.02".into(),
        credit_line: "30600.00".into(),
    };
    assert!(Fact::from_proto(event(loan_event::Fact::MerchantUpdateApplied(applied.clone()))).is_ok());
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::MerchantUpdateApplied(pb::MerchantUpdateApplied { score: String::new(), ..applied.clone() }))),
        Err(ProtoError::MissingField("merchant_update_applied.score"))
    );
    assert!(matches!(
        Fact::from_proto(event(loan_event::Fact::MerchantUpdateApplied(pb::MerchantUpdateApplied { credit_line: "1".into(), ..applied }))),
        Err(ProtoError::InvalidValue { field: "merchant_update_applied.credit_line", .. })
    ));
    let refused = pb::MerchantUpdateRefused { update_id: "U1".into(), borrower_id: "B9".into(), reason: 0 };
    assert_eq!(
        Fact::from_proto(event(loan_event::Fact::MerchantUpdateRefused(refused))),
        Err(ProtoError::MissingField("merchant_update_refused.reason"))
    );
    let recalled = pb::LoanRecalled {
        borrower_id: "B1".into(),
        loan_id: "A1".into(),
        date: "2026-01-02".into(),
        previous_maturity_date: "2026-04-01".into(),
        maturity_date: "2026-01-9".into(),
        principal_owed: "19900.00".into(),
        interest_owed: "11.94".into(),
        penalty_owed: "0.00".into(),
    };
    assert!(matches!(
        Derived::from_proto(pb::CollectionsNotice { event_id: "e".into(), notice: Some(collections_notice::Notice::LoanRecalled(recalled)) }),
        Err(ProtoError::InvalidValue { field: "loan_recalled.maturity_date", .. })
    ));
    let warning = pb::RiskWarning {
        borrower_id: "B1".into(),
        score: "17.02".into(),
        previous_score: "79.44".into(),
        date: "2026-01-02".into(),
        loans: vec![pb::LoanExposure { loan_id: String::new(), principal_outstanding: "19900.00".into() }],
    };
    assert_eq!(
        Derived::from_proto(pb::CollectionsNotice { event_id: "e".into(), notice: Some(collections_notice::Notice::RiskWarning(warning)) }),
        Err(ProtoError::MissingField("risk_warning.loans.loan_id"))
    );
}
