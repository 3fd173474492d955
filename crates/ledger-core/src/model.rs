//! The ledger's vocabulary: products, statuses, buckets and refusal reasons.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    /// 订单贷款: advance on shipped, unpaid orders.
    Order,
    /// 信用贷款: unsecured credit line.
    Credit,
}

impl Product {
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Order => "ORDER",
            Product::Credit => "CREDIT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoanStatus {
    Active,
    Settled,
    WrittenOff,
}

impl LoanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoanStatus::Active => "ACTIVE",
            LoanStatus::Settled => "SETTLED",
            LoanStatus::WrittenOff => "WRITTEN_OFF",
        }
    }
}

/// Delinquency bucket by days past due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Bucket {
    #[serde(rename = "CURRENT")]
    Current,
    M1,
    M2,
    M3,
    #[serde(rename = "NPL")]
    Npl,
}

impl Bucket {
    pub const ALL: [Bucket; 5] = [Bucket::Current, Bucket::M1, Bucket::M2, Bucket::M3, Bucket::Npl];

    pub fn of(dpd: u32, b: &crate::config::Buckets) -> Bucket {
        match dpd {
            0 => Bucket::Current,
            d if d <= b.m1_max => Bucket::M1,
            d if d <= b.m2_max => Bucket::M2,
            d if d <= b.m3_max => Bucket::M3,
            _ => Bucket::Npl,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Current => "CURRENT",
            Bucket::M1 => "M1",
            Bucket::M2 => "M2",
            Bucket::M3 => "M3",
            Bucket::Npl => "NPL",
        }
    }

    pub fn parse(text: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == text)
    }
}

/// Every reason the ledger gives for refusing something. The order of the application
/// reasons is the order in which they are listed in an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    // Applications (SPEC 6), in the order SPEC lists them.
    ScoreTooLow,
    Blacklisted,
    HasOverdue,
    TermOutOfRange,
    InvalidAmount,
    OverProductMax,
    OverCreditLine,
    OverTotalLimit,
    OrderAlreadyFinanced,
    OrderAmountExceeded,
    // Repayments (SPEC 5); INVALID_AMOUNT is shared.
    UnknownLoan,
    // Collections actions (SPEC 7), in their order of precedence; UNKNOWN_LOAN is shared.
    UnknownBorrower,
    NotBlacklisted,
    Malicious,
    StillOverdue,
    NotOverdue,
    // Any keyed input (SPEC 9): its id was seen with other content. Never a fact's
    // reason (such an input becomes no fact); only an answer's, on loan.receipts.
    IdConflict,
}

impl Reason {
    pub const ALL: [Reason; 17] = [
        Reason::ScoreTooLow,
        Reason::Blacklisted,
        Reason::HasOverdue,
        Reason::TermOutOfRange,
        Reason::InvalidAmount,
        Reason::OverProductMax,
        Reason::OverCreditLine,
        Reason::OverTotalLimit,
        Reason::OrderAlreadyFinanced,
        Reason::OrderAmountExceeded,
        Reason::UnknownLoan,
        Reason::UnknownBorrower,
        Reason::NotBlacklisted,
        Reason::Malicious,
        Reason::StillOverdue,
        Reason::NotOverdue,
        Reason::IdConflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ScoreTooLow => "SCORE_TOO_LOW",
            Reason::Blacklisted => "BLACKLISTED",
            Reason::HasOverdue => "HAS_OVERDUE",
            Reason::TermOutOfRange => "TERM_OUT_OF_RANGE",
            Reason::InvalidAmount => "INVALID_AMOUNT",
            Reason::OverProductMax => "OVER_PRODUCT_MAX",
            Reason::OverCreditLine => "OVER_CREDIT_LINE",
            Reason::OverTotalLimit => "OVER_TOTAL_LIMIT",
            Reason::OrderAlreadyFinanced => "ORDER_ALREADY_FINANCED",
            Reason::OrderAmountExceeded => "ORDER_AMOUNT_EXCEEDED",
            Reason::UnknownLoan => "UNKNOWN_LOAN",
            Reason::UnknownBorrower => "UNKNOWN_BORROWER",
            Reason::NotBlacklisted => "NOT_BLACKLISTED",
            Reason::Malicious => "MALICIOUS",
            Reason::StillOverdue => "STILL_OVERDUE",
            Reason::NotOverdue => "NOT_OVERDUE",
            Reason::IdConflict => "ID_CONFLICT",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionKind {
    MarkMalicious,
    Reinstate,
    WriteOff,
}

impl ActionKind {
    pub const ALL: [ActionKind; 3] = [ActionKind::MarkMalicious, ActionKind::Reinstate, ActionKind::WriteOff];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::MarkMalicious => "MARK_MALICIOUS",
            ActionKind::Reinstate => "REINSTATE",
            ActionKind::WriteOff => "WRITE_OFF",
        }
    }

    pub fn parse(text: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.as_str() == text)
    }
}
