//! The store through the running binary: freshness, read-only SQL over HTTP, deletion and
//! retention from the command line, restarts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Server, config_file, oriel};

fn send_one(server: &Server, id: &str, party: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/e", server.base))
            .body(crate::tag_batch("fresh", party, None, &[id.to_string()]))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// An acknowledged event shows up in SQL at once (a generous bound; the benchmark measures it).
#[test]
fn an_event_is_queryable_right_after_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let sent = Instant::now();
    assert_eq!(send_one(&server, "fresh-1", "p1"), 204);
    let mut visible = None;
    while sent.elapsed() < Duration::from_secs(10) {
        if server.count("SELECT count(*) FROM events WHERE event_id = 'fresh-1'") == 1 {
            visible = Some(sent.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let visible = visible.expect("the event never became visible");
    println!("visible in SQL {} ms after the collector's answer", visible.as_millis());
}

#[test]
fn sql_over_http_is_read_only_and_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    assert_eq!(send_one(&server, "e1", "p1"), 204);
    server.wait_count("SELECT count(*) FROM events", 1);
    for statement in
        ["DROP TABLE events", "INSERT INTO events SELECT * FROM events", "COPY (SELECT 1) TO '/tmp/oriel-escape.csv'"]
    {
        let (status, body) = server.post("/api/v1/sql", json!({ "query": statement }));
        assert_eq!(status, 400, "{statement}: {body}");
        assert!(body["error"].as_str().unwrap().contains("not allowed: the SQL interface is read-only"), "{body}");
    }
    assert!(!std::path::Path::new("/tmp/oriel-escape.csv").exists());
    let (status, body) = server.post("/api/v1/sql", json!({ "query": "SELECT nope FROM events" }));
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("No field named nope"), "{body}");

    // The command-line client prints a table, CSV or JSON, and one clear line on errors.
    let sql = |args: &[&str]| server.cli().arg("sql").args(args).output().unwrap();
    let out = sql(&["SELECT event_id, site FROM events"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "event_id | site\n---------+------\ne1       | fresh\n(1 row)\n");
    let out = sql(&["SELECT event_id, site FROM events", "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "event_id,site\ne1,fresh\n");
    let out = sql(&["SELECT count(*) AS n FROM events", "--format", "json"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), json!([{ "n": 1 }]));
    let out = sql(&["DELETE FROM events"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: DELETE FROM is not allowed: the SQL interface is read-only (HTTP 400)\n"
    );
    let out = server.cli().args(["sql", "SELECT 1", "--url", "http://127.0.0.1:9"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: cannot reach oriel at http://127.0.0.1:9 (is oriel serve running?)")
    );
}

#[test]
fn delete_a_visitor_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "[store]\nflush_rows = 1000\n");
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    for i in 0..20 {
        assert_eq!(send_one(&server, &format!("e{i}"), if i % 2 == 0 { "gone" } else { "stays" }), 204);
    }
    server.wait_count("SELECT count(*) FROM events", 20);

    // A data-subject access request first: exactly the visitor's events, as JSON lines and as
    // Parquet (read back by DuckDB).
    let out = server.cli().args(["export", "--party", "gone"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut ids: Vec<String> = lines.iter().map(|l| l["event_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..20).step_by(2).map(|i| format!("e{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(lines.iter().all(|l| l["party_id"] == "gone" && l["site"] == "fresh"), "{lines:?}");
    let parquet = dir.path().join("gone.parquet");
    let out = server.cli().args(["export", "--party", "gone", "--format", "parquet", "--out"]).arg(&parquet).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let duck = std::process::Command::new(crate::python())
        .args(["-c", "import duckdb,sys; print(duckdb.sql(f\"SELECT count(*), count(DISTINCT party_id), min(party_id) FROM '{sys.argv[1]}'\").fetchall()[0])"])
        .arg(&parquet)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&duck.stdout).trim(), "(10, 1, 'gone')", "{}", String::from_utf8_lossy(&duck.stderr));

    let out = server.cli().args(["delete", "--party", "gone"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("deleted 10 events of visitor gone (receipt d"), "{said}");
    assert_eq!(server.count("SELECT count(*) FROM events WHERE party_id = 'gone'"), 0);
    assert_eq!(server.count("SELECT count(*) FROM events WHERE party_id = 'stays'"), 10);
    // A signed-in user's events, whichever device (visitor id) sent them.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (i, vid) in ["phone", "laptop", "phone"].iter().enumerate() {
        let body = crate::tag_batch("fresh", vid, Some("u-42"), &[format!("u{i}")]);
        let status = rt
            .block_on(reqwest::Client::new().post(format!("{}/e", server.base)).body(body.to_string()).send())
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
    }
    server.wait_count("SELECT count(*) FROM events", 13);
    let out = server.cli().args(["delete", "--user", "u-42"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deleted 3 events of user u-42 (receipt d"));
    assert_eq!(server.count("SELECT count(*) FROM events WHERE user_id = 'u-42'"), 0);
    let out = server.cli().args(["export", "--user", "u-42"]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "nothing left to export");

    // Each deletion left a receipt: who asked, when, whose events, how many.
    let out = server.cli().args(["deletions", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let receipts: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(receipts.len(), 2, "{receipts:?}");
    assert_eq!((receipts[0]["user_id"].as_str(), receipts[0]["deleted"].as_u64()), (Some("u-42"), Some(3)));
    assert_eq!((receipts[1]["party_id"].as_str(), receipts[1]["deleted"].as_u64()), (Some("gone"), Some(10)));
    assert!(receipts.iter().all(|r| r["requested_by"] == "admin token" && r["requested_at"].is_string()));
    let table = server.cli().arg("deletions").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("visitor gone"), "{}", String::from_utf8_lossy(&table.stdout));
    // Still gone after a restart, although the log still holds the events; and gone from the
    // log's view too.
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));
    let dump = oriel().args(["log", "dump", "--config", &config, "--data-dir", "d"]).current_dir(dir.path()).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dumped = String::from_utf8_lossy(&dump.stdout);
    assert_eq!(dumped.lines().count(), 10, "{dumped}");
    assert!(!dumped.contains("\"gone\"") && !dumped.contains("u-42"), "{dumped}");
    assert_eq!(String::from_utf8_lossy(&dump.stderr), "left out 13 deleted and 0 expired events\n");
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.count("SELECT count(*) FROM events"), 10);
}

#[test]
fn import_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    // Forty days of history, ending now: retention of 30 days keeps about three quarters.
    let generated =
        oriel().args(["gen", "--events", "4000", "--days", "40", "--seed", "5", "--out"]).arg(&file).output().unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let import = oriel().args(["import", "--data-dir", "d"]).arg(&file).current_dir(dir.path()).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    assert!(String::from_utf8_lossy(&import.stderr).contains("imported 4000 events"));
    let config = config_file(dir.path(), "[store]\nretention_days = 30\nhousekeeping_interval_seconds = 1\n");
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let old = server.count("SELECT count(*) FROM events WHERE __time < now() - INTERVAL '31' DAY");
        if old == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{old} events older than the retention period remain");
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = server.count("SELECT count(*) FROM events");
    assert!(left > 2000 && left < 4000, "{left} events left");
}
