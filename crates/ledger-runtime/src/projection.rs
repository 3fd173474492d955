//! The projector: folds loan.events into the sled read models (the rows of the
//! `projector` crate), storing its positions in the same batch as the rows they
//! produced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_kafka::topics;
use ledger_store::{Changes, StoreTree};
use tokio::sync::watch;

use crate::follower::Follower;
use crate::{events_group, Context, Result};

pub const NAME: &str = "projector";

const IDLE_POLL: Duration = Duration::from_millis(25);
const BATCH_FACTS: usize = 2_000;

/// A running projection: its follower and what it has stored.
pub struct Projection {
    follower: Follower,
    stored: BTreeMap<i32, i64>,
    tree: StoreTree,
    /// Whether every partition was refolded up to its stored position (after a start,
    /// rows may be written only then: until every book is back where the rows were
    /// written, rows computed from the ledger would be older than the stored ones).
    refolded: bool,
    kafka: ledger_kafka::KafkaConfig,
}

impl Projection {
    pub fn new(ctx: &Context, tree: StoreTree, group: &str) -> Result<Projection> {
        let kafka = ctx.kafka.with_client_id(format!("{}-{NAME}", ctx.kafka.client_id));
        let restore_kafka = kafka.clone();
        let follower = Follower::new(&kafka, group, ctx.config.clone(), false)?;
        let stored = tree
            .positions()?
            .into_iter()
            .filter(|((t, _), _)| t == topics::EVENTS)
            .map(|((_, p), o)| (p, o))
            .collect();
        Ok(Projection { follower, stored, tree, refolded: false, kafka: restore_kafka })
    }

    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// Folds up to one batch of new facts and stores the rows they changed with the
    /// new positions. Returns how many facts it applied (0: caught up).
    pub async fn step(&mut self) -> Result<usize> {
        let mut applied = Vec::new();
        if !self.refolded {
            // The books from their snapshots, where one is at or before the stored
            // position (rows are written only from there on); the rest from offset 0.
            // Empty stores (a replay) are built from offset 0 alone.
            if self.stored.values().any(|o| *o > 0) {
                self.follower.restore(&self.kafka, Some(&self.stored)).await?;
            }
            // Facts read on the way that lie beyond their partition's stored position
            // are handled below like any new fact.
            self.refolded = true;
            applied = self.follower.catch_up_to(&self.stored.clone(), usize::MAX).await?;
        }
        if applied.is_empty() {
            applied = self.follower.catch_up(BATCH_FACTS).await?;
        }
        if applied.is_empty() {
            return Ok(0);
        }
        let mut changes = Changes::default();
        let mut reached = BTreeMap::new();
        for a in &applied {
            reached.insert(a.partition, a.offset + 1);
            if a.offset >= self.stored.get(&a.partition).copied().unwrap_or(0) {
                // The rows of the fact's own book: other books may be mid-way.
                changes.extend(projector::changes_for_book(self.follower.ledger(), a.partition as u32, a.offset, &a.fact));
            }
        }
        if !changes.is_empty() {
            changes.extend(projector::portfolio_rows(self.follower.ledger()));
        }
        let positions: Vec<(&str, i32, i64)> = reached.iter().map(|(p, o)| (topics::EVENTS, *p, *o)).collect();
        self.tree.commit(&changes, &positions)?;
        self.stored.extend(reached);
        self.follower.commit_hint()?;
        Ok(applied.len())
    }
}

/// Whether the read models may be served: not before the projector has read
/// loan.events to its end once since it started (until then its rows may be older than
/// the log, or a part of it). `None` when ready, else why not.
#[derive(Clone)]
pub struct Readiness(Arc<Mutex<Option<String>>>);

impl Default for Readiness {
    fn default() -> Readiness {
        Readiness(Arc::new(Mutex::new(Some("the read models are being rebuilt from loan.events; ask again shortly".into()))))
    }
}

impl Readiness {
    /// Why the read models cannot be served now; `None` when they can.
    pub fn not_ready(&self) -> Option<String> {
        self.0.lock().expect("readiness lock").clone()
    }

    pub(crate) fn set(&self, why: Option<String>) {
        *self.0.lock().expect("readiness lock") = why;
    }
}

/// Runs the projector until `shutdown` turns true, marking `ready` once it has caught
/// up with loan.events.
pub async fn run_projector(ctx: Context, tree: StoreTree, ready: Readiness, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let mut projection = Projection::new(&ctx, tree, &events_group(NAME))?;
    let ends = projection.follower().end_offsets()?;
    let total: i64 = ends.values().sum();
    tracing::info!(service = NAME, "started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let applied = projection.step().await?;
        if ready.not_ready().is_some() {
            let read: i64 = projection.follower().positions().values().sum();
            if applied == 0 {
                tracing::info!(service = NAME, facts = read, "caught up with loan.events: serving");
                ready.set(None);
            } else {
                ready.set(Some(format!(
                    "the read models are being rebuilt from loan.events ({read} of {total} records read); ask again shortly"
                )));
            }
        }
        if applied == 0 {
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
    tracing::info!(service = NAME, "stopped");
    Ok(())
}
