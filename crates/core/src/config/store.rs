//! The `[store]` section: segments, flushing, compaction, retention, and the limits of queries.

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// How the store cuts segments in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Partitioning {
    /// One time partition per hour.
    #[default]
    Hour,
    /// One time partition per day.
    Day,
}

/// Store settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Time partitioning of segments.
    pub partition: Partitioning,
    /// Persist the live buffer at least this often, in seconds.
    pub flush_interval_seconds: u64,
    /// Persist the live buffer once it holds this many events.
    pub flush_rows: u64,
    /// Memory the live buffer may use, in MiB. Beyond it the store flushes early and stops
    /// reading the log until there is room (the log holds the events durably meanwhile).
    pub live_buffer_mb: u64,
    /// Merge a time partition's segments once it has this many.
    pub compaction_min_segments: u32,
    /// How often compaction and retention run, in seconds.
    pub housekeeping_interval_seconds: u64,
    /// Drop time partitions older than this many days; 0 keeps everything.
    pub retention_days: u32,
    /// Memory all running SQL queries may use together, in MiB; beyond it sorts and joins
    /// spill to disk, and a query that still does not fit fails with a clear error.
    pub query_memory_mb: u64,
    /// A query running longer than this many seconds is cancelled.
    pub query_timeout_seconds: u64,
    /// Queries that may run at once; more wait up to `query_queue_seconds`, then get 503.
    pub max_concurrent_queries: u32,
    /// How long a query waits for a free slot before it is refused, in seconds.
    pub query_queue_seconds: u64,
    /// Most rows one query may return; a larger result fails with a clear error.
    pub max_result_rows: u64,
    /// Most bytes one query's encoded result may take, in MiB.
    pub max_result_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            partition: Partitioning::Hour,
            flush_interval_seconds: 60,
            flush_rows: 1_000_000,
            live_buffer_mb: 512,
            compaction_min_segments: 4,
            housekeeping_interval_seconds: 30,
            retention_days: 0,
            query_memory_mb: 4096,
            query_timeout_seconds: 60,
            max_concurrent_queries: 4,
            query_queue_seconds: 10,
            max_result_rows: 1_000_000,
            max_result_mb: 256,
        }
    }
}

impl StoreConfig {
    pub(super) fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        check_range(invalid, "store.flush_interval_seconds", self.flush_interval_seconds, 1, 86_400)?;
        check_range(invalid, "store.flush_rows", self.flush_rows, 1000, 100_000_000)?;
        check_range(invalid, "store.live_buffer_mb", self.live_buffer_mb, 16, 1 << 20)?;
        check_range(invalid, "store.compaction_min_segments", self.compaction_min_segments.into(), 2, 1000)?;
        check_range(invalid, "store.housekeeping_interval_seconds", self.housekeeping_interval_seconds, 1, 86_400)?;
        check_range(invalid, "store.retention_days", self.retention_days.into(), 0, 36_500)?;
        check_range(invalid, "store.query_memory_mb", self.query_memory_mb, 64, 1 << 20)?;
        check_range(invalid, "store.query_timeout_seconds", self.query_timeout_seconds, 1, 86_400)?;
        check_range(invalid, "store.max_concurrent_queries", self.max_concurrent_queries.into(), 1, 1024)?;
        check_range(invalid, "store.query_queue_seconds", self.query_queue_seconds, 0, 3600)?;
        check_range(invalid, "store.max_result_rows", self.max_result_rows, 1, 1_000_000_000)?;
        check_range(invalid, "store.max_result_mb", self.max_result_mb, 1, 1 << 20)?;
        Ok(())
    }
}
