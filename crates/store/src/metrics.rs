//! Metric names of the store.

/// Counter: events ingested from the log into the live buffer.
pub(crate) const INGESTED: &str = "oriel_store_ingested_events_total";
/// Counter: log records that were not events and were skipped.
pub(crate) const BAD_EVENTS: &str = "oriel_store_bad_events_total";
/// Gauge: rows in the live buffer.
pub(crate) const LIVE_ROWS: &str = "oriel_store_live_rows";
/// Gauge: segments.
pub(crate) const SEGMENTS: &str = "oriel_store_segments";
/// Gauge: bytes of segment files.
pub(crate) const SEGMENT_BYTES: &str = "oriel_store_segment_bytes";
/// Histogram: seconds one flush took.
pub(crate) const FLUSH_SECONDS: &str = "oriel_store_flush_seconds";
/// Counter: time partitions compacted.
pub(crate) const COMPACTIONS: &str = "oriel_store_compactions_total";
/// Counter: rows dropped by retention.
pub(crate) const RETENTION_ROWS: &str = "oriel_store_retention_removed_rows_total";
/// Counter: rows deleted on request.
pub(crate) const DELETED: &str = "oriel_store_deleted_rows_total";
/// Histogram: seconds one SQL query took.
pub(crate) const QUERY_SECONDS: &str = "oriel_store_query_seconds";
/// Gauge: bytes of memory the live buffer holds.
pub(crate) const LIVE_BYTES: &str = "oriel_store_live_bytes";
/// Counter: times ingestion paused because the live buffer was full.
pub(crate) const INGEST_PAUSES: &str = "oriel_store_ingest_pauses_total";
/// Gauge: queries running now.
pub(crate) const QUERIES_RUNNING: &str = "oriel_store_queries_running";
/// Counter: queries refused because every slot stayed taken.
pub(crate) const QUERIES_REFUSED: &str = "oriel_store_queries_refused_total";
/// Counter: queries cancelled at their time limit.
pub(crate) const QUERIES_TIMED_OUT: &str = "oriel_store_queries_timed_out_total";

/// Gauge, label `partition`: log records of the partition the store has not ingested yet (its
/// consumer lag), refreshed every few seconds.
pub(crate) const INGEST_LAG: &str = "oriel_store_ingest_lag_events";

/// Counter, label `node` (its URL): queries a query node answered without that ingest node's
/// live events, because it could not be asked for them.
pub(crate) const NODE_FAILURES: &str = "oriel_query_ingest_node_failures_total";

/// Counter: attempts to commit to object storage (upload segments, write the manifest) that
/// failed and are retried.
pub(crate) const OBJECT_STORE_FAILURES: &str = "oriel_store_object_store_failures_total";

/// Gauge: bytes of segment files in the local cache of object storage.
pub(crate) const CACHE_BYTES: &str = "oriel_store_cache_bytes";

/// Counter: segment files evicted from the local cache.
pub(crate) const CACHE_EVICTIONS: &str = "oriel_store_cache_evictions_total";

/// Counter: bytes of segment files downloaded from object storage into the cache.
pub(crate) const CACHE_DOWNLOADED_BYTES: &str = "oriel_store_cache_downloaded_bytes_total";

/// Describes the store's metrics.
pub(crate) fn describe() {
    use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(INGESTED, Unit::Count, "events ingested from the log into the live buffer");
    describe_counter!(BAD_EVENTS, Unit::Count, "log records that were not events and were skipped");
    describe_gauge!(LIVE_ROWS, Unit::Count, "rows in the live buffer, queryable but not yet in segments");
    describe_gauge!(SEGMENTS, Unit::Count, "Parquet segments");
    describe_gauge!(SEGMENT_BYTES, Unit::Bytes, "bytes of Parquet segments");
    describe_histogram!(FLUSH_SECONDS, Unit::Seconds, "duration of one flush of the live buffer");
    describe_counter!(COMPACTIONS, Unit::Count, "time partitions compacted");
    describe_counter!(RETENTION_ROWS, Unit::Count, "rows dropped by store retention");
    describe_counter!(DELETED, Unit::Count, "rows deleted on request");
    describe_histogram!(QUERY_SECONDS, Unit::Seconds, "duration of one SQL query");
    describe_gauge!(LIVE_BYTES, Unit::Bytes, "memory held by the live buffer");
    describe_counter!(INGEST_PAUSES, Unit::Count, "times ingestion paused because the live buffer was full");
    describe_gauge!(QUERIES_RUNNING, Unit::Count, "SQL queries running now");
    describe_counter!(QUERIES_REFUSED, Unit::Count, "queries refused because every query slot stayed taken");
    describe_counter!(QUERIES_TIMED_OUT, Unit::Count, "queries cancelled at store.query_timeout_seconds");
    describe_gauge!(INGEST_LAG, Unit::Count, "log records of a partition not ingested yet (consumer lag)");
    describe_counter!(NODE_FAILURES, Unit::Count, "snapshots gathered without an unreachable ingest node's live events");
    describe_counter!(OBJECT_STORE_FAILURES, Unit::Count, "commits to object storage that failed and are retried");
    describe_gauge!(CACHE_BYTES, Unit::Bytes, "bytes of segment files in the local cache of object storage");
    describe_counter!(CACHE_EVICTIONS, Unit::Count, "segment files evicted from the local cache");
    describe_counter!(CACHE_DOWNLOADED_BYTES, Unit::Bytes, "bytes of segments downloaded from object storage");
    counter!(INGESTED).increment(0);
}
