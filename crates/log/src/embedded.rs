//! The embedded log: partitions of segment files on local disk, with group commit.
//!
//! Directory layout:
//!
//! ```text
//! <dir>/LOCK                  held (flock) while a process has the log open
//! <dir>/meta.json             format version and partition count
//! <dir>/consumers.json        registered consumers and their positions
//! <dir>/partition-0000/       one folder per partition
//!     00000000000000000000.log    segments, named after their first offset
//! ```
//!
//! - [`batch`]: the on-disk record batch format.
//! - `segment`: one segment file, its index and its recovery.
//! - `partition`: a partition's segments, offsets, reads and retention.
//! - `writer`: the group-commit writer thread of a partition.
//! - `meta` and `consumers`: the directory's metadata and the consumer table.

pub mod batch;
pub(crate) mod consumers;
mod meta;
mod partition;
mod segment;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use oriel_core::config::EmbeddedLogConfig;
use oriel_core::durable::DirLock;
use oriel_core::{Clock, SystemClock};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use self::consumers::Consumers;
use self::partition::Partition;
use self::writer::{Preallocator, Request};
use crate::metrics as m;
use crate::{
    Error, EventLog, OffsetRange, Position, Record, Result, RetentionPolicy, RetentionReport, StoredRecord, partition_for,
};

/// Settings of an [`EmbeddedLog`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Number of partitions; fixed when the log is created.
    pub partitions: u32,
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// How long the writer lingers after the first append of a group for more to join.
    pub group_commit_interval: Duration,
    /// Largest payload one append may carry.
    pub max_append_bytes: usize,
    /// Keep a zero-filled spare segment ready per partition (see `log.embedded.preallocate`).
    pub preallocate: bool,
    /// What retention deletes.
    pub retention: RetentionPolicy,
    /// Consumers registered at open: until one commits, it protects everything stored from
    /// retention, so a consumer that has not started yet loses nothing.
    pub consumers: Vec<String>,
    /// Source of "now" for age-based retention.
    pub clock: Arc<dyn Clock>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self::from_config(&EmbeddedLogConfig::default())
    }
}

impl EmbeddedOptions {
    /// Options from the `[log.embedded]` configuration section, with no consumers.
    pub fn from_config(config: &EmbeddedLogConfig) -> Self {
        Self {
            partitions: config.partitions,
            segment_bytes: config.segment_bytes,
            group_commit_interval: Duration::from_millis(config.group_commit_interval_ms),
            max_append_bytes: usize::try_from(config.max_append_bytes).unwrap_or(usize::MAX),
            preallocate: config.preallocate,
            retention: RetentionPolicy {
                max_age_ms: (config.retention_hours > 0)
                    .then(|| i64::try_from(config.retention_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX)),
                max_bytes: (config.retention_bytes > 0).then_some(config.retention_bytes),
            },
            consumers: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What recovery found when the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from torn or corrupt tails.
    pub truncated_bytes: u64,
    /// Segments holding a corrupt batch that is not a torn tail; reads stop there with an error.
    pub corrupt_segments: u32,
}

/// Counters of the group commit since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogStats {
    /// `fdatasync` calls made for appends.
    pub syncs: u64,
    /// Records appended.
    pub records: u64,
    /// Total seconds spent in `fdatasync`.
    pub sync_seconds: f64,
}

/// The default, durable, on-disk [`EventLog`].
#[derive(Debug)]
pub struct EmbeddedLog {
    dir: PathBuf,
    options: EmbeddedOptions,
    partitions: Vec<Arc<Partition>>,
    consumers: Arc<Mutex<Consumers>>,
    closed: AtomicBool,
    recovery: RecoveryReport,
    /// The spare-segment thread, stopped by close before the lock is released.
    preallocator: Mutex<Option<Preallocator>>,
    /// The directory lock, released by close.
    lock: Mutex<Option<DirLock>>,
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // A log dropped without close must not leave a thread writing into its directory.
        if let Some(preallocator) = self.preallocator.lock().as_ref() {
            preallocator.cancel();
        }
    }
}

/// The partition count recorded in `dir`, or `None` when `dir` holds no log.
pub(crate) fn meta_partitions(dir: &Path) -> Result<Option<u32>> {
    meta::partitions(dir)
}

