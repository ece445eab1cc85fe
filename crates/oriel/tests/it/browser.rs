//! The tags in real headless Chromium against a real `oriel serve`: the Node scripts in
//! `tests/browser` drive the pages and record what they did; after a clean shutdown the events
//! are read back from the log with `oriel log dump` and checked against that record.

use std::process::Command;

use crate::{Server, oriel, repo};

fn node(args: &[&str]) {
    let root = repo();
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "node_modules is missing: run `npm ci` in {} (scripts/test does)",
        root.display()
    );
    let out = Command::new("node").args(args).current_dir(&root).output().expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node {args:?} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

/// Runs `script`'s run phase against a fresh server, then its verify phase against the log.
fn run_browser_suite(script: &str, extra_args: &[&str]) {
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
    node(&["tag/build.mjs", "--check"]);
}
