//! The store across processes: the ingest and query roles of a cluster.
//!
//! Each ingest node runs an ordinary [`Store`] over its own log partitions, as its own store
//! (`partitions-0-1`, ...) in the shared store directory or object-storage prefix, and writes
//! [`NODE_FILE`] there to say at which URL it serves its live buffer. A query node opens a [`Store::open_view`]:
//! for every query it asks each ingest node for a consistent cut of its store ([`LiveExport`]:
//! the segment list and the live batches of one moment, so an event is counted once whether a
//! flush has persisted it yet or not) and reads the segment files from the shared place.
//! Live batches are numbered, so the query node keeps those it fetched and is sent only newer
//! ones.
//! When a node cannot answer, its committed manifest stands in: the answer lacks only that
//! node's events not yet persisted, and a metric and a warning say so.
//!
//! - [`wire`]: the bytes of a [`LiveExport`] between nodes.
//! - `shared`: where the stores are ([`SharedRoot`]): a shared directory or object storage.
//! - `view`: the query node's source of snapshots.

mod shared;
mod view;
pub mod wire;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

pub use self::shared::SharedRoot;
pub use self::view::{ClusterView, ClusterViewOptions};
use crate::ingest::live::Live;
use crate::manifest::{Manifest, SegmentMeta};
use crate::query::{EventsTable, QueryEngine};
use crate::snapshot::SnapshotSource;
use crate::store::{Holds, Shared, State, Store, StoreOptions};
use crate::{Error, Result};

/// The file in an ingest node's store directory that says where the node serves its live events.
pub const NODE_FILE: &str = "node.json";

/// What an ingest node serves a query node: its segment list and live batches at one moment.
///
/// Live batches are numbered, and a batch keeps its number only while its rows do not change,
/// so a query node keeps the batches it has and is sent only the newer ones.
#[derive(Debug, Clone, Default)]
pub struct LiveExport {
    /// The name of the store directory it describes (`partitions-0-1`): a query node checks it
    /// is the one it asked about, whatever answers at the advertised URL.
    pub store: String,
    /// The manifest generation the segment list is from.
    pub generation: u64,
    /// Names the live buffer's numbering; a store that opened again has another.
    pub instance: u64,
    /// The committed segments (paths relative to the node's store directory).
    pub segments: Vec<SegmentMeta>,
    /// The number of every live batch, in order.
    pub live: Vec<u64>,
    /// The live batches sent, with their numbers: those the asker does not hold.
    pub batches: Vec<(u64, RecordBatch)>,
    /// Whether the node has ingested everything its partitions held when it opened: until
    /// then (a restart replaying Kafka) answers over it are partial.
    pub caught_up: bool,
    /// Events in its partitions not ingested yet, as last measured (every few seconds).
    pub lag_events: u64,
}

/// The contents of [`NODE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The URL the node's HTTP port is reached at.
    pub url: String,
    /// The log partitions it ingests.
    pub partitions: Vec<u32>,
    /// When it started, ms since the epoch.
    pub started_ms: i64,
}

/// The name of the store directory `dir`, as answers carry it.
pub(crate) fn store_name(dir: &std::path::Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether a `[lo, hi]` filter (either side open) can match anything in `[min, max]`.
pub(crate) fn overlaps(lo: Option<i64>, hi: Option<i64>, min: i64, max: i64) -> bool {
    lo.is_none_or(|lo| max >= lo) && hi.is_none_or(|hi| min <= hi)
}

/// Refuses to let the store `own` (in the cluster's shared place `root`) ingest `partitions`
/// when another store there holds offsets of, or is advertised for, one of them: both would
/// hold that partition's events, and every query would count them twice.
pub async fn check_assignment(root: &SharedRoot, own: &str, partitions: &[u32]) -> Result<()> {
    for name in root.stores().await? {
        if name == own {
            continue;
        }
        let manifest = root.manifest(&name).await?;
        let advertised: Vec<u32> = root.node(&name).await.map(|node| node.partitions).unwrap_or_default();
        if let Some(p) = partitions.iter().find(|p| manifest.offsets.contains_key(p) || advertised.contains(p)) {
            return Err(Error::Assignment(format!(
                "partition {p} already belongs to the store {}: a partition is ingested by one store only. \
                 Give this node the same cluster.partitions as that store's node to take it over, or move that store away first",
                root.describe(&name)
            )));
        }
    }
    Ok(())
}

impl Store {
    /// The segment list and the live buffer, taken under one lock so a flush cannot move events
    /// between the two halves. `holds` is what the asker has: the instance of the numbering and
    /// the highest batch number it holds every batch up to; only newer batches are sent (all
    /// of them when the instance is not this one's).
    pub fn live_export(&self, holds: Option<(u64, u64)>) -> LiveExport {
        let state = self.shared.state.read();
        let live = &state.live;
        let after = holds.filter(|(instance, _)| *instance == live.instance).map(|(_, through)| through);
        LiveExport {
            store: store_name(&self.shared.options.dir),
            generation: state.manifest.generation,
            instance: live.instance,
            segments: state.manifest.segments.iter().filter(|s| s.rows > 0).cloned().collect(),
            live: live.seqs.clone(),
            batches: live
                .seqs
                .iter()
                .zip(&live.batches)
                .filter(|(seq, _)| after.is_none_or(|after| **seq > after))
                .map(|(seq, batch)| (*seq, batch.clone()))
                .collect(),
            caught_up: self.caught_up(&live.offsets),
            lag_events: self.measured_lag.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// A read-only store over a cluster's stores in `root`: queries see every ingest node's
    /// segments and live events. It ingests nothing, writes nothing and takes no lock.
    pub async fn open_view(options: StoreOptions, root: SharedRoot, view: ClusterViewOptions) -> Result<Arc<Self>> {
        crate::metrics::describe();
        let root = match root {
            SharedRoot::Dir(dir) => SharedRoot::Dir(std::path::absolute(&dir).map_err(Error::io("cannot resolve", &dir))?),
            SharedRoot::Objects { bucket, cache_dir, cache } => {
                let cache_dir = std::path::absolute(&cache_dir).map_err(Error::io("cannot resolve", &cache_dir))?;
                let (adopting, dir) = (Arc::clone(&cache), cache_dir.clone());
                tokio::task::spawn_blocking(move || adopting.adopt(&dir)).await.map_err(|_| Error::Closed)?;
                SharedRoot::Objects { bucket, cache_dir, cache }
            }
        };
        let view = Arc::new(ClusterView::new(root, view)?);
        let table = Arc::new(EventsTable::new(Arc::clone(&view) as Arc<dyn SnapshotSource>));
        let engine = Arc::new(QueryEngine::new(table, options.query.clone())?);
        let state = State { manifest: Manifest::default(), segments: Vec::new(), live: Live::default() };
        let shared = Arc::new(Shared {
            options,
            state: RwLock::new(state),
            segment_ids: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            retired: parking_lot::Mutex::new(Vec::new()),
            remote: None,
        });
        let store = Self::assemble(shared, None, engine, Holds::View(Arc::clone(&view)));
        let refresh = tokio::spawn(Arc::clone(&view).refresh(store.stop.subscribe()));
        store.tasks.lock().push(refresh);
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_treats_open_sides_as_unbounded() {
        assert!(overlaps(None, None, 5, 6));
        assert!(overlaps(Some(6), None, 5, 6));
        assert!(!overlaps(Some(7), None, 5, 6));
        assert!(overlaps(None, Some(5), 5, 6));
        assert!(!overlaps(None, Some(4), 5, 6));
        assert!(!overlaps(Some(1), Some(4), 5, 6));
    }
}
