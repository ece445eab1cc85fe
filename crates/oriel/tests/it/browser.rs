//! The tags in real headless Chromium against a real `oriel serve`: the Node scripts in
//! `tests/browser` drive the pages and record what they did; after a clean shutdown the events
//! are read back from the log with `oriel log dump` and checked against that record.

use std::process::Command;

use crate::{Server, oriel, repo};

fn node(args: &[&str]) {
    let root = repo();
    crate::require_browser_tools();
    let out = Command::new("node").args(args).current_dir(&root).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node {args:?} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

/// Runs `script`'s run phase against a fresh server, then its verify phase against the log.
fn run_browser_suite(script: &str, extra_args: &[&str]) {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let events = dir.path().join("events.jsonl");
    let mut args = vec!["--listen", "127.0.0.1:0", "--data-dir", "data"];
    args.extend_from_slice(extra_args);
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    node(&[script, "run", "--collector", &server.base, "--report", report.to_str().unwrap()]);
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));
    let dump = oriel().args(["log", "dump", "--data-dir"]).arg(dir.path().join("data")).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    std::fs::write(&events, &dump.stdout).unwrap();
    node(&[script, "verify", "--events", events.to_str().unwrap(), "--report", report.to_str().unwrap()]);
}

#[test]
fn divolte_js_in_chromium() {
    run_browser_suite("tests/browser/divolte.mjs", &[]);
}

#[test]
fn oriel_js_in_chromium() {
    run_browser_suite("tests/browser/tag.mjs", &[]);
}

/// The committed tag assets are what `tag/build.mjs` makes of the sources, and `oriel.js` is
/// within its 3 KB gzipped budget.
#[test]
fn tag_assets_are_fresh_and_within_budget() {
    let _machine = crate::shared_machine();
    node(&["tag/build.mjs", "--check"]);
}

/// A page view from a real browser shows up in `oriel sql` right after the collector
/// acknowledged it (a generous bound here; the benchmark measures the real number).
#[test]
fn a_browser_page_view_is_visible_in_oriel_sql() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0", "--data-dir", "data"]);
    server.wait_ready();
    crate::require_browser_tools();
    let out =
        Command::new("node").args(["tests/browser/fresh.mjs", "--collector", &server.base]).current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["status"], 204);
    let page_view = seen["pageView"].as_str().unwrap();
    let acked_at = seen["ackedAt"].as_i64().unwrap();
    let query = format!("SELECT count(*) AS n FROM events WHERE page_view_id = '{page_view}' AND event_type = 'pageView'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sql = server.cli().args(["sql", &query, "--format", "csv"]).output().unwrap();
        assert!(sql.status.success(), "{}", String::from_utf8_lossy(&sql.stderr));
        if String::from_utf8_lossy(&sql.stdout) == "n\n1\n" {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            println!("visible in oriel sql {} ms after the collector acknowledged it", now - acked_at);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the page view never reached oriel sql");
    }
}
