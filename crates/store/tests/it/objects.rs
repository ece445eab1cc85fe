//! A store committed to object storage: a real S3-protocol server (`s3s-fs`) holds its
//! segments and manifest; the local directory is only a cache.

use std::sync::Arc;
use std::time::Duration;

use oriel_store::manifest::Manifest;
use oriel_store::{Store, StoreOptions};
use oriel_testkit::s3::S3Server;

use crate::{Fixture, T0, event};

fn with_s3(s3: &S3Server, prefix: &str) -> impl FnOnce(&mut StoreOptions) {
    let config = s3.config(prefix);
    move |o| o.object_store = Some(config)
}

/// Store options in `dir` for the store at `prefix` of `s3`.
fn options_on(s3: &S3Server, prefix: &str, dir: &std::path::Path, clock: &oriel_core::MockClock) -> StoreOptions {
    let mut options = crate::options(dir, clock);
    with_s3(s3, prefix)(&mut options);
    options
}

/// A store at `prefix` of `s3` that has committed `n` events of visitor `p` there.
async fn flushed(s3: &S3Server, prefix: &str, n: usize) -> Fixture {
    let f = Fixture::with_options(with_s3(s3, prefix)).await;
    f.send(&(0..n).map(|i| event(i, "a", "p", T0 + i as i64)).collect::<Vec<_>>()).await;
    f.wait_for_count(n as i64).await;
    f.store.flush().await.unwrap();
    f
}

/// The manifest the server holds for the store at `prefix`.
fn remote_manifest(s3: &S3Server, prefix: &str) -> Manifest {
    let dir = s3.object(&format!("{prefix}/store"));
    Manifest::load(&dir).unwrap()
}

