//! Integration tests of the server router, driven with `oneshot` (no socket).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Tests may unwrap and print (STYLE.md 5).

mod auth;
mod collect;
mod connections;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oriel_core::Config;
use oriel_log::MemoryLog;
use oriel_server::{AppState, Auth, HttpLimits, router};
use tower::ServiceExt;

/// A state whose credentials live in `dir`.
pub(crate) fn state_in(dir: &Path, config: &Config) -> AppState {
    let auth = Auth::load_or_create(dir, &config.server).unwrap();
    AppState::new(
        Arc::new(|| "oriel_up 1\n".to_string()),
        Some(config.collector.divolte.json_path.clone()),
        auth,
        HttpLimits::default(),
    )
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let response = router(state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ready_only_after_log_collector_and_store_are_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let state = state_in(dir.path(), &config);
    assert_eq!(get(&state, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&state, "/readyz/query").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&state, "/e.gif").await.0, StatusCode::SERVICE_UNAVAILABLE, "collector routes wait too");
    let log: Arc<dyn oriel_log::EventLog> = Arc::new(MemoryLog::new(1));
    state.log().set(log.clone());
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let collector = oriel_collector::Collector::new(&config, log.clone(), Arc::new(oriel_core::SystemClock)).unwrap();
    state.collector().set(Arc::new(collector));
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE, "the store is not open yet");
    let store = oriel_store::Store::open(oriel_store::StoreOptions::from_config(&config), Some(log)).await.unwrap();
    state.store().set(store);
    assert_eq!(get(&state, "/readyz").await, (StatusCode::OK, "ready\n".into()));
    assert_eq!(get(&state, "/readyz/query").await, (StatusCode::OK, "ready\n".into()));
    assert_eq!(get(&state, "/e.gif?site=a").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_in(dir.path(), &Config::default());
    assert_eq!(get(&state, "/metrics").await, (StatusCode::OK, "oriel_up 1\n".into()));
}
