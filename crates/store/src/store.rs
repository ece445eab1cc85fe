//! The store: ingestion from the log, the live buffer, persistence into segments under the
//! manifest, compaction, retention and deletion.
//!
//! One ingest task per log partition reads events from the offset the manifest records, decodes
//! them into Arrow and appends them to the live buffer, where queries see them at once. The
//! maintenance task persists the live buffer into Parquet segments (one per time partition) and
//! commits them together with the log offsets they cover in one manifest rename: that is the
//! exactly-once step. After a crash the live buffer is rebuilt by replaying the log from those
//! offsets. Flush, compaction, retention and deletion take turns on one lock; ingestion and
//! queries never wait for them except for the instant a new state is swapped in.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use oriel_core::config::{Config, Partitioning};
use oriel_core::{Clock, SystemClock};
use oriel_log::EventLog;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::manifest::{Manifest, SegmentMeta, Tombstone, sync_dir};
use crate::metrics as m;
use crate::schema::{BatchBuilder, events_schema};
use crate::segment::{self, Granularity};
use crate::sql::SqlEngine;
use crate::table::EventsTable;
use crate::{Error, Result};

/// The name under which the store registers with the event log.
pub const CONSUMER: &str = "store";
/// Live batches smaller than this are merged once [`COALESCE_COUNT`] of them follow each other:
/// an ingester that keeps up with the log reads a few events at a time, and thousands of tiny
/// batches cost memory and query time. Batches of a catching-up ingester (thousands of rows
/// per read) are left alone, so replay copies nothing.
const COALESCE_ROWS: usize = 1024;
/// How many small batches in a row trigger a merge.
const COALESCE_COUNT: usize = 32;
/// Payload bytes one ingest read asks the log for.
const INGEST_READ_BYTES: usize = 4 << 20;
/// How often the maintenance task wakes up to check the flush conditions.
const MAINTENANCE_TICK: Duration = Duration::from_millis(250);

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
    /// Merge a partition once it has this many segments.
    pub compaction_min_segments: usize,
    /// How often compaction and retention run.
    pub housekeeping_interval: Duration,
    /// Drop partitions older than this many days; 0 keeps everything.
    pub retention_days: u32,
    /// Memory all running SQL queries may use together.
    pub query_memory_bytes: usize,
    /// Source of "now" for retention.
    pub clock: Arc<dyn Clock>,
}

impl StoreOptions {
    /// Options from the configuration.
    pub fn from_config(config: &Config) -> Self {
        let s = &config.store;
        Self {
            dir: config.data_dir.join("store"),
            granularity: match s.partition {
                Partitioning::Hour => Granularity::Hour,
                Partitioning::Day => Granularity::Day,
            },
            flush_interval: Duration::from_secs(s.flush_interval_seconds),
            flush_rows: usize::try_from(s.flush_rows).unwrap_or(usize::MAX),
            compaction_min_segments: s.compaction_min_segments as usize,
            housekeeping_interval: Duration::from_secs(s.housekeeping_interval_seconds),
            retention_days: s.retention_days,
            query_memory_bytes: usize::try_from(s.query_memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            clock: Arc::new(SystemClock),
        }
    }
}

/// A segment file in use. When a newer manifest no longer lists it, it is marked obsolete and
/// deleted once the last query snapshot holding it is gone.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub(crate) meta: SegmentMeta,
    pub(crate) path: PathBuf,
    obsolete: AtomicBool,
}

impl SegmentFile {
    fn new(dir: &Path, meta: SegmentMeta) -> Arc<Self> {
        let path = dir.join(&meta.file);
        Arc::new(Self { meta, path, obsolete: AtomicBool::new(false) })
    }

    fn retire(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::SeqCst) {
            if let Err(error) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), %error, "failed to delete an obsolete segment");
            }
        }
    }
}

/// What a query sees: a consistent set of segments and live batches.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) segments: Vec<Arc<SegmentFile>>,
    pub(crate) live: Vec<RecordBatch>,
}

#[derive(Debug, Default)]
struct Live {
    batches: Vec<RecordBatch>,
    /// Leading batches a flush is writing; they must keep their place until it drains them.
    pinned: usize,
    rows: usize,
    /// Per log partition, the offset of the next event to ingest.
    offsets: BTreeMap<u32, u64>,
    /// When the oldest batch still in the buffer arrived.
    since: Option<Instant>,
}

