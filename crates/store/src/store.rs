//! The store of one process: its state, its background tasks, and how it opens and closes.
//!
//! One ingest task per log partition ([`crate::ingest`]) reads events from the offset the
//! manifest records into the live buffer, where queries see them at once. The maintenance task
//! ([`crate::maintenance`]) persists the live buffer into Parquet segments and commits them
//! together with the log offsets they cover in one manifest rename: that is the exactly-once
//! step. After a crash the live buffer is rebuilt by replaying the log from those offsets.
//! Queries go through the [`QueryEngine`], built over the store's snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oriel_core::config::{Config, Partitioning};
use oriel_core::durable::DirLock;
use oriel_core::{Clock, SystemClock};
use oriel_log::EventLog;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::expiry::RetentionPolicy;
use crate::ingest::live::Live;
use crate::manifest::Manifest;
use crate::metrics as m;
use crate::objects::{Bucket, Cache, Remote};
use crate::query::{EventsTable, QueryEngine, QueryOptions};
use crate::segment::Granularity;
use crate::snapshot::{SegmentFile, Snapshot, SnapshotSource};
use crate::{Error, Result};

/// The name under which the store consumes the event log.
pub const CONSUMER: &str = "store";

/// Settings of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The store directory (`data_dir/store`).
    pub dir: PathBuf,
    /// Time partitioning of segments.
    pub granularity: Granularity,
    /// Persist the live buffer at least this often.
    pub flush_interval: Duration,
    /// Persist the live buffer once it holds this many rows.
    pub flush_rows: usize,
    /// Memory the live buffer may hold; ingestion pauses beyond it.
    pub live_buffer_bytes: usize,
    /// Merge a partition once it has this many segments.
    pub compaction_min_segments: usize,
    /// How often compaction and retention run.
    pub housekeeping_interval: Duration,
    /// How many days each site's events are kept.
    pub retention: RetentionPolicy,
    /// Limits of SQL queries.
    pub query: QueryOptions,
    /// Source of "now" for flushing and retention.
    pub clock: Arc<dyn Clock>,
    /// The log partitions this store ingests; `None` for all of them (`oriel serve`), a subset
    /// on an ingest node of a cluster.
    pub partitions: Option<Vec<u32>>,
    /// How long a segment file outlives the manifest that dropped it. Zero in one process, whose
    /// own queries hold the files they read; on an ingest node, long enough for a query node's
    /// query that listed the segment a moment before to finish reading it.
    pub retired_grace: Duration,
    /// Where segments and the manifest are committed when not to `dir`: the object store the
    /// store keeps them in, under `<url>/<name of dir>`; `dir` then holds a cache of segment
    /// files, the lock and the deletion receipts.
    pub object_store: Option<oriel_core::config::ObjectStoreConfig>,
}

impl StoreOptions {
    /// Options from the configuration.
    pub fn from_config(config: &Config) -> Self {
        let s = &config.store;
        let mb = |v: u64| usize::try_from(v.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        Self {
            dir: config.data_dir.join("store"),
            granularity: match s.partition {
                Partitioning::Hour => Granularity::Hour,
                Partitioning::Day => Granularity::Day,
            },
            flush_interval: Duration::from_secs(s.flush_interval_seconds),
            flush_rows: usize::try_from(s.flush_rows).unwrap_or(usize::MAX),
            live_buffer_bytes: mb(s.live_buffer_mb),
            compaction_min_segments: s.compaction_min_segments as usize,
            housekeeping_interval: Duration::from_secs(s.housekeeping_interval_seconds),
            retention: RetentionPolicy::from_config(config),
            query: QueryOptions::from_config(s),
            clock: Arc::new(SystemClock),
            partitions: None,
            retired_grace: Duration::ZERO,
            object_store: config.object_store.enabled().then(|| config.object_store.clone()),
        }
    }
}

/// The store's state: the committed manifest, the segment files it lists, the live buffer.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) manifest: Manifest,
    pub(crate) segments: Vec<Arc<SegmentFile>>,
    pub(crate) live: Live,
}

