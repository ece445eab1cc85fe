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
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn ready_only_after_the_log_is_recovered() {
    let state = AppState::new(Arc::new(|| "oriel_up 1\n".to_string()));
    assert_eq!(get(&state, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    state.set_log(Arc::new(MemoryLog::new(1)));
    assert_eq!(get(&state, "/readyz").await, (StatusCode::OK, "ready\n".into()));
}

#[tokio::test]
async fn metrics_are_rendered() {
    let state = AppState::new(Arc::new(|| "oriel_up 1\n".to_string()));
    assert_eq!(get(&state, "/metrics").await, (StatusCode::OK, "oriel_up 1\n".into()));
}
