//! What a query reads: a consistent set of segment files and live batches.
//!
//! The store publishes its state through [`SnapshotSource`]; the query engine and the table
//! provider depend on this module only, never on the store itself, so the engine can be built
//! over any source (the store of this process today, live buffers fetched from ingest nodes
//! later).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampMillisecondType;

use crate::manifest::SegmentMeta;
use crate::objects::Remote;

/// A segment file in use. When a newer manifest no longer lists it, it is marked obsolete and
/// deleted once the last snapshot holding it is gone, so compaction never removes a file a
/// running query still reads.
#[derive(Debug)]
pub struct SegmentFile {
    /// What the manifest says about it.
    pub meta: SegmentMeta,
    /// Its absolute path (in object storage: where its local copy is kept).
    pub path: PathBuf,
    /// The object store it is kept in, when it is not on local disk only.
    remote: Option<Arc<Remote>>,
    obsolete: AtomicBool,
}

impl SegmentFile {
    /// The file of `meta` in the store directory `dir`, kept in `remote` when given.
    pub(crate) fn new(dir: &Path, meta: SegmentMeta, remote: Option<&Arc<Remote>>) -> Arc<Self> {
        let path = dir.join(&meta.file);
        Arc::new(Self { meta, path, remote: remote.cloned(), obsolete: AtomicBool::new(false) })
    }

    /// Marks the file for deletion once nothing holds it any more.
    pub(crate) fn retire(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }

    /// Makes sure the file is on local disk, fetching it from object storage when it is not.
    pub(crate) async fn ensure_local(&self) -> crate::Result<()> {
        match &self.remote {
            Some(remote) => remote.ensure_local(&self.path, &self.meta.file, self.meta.bytes).await,
            None => Ok(()),
        }
    }
}

/// Fetches every one of `files` not on local disk yet, a few at a time.
pub(crate) async fn ensure_local(files: &[&SegmentFile]) -> crate::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let fetches: Vec<_> = files.iter().map(|f| f.ensure_local()).collect();
    futures::stream::iter(fetches).buffer_unordered(4).try_collect::<Vec<()>>().await?;
    Ok(())
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if !self.obsolete.load(Ordering::SeqCst) {
            return;
        }
        if let Err(error) = std::fs::remove_file(&self.path)
            && (error.kind() != std::io::ErrorKind::NotFound || self.remote.is_none())
        {
            tracing::warn!(path = %self.path.display(), %error, "failed to delete an obsolete segment");
        }
        if let Some(remote) = &self.remote {
            remote.cache.forget(&self.path);
            // An object left behind (no runtime, or the store unreachable) is removed when the
            // store opens next: it is not in the manifest.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let remote = Arc::clone(remote);
                let file = self.meta.file.clone();
                runtime.spawn(async move {
                    if let Err(error) = remote.bucket.delete(&file).await {
                        tracing::warn!(%error, "failed to delete an obsolete segment from object storage");
                    }
                });
            }
        }
    }
}

/// A consistent view: the segments and live batches at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Persisted segments.
    pub segments: Vec<Arc<SegmentFile>>,
    /// Live batches, not yet persisted.
    pub live: Vec<RecordBatch>,
}

/// The first and last `__time` (ms) of a batch of events; `None` when it is empty.
pub fn batch_time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let times = batch.column(crate::schema::TIME).as_primitive_opt::<TimestampMillisecondType>()?;
    Some((datafusion::arrow::compute::min(times)?, datafusion::arrow::compute::max(times)?))
}

/// Something that can hand out snapshots of the `events` datasource.
#[async_trait::async_trait]
pub trait SnapshotSource: Send + Sync + std::fmt::Debug {
    /// The snapshot at hand, without waiting: in this process's store the current one (reference
    /// counts only); over a cluster the one the last query fetched.
    fn snapshot(&self) -> Snapshot;

    /// The current snapshot for a query whose `__time` filters allow `[lo, hi]` (ms, either side
    /// open): a source that has to fetch live events from elsewhere asks only for those.
    async fn current(&self, lo: Option<i64>, hi: Option<i64>) -> Result<Snapshot, datafusion::error::DataFusionError> {
        let _ = (lo, hi);
        Ok(self.snapshot())
    }
}