/// The state shared by the store's tasks and its query engine.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: StoreOptions,
    pub(crate) state: RwLock<State>,
    /// The next segment id: a counter that failed operations also advance, so no file name is
    /// ever used twice.
    pub(crate) segment_ids: Arc<std::sync::atomic::AtomicU64>,
    /// Segments a manifest dropped, with when, waiting out `retired_grace` before deletion.
    pub(crate) retired: Mutex<Vec<(std::time::Instant, Arc<SegmentFile>)>>,
    /// The object store segments and manifest are committed to; `None` for the directory.
    pub(crate) remote: Option<Arc<Remote>>,
}

impl SnapshotSource for Shared {
    fn snapshot(&self) -> Snapshot {
        let state = self.state.read();
        Snapshot { segments: state.segments.clone(), live: state.live.batches.clone() }
    }
}

impl Shared {
    /// Installs a committed manifest in which segments `removed` were replaced by `added`.
    pub(crate) fn swap_segments(&self, manifest: Manifest, added: Vec<Arc<SegmentFile>>, removed: &[u64]) {
        // Every manifest change happens on the maintenance turn, from the state's manifest, so
        // the committed one already holds every tombstone.
        let grace = self.options.retired_grace;
        let mut dropped = Vec::new();
        {
            let mut s = self.state.write();
            s.manifest = manifest;
            s.segments.retain(|f| {
                let gone = removed.contains(&f.meta.id);
                if gone {
                    dropped.push(Arc::clone(f));
                }
                !gone
            });
            s.segments.extend(added);
        }
        if grace.is_zero() {
            dropped.iter().for_each(|f| f.retire());
        } else {
            let now = std::time::Instant::now();
            self.retired.lock().extend(dropped.into_iter().map(|f| (now, f)));
        }
        self.sweep_retired();
    }

    /// What this store's writer adds to segment file names: nothing on local disk (the
    /// directory's lock admits one writer); in object storage its random epoch, so a fenced
    /// predecessor's uploads can never replace a file the owner committed.
    pub(crate) fn segment_suffix(&self) -> String {
        self.remote.as_ref().map(|r| format!("-{:016x}", r.epoch())).unwrap_or_default()
    }

    /// Deletes (once no query holds them) the dropped segments whose grace is over.
    pub(crate) fn sweep_retired(&self) {
        let grace = self.options.retired_grace;
        self.retired.lock().retain(|(when, file)| {
            let over = when.elapsed() >= grace;
            if over {
                file.retire();
            }
            !over
        });
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows persisted.
    pub rows: u64,
    /// Segments written.
    pub segments: usize,
}

/// Counts describing the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows in the live buffer.
    pub live_rows: usize,
    /// Bytes of memory the live buffer holds.
    pub live_bytes: usize,
    /// Segments.
    pub segments: usize,
    /// Rows in segments.
    pub segment_rows: u64,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Per log partition, the offset up to which segments hold every event.
    pub persisted_offsets: BTreeMap<u32, u64>,
    /// Per log partition, the offset up to which events are queryable.
    pub ingested_offsets: BTreeMap<u32, u64>,
}

/// How far queries are behind the event log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestLag {
    /// Events durable in the log and not yet queryable.
    pub events: u64,
    /// Whether the store has ingested everything the log held when the store opened. Until
    /// then, answers are partial: a restart is still replaying the log.
    pub caught_up: bool,
}

/// What a store holds on to besides its state.
pub(crate) enum Holds {
    /// The lock of its directory, and the log's end offsets when it opened.
    Directory(DirLock, BTreeMap<u32, u64>),
    /// A query node's view of the cluster.
    View(Arc<crate::cluster::ClusterView>),
}

