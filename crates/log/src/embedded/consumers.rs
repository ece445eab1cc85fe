//! Registered consumers and how far each has processed every partition.
//!
//! Retention deletes only below the smallest committed position, so a consumer that is offline
//! (the store during a restart) still protects what it has not processed. The embedded log keeps
//! this table in `consumers.json`, replaced atomically on every commit.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConsumersFile {
    version: u32,
    consumers: BTreeMap<String, Vec<u64>>,
}

/// The consumer table, optionally persisted.
#[derive(Debug)]
pub(crate) struct Consumers {
    path: Option<PathBuf>,
    positions: BTreeMap<String, Vec<u64>>,
}

impl Consumers {
    /// An in-memory table.
    pub(crate) fn in_memory() -> Self {
        Self { path: None, positions: BTreeMap::new() }
    }

    /// Loads the table from `path`, or starts empty when the file does not exist.
    pub(crate) fn load(path: PathBuf, partitions: u32) -> Result<Self> {
        let positions = match fs::read(&path) {
            Ok(bytes) => {
                let bad = |reason: String| Error::BadMetadata { path: path.clone(), reason };
                let file: ConsumersFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
                if file.version != 1 {
                    return Err(bad(format!("unsupported version {}", file.version)));
                }
                if let Some((name, _)) = file.consumers.iter().find(|(_, p)| p.len() != partitions as usize) {
                    return Err(bad(format!("consumer {name:?} does not have {partitions} positions")));
                }
                file.consumers
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io("failed to read", &path)(e)),
        };
        Ok(Self { path: Some(path), positions })
    }

    /// Adds `name` at `starts` unless it exists; returns whether the table changed.
    pub(crate) fn register(&mut self, name: &str, starts: Vec<u64>) -> bool {
        if self.positions.contains_key(name) {
            return false;
        }
        self.positions.insert(name.to_string(), starts);
        true
    }

    /// Moves `name`'s position in `partition` to `next_offset`; registers it first if needed.
    pub(crate) fn commit(&mut self, name: &str, partition: u32, next_offset: u64, starts: impl FnOnce() -> Vec<u64>) {
        let positions = self.positions.entry(name.to_string()).or_insert_with(starts);
        positions[partition as usize] = next_offset;
    }

    /// `name`'s position in `partition`.
    pub(crate) fn position(&self, name: &str, partition: u32) -> Option<u64> {
        self.positions.get(name).map(|p| p[partition as usize])
    }

    /// The smallest position of any consumer in `partition`; `None` when nobody is registered.
    pub(crate) fn min_position(&self, partition: u32) -> Option<u64> {
        self.positions.values().map(|p| p[partition as usize]).min()
    }

    /// Writes the table durably and atomically.
    pub(crate) fn save(&self) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = ConsumersFile { version: 1, consumers: self.positions.clone() };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| Error::BadMetadata { path: path.clone(), reason: e.to_string() })?;
        oriel_core::durable::atomic_write(path, &bytes, None).map_err(Error::io("failed to write", path))
    }

    /// Every registered consumer's name.
    pub(crate) fn names(&self) -> Vec<String> {
        self.positions.keys().cloned().collect()
    }
}
