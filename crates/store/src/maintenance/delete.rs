//! Deleting a visitor's or user's events.
//!
//! First, on one maintenance turn, a tombstone is committed (so log replay drops the events
//! after a crash) and the live buffer is filtered. Then the segments are handled one at a time,
//! each on a turn of its own, so flushes go on between them: a segment whose bloom filters rule
//! the selector out is skipped without reading its data, one that may hold it is rewritten by
//! streaming it through the deletion filter. Segments that compaction creates meanwhile are
//! checked too, until every segment has been.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::deletion::Selector;
use crate::manifest::Tombstone;
use crate::metrics as m;
use crate::segment;
use crate::snapshot::SegmentFile;
use crate::store::Store;
use crate::{Error, Result};

impl Store {
    /// Deletes every event `selector` names: from the live buffer, from every segment (rewritten
    /// without them), and from log replay. Returns how many events were removed.
    pub async fn delete(&self, selector: Selector) -> Result<u64> {
        if selector.is_empty() {
            return Err(Error::InvalidQuery("name a party_id or a user_id to delete".into()));
        }
        let mut removed = self.delete_from_live(&selector).await?;
        let mut checked: HashSet<u64> = HashSet::new();
        let mut rewritten = 0usize;
        loop {
            let unchecked: Vec<Arc<SegmentFile>> =
                self.shared.state.read().segments.iter().filter(|s| !checked.contains(&s.meta.id)).cloned().collect();
            if unchecked.is_empty() {
                break;
            }
            let probe = selector.clone();
            let candidates = tokio::task::spawn_blocking(move || -> Result<Vec<(Arc<SegmentFile>, bool)>> {
                unchecked.into_iter().map(|s| Ok((Arc::clone(&s), segment::may_contain(&s.path, &probe)?))).collect()
            })
            .await
            .map_err(|_| Error::Closed)??;
            for (file, may_contain) in candidates {
                checked.insert(file.meta.id);
                if !may_contain {
                    continue;
                }
                if let Some((hits, new_id)) = self.rewrite_without(&file, &selector).await? {
                    removed += hits;
                    rewritten += 1;
                    checked.extend(new_id);
                }
            }
        }
        metrics::counter!(m::DELETED).increment(removed);
        self.publish_stats();
        tracing::info!(removed, rewritten_segments = rewritten, "deleted events on request");
        Ok(removed)
    }

    /// Commits the tombstone and filters the live buffer, on one maintenance turn.
    async fn delete_from_live(&self, selector: &Selector) -> Result<u64> {
        let _turn = self.maintenance.lock().await;
        let mut until = BTreeMap::new();
        if let Some(log) = &self.log {
            for p in 0..log.partition_count() {
                until.insert(p, log.offsets(p).await?.end);
            }
        }
        let mut next = self.shared.state.read().manifest.clone();
        next.tombstones.push(Tombstone { selector: selector.clone(), until });
        next.generation += 1;
        let dir = self.shared.options.dir.clone();
        let committed = next.clone();
        tokio::task::spawn_blocking(move || committed.commit(&dir)).await.map_err(|_| Error::Closed)??;
        // From now on the ingester drops these events, and the live buffer loses them.
        let mut s = self.shared.state.write();
        s.manifest = next;
        s.live.remove(selector)
    }

    /// Rewrites `file` without `selector`'s rows on a maintenance turn of its own. Returns the
    /// rows removed and the replacement's id, or `None` when compaction replaced the file first
    /// (its replacement is checked separately). A bloom filter's false positive costs one
    /// rewrite that removes nothing.
    async fn rewrite_without(&self, file: &Arc<SegmentFile>, selector: &Selector) -> Result<Option<(u64, Option<u64>)>> {
        let _turn = self.maintenance.lock().await;
        if !self.shared.state.read().manifest.segments.iter().any(|s| s.id == file.meta.id) {
            return Ok(None);
        }
        let (kept, new_id) =
            self.replace_segments(&file.meta.partition, std::slice::from_ref(&file.meta), vec![selector.clone()]).await?;
        Ok(Some((file.meta.rows - kept, new_id)))
    }
}
