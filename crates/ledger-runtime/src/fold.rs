//! One fold of loan.events for the readers of a process (issue 7, item 5).
//!
//! In `loanctl up` the projector and the four publishers all read loan.events. Each
//! used to fold it itself: five copies of every book in one process, five decodes and
//! applies of every fact. Now the projector's follower is the process's fold: it
//! applies each fact once, collects what the fold derives, and hands every batch to
//! the publishers of the process ([`Feed`], one bounded channel each) before it builds
//! its own rows. A publisher keeps its consumer group (which partitions it publishes,
//! and how far its group has published), and takes a partition's notices from the
//! shared batches when it can:
//!
//! - A partition is **shared** when, at its assignment, the next fact the publisher
//!   will receive of it from the shared batches is at or before the group's committed
//!   offset (so no fact after what was published is missed). Its partition of
//!   loan.events is then paused in the publisher's own consumer.
//! - Otherwise (the shared fold has run past what the group published: a partition
//!   taken over from a killed instance that had not committed) the publisher folds
//!   that partition itself, as a publisher of its own does, from its snapshot at or
//!   before the committed offset or from the beginning, for as long as it owns it.
//!
//! So the shared fold must start at or before what every feed's group has published:
//! the projector restores a book from its snapshot only if it is at or before both
//! its stored rows and every feed's committed offset ([`Feed::group`]). And it must
//! not run ahead of a publisher that has not been given its partitions yet: a feed
//! takes nothing before its first assignment, nor between a revocation and the next
//! assignment (eager rebalancing revokes everything first), and the bounded channel
//! holds the fold back meanwhile (at most [`FEED_BATCHES`] batches ahead).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ledger_core::Derived;
use tokio::sync::{mpsc, watch};

/// Batches a feed's channel holds before the fold waits for its publisher.
pub const FEED_BATCHES: usize = 16;

/// One fact of a shared batch, as a publisher needs it.
#[derive(Debug)]
pub struct Folded {
    pub partition: i32,
    pub offset: i64,
    /// The record's CreateTime (milliseconds), for the notice latency metric.
    pub timestamp_ms: i64,
    /// What the fold derived at the fact (empty for most facts).
    pub derived: Vec<Derived>,
}

/// A batch of the shared fold, in log order per partition.
pub type SharedBatch = Arc<Vec<Folded>>;

/// Where a feed stands, shared by its publisher's task and its consumer's rebalance
/// callback (which runs inside that task's receive).
#[derive(Debug, Default)]
pub struct FeedState {
    /// Per partition, the offset of the next fact the publisher will take from the
    /// shared batches. Set by the fold when it starts, moved on by the publisher.
    pub next: Mutex<BTreeMap<i32, i64>>,
    /// The owned partitions served from the shared batches (decided at assignment).
    pub shared: Mutex<BTreeSet<i32>>,
}

impl FeedState {
    /// Whether `partition`, assigned with the group's committed offset `committed`,
    /// can be served from the shared batches; notes the answer.
    pub fn take_shared(&self, partition: i32, committed: i64) -> bool {
        let next = self.next.lock().expect("feed lock").get(&partition).copied();
        let shared = next.is_some_and(|next| next <= committed);
        let mut set = self.shared.lock().expect("feed lock");
        if shared {
            set.insert(partition);
        } else {
            set.remove(&partition);
        }
        shared
    }

    pub fn is_shared(&self, partition: i32) -> bool {
        self.shared.lock().expect("feed lock").contains(&partition)
    }

    pub fn shared(&self) -> BTreeSet<i32> {
        self.shared.lock().expect("feed lock").clone()
    }

    /// Notes that the fact at `offset` of `partition` was taken from a shared batch.
    pub fn passed(&self, partition: i32, offset: i64) {
        self.next.lock().expect("feed lock").insert(partition, offset + 1);
    }
}

/// The fold's end of a feed: where it sends the shared batches.
pub struct Feed {
    /// The publisher's consumer group on loan.events (how far it has published).
    pub group: String,
    pub sender: mpsc::Sender<SharedBatch>,
    pub state: Arc<FeedState>,
    /// Turned true once the fold has started (restored its books): `state.next` holds
    /// where it starts.
    pub started: watch::Sender<bool>,
}

impl Feed {
    /// Called by the fold once its books are restored, with where it stands.
    pub fn start(&self, positions: &BTreeMap<i32, i64>) {
        self.state.next.lock().expect("feed lock").extend(positions.iter().map(|(p, o)| (*p, *o)));
        let _ = self.started.send(true);
    }
}

/// The publisher's end of a feed.
pub struct Subscription {
    pub receiver: mpsc::Receiver<SharedBatch>,
    pub state: Arc<FeedState>,
    pub started: watch::Receiver<bool>,
}

/// A feed for the publisher whose consumer group is `group`.
pub fn feed(group: &str) -> (Feed, Subscription) {
    let (sender, receiver) = mpsc::channel(FEED_BATCHES);
    let state = Arc::new(FeedState::default());
    let (started, started_rx) = watch::channel(false);
    (Feed { group: group.to_string(), sender, state: state.clone(), started }, Subscription { receiver, state, started: started_rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_shared_only_if_the_fold_is_not_past_what_was_published() {
        let (feed, sub) = feed("ledger-repayment-events");
        feed.start(&BTreeMap::from([(0, 100), (1, 0)]));
        assert!(sub.state.take_shared(0, 100), "the fold starts where the group published");
        assert!(sub.state.take_shared(1, 7), "the fold starts before: the facts up to 7 are passed over");
        sub.state.passed(1, 9);
        assert!(!sub.state.take_shared(1, 7), "the fold is past what was published: fold it privately");
        assert!(!sub.state.take_shared(2, 0), "a partition the fold does not know");
        assert_eq!(sub.state.shared(), BTreeSet::from([0]));
    }
}
