//! Fingerprints of inputs: what lets the ledger tell a re-sent input (DUPLICATE) from
//! another input that re-uses an id (ID_CONFLICT), SPEC section 9.
//!
//! The first input with an idempotency key counts; a later one with the same key
//! changes nothing, and its answer depends on whether it *says the same*. To judge that
//! after a restart, when the first input is long gone from its topic, every keyed fact
//! carries the [`Fingerprint`] of the input it decided (loan.events field
//! `LoanEvent.input_fingerprint`), and the fold keeps it beside the record of the id:
//! eight bytes per id, whether the fact was decided in this process or read back from
//! the log, so a live service and a replay reach the same verdict.
//!
//! Why a digest of a canonical form, and not of the bytes that arrived: "the same
//! content" is the input *as the ledger read it*. Two messages that differ only in
//! protobuf layout (field order, a default written out or left out), or a scenario line
//! and a protobuf message that decode to the same [`Input`], must get the same
//! fingerprint, and the bytes of a protobuf message are not canonical. The canonical
//! form is defined here, in the core, from the decoded [`Input`], so it does not depend
//! on the wire format (the core knows nothing of protobuf) and is the same on both
//! roads. It is a versioned, length-prefixed byte string (below); changing it would
//! change the verdict on ids decided before the change, so it never changes within
//! loan.v1.
//!
//! Why SHA-256 truncated to 64 bits, and not FNV-1a: both are deterministic and need no
//! new dependency (sha2 already computes the state digest), but ids and texts are
//! chosen by senders, and an FNV collision is easy to build on purpose: a conflicting
//! payment could then pass as a DUPLICATE of the first. Eight bytes of SHA-256 make an
//! accidental or crafted collision a 2^-64 affair at a cost paid once per decided input
//! (never by the fold, which only compares).

use std::fmt;
use std::num::NonZeroU64;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::input::{Application, CollectionsAction, Input, MerchantUpdate, RawAmount, Repayment};
use crate::scoring::Merchant;

/// A stable 64-bit digest of an input's content. Never zero, so that an
/// `Option<Fingerprint>` (a fact written before fingerprints has none) is eight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint(NonZeroU64);

/// The first bytes of every canonical form: the version of the form itself.
const CANONICAL_FORM: &[u8] = b"loan.v1/input-fingerprint/1";

impl Fingerprint {
    /// The fingerprint of an input's content: the first eight bytes (big-endian) of the
    /// SHA-256 of its canonical form, with 0 read as 1 (the one value that is reserved).
    pub fn of(input: &Input) -> Fingerprint {
        let digest = Sha256::digest(canonical(input));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let value = NonZeroU64::new(u64::from_be_bytes(first)).unwrap_or(NonZeroU64::MIN);
        Fingerprint(value)
    }

    /// A fingerprint read from a fact; `None` for 0, which no input has.
    pub fn from_u64(value: u64) -> Option<Fingerprint> {
        NonZeroU64::new(value).map(Fingerprint)
    }

    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0.get())
    }
}

/// The canonical form of an input's content: the version, the input's kind, then every
/// field in a fixed order. Each text is its length (8 bytes, big-endian) and its UTF-8
/// bytes; an optional value is one byte (0 absent, 1 present) and then the value; a list
/// is its length and its items in the order they came. So no two different inputs have
/// the same form (no separator can be forged inside an id), and only what the ledger
/// read counts:
///
/// - an amount is its text exactly as it arrived ("100.00" and "100.0" differ; the
///   second is refused as INVALID_AMOUNT), with its currency, where an absent currency
///   is "CNY" (that is what absent means);
/// - a merchant figure is its decimal value, trailing zeros dropped ("0.30", "0.3" and
///   the JSON number 0.3 are the same figure: they score the same);
/// - orders are kept in the order they were listed;
/// - ids, enums and whole numbers as they were read.
///
/// Open and CloseDay have a form too, but their facts carry none: a repeated open or
/// close is refused by date, not answered as a duplicate.
fn canonical(input: &Input) -> Vec<u8> {
    let mut c = Canon(Vec::with_capacity(256));
    c.raw(CANONICAL_FORM);
    match input {
        Input::Open { date } => {
            c.text("open");
            c.text(&date.to_string());
        }
        Input::CloseDay { date } => {
            c.text("close_day");
            c.text(&date.to_string());
        }
        Input::Application(a) => c.application(a),
        Input::Repayment(r) => c.repayment(r),
        Input::Collections(a) => c.action(a),
        Input::MerchantUpdate(u) => c.update(u),
    }
    c.0
}

