//! Oriel on Kafka: the same server with `[log] type = "kafka"` against a real Kafka-protocol
//! broker (tansu), through a broker outage and a SIGKILL, read back by an independent Kafka
//! client (Python's confluent-kafka).

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oriel_testkit::kafka::{Broker, unique_topic};

use crate::{Server, config_file};

/// What the senders saw: acknowledged ids, ids refused with 503, and 503s without Retry-After.
#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) acked: HashSet<String>,
    pub(crate) refused: HashSet<String>,
    pub(crate) without_retry_after: usize,
}

/// Sends batches of 10 fresh events until `stop`, recording each answer.
fn send(base: &str, ledger: &Mutex<Ledger>, stop: &AtomicBool, phase: &str) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let ids: Vec<String> = (0..10).map(|i| format!("{phase}-{n}-{i}")).collect();
        let body = crate::tag_batch("kafka", &format!("v{}", n % 37), None, &ids);
        n += 1;
        let response = client.post(format!("{base}/e")).body(body).send().unwrap();
        let mut l = ledger.lock().unwrap();
        match response.status().as_u16() {
            204 => l.acked.extend(ids),
            503 => {
                l.without_retry_after += usize::from(response.headers().get("retry-after").is_none());
                l.refused.extend(ids);
                drop(l);
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("the collector answered {other}: {}", response.text().unwrap_or_default()),
        }
    }
}

/// Runs [`send`] on a thread for `phase` until the returned flag is set.
pub(crate) fn sender(base: &str, ledger: &Arc<Mutex<Ledger>>, phase: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (base, ledger, flag, phase) = (base.to_string(), Arc::clone(ledger), Arc::clone(&stop), phase.to_string());
    (stop, std::thread::spawn(move || send(&base, &ledger, &flag, &phase)))
}

/// Every stored event id, asserting none is there twice.
pub(crate) fn stored_once(server: &Server) -> HashSet<String> {
    let rows = server.sql("SELECT event_id FROM events");
    let ids: HashSet<String> = rows.iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), rows.len(), "an event was stored twice");
    ids
}

