//! Metric names of the event log (Prometheus, via the `metrics` facade).

/// Counter: records appended durably.
pub(crate) const APPENDED_RECORDS: &str = "oriel_log_appended_records_total";
/// Counter: payload bytes appended durably.
pub(crate) const APPENDED_BYTES: &str = "oriel_log_appended_bytes_total";
/// Histogram: records per group commit (one write and one fsync).
pub const GROUP_RECORDS: &str = "oriel_log_group_commit_records";
/// Histogram: seconds one `fdatasync` took.
pub const FSYNC_SECONDS: &str = "oriel_log_fsync_seconds";
/// Gauge, label `partition`: bytes of segment files on disk.
pub(crate) const DISK_BYTES: &str = "oriel_log_disk_bytes";
/// Counter: appends that failed.
pub(crate) const APPEND_ERRORS: &str = "oriel_log_append_errors_total";
/// Gauge: corrupt batches found at recovery (each blocks reads past it until repaired).
pub(crate) const CORRUPT_BATCHES: &str = "oriel_log_corrupt_batches";
/// Counter: bytes truncated from torn tails at recovery.
pub(crate) const TRUNCATED_BYTES: &str = "oriel_log_recovery_truncated_bytes_total";
/// Counter: records deleted by retention.
pub(crate) const RETENTION_RECORDS: &str = "oriel_log_retention_removed_records_total";

/// Histogram: seconds from handing records to the Kafka producer to every broker acknowledgement.
pub const PRODUCE_SECONDS: &str = "oriel_log_kafka_produce_seconds";
/// Gauge: 1 while the Kafka brokers answer, 0 while the collector refuses events for want of them.
pub(crate) const BROKER_UP: &str = "oriel_log_kafka_broker_up";

/// Sets [`BROKER_UP`].
pub(crate) fn broker_up(up: bool) {
    ::metrics::gauge!(BROKER_UP).set(if up { 1.0 } else { 0.0 });
}

/// Bucket bounds for [`FSYNC_SECONDS`]: 50 µs to 1 s.
pub const FSYNC_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Bucket bounds for [`GROUP_RECORDS`].
pub const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0];

/// Describes every metric and registers the counters and gauges at zero, so `/metrics` lists
/// them before the first event arrives.
pub fn describe() {
    use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
    describe_counter!(APPENDED_RECORDS, Unit::Count, "records appended durably to the event log");
    describe_counter!(APPENDED_BYTES, Unit::Bytes, "payload bytes appended durably to the event log");
    describe_histogram!(GROUP_RECORDS, Unit::Count, "records per group commit (one write and one fdatasync)");
    describe_histogram!(FSYNC_SECONDS, Unit::Seconds, "duration of one fdatasync of a segment");
    describe_gauge!(DISK_BYTES, Unit::Bytes, "bytes of segment files on disk, per partition");
    describe_counter!(APPEND_ERRORS, Unit::Count, "appends that failed");
    describe_gauge!(CORRUPT_BATCHES, Unit::Count, "segments with a corrupt batch found at recovery");
    describe_counter!(TRUNCATED_BYTES, Unit::Bytes, "bytes cut from torn segment tails at recovery");
    describe_counter!(RETENTION_RECORDS, Unit::Count, "records deleted by log retention");
    describe_histogram!(PRODUCE_SECONDS, Unit::Seconds, "time until the Kafka brokers acknowledged an append");
    describe_gauge!(BROKER_UP, Unit::Count, "1 while the Kafka brokers answer (Kafka log only)");
    counter!(APPENDED_RECORDS).increment(0);
    counter!(APPENDED_BYTES).increment(0);
    counter!(APPEND_ERRORS).increment(0);
    counter!(RETENTION_RECORDS).increment(0);
    gauge!(CORRUPT_BATCHES).set(0.0);
}
