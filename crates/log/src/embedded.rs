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
//! Each partition has one writer thread. Appends queue for it; it takes everything queued (after
//! lingering `group_commit_interval` for more, if configured), writes it as one batch, runs one
//! `fdatasync`, and only then answers every append of the group. Appends that arrive during a
//! sync form the next group, so many concurrent appends share one sync.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oriel_core::config::LogConfig;
use oriel_core::{Clock, SystemClock};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::batch::{self, HEADER_LEN};
use crate::consumers::Consumers;
use crate::metrics as m;
use crate::segment::{self, Segment, sync_dir};
use crate::{
    Error, EventLog, OffsetRange, Position, Record, Result, RetentionPolicy, RetentionReport, StoredRecord,
    partition_for,
};

/// Appends waiting for a partition's writer before `append` itself waits.
const QUEUE_CAPACITY: usize = 4096;

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
    /// Source of "now" for age-based retention.
    pub clock: Arc<dyn Clock>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self::from_config(&LogConfig::default())
    }
}

impl EmbeddedOptions {
    /// Options from the `[log]` configuration section.
    pub fn from_config(config: &LogConfig) -> Self {
        Self {
            partitions: config.partitions,
            segment_bytes: config.embedded.segment_bytes,
            group_commit_interval: Duration::from_millis(config.embedded.group_commit_interval_ms),
            max_append_bytes: usize::try_from(config.embedded.max_append_bytes).unwrap_or(usize::MAX),
            preallocate: config.embedded.preallocate,
            retention: RetentionPolicy {
                max_age_ms: (config.retention_hours > 0)
                    .then(|| i64::try_from(config.retention_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX)),
                max_bytes: (config.retention_bytes > 0).then_some(config.retention_bytes),
            },
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

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u32,
    partitions: u32,
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
    /// The flock on `LOCK`, released by close.
    lock: Mutex<Option<File>>,
}

struct Request {
    records: Vec<Record>,
    reply: oneshot::Sender<Result<u64>>,
}

#[derive(Debug)]
struct Partition {
    id: u32,
    dir: PathBuf,
    segments: RwLock<Vec<Arc<Segment>>>,
    start: AtomicU64,
    end: watch::Sender<u64>,
    disk_bytes: AtomicU64,
    syncs: AtomicU64,
    synced_records: AtomicU64,
    sync_nanos: AtomicU64,
    queue: RwLock<Option<flume::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedLog {
    /// Opens the log in `dir`, creating it if needed, and recovers every partition. Blocking.
    pub fn open(dir: impl Into<PathBuf>, options: EmbeddedOptions) -> Result<Self> {
        let dir = dir.into();
        m::describe();
        fs::create_dir_all(&dir).map_err(Error::io("failed to create log directory", &dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(Error::io("failed to create", &lock_path))?;
        lock.try_lock().map_err(|_| Error::Io {
            action: "another process holds the lock on",
            path: lock_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::WouldBlock, "the log is in use; stop the other oriel first"),
        })?;
        check_meta(&dir, options.partitions)?;
        let consumers = Consumers::load(dir.join("consumers.json"), options.partitions)?;
        let mut recovery = RecoveryReport::default();
        let mut partitions = Vec::with_capacity(options.partitions as usize);
        for id in 0..options.partitions {
            let (partition, report) = Partition::open(&dir, id)?;
            recovery.truncated_bytes += report.truncated_bytes;
            recovery.corrupt_segments += report.corrupt_segments;
            partitions.push(Arc::new(partition));
        }
        metrics::counter!(m::TRUNCATED_BYTES).increment(recovery.truncated_bytes);
        metrics::gauge!(m::CORRUPT_BATCHES).set(f64::from(recovery.corrupt_segments));
        let spares = if options.preallocate { Some(start_preallocator(options.segment_bytes)?) } else { None };
        for partition in &partitions {
            if let Some(spares) = &spares {
                let _ = spares.send(partition.dir.clone());
            }
            partition.start_writer(&options, spares.clone())?;
        }
        Ok(Self {
            dir,
            options,
            partitions,
            consumers: Arc::new(Mutex::new(consumers)),
            closed: AtomicBool::new(false),
            recovery,
            lock: Mutex::new(Some(lock)),
        })
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
        self.partitions
            .get(partition as usize)
            .ok_or(Error::NoSuchPartition { partition, count: self.options.partitions })
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

/// Starts the thread that keeps one pre-zeroed spare segment ready per partition. It exits when
/// every writer has dropped its sender.
fn start_preallocator(segment_bytes: u64) -> Result<flume::Sender<PathBuf>> {
    let (tx, rx) = flume::unbounded::<PathBuf>();
    std::thread::Builder::new()
        .name("oriel-log-prealloc".into())
        .spawn(move || {
            while let Ok(dir) = rx.recv() {
                if let Err(error) = segment::prepare_spare(&dir, segment_bytes) {
                    // Without a spare the next roll creates an ordinary file: slower syncs, no loss.
                    tracing::warn!(%error, "failed to preallocate a segment");
                }
            }
        })
        .map_err(|e| Error::Io { action: "failed to start", path: "oriel-log-prealloc".into(), source: e })?;
    Ok(tx)
}

fn check_meta(dir: &Path, partitions: u32) -> Result<()> {
    let path = dir.join("meta.json");
    match fs::read(&path) {
        Ok(bytes) => {
            let meta: Meta = serde_json::from_slice(&bytes)
                .map_err(|e| Error::BadMetadata { path: path.clone(), reason: e.to_string() })?;
            if meta.version != 1 {
                return Err(Error::BadMetadata { path, reason: format!("unsupported version {}", meta.version) });
            }
            if meta.partitions != partitions {
                return Err(Error::PartitionCountMismatch {
                    path: dir.to_path_buf(),
                    found: meta.partitions,
                    configured: partitions,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = serde_json::to_vec(&Meta { version: 1, partitions })
                .map_err(|e| Error::BadMetadata { path: path.clone(), reason: e.to_string() })?;
            let tmp = dir.join("meta.json.tmp");
            fs::write(&tmp, bytes)
                .and_then(|()| File::open(&tmp)?.sync_all())
                .map_err(Error::io("failed to write", &tmp))?;
            fs::rename(&tmp, &path).map_err(Error::io("failed to create", &path))?;
            sync_dir(dir)
        }
        Err(e) => Err(Error::io("failed to read", &path)(e)),
    }
}

impl Partition {
    fn open(root: &Path, id: u32) -> Result<(Self, RecoveryReport)> {
        let dir = root.join(format!("partition-{id:04}"));
        fs::create_dir_all(&dir).map_err(Error::io("failed to create partition directory", &dir))?;
        let mut bases: Vec<u64> = fs::read_dir(&dir)
            .map_err(Error::io("failed to list", &dir))?
            .filter_map(|entry| entry.ok()?.file_name().to_str().and_then(segment::parse_file_name))
            .collect();
        bases.sort_unstable();
        let mut report = RecoveryReport::default();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let (seg, recovery) = Segment::open(dir.join(segment::file_name(base)), id, base, is_last)?;
            report.truncated_bytes += recovery.truncated_bytes;
            report.corrupt_segments += u32::from(recovery.corrupt);
            segments.push(Arc::new(seg));
        }
        // A spare that was being zeroed when the process died is incomplete.
        let _ = fs::remove_file(dir.join(segment::SPARE_TMP_NAME));
        if segments.is_empty() {
            segments.push(Arc::new(Segment::create(&dir, id, 0)?));
        }
        let start = segments[0].base_offset;
        let end = segments.last().map_or(0, |s| s.next_offset());
        let disk_bytes = segments.iter().map(|s| s.durable_len()).sum();
        metrics::gauge!(m::DISK_BYTES, "partition" => id.to_string()).set(disk_bytes as f64);
        let partition = Self {
            id,
            dir,
            segments: RwLock::new(segments),
            start: AtomicU64::new(start),
            end: watch::Sender::new(end),
            disk_bytes: AtomicU64::new(disk_bytes),
            syncs: AtomicU64::new(0),
            synced_records: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            queue: RwLock::new(None),
            writer: Mutex::new(None),
        };
        Ok((partition, report))
    }

    fn start_writer(self: &Arc<Self>, options: &EmbeddedOptions, spares: Option<flume::Sender<PathBuf>>) -> Result<()> {
        let (tx, rx) = flume::bounded(QUEUE_CAPACITY);
        let partition = Arc::clone(self);
        let writer = Writer {
            segment_bytes: options.segment_bytes,
            spares,
            linger: options.group_commit_interval,
            group_cap: options.max_append_bytes,
            poisoned: None,

        };
        let handle = std::thread::Builder::new()
            .name(format!("oriel-log-p{}", self.id))
            .spawn(move || writer.run(&partition, &rx))
            .map_err(Error::io("failed to start writer thread for", &self.dir))?;
        *self.queue.write() = Some(tx);
        *self.writer.lock() = Some(handle);
        Ok(())
    }

    fn active(&self) -> Arc<Segment> {
        // A partition always has at least one segment: open creates one and retention keeps one.
        let segments = self.segments.read();
        Arc::clone(&segments[segments.len() - 1])
    }

    fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        let start = self.start.load(Ordering::SeqCst);
        if offset < start {
            return Err(Error::OffsetRemoved { partition: self.id, requested: offset, start });
        }
        if offset >= *self.end.borrow() {
            return Ok(Vec::new());
        }
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        let first = segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let mut out = Vec::new();
        let mut from = offset;
        for seg in &segments[first..] {
            let before: usize = out.iter().map(|r: &StoredRecord| r.key.len() + r.value.len()).sum();
            let reached_end = seg.read(from, max_bytes.saturating_sub(before).max(1), &mut out)?;
            let collected: usize = out.iter().map(|r| r.key.len() + r.value.len()).sum();
            if !reached_end || collected >= max_bytes {
                break;
            }
            from = out.last().map_or(from, |r| r.offset + 1).max(seg.next_offset());
        }
        Ok(out)
    }

    fn enforce_retention(&self, policy: RetentionPolicy, now_ms: i64, protect: Option<u64>) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        let mut segments = self.segments.write();
        let mut total: u64 = segments.iter().map(|s| s.durable_len()).sum();
        while segments.len() > 1 {
            let next_base = segments[1].base_offset;
            if protect.is_some_and(|p| next_base > p) {
                break;
            }
            let oldest = &segments[0];
            let too_old = policy.max_age_ms.is_some_and(|age| oldest.max_timestamp() < now_ms.saturating_sub(age));
            let too_big = policy.max_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                break;
            }
            fs::remove_file(&oldest.path).map_err(Error::io("failed to delete segment", &oldest.path))?;
            let len = oldest.durable_len();
            total -= len;
            report.bytes_removed += len;
            report.records_removed += next_base - oldest.base_offset;
            segments.remove(0);
        }
        if report.bytes_removed > 0 {
            self.start.store(segments[0].base_offset, Ordering::SeqCst);
            sync_dir(&self.dir)?;
            self.disk_bytes.fetch_sub(report.bytes_removed, Ordering::Relaxed);
            self.publish_disk_bytes();
        }
        Ok(report)
    }

    fn publish_disk_bytes(&self) {
        metrics::gauge!(m::DISK_BYTES, "partition" => self.id.to_string())
            .set(self.disk_bytes.load(Ordering::Relaxed) as f64);
    }
}

/// The state of one partition's writer thread.
struct Writer {
    segment_bytes: u64,
    /// Asks the preallocator for a new spare segment after a roll used one.
    spares: Option<flume::Sender<PathBuf>>,
    linger: Duration,
    group_cap: usize,
    poisoned: Option<String>,
}

impl Writer {
    fn run(mut self, partition: &Partition, queue: &flume::Receiver<Request>) {
        let mut carry: Option<Request> = None;
        loop {
            let first = match carry.take() {
                Some(request) => request,
                None => match queue.recv() {
                    Ok(request) => request,
                    Err(flume::RecvError::Disconnected) => return,
                },
            };
            let mut bytes = first.records.iter().map(Record::size).sum::<usize>();
            let mut group = vec![first];
            let deadline = Instant::now() + self.linger;
            loop {
                let next = match queue.try_recv() {
                    Ok(request) => request,
                    Err(_) if Instant::now() >= deadline => break,
                    Err(_) => match queue.recv_deadline(deadline) {
                        Ok(request) => request,
                        Err(_) => break,
                    },
                };
                let size = next.records.iter().map(Record::size).sum::<usize>();
                if bytes + size > self.group_cap {
                    carry = Some(next);
                    break;
                }
                bytes += size;
                group.push(next);
            }
            self.commit_group(partition, group);
        }
    }

    fn commit_group(&mut self, partition: &Partition, group: Vec<Request>) {
        if let Some(reason) = &self.poisoned {
            for request in group {
                let _ = request.reply.send(Err(Error::Poisoned { partition: partition.id, reason: reason.clone() }));
            }
            return;
        }
        let base = *partition.end.borrow();
        let records: Vec<&Record> = group.iter().flat_map(|r| &r.records).collect();
        let mut buf = Vec::with_capacity(batch::encoded_len(&records));
        batch::encode(base, &records, &mut buf);
        let count = records.len() as u64;
        let payload: u64 = records.iter().map(|r| r.size() as u64).sum();
        match self.write_and_sync(partition, &buf) {
            Ok(()) => {
                let end = base + count;
                partition.synced_records.fetch_add(count, Ordering::Relaxed);
                partition.end.send_replace(end);
                partition.disk_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                partition.publish_disk_bytes();
                metrics::counter!(m::APPENDED_RECORDS).increment(count);
                metrics::counter!(m::APPENDED_BYTES).increment(payload);
                metrics::histogram!(m::GROUP_RECORDS).record(count as f64);
                let mut next = base;
                for request in group {
                    let n = request.records.len() as u64;
                    let _ = request.reply.send(Ok(next));
                    next += n;
                }
            }
            Err(error) => {
                // After a failed write or fsync the page cache can no longer be trusted (a later
                // fsync may report success for lost data), so refuse appends until a restart
                // recovers the partition from what is really on disk.
                tracing::error!(partition = partition.id, %error, "event log write failed; partition stops accepting appends");
                metrics::counter!(m::APPEND_ERRORS).increment(group.len() as u64);
                self.poisoned = Some(error.to_string());
                let active = partition.active();
                if let Err(truncate_error) = active.discard_unsynced() {
                    tracing::error!(partition = partition.id, %truncate_error, "failed to discard unsynced bytes");
                }
                for request in group {
                    let _ = request.reply.send(Err(Error::Poisoned { partition: partition.id, reason: error.to_string() }));
                }
            }
        }
    }

    fn write_and_sync(&self, partition: &Partition, buf: &[u8]) -> Result<()> {
        let mut active = partition.active();
        let len = buf.len() as u64;
        let full = active.durable_len() > 0 && active.durable_len() + len > self.segment_bytes;
        // A segment that grows instead of filling preallocated space (the first one, or one cut
        // back by recovery) is replaced as soon as a spare is ready, so syncs get cheap.
        let growing = active.durable_len() > 0 && !active.has_room(len) && partition.dir.join(segment::SPARE_NAME).exists();
        if full || growing {
            active.seal()?;
            let base = active.next_offset();
            active = match Segment::from_spare(&partition.dir, partition.id, base)? {
                Some(segment) => Arc::new(segment),
                None => Arc::new(Segment::create(&partition.dir, partition.id, base)?),
            };
            partition.segments.write().push(Arc::clone(&active));
            if let Some(spares) = &self.spares {
                let _ = spares.send(partition.dir.clone());
            }
        }
        active.write(buf)?;
        let started = Instant::now();
        active.sync()?;
        let took = started.elapsed();
        metrics::histogram!(m::FSYNC_SECONDS).record(took.as_secs_f64());
        partition.syncs.fetch_add(1, Ordering::Relaxed);
        partition.sync_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let header = batch::decode_header(&buf[..HEADER_LEN.min(buf.len())]).map_err(|reason| Error::Corrupt {
            partition: partition.id,
            segment: active.path.clone(),
            position: active.durable_len(),
            reason,
        })?;
        active.commit(&header);
        Ok(())
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
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

    fn offsets(&self, partition: u32) -> Result<OffsetRange> {
        let p = self.partition(partition)?;
        Ok(OffsetRange { start: p.start.load(Ordering::SeqCst), end: *p.end.borrow() })
    }

    async fn register_consumer(&self, consumer: &str) -> Result<()> {
        let changed = self.consumers.lock().register(consumer, self.starts());
        if changed {
            self.save_consumers().await?;
        }
        Ok(())
    }

    async fn commit_consumer(&self, consumer: &str, partition: u32, next_offset: u64) -> Result<()> {
        let end = self.offsets(partition)?.end;
        if next_offset > end {
            return Err(Error::BadMetadata {
                path: self.dir.join("consumers.json"),
                reason: format!("commit of offset {next_offset} beyond the end {end} of partition {partition}"),
            });
        }
        let starts = self.starts();
        self.consumers.lock().commit(consumer, partition, next_offset, || starts);
        self.save_consumers().await
    }

    fn consumer_position(&self, consumer: &str, partition: u32) -> Option<u64> {
        self.consumers.lock().position(consumer, partition)
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
        tokio::task::spawn_blocking(move || {
            for writer in writers {
                let _ = writer.join();
            }
        })
        .await
        .map_err(|_| Error::Closed)?;
        self.save_consumers().await?;
        self.lock.lock().take();
        Ok(())
    }
}
