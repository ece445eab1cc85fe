//! One partition of the embedded log: its segments, its offsets, reads and retention.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::segment::{self, Segment, sync_dir};
use super::writer::{Request, Writer};
use super::{EmbeddedOptions, RecoveryReport};
use crate::metrics as m;
use crate::{Error, Result, RetentionPolicy, RetentionReport, StoredRecord};

/// Appends waiting for a partition's writer before `append` itself waits.
const QUEUE_CAPACITY: usize = 4096;

/// One partition: segments oldest first, and the channel to its writer thread.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    pub(crate) start: AtomicU64,
    pub(crate) end: watch::Sender<u64>,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) synced_records: AtomicU64,
    pub(crate) sync_nanos: AtomicU64,
    pub(crate) queue: RwLock<Option<flume::Sender<Request>>>,
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
}

impl Partition {
    pub(crate) fn open(root: &Path, id: u32) -> Result<(Self, RecoveryReport)> {
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

    pub(crate) fn start_writer(
        self: &Arc<Self>,
        options: &EmbeddedOptions,
        spares: Option<flume::Sender<PathBuf>>,
    ) -> Result<()> {
        let (tx, rx) = flume::bounded(QUEUE_CAPACITY);
        let partition = Arc::clone(self);
        let writer = Writer::new(options, spares);
        let handle = std::thread::Builder::new()
            .name(format!("oriel-log-p{}", self.id))
            .spawn(move || writer.run(&partition, &rx))
            .map_err(Error::io("failed to start writer thread for", &self.dir))?;
        *self.queue.write() = Some(tx);
        *self.writer.lock() = Some(handle);
        Ok(())
    }

    pub(crate) fn active(&self) -> Arc<Segment> {
        // A partition always has at least one segment: open creates one and retention keeps one.
        let segments = self.segments.read();
        Arc::clone(&segments[segments.len() - 1])
    }

    pub(crate) fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
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

    pub(crate) fn enforce_retention(
        &self,
        policy: RetentionPolicy,
        now_ms: i64,
        protect: Option<u64>,
    ) -> Result<RetentionReport> {
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

    pub(crate) fn publish_disk_bytes(&self) {
        metrics::gauge!(m::DISK_BYTES, "partition" => self.id.to_string()).set(self.disk_bytes.load(Ordering::Relaxed) as f64);
    }
}
