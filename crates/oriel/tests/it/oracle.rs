//! The oracle test: generated traffic goes in through the collector, and dashboard queries give
//! the same answers in Oriel (segments and live buffer) as in DuckDB over the raw events.

use std::process::Command;

use crate::{Server, config_file, oriel, python, repo};

#[test]
fn dashboard_queries_match_duckdb() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let geoip = repo().join("node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb");
    assert!(geoip.exists(), "run npm ci (scripts/test does) for the GeoIP database");
    // Flushes every 4000 events and no timed flush: the first batch of traffic ends up in
    // several segments (all of it at the clean restart), the second stays in the live buffer.
    let config = config_file(
        dir.path(),
        &format!(
            "[collector]\ntrusted_proxies = [\"127.0.0.1\"]\ngeoip_database = {:?}\n\
             [store]\nflush_rows = 4000\nflush_interval_seconds = 86400\nhousekeeping_interval_seconds = 86400\n",
            geoip.display()
        ),
    );
    let args = ["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let send = |server: &Server, events: &str, seed: &str| {
        let generated = oriel().args(["gen", "--events", events, "--seed", seed, "--url", &server.base]).output().unwrap();
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    };
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    send(&server, "25000", "11");
    server.wait_count("SELECT count(*) FROM events", 25_000);
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    send(&server, "3000", "12");
    server.wait_count("SELECT count(*) FROM events", 28_000);
    let (_, metrics) = crate::http_get(&format!("{}/metrics", server.base));
    let gauge = |name: &str| -> f64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
    };
    let (live, segments) = (gauge("oriel_store_live_rows "), gauge("oriel_store_segments "));
    assert!(live == 3000.0 && segments >= 2.0, "the queries should cover segments ({segments}) and live rows ({live})");

    let answers = dir.path().join("oriel.json");
    let script = repo().join("tests/oracle/oracle.py");
    let run = |args: &[&str]| {
        let out = Command::new(python()).arg(&script).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "oracle.py {args:?}:\n{text}");
        println!("{text}");
    };
    run(&["oriel", "--url", &server.base, "--token", &server.token(), "--out", answers.to_str().unwrap()]);
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));
    let dump = oriel().args(["log", "dump", "--data-dir"]).arg(dir.path().join("d")).output().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, &dump.stdout).unwrap();
    run(&["duckdb", "--events", events.to_str().unwrap(), "--oriel", answers.to_str().unwrap()]);
}