/// Reopens `f`'s store over the same log and object store, after `between` ran on it closed.
async fn reopen(f: Fixture, s3: &S3Server, prefix: &str, between: impl FnOnce(&std::path::Path)) -> Fixture {
    f.store.close().await.unwrap();
    f.log.close().await.unwrap();
    let Fixture { dir, clock, .. } = f;
    between(dir.path());
    let log = Fixture::open_log(dir.path());
    let store = Store::open(options_on(s3, prefix, dir.path(), &clock), Some(Arc::clone(&log))).await.unwrap();
    Fixture { dir, log, store, clock }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_store_holds_the_store_and_the_local_disk_is_a_cache() {
    let s3 = S3Server::new();
    let f = Fixture::with_options(with_s3(&s3, "one")).await;
    for round in 0..3 {
        let events: Vec<_> = (0..100).map(|i| event(round * 100 + i, "a", &format!("p{}", i % 7), T0 + i as i64)).collect();
        f.send(&events).await;
        f.wait_for_count((round as i64 + 1) * 100).await;
        f.store.flush().await.unwrap();
    }
    let manifest = remote_manifest(&s3, "one");
    assert_eq!(manifest.segments.len(), 3, "each flush committed its segment to the server");
    assert!(!f.dir.path().join("store/manifest").exists(), "the manifest is committed to the object store only");
    assert_eq!(f.store.compact().await.unwrap(), 1);
    let manifest = remote_manifest(&s3, "one");
    assert_eq!(manifest.segments.len(), 1);
    // Replaced segments are deleted from the server too (in the background).
    let listed: Vec<String> = manifest.segments.iter().map(|s| format!("one/store/{}", s.file)).collect();
    for _ in 0..100 {
        if s3.keys("one/store/segments") == listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s3.keys("one/store/segments"), listed);

    // The local disk is lost: everything comes back from the server, once.
    let f = reopen(f, &s3, "one", |dir| std::fs::remove_dir_all(dir.join("store")).unwrap()).await;
    assert_eq!(f.count("SELECT count(*) FROM events").await, 300);
    assert_eq!(f.count("SELECT count(DISTINCT event_id) FROM events").await, 300);
    assert!(f.dir.path().join("store").join(&manifest.segments[0].file).exists(), "the query fetched the segment");
    assert!(remote_manifest(&s3, "one").generation > manifest.generation, "opening took the manifest over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_opens_fences_the_previous_writer() {
    let s3 = S3Server::new();
    let f = flushed(&s3, "two", 50).await;

    // A second process opens the same store (a takeover while the first still runs) over the
    // same log, and commits a segment of its own.
    let other = tempfile::tempdir().unwrap();
    let options = options_on(&s3, "two", other.path(), &f.clock);
    let successor = Store::open(options, Some(Arc::clone(&f.log))).await.unwrap();
    f.send(&(50..60).map(|i| event(i, "a", "p", T0 + i as i64)).collect::<Vec<_>>()).await;
    let successor_count = || async { successor.engine().collect("SELECT count(*) FROM events").await.unwrap() };
    for _ in 0..500 {
        if oriel_store::query::values::rows(&successor_count().await)[0][0] == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(successor.flush().await.unwrap().rows, 10);
    let committed = remote_manifest(&s3, "two");
    let objects: Vec<(String, Vec<u8>)> = committed
        .segments
        .iter()
        .map(|s| {
            let key = format!("two/store/{}", s.file);
            (key.clone(), std::fs::read(s3.object(&key)).unwrap())
        })
        .collect();

    // The first process, unaware, flushes the same events: its commit is refused, and nothing
    // the successor committed is touched.
    f.wait_for_count(60).await;
    let err = f.store.flush().await.unwrap_err();
    assert!(err.to_string().contains("taken the store over"), "{err}");
    assert!(f.store.fenced(), "a fenced store did not stop writing");
    assert_eq!(remote_manifest(&s3, "two"), committed, "the fenced flush changed the manifest");
    for (key, bytes) in &objects {
        assert_eq!(&std::fs::read(s3.object(key)).unwrap(), bytes, "the fenced writer replaced {key}");
    }
    let refused = f.store.import(Vec::new()).await.unwrap_err();
    assert!(refused.to_string().contains("took this store over"), "{refused}");
    assert_eq!(oriel_store::query::values::rows(&successor_count().await)[0][0], 60);
    successor.close().await.unwrap();
}

/// Even a store without a manifest yet has one owner: opening creates the manifest, so the
/// first writer's commit fails once a second one opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_new_store_fences_too() {
    let s3 = S3Server::new();
    let f = Fixture::with_options(with_s3(&s3, "new")).await;
    assert_eq!(remote_manifest(&s3, "new").generation, 1, "opening created the manifest");
    let other = tempfile::tempdir().unwrap();
    let options = options_on(&s3, "new", other.path(), &f.clock);
    let successor = Store::open(options, None).await.unwrap();
    f.send(&[event(0, "a", "p", T0)]).await;
    f.wait_for_count(1).await;
    assert!(f.store.flush().await.unwrap_err().to_string().contains("taken the store over"));
    assert!(s3.keys("new/store/segments").is_empty(), "the fenced writer's upload is there");
    successor.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_wait_out_an_unreachable_object_store_and_lose_nothing() {
    let s3 = S3Server::new();
    let f = flushed(&s3, "three", 100).await;

    s3.stop();
    f.send(&(100..250).map(|i| event(i, "a", "q", T0 + i as i64)).collect::<Vec<_>>()).await;
    f.wait_for_count(250).await;
    let store = Arc::clone(&f.store);
    let flush = tokio::spawn(async move { store.flush().await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!flush.is_finished(), "the flush keeps retrying while the server is down");
    assert_eq!(f.count("SELECT count(*) FROM events").await, 250, "queries go on from the cache and the live buffer");
    assert_eq!(remote_manifest(&s3, "three").segments.len(), 1);

    s3.start();
    let report = tokio::time::timeout(Duration::from_secs(60), flush).await.unwrap().unwrap().unwrap();
    assert_eq!(report.rows, 150);
    let f = reopen(f, &s3, "three", |dir| std::fs::remove_dir_all(dir.join("store")).unwrap()).await;
    f.wait_for_count(250).await;
    assert_eq!(f.count("SELECT count(DISTINCT event_id) FROM events").await, 250, "nothing lost, nothing twice");
    assert_eq!(remote_manifest(&s3, "three").segments.iter().map(|s| s.rows).sum::<u64>(), 250);
}

/// Opening checks before it takes anything over: a log that is not the store's (an embedded
/// log in a new data directory) and a store on local disk that an empty prefix would erase
/// are both refused, and the bucket's owner is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_refuses_a_foreign_log_and_a_local_store_it_would_erase() {
    let s3 = S3Server::new();
    let f = flushed(&s3, "four", 10).await;
    let committed = remote_manifest(&s3, "four");
    let fresh = tempfile::tempdir().unwrap();
    let options = options_on(&s3, "four", fresh.path(), &f.clock);
    let err = Store::open(options, Some(Fixture::open_log(fresh.path()))).await.unwrap_err();
    assert!(err.to_string().contains("not the log this store was written from"), "{err}");
    assert_eq!(remote_manifest(&s3, "four"), committed, "a refused open took the store over");
    f.send(&[event(10, "a", "p", T0)]).await;
    f.wait_for_count(11).await;
    assert_eq!(f.store.flush().await.unwrap().rows, 1, "the owner was fenced by a refused open");

    let local = Fixture::new().await;
    local.send(&[event(0, "a", "p", T0)]).await;
    local.wait_for_count(1).await;
    local.store.flush().await.unwrap();
    local.store.close().await.unwrap();
    let options = options_on(&s3, "empty", local.dir.path(), &local.clock);
    let err = Store::open(options, None).await.unwrap_err();
    assert!(err.to_string().contains("not supported yet"), "{err}");
    assert_eq!(Manifest::load(&local.dir.path().join("store")).unwrap().segments.len(), 1, "the local store was erased");
}
