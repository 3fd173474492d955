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
/// The book writer's queue (internal): every input, routed to its book's partition
/// by the intake service of its topic, and each book's day close.
pub const COMMANDS: &str = "ledger.commands";
/// The id sequencer's queue (internal, one partition): every input, as a command for
/// its book with the ledger-wide ids it claims, in one order for the whole ledger.
/// The sequencer forwards each to its book's partition of ledger.commands, holding
/// back an input that shares an id with one another book has not decided yet.
pub const CLAIMS: &str = "ledger.claims";
/// Snapshots of the books (internal, compacted, co-partitioned with loan.events:
/// partition k holds book k's latest snapshot), so that a reader restores a book and
/// folds only the facts after it.
pub const SNAPSHOTS: &str = "ledger.snapshots";
/// Daily interest and penalty postings (output of accrual).
pub const ACCRUALS: &str = "loan.accruals";
/// Overdue, bucket and cure notices (output of collections); risk warnings and recalls
/// (output of monitoring).
pub const OVERDUE: &str = "loan.overdue";
/// How the fold applied each payment (output of repayment).
pub const RECEIPTS: &str = "loan.receipts";

/// Every topic above, in a fixed order.
pub const ALL: [&str; 11] = [
    APPLICATIONS,
    REPAYMENTS,
    ACTIONS,
    MERCHANT_UPDATES,
    EVENTS,
    COMMANDS,
    CLAIMS,
    SNAPSHOTS,
    ACCRUALS,
    OVERDUE,
    RECEIPTS,
];

/// The topics whose records are keyed by borrower id and so must have as many
/// partitions as loan.events: a borrower's inputs and its book then share a partition
/// number (co-partitioning, as Kafka Streams requires of joined topics).
/// ledger.commands is co-partitioned too: its partition k is book k's queue; so is
/// ledger.snapshots: its partition k holds book k's snapshots.
pub const CO_PARTITIONED: [&str; 6] = [EVENTS, COMMANDS, SNAPSHOTS, APPLICATIONS, MERCHANT_UPDATES, ACTIONS];

/// How many partitions the ledger creates `topic` with when the ledger has
/// `partitions` books: ledger.claims always has one (one order of every claim on a
/// ledger-wide id, read by one sequencer at a time); every other topic has one per
/// book.
pub fn partitions_of(topic: &str, partitions: i32) -> i32 {
    if topic == CLAIMS {
        1
    } else {
        partitions
    }
}

/// Suffix of a dead-letter topic.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The dead-letter topic of `topic`: where input that cannot be decoded at all
/// goes, byte for byte.
pub fn dlq(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// One day in milliseconds, for retention settings.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How long inputs stay on their topics: a week (Apache Kafka's default, written
/// down). Once decided, an input lives on as its fact in loan.events; the input
/// topic is only read again by a service that resumes from its stored position.
pub const INPUT_RETENTION_MS: i64 = 7 * DAY_MS;

/// How often ledger.snapshots rolls a segment: an hour (compaction leaves the active
/// segment alone, so older snapshots stay at most about this long).
pub const SNAPSHOT_SEGMENT_MS: i64 = 60 * 60 * 1000;

/// How long outputs (postings, notices, receipts) and dead letters stay: 30 days,
/// time for a subscriber that was down to catch up, or an operator to look at a
/// dead letter. Every output can be derived again from loan.events.
pub const OUTPUT_RETENTION_MS: i64 = 30 * DAY_MS;

/// The topic settings the ledger creates `topic` with, as `(name, value)` pairs
/// of Kafka topic configuration.
///
/// loan.events is the source of truth: kept forever (`retention.ms=-1`,
/// `retention.bytes=-1`) and never compacted (compaction keeps one fact per
/// borrower). ledger.snapshots is compacted (each key, a book's chunk in a slot or its
/// pointer, keeps its latest record), its segments rolled every hour so that older
/// snapshots are compacted away soon. Every other topic is deleted by time: inputs
/// after [`INPUT_RETENTION_MS`], outputs and dead letters after [`OUTPUT_RETENTION_MS`].
pub fn settings(topic: &str) -> Vec<(&'static str, String)> {
    if topic == SNAPSHOTS {
        return vec![("cleanup.policy", "compact".to_owned()), ("segment.ms", SNAPSHOT_SEGMENT_MS.to_string())];
    }
    let retention_ms = if topic == EVENTS {
        -1
    } else if topic.ends_with(DLQ_SUFFIX) || [ACCRUALS, OVERDUE, RECEIPTS].contains(&topic) {
        OUTPUT_RETENTION_MS
    } else {
        INPUT_RETENTION_MS
    };
    vec![
        ("cleanup.policy", "delete".to_owned()),
        ("retention.ms", retention_ms.to_string()),
        ("retention.bytes", "-1".to_owned()),
    ]
}

/// The settings loan.events must have at start-up for the ledger to run: nothing
/// may ever be deleted from the source of truth.
pub const EVENTS_REQUIRED: &[(&str, &str)] =
    &[("cleanup.policy", "delete"), ("retention.ms", "-1"), ("retention.bytes", "-1")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_dlq_appends_suffix() {
        let unique: std::collections::BTreeSet<_> = ALL.iter().collect();
        assert_eq!(unique.len(), ALL.len());
        assert_eq!(dlq(REPAYMENTS), "payments.repayments.dlq");
    }

    #[test]
    fn the_source_of_truth_is_kept_forever_and_the_rest_by_time() {
        let value = |topic: &str, key: &str| settings(topic).into_iter().find(|(k, _)| *k == key).unwrap().1;
        for (key, wanted) in EVENTS_REQUIRED {
            assert_eq!(value(EVENTS, key), *wanted, "{key}");
        }
        assert_eq!(value(APPLICATIONS, "retention.ms"), "604800000");
        assert_eq!(value(RECEIPTS, "retention.ms"), "2592000000");
        assert_eq!(value(&dlq(EVENTS), "retention.ms"), "2592000000");
        for topic in ALL {
            let policy = if topic == SNAPSHOTS { "compact" } else { "delete" };
            assert_eq!(value(topic, "cleanup.policy"), policy, "{topic}");
        }
    }
}
