//! The store's files in object storage (S3 or a server speaking its protocol).
//!
//! With `[object_store] url` set, the object store is the store's commit point: a flush writes
//! its segment files to the local directory, uploads them, and then replaces the manifest
//! object with a conditional PUT (`If-Match` the version this store last wrote). Only after that
//! succeeds are the events dropped from the live buffer, so an object store that cannot be
//! reached only delays flushes: each is retried with back-off while the events stay in the live
//! buffer and in the log.
//!
//! Several writers of one manifest are fenced, not locked out: a store that opens takes the
//! manifest over by writing it once more with its generation raised, and from then on the
//! previous owner's conditional PUTs fail (412) and it stops writing ([`Error::Fenced`]). So a
//! node that was thought dead and comes back cannot overwrite what its successor committed.
//!
//! The local directory keeps a [`Cache`] of segment files: those this process wrote and those
//! queries fetched, evicted least recently used first beyond `object_store.cache_mb`. Queries read
//! a segment only from local disk, so its footer and pages come from there after the first read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use oriel_core::config::ObjectStoreConfig;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

use crate::manifest::{Manifest, SegmentMeta};
use crate::metrics as m;
use crate::{Error, Result};

/// The name of the manifest object in a store's prefix.
pub(crate) const MANIFEST: &str = "manifest";
/// The longest wait between two attempts of a commit.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts of a commit once the store is closing: its events are in the log anyway.
const ATTEMPTS_WHEN_CLOSING: u32 = 3;
/// The bytes of a segment fetched per request.
const DOWNLOAD_RANGE: u64 = 16 << 20;
/// Marks a download in progress in a file's extension (`.part-<random>`).
const PARTIAL: &str = "part-";

/// A prefix in an object store.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

/// The answer to a conditional write.
pub(crate) enum Conditional {
    /// Written; the new version.
    Written(UpdateVersion),
    /// The object is not the version expected (or exists, when it was expected not to).
    Conflict,
}

