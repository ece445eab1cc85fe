//! The one way Oriel opens its event log: from the `[log]` configuration.

use std::path::Path;
use std::sync::Arc;

use oriel_core::config::LogConfig;

use crate::embedded::{self, EmbeddedLog, EmbeddedOptions};
use crate::{Error, EventLog, KafkaLog, Result};

/// Opens (and so recovers) the configured log for a server, creating it when missing.
/// `consumers` are registered where the log owns retention, so nothing they have not
/// processed is deleted even before they first commit.
pub async fn open(config: &LogConfig, data_dir: &Path, consumers: &[&str]) -> Result<Arc<dyn EventLog>> {
    match config {
        LogConfig::Embedded(embedded) => {
            let options = EmbeddedOptions {
                consumers: consumers.iter().map(|c| (*c).to_string()).collect(),
                ..EmbeddedOptions::from_config(embedded)
            };
            let dir = data_dir.join("log");
            let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(dir, options)).await.map_err(|_| Error::Closed)??;
            Ok(Arc::new(log))
        }
        LogConfig::Kafka(kafka) => Ok(Arc::new(KafkaLog::open(kafka, consumers).await?)),
    }
}

/// Opens the log of a stopped server for inspection: nothing is created, and a missing log is
/// an error that names where it was looked for.
pub async fn open_existing(config: &LogConfig, data_dir: &Path) -> Result<Arc<dyn EventLog>> {
    match config {
        LogConfig::Embedded(embedded) => {
            let dir = data_dir.join("log");
            if embedded::meta_partitions(&dir)?.is_none() {
                return Err(Error::Missing { path: dir });
            }
            // An inspection must not leave a spare segment behind.
            let options = EmbeddedOptions { preallocate: false, ..EmbeddedOptions::from_config(embedded) };
            let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(dir, options)).await.map_err(|_| Error::Closed)??;
            Ok(Arc::new(log))
        }
        // The topic lives on the brokers, whatever runs; inspecting it never creates it.
        LogConfig::Kafka(kafka) => {
            let kafka = oriel_core::config::KafkaLogConfig { create_topic: false, ..kafka.clone() };
            Ok(Arc::new(KafkaLog::open(&kafka, &[]).await?))
        }
    }
}
