//! The `[log]` section: which event log carries events from the collector to the store.
//!
//! `type` picks the implementation, and each implementation has a section of its own:
//!
//! ```toml
//! [log]
//! type = "embedded"
//!
//! [log.embedded]
//! partitions = 1
//!
//! [log.kafka]
//! brokers = "kafka-1:9092,kafka-2:9092"
//! topic = "oriel-events"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// Which event log to use, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LogSection", into = "LogSection")]
pub enum LogConfig {
    /// The embedded, segmented, fsynced log in `data_dir/log`.
    Embedded(EmbeddedLogConfig),
    /// A topic of an Apache Kafka (or Kafka-protocol) cluster.
    Kafka(KafkaLogConfig),
}

impl Default for LogConfig {
    fn default() -> Self {
        Self::Embedded(EmbeddedLogConfig::default())
    }
}

impl LogConfig {
    /// The implementation's name, as `type` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Kafka(_) => "kafka",
        }
    }

    /// Number of partitions of the log.
    pub fn partitions(&self) -> u32 {
        match self {
            Self::Embedded(e) => e.partitions,
            Self::Kafka(k) => k.partitions,
        }
    }

    /// How often the log's own retention runs, for logs that own their retention.
    pub fn retention_check_seconds(&self) -> Option<u64> {
        match self {
            Self::Embedded(e) => Some(e.retention_check_seconds),
            // The brokers apply the topic's retention.
            Self::Kafka(_) => None,
        }
    }

    /// The largest payload one append may carry, when the implementation has such a limit.
    pub fn max_append_bytes(&self) -> Option<u64> {
        match self {
            Self::Embedded(e) => Some(e.max_append_bytes),
            // Each event is a message of its own; the collector's caps keep it below the
            // broker's message.max.bytes.
            Self::Kafka(_) => None,
        }
    }

    pub(super) fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        match self {
            Self::Embedded(e) => {
                check_range(invalid, "log.embedded.partitions", u64::from(e.partitions), 1, 1024)?;
                check_range(invalid, "log.embedded.retention_hours", e.retention_hours, 0, 24 * 365 * 100)?;
                check_range(invalid, "log.embedded.segment_bytes", e.segment_bytes, 4096, 1 << 40)?;
                check_range(invalid, "log.embedded.group_commit_interval_ms", e.group_commit_interval_ms, 0, 1000)?;
                check_range(invalid, "log.embedded.max_append_bytes", e.max_append_bytes, 1024, 1 << 30)?;
                check_range(invalid, "log.embedded.retention_check_seconds", e.retention_check_seconds, 1, 86_400)?;
            }
            Self::Kafka(k) => k.validate(invalid)?,
        }
        Ok(())
    }
}

/// The implementations `log.type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum LogKind {
    #[default]
    Embedded,
    Kafka,
}

/// `[log]` as written in the file: the type and one section per implementation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogSection {
    #[serde(rename = "type")]
    kind: LogKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded: Option<EmbeddedLogConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka: Option<KafkaLogConfig>,
}

impl TryFrom<LogSection> for LogConfig {
    type Error = String;

    fn try_from(section: LogSection) -> Result<Self, String> {
        match section.kind {
            LogKind::Embedded => Ok(Self::Embedded(section.embedded.unwrap_or_default())),
            LogKind::Kafka => Ok(Self::Kafka(section.kafka.unwrap_or_default())),
        }
    }
}

impl From<LogConfig> for LogSection {
    fn from(config: LogConfig) -> Self {
        match config {
            LogConfig::Embedded(e) => Self { kind: LogKind::Embedded, embedded: Some(e), kafka: None },
            LogConfig::Kafka(k) => Self { kind: LogKind::Kafka, embedded: None, kafka: Some(k) },
        }
    }
}

/// Settings of the embedded log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedLogConfig {
    /// Number of partitions; a visitor's events always land in the same one. On one machine a
    /// single partition gives the largest group commits, and fsync is what limits durable appends.
    pub partitions: u32,
    /// Delete log data older than this many hours once the store has persisted it; 0 keeps
    /// data regardless of age.
    pub retention_hours: u64,
    /// Delete the oldest log data when a partition holds more than this many bytes, once the
    /// store has persisted it; 0 means no size limit.
    pub retention_bytes: u64,
    /// How often retention runs, in seconds.
    pub retention_check_seconds: u64,
    /// A segment file is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Group commit: appends that queue while a sync runs always share the next `fdatasync`; a
    /// value above 0 also makes the writer linger this long after the first append of a group,
    /// trading latency for larger groups.
    pub group_commit_interval_ms: u64,
    /// Largest batch one append may carry, in bytes.
    pub max_append_bytes: u64,
    /// Keep a zero-filled spare segment ready, so appends overwrite existing blocks and
    /// `fdatasync` need not commit file-size changes (about twice as fast on ext4 and XFS).
    /// Turn off on copy-on-write filesystems (btrfs, ZFS), where it gains nothing.
    pub preallocate: bool,
}

