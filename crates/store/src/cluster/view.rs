//! The query node's source of snapshots: every ingest node's store in the shared directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::DataFusionError;
use futures::StreamExt;
use parking_lot::Mutex;

use super::{LiveExport, NODE_FILE, NodeRecord, wire};
use crate::manifest::Manifest;
use crate::metrics as m;
use crate::snapshot::{SegmentFile, Snapshot, SnapshotSource};
use crate::{Error, Result};

/// How often the segment list at hand is refreshed.
const REFRESH: Duration = Duration::from_secs(5);

/// How a query node reaches the ingest nodes.
#[derive(Debug, Clone)]
pub struct ClusterViewOptions {
    /// The secret ingest nodes expect (`cluster.token`).
    pub token: String,
    /// How long one node may take to answer.
    pub timeout: Duration,
    /// The most bytes one node's answer may take.
    pub max_bytes: usize,
}

/// Every ingest node's store, as one source of snapshots.
#[derive(Debug)]
pub struct ClusterView {
    root: PathBuf,
    options: ClusterViewOptions,
    client: reqwest::Client,
    /// The snapshot the last query gathered, for callers that cannot wait.
    last: Mutex<Snapshot>,
}

/// One ingest node's part of a snapshot.
struct Part {
    segments: Vec<Arc<SegmentFile>>,
    live: Vec<datafusion::arrow::array::RecordBatch>,
}

impl ClusterView {
    /// A view of the shared store directory `root`.
    pub fn new(root: PathBuf, options: ClusterViewOptions) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { root, options, client, last: Mutex::new(Snapshot::default()) })
    }

    /// The store directories in the shared directory: those with a manifest or a node record.
    async fn stores(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("cannot list", &self.root)(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(Error::io("cannot list", &self.root))? {
            let path = entry.path();
            if tokio::fs::try_exists(Manifest::path(&path)).await.unwrap_or(false)
                || tokio::fs::try_exists(path.join(NODE_FILE)).await.unwrap_or(false)
            {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every node's part, gathered at once; without the live events unless `live`.
    async fn gather(&self, lo: Option<i64>, hi: Option<i64>, live: bool) -> Result<Snapshot> {
        let stores = self.stores().await?;
        let parts = futures::future::join_all(stores.iter().map(|dir| self.part(dir, lo, hi, live))).await;
        let mut snapshot = Snapshot::default();
        for part in parts {
            let part = part?;
            snapshot.segments.extend(part.segments);
            snapshot.live.extend(part.live);
        }
        Ok(snapshot)
    }

    /// The part of the store in `dir`: what its node serves, or its committed manifest when the
    /// node cannot answer (its live events are then missing, and the metric says so).
    async fn part(&self, dir: &Path, lo: Option<i64>, hi: Option<i64>, live: bool) -> Result<Part> {
        if let Some(node) = read_node(dir).await {
            match self.fetch(&node.url, lo, hi, live).await {
                Ok(export) => {
                    let segments = export.segments.into_iter().map(|meta| SegmentFile::new(dir, meta)).collect();
                    return Ok(Part { segments, live: export.batches });
                }
                Err(error) => {
                    metrics::counter!(m::NODE_FAILURES, "node" => node.url.clone()).increment(1);
                    tracing::warn!(%error, store = %dir.display(), "answering without this ingest node's live events");
                }
            }
        }
        let owned = dir.to_path_buf();
        let manifest = tokio::task::spawn_blocking(move || Manifest::load(&owned)).await.map_err(|_| Error::Closed)??;
        let segments = manifest.segments.into_iter().map(|meta| SegmentFile::new(dir, meta)).collect();
        Ok(Part { segments, live: Vec::new() })
    }

    /// Asks the node at `url` for its segments and (when `live`) live events in `[lo, hi]`.
    async fn fetch(&self, url: &str, lo: Option<i64>, hi: Option<i64>, live: bool) -> Result<LiveExport> {
        let unreachable = |reason: String| Error::NodeUnreachable { url: url.to_string(), reason };
        let mut query = Vec::new();
        if !live {
            query.push(("live", 0));
        }
        if let Some(lo) = lo {
            query.push(("from", lo));
        }
        if let Some(hi) = hi {
            query.push(("to", hi));
        }
        let response = self
            .client
            .get(format!("{}/internal/v1/live", url.trim_end_matches('/')))
            .bearer_auth(&self.options.token)
            .query(&query)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(unreachable(format!("answered {status}: {}", body.trim())));
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unreachable(e.to_string()))?;
            if bytes.len() + chunk.len() > self.options.max_bytes {
                return Err(unreachable(format!(
                    "its live events exceed {} MiB (cluster.max_live_mb); narrow the query's time range or raise the limit",
                    self.options.max_bytes >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        tokio::task::spawn_blocking(move || wire::decode(&bytes)).await.map_err(|_| Error::Closed)?
    }
}

impl ClusterView {
    /// Keeps the snapshot at hand's segment list current (its live part is the last unbounded
    /// query's): it is what "all time" starts from. Runs until `stop` turns true.
    pub(crate) async fn refresh(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.gather(None, None, false).await {
                Ok(fresh) => self.last.lock().segments = fresh.segments,
                Err(error) => tracing::warn!(%error, "cannot list the cluster's segments"),
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The node record in `dir`, if there is a readable one.
async fn read_node(dir: &Path) -> Option<NodeRecord> {
    let bytes = tokio::fs::read(dir.join(NODE_FILE)).await.ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(%error, store = %dir.display(), "ignoring an unreadable node record");
            None
        }
    }
}

#[async_trait::async_trait]
impl SnapshotSource for ClusterView {
    fn snapshot(&self) -> Snapshot {
        self.last.lock().clone()
    }

    async fn current(&self, lo: Option<i64>, hi: Option<i64>) -> Result<Snapshot, DataFusionError> {
        let snapshot = self.gather(lo, hi, true).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        if lo.is_none() && hi.is_none() {
            *self.last.lock() = snapshot.clone();
        }
        Ok(snapshot)
    }
}
