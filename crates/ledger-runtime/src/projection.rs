//! The projector: folds loan.events into the sled read models (the rows of the
//! `projector` crate), storing its positions in the same batch as the rows they
//! produced. In `loanctl up` its fold is the process's one fold: it hands every batch,
//! with what the fold derived, to the publishers of the process ([`crate::fold`])
//! before it builds its rows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_kafka::topics;
use ledger_store::{Changes, StoreTree};
use tokio::sync::{mpsc, watch};

use crate::fold::{Feed, Folded, SharedBatch};
use crate::follower::{Applied, Follower};
use crate::{events_group, group, Context, Result};

pub const NAME: &str = "projector";

const IDLE_POLL: Duration = Duration::from_millis(25);
const BATCH_FACTS: usize = 2_000;

/// A running projection: its follower and what it has stored.
pub struct Projection {
    follower: Follower,
    /// Per partition, the offset the rows reach: stored, or queued to the row writer.
    stored: BTreeMap<i32, i64>,
    /// Whether the books were restored (at the first step).
    refolded: bool,
    kafka: ledger_kafka::KafkaConfig,
    /// The publishers of this process that take their facts from this fold.
    feeds: Vec<Feed>,
    /// The task that writes the rows (off the fold's task, so that the fold goes on
    /// and hands the next batches to the publishers while rows are written).
    writer: RowWriter,
}

/// Rows waiting to be stored, queued in order; the writer merges what has queued up
/// into one sled commit (a loan's row changed by many facts is written once, and one
/// flush covers them all).
struct RowWriter {
    sender: Option<mpsc::Sender<(Changes, BTreeMap<i32, i64>)>>,
    /// (how many batches are stored, the positions stored with the last of them).
    stored: watch::Receiver<(u64, BTreeMap<i32, i64>)>,
    /// Batches queued so far.
    sent: u64,
    /// The batches stored when the hint was last committed.
    hinted: u64,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

/// Batches queued for the row writer before the fold waits for it (each up to
/// `BATCH_FACTS` facts' rows: a bound on the memory the queue holds).
const ROW_BATCHES: usize = 4;

/// Rows merged into one commit at most (then the next commit takes the rest).
const MERGE_ROWS: usize = 50_000;

impl RowWriter {
    fn start(tree: StoreTree) -> RowWriter {
        let (sender, mut queue) = mpsc::channel::<(Changes, BTreeMap<i32, i64>)>(ROW_BATCHES);
        let (stored_tx, stored) = watch::channel((0, BTreeMap::new()));
        let task = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some((mut changes, mut positions)) = queue.recv().await {
                count += 1;
                while changes.len() < MERGE_ROWS {
                    let Ok((later, at)) = queue.try_recv() else { break };
                    changes.extend(later);
                    positions = at;
                    count += 1;
                }
                let (tree, at) = (tree.clone(), positions.clone());
                tokio::task::spawn_blocking(move || {
                    let list: Vec<(&str, i32, i64)> = at.iter().map(|(p, o)| (topics::EVENTS, *p, *o)).collect();
                    tree.commit(&changes, &list)
                })
                .await
                .map_err(|e| crate::RuntimeError::Refused(format!("the read models' commit failed: {e}")))??;
                let _ = stored_tx.send((count, positions));
            }
            Ok(())
        });
        RowWriter { sender: Some(sender), stored, sent: 0, hinted: 0, task: Some(task) }
    }

    /// Queues a batch's rows with the positions stored after it.
    async fn queue(&mut self, changes: Changes, positions: BTreeMap<i32, i64>) -> Result<()> {
        let sent = match &self.sender {
            Some(sender) => sender.send((changes, positions)).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.failure().await);
        }
        self.sent += 1;
        Ok(())
    }

    /// Waits until every queued batch is stored; returns the positions stored.
    async fn flush(&mut self) -> Result<BTreeMap<i32, i64>> {
        let sent = self.sent;
        let stored = self.stored.wait_for(|(count, _)| *count >= sent).await.map(|stored| stored.1.clone());
        match stored {
            Ok(stored) => Ok(stored),
            Err(_) => Err(self.failure().await),
        }
    }

    /// The writer's own error, once it has stopped.
    async fn failure(&mut self) -> crate::RuntimeError {
        self.sender = None;
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => crate::RuntimeError::Refused("the read models' writer stopped".into()),
                Err(e) => crate::RuntimeError::Refused(format!("the read models' writer failed: {e}")),
            },
            None => crate::RuntimeError::Refused("the read models' writer stopped".into()),
        }
    }

    /// The positions stored since the hint was last committed, if any.
    fn newly_stored(&mut self) -> Option<BTreeMap<i32, i64>> {
        let (count, positions) = &*self.stored.borrow();
        if *count > self.hinted {
            self.hinted = *count;
            return Some(positions.clone());
        }
        None
    }
}

