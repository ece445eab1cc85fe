//! Compaction: many small segments of a time partition, or of a closed day, into one.

use std::collections::BTreeMap;

use crate::Result;
use crate::deletion::Removal;
use crate::manifest::SegmentMeta;
use crate::metrics as m;
use crate::segment::Granularity;
use crate::store::Store;

/// Most segments one merge reads at once; more are merged over several rounds, so memory (one
/// batch per input) stays bounded however many segments a day has.
const MAX_FAN_IN: usize = 64;

impl Store {
    /// Merges segments: a time partition that has accumulated `compaction_min_segments` small
    /// ones, and every day before today into one segment for the whole day. Recent data stays
    /// in hourly partitions (cheap to rewrite while it still grows); older data ends up in one
    /// file per day, so a query over weeks opens a few dozen files instead of hundreds.
    pub async fn compact(&self) -> Result<usize> {
        self.writable("compaction")?;
        let options = &self.shared.options;
        let now = options.clock.now_ms();
        let current = options.granularity.key(now);
        let today = Granularity::Day.key(now);
        let manifest = self.shared.state.read().manifest.clone();
        // Merging drops what has expired on the way, as it drops what was deleted.
        let cutoffs = options.retention.cutoffs(now);
        let mut groups: BTreeMap<(String, Granularity), Vec<SegmentMeta>> = BTreeMap::new();
        for meta in &manifest.segments {
            // Partition keys start with the day: `2026-11-27` or `2026-11-27T10`.
            let day = meta.partition.get(..10).unwrap_or(&meta.partition);
            let key = if day < today.as_str() {
                (day.to_string(), Granularity::Day)
            } else {
                (meta.partition.clone(), options.granularity)
            };
            groups.entry(key).or_default().push(meta.clone());
        }
        let min = options.compaction_min_segments;
        let mut merged = 0;
        for ((key, granularity), metas) in groups {
            let closed = granularity == Granularity::Day && granularity != options.granularity;
            let due = metas.len() >= min || (metas.len() >= 2 && (closed || key < current));
            let reshape = closed && metas.iter().any(|m| m.partition != key);
            if !(due || reshape) {
                continue;
            }
            for chunk in metas.chunks(MAX_FAN_IN) {
                // A lone segment already in its partition has nothing to merge with.
                if chunk.len() == 1 && chunk[0].partition == key {
                    continue;
                }
                let removal = Removal { deletions: manifest.deletions.clone(), cutoffs: cutoffs.clone() };
                if self.merge_into_one(&key, chunk, removal).await? {
                    merged += 1;
                }
            }
        }
        if merged > 0 {
            metrics::counter!(m::COMPACTIONS).increment(merged as u64);
            self.publish_stats();
        }
        Ok(merged)
    }

    /// Rewrites `metas` as one segment of time partition `key`, applying the deletions pending
    /// when it started and the retention cutoffs. The merge runs off the maintenance turn; the
    /// commit is skipped (and retried at the next round) when the segments changed meanwhile or
    /// a deletion began, whose rows this merge did not leave out. Returns whether it committed.
    async fn merge_into_one(&self, key: &str, metas: &[SegmentMeta], removal: Removal) -> Result<bool> {
        tracing::debug!(partition = key, segments = metas.len(), "compacting a time partition");
        let replacement = self.prepare_replacement(key, metas.to_vec(), removal).await?;
        let _turn = self.maintenance.lock().await;
        if self.shared.state.read().manifest.deletions != replacement.deletions {
            replacement.discard();
            return Ok(false);
        }
        let committed = self.commit_replacements(vec![replacement], |_| {}).await?;
        tracing::debug!(partition = key, merged = metas.len(), committed = !committed.is_empty(), "compacted a time partition");
        Ok(!committed.is_empty())
    }
}
