//! Maintenance: everything that rewrites the store's files.
//!
//! - [`flush`]: the live buffer into segments, committed with the log offsets they cover.
//! - [`compact`]: small segments and closed days merged by a streaming k-way [`merge`].
//! - [`retention`]: old time partitions and spent deletion tombstones dropped.
//! - [`delete`]: a visitor's or user's events removed from every segment that may hold them.
//!
//! Every manifest change happens on one lock (the maintenance turn), from the state's manifest,
//! so each commit sees what the previous one committed. Work that takes long (merging a day,
//! rewriting a segment for a deletion) is done *before* taking the turn, into new files that
//! nothing lists yet; on the turn the replacement is checked against the manifest as it is now
//! and committed, or discarded when its inputs changed meanwhile. So a compaction never holds
//! up a flush for longer than a commit, and ingestion and queries wait for nothing but the
//! instant a new state is swapped in. Memory is bounded everywhere: flushes write sorted runs
//! of at most [`RUN_BYTES`], merges and rewrites stream a batch at a time.

mod compact;
mod delete;
mod flush;
pub(crate) mod merge;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;

use crate::deletion::{PendingDeletion, Removal};
use crate::manifest::{Manifest, SegmentMeta, sync_dir};
use crate::segment::{self, Granularity, Written};
use crate::snapshot::SegmentFile;
use crate::store::Store;
use crate::{Error, Result};

/// How often the flush task wakes up to check the flush conditions.
const TICK: Duration = Duration::from_millis(250);
/// Live-buffer memory written as one sorted run: each run becomes one segment per time
/// partition, and the sort of a run is the largest allocation a flush makes.
pub(crate) const RUN_BYTES: usize = 64 << 20;

