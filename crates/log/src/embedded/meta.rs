//! `meta.json`: the format version and partition count a log directory was created with.
//!
//! The partition count decides where every key lands, so a log cannot be reopened with another
//! one: that is checked here before anything is read.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Version of the directory layout.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u32,
    partitions: u32,
}

/// Checks `dir/meta.json` against `partitions`, or writes it for a new log.
pub(crate) fn check_or_create(dir: &Path, partitions: u32) -> Result<()> {
    let path = dir.join("meta.json");
    match fs::read(&path) {
        Ok(bytes) => {
            let meta: Meta =
                serde_json::from_slice(&bytes).map_err(|e| Error::BadMetadata { path: path.clone(), reason: e.to_string() })?;
            if meta.version != VERSION {
                return Err(Error::BadMetadata { path, reason: format!("unsupported version {}", meta.version) });
            }
            if meta.partitions != partitions {
                return Err(Error::PartitionCountMismatch {
                    path: dir.to_path_buf(),
                    found: meta.partitions,
                    configured: partitions,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = serde_json::to_vec(&Meta { version: VERSION, partitions })
                .map_err(|e| Error::BadMetadata { path: path.clone(), reason: e.to_string() })?;
            oriel_core::durable::atomic_write(&path, &bytes, None).map_err(Error::io("failed to write", &path))
        }
        Err(e) => Err(Error::io("failed to read", &path)(e)),
    }
}

/// The partition count recorded in `dir/meta.json`, if the directory holds a log.
pub(crate) fn partitions(dir: &Path) -> Result<Option<u32>> {
    let path = dir.join("meta.json");
    match fs::read(&path) {
        Ok(bytes) => {
            let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| Error::BadMetadata { path, reason: e.to_string() })?;
            Ok(Some(meta.partitions))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("failed to read", &path)(e)),
    }
}
