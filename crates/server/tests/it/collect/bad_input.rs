//! Every kind of bad input gets its status code, and nothing of it reaches the log.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::{CHROME, Harness, WRITE_KEY, post_e};

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header("user-agent", CHROME).body(Body::empty()).unwrap()
}

fn api(body: &str, key: Option<&str>, content_type: &str) -> Request<Body> {
    let mut r = Request::post("/api/v1/events").header("content-type", content_type);
    if let Some(key) = key {
        r = r.header("authorization", format!("Bearer {key}"));
    }
    r.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn bad_requests_are_refused_and_store_nothing() {
    let h = Harness::new();
    let big = format!(r#"{{"site":"a","ev":[{{"t":"x","p":{{"s":"{}"}}}}]}}"#, "y".repeat(70_000));
    let deep = format!(r#"{{"ev":[{{"t":"x","p":{}1{}}}]}}"#, r#"{"a":"#.repeat(10), "}".repeat(10));
    let many = format!(r#"{{"ev":[{}]}}"#, vec![r#"{"t":"x"}"#; 101].join(","));
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("empty body", post_e(""), StatusCode::BAD_REQUEST, "invalid batch"),
        ("not json", post_e("hello"), StatusCode::BAD_REQUEST, "invalid batch"),
        ("no events", post_e(r#"{"site":"a","ev":[]}"#), StatusCode::BAD_REQUEST, "no events"),
        ("too many events", post_e(&many), StatusCode::BAD_REQUEST, "more than the limit of 100"),
        ("event without type", post_e(r#"{"ev":[{"id":"1"}]}"#), StatusCode::BAD_REQUEST, "missing field `t`"),
        (
            "props not an object",
            post_e(r#"{"ev":[{"t":"x","p":"str"}]}"#),
            StatusCode::BAD_REQUEST,
            "props must be a JSON object",
        ),
        ("props too deep", post_e(&deep), StatusCode::BAD_REQUEST, "nested deeper than 5"),
        (
            "field too long",
            post_e(&format!(r#"{{"ev":[{{"t":"x","ti":"{}"}}]}}"#, "t".repeat(5000))),
            StatusCode::BAD_REQUEST,
            "ev[0].ti is 5000 bytes",
        ),
        ("scroll depth out of range", post_e(r#"{"ev":[{"t":"x","sd":250}]}"#), StatusCode::BAD_REQUEST, "between 0 and 100"),
        ("body over the limit", post_e(&big), StatusCode::PAYLOAD_TOO_LARGE, "larger than 65536"),
        (
            "declared length over the limit",
            Request::post("/e").header("content-length", "99999999").body(Body::from("{}")).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 65536",
        ),
        (
            "origin not allowed for the site",
            Request::post("/e")
                .header("origin", "https://evil.example")
                .body(Body::from(r#"{"site":"shop","ev":[{"t":"x"}]}"#))
                .unwrap(),
            StatusCode::FORBIDDEN,
            "origin https://evil.example may not send events for site",
        ),
        (
            "pixel from a page of another origin",
            Request::get("/e.gif?site=shop").header("referer", "https://evil.example/page").body(Body::empty()).unwrap(),
            StatusCode::FORBIDDEN,
            "origin https://evil.example may not send events for site",
        ),
        ("pixel with bad props", get("/e.gif?site=a&p=%7Bbroken"), StatusCode::BAD_REQUEST, "p is not JSON"),
        ("pixel with bad time", get("/e.gif?site=a&ts=yesterday"), StatusCode::BAD_REQUEST, "ts must be a number"),
        (
            "api without key",
            api(r#"{"events":[{"event_type":"x"}]}"#, None, "application/json"),
            StatusCode::UNAUTHORIZED,
            "write key",
        ),
        (
            "api with wrong key",
            api(r#"{"events":[{"event_type":"x"}]}"#, Some("nope-nope-nope-nope"), "application/json"),
            StatusCode::UNAUTHORIZED,
            "write key",
        ),
        (
            "api not json",
            api(r#"{"events":[{"event_type":"x"}]}"#, Some(WRITE_KEY), "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            "api unknown field",
            api(r#"{"events":[{"event_type":"x","evnt":1}]}"#, Some(WRITE_KEY), "application/json"),
            StatusCode::BAD_REQUEST,
            "unknown field `evnt`",
        ),
        (
            "api bad ip",
            api(r#"{"events":[{"event_type":"x","ip":"300.1.1.1"}]}"#, Some(WRITE_KEY), "application/json"),
            StatusCode::BAD_REQUEST,
            "not an IP address",
        ),
        (
            "divolte json wrong content type",
            Request::post("/json?p=0:k:p")
                .header("content-type", "application/json; charset=utf-8")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content type must be application/json.",
        ),
        (
            "divolte json too large",
            Request::post("/json?p=0:k:p").header("content-type", "application/json").body(Body::from("x".repeat(5000))).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than 4096",
        ),
        (
            "divolte json empty",
            Request::post("/json?p=0:k:p").header("content-type", "application/json").body(Body::empty()).unwrap(),
            StatusCode::BAD_REQUEST,
            "empty body",
        ),
        (
            "divolte json bad party",
            Request::post("/json?p=party").header("content-type", "application/json").body(Body::from("{}")).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid party id",
        ),
        (
            "divolte wrong method",
            Request::post("/csc-event").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP method POST not allowed.",
        ),
    ];
    for (name, request, status, reason) in cases {
        let (got, _, body) = h.send(request).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{name}: {body}");
        assert!(body.contains(reason), "{name}: expected {reason:?} in {body}");
    }
    assert!(h.stored().await.is_empty(), "a refused request stored something");
}

#[tokio::test]
async fn unknown_sites_are_refused_when_configured() {
    let mut config = super::config();
    config.collector.allow_unknown_sites = false;
    let h = Harness::with_config(config);
    let (status, _, body) = h.send(post_e(r#"{"site":"blog","ev":[{"t":"x"}]}"#)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("unknown site"), "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = h.send(post_e(r#"{"site":"shop","ev":[{"t":"x"}]}"#)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.stored().await.len(), 1);
}

/// A log whose appends wait until the test opens the gate, so events stay pending.
#[derive(Debug)]
struct GatedLog {
    inner: oriel_log::MemoryLog,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl oriel_log::EventLog for GatedLog {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn partition_count(&self) -> u32 {
        self.inner.partition_count()
    }
    async fn append(&self, records: Vec<oriel_log::Record>) -> oriel_log::Result<Vec<oriel_log::Position>> {
        let _pass = self.gate.acquire().await.map_err(|_| oriel_log::Error::Closed)?;
        self.inner.append(records).await
    }
    async fn read(&self, p: u32, o: u64, m: usize) -> oriel_log::Result<Vec<oriel_log::StoredRecord>> {
        self.inner.read(p, o, m).await
    }
    async fn wait_for(&self, p: u32, o: u64) -> oriel_log::Result<()> {
        self.inner.wait_for(p, o).await
    }
    async fn offsets(&self, p: u32) -> oriel_log::Result<oriel_log::OffsetRange> {
        self.inner.offsets(p).await
    }
    async fn commit_consumer(&self, c: &str, p: u32, o: u64) -> oriel_log::Result<()> {
        self.inner.commit_consumer(c, p, o).await
    }
    async fn consumer_position(&self, c: &str, p: u32) -> oriel_log::Result<Option<u64>> {
        self.inner.consumer_position(c, p).await
    }
    async fn enforce_retention(&self) -> oriel_log::Result<oriel_log::RetentionReport> {
        self.inner.enforce_retention().await
    }
    fn stored_bytes(&self) -> Option<u64> {
        None
    }
    async fn close(&self) -> oriel_log::Result<()> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn a_full_pipeline_answers_503_with_retry_after() {
    let mut config = super::config();
    config.collector.max_pending_events = 5;
    config.collector.max_events_per_batch = 5;
    let log = std::sync::Arc::new(GatedLog { inner: oriel_log::MemoryLog::new(1), gate: tokio::sync::Semaphore::new(0) });
    let h = std::sync::Arc::new(Harness::with_log(config, log.clone()));
    let five = format!(r#"{{"ev":[{}]}}"#, [r#"{"t":"x"}"#; 5].join(","));
    // Five events wait for the log and fill the pipeline.
    let first = {
        let (h, five) = (h.clone(), five.clone());
        tokio::spawn(async move { h.send(post_e(&five)).await.0 })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (status, headers, body) = h.send(post_e(r#"{"ev":[{"t":"one more"}]}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["retry-after"], "1");
    assert!(String::from_utf8_lossy(&body).contains("at capacity"));
    // Once the log catches up, the waiting request is acknowledged and room is back.
    log.gate.add_permits(10);
    assert_eq!(first.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(h.send(post_e(r#"{"ev":[{"t":"one more"}]}"#)).await.0, StatusCode::NO_CONTENT);
    let stored = h.stored().await;
    assert_eq!(stored.len(), 6, "the refused event was not stored, the others were");
}

/// One collector per fuzz test, shared by its cases: building one compiles the user agent rules.
/// (The two tests run in parallel, and the query one stores events.)
static FUZZ_BODIES: std::sync::LazyLock<Harness> = std::sync::LazyLock::new(Harness::new);
static FUZZ_QUERIES: std::sync::LazyLock<Harness> = std::sync::LazyLock::new(Harness::new);

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]

    /// A bounded fuzz pass over the whole request path: arbitrary bodies never cause a 5xx, and
    /// whatever is refused stores nothing.
    #[test]
    fn arbitrary_bodies_never_fail_the_server(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let before = FUZZ_BODIES.stored().await.len();
            let request = Request::post("/e").body(Body::from(body)).unwrap();
            let (status, _, _) = FUZZ_BODIES.send(request).await;
            assert!(status.is_client_error() || status == StatusCode::NO_CONTENT, "{status}");
            if status.is_client_error() {
                assert_eq!(FUZZ_BODIES.stored().await.len(), before);
            }
        });
    }

    /// The same for the pixel and Divolte query strings.
    #[test]
    fn arbitrary_queries_never_fail_the_server(query in "[a-z0-9=&%+~!().:_-]{0,300}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for path in ["/e.gif", "/csc-event"] {
                let request = Request::get(format!("{path}?{query}")).body(Body::empty()).unwrap();
                let (status, _, _) = FUZZ_QUERIES.send(request).await;
                assert!(status.is_client_error() || status == StatusCode::OK, "{path}: {status}");
            }
        });
    }
}
