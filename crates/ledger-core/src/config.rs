//! The product configuration: every number of SPEC.md in one place. Defaults are the
//! specification's figures; a TOML file may override any of them (`loanctl --config`).
//!
//! Changing the configuration changes the numbers a replay computes: run every reader
//! of one log with the same file.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::Product;
use crate::money::Money;
use crate::scoring::{Indicator, Table};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProductConfig {
    pub order: ProductTerms,
    pub credit: ProductTerms,
    /// Penalty rate = daily rate x this (罚息, 1.5x).
    pub penalty_multiplier: Decimal,
    /// A borrower's outstanding principal plus the new loan may not exceed this.
    pub total_limit: Money,
    /// Approve at or above this score.
    pub approve_score_min: Decimal,
    /// Credit line = min(total_limit, annual_sales x factor x score / 100), rounded down
    /// to a multiple of `credit_line_step`.
    pub credit_line_factor: Decimal,
    pub credit_line_step: Decimal,
    pub buckets: Buckets,
    /// The borrower is blacklisted automatically when a loan reaches this DPD.
    pub auto_blacklist_dpd: u32,
    pub scoring: Scoring,
    /// In-loan monitoring (SPEC section 12): warning and recall thresholds.
    pub monitoring: Monitoring,
    /// Rewards for borrowers who repay on time (SPEC section 12).
    pub rewards: Rewards,
}

/// Early warning and recall (贷中监控). Thresholds are compared with the exact score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// A borrower is `warning` while its score is below this.
    pub warning_score_below: Decimal,
    /// An accepted merchant update scoring below this recalls the borrower's ACTIVE loans.
    pub recall_score_below: Decimal,
    /// A recalled loan matures this many days after the open business date of the update.
    pub recall_days: i64,
}

/// Rewards (贷后激励) for borrowers who repay on time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rewards {
    /// A borrower is rewarded from this many loans repaid on time on (and while it is
    /// not blacklisted, has nothing overdue and never had a loan written off).
    pub on_time_loans_min: u32,
    /// A rewarded borrower's application is approved from this score.
    pub approve_score_min: Decimal,
    /// A rewarded borrower's loan gets the product's daily rate x this.
    pub rate_multiplier: Decimal,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring { warning_score_below: d("50"), recall_score_below: d("40"), recall_days: 7 }
    }
}

impl Default for Rewards {
    fn default() -> Self {
        Rewards { on_time_loans_min: 3, approve_score_min: d("55"), rate_multiplier: d("0.9") }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductTerms {
    pub daily_rate: Decimal,
    pub max_term_days: i64,
    /// Per-loan maximum; `None` for ORDER, whose maximum is the sum of its orders.
    pub max_amount: Option<Money>,
}

/// Last DPD of each bucket; above `m3_max` is NPL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buckets {
    pub m1_max: u32,
    pub m2_max: u32,
    pub m3_max: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    pub platform: Table,
    pub off_platform: Table,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is not valid TOML for the ledger: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("configuration value is not allowed: {0}")]
    Invalid(String),
}

fn d(text: &str) -> Decimal {
    text.parse().expect("constant decimal")
}

fn indicator(field: Indicator, weight: &str, zero_at: &str, hundred_at: &str) -> crate::scoring::Weighted {
    crate::scoring::Weighted { indicator: field, weight: d(weight), zero_at: d(zero_at), hundred_at: d(hundred_at) }
}

impl Default for ProductConfig {
    fn default() -> Self {
        ProductConfig {
            order: ProductTerms { daily_rate: d("0.0005"), max_term_days: 60, max_amount: None },
            credit: ProductTerms {
                daily_rate: d("0.0006"),
                max_term_days: 365,
                max_amount: Some(Money::from_cents(50_000_000)),
            },
            penalty_multiplier: d("1.5"),
            total_limit: Money::from_cents(100_000_000),
            approve_score_min: d("60"),
            credit_line_factor: d("0.2"),
            credit_line_step: d("100"),
            buckets: Buckets { m1_max: 30, m2_max: 60, m3_max: 90 },
            auto_blacklist_dpd: 91,
            scoring: Scoring {
                platform: Table(vec![
                    indicator(Indicator::AnnualSales, "0.3", "0", "5000000"),
                    indicator(Indicator::SalesGrowth, "0.2", "-0.5", "0.5"),
                    indicator(Indicator::Orders12m, "0.2", "0", "10000"),
                    indicator(Indicator::SellerRating, "0.2", "1", "5"),
                    indicator(Indicator::ActiveDays90, "0.1", "0", "90"),
                ]),
                off_platform: Table(vec![
                    indicator(Indicator::AnnualSales, "0.2", "0", "5000000"),
                    indicator(Indicator::SalesGrowth, "0.2", "-0.5", "0.5"),
                    indicator(Indicator::InventoryTurnover, "0.2", "0", "12"),
                    indicator(Indicator::DebtRatio, "0.2", "1", "0"),
                    indicator(Indicator::ActiveDays90, "0.1", "0", "90"),
                    indicator(Indicator::PositiveReviewRate, "0.1", "0", "1"),
                ]),
            },
            monitoring: Monitoring::default(),
            rewards: Rewards::default(),
        }
    }
}

