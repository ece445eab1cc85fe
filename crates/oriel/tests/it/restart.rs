//! After a SIGKILL under load, the restarted server collects at once but does not pass off a
//! partial store as the truth: `/readyz/query` waits until the store has replayed the log, and
//! every answer before then says it is catching up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Server, config_file};

/// Events that may be durable without having been acknowledged: one batch per sender.
const IN_FLIGHT: i64 = 2 * 100;

fn flood(base: String, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>, worker: u64) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut batch = 0;
    while !stop.load(Ordering::SeqCst) {
        batch += 1;
        let ids: Vec<String> = (0..100).map(|i| format!("w{worker}-{batch}-{i}")).collect();
        let body = crate::tag_batch("s", &format!("v{worker}-{batch}"), None, &ids);
        match client.post(format!("{base}/e")).body(body).send().map(|r| r.status().as_u16()) {
            Ok(204) => {
                acked.fetch_add(100, Ordering::SeqCst);
            }
            // The kill cuts requests off; those were never acknowledged.
            _ => return,
        }
    }
}

#[test]
fn queries_say_when_a_restarted_store_is_still_catching_up() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    // A small live buffer makes the replay pause for flushes, so the catching-up is long
    // enough to be seen.
    let config = config_file(dir.path(), "[store]\nlive_buffer_mb = 16\n");
    let args = ["--config", config.as_str(), "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (base, stop, acked) = (server.base.clone(), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || flood(base, stop, acked, w))
        })
        .collect();
    while acked.load(Ordering::SeqCst) < 120_000 {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed under load: whatever was acknowledged is durable in the log, most of it only there.
    assert_eq!(server.stop_with(libc::SIGKILL), None);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.load(Ordering::SeqCst) as i64;

    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    let mut partial_answers = 0;
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let query_ready = server.get("/readyz/query").0 == 200;
        let response = client
            .post(format!("{}/api/v1/sql", server.base))
            .bearer_auth(server.token())
            .json(&json!({ "query": "SELECT count(*) FROM events" }))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
        let (lag_header, caught_up_header) = (header("oriel-ingest-lag-events"), header("oriel-caught-up"));
        let body: serde_json::Value = response.json().unwrap();
        let count = body["rows"][0][0].as_i64().unwrap();
        let caught_up = body["caught_up"].as_bool().unwrap();
        // The headers say what the body says, for clients that read only headers.
        assert_eq!(caught_up_header, caught_up.to_string());
        assert_eq!(lag_header, body["ingest_lag_events"].to_string());
        if caught_up {
            // Complete: every acknowledged event, plus at most the batches the kill cut off
            // after they became durable but before their answer went out.
            assert!((acked..=acked + IN_FLIGHT).contains(&count), "an answer that claims to be complete is: {count} of {acked}");
        } else {
            assert!(body["ingest_lag_events"].as_u64().unwrap() > 0, "{body}");
            assert!(!query_ready, "/readyz/query said ready while answers were partial");
            partial_answers += 1;
        }
        if query_ready && caught_up {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(partial_answers > 0, "the replay was over before the first query; nothing was shown");
    println!("{acked} events acknowledged; {partial_answers} answers said they were partial before the store caught up");
    let (count, distinct) =
        (server.count("SELECT count(*) FROM events"), server.count("SELECT count(DISTINCT event_id) FROM events"));
    assert_eq!(count, distinct, "exactly once");
    assert!((acked..=acked + IN_FLIGHT).contains(&count), "{count} stored, {acked} acknowledged");
}
