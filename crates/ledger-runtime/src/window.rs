//! The id sequencer's hold rule, without the broker: which forwarded commands are not
//! yet known to be decided, which ids they claimed, and whether a command must wait for
//! another book ([`Window::held_by`]). [`crate::claims`] runs it between ledger.claims and
//! ledger.commands; the deterministic simulation (tests/simulation.rs) runs the same
//! window over simulated queues.

use std::collections::{BTreeMap, HashMap};

/// The forwarded commands not yet known to be decided, and the ids they claimed.
#[derive(Default)]
pub struct Window {
    /// id -> the last forwarded command that claimed it (its sequence number here).
    ids: HashMap<String, u64>,
    /// sequence number -> where the command went.
    forwarded: BTreeMap<u64, Forwarded>,
    next: u64,
}

struct Forwarded {
    book: i32,
    /// Its offset on ledger.commands, once delivered.
    offset: Option<i64>,
    claims: Vec<String>,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.forwarded.is_empty()
    }

    /// The books that commands in the window went to.
    pub fn books(&self) -> Vec<i32> {
        let mut books: Vec<i32> = self.forwarded.values().map(|f| f.book).collect();
        books.sort_unstable();
        books.dedup();
        books
    }

    /// The command in the window that last claimed one of `claims` and went to another
    /// book than `book`, if any.
    pub fn held_by(&self, claims: &[String], book: i32) -> Option<u64> {
        claims.iter().filter_map(|id| self.ids.get(id)).copied().find(|seq| self.forwarded.get(seq).is_some_and(|f| f.book != book))
    }

    /// A forwarded command's book and offset (delivered: see [`Window::delivered_at`]).
    pub fn position(&self, seq: u64) -> (i32, i64) {
        let forwarded = &self.forwarded[&seq];
        (forwarded.book, forwarded.offset.expect("invariant: delivered before a hold"))
    }

    /// Notes a command forwarded to `book`; returns its sequence number.
    pub fn forwarded(&mut self, book: i32, claims: Vec<String>) -> u64 {
        let seq = self.next;
        self.next += 1;
        for id in &claims {
            self.ids.insert(id.clone(), seq);
        }
        self.forwarded.insert(seq, Forwarded { book, offset: None, claims });
        seq
    }

    /// Notes a forwarded command's offset on ledger.commands, once its delivery is
    /// acknowledged.
    pub fn delivered_at(&mut self, seq: u64, offset: i64) {
        if let Some(forwarded) = self.forwarded.get_mut(&seq) {
            forwarded.offset = Some(offset);
        }
    }

    /// Forgets the delivered commands below what the book writers have committed.
    pub fn forget_decided(&mut self, committed: &BTreeMap<i32, i64>) {
        let decided: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, f)| f.offset.is_some_and(|o| committed.get(&f.book).is_some_and(|c| o < *c)))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in decided {
            let Some(forwarded) = self.forwarded.remove(&seq) else { continue };
            for id in forwarded.claims {
                if self.ids.get(&id) == Some(&seq) {
                    self.ids.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_id_forwarded_to_another_book_holds_until_that_book_decided_it() {
        let mut window = Window::default();
        let first = window.forwarded(1, ids(&["application:A", "order:O1"]));
        window.delivered_at(first, 41);
        // The same book keeps its order: no hold.
        assert_eq!(window.held_by(&ids(&["application:A"]), 1), None);
        // Another book claiming the application id or one of its orders waits.
        assert_eq!(window.held_by(&ids(&["application:A"]), 2), Some(first));
        assert_eq!(window.held_by(&ids(&["application:B", "order:O1"]), 0), Some(first));
        assert_eq!(window.held_by(&ids(&["application:B", "order:O2"]), 0), None);
        assert_eq!(window.position(first), (1, 41));
        // Book 1 committed up to 41 (not past it): still held; past it: forgotten.
        window.forget_decided(&BTreeMap::from([(1, 41)]));
        assert_eq!(window.held_by(&ids(&["order:O1"]), 0), Some(first));
        window.forget_decided(&BTreeMap::from([(1, 42)]));
        assert!(window.is_empty());
        assert_eq!(window.held_by(&ids(&["order:O1"]), 0), None);
    }

    #[test]
    fn a_later_claim_of_an_id_outlives_the_earlier_one() {
        let mut window = Window::default();
        let first = window.forwarded(0, ids(&["payment:P"]));
        let second = window.forwarded(2, ids(&["payment:P"]));
        window.delivered_at(first, 5);
        window.delivered_at(second, 9);
        window.forget_decided(&BTreeMap::from([(0, 6)]));
        assert_eq!(window.held_by(&ids(&["payment:P"]), 0), Some(second), "the claim in book 2 is still undecided");
        // An undelivered command is never forgotten.
        let third = window.forwarded(1, ids(&["update:U"]));
        window.forget_decided(&BTreeMap::from([(1, 1_000)]));
        assert_eq!(window.held_by(&ids(&["update:U"]), 0), Some(third));
        assert_eq!(window.books(), vec![1, 2]);
    }
}
