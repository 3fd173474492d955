//! Money and the one rounding function.
//!
//! Every amount the ledger stores or shows is a [`Money`]: a non-negative number of yuan
//! with at most two fractional digits, held as an exact `rust_decimal::Decimal`.
//! Exact intermediate values (interest accumulators, scores) are plain `Decimal`s and
//! become money only through [`round_half_up`], the single place where rounding happens.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// Round half up (away from zero), as Chinese lenders round (四舍五入). This is the
/// one rounding function of the ledger: accrual totals, displayed scores and ratios all
/// go through it.
#[inline]
pub fn round_half_up(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero)
}

/// Formats a decimal with exactly `decimals` fractional digits, rounding half up first.
pub fn format_fixed(value: Decimal, decimals: u32) -> String {
    let mut rounded = round_half_up(value, decimals);
    rounded.rescale(decimals);
    rounded.to_string()
}

/// Why an amount from outside was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0:?} is not a decimal string with exactly two fractional digits")]
    Format(String),
    #[error("amount {0:?} must be greater than zero")]
    NotPositive(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    #[error("currency {0:?} is not accepted (only CNY)")]
    Currency(String),
}

/// The largest number of integer digits an external amount may have. Far above any
/// real loan, far below what `Decimal` holds, so sums over millions of loans stay exact.
const AMOUNT_INTEGER_DIGITS_MAX: usize = 15;

/// An amount of CNY: exact, at most two fractional digits, never negative.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses an amount from an external interface: digits, a point, exactly two digits,
    /// greater than zero, in CNY (an empty currency means CNY).
    pub fn parse_external(text: &str, currency: Option<&str>) -> Result<Money, AmountError> {
        if let Some(c) = currency {
            if !c.is_empty() && c != "CNY" {
                return Err(AmountError::Currency(c.to_string()));
            }
        }
        let money = Money::parse_non_negative(text)?;
        if money.is_zero() {
            return Err(AmountError::NotPositive(text.to_string()));
        }
        Ok(money)
    }

    /// Parses "123.45" (zero allowed). Used for amounts inside the ledger's own records.
    pub fn parse_non_negative(text: &str) -> Result<Money, AmountError> {
        let (int, frac) = text
            .split_once('.')
            .ok_or_else(|| AmountError::Format(text.to_string()))?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) || frac.len() != 2 {
            return Err(AmountError::Format(text.to_string()));
        }
        if int.len() > AMOUNT_INTEGER_DIGITS_MAX {
            return Err(AmountError::TooLarge(text.to_string()));
        }
        let value =
            Decimal::from_str(text).map_err(|_| AmountError::Format(text.to_string()))?;
        Ok(Money(value))
    }

    /// Money from a decimal that is already a multiple of 0.01 and not negative.
    /// Panics otherwise: such a value reaching money is a broken invariant.
    #[inline]
    pub fn from_decimal(value: Decimal) -> Money {
        assert!(
            value >= Decimal::ZERO && round_half_up(value, 2) == value,
            "invariant: money must be a non-negative multiple of 0.01, got {value}"
        );
        Money(value)
    }

    /// Rounds an exact value half up to the cent: the only way an exact value becomes money.
    #[inline(always)]
    pub fn round(exact: Decimal) -> Money {
        let value = round_half_up(exact, 2);
        // The invariant of `from_decimal`, checked without comparing decimals (this runs
        // for every loan at every day close): rounding to 0.01 leaves at most two
        // fractional digits, so the value is a multiple of 0.01; it must not be negative.
        assert!(
            value.scale() <= 2 && !is_negative(value),
            "invariant: money must be a non-negative multiple of 0.01, got {value}"
        );
        Money(value)
    }

    pub fn from_cents(cents: i64) -> Money {
        Money::from_decimal(Decimal::new(cents, 2))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// The amount in cents (fen), exactly (a `Money` is a non-negative multiple of
    /// 0.01); saturated at `i64::MAX`. The inverse of [`Money::from_cents`].
    pub fn cents(self) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        (self.0 * Decimal::ONE_HUNDRED).to_i64().unwrap_or(i64::MAX)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Sum; panics on overflow (a broken invariant, never a user error).
    #[inline(always)]
    pub fn plus(self, other: Money) -> Money {
        Money(self.0.checked_add(other.0).expect("invariant: money overflow"))
    }

    /// Difference; panics if it would go below zero (nothing owed is ever negative).
    #[inline(always)]
    pub fn minus(self, other: Money) -> Money {
        let value = self.0.checked_sub(other.0).expect("invariant: money overflow");
        assert!(!is_negative(value), "invariant: {self} - {other} is negative");
        Money(value)
    }

    pub fn min(self, other: Money) -> Money {
        if self <= other {
            self
        } else {
            other
        }
    }
}

/// `value < 0`, without a general comparison of decimals (rust_decimal keeps a sign on
/// zero, and -0 is not below zero).
#[inline(always)]
fn is_negative(value: Decimal) -> bool {
    value.is_sign_negative() && !value.is_zero()
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.0, 2))
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Money::parse_non_negative(&text).map_err(serde::de::Error::custom)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Money::plus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_exact_and_invert_from_cents() {
        for cents in [0, 1, 99, 12_345, 100_000_000] {
            assert_eq!(Money::from_cents(cents).cents(), cents);
        }
        assert_eq!(Money::parse_external("1000000.00", None).unwrap().cents(), 100_000_000);
    }

    #[test]
    fn rounds_half_up_away_from_zero() {
        assert_eq!(round_half_up(Decimal::new(155, 4), 2), Decimal::new(2, 2)); // 0.0155 -> 0.02
        assert_eq!(round_half_up(Decimal::new(125, 3), 2), Decimal::new(13, 2)); // 0.125 -> 0.13
        assert_eq!(round_half_up(Decimal::new(124999, 6), 2), Decimal::new(12, 2));
        assert_eq!(format_fixed(Decimal::new(7, 0), 2), "7.00");
        assert_eq!(format_fixed(Decimal::new(12345, 5), 4), "0.1235");
    }

    #[test]
    fn parses_only_two_decimal_positive_cny() {
        assert_eq!(Money::parse_external("7000.00", None).unwrap().to_string(), "7000.00");
        assert_eq!(Money::parse_external("0.01", Some("CNY")).unwrap(), Money::from_cents(1));
        for bad in ["7000", "7000.0", "7000.000", "-1.00", "+1.00", "1e3", "", ".50", "1.5O", " 1.00", "1,000.00"] {
            assert!(matches!(Money::parse_external(bad, None), Err(AmountError::Format(_))), "{bad}");
        }
        assert_eq!(Money::parse_external("0.00", None), Err(AmountError::NotPositive("0.00".into())));
        assert!(matches!(Money::parse_external("1.00", Some("USD")), Err(AmountError::Currency(_))));
        assert!(matches!(Money::parse_external("1234567890123456.00", None), Err(AmountError::TooLarge(_))));
    }

    #[test]
    #[should_panic(expected = "negative")]
    fn money_never_goes_negative() {
        let _ = Money::from_cents(100).minus(Money::from_cents(101));
    }
}