impl Projection {
    /// A projection into `tree`, committing its position hints under `group`, feeding
    /// `feeds` (the publishers of the process; none for `run projector` and `replay`).
    pub fn new(ctx: &Context, tree: StoreTree, group: &str, feeds: Vec<Feed>) -> Result<Projection> {
        let kafka = ctx.kafka.with_client_id(format!("{}-{NAME}", ctx.kafka.client_id));
        let restore_kafka = kafka.clone();
        // What the fold derives is collected only for publishers to publish.
        let mut follower = Follower::new(&kafka, group, ctx.config.clone(), !feeds.is_empty())?;
        let stored = tree
            .positions()?
            .into_iter()
            .filter(|((t, _), _)| t == topics::EVENTS)
            .map(|((_, p), o)| (p, o))
            .collect();
        // Its hint says what the store holds, committed once a store commit is done.
        follower.commit_hint_of(&stored)?;
        let writer = RowWriter::start(tree);
        Ok(Projection { follower, stored, refolded: false, kafka: restore_kafka, feeds, writer })
    }

    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// Whether some partition is still being refolded up to its stored position (after
    /// a start: the rows of its facts were written before).
    fn refolding(&self) -> bool {
        let at = self.follower.positions();
        self.stored.iter().any(|(p, stored)| at.get(p).copied().unwrap_or(0) < *stored)
    }

    /// Restores the books, at the first step: from their snapshots where one is at or
    /// before the stored position (rows are written only from there on) and at or
    /// before what every fed publisher's group has published (it must be handed every
    /// fact after that); the rest from offset 0. Empty stores (a replay) are built from
    /// offset 0 alone. Then tells the feeds where the fold starts.
    async fn restore(&mut self) -> Result<()> {
        let mut at_most = self.stored.clone();
        let partitions = self.follower.partitions();
        for feed in &self.feeds {
            let watcher = self.kafka.consumer(&feed.group)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let published = group::committed_offsets(&watcher, topics::EVENTS, partitions.iter().copied(), deadline).await?;
            for p in &partitions {
                let limit = at_most.entry(*p).or_insert(0);
                *limit = (*limit).min(published.get(p).copied().unwrap_or(0).max(0));
            }
        }
        if self.stored.values().any(|o| *o > 0) {
            self.follower.restore(&self.kafka, Some(&at_most)).await?;
        }
        for feed in &self.feeds {
            feed.start(self.follower.positions());
        }
        self.refolded = true;
        Ok(())
    }

    /// Hands a batch to the fed publishers, waiting while one's channel is full. A
    /// publisher that has stopped (the process is stopping) is dropped.
    async fn feed(&mut self, applied: &mut [Applied]) {
        if self.feeds.is_empty() {
            return;
        }
        let batch: SharedBatch = Arc::new(
            applied
                .iter_mut()
                .map(|a| Folded { partition: a.partition, offset: a.offset, timestamp_ms: a.timestamp_ms, derived: std::mem::take(&mut a.derived) })
                .collect(),
        );
        let mut open = Vec::with_capacity(self.feeds.len());
        for feed in self.feeds.drain(..) {
            if feed.sender.send(batch.clone()).await.is_ok() {
                open.push(feed);
            } else {
                tracing::debug!(group = %feed.group, "a fed publisher stopped");
            }
        }
        self.feeds = open;
    }

