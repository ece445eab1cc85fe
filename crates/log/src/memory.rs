//! An in-memory [`EventLog`] with the same contract as the embedded log, for tests.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use oriel_core::{Clock, MockClock};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::watch;

use crate::embedded::consumers::Consumers;
use crate::{
    Error, EventLog, OffsetRange, Position, Record, Result, RetentionPolicy, RetentionReport, StoredRecord, partition_for,
};

#[derive(Debug, Default)]
struct MemPartition {
    start: u64,
    records: std::collections::VecDeque<StoredRecord>,
}

/// An [`EventLog`] that keeps everything in memory; "durable" means "in this process".
#[derive(Debug)]
pub struct MemoryLog {
    partitions: Vec<Mutex<MemPartition>>,
    ends: Vec<watch::Sender<u64>>,
    consumers: Mutex<Consumers>,
    retention: RetentionPolicy,
    clock: Arc<dyn Clock>,
    closed: AtomicBool,
}

impl MemoryLog {
    /// A log with `partitions` partitions and no retention.
    pub fn new(partitions: u32) -> Self {
        Self::with_retention(partitions, RetentionPolicy::default(), Arc::new(MockClock::new(0)))
    }

    /// A log with a retention policy judged by `clock`.
    pub fn with_retention(partitions: u32, retention: RetentionPolicy, clock: Arc<dyn Clock>) -> Self {
        let partitions = partitions.max(1);
        Self {
            partitions: (0..partitions).map(|_| Mutex::new(MemPartition::default())).collect(),
            ends: (0..partitions).map(|_| watch::Sender::new(0)).collect(),
            consumers: Mutex::new(Consumers::in_memory()),
            retention,
            clock,
            closed: AtomicBool::new(false),
        }
    }

    fn check(&self, partition: u32) -> Result<()> {
        if (partition as usize) < self.partitions.len() {
            Ok(())
        } else {
            Err(Error::NoSuchPartition { partition, count: self.partition_count() })
        }
    }

    fn starts(&self) -> Vec<u64> {
        self.partitions.iter().map(|p| p.lock().start).collect()
    }

    fn offsets_now(&self, partition: u32) -> Result<OffsetRange> {
        self.check(partition)?;
        let p = self.partitions[partition as usize].lock();
        Ok(OffsetRange { start: p.start, end: p.start + p.records.len() as u64 })
    }

    /// Registers `consumer`, as the embedded log does: until it commits, it protects
    /// everything stored now from retention.
    pub fn register_consumer(&self, consumer: &str) {
        let starts = self.starts();
        self.consumers.lock().register(consumer, starts);
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let mut positions = Vec::with_capacity(records.len());
        for record in records {
            let id = partition_for(&record.key, self.partition_count());
            let mut p = self.partitions[id as usize].lock();
            let offset = p.start + p.records.len() as u64;
            p.records.push_back(StoredRecord {
                partition: id,
                offset,
                timestamp_ms: record.timestamp_ms,
                key: record.key,
                value: record.value,
            });
            self.ends[id as usize].send_replace(offset + 1);
            positions.push(Position { partition: id, offset });
        }
        Ok(positions)
    }

    async fn read(&self, partition: u32, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        self.check(partition)?;
        let p = self.partitions[partition as usize].lock();
        if offset < p.start {
            return Err(Error::OffsetRemoved { partition, requested: offset, start: p.start });
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for record in p.records.iter().skip((offset - p.start) as usize) {
            if bytes >= max_bytes && !out.is_empty() {
                break;
            }
            bytes += record.key.len() + record.value.len();
            out.push(record.clone());
        }
        Ok(out)
    }

    async fn wait_for(&self, partition: u32, offset: u64) -> Result<()> {
        self.check(partition)?;
        let mut end = self.ends[partition as usize].subscribe();
        end.wait_for(|&end| end > offset || self.closed.load(Ordering::SeqCst)).await.map_err(|_| Error::Closed)?;
        if self.closed.load(Ordering::SeqCst) { Err(Error::Closed) } else { Ok(()) }
    }

    async fn offsets(&self, partition: u32) -> Result<OffsetRange> {
        self.offsets_now(partition)
    }

    async fn commit_consumer(&self, consumer: &str, partition: u32, next_offset: u64) -> Result<()> {
        let end = self.offsets_now(partition)?.end;
        if next_offset > end {
            return Err(Error::BadMetadata {
                path: "memory".into(),
                reason: format!("commit of offset {next_offset} beyond the end {end} of partition {partition}"),
            });
        }
        let starts = self.starts();
        self.consumers.lock().commit(consumer, partition, next_offset, || starts);
        Ok(())
    }

    async fn consumer_position(&self, consumer: &str, partition: u32) -> Result<Option<u64>> {
        self.check(partition)?;
        Ok(self.consumers.lock().position(consumer, partition))
    }

    async fn enforce_retention(&self) -> Result<RetentionReport> {
        let now = self.clock.now_ms();
        let mut report = RetentionReport::default();
        for (id, partition) in self.partitions.iter().enumerate() {
            let protect = self.consumers.lock().min_position(id as u32);
            let mut p = partition.lock();
            let mut total: u64 = p.records.iter().map(|r| (r.key.len() + r.value.len()) as u64).sum();
            while let Some(oldest) = p.records.front() {
                let size = (oldest.key.len() + oldest.value.len()) as u64;
                let too_old = self.retention.max_age_ms.is_some_and(|age| oldest.timestamp_ms < now.saturating_sub(age));
                let too_big = self.retention.max_bytes.is_some_and(|max| total > max);
                if protect.is_some_and(|p| oldest.offset >= p) || !(too_old || too_big) {
                    break;
                }
                total -= size;
                report.bytes_removed += size;
                report.records_removed += 1;
                p.records.pop_front();
                p.start += 1;
            }
        }
        Ok(report)
    }

    fn stored_bytes(&self) -> Option<u64> {
        None
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        for end in &self.ends {
            end.send_modify(|_| {});
        }
        Ok(())
    }
}