impl EmbeddedLog {
    /// Opens the log in `dir`, creating it if needed, recovers every partition and registers
    /// the configured consumers. Blocking.
    pub fn open(dir: impl Into<PathBuf>, options: EmbeddedOptions) -> Result<Self> {
        let dir = dir.into();
        m::describe();
        let lock = DirLock::acquire(&dir).map_err(Error::io("cannot lock the log directory", &dir))?;
        meta::check_or_create(&dir, options.partitions)?;
        let mut consumers = Consumers::load(dir.join("consumers.json"), options.partitions)?;
        let mut recovery = RecoveryReport::default();
        let mut partitions = Vec::with_capacity(options.partitions as usize);
        for id in 0..options.partitions {
            let (partition, report) = Partition::open(&dir, id)?;
            recovery.truncated_bytes += report.truncated_bytes;
            recovery.corrupt_segments += report.corrupt_segments;
            partitions.push(Arc::new(partition));
        }
        let starts: Vec<u64> = partitions.iter().map(|p| p.start.load(Ordering::SeqCst)).collect();
        let mut registered = false;
        for name in &options.consumers {
            registered |= consumers.register(name, starts.clone());
        }
        if registered {
            consumers.save()?;
        }
        metrics::counter!(m::TRUNCATED_BYTES).increment(recovery.truncated_bytes);
        metrics::gauge!(m::CORRUPT_BATCHES).set(f64::from(recovery.corrupt_segments));
        let preallocator = if options.preallocate { Some(Preallocator::start(options.segment_bytes)?) } else { None };
        for partition in &partitions {
            let spares = preallocator.as_ref().map(Preallocator::sender);
            if let Some(spares) = &spares {
                let _ = spares.send(partition.dir.clone());
            }
            partition.start_writer(&options, spares)?;
        }
        let log = Self {
            dir,
            options,
            partitions,
            consumers: Arc::new(Mutex::new(consumers)),
            closed: AtomicBool::new(false),
            recovery,
            preallocator: Mutex::new(preallocator),
            lock: Mutex::new(Some(lock)),
        };
        tracing::info!(
            dir = %log.dir.display(),
            truncated_bytes = recovery.truncated_bytes,
            corrupt_segments = recovery.corrupt_segments,
            disk_bytes = log.disk_bytes(),
            "event log recovered"
        );
        Ok(log)
    }

    /// Registers `consumer`: until it commits, it protects everything stored now from retention.
    /// Registering again keeps its committed positions.
    pub async fn register_consumer(&self, consumer: &str) -> Result<()> {
        let changed = self.consumers.lock().register(consumer, self.starts());
        if changed {
            self.save_consumers().await?;
        }
        Ok(())
    }

