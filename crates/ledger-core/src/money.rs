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
    let scale = value.scale();
    if scale <= decimals {
        // Nothing to round (what `round_dp_with_strategy` returns too).
        return value;
    }
    // The day close rounds every loan's accumulators, so this is on the hot path. The
    // result is exactly what `round_dp_with_strategy(decimals, MidpointAwayFromZero)`
    // returns (a test below compares the two bit for bit), computed on the integer
    // mantissa: divide by 10^shift, and round the magnitude up when the remainder is at
    // least half the divisor. Zero (whose sign rust_decimal keeps) and mantissas beyond
    // 64 bits take rust_decimal's own path.
    let magnitude = value.mantissa().unsigned_abs();
    match u64::try_from(magnitude) {
        Ok(m) if m != 0 => {
            let Some((quotient, remainder, divisor)) = div_rem_pow10(m, scale - decimals) else {
                return round_half_up_slow(value, decimals);
            };
            let rounded = if remainder >= divisor - remainder { quotient + 1 } else { quotient };
            let signed = if value.is_sign_negative() { -i128::from(rounded) } else { i128::from(rounded) };
            Decimal::try_from_i128_with_scale(signed, decimals).expect("invariant: a rounded mantissa fits 96 bits")
        }
        _ => round_half_up_slow(value, decimals),
    }
}

#[cold]
#[inline(never)]
fn round_half_up_slow(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero)
}

/// (m / 10^shift, m % 10^shift, 10^shift) for shift in 1..=19, with constant divisors
/// (a multiplication rather than a slow 64-bit division); `None` for other shifts.
#[inline(always)]
fn div_rem_pow10(m: u64, shift: u32) -> Option<(u64, u64, u64)> {
    #[inline(always)]
    fn by<const D: u64>(m: u64) -> Option<(u64, u64, u64)> {
        Some((m / D, m % D, D))
    }
    match shift {
        1 => by::<10>(m),
        2 => by::<100>(m),
        3 => by::<1_000>(m),
        4 => by::<10_000>(m),
        5 => by::<100_000>(m),
        6 => by::<1_000_000>(m),
        7 => by::<10_000_000>(m),
        8 => by::<100_000_000>(m),
        9 => by::<1_000_000_000>(m),
        10 => by::<10_000_000_000>(m),
        11 => by::<100_000_000_000>(m),
        12 => by::<1_000_000_000_000>(m),
        13 => by::<10_000_000_000_000>(m),
        14 => by::<100_000_000_000_000>(m),
        15 => by::<1_000_000_000_000_000>(m),
        16 => by::<10_000_000_000_000_000>(m),
        17 => by::<100_000_000_000_000_000>(m),
        18 => by::<1_000_000_000_000_000_000>(m),
        19 => by::<10_000_000_000_000_000_000>(m),
        _ => None,
    }
}

/// `a + b` on exact (unrounded) values, as rust_decimal computes it, with the fold's
/// common case inlined (the day close adds to every loan's accumulator).
#[inline(always)]
pub(crate) fn exact_add(a: Decimal, b: Decimal) -> Decimal {
    match exact_add_fast(a, b) {
        Some(sum) => sum,
        None => a + b,
    }
}

/// `a * b` on exact (unrounded) values, as rust_decimal computes it, with the fold's
/// common case inlined (the day close multiplies every loan's principal by its rate).
#[inline(always)]
pub(crate) fn exact_mul(a: Decimal, b: Decimal) -> Decimal {
    match exact_mul_fast(a, b) {
        Some(product) => product,
        None => a * b,
    }
}

/// The sum when it is simple: a zero operand (rust_decimal then returns the other one,
/// and the second for 0 + 0), or both non-negative and below 2^64 units of their last
/// digit, so that the sum is exact at the larger scale. `None` otherwise.
#[inline(always)]
fn exact_add_fast(a: Decimal, b: Decimal) -> Option<Decimal> {
    if b.is_zero() {
        return Some(if a.is_zero() { b } else { a });
    }
    if a.is_zero() {
        return Some(b);
    }
    if a.is_sign_negative() || b.is_sign_negative() {
        return None;
    }
    let (x, y) = (u64::try_from(a.mantissa()).ok()?, u64::try_from(b.mantissa()).ok()?);
    let (sa, sb) = (a.scale(), b.scale());
    let scale = sa.max(sb);
    let sum = u128::from(x) * pow10_u128(scale - sa)? + u128::from(y) * pow10_u128(scale - sb)?;
    Decimal::try_from_i128_with_scale(i128::try_from(sum).ok()?, scale).ok()
}

/// The product when it is simple: both operands below 2^64 units of their last digit,
/// not zero, and a product that a decimal holds exactly. `None` otherwise.
#[inline(always)]
fn exact_mul_fast(a: Decimal, b: Decimal) -> Option<Decimal> {
    let x = u64::try_from(a.mantissa().unsigned_abs()).ok()?;
    let y = u64::try_from(b.mantissa().unsigned_abs()).ok()?;
    let scale = a.scale() + b.scale();
    let product = i128::try_from(u128::from(x) * u128::from(y)).ok()?;
    if product == 0 || scale > Decimal::MAX_SCALE {
        return None;
    }
    let signed = if a.is_sign_negative() != b.is_sign_negative() { -product } else { product };
    Decimal::try_from_i128_with_scale(signed, scale).ok()
}

