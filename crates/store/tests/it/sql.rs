//! SQL over the store: Druid functions, time pruning, and the read-only guarantee.

use serde_json::json;

use crate::{Fixture, T0, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_time_functions() {
    let f = Fixture::new().await;
    let events: Vec<_> = (0..6).map(|i| event(i, "a", "p", T0 + i as i64 * 20 * 60_000)).collect();
    f.send(&events).await;
    f.wait_for_count(6).await;
    f.store.flush().await.unwrap();
    let rows = f.sql("SELECT TIME_FLOOR(__time, 'PT1H') AS h, count(*) FROM events GROUP BY 1 ORDER BY 1").await;
    assert_eq!(json!(rows), json!([["2026-11-27T09:00:00.000Z", 3], ["2026-11-27T10:00:00.000Z", 3]]));
    let rows = f.sql("SELECT FLOOR(__time TO DAY), count(*) FROM events GROUP BY 1").await;
    assert_eq!(json!(rows), json!([["2026-11-27T00:00:00.000Z", 6]]));
    let rows = f.sql("SELECT TIME_FORMAT(MIN(__time), 'yyyy-MM-dd HH:mm'), TIME_FORMAT(MIN(__time)) FROM events").await;
    assert_eq!(json!(rows), json!([["2026-11-27 09:00", "2026-11-27T09:00:00.000Z"]]));
    let n = f.count("SELECT count(*) FROM events WHERE __time >= TIME_PARSE('2026-11-27T10:00:00Z')").await;
    assert_eq!(n, 3);
    let n = f.count("SELECT count(*) FROM events WHERE __time < TIME_SHIFT(TIME_PARSE('2026-11-27T10:00:00Z'), 'PT1H', -1) + INTERVAL '20' MINUTE").await;
    assert_eq!(n, 1);
    let rows = f.sql("SELECT MILLIS_TO_TIMESTAMP(1795770000000), TIMESTAMP_TO_MILLIS(MIN(__time)) FROM events").await;
    assert_eq!(json!(rows), json!([["2026-11-27T09:00:00.000Z", T0]]));
    assert_eq!(f.count("SELECT APPROX_COUNT_DISTINCT(event_id) FROM events").await, 6);
    let tables = f.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'druid'").await;
    assert_eq!(json!(tables), json!([["events"]]));
    let columns = f.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'events'").await;
    assert_eq!(columns as usize, oriel_core::event::COLUMNS.len());
    // Chained `||` (rewritten to the guarded concatenation) keeps working in any position.
    let rows = f.sql("SELECT site || '~' || party_id || '!' AS s, 'x' || 'y' || 'z' FROM events LIMIT 1").await;
    assert_eq!(json!(rows), json!([["a~p!", "xyz"]]));
    let rows = f.sql("SELECT COALESCE(session_id, party_id || '~' || CAST(1 AS VARCHAR)) FROM events LIMIT 1").await;
    assert_eq!(json!(rows), json!([["p-s"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_filters_prune_segments_before_reading_them() {
    let f = Fixture::new().await;
    f.send(&[event(0, "a", "p", T0), event(1, "a", "p", T0 + 5 * 3_600_000)]).await;
    f.wait_for_count(2).await;
    f.store.flush().await.unwrap();
    // Break the early segment: a query that does not need it must not touch it.
    let manifest = oriel_store::manifest::Manifest::load(&f.dir.path().join("store")).unwrap();
    let early = manifest.segments.iter().find(|s| s.min_time == T0).unwrap();
    std::fs::write(f.dir.path().join("store").join(&early.file), b"not parquet").unwrap();
    let n = f.count("SELECT count(*) FROM events WHERE __time >= TIMESTAMP '2026-11-27 13:00:00'").await;
    assert_eq!(n, 1);
    assert!(
        f.store.engine().collect("SELECT site, count(*) FROM events GROUP BY site").await.is_err(),
        "the broken segment is read without a time filter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_surface_is_read_only() {
    let f = Fixture::new().await;
    f.send(&[event(0, "a", "p", T0)]).await;
    f.wait_for_count(1).await;
    f.store.flush().await.unwrap();
    let before = f.store.stats();
    let outside = f.dir.path().join("escape");
    let forbidden = [
        "CREATE TABLE t AS SELECT * FROM events".to_string(),
        format!("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'", f.dir.path().display()),
        "INSERT INTO events SELECT * FROM events".to_string(),
        "DELETE FROM events".to_string(),
        "UPDATE events SET site = 'x'".to_string(),
        "DROP TABLE events".to_string(),
        format!("COPY (SELECT * FROM events) TO '{}' STORED AS PARQUET", outside.display()),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "CREATE VIEW v AS SELECT * FROM events".to_string(),
        format!("SELECT * FROM '{}/store/manifest'", f.dir.path().display()),
        "SELECT * FROM read_parquet('/etc/passwd')".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
    ];
    for statement in &forbidden {
        let err = f.store.engine().collect(statement).await.expect_err(statement);
        let code = err.code();
        assert!(code == oriel_core::ErrorCode::Forbidden || code == oriel_core::ErrorCode::InvalidInput, "{statement}: {err}");
    }
    assert!(!outside.exists(), "nothing was written outside the store");
    assert_eq!(f.store.stats(), before, "nothing changed inside it");
    assert_eq!(f.count("SELECT count(*) FROM events").await, 1);
    let err = f.store.engine().collect("DELETE FROM events").await.unwrap_err();
    assert_eq!(err.to_string(), "DELETE FROM is not allowed: the SQL interface is read-only");
}