/// The store of one process.
#[derive(Debug)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    pub(crate) log: Option<Arc<dyn EventLog>>,
    /// Flush, compaction, retention and deletion take turns.
    pub(crate) maintenance: tokio::sync::Mutex<()>,
    /// Wakes the maintenance task when a flush is due before its tick.
    pub(crate) flush_wanted: Notify,
    /// Wakes ingesters waiting for room in the live buffer.
    pub(crate) room: Notify,
    pub(crate) stop: watch::Sender<bool>,
    /// The log's end offsets when the store opened: query readiness waits for them.
    start_ends: BTreeMap<u32, u64>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    engine: Arc<QueryEngine>,
    lock: Mutex<Option<DirLock>>,
    /// On a query node, its view of the cluster: it reads, and writes nothing.
    view: Option<Arc<crate::cluster::ClusterView>>,
    /// Events in the log not ingested yet, summed over the partitions, as the lag task last
    /// measured them (the figure a query node is given without a round trip to the log).
    pub(crate) measured_lag: std::sync::atomic::AtomicU64,
    /// Set when another node took the store over (object storage): this one writes no more.
    pub(crate) fenced: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens the store; with a `log`, starts ingesting from the offsets in the manifest and
    /// the background flush, compaction and retention. Without one (offline tools such as
    /// import), only reads and direct writes work.
    pub async fn open(mut options: StoreOptions, log: Option<Arc<dyn EventLog>>) -> Result<Arc<Self>> {
        m::describe();
        // Segment paths become file URLs, which must be absolute.
        options.dir = std::path::absolute(&options.dir).map_err(Error::io("cannot resolve", &options.dir))?;
        let remote = match &options.object_store {
            Some(config) => {
                let bucket = Bucket::from_config(config)?
                    .ok_or_else(|| Error::Internal("object storage is configured without a URL".into()))?;
                let cache = Cache::new(config.cache_mb.saturating_mul(1 << 20), options.query.timeout);
                Some(Remote::new(bucket.child(&crate::cluster::store_name(&options.dir)), cache))
            }
            None => None,
        };
        let (mut manifest, lock) = prepare(&options.dir, remote.as_deref()).await?;
        let mut live = Live::new();
        let mut start_ends = BTreeMap::new();
        if let Some(log) = &log {
            let count = log.partition_count();
            let partitions: Vec<u32> = match &options.partitions {
                Some(listed) => listed.clone(),
                None => (0..count).collect(),
            };
            if let Some(p) = partitions.iter().find(|&&p| p >= count) {
                return Err(Error::Internal(format!("partition {p} is not in the log, which has {count}")));
            }
            for p in partitions {
                let range = log.offsets(p).await?;
                let from = manifest.offsets.get(&p).copied().unwrap_or(range.start);
                if remote.is_some() && from > range.end {
                    // The manifest outlived its log: ingesting from `from` would skip the
                    // events the log numbers below it.
                    return Err(Error::Internal(format!(
                        "the store's manifest in object storage says partition {p} of the log is persisted up to offset {from}, \
                         but the log ends at {}: it is not the log this store was written from (an embedded log in a new \
                         data_dir?). Keep the store and its log together: use Kafka with object storage, or point \
                         [object_store] url at a new prefix",
                        range.end
                    )));
                }
                live.offsets.insert(p, from.max(range.start));
                start_ends.insert(p, range.end);
            }
        }
        // Only now, with the log checked against it, does this store take the manifest over.
        settle(&options.dir, remote.as_deref(), &mut manifest).await?;
        let segments: Vec<Arc<SegmentFile>> =
            manifest.segments.iter().map(|meta| SegmentFile::new(&options.dir, meta.clone(), remote.as_ref())).collect();
        let query_options = options.query.clone();
        let segment_ids = Arc::new(std::sync::atomic::AtomicU64::new(manifest.next_segment_id.max(1)));
        let shared = Arc::new(Shared {
            options,
            state: RwLock::new(State { manifest, segments, live }),
            segment_ids,
            retired: Mutex::new(Vec::new()),
            remote,
        });
        let table = Arc::new(EventsTable::new(Arc::clone(&shared) as Arc<dyn SnapshotSource>));
        let engine = Arc::new(QueryEngine::new(table, query_options)?);
        let store = Self::assemble(shared, log.clone(), engine, Holds::Directory(lock, start_ends));
        store.publish_stats();
        if let Some(log) = log {
            let starts = store.shared.state.read().live.offsets.clone();
            let mut tasks = store.tasks.lock();
            for (p, from) in starts {
                tasks.push(tokio::spawn(Arc::clone(&store).ingest(Arc::clone(&log), p, from)));
            }
            tasks.push(tokio::spawn(Arc::clone(&store).report_lag(Arc::clone(&log))));
            tasks.push(tokio::spawn(Arc::clone(&store).flush_when_due()));
            tasks.push(tokio::spawn(Arc::clone(&store).housekeep()));
        }
        Ok(store)
    }

    /// The store around its parts: what it owns (the directory lock, and the log's end offsets
    /// at open) or, on a query node, its view of the cluster.
    pub(crate) fn assemble(
        shared: Arc<Shared>,
        log: Option<Arc<dyn EventLog>>,
        engine: Arc<QueryEngine>,
        holds: Holds,
    ) -> Arc<Self> {
        let (lock, start_ends, view) = match holds {
            Holds::Directory(lock, ends) => (Some(lock), ends, None),
            Holds::View(view) => (None, BTreeMap::new(), Some(view)),
        };
        Arc::new(Self {
            shared,
            log,
            maintenance: tokio::sync::Mutex::new(()),
            flush_wanted: Notify::new(),
            room: Notify::new(),
            stop: watch::Sender::new(false),
            start_ends,
            tasks: Mutex::new(Vec::new()),
            engine,
            lock: Mutex::new(lock),
            view,
            measured_lag: std::sync::atomic::AtomicU64::new(0),
            fenced: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Refuses `what` (a change to stored data) on a query node's view, which owns no data.
    pub(crate) fn writable(&self, what: &str) -> Result<()> {
        if self.fenced() {
            return Err(Error::Fenced(format!(
                "{what} is refused: another process took this store over in object storage, and this one writes no more"
            )));
        }
        if self.view.is_some() {
            return Err(Error::Unsupported(format!(
                "{what} is not available on a query node (`oriel query`): it owns no data. Run it on `oriel serve`; \
                 in a cluster it is not supported yet (docs/deploy.md)"
            )));
        }
        Ok(())
    }

    /// The SQL engine over this store.
    pub fn engine(&self) -> &Arc<QueryEngine> {
        &self.engine
    }

    /// Counts describing the store now; on a query node, of the cluster's segments and of the
    /// live events the last query without time bounds gathered.
    pub fn stats(&self) -> StoreStats {
        if let Some(view) = &self.view {
            let snapshot = view.snapshot();
            return StoreStats {
                live_rows: snapshot.live.iter().map(|b| b.num_rows()).sum(),
                live_bytes: snapshot.live.iter().map(|b| b.get_array_memory_size()).sum(),
                segments: snapshot.segments.len(),
                segment_rows: snapshot.segments.iter().map(|s| s.meta.rows).sum(),
                segment_bytes: snapshot.segments.iter().map(|s| s.meta.bytes).sum(),
                ..StoreStats::default()
            };
        }
        let s = self.shared.state.read();
        StoreStats {
            live_rows: s.live.rows,
            live_bytes: s.live.bytes,
            segments: s.segments.len(),
            segment_rows: s.manifest.segments.iter().map(|m| m.rows).sum(),
            segment_bytes: s.manifest.segments.iter().map(|m| m.bytes).sum(),
            persisted_offsets: s.manifest.offsets.clone(),
            ingested_offsets: s.live.offsets.clone(),
        }
    }

    /// How far queries are behind the log now.
    pub async fn ingest_lag(&self) -> Result<IngestLag> {
        if let Some(view) = &self.view {
            return Ok(view.lag());
        }
        let Some(log) = &self.log else { return Ok(IngestLag { events: 0, caught_up: true }) };
        let ingested = self.shared.state.read().live.offsets.clone();
        let mut events = 0;
        for (&p, &next) in &ingested {
            events += log.offsets(p).await?.end.saturating_sub(next);
        }
        Ok(IngestLag { events, caught_up: self.caught_up(&ingested) })
    }

    /// Whether `ingested` (each partition's next offset) reaches what the log held at open.
    pub(crate) fn caught_up(&self, ingested: &BTreeMap<u32, u64>) -> bool {
        self.start_ends.iter().all(|(p, &end)| ingested.get(p).is_some_and(|&next| next >= end))
    }

    pub(crate) fn publish_stats(&self) {
        let stats = self.stats();
        metrics::gauge!(m::LIVE_ROWS).set(stats.live_rows as f64);
        metrics::gauge!(m::LIVE_BYTES).set(stats.live_bytes as f64);
        metrics::gauge!(m::SEGMENTS).set(stats.segments as f64);
        metrics::gauge!(m::SEGMENT_BYTES).set(stats.segment_bytes as f64);
    }

    /// Stops ingestion and maintenance, persists the live buffer, and releases the directory.
    pub async fn close(&self) -> Result<()> {
        self.stop.send_replace(true);
        self.room.notify_waiters();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        // A fenced store has nothing to persist: its successor replays the same log.
        if self.log.is_some() && !self.fenced() {
            match self.flush().await {
                Ok(_) | Err(Error::Fenced(_)) => {}
                Err(error) => return Err(error),
            }
        }
        self.lock.lock().take();
        Ok(())
    }
}

/// Creates the directory, takes its lock and loads the committed manifest (in object storage,
/// the bucket's).
async fn prepare(dir: &Path, remote: Option<&Remote>) -> Result<(Manifest, DirLock)> {
    let owned = dir.to_path_buf();
    let lock = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(owned.join("segments")).map_err(Error::io("failed to create", &owned))?;
        DirLock::acquire(&owned).map_err(Error::io("cannot lock the store directory", &owned))
    })
    .await
    .map_err(|_| Error::Closed)??;
    let manifest = match remote {
        None => {
            let owned = dir.to_path_buf();
            tokio::task::spawn_blocking(move || Manifest::load(&owned)).await.map_err(|_| Error::Closed)??
        }
        Some(remote) => {
            let manifest = remote.load().await?;
            if manifest == Manifest::default() && Manifest::path(dir).exists() {
                return Err(Error::Internal(format!(
                    "{} holds a store on local disk, and {} holds none: moving an existing store into object storage \
                     is not supported yet. Point [object_store] url at the store it was used with, or remove the \
                     [object_store] section to keep the store on local disk",
                    dir.display(),
                    remote.bucket.url()
                )));
            }
            manifest
        }
    };
    Ok((manifest, lock))
}