/// 10^n for n in 0..=19 (the largest power of ten below 2^64), else `None`.
#[inline(always)]
fn pow10_u128(n: u32) -> Option<u128> {
    (n <= 19).then(|| 10u128.pow(n))
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
    fn rounds_half_up_away_from_zero() {
        assert_eq!(round_half_up(Decimal::new(155, 4), 2), Decimal::new(2, 2)); // 0.0155 -> 0.02
        assert_eq!(round_half_up(Decimal::new(125, 3), 2), Decimal::new(13, 2)); // 0.125 -> 0.13
        assert_eq!(round_half_up(Decimal::new(124999, 6), 2), Decimal::new(12, 2));
        assert_eq!(format_fixed(Decimal::new(7, 0), 2), "7.00");
        assert_eq!(format_fixed(Decimal::new(12345, 5), 4), "0.1235");
    }

    /// `round_half_up` computes on the mantissa; it must give exactly (bit for bit, scale
    /// and sign included) what rust_decimal's own half-away-from-zero rounding gives.
    #[test]
    fn round_half_up_is_rust_decimals_rounding() {
        let reference = |v: Decimal, dp: u32| v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        let mut seed = 0x5EED_u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut values = vec![
            Decimal::ZERO,
            Decimal::new(5, 3),
            Decimal::new(-5, 3),
            Decimal::new(-4, 3),
            Decimal::new(15, 3),
            Decimal::new(-125, 3),
            Decimal::new(124_999, 6),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, false, 28),
            Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, true, 1),
            Decimal::from_parts(0, 0, 0, true, 5),
        ];
        for _ in 0..200_000 {
            let (a, b) = (next(), next());
            let scale = u32::try_from(a % 29).expect("small");
            let negative = b & 1 == 1;
            let value = match (a >> 8) % 4 {
                // Small mantissas (the fold's accumulators), and ties.
                0 => Decimal::from_parts(u32::try_from(b >> 40).expect("small"), 0, 0, negative, scale),
                1 => Decimal::from_parts(
                    u32::try_from((b >> 40) % 100_000).expect("small") * 10 + 5,
                    0,
                    0,
                    negative,
                    scale,
                ),
                // 64-bit and full 96-bit mantissas.
                2 => Decimal::from_parts(
                    u32::try_from(b >> 32).expect("small"),
                    u32::try_from(b & 0xFFFF_FFFF).expect("small"),
                    0,
                    negative,
                    scale,
                ),
                _ => Decimal::from_parts(
                    u32::try_from(b >> 32).expect("small"),
                    u32::try_from(b & 0xFFFF_FFFF).expect("small"),
                    u32::try_from(a >> 32).expect("small"),
                    negative,
                    scale,
                ),
            };
            values.push(value);
        }
        for value in values {
            for dp in [0, 1, 2, 4, 6, 27, 28] {
                let (got, want) = (round_half_up(value, dp), reference(value, dp));
                assert_eq!(got.serialize(), want.serialize(), "round_half_up({value:?}, {dp}) = {got:?}, want {want:?}");
            }
        }
    }

    /// `exact_add` and `exact_mul` inline the fold's common case; whenever that fast path
    /// answers, it must give exactly (bit for bit) what rust_decimal's `+` and `*` give.
    #[test]
    fn exact_arithmetic_is_rust_decimals() {
        let mut seed = 0xACC2_u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut random = move || {
            let (a, b) = (next(), next());
            let scale = u32::try_from(a % 29).expect("small");
            let negative = b & 1 == 1 && a & 2 == 2;
            let word = |v: u64| u32::try_from(v & 0xFFFF_FFFF).expect("small");
            match (a >> 8) % 6 {
                0 => Decimal::ZERO,
                1 => Decimal::from_parts(0, 0, 0, negative, scale),
                2 => Decimal::from_parts(word(b >> 40), 0, 0, negative, scale),
                3 => Decimal::from_parts(word(b), word(b >> 32), 0, negative, scale),
                4 => Decimal::from_parts(word(b), word(b >> 32), word(a >> 32), negative, scale),
                // Amounts and rates as the fold sees them.
                _ => Decimal::from_parts(word(b >> 20), 0, 0, negative, scale % 8),
            }
        };
        let mut values = vec![Decimal::MAX, Decimal::MIN, Decimal::ONE, Decimal::new(5, 4), Decimal::new(15, 1)];
        for _ in 0..2_000 {
            values.push(random());
        }
        let (mut adds, mut muls) = (0, 0);
        for a in &values {
            for b in values.iter().take(200) {
                for (x, y) in [(*a, *b), (*b, *a)] {
                    if let Some(sum) = exact_add_fast(x, y) {
                        assert_eq!(Some(sum.serialize()), x.checked_add(y).map(|v| v.serialize()), "{x:?} + {y:?}");
                        adds += 1;
                    }
                    if let Some(product) = exact_mul_fast(x, y) {
                        assert_eq!(Some(product.serialize()), x.checked_mul(y).map(|v| v.serialize()), "{x:?} * {y:?}");
                        muls += 1;
                    }
                }
            }
        }
        // The fast paths must actually be exercised.
        assert!(adds > 100_000 && muls > 100_000, "{adds} {muls}");
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