    /// Every registered consumer.
    pub fn consumers(&self) -> Vec<String> {
        self.consumers.lock().names()
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery did when the log was opened.
    pub fn recovery(&self) -> RecoveryReport {
        self.recovery
    }

    /// Bytes of segment files on disk, over all partitions.
    pub fn disk_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.disk_bytes.load(Ordering::Relaxed)).sum()
    }

    /// Group-commit counters since the log was opened.
    pub fn stats(&self) -> LogStats {
        let sum = |f: fn(&Partition) -> &AtomicU64| self.partitions.iter().map(|p| f(p).load(Ordering::Relaxed)).sum::<u64>();
        LogStats {
            syncs: sum(|p| &p.syncs),
            records: sum(|p| &p.synced_records),
            sync_seconds: sum(|p| &p.sync_nanos) as f64 / 1e9,
        }
    }

    fn partition(&self, partition: u32) -> Result<&Arc<Partition>> {
        self.partitions.get(partition as usize).ok_or(Error::NoSuchPartition { partition, count: self.options.partitions })
    }

    fn offsets_now(&self, partition: u32) -> Result<OffsetRange> {
        let p = self.partition(partition)?;
        Ok(OffsetRange { start: p.start.load(Ordering::SeqCst), end: *p.end.borrow() })
    }

    fn starts(&self) -> Vec<u64> {
        self.partitions.iter().map(|p| p.start.load(Ordering::SeqCst)).collect()
    }

    /// Persists the consumer table off the async threads.
    async fn save_consumers(&self) -> Result<()> {
        let consumers = Arc::clone(&self.consumers);
        tokio::task::spawn_blocking(move || consumers.lock().save()).await.map_err(|_| Error::Closed)?
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn partition_count(&self) -> u32 {
        self.options.partitions
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let bytes: usize = records.iter().map(Record::size).sum();
        if bytes > self.options.max_append_bytes {
            return Err(Error::TooLarge { bytes, limit: self.options.max_append_bytes });
        }
        let count = self.options.partitions;
        let mut split: Vec<(Vec<usize>, Vec<Record>)> = (0..count).map(|_| (Vec::new(), Vec::new())).collect();
        for (i, record) in records.into_iter().enumerate() {
            let p = partition_for(&record.key, count) as usize;
            split[p].0.push(i);
            split[p].1.push(record);
        }
        let mut waiting = Vec::new();
        for (p, (indices, records)) in split.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let queue = self.partitions[p].queue.read().clone().ok_or(Error::Closed)?;
            let (reply, answer) = oneshot::channel();
            queue.send_async(Request { records, reply }).await.map_err(|_| Error::Closed)?;
            waiting.push((p as u32, indices, answer));
        }
        let total = waiting.iter().map(|(_, i, _)| i.len()).sum();
        let mut positions = vec![Position { partition: 0, offset: 0 }; total];
        for (partition, indices, answer) in waiting {
            let base = answer.await.map_err(|_| Error::Closed)??;
            for (j, i) in indices.into_iter().enumerate() {
                positions[i] = Position { partition, offset: base + j as u64 };
            }
        }
        Ok(positions)
    }

    async fn read(&self, partition: u32, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        let partition = Arc::clone(self.partition(partition)?);
        tokio::task::spawn_blocking(move || partition.read(offset, max_bytes)).await.map_err(|_| Error::Closed)?
    }

    async fn wait_for(&self, partition: u32, offset: u64) -> Result<()> {
        let mut end = self.partition(partition)?.end.subscribe();
        end.wait_for(|&end| end > offset || self.closed.load(Ordering::SeqCst)).await.map_err(|_| Error::Closed)?;
        if self.closed.load(Ordering::SeqCst) { Err(Error::Closed) } else { Ok(()) }
    }

    async fn offsets(&self, partition: u32) -> Result<OffsetRange> {
        self.offsets_now(partition)
    }

    async fn commit_consumer(&self, consumer: &str, partition: u32, next_offset: u64) -> Result<()> {
        let end = self.offsets_now(partition)?.end;
        if next_offset > end {
            return Err(Error::BeyondEnd { partition, offset: next_offset, end });
        }
        let starts = self.starts();
        self.consumers.lock().commit(consumer, partition, next_offset, || starts);
        self.save_consumers().await
    }

    async fn consumer_position(&self, consumer: &str, partition: u32) -> Result<Option<u64>> {
        self.partition(partition)?;
        Ok(self.consumers.lock().position(consumer, partition))
    }

    async fn enforce_retention(&self) -> Result<RetentionReport> {
        let now = self.options.clock.now_ms();
        let mut total = RetentionReport::default();
        for partition in &self.partitions {
            let protect = self.consumers.lock().min_position(partition.id);
            let policy = self.options.retention;
            let p = Arc::clone(partition);
            let report = tokio::task::spawn_blocking(move || p.enforce_retention(policy, now, protect))
                .await
                .map_err(|_| Error::Closed)??;
            total.records_removed += report.records_removed;
            total.bytes_removed += report.bytes_removed;
        }
        metrics::counter!(m::RETENTION_RECORDS).increment(total.records_removed);
        Ok(total)
    }

    fn stored_bytes(&self) -> Option<u64> {
        Some(self.disk_bytes())
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let mut writers = Vec::new();
        for partition in &self.partitions {
            // Dropping the queue lets the writer finish what is queued and exit.
            partition.queue.write().take();
            writers.extend(partition.writer.lock().take());
            partition.end.send_modify(|_| {});
        }
        let preallocator = self.preallocator.lock().take();
        tokio::task::spawn_blocking(move || {
            for writer in writers {
                let _ = writer.join();
            }
            if let Some(preallocator) = preallocator {
                preallocator.stop();
            }
        })
        .await
        .map_err(|_| Error::Closed)?;
        self.save_consumers().await?;
        self.lock.lock().take();
        tracing::debug!(dir = %self.dir.display(), "event log closed");
        Ok(())
    }
}
