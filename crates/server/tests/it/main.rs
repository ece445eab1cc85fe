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