/// Makes the opening store the owner of what `manifest` lists and removes what it does not:
/// segments written by a flush that crashed before its manifest, and obsolete segments whose
/// deletion a crash interrupted. In object storage, the manifest there is taken over first
/// (fencing a previous owner), unlisted objects are removed too, and the local files it lists
/// are taken into the cache.
async fn settle(dir: &Path, remote: Option<&Remote>, manifest: &mut Manifest) -> Result<()> {
    if let Some(remote) = remote {
        remote.take_over(manifest).await?;
        let removed = remote.remove_unlisted(manifest).await?;
        if removed > 0 {
            tracing::info!(removed, url = remote.bucket.url(), "removed segment objects the manifest does not list");
        }
    }
    let (owned, listed) = (dir.to_path_buf(), manifest.clone());
    let kept = tokio::task::spawn_blocking(move || remove_unlisted(&owned, &listed)).await.map_err(|_| Error::Closed)??;
    if let Some(remote) = remote {
        let sizes: std::collections::HashMap<PathBuf, u64> =
            manifest.segments.iter().map(|s| (dir.join(&s.file), s.bytes)).collect();
        for (path, bytes) in kept {
            if sizes.get(&path) == Some(&bytes) {
                remote.cache.insert(path, bytes);
            } else {
                // Not whole (a crash mid-download): fetched again when read.
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

/// Removes the files in `dir` that `manifest` does not list; returns those it lists, with
/// their sizes.
fn remove_unlisted(dir: &Path, manifest: &Manifest) -> Result<Vec<(PathBuf, u64)>> {
    let listed: std::collections::HashSet<PathBuf> = manifest.segments.iter().map(|s| dir.join(&s.file)).collect();
    let mut removed = 0;
    let mut kept = Vec::new();
    for entry in walk(&dir.join("segments")) {
        if listed.contains(&entry) {
            let bytes = std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
            kept.push((entry, bytes));
        } else {
            std::fs::remove_file(&entry).map_err(Error::io("failed to remove", &entry))?;
            removed += 1;
        }
    }
    let _ = std::fs::remove_file(dir.join("manifest.tmp"));
    // Partition directories emptied by compaction or retention: removing a directory that is
    // not empty fails, which is the check.
    if let Ok(entries) = std::fs::read_dir(dir.join("segments")) {
        for entry in entries.filter_map(std::result::Result::ok) {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed segment files the manifest does not list");
    }
    Ok(kept)
}

/// Every file under `dir`, recursively.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.filter_map(std::result::Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