/// Waits until the store holds at least `n` events and the count stops moving.
pub(crate) fn wait_settled(server: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = -1;
    loop {
        let now = server.count("SELECT count(*) FROM events");
        if now == last && now >= n as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "the store did not catch up with Kafka: {now} events, {n} acknowledged");
        last = now;
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn serve_on_kafka_through_a_broker_outage_and_a_sigkill_exactly_once() {
    let _machine = crate::shared_machine();
    let broker = Broker::new();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_topic("events");
    let config = config_file(
        dir.path(),
        &format!(
            "[log]\ntype = \"kafka\"\n[log.kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\npartitions = 2\n\
             delivery_timeout_ms = 3000\n[store]\nflush_rows = 1000\nflush_interval_seconds = 1\n",
            broker.address
        ),
    );
    let args = ["--config", config.as_str(), "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let mut server = Server::start(dir.path(), &args);
    server.wait_ready();
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    // Events flow; then the broker dies under load, and comes back.
    let (stop, running) = sender(&server.base, &ledger, "before");
    std::thread::sleep(Duration::from_secs(2));
    let acked_before = ledger.lock().unwrap().acked.len();
    broker.stop();
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let refused_in_outage = ledger.lock().unwrap().refused.len();
    let ready_in_outage = server.get("/readyz");
    broker.start();
    let back = Instant::now();
    let acked_at_restart = ledger.lock().unwrap().acked.len();
    while ledger.lock().unwrap().acked.len() < acked_at_restart + 200 {
        assert!(back.elapsed() < Duration::from_secs(60), "the collector did not recover after the broker came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let recovered_after = back.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    running.join().unwrap();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(acked_before > 100, "only {acked_before} events went through before the outage");
    assert!(refused_in_outage > 0, "the collector accepted events while no broker was there");
    assert_eq!(ledger.without_retry_after, 0, "a 503 without Retry-After");
    assert_eq!(ready_in_outage, (503, "event log unreachable\n".to_string()), "/readyz during the outage");
    assert_eq!(server.get("/readyz").0, 200, "/readyz after the outage");

    // Every acknowledged event is stored once; the others are ones the collector refused.
    wait_settled(&server, ledger.acked.len());
    let stored = stored_once(&server);
    let lost: Vec<_> = ledger.acked.iter().filter(|id| !stored.contains(*id)).take(5).collect();
    assert!(lost.is_empty(), "acknowledged events lost: {lost:?}");
    assert!(stored.iter().all(|id| ledger.acked.contains(id) || ledger.refused.contains(id)));

    // A SIGKILL and a restart: the store resumes from its manifest's offsets, exactly once.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start(dir.path(), &args);
    server.wait_ready();
    wait_settled(&server, stored.len());
    assert_eq!(stored_once(&server), stored, "the restart changed what is stored");
    // The broker's state, the produce latency and the consumer lag of each partition.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = server.get("/metrics");
        let lines: Vec<&str> = metrics.lines().collect();
        let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        if has("oriel_log_kafka_broker_up 1")
            && has("oriel_store_ingest_lag_events{partition=\"0\"} 0")
            && has("oriel_store_ingest_lag_events{partition=\"1\"} 0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the Kafka metrics are missing: {metrics}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // An independent client reads the topic: every stored event is a message there, keyed by
    // its visitor, valid against the published JSON Schema.
    assert_eq!(read_topic(&broker, &topic, 2), stored, "the topic and the store hold different events");
    println!(
        "{} events acknowledged, {} refused during a {:?} outage, back {:?} after the broker, {} on the topic and in the store",
        ledger.acked.len(),
        ledger.refused.len(),
        back.duration_since(outage),
        recovered_after,
        stored.len()
    );
}

/// Every event id on `topic` (of `partitions` partitions) as an independent client (Python's
/// confluent-kafka) reads it, asserting each message validates against the published JSON
/// Schema, is keyed by its visitor, and is there once.
pub(crate) fn read_topic(broker: &Broker, topic: &str, partitions: u32) -> HashSet<String> {
    let schema = crate::repo().join("docs/kafka-event.schema.json");
    let script = format!(
        "import json, sys\n\
         from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING\n\
         from jsonschema import Draft202012Validator\n\
         validator = Draft202012Validator(json.load(open(sys.argv[1])))\n\
         c = Consumer({{'bootstrap.servers': '{}', 'group.id': 'check', 'enable.auto.commit': False, \
         'session.timeout.ms': 6000}})\n\
         c.assign([TopicPartition('{topic}', p, OFFSET_BEGINNING) for p in range({partitions})])\n\
         ids, keys, idle = [], 0, 0\n\
         while idle < 20:\n\
         \x20   m = c.poll(0.5)\n\
         \x20   if m is None:\n\
         \x20       idle += 1\n\
         \x20       continue\n\
         \x20   if m.error():\n\
         \x20       sys.exit(str(m.error()))\n\
         \x20   idle = 0\n\
         \x20   event = json.loads(m.value())\n\
         \x20   for error in validator.iter_errors(event):\n\
         \x20       sys.exit(f'message {{m.offset()}} of partition {{m.partition()}}: {{error.message}}')\n\
         \x20   ids.append(event['event_id'])\n\
         \x20   keys += m.key() == event['party_id'].encode()\n\
         print(json.dumps({{'ids': ids, 'keyed': keys}}))\n",
        broker.address
    );
    let output = Command::new(crate::python()).args(["-c", &script]).arg(&schema).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids = read["ids"].as_array().unwrap();
    let on_topic: HashSet<String> = ids.iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(on_topic.len(), ids.len(), "an event is on the topic twice");
    assert_eq!(read["keyed"].as_u64().unwrap() as usize, ids.len(), "a message not keyed by party_id");
    on_topic
}
