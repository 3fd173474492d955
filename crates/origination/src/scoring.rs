//! Credit scoring (SPEC section 6): each indicator maps linearly onto 0..100 and is
//! clamped; the score is the weighted sum. The score is computed as an exact fraction,
//! so the approval threshold is compared without any rounding (85/90 stays 17/18, not
//! 0.9444...); it is shown rounded half up to 0.01. The tables' numbers are the
//! configuration's (`ledger_core::config`, overridable by TOML); this is the computation.
//! Monitoring scores merchant updates with it too ([`score_of`]): SPEC section 12 scores
//! them "with the same tables, exactly".

use ledger_core::config::ProductConfig;
use ledger_core::money::{round_half_up, Money};
use ledger_core::scoring::{Merchant, MerchantKind, ScoreError, Table};
use ledger_core::InputError;
use rust_decimal::Decimal;

/// A score: exact, with its displayed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score(Ratio);

impl Score {
    /// The score as a decimal (28 significant digits): for storage and display only.
    pub fn to_decimal(self) -> Decimal {
        self.0.to_decimal()
    }

    /// The score rounded half up to 0.01, as it is shown.
    pub fn shown(self) -> Decimal {
        round_half_up(self.to_decimal(), 2)
    }

    pub fn at_least(self, threshold: Decimal) -> bool {
        self.0.cmp_decimal(threshold).is_some_and(|o| o.is_ge())
    }
}

/// The score of a merchant's figures by one table; an error when a figure the table
/// needs is missing or the figures have too many digits to score exactly.
pub fn score(table: &Table, merchant: &Merchant) -> Result<Score, ScoreError> {
    let mut sum = Ratio::ZERO;
    for w in &table.0 {
        let x = w
            .indicator
            .value(merchant)
            .ok_or(ScoreError::Missing(w.indicator.name(), merchant.kind.as_str()))?;
        let part = (|| {
            let t = Ratio::from_decimal(x)?
                .sub(Ratio::from_decimal(w.zero_at)?)?
                .div(Ratio::from_decimal(w.hundred_at)?.sub(Ratio::from_decimal(w.zero_at)?)?)?
                .clamp01()?;
            t.mul(Ratio::from_decimal(w.weight * Decimal::ONE_HUNDRED)?)
        })()
        .ok_or(ScoreError::TooPrecise)?;
        sum = sum.add(part).ok_or(ScoreError::TooPrecise)?;
    }
    Ok(Score(sum))
}

/// The score and credit line of a merchant's figures (SPEC section 6) by the table of
/// its kind; an error when a figure the table needs is missing.
pub fn score_of(config: &ProductConfig, merchant: &Merchant) -> Result<(Score, Money), InputError> {
    let table = match merchant.kind {
        MerchantKind::Platform => &config.scoring.platform,
        MerchantKind::OffPlatform => &config.scoring.off_platform,
    };
    let score = score(table, merchant)?;
    let annual_sales = merchant.annual_sales.ok_or(InputError::Missing("merchant.annual_sales"))?;
    let line = credit_line(annual_sales, config.credit_line_factor, score, config.credit_line_step, config.total_limit)?;
    Ok((score, line))
}

/// Credit line = min(limit, annual_sales x factor x score / 100), rounded down to a
/// multiple of `step`, never below zero.
pub fn credit_line(annual_sales: Decimal, factor: Decimal, score: Score, step: Decimal, limit: Money) -> Result<Money, ScoreError> {
    let exact = Ratio::from_decimal(annual_sales)
        .and_then(|s| s.mul(Ratio::from_decimal(factor)?))
        .and_then(|s| s.mul(score.0))
        .and_then(|s| s.div(Ratio::from_decimal(step * Decimal::ONE_HUNDRED)?))
        .ok_or(ScoreError::TooPrecise)?;
    let steps = exact.floor().max(0);
    let line = Decimal::from_i128_with_scale(steps, 0)
        .checked_mul(step)
        .ok_or(ScoreError::TooPrecise)?;
    if line >= limit.as_decimal() {
        Ok(limit)
    } else {
        Ok(Money::round(line))
    }
}