#[derive(Debug)]
struct State {
    manifest: Manifest,
    segments: Vec<Arc<SegmentFile>>,
    live: Live,
}

/// The state shared by the store, its tasks and its table provider.
#[derive(Debug)]
pub(crate) struct Shared {
    options: StoreOptions,
    state: RwLock<State>,
}

impl Live {
    /// Merges the trailing run of small batches into one once it is long enough.
    fn coalesce(&mut self) {
        let run = self.batches[self.pinned..].iter().rev().take_while(|b| b.num_rows() < COALESCE_ROWS).count();
        if run < COALESCE_COUNT {
            return;
        }
        let start = self.batches.len() - run;
        match datafusion::arrow::compute::concat_batches(&events_schema(), &self.batches[start..]) {
            Ok(merged) => {
                self.batches.truncate(start);
                self.batches.push(merged);
            }
            Err(error) => tracing::warn!(%error, "cannot merge live batches"),
        }
    }
}

impl Shared {
    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.state.read();
        Snapshot { segments: state.segments.clone(), live: state.live.batches.clone() }
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

/// The store of one process.
#[derive(Debug)]
pub struct Store {
    shared: Arc<Shared>,
    log: Option<Arc<dyn EventLog>>,
    maintenance: tokio::sync::Mutex<()>,
    flush_wanted: Notify,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    sql: SqlEngine,
    lock: Mutex<Option<File>>,
}

impl Store {
    /// Opens the store; with a `log`, starts ingesting from the offsets in the manifest and
    /// the background flush, compaction and retention. Without one (offline tools such as
    /// import), only reads and direct writes work.
    pub async fn open(mut options: StoreOptions, log: Option<Arc<dyn EventLog>>) -> Result<Arc<Self>> {
        m::describe();
        // Segment paths become file URLs, which must be absolute.
        options.dir = std::path::absolute(&options.dir).map_err(Error::io("cannot resolve", &options.dir))?;
        let dir = options.dir.clone();
        let (manifest, lock) = tokio::task::spawn_blocking(move || prepare_dir(&dir)).await.map_err(|_| Error::Closed)??;
        let segments: Vec<Arc<SegmentFile>> =
            manifest.segments.iter().map(|meta| SegmentFile::new(&options.dir, meta.clone())).collect();
        let mut live = Live::default();
        if let Some(log) = &log {
            log.register_consumer(CONSUMER).await?;
            for p in 0..log.partition_count() {
                let start = log.offsets(p)?.start;
                let from = manifest.offsets.get(&p).copied().unwrap_or(start);
                live.offsets.insert(p, from.max(start));
            }
        }
        let shared = Arc::new(Shared { options, state: RwLock::new(State { manifest, segments, live }) });
        let memory = shared.options.query_memory_bytes;
        let sql = SqlEngine::new(vec![("events", Arc::new(EventsTable::new(Arc::clone(&shared))))], memory)?;
        let store = Arc::new(Self {
            shared,
            log: log.clone(),
            maintenance: tokio::sync::Mutex::new(()),
            flush_wanted: Notify::new(),
            stop: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
            sql,
            lock: Mutex::new(Some(lock)),
        });
        store.publish_stats();
        if let Some(log) = log {
            let starts = store.shared.state.read().live.offsets.clone();
            let mut tasks = store.tasks.lock();
            for (p, from) in starts {
                tasks.push(tokio::spawn(Arc::clone(&store).ingest(Arc::clone(&log), p, from)));
            }
            tasks.push(tokio::spawn(Arc::clone(&store).maintain()));
        }
        Ok(store)
    }

    /// The SQL engine over this store.
    pub fn sql(&self) -> &SqlEngine {
        &self.sql
    }

    /// Counts describing the store now.
    pub fn stats(&self) -> StoreStats {
        let s = self.shared.state.read();
        StoreStats {
            live_rows: s.live.rows,
            segments: s.segments.len(),
            segment_rows: s.manifest.segments.iter().map(|m| m.rows).sum(),
            segment_bytes: s.manifest.segments.iter().map(|m| m.bytes).sum(),
            persisted_offsets: s.manifest.offsets.clone(),
            ingested_offsets: s.live.offsets.clone(),
        }
    }

