//! The ledger's topic names, in one place.

/// Loan applications from the channels (input of origination).
pub const APPLICATIONS: &str = "loan.applications";
/// Repayments from the payment rails (input of repayment).
pub const REPAYMENTS: &str = "payments.repayments";
/// Operator actions: blacklist, reinstate, write off (input of collections).
pub const ACTIONS: &str = "collections.actions";
/// The platform's reports of a borrower's operating figures (input of monitoring).
pub const MERCHANT_UPDATES: &str = "merchant.updates";
/// The log of facts, keyed by borrower id: the one source of truth.
pub const EVENTS: &str = "loan.events";
/// Daily interest and penalty postings (output of accrual).
pub const ACCRUALS: &str = "loan.accruals";
/// Overdue, bucket and cure notices (output of collections); risk warnings and recalls
/// (output of monitoring).
pub const OVERDUE: &str = "loan.overdue";
/// How the fold applied each payment (output of repayment).
pub const RECEIPTS: &str = "loan.receipts";

/// Every topic above, in a fixed order.
pub const ALL: [&str; 8] = [
    APPLICATIONS,
    REPAYMENTS,
    ACTIONS,
    MERCHANT_UPDATES,
    EVENTS,
    ACCRUALS,
    OVERDUE,
    RECEIPTS,
];

/// Suffix of a dead-letter topic.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The dead-letter topic of `topic`: where input that cannot be decoded at all
/// goes, byte for byte.
pub fn dlq(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_dlq_appends_suffix() {
        let unique: std::collections::BTreeSet<_> = ALL.iter().collect();
        assert_eq!(unique.len(), ALL.len());
        assert_eq!(dlq(REPAYMENTS), "payments.repayments.dlq");
    }
}
