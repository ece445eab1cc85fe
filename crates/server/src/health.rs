//! Liveness, readiness and metrics endpoints.
//!
//! `/readyz` says the process does its role ([`AppState::is_ready`]): where it collects, an event
//! sent now is accepted (so not while a Kafka log's brokers are unreachable); where it ingests or
//! queries, its store is open. Queries may still be catching up after a restart (the store
//! replays the log); `/readyz/query` says when answers are complete, that is when the store has
//! ingested everything the log held when it opened.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// `/healthz`, `/readyz`, `/readyz/query` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/readyz/query", get(readyz_query))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "recovering\n")
    } else if state.log().get().is_some_and(|log| !log.accepting()) {
        // A load balancer should send events to a collector that can make them durable.
        (StatusCode::SERVICE_UNAVAILABLE, "event log unreachable\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn readyz_query(State(state): State<AppState>) -> impl IntoResponse {
    let Some(store) = state.store().get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "store starting\n".to_string());
    };
    match store.ingest_lag().await {
        Ok(lag) if lag.caught_up => (StatusCode::OK, "ready\n".to_string()),
        Ok(lag) => (StatusCode::SERVICE_UNAVAILABLE, format!("catching up: {} events to ingest\n", lag.events)),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("cannot tell: {error}\n")),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.render_metrics())
}
