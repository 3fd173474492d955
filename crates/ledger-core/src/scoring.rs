//! The scoring tables as data (SPEC section 6): the merchant figures an application or
//! an update carries, the indicators, the tables' rows as the configuration holds them,
//! and the error of figures that cannot be scored. The computation (each indicator
//! mapped linearly onto 0..100 and clamped, the weighted sum as an exact fraction, the
//! credit line) is origination's (`origination::scoring`); the fold needs only the score
//! and credit line a fact carries.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The merchant figures an application carries. Which ones are needed depends on the
/// merchant kind's table; the others may be absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub kind: MerchantKind,
    pub annual_sales: Option<Decimal>,
    pub sales_growth: Option<Decimal>,
    pub orders_12m: Option<Decimal>,
    pub seller_rating: Option<Decimal>,
    pub active_days_90: Option<Decimal>,
    pub inventory_turnover: Option<Decimal>,
    pub debt_ratio: Option<Decimal>,
    pub positive_review_rate: Option<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MerchantKind {
    /// Sales run through the platform's payment account.
    Platform,
    OffPlatform,
}

impl MerchantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantKind::Platform => "PLATFORM",
            MerchantKind::OffPlatform => "OFF_PLATFORM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    AnnualSales,
    SalesGrowth,
    #[serde(rename = "orders_12m")]
    Orders12m,
    SellerRating,
    #[serde(rename = "active_days_90")]
    ActiveDays90,
    InventoryTurnover,
    DebtRatio,
    PositiveReviewRate,
}

impl Indicator {
    pub fn name(self) -> &'static str {
        match self {
            Indicator::AnnualSales => "annual_sales",
            Indicator::SalesGrowth => "sales_growth",
            Indicator::Orders12m => "orders_12m",
            Indicator::SellerRating => "seller_rating",
            Indicator::ActiveDays90 => "active_days_90",
            Indicator::InventoryTurnover => "inventory_turnover",
            Indicator::DebtRatio => "debt_ratio",
            Indicator::PositiveReviewRate => "positive_review_rate",
        }
    }

    /// The merchant's figure for this indicator, if it has one.
    pub fn value(self, m: &Merchant) -> Option<Decimal> {
        match self {
            Indicator::AnnualSales => m.annual_sales,
            Indicator::SalesGrowth => m.sales_growth,
            Indicator::Orders12m => m.orders_12m,
            Indicator::SellerRating => m.seller_rating,
            Indicator::ActiveDays90 => m.active_days_90,
            Indicator::InventoryTurnover => m.inventory_turnover,
            Indicator::DebtRatio => m.debt_ratio,
            Indicator::PositiveReviewRate => m.positive_review_rate,
        }
    }
}

/// One row of a scoring table: the indicator is worth 0 at `zero_at` and 100 at
/// `hundred_at` (which may be below `zero_at`, as for the debt ratio), linearly between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    pub indicator: Indicator,
    pub weight: Decimal,
    pub zero_at: Decimal,
    pub hundred_at: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Table(pub Vec<Weighted>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("merchant figure {0} is missing (needed by the {1} scoring table)")]
    Missing(&'static str, &'static str),
    #[error("merchant figures have too many digits to score exactly")]
    TooPrecise,
}
