//! The store's error type.

use std::path::PathBuf;

use oriel_core::ErrorCode;

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is unreadable or fails its checksum.
    #[error("invalid manifest {path}: {reason}")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A log record is not an event.
    #[error("invalid event in the log: {0}")]
    BadEvent(String),
    /// The SQL statement is not a read (it would write, or read outside the store): a mistake
    /// in the query like any other, answered 400.
    #[error("{0}")]
    ReadOnly(String),
    /// The SQL does not parse.
    #[error("SQL parse failed: {0}")]
    SqlParse(String),
    /// The query does not plan: unknown columns, wrong types, bad arguments.
    #[error("{0}")]
    InvalidQuery(String),
    /// The query asks for a feature Oriel does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// An input file cannot be imported.
    #[error("cannot import {path}: {reason}")]
    Import {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A query needs more than its limits allow: memory (`store.query_memory_mb`, even spilling
    /// to disk) or result size.
    #[error("{0}")]
    TooBig(String),
    /// Every query slot is taken; retry later.
    #[error("{0}")]
    Busy(String),
    /// The query ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// DataFusion failed while executing.
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] oriel_log::Error),
    /// An ingest node's answer to a query node is unusable.
    #[error("invalid answer from an ingest node: {0}")]
    BadNode(String),
    /// An ingest node cannot be asked for its live events.
    #[error("cannot reach ingest node {url}: {reason}")]
    NodeUnreachable {
        /// The node's advertised URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Two stores of a cluster would ingest the same log partition.
    #[error("{0}")]
    Assignment(String),
    /// The object store failed or cannot be reached.
    #[error("{action} {url}: {reason}")]
    ObjectStore {
        /// What was being done.
        action: &'static str,
        /// The object or prefix.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Another node has taken this store's manifest over; this one must stop writing.
    #[error("{0}")]
    Fenced(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
    /// A broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }

    /// The kind of failure, for HTTP statuses.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::SqlParse(_)
            | Self::ReadOnly(_)
            | Self::InvalidQuery(_)
            | Self::Import { .. }
            | Self::BadEvent(_)
            | Self::TooBig(_)
            | Self::Assignment(_) => ErrorCode::InvalidInput,
            Self::Closed | Self::Busy(_) | Self::NodeUnreachable { .. } | Self::ObjectStore { .. } | Self::Fenced(_) => {
                ErrorCode::Unavailable
            }
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Unsupported(_) => ErrorCode::Unsupported,
            Self::Log(e) => e.code(),
            Self::Io { .. }
            | Self::BadManifest { .. }
            | Self::BadNode(_)
            | Self::Arrow(_)
            | Self::Parquet(_)
            | Self::DataFusion(_)
            | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}
