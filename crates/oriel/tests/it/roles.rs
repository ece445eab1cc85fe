//! The roles of a cluster as separate processes on loopback: HTTP events → `oriel collect` → a
//! real Kafka-protocol broker (tansu) → two `oriel ingest` nodes → `oriel query`, through the
//! SIGKILL of an ingest node and its takeover by another process.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oriel_testkit::kafka::{Broker, unique_topic};
use oriel_testkit::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

use crate::Server;
use crate::kafka::{Ledger, read_topic, sender, stored_once, wait_settled};

/// A port of 127.0.0.1 that was free a moment ago: an ingest node must know the URL it
/// advertises before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `oriel ingest` for `partitions` in `root/name`, with its own data directory.
fn ingest(root: &Path, name: &str, partitions: &str) -> Server {
    let port = free_port();
    let dir = node_dir(root, name);
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let args = ["--config", "../cluster.toml", "--listen", listen.as_str(), "--data-dir", "d"];
    let env = [("ORIEL_CLUSTER__PARTITIONS", partitions), ("ORIEL_CLUSTER__ADVERTISE_URL", url.as_str())];
    let server = Server::start_role("ingest", &dir, &args, &env);
    server.wait_ready();
    server
}

/// The rows in a node's live buffer, from its metrics.
fn live_rows(node: &Server) -> f64 {
    let (_, metrics) = node.get("/metrics");
    let line = metrics.lines().find(|l| l.starts_with("oriel_store_live_rows ")).unwrap_or("oriel_store_live_rows 0");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The shared secret of the test clusters.
const TOKEN: &str = "a-cluster-token-of-more-than-32-characters";

/// Writes `root/cluster.toml`: Kafka on `broker`'s `topic` (4 partitions), the collectors'
/// shared salt, the cluster token, two sites; `store` and `cluster` are more lines of those
/// sections, `more` further sections.
fn write_config(root: &Path, broker: &Broker, topic: &str, store: &str, cluster: &str, more: &str) {
    let config = format!(
        "[log]\ntype = \"kafka\"\n[log.kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\npartitions = 4\n\
         [store]\n{store}\n[collector]\nsalt_dir = \"{}\"\n[cluster]\ntoken = \"{TOKEN}\"\n{cluster}\n\
         [[sites]]\nid = \"kafka\"\n[[sites]]\nid = \"same\"\ncookieless = true\n{more}\n",
        broker.address,
        root.join("salts").display(),
    );
    std::fs::write(root.join("cluster.toml"), config).unwrap();
}

/// Lets the sender run 2 s more (past a takeover), stops it, and returns what it recorded,
/// asserting enough went through to test anything.
fn end_load(stop: Arc<AtomicBool>, running: std::thread::JoinHandle<()>, ledger: Arc<Mutex<Ledger>>) -> Ledger {
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    running.join().unwrap();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(ledger.acked.len() > 300, "only {} events went through", ledger.acked.len());
    ledger
}

/// The working directory of node `name`.
fn node_dir(root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn collect_ingest_query_as_processes_exactly_once_through_an_ingest_node_sigkill() {
    let _machine = crate::whole_machine();
    let broker = Broker::new();
    let root = tempfile::tempdir().unwrap();
    let topic = unique_topic("roles");
    let shared = root.path().join("shared");
    let store = "flush_rows = 1000\nflush_interval_seconds = 3600";
    write_config(root.path(), &broker, &topic, store, &format!("store_dir = \"{}\"", shared.display()), "");
    let node = |name: &str| node_dir(root.path(), name);
    let common = ["--config", "../cluster.toml", "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let collect = Server::start_role("collect", &node("collect"), &common, &[]);
    let collect_2 = Server::start_role("collect", &node("collect-2"), &common, &[]);
    collect.wait_ready();
    collect_2.wait_ready();
    let a = ingest(root.path(), "ingest-a", "[0, 1]");
    let b = ingest(root.path(), "ingest-b", "[2, 3]");
    let query = Server::start_role("query", &node("query"), &common, &[]);
    query.wait_ready();

    // Each role serves its own routes only, and the cluster API wants the cluster's token.
    assert_eq!(collect.get("/druid/v2/datasources").0, 404, "a collector answers queries");
    assert_eq!(query.get("/e.gif?site=kafka").0, 404, "a query node collects");
    assert_eq!(b.get("/internal/v1/live").0, 401, "an ingest node serves its live events without the token");
    assert_eq!(b.get("/api/v1/sql").0, 404, "an ingest node answers queries");
    let (status, body) = query.post("/api/v1/delete", serde_json::json!({ "party_id": "p" }));
    assert_eq!(status, 501, "a query node deleted in a store it does not own: {body}");
    assert!(body.to_string().contains("query node"), "{body}");

    // Events flow through the collector; ingest node B is killed mid-segment and another
    // process takes its partitions over from the manifest's offsets.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (stop, running) = sender(&collect.base, &ledger, "roles");
    std::thread::sleep(Duration::from_secs(3));
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Without B, queries still answer, from A and B's persisted segments.
    let partial = query.count("SELECT count(*) FROM events");
    assert!(partial > 0, "the query node answered nothing while an ingest node was down");
    // ... and say that they are partial.
    let (_, answer) = query.post("/api/v1/sql", serde_json::json!({ "query": "SELECT count(*) FROM events" }));
    assert_eq!(answer["caught_up"], false, "an answer without a node's live events claims to be complete: {answer}");
    assert_eq!(query.get("/readyz/query").0, 503, "the query node is query-ready with an ingest node down");
    let b2 = ingest(root.path(), "ingest-b2", "[2, 3]");
    let ledger = end_load(stop, running, ledger);
    assert!(ledger.refused.is_empty(), "the collector refused events with the broker up");

    // The query node sees every acknowledged event once, across both ingest stores: those
    // flushed (every 1000 rows) in segments, the rest only in the nodes' live buffers (the
    // flush interval is an hour).
    wait_settled(&query, ledger.acked.len());
    let stored = stored_once(&query);
    assert_eq!(stored, ledger.acked, "the cluster holds other events than were acknowledged");
    let (_, answer) = query.post("/api/v1/sql", serde_json::json!({ "query": "SELECT count(*) FROM events" }));
    assert_eq!(answer["caught_up"], true, "{answer}");
    let per_store: Vec<_> = ["partitions-0-1", "partitions-2-3"].iter().map(|s| shared.join(s).join("manifest")).collect();
    assert!(per_store.iter().all(|m| m.exists()), "each ingest node commits its own manifest: {per_store:?}");
    for node in [&a, &b2] {
        let live = live_rows(node);
        assert!(live > 0.0, "{} holds no live rows: the test would not see the live path", node.base);
    }
    // Cookieless ids are the same whichever collector a visitor's request reaches: the
    // collectors share the day's salt.
    let client = reqwest::blocking::Client::new();
    for (n, collector) in [&collect, &collect_2].into_iter().enumerate() {
        let body = crate::tag_batch("same", "ignored", None, &[format!("same-visitor-{n}")]);
        let response = client.post(format!("{}/e", collector.base)).header("user-agent", "Same/1.0").body(body).send().unwrap();
        assert_eq!(response.status().as_u16(), 204);
    }
    let ids = "'same-visitor-0', 'same-visitor-1'";
    query.wait_count(&format!("SELECT count(*) FROM events WHERE event_id IN ({ids})"), 2);
    let parties = query.count(&format!("SELECT count(DISTINCT party_id) FROM events WHERE event_id IN ({ids})"));
    assert_eq!(parties, 1, "two collectors gave one visitor two cookieless ids");
    let stored = stored_once(&query);

    // B2's record names A's URL by mistake: A answers for its own store, the query node refuses
    // that answer and reads B2's store from its manifest, so nothing is counted twice.
    let record_path = shared.join("partitions-2-3").join("node.json");
    let record = std::fs::read_to_string(&record_path).unwrap();
    let wrong = record.replace(&b2.base, &a.base);
    assert_ne!(wrong, record, "{record}");
    std::fs::write(&record_path, wrong).unwrap();
    let misdirected = stored_once(&query);
    assert!(misdirected.is_subset(&stored) && misdirected.len() < stored.len(), "a misdirected answer was used");
    std::fs::write(&record_path, &record).unwrap();
    std::thread::sleep(Duration::from_secs(6)); // the query node asks a failed node again after 5 s
    assert_eq!(stored_once(&query), stored);

    // A stops cleanly (persisting its live buffer): the query node reads its part from its
    // manifest and segments, and still counts every event once.
    assert_eq!(a.stop_with(libc::SIGTERM), Some(0));
    assert_eq!(stored_once(&query), stored, "a stopped ingest node's events changed");
    assert!(query.get("/metrics").1.contains("oriel_query_ingest_node_failures_total"), "the missing node is not counted");
    assert_eq!(read_topic(&broker, &topic, 4), stored, "the topic and the cluster hold different events");

    println!("{} events through collect → Kafka → 2 ingest nodes → query; {partial} visible while B was down", stored.len());
}

/// The same roles with the stores in object storage (a real S3-protocol server): ingest nodes
/// commit there, the query node reads segments through its cache, and an outage of the object
/// store during the load and an ingest node's SIGKILL lose and double nothing.
#[test]
fn the_roles_keep_their_stores_in_object_storage_through_its_outage() {
    let _machine = crate::whole_machine();
    let broker = Broker::new();
    let s3 = S3Server::new();
    let root = tempfile::tempdir().unwrap();
    let topic = unique_topic("roles-s3");
    let objects = format!(
        "[object_store]\nurl = \"s3://{BUCKET}/prod\"\nendpoint = \"{}\"\nallow_http = true\n\
         access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\nrequest_timeout_seconds = 2",
        s3.endpoint
    );
    write_config(root.path(), &broker, &topic, "flush_rows = 1000\nflush_interval_seconds = 1", "", &objects);
    let common = ["--config", "../cluster.toml", "--listen", "127.0.0.1:0", "--data-dir", "d"];
    let collect = Server::start_role("collect", &node_dir(root.path(), "collect"), &common, &[]);
    collect.wait_ready();
    let a = ingest(root.path(), "ingest-a", "[0, 1]");
    let mut b = ingest(root.path(), "ingest-b", "[2, 3]");
    let query = Server::start_role("query", &node_dir(root.path(), "query"), &common, &[]);
    query.wait_ready();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (stop, running) = sender(&collect.base, &ledger, "roles-s3");
    std::thread::sleep(Duration::from_secs(2));
    // The object store goes away for a while: flushes (every second) fail and are retried,
    // the events wait in the live buffers and in Kafka.
    s3.stop();
    std::thread::sleep(Duration::from_secs(4));
    s3.start();
    std::thread::sleep(Duration::from_secs(2));
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    // B's successor has a data directory of its own: everything it starts from is in the
    // object store.
    let b2 = ingest(root.path(), "ingest-b2", "[2, 3]");
    let ledger = end_load(stop, running, ledger);

    wait_settled(&query, ledger.acked.len());
    assert_eq!(stored_once(&query), ledger.acked, "the cluster holds other events than were acknowledged");
    let (_, metrics) = a.get("/metrics");
    let failures = metrics.lines().find(|l| l.starts_with("oriel_store_object_store_failures_total ")).unwrap_or_default();
    assert!(!failures.is_empty() && !failures.ends_with(" 0"), "no flush met the outage: {failures:?}");
    for store in ["partitions-0-1", "partitions-2-3"] {
        assert!(
            s3.object(&format!("prod/cluster/{store}/manifest")).is_file(),
            "{store} committed no manifest to the object store"
        );
        assert!(!s3.keys(&format!("prod/cluster/{store}/segments")).is_empty(), "{store} uploaded no segment");
    }
    assert!(!root.path().join("ingest-a/d/store/partitions-0-1/manifest").exists(), "a manifest was committed locally");
    let cached = root.path().join("query/d/cache/partitions-0-1/segments");
    assert!(cached.is_dir(), "the query node read no segment through its cache");

    // A stops cleanly, committing its live buffer: the query node still counts every event once.
    assert_eq!(a.stop_with(libc::SIGTERM), Some(0));
    assert_eq!(stored_once(&query), ledger.acked, "a stopped ingest node's events changed");
    drop(b2);
    println!("{} events through collect → Kafka → 2 ingest nodes on S3 → query, through an S3 outage", ledger.acked.len());
}
