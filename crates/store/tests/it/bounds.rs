//! Memory and I/O stay bounded: the live buffer by its budget, deletion by the segments that
//! can hold the visitor.

use std::collections::BTreeSet;
use std::sync::Arc;

use oriel_core::MockClock;
use oriel_store::manifest::Manifest;
use oriel_store::{Selector, Store};

use crate::{Fixture, T0, event, options};

/// Regression: the live buffer grew without limit while ingesting (and again while replaying
/// after a restart), until a flush tried to allocate it all at once. Now ingestion pauses at
/// the budget and flushes start at half of it, whatever the flush interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_buffer_stays_within_its_budget_while_replaying() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(T0);
    let log = Fixture::open_log(dir.path());
    let total = 30_000;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<_> = chunk.iter().map(|&i| event(i, "a", &format!("p{}", i % 97), T0 + i as i64)).collect();
        let records = events
            .iter()
            .map(|e| oriel_log::Record::new(e.party_id.clone().unwrap().into_bytes(), serde_json::to_vec(e).unwrap(), e.time))
            .collect();
        log.append(records).await.unwrap();
    }
    let budget = 1 << 20;
    let mut options = options(dir.path(), &clock);
    options.live_buffer_bytes = budget;
    let store: Arc<Store> = Store::open(options, Some(log.clone())).await.unwrap();
    let mut peak = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stats = store.stats();
        peak = peak.max(stats.live_bytes);
        if stats.live_rows as u64 + stats.segment_rows == total as u64 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ingestion stalled at {stats:?}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let stats = store.stats();
    assert!(stats.segments >= 2, "flushes must start early, before the hour-long interval: {stats:?}");
    assert!(peak <= 2 * budget, "the live buffer reached {peak} bytes with a budget of {budget}");
    let result = store.engine().collect("SELECT count(*), count(DISTINCT event_id) FROM events").await.unwrap();
    let rows = oriel_store::query::values::rows(&result);
    assert_eq!(rows[0], serde_json::json!([total, total]));
    store.close().await.unwrap();
    log.close().await.unwrap();
}

/// Deletion rewrites only the segments whose bloom filters say they may hold the visitor; the
/// others keep their files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_rewrites_only_the_segments_that_may_hold_the_visitor() {
    let f = Fixture::new().await;
    for round in 0..5usize {
        let events: Vec<_> =
            (0..200).map(|i| event(round * 1000 + i, "a", &format!("r{round}-p{}", i % 20), T0 + i as i64)).collect();
        f.send(&events).await;
        f.wait_for_count(200 * (round as i64 + 1)).await;
        f.store.flush().await.unwrap();
    }
    let ids = |m: &Manifest| m.segments.iter().map(|s| s.id).collect::<BTreeSet<_>>();
    let before = Manifest::load(&f.dir.path().join("store")).unwrap();
    assert_eq!(before.segments.len(), 5);
    let removed = f.store.delete(Selector { party_id: Some("r3-p7".into()), user_id: None }, "admin").await.unwrap();
    assert_eq!(removed.deleted, 10);
    let after = Manifest::load(&f.dir.path().join("store")).unwrap();
    let kept: Vec<_> = ids(&before).intersection(&ids(&after)).copied().collect();
    assert_eq!(
        kept.len(),
        4,
        "only the segment with the visitor is rewritten: before {:?}, after {:?}",
        ids(&before),
        ids(&after)
    );
    assert_eq!(f.count("SELECT count(*) FROM events WHERE party_id = 'r3-p7'").await, 0);
    assert_eq!(f.count("SELECT count(*) FROM events").await, 990);
    // A visitor nobody has: no segment is touched.
    assert_eq!(f.store.delete(Selector { party_id: Some("nobody".into()), user_id: None }, "admin").await.unwrap().deleted, 0);
    assert_eq!(ids(&Manifest::load(&f.dir.path().join("store")).unwrap()), ids(&after));
}

/// At most `max_concurrent_queries` run at once: a query that finds every slot taken waits the
/// queue time and is refused with a clear error, and a freed slot is taken at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_past_the_concurrency_cap_wait_then_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = MockClock::new(T0);
    let log = Fixture::open_log(dir.path());
    let mut options = options(dir.path(), &clock);
    options.query.max_concurrent = 1;
    options.query.queue_wait = std::time::Duration::from_millis(500);
    let store: Arc<Store> = Store::open(options, Some(log.clone())).await.unwrap();
    let events: Vec<_> = (0..40_000).map(|i| event(i, "a", "p", T0 + i as i64)).collect();
    let records = events
        .iter()
        .map(|e| oriel_log::Record::new(e.party_id.clone().unwrap().into_bytes(), serde_json::to_vec(e).unwrap(), e.time))
        .collect();
    log.append(records).await.unwrap();
    while store.stats().live_rows + (store.stats().segment_rows as usize) < 40_000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A result of several batches that nobody reads holds its slot.
    let mut held = store.engine().query("SELECT * FROM events").await.unwrap();
    assert!(held.next().await.is_some());
    let started = std::time::Instant::now();
    let refused = store.engine().query("SELECT 1").await.unwrap_err();
    assert!(started.elapsed() >= std::time::Duration::from_millis(500), "refused before the queue wait");
    assert!(matches!(refused, oriel_store::Error::Busy(_)), "{refused}");
    assert_eq!(
        refused.to_string(),
        "1 queries are running and none finished within 0.5 s (store.max_concurrent_queries, store.query_queue_seconds); retry shortly"
    );
    drop(held);
    store.engine().collect("SELECT 1").await.unwrap();
    store.close().await.unwrap();
    log.close().await.unwrap();
}
