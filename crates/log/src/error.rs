//! The log's error type.

use std::path::PathBuf;

use oriel_core::ErrorCode;

use crate::batch::BatchError;

/// Result with the log's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "failed to open segment".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A batch that is not the torn tail of the log failed its checks. It is never served.
    #[error("corrupt batch in partition {partition}, segment {segment}, at byte {position}: {reason}")]
    Corrupt {
        /// Partition.
        partition: u32,
        /// Segment file.
        segment: PathBuf,
        /// Byte position of the batch in the segment.
        position: u64,
        /// What check failed.
        #[source]
        reason: BatchError,
    },
    /// The partition number does not exist.
    #[error("partition {partition} does not exist; the log has {count} partitions")]
    NoSuchPartition {
        /// Requested partition.
        partition: u32,
        /// Number of partitions.
        count: u32,
    },
    /// The offset was deleted by retention.
    #[error("offset {requested} of partition {partition} was removed by retention; the oldest offset is {start}")]
    OffsetRemoved {
        /// Partition.
        partition: u32,
        /// Offset asked for.
        requested: u64,
        /// Oldest offset still stored.
        start: u64,
    },
    /// One append carries more bytes than allowed.
    #[error("append of {bytes} bytes exceeds the limit of {limit} bytes (log.embedded.max_append_bytes)")]
    TooLarge {
        /// Size of the append.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An earlier write or fsync failed, so this partition refuses appends until restart.
    #[error("partition {partition} stopped accepting appends after an I/O failure: {reason}")]
    Poisoned {
        /// Partition.
        partition: u32,
        /// The original failure.
        reason: String,
    },
    /// The log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The log directory was created with a different partition count.
    #[error("log at {path} has {found} partitions but {configured} are configured; the partition count cannot change")]
    PartitionCountMismatch {
        /// Log directory.
        path: PathBuf,
        /// Partitions on disk.
        found: u32,
        /// Partitions configured.
        configured: u32,
    },
    /// There is no log where one was expected.
    #[error("no event log in {path}; check data_dir (or --data-dir)")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The Kafka brokers did not do what was asked (unreachable, timed out, refused).
    #[error("{action}: {reason}")]
    Broker {
        /// What was being done.
        action: &'static str,
        /// librdkafka's description.
        reason: String,
    },
    /// The Kafka topic is missing or does not match the configuration.
    #[error("Kafka topic {topic:?}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A consumer committed an offset past the end of a partition.
    #[error("commit of offset {offset} beyond the end {end} of partition {partition}")]
    BeyondEnd {
        /// Partition.
        partition: u32,
        /// Offset committed.
        offset: u64,
        /// The partition's end.
        end: u64,
    },
    /// A metadata file of the log is unreadable.
    #[error("invalid metadata file {path}: {reason}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }

    /// The kind of failure, for mapping to an HTTP status.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::NoSuchPartition { .. } | Self::OffsetRemoved { .. } | Self::BeyondEnd { .. } => ErrorCode::InvalidInput,
            Self::Closed | Self::Broker { .. } => ErrorCode::Unavailable,
            Self::Io { .. }
            | Self::Corrupt { .. }
            | Self::Poisoned { .. }
            | Self::PartitionCountMismatch { .. }
            | Self::Missing { .. }
            | Self::Topic { .. }
            | Self::BadMetadata { .. } => ErrorCode::Internal,
        }
    }
}
