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
//! ```

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// Which event log to use, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LogSection", into = "LogSection")]
pub enum LogConfig {
    /// The embedded, segmented, fsynced log in `data_dir/log`.
    Embedded(EmbeddedLogConfig),
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
        }
    }

    /// Number of partitions of the log.
    pub fn partitions(&self) -> u32 {
        match self {
            Self::Embedded(e) => e.partitions,
        }
    }

    /// How often the log's own retention runs, for logs that own their retention.
    pub fn retention_check_seconds(&self) -> Option<u64> {
        match self {
            Self::Embedded(e) => Some(e.retention_check_seconds),
        }
    }

    /// The largest payload one append may carry, when the implementation has such a limit.
    pub fn max_append_bytes(&self) -> Option<u64> {
        match self {
            Self::Embedded(e) => Some(e.max_append_bytes),
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
}

/// `[log]` as written in the file: the type and one section per implementation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogSection {
    #[serde(rename = "type")]
    kind: LogKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded: Option<EmbeddedLogConfig>,
}

impl TryFrom<LogSection> for LogConfig {
    type Error = String;

    fn try_from(section: LogSection) -> Result<Self, String> {
        match section.kind {
            LogKind::Embedded => Ok(Self::Embedded(section.embedded.unwrap_or_default())),
        }
    }
}

impl From<LogConfig> for LogSection {
    fn from(config: LogConfig) -> Self {
        match config {
            LogConfig::Embedded(e) => Self { kind: LogKind::Embedded, embedded: Some(e) },
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
