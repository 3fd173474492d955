//! Repayment: reads payments.repayments, decides each payment (UNKNOWN_LOAN,
//! INVALID_AMOUNT, or accepted) into a fact, and publishes on loan.receipts how the fold
//! applied each payment (penalty, interest, principal, overpayment, or a recovery), why
//! it was refused, or that its payment id was seen before: DUPLICATE when it says what
//! the first payment with that id said, REJECTED with reason ID_CONFLICT when it says
//! something else (SPEC section 9).

mod payment;

use ledger_core::handler::{loan_book_key, Handler, InputKind, LoanDirectory, Notice};
use ledger_core::state::PaymentRecord;
use ledger_core::{Decision, Derived, Fact, Fingerprint, Input, InputError, Ledger, Reason, Seen};

pub struct Repayment;

impl Handler for Repayment {
    fn name(&self) -> &'static str {
        "repayment"
    }

    fn decides(&self) -> Option<InputKind> {
        Some(InputKind::Repayment)
    }

    /// Payments are keyed by loan id (the payment system knows no borrower): they
    /// are routed to the book of the loan's borrower through the loan index.
    fn book_key(&self, input: &Input, loans: &dyn LoanDirectory) -> String {
        match input {
            Input::Repayment(r) => loan_book_key(&r.loan_id, loans),
            _ => String::new(),
        }
    }

    fn routes_by_loan(&self) -> bool {
        true
    }

    fn publishes(&self) -> bool {
        true
    }

    fn decide(&self, view: &Ledger, book: u32, input: &Input) -> Result<Decision, InputError> {
        let Input::Repayment(r) = input else { return Err(InputError::NotDecided(self.name())) };
        view.open_in(book).ok_or(InputError::NotOpen)?;
        Ok(payment::decide(view, book, r, Fingerprint::of(input)))
    }

    fn answer_seen(&self, input: &Input, seen: Seen) -> Option<Fact> {
        let Input::Repayment(r) = input else { return None };
        Some(Fact::PaymentSeen { payment_id: r.payment_id.clone(), loan_id: r.loan_id.clone(), seen })
    }

    fn on_derived(&self, event: &Derived) -> Option<Notice> {
        match event {
            Derived::Receipt(record) => Some(Notice::Receipt(record.clone())),
            Derived::PaymentSeen { payment_id, loan_id, seen } => Some(match seen {
                Seen::Duplicate => Notice::DuplicatePayment { payment_id: payment_id.clone(), loan_id: loan_id.clone() },
                // Answered as a refusal, so a payment system that knows only APPLIED,
                // RECOVERY, REJECTED and DUPLICATE sees that this payment was not taken.
                // The loan id is the one this message named (the receipt's key), which
                // may not be the first payment's.
                Seen::IdConflict => Notice::Receipt(PaymentRecord::refused(payment_id, loan_id, Reason::IdConflict)),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::input::{RawAmount, Repayment as Payment};

    #[test]
    fn answers_duplicates_and_publishes_receipts_only() {
        let input = Input::Repayment(Payment { payment_id: "P1".into(), loan_id: "L1".into(), amount: RawAmount::cny("1.00") });
        assert!(matches!(Repayment.answer_seen(&input, Seen::Duplicate), Some(Fact::PaymentSeen { seen: Seen::Duplicate, .. })));
        let seen = Derived::PaymentSeen { payment_id: "P1".into(), loan_id: "L1".into(), seen: Seen::Duplicate };
        assert!(matches!(Repayment.on_derived(&seen), Some(Notice::DuplicatePayment { .. })));
        assert!(Repayment.on_derived(&Derived::AutoBlacklisted { borrower_id: "B".into(), loan_id: "L".into(), dpd: 91, date: ledger_core::Date::from_day_number(0) }).is_none());
    }

    /// A payment id re-used with other content (here on another loan) is answered on
    /// loan.receipts as REJECTED with reason ID_CONFLICT, amounts 0.00; the same
    /// content again is DUPLICATE. The verdicts come from the fold.
    #[test]
    fn answers_a_payment_id_re_used_with_other_content_as_an_id_conflict() {
        use ledger_core::handler::{decide_with, Handler};
        use ledger_core::{Decision, Ledger, ProductConfig};
        use ledger_proto::{pb, IntoProto, Output};

        // The services this scenario needs: origination lends, this service is tested.
        let deciders: [&dyn Handler; 2] = [&origination::Origination, &Repayment];

        let scenario = [
            r#"{"type":"open","date":"2026-01-01"}"#,
            r#"{"type":"application","application_id":"A1","borrower_id":"B1","product":"CREDIT","amount":"1000.00","term_days":30,"merchant":{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}}"#,
            r#"{"type":"application","application_id":"A2","borrower_id":"B2","product":"CREDIT","amount":"1000.00","term_days":30,"merchant":{"kind":"PLATFORM","annual_sales":"5000000.00","sales_growth":"0.5","orders_12m":10000,"seller_rating":5,"active_days_90":90}}"#,
            r#"{"type":"repayment","payment_id":"P1","loan_id":"A1","amount":"100.00"}"#,
        ];
        let (ledger, _): (Ledger, _) =
            ledger_core::scenario::run(&scenario.join("\n"), std::sync::Arc::new(ProductConfig::default()), &deciders, &mut ledger_core::Discard).unwrap();
        let answer = |line: &str| {
            let input = ledger_core::scenario::parse_line(line).unwrap().unwrap();
            let Ok(Decision::Seen(seen)) = decide_with(&deciders, &ledger, 0, &input) else { panic!("{line}: not a seen id") };
            // Recorded as a fact that changes nothing; the answer is derived from it.
            let fact = Repayment.answer_seen(&input, seen).expect("a repayment is answered");
            let (mut after, mut derived) = (ledger.clone(), Vec::new());
            after.apply(0, &fact, &mut derived);
            assert_eq!(after, ledger, "{line}: a seen payment changed the ledger");
            let notice = derived.iter().find_map(|d| Repayment.on_derived(d)).expect("an answer");
            let Output::Receipt(receipt) = notice.into_proto() else { panic!("{line}: not a receipt") };
            receipt
        };

        let conflict = answer(r#"{"type":"repayment","payment_id":"P1","loan_id":"A2","amount":"100.00"}"#);
        assert_eq!(conflict.status, pb::ReceiptStatus::Rejected as i32);
        assert_eq!(conflict.reason, Some(pb::Reason::IdConflict as i32));
        assert_eq!((conflict.payment_id.as_str(), conflict.loan_id.as_str()), ("P1", "A2"), "keyed by the loan id this message named");
        for amount in [&conflict.amount, &conflict.penalty, &conflict.interest, &conflict.principal, &conflict.overpayment] {
            assert_eq!(amount, "0.00");
        }
        let other_amount = answer(r#"{"type":"repayment","payment_id":"P1","loan_id":"A1","amount":"100.01"}"#);
        assert_eq!((other_amount.status, other_amount.reason), (pb::ReceiptStatus::Rejected as i32, Some(pb::Reason::IdConflict as i32)));

        // The same content, an absent currency written out as CNY: a re-sent copy.
        let duplicate = answer(r#"{"type":"repayment","payment_id":"P1","loan_id":"A1","amount":"100.00","currency":"CNY"}"#);
        assert_eq!((duplicate.status, duplicate.reason), (pb::ReceiptStatus::Duplicate as i32, None));
    }
}
