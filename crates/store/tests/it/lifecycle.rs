//! Ingestion, persistence, restarts, compaction, retention and deletion.

use std::collections::BTreeMap;

use oriel_store::expiry::RetentionPolicy;
use oriel_store::export::ExportFormat;
use oriel_store::manifest::Manifest;

use crate::{Fixture, T0, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_queryable_at_once_and_exactly_once_across_flushes_and_restarts() {
    let f = Fixture::new().await;
    let events: Vec<_> = (0..300).map(|i| event(i, "a", &format!("p{}", i % 17), T0 + i as i64 * 1000)).collect();
    f.send(&events[..100]).await;
    f.wait_for_count(100).await;
    let report = f.store.flush().await.unwrap();
    assert_eq!(report.rows, 100);
    assert_eq!(f.count("SELECT count(*) FROM events").await, 100, "a flush neither loses nor repeats rows");
    f.send(&events[100..200]).await;
    f.wait_for_count(200).await;

    // Restart with 100 events persisted and 100 only in the log: replay restores them once.
    let f = f.restart().await;
    f.wait_for_count(200).await;
    f.send(&events[200..]).await;
    f.wait_for_count(300).await;
    assert_eq!(f.count("SELECT count(DISTINCT event_id) FROM events").await, 300);
    let stats = f.store.stats();
    assert_eq!(stats.segment_rows + stats.live_rows as u64, 300);

    // The log learns how far the store has persisted.
    f.store.flush().await.unwrap();
    let stats = f.store.stats();
    for (p, offset) in &stats.persisted_offsets {
        assert_eq!(f.log.consumer_position(oriel_store::CONSUMER, *p).await.unwrap(), Some(*offset));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_per_hour_and_compaction_keeps_results() {
    let f = Fixture::new().await;
    for round in 0..4 {
        // Each flush writes one segment per hour touched: 2 hours here.
        let events: Vec<_> =
            (0..50).map(|i| event(round * 50 + i, "a", "p", T0 + (i as i64 % 2) * 3_600_000 + round as i64)).collect();
        f.send(&events).await;
        f.wait_for_count((round as i64 + 1) * 50).await;
        f.store.flush().await.unwrap();
    }
    let before = f.sql("SELECT path, count(*) FROM events GROUP BY path ORDER BY path").await;
    let manifest = Manifest::load(&f.dir.path().join("store")).unwrap();
    assert_eq!(manifest.segments.len(), 8);
    assert!(manifest.segments.iter().all(|s| s.partition == "2026-11-27T09" || s.partition == "2026-11-27T10"));
    let merged = f.store.compact().await.unwrap();
    assert_eq!(merged, 2);
    let manifest = Manifest::load(&f.dir.path().join("store")).unwrap();
    assert_eq!(manifest.segments.len(), 2);
    assert_eq!(f.sql("SELECT path, count(*) FROM events GROUP BY path ORDER BY path").await, before);
    // Replaced files are gone once no query holds them.
    let files = walk(&f.dir.path().join("store/segments"));
    assert_eq!(files.len(), 2, "{files:?}");
}

/// On an ingest node a replaced segment stays on disk for the grace (a query node may have
/// listed it a moment before), then goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_segments_outlive_their_manifest_for_the_grace() {
    let grace = std::time::Duration::from_secs(2);
    let f = Fixture::with_options(|o| o.retired_grace = grace).await;
    for round in 0..3 {
        f.send(&(0..10).map(|i| event(round * 10 + i, "a", "p", T0 + round as i64)).collect::<Vec<_>>()).await;
        f.wait_for_count((round as i64 + 1) * 10).await;
        f.store.flush().await.unwrap();
    }
    let compacted = std::time::Instant::now();
    assert_eq!(f.store.compact().await.unwrap(), 1);
    assert_eq!(walk(&f.dir.path().join("store/segments")).len(), 4, "a replaced file went before its grace");
    assert_eq!(f.count("SELECT count(*) FROM events").await, 30);
    while walk(&f.dir.path().join("store/segments")).len() > 1 {
        assert!(compacted.elapsed() < grace * 5, "replaced files outlived their grace");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(compacted.elapsed() >= grace, "replaced files went before their grace");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Each site keeps its own number of whole UTC days: exactly the older events go, from
/// segments dropped whole and from segments shared with sites that keep them longer, and
/// replay does not bring expired events back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_site_keeps_exactly_its_retention() {
    const DAY: i64 = 86_400_000;
    let f = Fixture::with_options(|o| {
        o.retention = RetentionPolicy { default_days: 30, sites: BTreeMap::from([("short".into(), 2), ("forever".into(), 0)]) };
        // The clock jumps 100 days below: background housekeeping (compaction drops expired
        // rows too) would race the retention pass this test counts.
        o.housekeeping_interval = std::time::Duration::from_secs(1000 * 86_400);
    })
    .await;
    let today = T0.div_euclid(DAY) * DAY;
    let mut times: Vec<i64> = (0..45).map(|d| T0 - d * DAY).collect();
    // Both sides of each site's cutoff.
    for cutoff in [today - 2 * DAY, today - 30 * DAY] {
        times.extend([cutoff - 1, cutoff, cutoff + 1]);
    }
    let mut events = Vec::new();
    for site in ["short", "a", "forever"] {
        for &t in &times {
            events.push(event(events.len(), site, &format!("{site}-{t}"), t));
        }
    }
    // Ingested while nothing had expired yet, then the clock moves on.
    f.clock.set(T0 - 100 * DAY);
    f.send(&events).await;
    f.wait_for_count(events.len() as i64).await;
    f.store.flush().await.unwrap();
    f.clock.set(T0);

    let kept = |site: &str, t: i64| match site {
        "short" => t >= today - 2 * DAY,
        "forever" => true,
        _ => t >= today - 30 * DAY,
    };
    let expected_removed = events.iter().filter(|e| !kept(e.site.as_deref().unwrap(), e.time)).count() as u64;
    assert_eq!(f.store.enforce_retention().await.unwrap(), expected_removed);
    for site in ["short", "a", "forever"] {
        let expected: Vec<i64> = {
            let mut t: Vec<i64> = times.iter().copied().filter(|&t| kept(site, t)).collect();
            t.sort_unstable();
            t
        };
        let rows = f.sql(&format!("SELECT CAST(__time AS BIGINT) FROM events WHERE site = '{site}' ORDER BY 1")).await;
        let got: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(got, expected, "site {site}");
    }
    assert_eq!(f.store.enforce_retention().await.unwrap(), 0, "a second pass finds nothing left to do");

    // Replay (or an import) of an expired event does not bring it back.
    let total = f.count("SELECT count(*) FROM events").await;
    f.send(&[event(9000, "short", "late", today - 3 * DAY), event(9001, "short", "fresh", T0)]).await;
    f.wait_for_count(total + 1).await;
    assert_eq!(f.count("SELECT count(*) FROM events WHERE party_id = 'late'").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_visitor_removes_every_event_and_survives_restart() {
    let f = Fixture::new().await;
    let mut events: Vec<_> = (0..40).map(|i| event(i, "a", if i % 4 == 0 { "victim" } else { "other" }, T0 + i as i64)).collect();
    events[1].user_id = Some("u-9".into());
    f.send(&events[..20]).await;
    f.wait_for_count(20).await;
    f.store.flush().await.unwrap();
    f.send(&events[20..]).await;
    f.wait_for_count(40).await;
    // 5 in a segment, 5 in the live buffer.
    // Before: the export holds exactly the visitor's events, from segments and live buffer.
    let victim = oriel_store::Selector { party_id: Some("victim".into()), user_id: None };
    let expected: Vec<String> =
        events.iter().filter(|e| e.party_id.as_deref() == Some("victim")).map(|e| e.event_id.clone().unwrap()).collect();
    let lines = f.store.export(&victim, ExportFormat::JsonLines).await.unwrap();
    let exported: Vec<serde_json::Value> =
        String::from_utf8(lines).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported.iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect::<Vec<_>>(), expected);
    assert!(exported.iter().all(|e| e["party_id"] == "victim" && e["path"].is_string()));
    let parquet = f.store.export(&victim, ExportFormat::Parquet).await.unwrap();
    let file = f.dir.path().join("export.parquet");
    std::fs::write(&file, parquet).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(std::fs::File::open(&file).unwrap(), 1024).unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), expected.len());

    let receipt = f.store.delete(victim.clone(), "ops").await.unwrap();
    assert_eq!(receipt.deleted, 10);
    assert_eq!(f.count("SELECT count(*) FROM events WHERE party_id = 'victim'").await, 0);
    assert_eq!(f.count("SELECT count(*) FROM events").await, 30, "other visitors untouched");
    assert_eq!(
        f.store.delete(oriel_store::Selector { party_id: None, user_id: Some("u-9".into()) }, "ops").await.unwrap().deleted,
        1
    );
    // Each deletion leaves a receipt: who, when, whose events, how many; never the events.
    let receipts = f.store.receipts().await.unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0], receipt);
    assert_eq!((receipts[0].requested_by.as_str(), receipts[0].requested_at_ms), ("ops", T0));
    assert_eq!(receipts[0].selector.party_id.as_deref(), Some("victim"));
    assert_eq!((receipts[1].deleted, receipts[1].selector.user_id.as_deref()), (1, Some("u-9")));
    let text = std::fs::read_to_string(oriel_store::receipts::path(&f.dir.path().join("store"))).unwrap();
    assert!(!text.contains("\"path\"") && !text.contains("event_id"), "no event data in receipts: {text}");
    assert!(f.store.export(&victim, ExportFormat::JsonLines).await.unwrap().is_empty(), "nothing left to export");

    // The log still holds the events below the deletion: replay must not bring them back.
    let f = f.restart().await;
    f.wait_for_count(29).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(f.count("SELECT count(*) FROM events WHERE party_id = 'victim' OR user_id = 'u-9'").await, 0);
    // New events of the visitor after the deletion are kept.
    f.send(&[crate::event(100, "a", "victim", T0)]).await;
    f.wait_for_count(30).await;
}