impl Bucket {
    /// The prefix `[object_store] url` names; `None` when segments stay on local disk.
    pub fn from_config(config: &ObjectStoreConfig) -> Result<Option<Self>> {
        if !config.enabled() {
            return Ok(None);
        }
        let rest = config.url.strip_prefix("s3://").unwrap_or_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let timeout = Duration::from_secs(config.request_timeout_seconds);
        // object_store retries on its own for up to three minutes by default; a commit retries
        // with its own back-off instead, so one attempt stays within the request timeout.
        let retry = RetryConfig { backoff: BackoffConfig::default(), max_retries: 2, retry_timeout: timeout };
        // The client options carry `allow_http` too: set it there, or they reset it.
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(5)))
            .with_allow_http(config.allow_http);
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_client_options(client).with_retry(retry);
        if !config.region.is_empty() {
            builder = builder.with_region(&config.region);
        }
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        if !config.access_key_id.is_empty() {
            builder = builder.with_access_key_id(&config.access_key_id).with_secret_access_key(&config.secret_access_key);
        }
        let store = builder.build().map_err(|e| Error::ObjectStore {
            action: "cannot configure",
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        let root = prefix.split('/').filter(|p| !p.is_empty()).fold(ObjectPath::default(), ObjectPath::join);
        Ok(Some(Self { store: Arc::new(store), root, url: config.url.trim_end_matches('/').to_string() }))
    }

    /// The prefix `name` inside this one.
    pub fn child(&self, name: &str) -> Self {
        Self { store: Arc::clone(&self.store), root: self.root.clone().join(name), url: format!("{}/{name}", self.url) }
    }

    /// Its URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn at(&self, rel: &str) -> ObjectPath {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), ObjectPath::join)
    }

    fn fail(&self, action: &'static str, rel: &str) -> impl FnOnce(object_store::Error) -> Error {
        let url = format!("{}/{rel}", self.url);
        move |e| Error::ObjectStore { action, url, reason: e.to_string() }
    }

    /// The object `rel` and its version; `None` when there is none.
    pub(crate) async fn read(&self, rel: &str) -> Result<Option<(bytes::Bytes, UpdateVersion)>> {
        let got = match self.store.get(&self.at(rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail("cannot read", rel)(e)),
        };
        let version = UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
        let bytes = got.bytes().await.map_err(self.fail("cannot read", rel))?;
        Ok(Some((bytes, version)))
    }

    /// The version of the object `rel`; `None` when there is none.
    pub(crate) async fn version(&self, rel: &str) -> Result<Option<UpdateVersion>> {
        match self.store.head(&self.at(rel)).await {
            Ok(meta) => Ok(Some(UpdateVersion { e_tag: meta.e_tag, version: meta.version })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("cannot read", rel)(e)),
        }
    }

    /// Writes the object `rel`, whatever was there.
    pub(crate) async fn write(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.store.put(&self.at(rel), PutPayload::from(bytes)).await.map_err(self.fail("cannot write", rel))?;
        Ok(())
    }

    /// Writes the object `rel` only if it is still at `expected` (absent, for `None`).
    pub(crate) async fn write_if(&self, rel: &str, bytes: Vec<u8>, expected: Option<UpdateVersion>) -> Result<Conditional> {
        let mode = expected.map_or(PutMode::Create, PutMode::Update);
        let options = PutOptions { mode, ..PutOptions::default() };
        match self.store.put_opts(&self.at(rel), PutPayload::from(bytes), options).await {
            Ok(put) => Ok(Conditional::Written(UpdateVersion { e_tag: put.e_tag, version: put.version })),
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                Ok(Conditional::Conflict)
            }
            Err(e) => Err(self.fail("cannot write", rel)(e)),
        }
    }

    /// Uploads the local file `local` as `rel`, in parts when it is large.
    pub(crate) async fn upload(&self, local: &Path, rel: &str) -> Result<()> {
        let mut file = tokio::fs::File::open(local).await.map_err(Error::io("cannot open", local))?;
        let mut writer = object_store::buffered::BufWriter::new(Arc::clone(&self.store), self.at(rel));
        let failed = |e: std::io::Error| Error::ObjectStore {
            action: "cannot upload",
            url: format!("{}/{rel}", self.url),
            reason: e.to_string(),
        };
        if let Err(e) = tokio::io::copy(&mut file, &mut writer).await {
            // Abort only before shutting down: the writer panics on an abort after it.
            let _ = writer.abort().await;
            return Err(failed(e));
        }
        // A multipart upload a failed shutdown leaves unfinished is invisible to readers, and
        // S3 lifecycle rules remove it.
        writer.shutdown().await.map_err(failed)
    }

    /// Downloads `rel` into the local file `local` (through a temporary file beside it, so
    /// `local` is either absent or whole and synced). Returns its size. It is fetched in ranges,
    /// one request each, so a large segment is not one request that must finish within the
    /// request timeout.
    pub(crate) async fn download(&self, rel: &str, local: &Path) -> Result<u64> {
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(Error::io("cannot create", parent))?;
        }
        let partial = local.with_extension(format!("{PARTIAL}{:016x}", rand_u64()));
        let result = async {
            let at = self.at(rel);
            let size = self.store.head(&at).await.map_err(self.fail("cannot download", rel))?.size;
            let mut file = tokio::fs::File::create(&partial).await.map_err(Error::io("cannot create", &partial))?;
            let mut start = 0;
            while start < size {
                let end = size.min(start + DOWNLOAD_RANGE);
                let chunk = self.store.get_range(&at, start..end).await.map_err(self.fail("cannot download", rel))?;
                file.write_all(&chunk).await.map_err(Error::io("cannot write", &partial))?;
                start = end;
            }
            // A cached copy is trusted by its size later on: make it whole on disk first.
            file.sync_all().await.map_err(Error::io("cannot sync", &partial))?;
            tokio::fs::rename(&partial, local).await.map_err(Error::io("cannot rename", &partial))?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        result
    }

    /// Deletes the object `rel`; one that is already gone is fine.
    pub(crate) async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.at(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("cannot delete", rel)(e)),
        }
    }

    /// Every object under `under`, as paths relative to this prefix.
    pub(crate) async fn list(&self, under: &str) -> Result<Vec<String>> {
        let prefix = self.at(under);
        let root: Vec<_> = self.root.parts().collect();
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(self.fail("cannot list", under))?;
            let parts: Vec<String> = meta.location.parts().skip(root.len()).map(|p| p.as_ref().to_string()).collect();
            out.push(parts.join("/"));
        }
        Ok(out)
    }

    /// The names of the prefixes right inside this one.
    pub(crate) async fn children(&self) -> Result<Vec<String>> {
        let listed = self.store.list_with_delimiter(Some(&self.root)).await.map_err(self.fail("cannot list", ""))?;
        let mut names: Vec<String> = listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
        names.sort();
        Ok(names)
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// Segment files kept on local disk, evicted least recently used first beyond a size.
#[derive(Debug)]
pub struct Cache {
    capacity: u64,
    /// A file used more recently than this is kept even beyond the capacity: a query that
    /// started with it may still be reading it.
    keep: Duration,
    files: Mutex<HashMap<PathBuf, (u64, Instant)>>,
}

impl Cache {
    /// A cache of at most `capacity` bytes (files used within `keep` excepted).
    pub fn new(capacity: u64, keep: Duration) -> Arc<Self> {
        Arc::new(Self { capacity, keep, files: Mutex::new(HashMap::new()) })
    }

    /// Notes that `path` was used now; false when it is not tracked as a file of `bytes` (it is
    /// then forgotten).
    fn touch(&self, path: &Path, bytes: u64) -> bool {
        let mut files = self.files.lock();
        match files.get_mut(path) {
            Some((size, used)) if *size == bytes => {
                *used = Instant::now();
                true
            }
            Some(_) => {
                files.remove(path);
                false
            }
            None => false,
        }
    }

    /// Takes in `path` of `bytes`, and evicts what no longer fits.
    pub(crate) fn insert(&self, path: PathBuf, bytes: u64) {
        let mut files = self.files.lock();
        files.insert(path, (bytes, Instant::now()));
        self.evict(&mut files);
    }

    /// Evicts least recently used files (but none used within `keep`) until the rest fit.
    fn evict(&self, files: &mut HashMap<PathBuf, (u64, Instant)>) {
        let mut total: u64 = files.values().map(|(size, _)| size).sum();
        if total > self.capacity {
            let mut by_age: Vec<(PathBuf, u64, Instant)> = files.iter().map(|(p, (s, u))| (p.clone(), *s, *u)).collect();
            by_age.sort_by_key(|(_, _, used)| *used);
            for (path, size, used) in by_age {
                if total <= self.capacity || used.elapsed() < self.keep {
                    break;
                }
                // A reader that opened it keeps reading; the next one downloads it again.
                let _ = std::fs::remove_file(&path);
                files.remove(&path);
                total -= size;
                metrics::counter!(m::CACHE_EVICTIONS).increment(1);
            }
        }
        metrics::gauge!(m::CACHE_BYTES).set(total as f64);
    }

    /// Forgets `path`, deleted by its store.
    pub(crate) fn forget(&self, path: &Path) {
        let mut files = self.files.lock();
        files.remove(path);
        metrics::gauge!(m::CACHE_BYTES).set(files.values().map(|(size, _)| *size).sum::<u64>() as f64);
    }

    /// Takes in the files an earlier run left in `dir` (as least recently used: they go first)
    /// and removes its unfinished downloads.
    pub fn adopt(&self, dir: &Path) {
        let long_ago = Instant::now().checked_sub(self.keep).unwrap_or_else(Instant::now);
        let mut files = self.files.lock();
        for path in crate::store::walk(dir) {
            let partial = path.extension().is_some_and(|e| e.to_string_lossy().starts_with(PARTIAL));
            match std::fs::metadata(&path) {
                Ok(meta) if !partial => {
                    files.insert(path, (meta.len(), long_ago));
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        self.evict(&mut files);
    }
}

/// A store's prefix in object storage, with the local cache its segment files are read from.
#[derive(Debug)]
pub struct Remote {
    /// Where the store's objects are.
    pub bucket: Bucket,
    /// Local copies of its segments.
    pub cache: Arc<Cache>,
    /// The version of the manifest this store last read or wrote: the condition of its next
    /// commit.
    version: Mutex<Option<UpdateVersion>>,
    /// Names this writer in the segment files it writes.
    epoch: u64,
}

impl Remote {
    /// The store at `bucket`, caching in `cache`.
    pub fn new(bucket: Bucket, cache: Arc<Cache>) -> Arc<Self> {
        Arc::new(Self { bucket, cache, version: Mutex::new(None), epoch: rand_u64() })
    }

    /// The random number this writer puts in its segment files' names.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The committed manifest; an empty one when there is none yet.
    pub(crate) async fn load(&self) -> Result<Manifest> {
        let Some((bytes, version)) = self.bucket.read(MANIFEST).await? else {
            *self.version.lock() = None;
            return Ok(Manifest::default());
        };
        *self.version.lock() = Some(version);
        Manifest::decode(&bytes)
            .map_err(|reason| Error::BadManifest { path: PathBuf::from(format!("{}/{MANIFEST}", self.bucket.url)), reason })
    }

    /// Makes this store the manifest's only writer: writes it once more, one generation on (or,
    /// for a store without one, creates it), so that whoever wrote it before fails their next
    /// commit.
    pub(crate) async fn take_over(&self, manifest: &mut Manifest) -> Result<()> {
        let expected = self.version.lock().clone();
        manifest.generation += 1;
        match self.bucket.write_if(MANIFEST, manifest.encode()?, expected).await? {
            Conditional::Written(version) => {
                *self.version.lock() = Some(version);
                Ok(())
            }
            Conditional::Conflict => Err(Error::Fenced(format!(
                "the manifest at {} changed while this store was opening: another process is writing this store \
                 (an oriel serve, ingest or import elsewhere). Stop it, or give this one another [object_store] url",
                self.bucket.url
            ))),
        }
    }

    /// Uploads the segments `next` lists and `previous` does not (from the store directory
    /// `dir`), then commits `next` with a conditional PUT. Retries with back-off until it
    /// succeeds, another writer is found to have committed (then [`Error::Fenced`]), or, once
    /// `closing` says so, a few attempts failed.
    pub(crate) async fn commit(
        &self,
        dir: &Path,
        previous: &Manifest,
        next: &Manifest,
        closing: impl Fn() -> bool,
    ) -> Result<()> {
        let uploads: Vec<&SegmentMeta> =
            next.segments.iter().filter(|s| !previous.segments.iter().any(|p| p.id == s.id)).collect();
        let body = next.encode()?;
        let mut delay = Duration::from_millis(250);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match self.try_commit(dir, &uploads, &body).await {
                Ok(()) => {
                    for s in &uploads {
                        self.cache.insert(dir.join(&s.file), s.bytes);
                    }
                    return Ok(());
                }
                Err(error @ Error::Fenced(_)) => {
                    self.remove_fenced_uploads(&uploads).await;
                    return Err(error);
                }
                Err(error) => error,
            };
            metrics::counter!(m::OBJECT_STORE_FAILURES).increment(1);
            if closing() && attempts >= ATTEMPTS_WHEN_CLOSING {
                // An attempt may have landed with its answer lost: then the commit is done.
                if let Ok(Some((bytes, version))) = self.bucket.read(MANIFEST).await
                    && bytes.as_ref() == body.as_slice()
                {
                    *self.version.lock() = Some(version);
                    return Ok(());
                }
                return Err(error);
            }
            tracing::warn!(%error, attempt = attempts, retry_in_ms = delay.as_millis() as u64, "commit to object storage failed; retrying (what it commits stays on local disk, and in memory and the log, until then)");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Removes the uploads of a commit that was fenced, but those the new owner's manifest
    /// lists: an earlier attempt of this commit may have landed (its answer lost) and been taken
    /// over with them. When the manifest cannot be read, removes nothing: the owner's next open
    /// sweeps what no manifest lists.
    async fn remove_fenced_uploads(&self, uploads: &[&SegmentMeta]) {
        let owner = match self.bucket.read(MANIFEST).await {
            Ok(Some((bytes, _))) => Manifest::decode(&bytes).ok(),
            Ok(None) => Some(Manifest::default()),
            Err(_) => None,
        };
        let Some(owner) = owner else { return };
        for s in uploads.iter().filter(|s| !owner.segments.iter().any(|o| o.file == s.file)) {
            if let Err(error) = self.bucket.delete(&s.file).await {
                tracing::warn!(%error, "cannot remove a fenced upload; the owner removes it when it opens the store next");
            }
        }
    }

    async fn try_commit(&self, dir: &Path, uploads: &[&SegmentMeta], body: &[u8]) -> Result<()> {
        for s in uploads {
            self.bucket.upload(&dir.join(&s.file), &s.file).await?;
        }
        let expected = self.version.lock().clone();
        match self.bucket.write_if(MANIFEST, body.to_vec(), expected).await? {
            Conditional::Written(version) => {
                *self.version.lock() = Some(version);
                Ok(())
            }
            Conditional::Conflict => {
                // An earlier attempt may have landed with its answer lost on the way back.
                match self.bucket.read(MANIFEST).await? {
                    Some((bytes, version)) if bytes.as_ref() == body => {
                        *self.version.lock() = Some(version);
                        Ok(())
                    }
                    _ => Err(Error::Fenced(format!(
                        "another process wrote the manifest at {} since this one last did: it has taken the store over, \
                         and this process writes no more (what it had not committed is in the log for the new owner)",
                        self.bucket.url
                    ))),
                }
            }
        }
    }

    /// Deletes the segment objects `manifest` does not list: uploads of a flush that never
    /// committed, and replaced segments whose deletion was interrupted. Returns how many.
    pub(crate) async fn remove_unlisted(&self, manifest: &Manifest) -> Result<usize> {
        let listed: std::collections::HashSet<&str> = manifest.segments.iter().map(|s| s.file.as_str()).collect();
        let unlisted: Vec<String> =
            self.bucket.list("segments").await?.into_iter().filter(|rel| !listed.contains(rel.as_str())).collect();
        for (n, rel) in unlisted.iter().enumerate() {
            // Another process that took the store over meanwhile lists files this one does not:
            // stop before deleting one of them.
            if n % 100 == 0 {
                self.check_still_owner().await?;
            }
            self.bucket.delete(rel).await?;
        }
        Ok(unlisted.len())
    }

    /// Fails with [`Error::Fenced`] when the manifest is no longer the one this store wrote last.
    async fn check_still_owner(&self) -> Result<()> {
        let now = self.bucket.version(MANIFEST).await?;
        let ours = self.version.lock().clone();
        if now.is_some() && now.as_ref().map(|v| &v.e_tag) == ours.as_ref().map(|v| &v.e_tag) {
            return Ok(());
        }
        Err(Error::Fenced(format!(
            "the manifest at {} changed while this store was opening: another process took the store over",
            self.bucket.url
        )))
    }

    /// Makes sure the segment `rel` of `bytes` is on local disk at `path`, downloading it when
    /// it is not.
    pub(crate) async fn ensure_local(&self, path: &Path, rel: &str, bytes: u64) -> Result<()> {
        // A file the cache tracks whole is there: only the cache evicts, under its lock.
        if self.cache.touch(path, bytes) {
            return Ok(());
        }
        // An untracked file (an earlier run's, or written here) is taken in when whole: a
        // segment file never changes, so its size tells.
        if tokio::fs::metadata(path).await.is_ok_and(|m| m.len() == bytes) {
            self.cache.insert(path.to_path_buf(), bytes);
            return Ok(());
        }
        let started = Instant::now();
        let fetched = self.bucket.download(rel, path).await?;
        metrics::counter!(m::CACHE_DOWNLOADED_BYTES).increment(fetched);
        tracing::debug!(rel, fetched, took_ms = started.elapsed().as_millis() as u64, "fetched a segment from object storage");
        self.cache.insert(path.to_path_buf(), fetched);
        Ok(())
    }
}

/// The committed manifest of the store in the directory `dir`: from object storage under
/// `<url>/<name of dir>` when `object_store` is given, else from `dir`.
pub async fn committed_manifest(dir: &Path, object_store: Option<&ObjectStoreConfig>) -> Result<Manifest> {
    let bucket = match object_store {
        Some(config) => Bucket::from_config(config)?,
        None => None,
    };
    match bucket {
        Some(bucket) => {
            let cache = Cache::new(0, Duration::ZERO);
            Remote::new(bucket.child(&crate::cluster::store_name(dir)), cache).load().await
        }
        None => {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || Manifest::load(&dir)).await.map_err(|_| Error::Closed)?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oriel_testkit::s3::S3Server;

    /// A PUT that landed but whose answer was lost looks like a conflict at the next attempt;
    /// the manifest there is then the one being committed, and the commit is done. A manifest
    /// someone else wrote is not, and fences.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_whose_answer_was_lost_is_recognised() {
        let s3 = S3Server::new();
        let bucket = Bucket::from_config(&s3.config("lost")).unwrap().unwrap();
        let remote = Remote::new(bucket.child("store"), Cache::new(1 << 20, Duration::ZERO));
        let dir = tempfile::tempdir().unwrap();
        let mut opened = remote.load().await.unwrap();
        remote.take_over(&mut opened).await.unwrap();
        let mut next = opened.clone();
        next.generation += 1;
        next.offsets.insert(0, 5);
        // It lands, and the answer never comes back: written behind the writer's back.
        remote.bucket.write(MANIFEST, next.encode().unwrap()).await.unwrap();
        remote.commit(dir.path(), &opened, &next, || false).await.unwrap();
        assert_eq!(remote.load().await.unwrap(), next);

        let mut foreign = next.clone();
        foreign.generation += 7;
        remote.bucket.write(MANIFEST, foreign.encode().unwrap()).await.unwrap();
        let mut third = next.clone();
        third.generation += 1;
        let err = remote.commit(dir.path(), &next, &third, || false).await.unwrap_err();
        assert!(matches!(err, Error::Fenced(_)), "{err}");
        assert_eq!(remote.load().await.unwrap(), foreign, "the fenced commit wrote");
    }

    fn file(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, [0u8; 100]).unwrap();
        path
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_beyond_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(250, Duration::ZERO);
        let (a, b, c) = (file(dir.path(), "a"), file(dir.path(), "b"), file(dir.path(), "c"));
        cache.insert(a.clone(), 100);
        std::thread::sleep(Duration::from_millis(5));
        cache.insert(b.clone(), 100);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.touch(&a, 100), "a is used again: b is now the oldest");
        std::thread::sleep(Duration::from_millis(5));
        cache.insert(c.clone(), 100);
        assert!(a.exists() && c.exists());
        assert!(!b.exists(), "the least recently used file went");
        assert!(!cache.touch(&b, 100));
        assert!(!cache.touch(&a, 99), "a copy of another size is not the segment");
        assert!(!cache.touch(&a, 100), "and it is forgotten");
    }

    #[test]
    fn files_in_use_outstay_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(150, Duration::from_secs(3600));
        let (a, b) = (file(dir.path(), "a"), file(dir.path(), "b"));
        cache.insert(a.clone(), 100);
        cache.insert(b.clone(), 100);
        assert!(a.exists() && b.exists(), "a query may still read either");
    }
}
