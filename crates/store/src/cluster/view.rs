//! The query node's source of snapshots: every ingest node's store in the shared place.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use parking_lot::Mutex;

use super::{LiveExport, SharedRoot, wire};
use crate::metrics as m;
use crate::snapshot::{SegmentFile, Snapshot, SnapshotSource, batch_time_range};
use crate::{Error, IngestLag, Result};

/// How often the snapshot at hand is refreshed.
const REFRESH: Duration = Duration::from_secs(5);
/// The most bytes of an error answer read.
const ERROR_BYTES: usize = 4096;
/// How long a node that failed to answer is not asked again.
const BACKOFF: Duration = Duration::from_secs(5);

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
    root: SharedRoot,
    options: ClusterViewOptions,
    client: reqwest::Client,
    /// The snapshot the last query gathered, for callers that cannot wait.
    last: Mutex<Snapshot>,
    /// Per store, the live batches last fetched from its node.
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Held>>>>,
    /// How far the last gathered snapshot is behind Kafka, over every node.
    lag: Mutex<IngestLag>,
}

/// The live batches of one node that a query node holds: exactly those of its last answer.
#[derive(Debug, Default)]
struct Held {
    url: String,
    instance: u64,
    batches: BTreeMap<u64, RecordBatch>,
    /// The URL asking failed at last, and when.
    failed: Option<(String, std::time::Instant)>,
}

impl Held {
    /// What to tell the node this query node holds: the numbering and the highest number held.
    fn holds(&self, url: &str) -> Option<(u64, u64)> {
        let through = *self.batches.keys().next_back()?;
        (self.url == url).then_some((self.instance, through))
    }

    /// Takes in an answer: keeps exactly the listed batches, from the answer or from what was
    /// held, and returns them in order. `None` when a listed batch is in neither (the answer
    /// does not fit what was held), so the caller asks again for everything.
    fn absorb(&mut self, url: &str, export: &mut LiveExport) -> Option<Vec<RecordBatch>> {
        let mut sent: HashMap<u64, RecordBatch> = std::mem::take(&mut export.batches).into_iter().collect();
        let same = self.url == url && self.instance == export.instance;
        let mut next = BTreeMap::new();
        let mut ordered = Vec::with_capacity(export.live.len());
        for seq in &export.live {
            let batch = sent.remove(seq).or_else(|| if same { self.batches.get(seq).cloned() } else { None })?;
            ordered.push(batch.clone());
            next.insert(*seq, batch);
        }
        *self = Self { url: url.to_string(), instance: export.instance, batches: next, failed: None };
        Some(ordered)
    }
}

/// One ingest node's part of a snapshot.
struct Part {
    segments: Vec<Arc<SegmentFile>>,
    live: Vec<RecordBatch>,
    lag: IngestLag,
}