/// A deletion interrupted after its first commit (a crash before the segments were rewritten)
/// is finished when the store opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deletion_is_finished_at_the_next_start() {
    let f = Fixture::new().await;
    let events: Vec<_> = (0..20).map(|i| event(i, "a", if i % 5 == 0 { "victim" } else { "other" }, T0 + i as i64)).collect();
    f.send(&events).await;
    f.wait_for_count(20).await;
    f.store.flush().await.unwrap();
    f.store.close().await.unwrap();
    // What the first turn of a deletion commits, without the rewrite that follows it.
    let store_dir = f.dir.path().join("store");
    let mut manifest = oriel_store::manifest::Manifest::load(&store_dir).unwrap();
    let selector = oriel_store::Selector { party_id: Some("victim".into()), user_id: None };
    manifest.deletions.push(oriel_store::deletion::PendingDeletion { selector, before_ms: T0 + 100, ..Default::default() });
    manifest.generation += 1;
    manifest.commit(&store_dir).unwrap();

    let f = f.restart().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !oriel_store::manifest::Manifest::load(&store_dir).unwrap().deletions.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the pending deletion was never finished");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(f.count("SELECT count(*) FROM events WHERE party_id = 'victim'").await, 0);
    assert_eq!(f.count("SELECT count(*) FROM events").await, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_the_store() {
    let f = Fixture::new().await;
    let err = oriel_store::Store::open(crate::options(f.dir.path(), &f.clock), None).await.unwrap_err();
    assert!(err.to_string().contains("held by another process; stop the other oriel first"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_segments_from_a_crashed_flush_are_removed() {
    let f = Fixture::new().await;
    f.send(&[event(0, "a", "p", T0)]).await;
    f.wait_for_count(1).await;
    f.store.flush().await.unwrap();
    let dir = f.dir.path().join("store/segments/2026-11-27T09");
    std::fs::write(dir.join("000000000099.parquet"), b"half written").unwrap();
    let f = f.restart().await;
    assert!(!dir.join("000000000099.parquet").exists());
    f.wait_for_count(1).await;
}

/// Queries running while segments are compacted away see every row exactly once and never
/// fail on a file that compaction deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_stay_correct_during_compaction() {
    let f = Fixture::new().await;
    let mut sent = 0;
    for round in 0..3 {
        let events: Vec<_> = (0..200).map(|i| event(round * 200 + i, "a", "p", T0 + i as i64)).collect();
        f.send(&events).await;
        sent += 200;
        f.wait_for_count(sent).await;
        f.store.flush().await.unwrap();
    }
    let store = f.store.clone();
    let reader = tokio::spawn(async move {
        let mut checked = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(1500) {
            let result = store.engine().collect("SELECT count(*), count(DISTINCT event_id) FROM events").await.unwrap();
            let rows = oriel_store::query::values::rows(&result);
            let (all, distinct) = (rows[0][0].as_i64().unwrap(), rows[0][1].as_i64().unwrap());
            assert_eq!(all, distinct, "a row was seen twice");
            assert!(all >= 600, "rows went missing: {all}");
            checked += 1;
        }
        checked
    });
    for round in 3..8 {
        let events: Vec<_> = (0..200).map(|i| event(round * 200 + i, "b", "q", T0 + 1000 + i as i64)).collect();
        f.send(&events).await;
        f.store.flush().await.unwrap();
        f.store.compact().await.unwrap();
    }
    let checked = reader.await.unwrap();
    assert!(checked > 3, "only {checked} queries ran");
}

/// Days before today end up as one segment each; today keeps its hourly partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_days_are_compacted_into_one_segment_each() {
    let f = Fixture::new().await;
    let day = 86_400_000;
    let mut events = Vec::new();
    for d in 1..=2 {
        for h in 0..5 {
            events.push(event(events.len(), "a", "p", T0 - d * day + h * 3_600_000));
        }
    }
    events.push(event(events.len(), "a", "p", T0));
    events.push(event(events.len(), "a", "p", T0 + 3_600_000));
    f.send(&events).await;
    f.wait_for_count(12).await;
    f.store.flush().await.unwrap();
    let before = f.sql("SELECT TIME_FLOOR(__time, 'PT1H'), count(*) FROM events GROUP BY 1 ORDER BY 1").await;
    assert_eq!(Manifest::load(&f.dir.path().join("store")).unwrap().segments.len(), 12);
    f.store.compact().await.unwrap();
    let manifest = Manifest::load(&f.dir.path().join("store")).unwrap();
    let mut partitions: Vec<&str> = manifest.segments.iter().map(|s| s.partition.as_str()).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, vec!["2026-11-25", "2026-11-26", "2026-11-27T09", "2026-11-27T10"]);
    assert_eq!(f.sql("SELECT TIME_FLOOR(__time, 'PT1H'), count(*) FROM events GROUP BY 1 ORDER BY 1").await, before);
    assert_eq!(f.store.compact().await.unwrap(), 0, "nothing left to merge");
}

/// Flushes are due by the store's clock, not the wall clock: nothing is flushed before the
/// interval passes on the injected clock, and a flush follows soon after it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flush_interval_runs_on_the_injected_clock() {
    let f = Fixture::new().await;
    f.send(&[event(0, "a", "p", T0), event(1, "a", "p", T0 + 1)]).await;
    f.wait_for_count(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(f.store.stats().segments, 0, "the interval (one hour) has not passed on the clock");
    f.clock.advance(3_600_001);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.store.stats().segments == 0 {
        assert!(std::time::Instant::now() < deadline, "no flush after the interval passed on the clock");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(f.count("SELECT count(*) FROM events").await, 2);
}
