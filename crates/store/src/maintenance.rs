//! Maintenance: everything that rewrites the store's files, one operation at a time.
//!
//! - [`flush`]: the live buffer into segments, committed with the log offsets they cover.
//! - [`compact`]: small segments and closed days merged by a streaming k-way [`merge`].
//! - [`retention`]: old time partitions and spent deletion tombstones dropped.
//! - [`delete`]: a visitor's or user's events removed from every segment that may hold them.
//!
//! They take turns on one lock, so each sees and commits a manifest no other changed meanwhile.
//! Ingestion and queries never wait for them except for the instant a new state is swapped in.
//! Memory is bounded everywhere: flushes write sorted runs of at most [`RUN_BYTES`], merges and
//! rewrites stream a batch at a time.

mod compact;
mod delete;
mod flush;
pub(crate) mod merge;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;

use crate::manifest::{Manifest, SegmentMeta, sync_dir};
use crate::segment::{self, Granularity, Written};
use crate::snapshot::SegmentFile;
use crate::store::Store;
use crate::{Error, Result};

/// How often the maintenance task wakes up to check the flush conditions.
const TICK: Duration = Duration::from_millis(250);
/// Live-buffer memory written as one sorted run: each run becomes one segment per time
/// partition, and the sort of a run is the largest allocation a flush makes.
pub(crate) const RUN_BYTES: usize = 64 << 20;

