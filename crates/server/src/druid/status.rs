//! The status and metadata endpoints Druid's clients call: `/status` (plywood's version gate,
//! Grafana's health check), `/status/health`, `/druid/v2/datasources` (plywood lists data
//! sources with it, and calls it after every empty answer), `/druid/v2/datasources/{name}`,
//! and the broker's `loadstatus` and `readiness` (Turnilo's readiness probe).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oriel_store::druid::types::{ColumnKind, column_kind};
use oriel_store::druid::{DATASOURCE, DRUID_VERSION};
use oriel_store::schema::events_schema;
use serde_json::json;

use super::error::DruidError;
use crate::AppState;

/// `GET /status`: the version clients check, and memory figures as whole numbers.
pub(super) async fn status() -> Json<serde_json::Value> {
    let rss = resident_bytes();
    Json(json!({
        "version": DRUID_VERSION,
        "modules": [],
        "memory": {"maxMemory": rss, "totalMemory": rss, "freeMemory": 0, "usedMemory": rss, "directMemory": 0},
        "oriel": {"version": env!("CARGO_PKG_VERSION")},
    }))
}

/// The process's resident memory, in bytes (0 where it cannot be read).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// `GET /status/health`: `true` while the process runs.
pub(super) async fn health() -> Json<bool> {
    Json(true)
}

/// `GET /druid/v2/datasources`.
pub(super) async fn datasources() -> Json<Vec<&'static str>> {
    Json(vec![DATASOURCE])
}

/// `GET /druid/v2/datasources/{name}`: its dimensions (every column but `__time`; Oriel keeps
/// events unrolled, so there are no metrics).
pub(super) async fn datasource(Path(name): Path<String>) -> Response {
    if name != DATASOURCE {
        return DruidError::not_found(format!("no datasource {name:?}; Oriel has {DATASOURCE:?}")).into_response();
    }
    let dimensions: Vec<String> = events_schema()
        .fields()
        .iter()
        .filter(|f| f.name() != "__time" && column_kind(f.data_type()) != ColumnKind::Time)
        .map(|f| f.name().clone())
        .collect();
    Json(json!({ "dimensions": dimensions, "metrics": [] })).into_response()
}

/// Whether queries see everything the log held at start (see `/readyz/query`).
async fn caught_up(state: &AppState) -> bool {
    match state.store().get() {
        Some(store) => store.ingest_lag().await.is_ok_and(|lag| lag.caught_up),
        None => false,
    }
}

/// `GET /druid/broker/v1/loadstatus`: whether queries see all data.
pub(super) async fn load_status(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "inventoryInitialized": caught_up(&state).await }))
}

/// `GET /druid/broker/v1/readiness`: 200 once answers are complete, else 503.
pub(super) async fn readiness(State(state): State<AppState>) -> StatusCode {
    if caught_up(&state).await { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}
