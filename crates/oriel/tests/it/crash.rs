//! Exactly once through crashes: the collector acknowledges events under load while the server
//! is killed with SIGKILL at random moments and right after flushes and compactions begin.
//! After the last restart every acknowledged event is there once, and nothing is there twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::{Server, config_file};

const KILLS: usize = 12;
const SENDERS: usize = 4;
const BATCH: usize = 20;
/// The store's debug lines bracket each flush and compaction.
const LOG_FILTER: &str = "info,oriel_store=debug";
const FLUSH: (&str, &str) = ("flushing the live buffer", "flushed the live buffer");
const COMPACTION: (&str, &str) = ("compacting a time partition", "compacted a time partition");

#[derive(Default)]
struct Ledger {
    acked: HashSet<String>,
    in_flight: HashSet<String>,
}

/// Sends batches with fresh event ids until `stop`; records what was acknowledged and what was
/// in flight when the server died (those may or may not have been stored).
async fn load(base: String, ledger: Arc<Mutex<Ledger>>, sender: usize, round: usize, stop: Arc<std::sync::atomic::AtomicBool>) {
    let client = reqwest::Client::new();
    let mut n = 0usize;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let ids: Vec<String> = (0..BATCH).map(|i| format!("r{round}-s{sender}-{n}-{i}")).collect();
        n += 1;
        ledger.lock().unwrap().in_flight.extend(ids.iter().cloned());
        let body = crate::tag_batch("crash", &format!("v{sender}-{}", n % 50), None, &ids);
        match client.post(format!("{base}/e")).body(body).send().await {
            Ok(r) if r.status().as_u16() == 204 => {
                let mut l = ledger.lock().unwrap();
                for id in ids {
                    l.in_flight.remove(&id);
                    l.acked.insert(id);
                }
            }
            // 503 (full, or starting) means not stored: forget the ids.
            Ok(r) if r.status().as_u16() == 503 => {
                {
                    let mut l = ledger.lock().unwrap();
                    for id in &ids {
                        l.in_flight.remove(id);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The connection died with the server: the batch stays "in flight", unknown.
            _ => return,
        }
    }
}

#[test]
fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    // Flush and compact as often as allowed, so kills land in the middle of both.
    let config = config_file(
        dir.path(),
        "[store]\nflush_rows = 1000\nflush_interval_seconds = 1\ncompaction_min_segments = 2\nhousekeeping_interval_seconds = 1\n",
    );
    let args = ["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let seed: u64 = rand::rng().random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Restarts that found segment files without a manifest: kills that landed inside a flush or
    // a compaction, after its files were written and before its manifest was committed.
    let mut orphans_found = 0;
    // Kills that struck between a flush's (or a compaction's) start line and its end line.
    let (mut in_flush, mut in_compaction) = (0, 0);
    for round in 0..KILLS {
        let mut server = Server::start_logging(dir.path(), &args, LOG_FILTER);
        server.wait_ready();
        let mut lines = Vec::new();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let senders: Vec<_> =
            (0..SENDERS).map(|s| rt.spawn(load(server.base.clone(), Arc::clone(&ledger), s, round, Arc::clone(&stop)))).collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(700..2500)));
        // Every third kill lands anywhere; the others right after a flush or a compaction began.
        let aim = [None, Some(FLUSH), Some(COMPACTION)][round % 3];
        lines.extend(std::iter::from_fn(|| server.stderr.try_recv().ok()));
        if let Some((start, _)) = aim {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !lines.last().is_some_and(|l: &String| l.contains(start)) {
                let left = deadline.saturating_duration_since(Instant::now());
                lines.push(server.stderr.recv_timeout(left).unwrap_or_else(|_| panic!("no `{start}` within 20 s")));
            }
        }
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in senders {
            rt.block_on(s).unwrap();
        }
        // The reader thread ends at the pipe's end: then every line the server wrote is here.
        lines.extend(std::iter::from_fn(|| server.stderr.recv_timeout(Duration::from_secs(5)).ok()));
        orphans_found += usize::from(lines.iter().any(|l| l.contains("the manifest does not list")));
        in_flush += usize::from(struck_inside(&lines, FLUSH));
        in_compaction += usize::from(struck_inside(&lines, COMPACTION));
    }

    let server = Server::start_logging(dir.path(), &args, LOG_FILTER);
    server.wait_ready();
    orphans_found +=
        usize::from(std::iter::from_fn(|| server.stderr.try_recv().ok()).any(|l| l.contains("the manifest does not list")));
    assert!(in_flush > 0 && in_compaction > 0, "kills inside a flush: {in_flush}, inside a compaction: {in_compaction}");
    let ledger = ledger.lock().unwrap();
    let acked = ledger.acked.len() as i64;
    assert!(acked > 1000, "the load should have got {acked} events through");
    // Wait until replay has caught up with the log: the count stops changing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = -1;
    loop {
        let now = server.count("SELECT count(*) FROM events");
        if now == last && now >= acked {
            break;
        }
        assert!(Instant::now() < deadline, "replay did not catch up: {now} events, {acked} acknowledged");
        last = now;
        std::thread::sleep(Duration::from_millis(500));
    }
    let rows = server.sql("SELECT event_id FROM events");
    let stored: Vec<String> = rows.iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "an event was stored twice");
    let missing: Vec<&String> = ledger.acked.iter().filter(|id| !unique.contains(id)).take(5).collect();
    assert!(missing.is_empty(), "acknowledged events lost: {missing:?}");
    // The only other events are ones whose answer the kill cut off.
    let unknown = stored.iter().filter(|id| !ledger.acked.contains(*id)).count();
    assert!(stored.iter().all(|id| ledger.acked.contains(id) || ledger.in_flight.contains(id)));
    let counts = server.sql("SELECT count(*), count(DISTINCT event_id) FROM events");
    let n = acked + unknown as i64;
    assert_eq!(counts[0], serde_json::json!([n, n]));
    println!(
        "{acked} acknowledged + {unknown} cut off by a kill but durable = {n} events, each exactly once, over {KILLS} kills: \
         {in_flush} inside a flush, {in_compaction} inside a compaction, {orphans_found} restarts found unlisted segment files"
    );
}

/// Whether the last `(start, end)` bracket in `lines` was opened and never closed: the kill
/// struck inside it.
fn struck_inside(lines: &[String], (start, end): (&str, &str)) -> bool {
    let last = |marker: &str| lines.iter().rposition(|l| l.contains(marker));
    match (last(start), last(end)) {
        (Some(s), Some(e)) => s > e,
        (Some(_), None) => true,
        _ => false,
    }
}
