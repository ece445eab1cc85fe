//! Integration tests of the server router, driven with `oneshot` (no socket).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oriel_log::MemoryLog;
use oriel_server::{AppState, router};
use tower::ServiceExt;

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let response = router(state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ready_only_after_log_and_collector_are_up() {
    let state = AppState::new(Arc::new(|| "oriel_up 1\n".to_string()), Some("/json".into()), Vec::new());
    assert_eq!(get(&state, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&state, "/e.gif").await.0, StatusCode::SERVICE_UNAVAILABLE, "collector routes wait too");
    let log: Arc<dyn oriel_log::EventLog> = Arc::new(MemoryLog::new(1));
    state.set_log(log.clone());
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    // Everything on disk (the cookieless salt, the store) goes to a temporary data directory.
    let dir = tempfile::tempdir().unwrap();
    let mut config = oriel_core::Config::default();
    config.data_dir = dir.path().to_path_buf();
    let collector = oriel_collector::Collector::new(&config, log.clone(), Arc::new(oriel_core::SystemClock)).unwrap();
    state.collector().set(Arc::new(collector));
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE, "the store is not open yet");
    let store = oriel_store::Store::open(oriel_store::StoreOptions::from_config(&config), Some(log)).await.unwrap();
    state.set_store(store);
    assert_eq!(get(&state, "/readyz").await, (StatusCode::OK, "ready\n".into()));
    assert_eq!(get(&state, "/e.gif?site=a").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_rendered() {
    let state = AppState::new(Arc::new(|| "oriel_up 1\n".to_string()), None, Vec::new());
    assert_eq!(get(&state, "/metrics").await, (StatusCode::OK, "oriel_up 1\n".into()));
}

/// Analytics data: loopback clients are served; anyone else needs a configured bearer token,
/// and a loopback request that a proxy forwarded for someone else counts as someone else.
#[tokio::test]
async fn query_api_needs_loopback_or_a_token() {
    use axum::extract::ConnectInfo;
    const TOKEN: &str = "a-token-of-twenty-chars";
    let sql = |peer: &str, headers: &[(&str, &str)]| {
        let mut request = Request::post("/api/v1/sql").header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::from(r#"{"query":"SELECT 1"}"#)).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
        request
    };
    let status = |state: &AppState, request: Request<Body>| {
        let router = router(state.clone());
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            (status, String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned())
        }
    };
    // No store is open: a request that gets through is answered 503, one that does not 401.
    let open = AppState::new(Arc::new(String::new), None, Vec::new());
    let guarded = AppState::new(Arc::new(String::new), None, vec![TOKEN.to_string()]);
    let through = StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(status(&open, sql("127.0.0.1:5000", &[])).await.0, through);
    assert_eq!(status(&open, sql("[::1]:5000", &[])).await.0, through);
    let (code, body) = status(&open, sql("192.0.2.7:5000", &[])).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body.contains("unless server.api_tokens is configured"), "{body}");
    let (code, _) = status(&open, sql("127.0.0.1:5000", &[("x-forwarded-for", "192.0.2.7")])).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a proxied request is not local");
    assert_eq!(status(&open, sql("127.0.0.1:5000", &[("forwarded", "for=192.0.2.7")])).await.0, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(status(&open, sql("192.0.2.7:5000", &[("authorization", &bearer)])).await.0, StatusCode::UNAUTHORIZED, "no tokens configured");
    assert_eq!(status(&guarded, sql("192.0.2.7:5000", &[])).await.0, StatusCode::UNAUTHORIZED);
    let wrong = format!("Bearer {TOKEN}x");
    assert_eq!(status(&guarded, sql("192.0.2.7:5000", &[("authorization", &wrong)])).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&guarded, sql("192.0.2.7:5000", &[("authorization", &bearer)])).await.0, through);
    let proxied = [("authorization", bearer.as_str()), ("x-forwarded-for", "192.0.2.7")];
    assert_eq!(status(&guarded, sql("127.0.0.1:5000", &proxied)).await.0, through, "a proxied request with the token");
}
