//! Where a cluster's stores are: a directory every node shares, or a prefix in object storage.

use std::path::PathBuf;
use std::sync::Arc;

use super::{NODE_FILE, NodeRecord};
use crate::manifest::{Manifest, SegmentMeta};
use crate::objects::{Bucket, Cache, Remote};
use crate::snapshot::SegmentFile;
use crate::{Error, Result};

/// The place every ingest node keeps its store in, one store per name (`partitions-0-1`).
#[derive(Debug, Clone)]
pub enum SharedRoot {
    /// A directory every node mounts (or one machine's disk).
    Dir(PathBuf),
    /// A prefix in object storage. A query node keeps the segments it reads in `cache_dir`.
    Objects {
        /// The prefix.
        bucket: Bucket,
        /// Where fetched segments are kept, one directory per store.
        cache_dir: PathBuf,
        /// The cache's bookkeeping.
        cache: Arc<Cache>,
    },
}

impl SharedRoot {
    /// The store `name`, for messages: its directory or its URL.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Self::Dir(root) => root.join(name).display().to_string(),
            Self::Objects { bucket, .. } => bucket.child(name).url().to_string(),
        }
    }

    /// The names of the stores in it.
    pub(crate) async fn stores(&self) -> Result<Vec<String>> {
        match self {
            Self::Objects { bucket, .. } => bucket.children().await,
            Self::Dir(root) => {
                let mut out = Vec::new();
                let mut entries = match tokio::fs::read_dir(root).await {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(Error::io("cannot list", root)(e)),
                };
                while let Some(entry) = entries.next_entry().await.map_err(Error::io("cannot list", root))? {
                    let path = entry.path();
                    if tokio::fs::try_exists(Manifest::path(&path)).await.unwrap_or(false)
                        || tokio::fs::try_exists(path.join(NODE_FILE)).await.unwrap_or(false)
                    {
                        out.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// The committed manifest of store `name`.
    pub(crate) async fn manifest(&self, name: &str) -> Result<Manifest> {
        match self {
            Self::Dir(root) => {
                let dir = root.join(name);
                tokio::task::spawn_blocking(move || Manifest::load(&dir)).await.map_err(|_| Error::Closed)?
            }
            Self::Objects { bucket, cache, .. } => Remote::new(bucket.child(name), Arc::clone(cache)).load().await,
        }
    }

    /// The node record of store `name`, if there is a readable one.
    pub(crate) async fn node(&self, name: &str) -> Option<NodeRecord> {
        let bytes = match self {
            Self::Dir(root) => tokio::fs::read(root.join(name).join(NODE_FILE)).await.ok()?,
            Self::Objects { bucket, .. } => match bucket.child(name).read(NODE_FILE).await {
                Ok(found) => found?.0.to_vec(),
                Err(error) => {
                    tracing::warn!(%error, "cannot read a node record");
                    return None;
                }
            },
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::warn!(%error, store = name, "ignoring an unreadable node record");
                None
            }
        }
    }

    /// Writes [`NODE_FILE`] of store `name`, durably: it claims the store's partitions for this
    /// node, and query nodes find the node's URL there.
    pub async fn advertise(&self, name: &str, record: &NodeRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(e.to_string()))?;
        match self {
            Self::Dir(root) => {
                let dir = root.join(name);
                std::fs::create_dir_all(&dir).map_err(Error::io("failed to create", &dir))?;
                let path = dir.join(NODE_FILE);
                oriel_core::durable::atomic_write(&path, &bytes, None).map_err(Error::io("failed to write", &path))
            }
            Self::Objects { bucket, .. } => bucket.child(name).write(NODE_FILE, bytes).await,
        }
    }

    /// The segment files `metas` of store `name`, as a query node reads them.
    pub(crate) fn segments(&self, name: &str, metas: Vec<SegmentMeta>) -> Vec<Arc<SegmentFile>> {
        let (dir, remote) = match self {
            Self::Dir(root) => (root.join(name), None),
            Self::Objects { bucket, cache_dir, cache } => {
                (cache_dir.join(name), Some(Remote::new(bucket.child(name), Arc::clone(cache))))
            }
        };
        metas.into_iter().map(|meta| SegmentFile::new(&dir, meta, remote.as_ref())).collect()
    }
}