impl ClusterView {
    /// A view of the stores in `root`.
    pub fn new(root: SharedRoot, options: ClusterViewOptions) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            root,
            options,
            client,
            last: Mutex::new(Snapshot::default()),
            held: Mutex::new(HashMap::new()),
            lag: Mutex::new(IngestLag { events: 0, caught_up: false }),
        })
    }

    /// Every node's part, gathered at once.
    async fn gather(&self) -> Result<Snapshot> {
        let stores = self.root.stores().await?;
        let parts = futures::future::join_all(stores.iter().map(|name| self.part(name))).await;
        let mut snapshot = Snapshot::default();
        let mut lag = IngestLag { events: 0, caught_up: true };
        for part in parts {
            let part = part?;
            snapshot.segments.extend(part.segments);
            snapshot.live.extend(part.live);
            lag.events += part.lag.events;
            lag.caught_up &= part.lag.caught_up;
        }
        *self.lag.lock() = lag;
        Ok(snapshot)
    }

    /// The part of the store `name`: what its node serves, or its committed manifest when the
    /// node cannot answer (its live events are then missing, and the metric says so).
    async fn part(&self, name: &str) -> Result<Part> {
        if let Some(node) = self.root.node(name).await {
            match self.fetch_live(name, &node.url).await {
                Ok((export, live)) => {
                    let lag = IngestLag { events: export.lag_events, caught_up: export.caught_up };
                    let segments = self.root.segments(name, export.segments);
                    return Ok(Part { segments, live, lag });
                }
                Err(error) => {
                    metrics::counter!(m::NODE_FAILURES, "node" => node.url.clone()).increment(1);
                    tracing::warn!(%error, store = name, "answering without this ingest node's live events");
                }
            }
        }
        let manifest = self.root.manifest(name).await?;
        let segments = self.root.segments(name, manifest.segments);
        // Without its node, what the store has not persisted is missing: the answer is partial.
        Ok(Part { segments, live: Vec::new(), lag: IngestLag { events: 0, caught_up: false } })
    }

    /// The segments and every live batch of the node at `url` for the store `name`, asking only
    /// for the batches this query node does not hold yet. One fetch per node at a time, so what
    /// is held always matches one answer.
    async fn fetch_live(&self, name: &str, url: &str) -> Result<(LiveExport, Vec<RecordBatch>)> {
        let held = Arc::clone(self.held.lock().entry(name.to_string()).or_default());
        let mut held = held.lock().await;
        // A node that just failed is not asked again at once: every query would wait for it. A
        // new URL (another node took the store over) is asked at once.
        if let Some((_, when)) = held.failed.as_ref().filter(|(at, when)| at == url && when.elapsed() < BACKOFF) {
            return Err(Error::NodeUnreachable {
                url: url.to_string(),
                reason: format!(
                    "it failed {:.1} s ago; asking again {} s after a failure",
                    when.elapsed().as_secs_f64(),
                    BACKOFF.as_secs()
                ),
            });
        }
        let answer = self.fetch_live_held(name, url, &mut held).await;
        held.failed = answer.is_err().then(|| (url.to_string(), std::time::Instant::now()));
        answer
    }

    /// [`Self::fetch_live`] once the node's held batches are locked.
    async fn fetch_live_held(&self, name: &str, url: &str, held: &mut Held) -> Result<(LiveExport, Vec<RecordBatch>)> {
        let mut export = self.fetch(url, held.holds(url)).await?;
        if export.store != name {
            return Err(Error::BadNode(format!(
                "{url} answers for the store {:?}, not {name:?}: check cluster.advertise_url of the ingest nodes",
                export.store
            )));
        }
        if let Some(batches) = held.absorb(url, &mut export) {
            return Ok((export, batches));
        }
        // The answer does not fit what was held (the node restarted between two answers):
        // ask for everything.
        let mut export = self.fetch(url, None).await?;
        let batches = held.absorb(url, &mut export).ok_or_else(|| Error::BadNode("a listed live batch was not sent".into()))?;
        Ok((export, batches))
    }

    /// Asks the node at `url` for its segments and the live batches newer than what `holds`
    /// names (all of them without it).
    async fn fetch(&self, url: &str, holds: Option<(u64, u64)>) -> Result<LiveExport> {
        let unreachable = |reason: String| Error::NodeUnreachable { url: url.to_string(), reason };
        let mut query = Vec::new();
        if let Some((instance, through)) = holds {
            query.push(("instance", instance));
            query.push(("after", through));
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
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        // An error's explanation is read only as far as it is shown.
        let limit = if status.is_success() { self.options.max_bytes } else { ERROR_BYTES };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unreachable(e.to_string()))?;
            if bytes.len() + chunk.len() > limit {
                if !status.is_success() {
                    break;
                }
                return Err(unreachable(format!(
                    "its answer exceeds {} MiB (cluster.max_live_mb): raise the limit, or let the ingest nodes flush sooner (store.flush_rows)",
                    self.options.max_bytes >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let body: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            return Err(unreachable(format!("answered {status}: {}", body.trim())));
        }
        tokio::task::spawn_blocking(move || wire::decode(&bytes)).await.map_err(|_| Error::Closed)?
    }
}

impl ClusterView {
    /// How far the last gathered snapshot was behind Kafka: not caught up while a node replays
    /// after a restart or cannot be asked.
    pub(crate) fn lag(&self) -> IngestLag {
        *self.lag.lock()
    }

    /// Keeps the snapshot at hand current between queries (each fetch moves only the live
    /// batches that are new): it is what "all time" starts from and what the store's counts
    /// describe. Runs until `stop` turns true.
    pub(crate) async fn refresh(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.current(None, None).await {
                tracing::warn!(%error, "cannot gather the cluster's snapshot");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[async_trait::async_trait]
impl SnapshotSource for ClusterView {
    fn snapshot(&self) -> Snapshot {
        self.last.lock().clone()
    }

    async fn current(&self, lo: Option<i64>, hi: Option<i64>) -> Result<Snapshot, DataFusionError> {
        let mut snapshot = self.gather().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        *self.last.lock() = snapshot.clone();
        // Every live batch comes over (the new ones only); those outside the query's time range
        // are left out of its plan here.
        snapshot.live.retain(|b| batch_time_range(b).is_some_and(|(min, max)| super::overlaps(lo, hi, min, max)));
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> RecordBatch {
        let mut builder = crate::schema::BatchBuilder::with_capacity(n);
        for i in 0..n {
            let event = format!(r#"{{"__time":{i},"event_id":"e{i}","event_type":"pageview","site":"s"}}"#);
            builder.push_json(event.as_bytes()).expect("event");
        }
        builder.finish().expect("batch")
    }

    fn answer(instance: u64, live: &[u64], sent: &[u64]) -> LiveExport {
        LiveExport {
            instance,
            live: live.to_vec(),
            batches: sent.iter().map(|&seq| (seq, batch(seq as usize + 1))).collect(),
            ..LiveExport::default()
        }
    }

    fn rows(batches: &[RecordBatch]) -> Vec<usize> {
        batches.iter().map(RecordBatch::num_rows).collect()
    }

    #[test]
    fn a_node_sends_only_what_is_not_held() {
        let mut held = Held::default();
        assert_eq!(held.holds("http://a"), None, "nothing held: ask for everything");
        let got = held.absorb("http://a", &mut answer(7, &[0, 1], &[0, 1])).unwrap();
        assert_eq!(rows(&got), [1, 2]);
        assert_eq!(held.holds("http://a"), Some((7, 1)));
        assert_eq!(held.holds("http://b"), None, "another node's numbering means nothing here");
        // A flush drained batch 0, batch 2 arrived, and batch 1 is still held.
        let got = held.absorb("http://a", &mut answer(7, &[1, 2], &[2])).unwrap();
        assert_eq!(rows(&got), [2, 3]);
        assert_eq!(held.batches.keys().copied().collect::<Vec<_>>(), [1, 2], "drained batches are let go");
    }

    #[test]
    fn an_answer_that_does_not_fit_is_refused() {
        let mut held = Held::default();
        held.absorb("http://a", &mut answer(7, &[0, 1], &[0, 1])).unwrap();
        // The node restarted: same numbers, new instance, and it sent only what is new to it.
        assert!(held.absorb("http://a", &mut answer(8, &[0, 1, 2], &[2])).is_none());
        // A listed batch that was neither held nor sent.
        let mut fresh = Held::default();
        assert!(fresh.absorb("http://a", &mut answer(7, &[0, 5], &[0])).is_none());
    }
}