    /// Folds up to one batch of new facts, hands it to the fed publishers, and stores
    /// the rows it changed with the new positions. Returns how many facts it applied
    /// (0: caught up).
    pub async fn step(&mut self) -> Result<usize> {
        if !self.refolded {
            self.restore().await?;
        }
        // Back to the stored positions first, in bounded batches; facts read on the way
        // that lie beyond their partition's stored position are handled like any new
        // fact. Rows are written for facts at or past the stored position only.
        let refolding = self.refolding();
        let mut applied = Vec::new();
        if refolding {
            applied = self.follower.catch_up_to(&self.stored.clone(), BATCH_FACTS).await?;
        }
        if applied.is_empty() {
            applied = self.follower.catch_up(BATCH_FACTS).await?;
        }
        if applied.is_empty() {
            // Caught up: what was folded is stored before this says so.
            let stored = self.writer.flush().await?;
            match self.writer.newly_stored() {
                Some(stored) => self.follower.commit_hint_of(&stored)?,
                None => self.follower.refresh_hint_of(&stored)?,
            }
            return Ok(0);
        }
        self.feed(&mut applied).await;
        let mut changes = Changes::default();
        let mut reached = BTreeMap::new();
        for a in &applied {
            // A stored position never moves back (a refolded fact is below it).
            if a.offset + 1 > self.stored.get(&a.partition).copied().unwrap_or(0) {
                reached.insert(a.partition, a.offset + 1);
            }
            if a.offset >= self.stored.get(&a.partition).copied().unwrap_or(0) {
                // The rows of the fact's own book: other books may be mid-way.
                changes.extend(projector::changes_for_book(self.follower.ledger(), a.partition as u32, a.offset, &a.fact));
            }
        }
        // The portfolio row once every book is back where the rows were written (until
        // then the ledger holds some books only in part), and whenever rows changed.
        if !self.refolding() && (!changes.is_empty() || refolding) {
            changes.extend(projector::portfolio_rows(self.follower.ledger()));
        }
        if !changes.is_empty() || !reached.is_empty() {
            let mut after = self.stored.clone();
            after.extend(reached.iter().map(|(p, o)| (*p, *o)));
            self.writer.queue(changes, after).await?;
        }
        self.stored.extend(reached);
        if let Some(stored) = self.writer.newly_stored() {
            self.follower.commit_hint_of(&stored)?;
        }
        Ok(applied.len())
    }

    /// Waits up to `timeout` for a new record of loan.events.
    pub async fn wait_readable(&mut self, timeout: Duration) -> bool {
        self.follower.wait_readable(timeout).await
    }

    /// Waits until every row folded so far is stored, then commits the positions as
    /// the hint.
    pub async fn written(&mut self) -> Result<()> {
        let stored = self.writer.flush().await?;
        self.follower.commit_hint_of(&stored)?;
        Ok(())
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
pub async fn run_projector(ctx: Context, tree: StoreTree, ready: Readiness, shutdown: watch::Receiver<bool>) -> Result<()> {
    run_projector_feeding(ctx, tree, ready, Vec::new(), shutdown).await
}

/// [`run_projector`], its fold feeding the publishers of the process (`feeds`).
pub async fn run_projector_feeding(ctx: Context, tree: StoreTree, ready: Readiness, feeds: Vec<Feed>, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let mut projection = Projection::new(&ctx, tree, &events_group(NAME), feeds)?;
    let ends = projection.follower().end_offsets()?;
    let total: i64 = ends.values().sum();
    tracing::info!(service = NAME, "started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        // A step may wait for a fed publisher: a stop must not wait behind it.
        let applied = tokio::select! {
            _ = shutdown.changed() => break,
            applied = projection.step() => applied?,
        };
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
            // Woken by the next record (the fed publishers wait on this fold).
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = projection.wait_readable(IDLE_POLL) => {}
            }
        }
    }
    // The rows of the last batch folded are stored before the process stops.
    projection.written().await?;
    tracing::info!(service = NAME, "stopped");
    Ok(())
}