    fn publish_stats(&self) {
        let stats = self.stats();
        metrics::gauge!(m::LIVE_ROWS).set(stats.live_rows as f64);
        metrics::gauge!(m::SEGMENTS).set(stats.segments as f64);
        metrics::gauge!(m::SEGMENT_BYTES).set(stats.segment_bytes as f64);
    }

    /// Tails one log partition into the live buffer until the store stops.
    async fn ingest(self: Arc<Self>, log: Arc<dyn EventLog>, partition: u32, mut next: u64) {
        let mut stop = self.stop.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            let records = match log.read(partition, next, INGEST_READ_BYTES).await {
                Ok(records) => records,
                Err(oriel_log::Error::OffsetRemoved { start, .. }) => {
                    // Only possible if the consumer registration was lost; say how much is gone.
                    tracing::error!(partition, from = next, to = start, "log retention removed events the store had not ingested");
                    next = start;
                    continue;
                }
                Err(oriel_log::Error::Closed) => return,
                Err(error) => {
                    tracing::error!(partition, offset = next, %error, "cannot read the event log; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let Some(last) = records.last().map(|r| r.offset) else {
                tokio::select! {
                    _ = log.wait_for(partition, next) => continue,
                    _ = stop.changed() => return,
                }
            };
            let decoded = tokio::task::spawn_blocking(move || decode(&records)).await;
            let Ok(decoded) = decoded else { return };
            match decoded {
                Ok((batch, offsets)) => {
                    self.push_live(partition, batch, &offsets, last + 1);
                    next = last + 1;
                }
                Err(error) => {
                    tracing::error!(partition, offset = next, %error, "cannot decode events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn push_live(&self, partition: u32, batch: RecordBatch, offsets: &[u64], next: u64) {
        let n = batch.num_rows();
        let mut state = self.shared.state.write();
        let batch = if state.manifest.tombstones.is_empty() || n == 0 {
            batch
        } else {
            let schema = events_schema();
            let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i).as_string::<i32>().clone());
            let (party, user) = (column("party_id"), column("user_id"));
            let value = |c: &Option<datafusion::arrow::array::StringArray>, row: usize| {
                c.as_ref().filter(|c| c.is_valid(row)).map(|c| c.value(row).to_string())
            };
            let keep: BooleanArray = offsets
                .iter()
                .enumerate()
                .map(|(row, &offset)| {
                    let (p, u) = (value(&party, row), value(&user, row));
                    Some(!state.manifest.tombstones.iter().any(|t| t.covers(partition, offset, p.as_deref(), u.as_deref())))
                })
                .collect();
            match filter_record_batch(&batch, &keep) {
                Ok(b) => b,
                Err(error) => {
                    tracing::error!(%error, "cannot apply deletions to ingested events");
                    batch
                }
            }
        };
        let rows = batch.num_rows();
        if rows > 0 {
            state.live.batches.push(batch);
            state.live.rows += rows;
            state.live.since.get_or_insert_with(Instant::now);
            state.live.coalesce();
        }
        state.live.offsets.insert(partition, next);
        let full = state.live.rows >= self.shared.options.flush_rows;
        drop(state);
        metrics::counter!(m::INGESTED).increment(rows as u64);
        metrics::gauge!(m::LIVE_ROWS).set(self.shared.state.read().live.rows as f64);
        if full {
            self.flush_wanted.notify_one();
        }
    }

    /// Flushes when due, and compacts and applies retention now and then, until the store stops.
    async fn maintain(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        let mut last_housekeeping = Instant::now();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = self.flush_wanted.notified() => {}
                () = tokio::time::sleep(MAINTENANCE_TICK) => {}
            }
            let due = {
                let s = self.shared.state.read();
                s.live.rows >= self.shared.options.flush_rows
                    || s.live.since.is_some_and(|t| t.elapsed() >= self.shared.options.flush_interval)
            };
            if due {
                if let Err(error) = self.flush().await {
                    tracing::error!(%error, "flush failed; the events stay in the log and the live buffer");
                }
            }
            if last_housekeeping.elapsed() >= self.shared.options.housekeeping_interval {
                last_housekeeping = Instant::now();
                if let Err(error) = self.compact().await {
                    tracing::error!(%error, "compaction failed");
                }
                if let Err(error) = self.enforce_retention().await {
                    tracing::error!(%error, "store retention failed");
                }
            }
        }
    }

    /// Persists the live buffer into segments and commits them with the offsets they cover.
    pub async fn flush(&self) -> Result<FlushReport> {
        let _turn = self.maintenance.lock().await;
        let started = Instant::now();
        let (batches, offsets, manifest) = {
            let mut s = self.shared.state.write();
            s.live.pinned = s.live.batches.len();
            (s.live.batches.clone(), s.live.offsets.clone(), s.manifest.clone())
        };
        let count = batches.len();
        if count == 0 && offsets == manifest.offsets {
            return Ok(FlushReport::default());
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        // Start and end lines bracket the persistence, so a crash test can tell where it struck.
        tracing::debug!(rows, "flushing the live buffer");
        let written = self.write_segments(manifest, batches, |m| m.offsets = offsets).await;
        let (next, added) = match written {
            Ok(written) => written,
            Err(error) => {
                self.shared.state.write().live.pinned = 0;
                return Err(error);
            }
        };
        let report = FlushReport { rows: rows as u64, segments: added.len() };
        {
            let mut s = self.shared.state.write();
            s.manifest = next.clone();
            s.segments.extend(added);
            s.live.batches.drain(..count);
            s.live.pinned = 0;
            s.live.rows -= rows;
            s.live.since = if s.live.batches.is_empty() { None } else { Some(Instant::now()) };
        }
        self.commit_consumer(&next.offsets).await;
        metrics::histogram!(m::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        self.publish_stats();
        tracing::debug!(rows, segments = report.segments, "flushed the live buffer");
        Ok(report)
    }

    /// Writes `batches` as new segments on top of `manifest`, lets `edit` change the manifest
    /// further, and commits it. Returns the new manifest and the new segment files.
    async fn write_segments(
        &self,
        manifest: Manifest,
        batches: Vec<RecordBatch>,
        edit: impl FnOnce(&mut Manifest) + Send + 'static,
    ) -> Result<(Manifest, Vec<Arc<SegmentFile>>)> {
        self.write_segments_as(self.shared.options.granularity, manifest, batches, edit).await
    }

    /// [`Self::write_segments`] with partitions of `granularity`.
    async fn write_segments_as(
        &self,
        granularity: Granularity,
        manifest: Manifest,
        batches: Vec<RecordBatch>,
        edit: impl FnOnce(&mut Manifest) + Send + 'static,
    ) -> Result<(Manifest, Vec<Arc<SegmentFile>>)> {
        let dir = self.shared.options.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut manifest = manifest;
            let metas = write_partitions(&dir, &mut manifest, &batches, granularity)?;
            edit(&mut manifest);
            manifest.generation += 1;
            manifest.commit(&dir)?;
            Ok((manifest, metas.into_iter().map(|meta| SegmentFile::new(&dir, meta)).collect()))
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    async fn commit_consumer(&self, offsets: &BTreeMap<u32, u64>) {
        let Some(log) = &self.log else { return };
        for (&p, &offset) in offsets {
            if let Err(error) = log.commit_consumer(CONSUMER, p, offset).await {
                tracing::warn!(partition = p, %error, "cannot tell the log how far the store has persisted");
            }
        }
    }

    /// Merges segments: a time partition that has accumulated `compaction_min_segments` small
    /// ones, and every day before today into one segment for the whole day. Recent data stays
    /// in hourly partitions (cheap to rewrite while it still grows); older data ends up in one
    /// file per day, so a query over weeks opens a few dozen files instead of hundreds.
    pub async fn compact(&self) -> Result<usize> {
        let _turn = self.maintenance.lock().await;
        let now = self.shared.options.clock.now_ms();
        let current = self.shared.options.granularity.key(now);
        let today = Granularity::Day.key(now);
        let manifest = self.shared.state.read().manifest.clone();
        let mut groups: BTreeMap<(String, Granularity), Vec<SegmentMeta>> = BTreeMap::new();
        for meta in &manifest.segments {
            // Partition keys start with the day: `2026-11-27` or `2026-11-27T10`.
            let day = meta.partition.get(..10).unwrap_or(&meta.partition);
            let key = if day < today.as_str() {
                (day.to_string(), Granularity::Day)
            } else {
                (meta.partition.clone(), self.shared.options.granularity)
            };
            groups.entry(key).or_default().push(meta.clone());
        }
        let min = self.shared.options.compaction_min_segments;
        let mut merged = 0;
        for ((key, granularity), metas) in groups {
            let closed = granularity == Granularity::Day && granularity != self.shared.options.granularity;
            let due = metas.len() >= min || (metas.len() >= 2 && (closed || key < current));
            let reshape = closed && metas.iter().any(|m| m.partition != key);
            if due || reshape {
                self.merge(&key, granularity, &metas).await?;
                merged += 1;
            }
        }
        if merged > 0 {
            metrics::counter!(m::COMPACTIONS).increment(merged as u64);
            self.publish_stats();
        }
        Ok(merged)
    }

    /// Rewrites `metas` as one segment per `granularity` partition (one, for a single key).
    async fn merge(&self, key: &str, granularity: Granularity, metas: &[SegmentMeta]) -> Result<()> {
        tracing::debug!(partition = key, segments = metas.len(), "compacting a time partition");
        let dir = self.shared.options.dir.clone();
        let paths: Vec<PathBuf> = metas.iter().map(|m| dir.join(&m.file)).collect();
        let batches = tokio::task::spawn_blocking(move || -> Result<Vec<RecordBatch>> {
            let mut all = Vec::new();
            for path in paths {
                all.extend(segment::read(&path)?);
            }
            Ok(all)
        })
        .await
        .map_err(|_| Error::Closed)??;
        let old: Vec<u64> = metas.iter().map(|m| m.id).collect();
        let manifest = self.shared.state.read().manifest.clone();
        let drop_old = old.clone();
        let (next, added) = self
            .write_segments_as(granularity, manifest, batches, move |m| m.segments.retain(|s| !drop_old.contains(&s.id)))
            .await?;
        self.swap_segments(next, added, &old);
        tracing::debug!(partition = key, merged = old.len(), "compacted a time partition");
        Ok(())
    }

    /// Installs a committed manifest in which segments `removed` were replaced by `added`.
    fn swap_segments(&self, manifest: Manifest, added: Vec<Arc<SegmentFile>>, removed: &[u64]) {
        // Every manifest change happens on the maintenance turn, from the state's manifest, so
        // the committed one already holds every tombstone.
        let mut s = self.shared.state.write();
        s.manifest = manifest;
        s.segments.retain(|f| {
            let gone = removed.contains(&f.meta.id);
            if gone {
                f.retire();
            }
            !gone
        });
        s.segments.extend(added);
    }

    /// Drops time partitions older than the retention period, and deletions no longer needed.
    pub async fn enforce_retention(&self) -> Result<u64> {
        let _turn = self.maintenance.lock().await;
        let manifest = self.shared.state.read().manifest.clone();
        let days = self.shared.options.retention_days;
        let cutoff = self.shared.options.clock.now_ms() - i64::from(days) * 86_400_000;
        let expired: Vec<u64> =
            if days == 0 { Vec::new() } else { manifest.segments.iter().filter(|s| s.max_time < cutoff).map(|s| s.id).collect() };
        let stale_tombstones = manifest
            .tombstones
            .iter()
            .filter(|t| t.until.iter().all(|(p, &until)| manifest.offsets.get(p).is_some_and(|&o| o >= until)))
            .count();
        if expired.is_empty() && stale_tombstones == 0 {
            return Ok(0);
        }
        let rows: u64 = manifest.segments.iter().filter(|s| expired.contains(&s.id)).map(|s| s.rows).sum();
        let mut next = manifest;
        next.segments.retain(|s| !expired.contains(&s.id));
        let offsets = next.offsets.clone();
        next.tombstones.retain(|t| !t.until.iter().all(|(p, &until)| offsets.get(p).is_some_and(|&o| o >= until)));
        next.generation += 1;
        let dir = self.shared.options.dir.clone();
        let committed = next.clone();
        tokio::task::spawn_blocking(move || committed.commit(&dir)).await.map_err(|_| Error::Closed)??;
        self.swap_segments(next, Vec::new(), &expired);
        if rows > 0 {
            tracing::info!(rows, segments = expired.len(), days, "store retention dropped old partitions");
        }
        metrics::counter!(m::RETENTION_ROWS).increment(rows);
        self.publish_stats();
        Ok(rows)
    }

    /// Deletes every event of a visitor (`party_id`) or of a user (`user_id`): from the live
    /// buffer, from every segment (rewritten without them), and from log replay. Returns how
    /// many events were removed.
    pub async fn delete(&self, party_id: Option<String>, user_id: Option<String>) -> Result<u64> {
        if party_id.is_none() && user_id.is_none() {
            return Err(Error::InvalidQuery("name a party_id or a user_id to delete".into()));
        }
        let _turn = self.maintenance.lock().await;
        let until: BTreeMap<u32, u64> = match &self.log {
            Some(log) => (0..log.partition_count()).map(|p| Ok((p, log.offsets(p)?.end))).collect::<Result<_>>()?,
            None => BTreeMap::new(),
        };
        let tombstone = Tombstone { party_id: party_id.clone(), user_id: user_id.clone(), until };
        let matcher = Matcher { party_id, user_id };
        // From now on the ingester drops these events, and the live buffer loses them.
        let mut removed = 0u64;
        {
            let mut s = self.shared.state.write();
            s.manifest.tombstones.push(tombstone.clone());
            let mut kept = Vec::with_capacity(s.live.batches.len());
            for batch in std::mem::take(&mut s.live.batches) {
                let keep = matcher.keep_mask(&batch);
                let before = batch.num_rows();
                let filtered = filter_record_batch(&batch, &keep)?;
                removed += (before - filtered.num_rows()) as u64;
                if filtered.num_rows() > 0 {
                    kept.push(filtered);
                }
            }
            s.live.rows = kept.iter().map(RecordBatch::num_rows).sum();
            s.live.batches = kept;
        }
        let manifest = self.shared.state.read().manifest.clone();
        let dir = self.shared.options.dir.clone();
        let segments: Vec<SegmentMeta> = manifest.segments.clone();
        let m2 = matcher.clone();
        let (rewritten, replaced) = tokio::task::spawn_blocking(move || -> Result<(Vec<RecordBatch>, Vec<(u64, u64)>)> {
            let mut keep_batches = Vec::new();
            let mut replaced = Vec::new();
            for meta in &segments {
                let path = dir.join(&meta.file);
                let batches = segment::read(&path)?;
                let mut hits = 0u64;
                let mut filtered = Vec::new();
                for batch in &batches {
                    let keep = m2.keep_mask(batch);
                    let b = filter_record_batch(batch, &keep)?;
                    hits += (batch.num_rows() - b.num_rows()) as u64;
                    if b.num_rows() > 0 {
                        filtered.push(b);
                    }
                }
                if hits > 0 {
                    replaced.push((meta.id, hits));
                    keep_batches.extend(filtered);
                }
            }
            Ok((keep_batches, replaced))
        })
        .await
        .map_err(|_| Error::Closed)??;
        removed += replaced.iter().map(|(_, n)| n).sum::<u64>();
        let old: Vec<u64> = replaced.iter().map(|(id, _)| *id).collect();
        let drop_old = old.clone();
        let (next, added) =
            self.write_segments(manifest, rewritten, move |m| m.segments.retain(|s| !drop_old.contains(&s.id))).await?;
        self.swap_segments(next, added, &old);
        metrics::counter!(m::DELETED).increment(removed);
        self.publish_stats();
        tracing::info!(removed, rewritten_segments = old.len(), "deleted events on request");
        Ok(removed)
    }

    /// Adds events directly as segments (backfills and migrations), bypassing the log. The log
    /// offsets in the manifest do not move.
    pub async fn import(&self, batches: Vec<RecordBatch>) -> Result<FlushReport> {
        let _turn = self.maintenance.lock().await;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(FlushReport::default());
        }
        let manifest = self.shared.state.read().manifest.clone();
        let (next, added) = self.write_segments(manifest, batches, |_| {}).await?;
        let segments = added.len();
        self.swap_segments(next, added, &[]);
        self.publish_stats();
        Ok(FlushReport { rows: rows as u64, segments })
    }

    /// Stops ingestion and maintenance, persists the live buffer, and releases the directory.
    pub async fn close(&self) -> Result<()> {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        if self.log.is_some() {
            self.flush().await?;
        }
        self.lock.lock().take();
        Ok(())
    }
}

/// Which rows a deletion removes.
#[derive(Debug, Clone)]
struct Matcher {
    party_id: Option<String>,
    user_id: Option<String>,
}

impl Matcher {
    fn keep_mask(&self, batch: &RecordBatch) -> BooleanArray {
        let schema = events_schema();
        let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i).as_string::<i32>().clone());
        let (party, user) = (column("party_id"), column("user_id"));
        (0..batch.num_rows())
            .map(|row| {
                let hit = |col: &Option<datafusion::arrow::array::StringArray>, want: &Option<String>| {
                    match (col, want) {
                        (Some(c), Some(w)) => c.is_valid(row) && c.value(row) == w,
                        _ => false,
                    }
                };
                Some(!(hit(&party, &self.party_id) || hit(&user, &self.user_id)))
            })
            .collect()
    }
}

/// Decodes log records into one batch, and the log offset of each row. A record that is not an
/// event is skipped and counted: it cannot be stored, and blocking the partition on it would
/// stop everything after it.
fn decode(records: &[oriel_log::StoredRecord]) -> Result<(RecordBatch, Vec<u64>)> {
    let mut builder = BatchBuilder::with_capacity(records.len());
    let mut offsets = Vec::with_capacity(records.len());
    for record in records {
        match builder.push_json(&record.value) {
            Ok(()) => offsets.push(record.offset),
            Err(error) => {
                metrics::counter!(m::BAD_EVENTS).increment(1);
                tracing::error!(partition = record.partition, offset = record.offset, %error, "skipping a log record that is not an event");
            }
        }
    }
    Ok((builder.finish()?, offsets))
}

/// Writes one segment per time partition of `batches` and lists them in `manifest`.
fn write_partitions(dir: &Path, manifest: &mut Manifest, batches: &[RecordBatch], granularity: Granularity) -> Result<Vec<SegmentMeta>> {
    let mut metas = Vec::new();
    for (key, batch) in segment::split_by_partition(batches, granularity)? {
        if batch.num_rows() == 0 {
            continue;
        }
        let id = manifest.next_segment_id.max(1);
        manifest.next_segment_id = id + 1;
        let file = format!("segments/{key}/{id:012}.parquet");
        let path = dir.join(&file);
        let written = segment::write(&path, &batch)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        let meta = SegmentMeta {
            id,
            partition: key,
            file,
            rows: written.rows,
            bytes: written.bytes,
            min_time: written.min_time,
            max_time: written.max_time,
        };
        manifest.segments.push(meta.clone());
        metas.push(meta);
    }
    sync_dir(&dir.join("segments"))?;
    Ok(metas)
}

/// Creates the directory, takes its lock, loads the manifest and removes files it does not
/// list: segments written by a flush that crashed before its manifest, and obsolete segments
/// whose deletion a crash interrupted.
fn prepare_dir(dir: &Path) -> Result<(Manifest, File)> {
    std::fs::create_dir_all(dir.join("segments")).map_err(Error::io("failed to create", dir))?;
    let lock_path = dir.join("LOCK");
    let lock = File::create(&lock_path).map_err(Error::io("failed to create", &lock_path))?;
    lock.try_lock().map_err(|_| Error::Io {
        action: "another process holds the lock on",
        path: lock_path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::WouldBlock, "the store is in use; stop the running oriel first"),
    })?;
    let manifest = Manifest::load(dir)?;
    let listed: std::collections::HashSet<PathBuf> = manifest.segments.iter().map(|s| dir.join(&s.file)).collect();
    let mut removed = 0;
    for entry in walk(&dir.join("segments")) {
        if !listed.contains(&entry) {
            std::fs::remove_file(&entry).map_err(Error::io("failed to remove", &entry))?;
            removed += 1;
        }
    }
    let _ = std::fs::remove_file(dir.join("manifest.tmp"));
    if removed > 0 {
        tracing::info!(removed, "removed segment files the manifest does not list");
    }
    Ok((manifest, lock))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
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