struct Canon(Vec<u8>);

impl Canon {
    fn raw(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn count(&mut self, n: usize) {
        let n = u64::try_from(n).expect("a length fits u64");
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    fn text(&mut self, text: &str) {
        self.raw(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            None => self.0.push(0),
            Some(t) => {
                self.0.push(1);
                self.text(t);
            }
        }
    }

    fn amount(&mut self, amount: &RawAmount) {
        self.text(&amount.text);
        self.text(if amount.currency.is_empty() { "CNY" } else { &amount.currency });
    }

    /// A decimal as its value: the mantissa and scale of its normal form (no trailing
    /// zeros, no negative zero), written as "<mantissa>e-<scale>". Defined through
    /// `mantissa` and `scale` rather than the decimal's `Display`, so no formatting
    /// change of a dependency can move it.
    fn figure(&mut self, value: Option<Decimal>) {
        let text = value.map(|d| {
            let d = d.normalize();
            format!("{}e-{}", d.mantissa(), d.scale())
        });
        self.optional_text(text.as_deref());
    }

    fn merchant(&mut self, m: &Merchant) {
        self.text(m.kind.as_str());
        for figure in [
            m.annual_sales,
            m.sales_growth,
            m.orders_12m,
            m.seller_rating,
            m.active_days_90,
            m.inventory_turnover,
            m.debt_ratio,
            m.positive_review_rate,
        ] {
            self.figure(figure);
        }
    }

    fn application(&mut self, a: &Application) {
        self.text("application");
        self.text(&a.application_id);
        self.text(&a.borrower_id);
        self.text(a.product.as_str());
        self.amount(&a.amount);
        self.text(&a.term_days.to_string());
        self.count(a.orders.len());
        for order in &a.orders {
            self.text(&order.order_id);
            self.amount(&order.amount);
        }
        self.merchant(&a.merchant);
    }

    fn repayment(&mut self, r: &Repayment) {
        self.text("repayment");
        self.text(&r.payment_id);
        self.text(&r.loan_id);
        self.amount(&r.amount);
    }

    fn action(&mut self, a: &CollectionsAction) {
        self.text("collections_action");
        self.text(&a.action_id);
        self.text(a.action.as_str());
        self.optional_text(a.borrower_id.as_deref());
        self.optional_text(a.loan_id.as_deref());
    }

    fn update(&mut self, u: &MerchantUpdate) {
        self.text("merchant_update");
        self.text(&u.update_id);
        self.text(&u.borrower_id);
        self.merchant(&u.merchant);
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::input::OrderRef;
    use crate::model::{ActionKind, Product};
    use crate::scoring::MerchantKind;

    fn merchant(growth: &str) -> Merchant {
        Merchant {
            kind: MerchantKind::Platform,
            annual_sales: Some(Decimal::from_str("5000000.00").unwrap()),
            sales_growth: Some(Decimal::from_str(growth).unwrap()),
            orders_12m: Some(Decimal::from(10_000)),
            seller_rating: Some(Decimal::from(5)),
            active_days_90: Some(Decimal::from(90)),
            inventory_turnover: None,
            debt_ratio: None,
            positive_review_rate: None,
        }
    }

    fn application() -> Application {
        Application {
            application_id: "A1".into(),
            borrower_id: "B1".into(),
            product: Product::Order,
            amount: RawAmount::cny("900.00"),
            term_days: 30,
            orders: vec![
                OrderRef { order_id: "O1".into(), amount: RawAmount::cny("500.00") },
                OrderRef { order_id: "O2".into(), amount: RawAmount::cny("400.00") },
            ],
            merchant: merchant("0.5"),
        }
    }

    fn pay(payment_id: &str, loan_id: &str, text: &str, currency: &str) -> Input {
        Input::Repayment(Repayment {
            payment_id: payment_id.into(),
            loan_id: loan_id.into(),
            amount: RawAmount { text: text.into(), currency: currency.into() },
        })
    }

    /// The form is fixed for loan.v1: these values are what every release must compute
    /// (a verdict on an id decided by an older release depends on them). They were
    /// computed by a separate implementation of the form (Python's hashlib over the
    /// bytes the doc comment of `canonical` describes), not copied from this one.
    #[test]
    fn fingerprints_are_stable() {
        assert_eq!(Fingerprint::of(&pay("P1", "A1", "100.00", "")).to_string(), "0c2a7d2f3b41f168");
        assert_eq!(Fingerprint::of(&Input::Application(application())).to_string(), "d842b37fcd6c9a31");
    }

    #[test]
    fn every_field_counts_and_only_what_was_read() {
        let base = Fingerprint::of(&pay("P1", "A1", "100.00", ""));
        assert_eq!(Fingerprint::of(&pay("P1", "A1", "100.00", "CNY")), base, "absent currency is CNY");
        for other in [pay("P2", "A1", "100.00", ""), pay("P1", "A2", "100.00", ""), pay("P1", "A1", "100.0", ""), pay("P1", "A1", "100.00", "USD")] {
            assert_ne!(Fingerprint::of(&other), base, "{other:?}");
        }
        // Lengths are prefixed: moving a character from one id to the next is another input.
        assert_ne!(Fingerprint::of(&pay("P1A", "1", "1.00", "")), Fingerprint::of(&pay("P1", "A1", "1.00", "")));

        let a = application();
        let fp = |a: &Application| Fingerprint::of(&Input::Application(a.clone()));
        assert_eq!(fp(&Application { merchant: merchant("0.50"), ..a.clone() }), fp(&a), "0.50 is 0.5");
        let mut swapped = a.clone();
        swapped.orders.reverse();
        let mut no_rating = a.clone();
        no_rating.merchant.seller_rating = None;
        for other in [
            Application { borrower_id: "B2".into(), ..a.clone() },
            Application { product: Product::Credit, ..a.clone() },
            Application { term_days: 31, ..a.clone() },
            Application { amount: RawAmount::cny("901.00"), ..a.clone() },
            Application { merchant: merchant("0.49"), ..a.clone() },
            Application { orders: a.orders[..1].to_vec(), ..a.clone() },
            swapped,
            no_rating,
        ] {
            assert_ne!(fp(&other), fp(&a), "{other:?}");
        }

        let action = |borrower: Option<&str>, loan: Option<&str>| {
            Fingerprint::of(&Input::Collections(CollectionsAction {
                action_id: "C1".into(),
                action: ActionKind::WriteOff,
                borrower_id: borrower.map(String::from),
                loan_id: loan.map(String::from),
            }))
        };
        assert_ne!(action(Some("A1"), None), action(None, Some("A1")));
        assert_ne!(action(None, Some("A1")), action(None, Some("A2")));

        let update = |borrower: &str, growth: &str| {
            Fingerprint::of(&Input::MerchantUpdate(MerchantUpdate { update_id: "U1".into(), borrower_id: borrower.into(), merchant: merchant(growth) }))
        };
        assert_eq!(update("B1", "0.5"), update("B1", "0.500"));
        assert_ne!(update("B1", "0.5"), update("B2", "0.5"));
        assert_ne!(update("B1", "0.5"), update("B1", "-0.5"));
    }

    #[test]
    fn zero_is_never_a_fingerprint() {
        assert_eq!(Fingerprint::from_u64(0), None);
        assert_eq!(Fingerprint::from_u64(7).map(Fingerprint::get), Some(7));
    }
}
