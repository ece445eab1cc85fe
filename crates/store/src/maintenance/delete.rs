//! Deleting a visitor's or user's events.
//!
//! On one maintenance turn, a tombstone (so log replay drops the events after a crash) and a
//! pending deletion are committed, and the live buffer is filtered. Then, without holding the
//! turn, every segment that may hold the events is rewritten without them into a new file: a
//! segment whose bloom filters rule the selector out, or that began after the request, is not
//! read at all. Finally, on a second turn, all the rewrites replace their segments in one
//! manifest commit, which also clears the pending deletion, so queries see the events until the
//! answer and none after. Flushes go on meanwhile; a compaction that runs meanwhile applies the
//! pending deletion to what it merges. A crash in between leaves the pending deletion in the
//! manifest, and the next start finishes it. Just before that last commit, the deletion's
//! [`Receipt`] is appended to the store's receipts.

use std::collections::BTreeMap;

use crate::deletion::{PendingDeletion, Removal, Selector};
use crate::manifest::Tombstone;
use crate::metrics as m;
use crate::receipts::{self, Receipt};
use crate::segment;
use crate::store::Store;
use crate::{Error, Result};

impl Store {
    /// Deletes every event `selector` names that was received before now (and any imported
    /// with a later time): from the live buffer, from every segment (rewritten without them),
    /// and from log replay, on behalf of `requested_by`. Returns its receipt.
    pub async fn delete(&self, selector: Selector, requested_by: &str) -> Result<Receipt> {
        self.writable("deleting a visitor")?;
        if selector.is_empty() {
            return Err(Error::InvalidQuery("name a party_id or a user_id to delete".into()));
        }
        let (pending, from_live) = self.begin_deletion(selector, requested_by).await?;
        let receipt = self.finish_deletion(&pending, from_live).await?;
        self.publish_stats();
        tracing::info!(removed = receipt.deleted, id = %receipt.id, "deleted events on request");
        Ok(receipt)
    }

    /// The receipts of every finished deletion, oldest first.
    pub async fn receipts(&self) -> Result<Vec<Receipt>> {
        self.writable("the deletion receipts")?;
        let dir = self.shared.options.dir.clone();
        tokio::task::spawn_blocking(move || receipts::load(&dir)).await.map_err(|_| Error::Closed)?
    }

    /// Commits the tombstone and the pending deletion, and filters the live buffer, on one
    /// maintenance turn. Returns the pending deletion and the rows removed from the live buffer.
    async fn begin_deletion(&self, selector: Selector, requested_by: &str) -> Result<(PendingDeletion, u64)> {
        let _turn = self.maintenance.lock().await;
        let mut until = BTreeMap::new();
        if let Some(log) = &self.log {
            for p in 0..log.partition_count() {
                until.insert(p, log.offsets(p).await?.end);
            }
        }
        let (mut next, before_ms) = {
            let s = self.shared.state.read();
            // Events are stamped when received, so "received before now" is `__time <= now`;
            // imported events may lie in the future, and the deletion covers them too.
            let newest = s.segments.iter().map(|g| g.meta.max_time).chain(s.live.max_time_ms).max();
            (s.manifest.clone(), newest.unwrap_or(i64::MIN).max(self.shared.options.clock.now_ms()))
        };
        let pending = PendingDeletion {
            selector: selector.clone(),
            before_ms,
            // Generations only grow, so this names one deletion for the store's life.
            id: format!("d{}", next.generation + 1),
            requested_by: requested_by.to_string(),
            requested_at_ms: self.shared.options.clock.now_ms(),
            until: until.clone(),
        };
        next.tombstones.push(Tombstone { selector: selector.clone(), until });
        next.deletions.push(pending.clone());
        next.generation += 1;
        self.commit_manifest(&next).await?;
        // From now on the ingester drops these events, and the live buffer loses them.
        let mut s = self.shared.state.write();
        s.manifest = next;
        let removed = s.live.remove(&selector)?;
        Ok((pending, removed))
    }

    /// Rewrites every segment that may hold `pending`'s events, writes its receipt (counting
    /// `from_live` rows already removed from the live buffer) and commits the rewrites, with the
    /// pending deletion cleared, in one manifest. Returns the receipt.
    pub(crate) async fn finish_deletion(&self, pending: &PendingDeletion, from_live: u64) -> Result<Receipt> {
        let started = std::time::Instant::now();
        let files: Vec<std::sync::Arc<crate::snapshot::SegmentFile>> =
            self.shared.state.read().segments.iter().filter(|s| s.meta.min_time <= pending.before_ms).cloned().collect();
        let mut candidates = Vec::new();
        // One file at a time: in object storage each is fetched just before it is probed, so the
        // cache never has to hold them all.
        // `files` stays held until the rewrites are prepared: a compaction committing meanwhile
        // cannot delete one from under them.
        for file in &files {
            file.ensure_local().await?;
            let (path, probe) = (file.path.clone(), pending.selector.clone());
            let holds =
                tokio::task::spawn_blocking(move || segment::may_contain(&path, &probe)).await.map_err(|_| Error::Closed)??;
            if holds {
                candidates.push(file.meta.clone());
            }
        }
        let mut replacements = Vec::with_capacity(candidates.len());
        for meta in candidates {
            // One segment at a time: memory stays that of one streaming rewrite.
            let removal = Removal { deletions: vec![pending.clone()], ..Removal::default() };
            match self.prepare_replacement(&meta.partition.clone(), vec![meta], removal).await {
                Ok(replacement) => replacements.push(replacement),
                Err(error) => {
                    for r in replacements {
                        r.discard();
                    }
                    return Err(error);
                }
            }
        }
        let rewritten = replacements.len();
        let from_segments: u64 =
            replacements.iter().map(|r| r.old.iter().map(|o| o.rows).sum::<u64>() - r.new.as_ref().map_or(0, |n| n.rows)).sum();
        let receipt = Receipt {
            id: pending.id.clone(),
            requested_by: pending.requested_by.clone(),
            requested_at_ms: pending.requested_at_ms,
            completed_at_ms: self.shared.options.clock.now_ms(),
            deleted: from_live + from_segments,
            selector: pending.selector.clone(),
            until: pending.until.clone(),
        };
        let _turn = self.maintenance.lock().await;
        let dir = self.shared.options.dir.clone();
        let written = receipt.clone();
        let appended = tokio::task::spawn_blocking(move || receipts::append(&dir, &written)).await.map_err(|_| Error::Closed)?;
        if let Err(error) = appended {
            for r in replacements {
                r.discard();
            }
            return Err(error);
        }
        let done = pending.clone();
        self.commit_replacements(replacements, move |m| m.deletions.retain(|d| *d != done)).await?;
        metrics::counter!(m::DELETED).increment(receipt.deleted);
        tracing::debug!(rewritten, took_ms = started.elapsed().as_millis() as u64, "rewrote segments for a deletion");
        Ok(receipt)
    }
}