impl Store {
    /// Flushes when due, until the store stops.
    pub(crate) async fn flush_when_due(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = self.flush_wanted.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
            if self.flush_due()
                && let Err(error) = self.flush().await
            {
                if self.fence_on(&error) {
                    return;
                }
                tracing::error!(%error, "flush failed; the events stay in the log and the live buffer");
            }
        }
    }

    /// Compacts and applies retention now and then, and first finishes deletions a previous
    /// run left pending, until the store stops. Runs beside the flushes, not in their way.
    pub(crate) async fn housekeep(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        let pending = self.shared.state.read().manifest.deletions.clone();
        for deletion in pending {
            tracing::info!("resuming a deletion that was interrupted");
            if let Err(error) = self.finish_deletion(&deletion, 0).await {
                tracing::error!(%error, "cannot finish an interrupted deletion; it is retried at the next start");
            }
        }
        let clock = Arc::clone(&self.shared.options.clock);
        let housekeeping_ms = i64::try_from(self.shared.options.housekeeping_interval.as_millis()).unwrap_or(i64::MAX);
        let mut last = clock.now_ms();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            self.shared.sweep_retired();
            if clock.now_ms().saturating_sub(last) < housekeeping_ms {
                continue;
            }
            last = clock.now_ms();
            if let Err(error) = self.compact().await {
                if self.fence_on(&error) {
                    return;
                }
                tracing::error!(%error, "compaction failed");
            }
            if let Err(error) = self.enforce_retention().await {
                if self.fence_on(&error) {
                    return;
                }
                tracing::error!(%error, "store retention failed");
            }
        }
    }

    /// When `error` says another node took the store over, stops ingesting and writing for
    /// good (the other node has the events; this one would only fail again) and returns true.
    fn fence_on(&self, error: &Error) -> bool {
        if !matches!(error, Error::Fenced(_)) {
            return false;
        }
        if !self.fenced.swap(true, Ordering::SeqCst) {
            tracing::error!(%error, "this node no longer owns its store: ingestion stops, and /readyz answers 503");
        }
        self.stop.send_replace(true);
        true
    }

    /// Whether another node took the store over, so this one stopped writing.
    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
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
    /// the new segment files. Runs on the maintenance turn.
    pub(crate) async fn write_segments(
        &self,
        granularity: Granularity,
        manifest: Manifest,
        batches: Vec<RecordBatch>,
        edit: impl FnOnce(&mut Manifest) + Send + 'static,
    ) -> Result<(Manifest, Vec<Arc<SegmentFile>>)> {
        let dir = self.shared.options.dir.clone();
        let ids = Arc::clone(&self.shared.segment_ids);
        let suffix = self.shared.segment_suffix();
        let written_dir = dir.clone();
        let (manifest, metas) = tokio::task::spawn_blocking(move || {
            let mut manifest = manifest;
            let metas = write_runs(&written_dir, (&ids, &suffix), &mut manifest, &batches, granularity, RUN_BYTES)?;
            edit(&mut manifest);
            manifest.generation += 1;
            Ok::<_, Error>((manifest, metas))
        })
        .await
        .map_err(|_| Error::Closed)??;
        if let Err(error) = self.commit_manifest(&manifest).await {
            remove_files(&dir, &metas);
            return Err(error);
        }
        let remote = self.shared.remote.as_ref();
        Ok((manifest, metas.into_iter().map(|meta| SegmentFile::new(&dir, meta, remote)).collect()))
    }

    /// Commits `next` as the store's manifest: on local disk by an atomic rename; in object
    /// storage by uploading its new segments and a conditional PUT, retried until it lands
    /// (the events stay in the live buffer meanwhile). Runs on the maintenance turn.
    pub(crate) async fn commit_manifest(&self, next: &Manifest) -> Result<()> {
        let dir = self.shared.options.dir.clone();
        let Some(remote) = &self.shared.remote else {
            let committed = next.clone();
            return tokio::task::spawn_blocking(move || committed.commit(&dir)).await.map_err(|_| Error::Closed)?;
        };
        let previous = self.shared.state.read().manifest.clone();
        let stop = self.stop.subscribe();
        let committed = remote.commit(&dir, &previous, next, move || *stop.borrow()).await;
        if let Err(error) = &committed {
            self.fence_on(error);
        }
        committed
    }

    /// Writes the merge of segments `old` (of time partition `partition`), without the rows
    /// `removal` selects, as a new segment file that nothing lists yet. Needs no turn.
    pub(crate) async fn prepare_replacement(
        &self,
        partition: &str,
        old: Vec<SegmentMeta>,
        removal: Removal,
    ) -> Result<Replacement> {
        let dir = self.shared.options.dir.clone();
        let ids = Arc::clone(&self.shared.segment_ids);
        let partition = partition.to_string();
        let suffix = self.shared.segment_suffix();
        self.fetch_segments(&old).await?;
        tokio::task::spawn_blocking(move || {
            let inputs: Vec<PathBuf> = old.iter().map(|m| dir.join(&m.file)).collect();
            let new = NewSegment::allocate(&dir, (&ids, &suffix), &partition);
            let written = merge::merge(&inputs, &new.path, &removal)?;
            let new = written.map(|w| new.into_meta(w)).transpose()?;
            Ok(Replacement { old, new, deletions: removal.deletions, dir })
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    /// Commits `replacements` that still apply on the maintenance turn (the caller holds it):
    /// one whose segments are all still listed replaces them; the others are discarded. `edit`
    /// changes the manifest further. Returns, per committed replacement, the rows it removed.
    pub(crate) async fn commit_replacements(
        &self,
        replacements: Vec<Replacement>,
        edit: impl FnOnce(&mut Manifest) + Send + 'static,
    ) -> Result<Vec<u64>> {
        let mut next = self.shared.state.read().manifest.clone();
        let listed = |r: &Replacement, m: &Manifest| r.old.iter().all(|o| m.segments.iter().any(|s| s.id == o.id));
        let (apply, stale): (Vec<Replacement>, Vec<Replacement>) = replacements.into_iter().partition(|r| listed(r, &next));
        for replacement in stale {
            replacement.discard();
        }
        let mut removed = Vec::with_capacity(apply.len());
        let mut gone: Vec<u64> = Vec::new();
        let mut added = Vec::new();
        for r in &apply {
            gone.extend(r.old.iter().map(|o| o.id));
            next.segments.retain(|s| !r.old.iter().any(|o| o.id == s.id));
            let old_rows: u64 = r.old.iter().map(|o| o.rows).sum();
            removed.push(old_rows - r.new.as_ref().map_or(0, |n| n.rows));
            if let Some(new) = &r.new {
                next.segments.push(new.clone());
                added.push(SegmentFile::new(&r.dir, new.clone(), self.shared.remote.as_ref()));
            }
        }
        edit(&mut next);
        next.next_segment_id = next.next_segment_id.max(self.shared.segment_ids.load(Ordering::SeqCst));
        next.generation += 1;
        if let Err(error) = self.commit_manifest(&next).await {
            for r in apply {
                r.discard();
            }
            return Err(error);
        }
        self.shared.swap_segments(next, added, &gone);
        Ok(removed)
    }
}

impl Store {
    /// Makes sure the files of segments `metas` are on local disk (in object storage, a
    /// segment's local copy may have been evicted from the cache, or never fetched).
    pub(crate) async fn fetch_segments(&self, metas: &[SegmentMeta]) -> Result<()> {
        if self.shared.remote.is_none() {
            return Ok(());
        }
        let files: Vec<Arc<SegmentFile>> =
            self.shared.state.read().segments.iter().filter(|f| metas.iter().any(|m| m.id == f.meta.id)).cloned().collect();
        crate::snapshot::ensure_local(&files.iter().map(AsRef::as_ref).collect::<Vec<_>>()).await
    }
}

/// A segment written to replace others, not yet listed in the manifest.
#[derive(Debug)]
pub(crate) struct Replacement {
    /// The segments it replaces.
    pub(crate) old: Vec<SegmentMeta>,
    /// The new segment; `None` when no row was left.
    pub(crate) new: Option<SegmentMeta>,
    /// The deletions its rows went through.
    pub(crate) deletions: Vec<PendingDeletion>,
    dir: PathBuf,
}

impl Replacement {
    /// Removes the new file: the replacement will never be committed.
    pub(crate) fn discard(self) {
        if let Some(new) = &self.new {
            let _ = std::fs::remove_file(self.dir.join(&new.file));
        }
    }
}

/// Writes `batches` as sorted segments, a run of at most `run_bytes` (or one batch) at a time,
/// one segment per time partition of each run, and lists them in `manifest`. On an error, the
/// files it wrote are removed.
fn write_runs(
    dir: &Path,
    names: (&AtomicU64, &str),
    manifest: &mut Manifest,
    batches: &[RecordBatch],
    granularity: Granularity,
    run_bytes: usize,
) -> Result<Vec<SegmentMeta>> {
    let mut metas = Vec::new();
    let result = (|| {
        let mut start = 0;
        while start < batches.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < batches.len() && (end == start || bytes + batches[end].get_array_memory_size() <= run_bytes) {
                bytes += batches[end].get_array_memory_size();
                end += 1;
            }
            for (key, batch) in segment::split_by_partition(&batches[start..end], granularity)? {
                if batch.num_rows() == 0 {
                    continue;
                }
                let new = NewSegment::allocate(dir, names, &key);
                let written = segment::write(&new.path, &batch)?;
                metas.push(new.into_meta(written)?);
            }
            start = end;
        }
        sync_dir(&dir.join("segments"))
    })();
    if let Err(error) = result {
        remove_files(dir, &metas);
        return Err(error);
    }
    manifest.segments.extend(metas.iter().cloned());
    manifest.next_segment_id = manifest.next_segment_id.max(names.0.load(Ordering::SeqCst));
    Ok(metas)
}

fn remove_files(dir: &Path, metas: &[SegmentMeta]) {
    for meta in metas {
        let _ = std::fs::remove_file(dir.join(&meta.file));
    }
}

/// A segment file about to be written: its id, and its name relative to the store and absolute.
pub(crate) struct NewSegment {
    pub(crate) id: u64,
    pub(crate) partition: String,
    pub(crate) file: String,
    pub(crate) path: PathBuf,
}

impl NewSegment {
    /// Hands out the next segment id for time partition `partition`, from `names`: the id
    /// counter and the suffix of this store's writer. Ids come from a counter that never goes
    /// back, even when the operation that took one fails, so no two attempts ever write the same
    /// file name; the suffix keeps two writers of one store in object storage (the owner and a
    /// fenced predecessor, counting from the same manifest) from naming files alike.
    pub(crate) fn allocate(dir: &Path, names: (&AtomicU64, &str), partition: &str) -> Self {
        let (ids, suffix) = names;
        let id = ids.fetch_add(1, Ordering::SeqCst);
        let file = format!("segments/{partition}/{id:012}{suffix}.parquet");
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
            sites: written.sites,
            expiry_checked: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oriel_core::Event;

    use crate::schema::BatchBuilder;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let mut b = BatchBuilder::new();
        // Newest first within a batch: every run must come out sorted anyway.
        for i in (0..rows).rev() {
            b.push(&Event { time: 1_795_770_000_000 + (from + i) * 1000, event_type: "x".into(), ..Event::default() }).unwrap();
        }
        b.finish().unwrap()
    }

    /// A buffer larger than one run is written run by run: one segment per run and partition,
    /// each sorted, every row once.
    #[test]
    fn a_buffer_past_the_run_size_is_written_in_sorted_runs() {
        let dir = tempfile::tempdir().unwrap();
        let batches: Vec<RecordBatch> = (0..6).map(|i| batch(i * 100, 100)).collect();
        let one = batches[0].get_array_memory_size();
        let ids = AtomicU64::new(1);
        let mut manifest = Manifest::default();
        // Two batches fit in a run: three runs, all in one hour.
        let metas = write_runs(dir.path(), (&ids, ""), &mut manifest, &batches, Granularity::Hour, 2 * one).unwrap();
        assert_eq!(metas.len(), 3, "{metas:?}");
        assert_eq!(metas.iter().map(|m| m.rows).sum::<u64>(), 600);
        for (run, meta) in metas.iter().enumerate() {
            let start = 1_795_770_000_000 + run as i64 * 200_000;
            assert_eq!((meta.min_time, meta.max_time), (start, start + 199_000), "run {run}");
            let file = std::fs::File::open(dir.path().join(&meta.file)).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).unwrap();
            let mut times = Vec::new();
            for b in reader {
                let b = b.unwrap();
                let t = b
                    .column(crate::schema::TIME)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::TimestampMillisecondArray>()
                    .unwrap();
                times.extend(t.values().iter().copied());
            }
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "run {run} is sorted");
        }
        assert_eq!(manifest.segments.len(), 3);
    }
}
