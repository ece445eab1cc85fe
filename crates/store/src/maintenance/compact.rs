//! Compaction: many small segments of a time partition, or of a closed day, into one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::maintenance::NewSegment;
use crate::maintenance::merge;
use crate::manifest::SegmentMeta;
use crate::metrics as m;
use crate::segment::Granularity;
use crate::snapshot::SegmentFile;
use crate::store::Store;
use crate::{Error, Result};

/// Most segments one merge reads at once; more are merged over several rounds, so memory (one
/// batch per input) stays bounded however many segments a day has.
const MAX_FAN_IN: usize = 64;

impl Store {
    /// Merges segments: a time partition that has accumulated `compaction_min_segments` small
    /// ones, and every day before today into one segment for the whole day. Recent data stays
    /// in hourly partitions (cheap to rewrite while it still grows); older data ends up in one
    /// file per day, so a query over weeks opens a few dozen files instead of hundreds.
    pub async fn compact(&self) -> Result<usize> {
        let _turn = self.maintenance.lock().await;
        let options = &self.shared.options;
        let now = options.clock.now_ms();
        let current = options.granularity.key(now);
        let today = Granularity::Day.key(now);
        let manifest = self.shared.state.read().manifest.clone();
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
            if due || reshape {
                for chunk in metas.chunks(MAX_FAN_IN) {
                    self.merge_into_one(&key, chunk).await?;
                }
                merged += 1;
            }
        }
        if merged > 0 {
            metrics::counter!(m::COMPACTIONS).increment(merged as u64);
            self.publish_stats();
        }
        Ok(merged)
    }

    /// Rewrites `metas` as one segment of time partition `key`.
    async fn merge_into_one(&self, key: &str, metas: &[SegmentMeta]) -> Result<()> {
        tracing::debug!(partition = key, segments = metas.len(), "compacting a time partition");
        let dir = self.shared.options.dir.clone();
        let mut manifest = self.shared.state.read().manifest.clone();
        let inputs: Vec<PathBuf> = metas.iter().map(|m| dir.join(&m.file)).collect();
        let old: Vec<u64> = metas.iter().map(|m| m.id).collect();
        let key = key.to_string();
        let removed = old.clone();
        let (next, added) = tokio::task::spawn_blocking(move || -> Result<_> {
            let new = NewSegment::allocate(&dir, &mut manifest, &key);
            let written = merge::merge(&inputs, &new.path, &[])?;
            manifest.segments.retain(|s| !removed.contains(&s.id));
            let mut added = Vec::new();
            if let Some(written) = written {
                let meta = new.into_meta(written)?;
                manifest.segments.push(meta.clone());
                added.push(SegmentFile::new(&dir, meta));
            }
            manifest.generation += 1;
            manifest.commit(&dir)?;
            Ok((manifest, added))
        })
        .await
        .map_err(|_| Error::Closed)??;
        self.shared.swap_segments(next, added, &old);
        tracing::debug!(partition = %metas[0].partition, merged = old.len(), "compacted a time partition");
        Ok(())
    }
}
