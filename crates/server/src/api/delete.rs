//! `POST /api/v1/delete`: every event of a visitor or user, for administrators only; and
//! `GET /api/v1/deletions`: the receipts of past deletions.
//!
//! Deletions are rare, expensive (they rewrite segments) and irreversible, so they are
//! rate-limited for the whole process, and each one is logged and leaves a receipt naming who
//! asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oriel_core::ErrorCode;
use oriel_store::Selector;
use oriel_store::receipts::Receipt;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// Deletions accepted per minute.
const PER_MINUTE: usize = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    party_id: Option<String>,
    user_id: Option<String>,
}

/// When the recent deletions of a server started, for the rate limit.
#[derive(Debug, Default)]
pub(crate) struct DeletionLimit(Mutex<Vec<Instant>>);

impl DeletionLimit {
    fn admit(&self) -> Result<(), ApiError> {
        let mut recent = self.0.lock();
        recent.retain(|t| t.elapsed() < Duration::from_secs(60));
        if recent.len() >= PER_MINUTE {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!("at most {PER_MINUTE} deletions a minute; retry shortly"),
            ));
        }
        recent.push(Instant::now());
        Ok(())
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let bytes = crate::body::read(&headers, body, 64 * 1024, state.limits().body_read_timeout).await?;
    let request: DeleteRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(ErrorCode::InvalidInput, format!("the body must be {{\"party_id\": \"…\"}} or {{\"user_id\": \"…\"}}: {e}"))
    })?;
    let selector = Selector { party_id: request.party_id, user_id: request.user_id };
    if selector.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "name a party_id or a user_id"));
    }
    let store = Arc::clone(state.store().ready()?);
    state.deletions().admit()?;
    let by = if selector.party_id.is_some() { "party_id" } else { "user_id" };
    tracing::info!(by = %principal.name, selector = by, "deletion requested");
    // A deletion runs to the end even if the client goes away: stopping halfway would leave
    // some segments rewritten and others not.
    let name = principal.name.clone();
    let receipt = tokio::spawn(async move { store.delete(selector, &name).await })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("the deletion task failed: {e}")))??;
    tracing::info!(by = %principal.name, selector = by, deleted = receipt.deleted, id = %receipt.id, "deletion done");
    Ok(Json(json!({ "deleted": receipt.deleted, "receipt": receipt_json(&receipt) })).into_response())
}

/// A receipt as the API shows it: times as ISO-8601 as well as milliseconds.
fn receipt_json(receipt: &Receipt) -> Value {
    let mut value = serde_json::to_value(receipt).unwrap_or(Value::Null);
    for (ms, iso) in [("requested_at_ms", "requested_at"), ("completed_at_ms", "completed_at")] {
        if let Some(t) = value.get(ms).and_then(Value::as_i64) {
            value[iso] = oriel_store::query::values::iso(t);
        }
    }
    value
}

/// `GET /api/v1/deletions`: every deletion receipt, newest first.
pub(super) async fn receipts(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let store = Arc::clone(state.store().ready()?);
    let receipts = store.receipts().await?;
    Ok(Json(json!({ "deletions": receipts.iter().rev().map(receipt_json).collect::<Vec<_>>() })))
}
