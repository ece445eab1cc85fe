//! `POST /api/v1/delete`: every event of a visitor or user, for administrators only.
//!
//! Deletions are rare, expensive (they rewrite segments) and irreversible, so they are
//! rate-limited for the whole process and each one is logged with who asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oriel_core::ErrorCode;
use oriel_store::Selector;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

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
    let deleted = tokio::spawn(async move { store.delete(selector).await })
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("the deletion task failed: {e}")))??;
    tracing::info!(by = %principal.name, selector = by, deleted, "deletion done");
    Ok(Json(json!({ "deleted": deleted })).into_response())
}