impl Default for EmbeddedLogConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            retention_hours: 168,
            retention_bytes: 0,
            retention_check_seconds: 60,
            segment_bytes: 128 * 1024 * 1024,
            group_commit_interval_ms: 0,
            max_append_bytes: 16 * 1024 * 1024,
            preallocate: true,
        }
    }
}

/// Settings of the Kafka log: where the cluster is, the topic, and how the producer batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaLogConfig {
    /// Bootstrap brokers, `host:port` separated by commas.
    pub brokers: String,
    /// Topic of enriched events (`docs/kafka.md` describes its messages).
    pub topic: String,
    /// Partitions of the topic when Oriel creates it. An existing topic keeps its own count,
    /// which must equal this one: the store's offsets are per partition.
    pub partitions: u32,
    /// Replicas of each partition when Oriel creates the topic (3 on a production cluster).
    pub replication_factor: u32,
    /// Create the topic when it is missing.
    pub create_topic: bool,
    /// Compression of produced batches: "none", "gzip", "snappy", "lz4" or "zstd".
    pub compression: String,
    /// How long the producer waits to fill a batch, in milliseconds; each acknowledgement waits
    /// for its batch to be replicated, so this adds to the collector's answer time.
    pub linger_ms: u64,
    /// An event the brokers have not acknowledged within this many milliseconds is refused (the
    /// collector answers 503 and the sender retries); the producer may still deliver it later.
    pub delivery_timeout_ms: u64,
    /// Consumer group under which the store's progress is committed, for monitoring tools; the
    /// store's own offsets live in its manifest.
    pub consumer_group: String,
    /// More librdkafka settings for every client, such as `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password` or `ssl.ca.location`.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaLogConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "oriel-events".into(),
            partitions: 1,
            replication_factor: 1,
            create_topic: true,
            compression: "lz4".into(),
            linger_ms: 5,
            delivery_timeout_ms: 10_000,
            consumer_group: "oriel".into(),
            properties: BTreeMap::new(),
        }
    }
}

/// librdkafka settings Oriel sets itself because exactly-once depends on them.
pub const KAFKA_RESERVED_PROPERTIES: [&str; 8] = [
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "partitioner",
    "transactional.id",
];

impl KafkaLogConfig {
    fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        if self
            .brokers
            .split(',')
            .any(|b| b.trim().rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()))
        {
            return Err(invalid("log.kafka.brokers", format!("{:?}", self.brokers), "host:port pairs separated by commas"));
        }
        // Kafka's own rule for topic names.
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.topic.is_empty()
            || self.topic.len() > 249
            || !self.topic.chars().all(legal)
            || matches!(self.topic.as_str(), "." | "..")
        {
            return Err(invalid("log.kafka.topic", format!("{:?}", self.topic), "1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"));
        }
        check_range(invalid, "log.kafka.partitions", u64::from(self.partitions), 1, 1024)?;
        check_range(invalid, "log.kafka.replication_factor", u64::from(self.replication_factor), 1, 16)?;
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()) {
            return Err(invalid(
                "log.kafka.compression",
                format!("{:?}", self.compression),
                "\"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\"",
            ));
        }
        check_range(invalid, "log.kafka.linger_ms", self.linger_ms, 0, 1000)?;
        check_range(invalid, "log.kafka.delivery_timeout_ms", self.delivery_timeout_ms, 1000, 300_000)?;
        if self.consumer_group.is_empty() {
            return Err(invalid("log.kafka.consumer_group", "\"\"".into(), "a group name"));
        }
        if let Some(key) = self.properties.keys().find(|k| KAFKA_RESERVED_PROPERTIES.contains(&k.as_str())) {
            return Err(invalid(
                &format!("log.kafka.properties.{key}"),
                format!("{:?}", self.properties[key]),
                "not settable: Oriel sets it itself (use log.kafka.brokers for the brokers)",
            ));
        }
        Ok(())
    }
}
