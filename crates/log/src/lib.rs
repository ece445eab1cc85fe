//! The event log: where "no accepted event is ever lost" is won or lost.
//!
//! The collector appends enriched events; [`EventLog::append`] returns only once they are durable.
//! The store's ingester tails each partition with [`EventLog::read`] and [`EventLog::wait_for`],
//! starting from the offsets its own manifest records, and reports how far it has durably got
//! with [`EventLog::commit_consumer`]: the embedded log keeps data a registered consumer has not
//! processed from retention, and a remote log records it for monitoring.
//!
//! [`open`] builds the configured implementation; nothing else in Oriel names one:
//! - [`EmbeddedLog`]: the default. Per-partition segment files of checksummed record batches
//!   ([`batch`] describes the format), group commit with `fdatasync`, crash recovery that truncates
//!   a torn tail and reports (never serves) a corrupt batch, retention that spares what registered
//!   consumers have not processed.
//! - [`KafkaLog`]: a topic of an Apache Kafka cluster, through librdkafka: idempotent producer
//!   with `acks=all`, consumers assigned by hand with offsets kept by the store.
//! - [`MemoryLog`]: the same contract in memory, for tests of the crates above.
//!
//! A record's partition is chosen from its key (the visitor's `party_id`) with Kafka's default
//! partitioner ([`partition_for`]), so a visitor's events stay in order and land in the same
//! partition number whether Oriel runs on the embedded log or on Kafka.

mod embedded;
mod error;
mod kafka;
mod memory;
pub mod metrics;
mod open;
mod partitioner;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use embedded::batch;
pub use embedded::{EmbeddedLog, EmbeddedOptions, LogStats, RecoveryReport};
pub use error::{Error, Result};
pub use kafka::KafkaLog;
pub use memory::MemoryLog;
pub use open::{open, open_existing};
pub use partitioner::partition_for;

/// One record to append: a key that picks the partition, a value, and a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partitioning key: the visitor id for events.
    pub key: Bytes,
    /// Payload: one event as JSON.
    pub value: Bytes,
    /// Milliseconds since the epoch; used by age-based retention.
    pub timestamp_ms: i64,
}

impl Record {
    /// A record from its parts.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>, timestamp_ms: i64) -> Self {
        Self { key: key.into(), value: value.into(), timestamp_ms }
    }

    /// Bytes this record counts for against append limits.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Partition it is stored in.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The timestamp it was appended with.
    pub timestamp_ms: i64,
    /// Partitioning key.
    pub key: Bytes,
    /// Payload.
    pub value: Bytes,
}

/// Where an appended record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Partition.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
}

/// The offsets a partition currently holds: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// The oldest offset still stored (retention moves it up).
    pub start: u64,
    /// One past the newest durable offset: the offset the next record will get.
    pub end: u64,
}

/// How long data is kept once every registered consumer has processed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Delete data older than this many milliseconds; `None` keeps data regardless of age.
    pub max_age_ms: Option<i64>,
    /// Delete the oldest data of a partition larger than this; `None` means no size limit.
    pub max_bytes: Option<u64>,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Records removed, over all partitions.
    pub records_removed: u64,
    /// Bytes of storage released.
    pub bytes_removed: u64,
}

/// The event log contract. Every implementation passes the same conformance suite
/// (`tests/it/conformance.rs`). Methods that may need I/O on a remote log are async.
#[async_trait]
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Which implementation this is, as `log.type` names it.
    fn kind(&self) -> &'static str;

    /// Number of partitions, fixed when the log was created.
    fn partition_count(&self) -> u32;

    /// Appends `records` and returns where each was stored, in input order, only once all of them
    /// are durable. Records with the same key keep their relative order.
    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>>;

    /// Reads records of `partition` from `offset` on, in offset order: at least one record when
    /// `offset` is below the end, and about `max_bytes` of payload at most. An empty result means
    /// `offset` is the end; use [`EventLog::wait_for`] to wait for more.
    async fn read(&self, partition: u32, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>>;

    /// Waits, without polling, until `partition` holds a record at `offset`.
    async fn wait_for(&self, partition: u32, offset: u64) -> Result<()>;

    /// The offsets `partition` holds now.
    async fn offsets(&self, partition: u32) -> Result<OffsetRange>;

    /// Records that `consumer` has durably processed `partition` up to (not including)
    /// `next_offset`. Logs that own retention keep what a registered consumer has not processed.
    async fn commit_consumer(&self, consumer: &str, partition: u32, next_offset: u64) -> Result<()>;

    /// The committed position of `consumer` in `partition`, if it has one.
    async fn consumer_position(&self, consumer: &str, partition: u32) -> Result<Option<u64>>;

    /// Deletes data past the retention policy that every registered consumer has processed, for
    /// logs that own their retention; a log whose server applies retention itself reports nothing.
    async fn enforce_retention(&self) -> Result<RetentionReport>;

    /// Bytes the log keeps on this machine's disk, when it keeps any.
    fn stored_bytes(&self) -> Option<u64>;

    /// Whether an append can be made durable now: false while a remote log's brokers are known
    /// to be unreachable (appends are then refused at once).
    fn accepting(&self) -> bool {
        true
    }

    /// Stops accepting appends, finishes and syncs the ones in flight, and releases files.
    async fn close(&self) -> Result<()>;
}