/// An exact fraction n/d (d > 0) over i128; every operation is checked and returns None
/// on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ratio {
    n: i128,
    d: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    const ZERO: Ratio = Ratio { n: 0, d: 1 };
    const ONE: Ratio = Ratio { n: 1, d: 1 };

    fn new(n: i128, d: i128) -> Option<Ratio> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let (n, d) = (n / g, d / g);
        Some(if d < 0 { Ratio { n: n.checked_neg()?, d: d.checked_neg()? } } else { Ratio { n, d } })
    }

    fn from_decimal(x: Decimal) -> Option<Ratio> {
        Ratio::new(x.mantissa(), 10i128.checked_pow(x.scale())?)
    }

    fn add(self, o: Ratio) -> Option<Ratio> {
        let g = gcd(self.d, o.d);
        let d = (self.d / g).checked_mul(o.d)?;
        let n = self.n.checked_mul(o.d / g)?.checked_add(o.n.checked_mul(self.d / g)?)?;
        Ratio::new(n, d)
    }

    fn sub(self, o: Ratio) -> Option<Ratio> {
        self.add(Ratio { n: o.n.checked_neg()?, d: o.d })
    }

    fn mul(self, o: Ratio) -> Option<Ratio> {
        let g1 = gcd(self.n, o.d).max(1);
        let g2 = gcd(o.n, self.d).max(1);
        Ratio::new((self.n / g1).checked_mul(o.n / g2)?, (self.d / g2).checked_mul(o.d / g1)?)
    }

    fn div(self, o: Ratio) -> Option<Ratio> {
        self.mul(Ratio::new(o.d, o.n)?)
    }

    fn clamp01(self) -> Option<Ratio> {
        Some(if self.n < 0 {
            Ratio::ZERO
        } else if self.n >= self.d {
            Ratio::ONE
        } else {
            self
        })
    }

    fn floor(self) -> i128 {
        self.n.div_euclid(self.d)
    }

    fn cmp_decimal(self, x: Decimal) -> Option<std::cmp::Ordering> {
        let o = Ratio::from_decimal(x)?;
        let left = self.n.checked_mul(o.d)?;
        let right = o.n.checked_mul(self.d)?;
        Some(left.cmp(&right))
    }

    /// floor(n/d) as a decimal with as many places as fit (up to 28; at least 26 for
    /// any score up to 100). Rounding *down* keeps comparisons exact: for a threshold t
    /// with at most that many places, floor(x) < t exactly when x < t, so the fold can
    /// compare a stored score with 50, 40, 55 or 60 and get the decider's answer.
    fn to_decimal(self) -> Decimal {
        const MANTISSA_MAX: i128 = (1 << 96) - 1;
        let mut mantissa = self.n.div_euclid(self.d);
        let mut rest = self.n.rem_euclid(self.d);
        let mut scale = 0;
        while scale < 28 && rest != 0 {
            let (Some(shifted), Some(rest10)) = (mantissa.checked_mul(10), rest.checked_mul(10)) else { break };
            let next = shifted + rest10 / self.d;
            if next.abs() > MANTISSA_MAX {
                break;
            }
            mantissa = next;
            rest = rest10 % self.d;
            scale += 1;
        }
        Decimal::try_from_i128_with_scale(mantissa, scale).unwrap_or(if mantissa < 0 { Decimal::MIN } else { Decimal::MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn platform(sales: &str, growth: &str, orders: &str, rating: &str, days: &str) -> Merchant {
        Merchant {
            kind: MerchantKind::Platform,
            annual_sales: Some(dec(sales)),
            sales_growth: Some(dec(growth)),
            orders_12m: Some(dec(orders)),
            seller_rating: Some(dec(rating)),
            active_days_90: Some(dec(days)),
            inventory_turnover: None,
            debt_ratio: None,
            positive_review_rate: None,
        }
    }

    fn off(sales: &str, growth: &str, turnover: &str, debt: &str, days: &str, reviews: &str) -> Merchant {
        Merchant {
            kind: MerchantKind::OffPlatform,
            annual_sales: Some(dec(sales)),
            sales_growth: Some(dec(growth)),
            orders_12m: None,
            seller_rating: None,
            active_days_90: Some(dec(days)),
            inventory_turnover: Some(dec(turnover)),
            debt_ratio: Some(dec(debt)),
            positive_review_rate: Some(dec(reviews)),
        }
    }

    #[test]
    fn platform_table_matches_spec_example() {
        // 0.3x60 + 0.2x80 + 0.2x80 + 0.2x100 + 0.1x(85/90x100) = 79.444...
        let c = ProductConfig::default();
        let s = score(&c.scoring.platform, &platform("3000000.00", "0.30", "8000", "5", "85")).unwrap();
        assert_eq!(s.shown(), dec("79.44"));
        let line = credit_line(dec("3000000.00"), c.credit_line_factor, s, c.credit_line_step, c.total_limit).unwrap();
        assert_eq!(line.to_string(), "476600.00");
    }

    #[test]
    fn off_platform_table_matches_spec_example() {
        // 0.2x16 + 0.2x45 + 0.2x(6.5/12x100) + 0.2x55 + 0.1x(60/90x100) + 0.1x97 = 50.40
        let c = ProductConfig::default();
        let s = score(&c.scoring.off_platform, &off("800000.00", "-0.05", "6.5", "0.45", "60", "0.97")).unwrap();
        assert_eq!(s.shown(), dec("50.40"));
        let line = credit_line(dec("800000.00"), c.credit_line_factor, s, c.credit_line_step, c.total_limit).unwrap();
        assert_eq!(line.to_string(), "80600.00");
    }

    #[test]
    fn indicators_clamp_at_both_ends() {
        let c = ProductConfig::default();
        let top = score(&c.scoring.platform, &platform("9000000.00", "3", "20000", "7", "120")).unwrap();
        assert_eq!(top.shown(), dec("100.00"));
        let bottom = score(&c.scoring.platform, &platform("0.00", "-0.9", "0", "0", "0")).unwrap();
        assert_eq!(bottom.shown(), dec("0.00"));
        let off_bottom = score(&c.scoring.off_platform, &off("-5.00", "-1", "-3", "1.7", "-1", "-0.2")).unwrap();
        assert_eq!(off_bottom.shown(), dec("0.00"));
        let off_top = score(&c.scoring.off_platform, &off("6000000.00", "0.9", "40", "-0.5", "95", "1.2")).unwrap();
        assert_eq!(off_top.shown(), dec("100.00"));
    }

    #[test]
    fn threshold_is_compared_exactly() {
        // 0.2x(6.5/12x100) + 0.1x(60/90x100) = 10.8333.. + 6.6666.. = 17.5 exactly; as
        // truncated decimals they would sum to 17.4999...; the exact fraction is 60.00.
        // sales 1,625,000 -> 32.5 x 0.2 = 6.5; growth 0.5 -> 20; debt 0.1 -> 90 x 0.2 = 18;
        // reviews 0 -> 0. Sum: 6.5 + 20 + 10.8333.. + 18 + 6.6666.. + 0 = 62. Adjust reviews
        // to hit 60: use debt 0.2 -> 16. Sum = 6.5 + 20 + 10.8333.. + 16 + 6.6666.. = 60.
        let c = ProductConfig::default();
        let s = score(&c.scoring.off_platform, &off("1625000.00", "0.5", "6.5", "0.2", "60", "0")).unwrap();
        assert!(s.at_least(dec("60")));
        assert!(!s.at_least(dec("60.0000000001")));
        assert_eq!(s.shown(), dec("60.00"));
    }

    #[test]
    fn stored_score_is_rounded_down_so_thresholds_compare_alike() {
        // 85/90 x 10 = 9.444...: the stored decimal never exceeds the exact value.
        let c = ProductConfig::default();
        let s = score(&c.scoring.platform, &platform("0.00", "-0.5", "0", "1", "85")).unwrap();
        assert_eq!(s.to_decimal().to_string(), "9.444444444444444444444444444");
        // A score one part in 10^27 below 50 is stored below 50, not rounded up to it.
        let r = Ratio::new(50 * 10i128.pow(27) - 1, 10i128.pow(27)).unwrap();
        assert!(r.to_decimal() < dec("50"));
        assert_eq!(Ratio::new(-3, 2).unwrap().to_decimal(), dec("-1.5"));
        assert_eq!(Ratio::new(1, 3).unwrap().to_decimal().to_string(), "0.3333333333333333333333333333");
    }

    #[test]
    fn missing_figure_is_named() {
        let c = ProductConfig::default();
        let mut m = platform("1.00", "0", "1", "1", "1");
        m.seller_rating = None;
        assert_eq!(score(&c.scoring.platform, &m), Err(ScoreError::Missing("seller_rating", "PLATFORM")));
    }

    #[test]
    fn credit_line_caps_and_floors() {
        let c = ProductConfig::default();
        let s = score(&c.scoring.platform, &platform("50000000.00", "1", "10000", "5", "90")).unwrap();
        let line = credit_line(dec("50000000.00"), c.credit_line_factor, s, c.credit_line_step, c.total_limit).unwrap();
        assert_eq!(line.to_string(), "1000000.00");
        // 2,500,000 x 0.2 x 0.5 = 250,000 exactly: not pushed below by division.
        let half = score(&c.scoring.off_platform, &off("2500000.00", "0", "6", "0.5", "45", "0.5")).unwrap();
        assert_eq!(half.shown(), dec("50.00"));
        let line = credit_line(dec("2500000.00"), c.credit_line_factor, half, c.credit_line_step, c.total_limit).unwrap();
        assert_eq!(line.to_string(), "250000.00");
        let none = credit_line(dec("-10.00"), c.credit_line_factor, half, c.credit_line_step, c.total_limit).unwrap();
        assert_eq!(none, Money::ZERO);
    }
}