impl ProductConfig {
    /// A digest of every number of the configuration (16 hex digits of the SHA-256 of
    /// its JSON form): a snapshot of a book folded with another configuration is not
    /// this configuration's book.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a configuration always serializes");
        Sha256::digest(json).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a TOML file's text; keys left out keep SPEC's defaults.
    pub fn from_toml_str(text: &str) -> Result<ProductConfig, ConfigError> {
        let config: ProductConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        for terms in [&self.order, &self.credit] {
            if terms.daily_rate < Decimal::ZERO || terms.max_term_days < 1 {
                return bad("daily_rate must be >= 0 and max_term_days >= 1");
            }
        }
        let b = &self.buckets;
        if !(1 <= b.m1_max && b.m1_max < b.m2_max && b.m2_max < b.m3_max) {
            return bad("buckets must satisfy 1 <= m1_max < m2_max < m3_max");
        }
        if self.credit_line_step <= Decimal::ZERO || self.penalty_multiplier < Decimal::ZERO {
            return bad("credit_line_step must be > 0 and penalty_multiplier >= 0");
        }
        for table in [&self.scoring.platform, &self.scoring.off_platform] {
            for w in &table.0 {
                if w.zero_at == w.hundred_at {
                    return bad("an indicator's zero_at and hundred_at must differ");
                }
            }
        }
        let m = &self.monitoring;
        if m.recall_days < 0 || self.rewards.rate_multiplier < Decimal::ZERO {
            return bad("monitoring.recall_days and rewards.rate_multiplier must be >= 0");
        }
        // Stored scores are rounded down at 26 decimals or more (origination::scoring), which keeps
        // every comparison with a threshold of at most that many decimals exact.
        let thresholds = [self.approve_score_min, m.warning_score_below, m.recall_score_below, self.rewards.approve_score_min];
        if thresholds.iter().any(|t| t.scale() > 20) {
            return bad("score thresholds may have at most 20 decimals");
        }
        Ok(())
    }

    pub fn terms(&self, product: Product) -> &ProductTerms {
        match product {
            Product::Order => &self.order,
            Product::Credit => &self.credit,
        }
    }

    /// The configuration as TOML (what `loanctl config` prints).
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_spec_defaults() {
        assert_eq!(ProductConfig::from_toml_str("").unwrap(), ProductConfig::default());
    }

    #[test]
    fn overrides_one_key() {
        let c = ProductConfig::from_toml_str("auto_blacklist_dpd = 61\n[credit]\ndaily_rate = \"0.0007\"\nmax_term_days = 180\nmax_amount = \"300000.00\"\n").unwrap();
        assert_eq!(c.auto_blacklist_dpd, 61);
        assert_eq!(c.credit.max_term_days, 180);
        assert_eq!(c.order, ProductConfig::default().order);
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = ProductConfig::default().to_toml_string();
        assert_eq!(ProductConfig::from_toml_str(&text).unwrap(), ProductConfig::default());
    }

    #[test]
    fn monitoring_and_rewards_override_key_by_key() {
        let c = ProductConfig::from_toml_str("[monitoring]\nrecall_days = 14\n[rewards]\nrate_multiplier = \"0.8\"\n").unwrap();
        assert_eq!(c.monitoring.recall_days, 14);
        assert_eq!(c.monitoring.warning_score_below, ProductConfig::default().monitoring.warning_score_below);
        assert_eq!(c.rewards.rate_multiplier, d("0.8"));
        assert_eq!(c.rewards.on_time_loans_min, 3);
        assert!(ProductConfig::from_toml_str("[monitoring]\nrecall_days = -1\n").is_err());
    }

    #[test]
    fn rejects_unknown_keys() {
        assert!(ProductConfig::from_toml_str("penalty = 2").is_err());
    }
}
