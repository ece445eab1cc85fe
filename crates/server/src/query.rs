//! Oriel's own query API: `POST /api/v1/sql` and `POST /api/v1/delete`.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use oriel_core::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, AppState};

/// The query routes (behind [`crate::auth::require_access`]).
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/sql", post(sql)).route("/api/v1/delete", post(delete))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

/// Largest SQL text accepted.
const MAX_QUERY_BYTES: usize = 256 * 1024;

impl From<oriel_store::Error> for ApiError {
    fn from(error: oriel_store::Error) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

fn store(state: &AppState) -> Result<&std::sync::Arc<oriel_store::Store>, ApiError> {
    state.store().ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "the store is starting"))
}

async fn sql(State(state): State<AppState>, Json(request): Json<SqlRequest>) -> Result<Response, ApiError> {
    if request.query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("queries are limited to {MAX_QUERY_BYTES} bytes")));
    }
    let store = store(&state)?;
    let started = Instant::now();
    let result = store.sql().query(&request.query).await?;
    metrics::histogram!(oriel_store::metrics::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(Json(json!({
        "columns": oriel_store::json::columns(&result),
        "rows": oriel_store::json::rows(&result),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    party_id: Option<String>,
    user_id: Option<String>,
}

async fn delete(State(state): State<AppState>, Json(request): Json<DeleteRequest>) -> Result<Response, ApiError> {
    if request.party_id.is_none() && request.user_id.is_none() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "name a party_id or a user_id"));
    }
    let store = store(&state)?;
    let deleted = store.delete(request.party_id, request.user_id).await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}
