//! Metric names of the event log (Prometheus, via the `metrics` facade).

/// Counter: records appended durably.
pub const APPENDED_RECORDS: &str = "oriel_log_appended_records_total";
/// Counter: payload bytes appended durably.
pub const APPENDED_BYTES: &str = "oriel_log_appended_bytes_total";
/// Histogram: records per group commit (one write and one fsync).
pub const GROUP_RECORDS: &str = "oriel_log_group_commit_records";
/// Histogram: seconds one `fdatasync` took.
pub const FSYNC_SECONDS: &str = "oriel_log_fsync_seconds";
/// Gauge, label `partition`: bytes of segment files on disk.
pub const DISK_BYTES: &str = "oriel_log_disk_bytes";
/// Counter: appends that failed.
pub const APPEND_ERRORS: &str = "oriel_log_append_errors_total";
/// Gauge: corrupt batches found at recovery (each blocks reads past it until repaired).
pub const CORRUPT_BATCHES: &str = "oriel_log_corrupt_batches";
/// Counter: bytes truncated from torn tails at recovery.
pub const TRUNCATED_BYTES: &str = "oriel_log_recovery_truncated_bytes_total";
/// Counter: records deleted by retention.
pub const RETENTION_RECORDS: &str = "oriel_log_retention_removed_records_total";

/// Bucket bounds for [`FSYNC_SECONDS`]: 50 µs to 1 s.
pub const FSYNC_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Bucket bounds for [`GROUP_RECORDS`].
pub const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0];