impl Store {
    /// Flushes when due, and compacts and applies retention now and then, until the store stops.
    pub(crate) async fn maintain(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        let clock = Arc::clone(&self.shared.options.clock);
        let housekeeping_ms = i64::try_from(self.shared.options.housekeeping_interval.as_millis()).unwrap_or(i64::MAX);
        let mut last_housekeeping = clock.now_ms();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = self.flush_wanted.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
            if self.flush_due()
                && let Err(error) = self.flush().await
            {
                tracing::error!(%error, "flush failed; the events stay in the log and the live buffer");
            }
            if clock.now_ms().saturating_sub(last_housekeeping) >= housekeeping_ms {
                last_housekeeping = clock.now_ms();
                if let Err(error) = self.compact().await {
                    tracing::error!(%error, "compaction failed");
                }
                if let Err(error) = self.enforce_retention().await {
                    tracing::error!(%error, "store retention failed");
                }
            }
        }
    }

    /// Whether the live buffer should be persisted now: it is large, half its memory budget is
    /// used, or its oldest batch has waited a flush interval (by the injected clock).
    fn flush_due(&self) -> bool {
        let options = &self.shared.options;
        let interval_ms = i64::try_from(options.flush_interval.as_millis()).unwrap_or(i64::MAX);
        let now = options.clock.now_ms();
        let s = self.shared.state.read();
        s.live.rows >= options.flush_rows
            || s.live.bytes >= options.live_buffer_bytes / 2
            || s.live.since_ms.is_some_and(|since| now.saturating_sub(since) >= interval_ms)
    }

    /// Writes `batches` as new segments on top of `manifest` (partitions of `granularity`),
    /// lets `edit` change the manifest further, and commits it. Returns the new manifest and
    /// the new segment files.
    pub(crate) async fn write_segments(
        &self,
        granularity: Granularity,
        manifest: Manifest,
        batches: Vec<RecordBatch>,
        edit: impl FnOnce(&mut Manifest) + Send + 'static,
    ) -> Result<(Manifest, Vec<Arc<SegmentFile>>)> {
        let dir = self.shared.options.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut manifest = manifest;
            let metas = write_runs(&dir, &mut manifest, &batches, granularity)?;
            edit(&mut manifest);
            manifest.generation += 1;
            manifest.commit(&dir)?;
            Ok((manifest, metas.into_iter().map(|meta| SegmentFile::new(&dir, meta)).collect()))
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

impl Store {
    /// Replaces segments `old` (of time partition `partition`) by one segment merged from their
    /// rows, without the rows `deleted` selects, and commits the manifest. Must run on the
    /// maintenance turn. Returns the rows the new segment holds (none is written when no row
    /// is left) and its id.
    pub(crate) async fn replace_segments(
        &self,
        partition: &str,
        old: &[crate::manifest::SegmentMeta],
        deleted: Vec<crate::deletion::Selector>,
    ) -> Result<(u64, Option<u64>)> {
        let dir = self.shared.options.dir.clone();
        let mut manifest = self.shared.state.read().manifest.clone();
        let inputs: Vec<PathBuf> = old.iter().map(|m| dir.join(&m.file)).collect();
        let removed: Vec<u64> = old.iter().map(|m| m.id).collect();
        let partition = partition.to_string();
        let gone = removed.clone();
        let (next, added) = tokio::task::spawn_blocking(move || -> Result<_> {
            let new = NewSegment::allocate(&dir, &mut manifest, &partition);
            let written = merge::merge(&inputs, &new.path, &deleted)?;
            manifest.segments.retain(|s| !gone.contains(&s.id));
            let mut added = None;
            if let Some(written) = written {
                let meta = new.into_meta(written)?;
                manifest.segments.push(meta.clone());
                added = Some(SegmentFile::new(&dir, meta));
            }
            manifest.generation += 1;
            manifest.commit(&dir)?;
            Ok((manifest, added))
        })
        .await
        .map_err(|_| Error::Closed)??;
        let result = added.as_ref().map_or((0, None), |f| (f.meta.rows, Some(f.meta.id)));
        self.shared.swap_segments(next, added.into_iter().collect(), &removed);
        Ok(result)
    }
}

/// Writes `batches` as sorted segments, a run of at most [`RUN_BYTES`] at a time, one segment
/// per time partition of each run, and lists them in `manifest`.
fn write_runs(
    dir: &Path,
    manifest: &mut Manifest,
    batches: &[RecordBatch],
    granularity: Granularity,
) -> Result<Vec<SegmentMeta>> {
    let mut metas = Vec::new();
    let mut start = 0;
    while start < batches.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < batches.len() && (end == start || bytes + batches[end].get_array_memory_size() <= RUN_BYTES) {
            bytes += batches[end].get_array_memory_size();
            end += 1;
        }
        for (key, batch) in segment::split_by_partition(&batches[start..end], granularity)? {
            if batch.num_rows() == 0 {
                continue;
            }
            let new = NewSegment::allocate(dir, manifest, &key);
            let written = segment::write(&new.path, &batch)?;
            let meta = new.into_meta(written)?;
            manifest.segments.push(meta.clone());
            metas.push(meta);
        }
        start = end;
    }
    sync_dir(&dir.join("segments"))?;
    Ok(metas)
}

/// A segment file about to be written: its id, and its name relative to the store and absolute.
pub(crate) struct NewSegment {
    pub(crate) id: u64,
    pub(crate) partition: String,
    pub(crate) file: String,
    pub(crate) path: PathBuf,
}

impl NewSegment {
    /// Hands out the next segment id of `manifest` for time partition `partition`.
    pub(crate) fn allocate(dir: &Path, manifest: &mut Manifest, partition: &str) -> Self {
        let id = manifest.next_segment_id.max(1);
        manifest.next_segment_id = id + 1;
        let file = format!("segments/{partition}/{id:012}.parquet");
        let path = dir.join(&file);
        Self { id, partition: partition.to_string(), file, path }
    }

    /// Makes the written file durable in its directory and describes it for the manifest.
    pub(crate) fn into_meta(self, written: Written) -> Result<SegmentMeta> {
        if let Some(parent) = self.path.parent() {
            sync_dir(parent)?;
        }
        Ok(SegmentMeta {
            id: self.id,
            partition: self.partition,
            file: self.file,
            rows: written.rows,
            bytes: written.bytes,
            min_time: written.min_time,
            max_time: written.max_time,
        })
    }
}
