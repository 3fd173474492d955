//! `loanctl replay`: rebuilds every read model from loan.events into an empty store.

use std::time::Instant;

use ledger_store::StoreTree;

use crate::projection::Projection;
use crate::{Context, Result};

#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub facts: usize,
    pub seconds: f64,
    pub digest: String,
}

/// Folds loan.events from the beginning to its end offsets (as of the start) into
/// `tree`, calling `progress(done, total)` as it goes, and returns the digest of the
/// rebuilt read models.
pub async fn replay(ctx: &Context, tree: StoreTree, mut progress: impl FnMut(u64, u64)) -> Result<ReplayReport> {
    let started = Instant::now();
    // A group of its own, never shared with a live projector.
    let group = format!("ledger-replay-{}", std::process::id());
    let mut projection = Projection::new(ctx, tree.clone(), &group, Vec::new())?;
    let ends = projection.follower().end_offsets()?;
    let total: i64 = ends.values().sum();
    let mut facts = 0usize;
    loop {
        let n = projection.step().await?;
        facts += n;
        let done: i64 = projection.follower().positions().values().sum();
        progress(done.max(0) as u64, total.max(0) as u64);
        if n == 0 {
            break;
        }
    }
    let digest = projector::digest(&tree).map_err(|e| crate::RuntimeError::Refused(e.to_string()))?;
    Ok(ReplayReport { facts, seconds: started.elapsed().as_secs_f64(), digest })
}
