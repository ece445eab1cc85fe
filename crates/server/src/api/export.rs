//! `GET /api/v1/export?party_id=…` (or `user_id=…`, `format=jsonl|parquet`): every event of one
//! visitor or user as a file, for data-subject access requests; administrators only.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;
use oriel_store::Selector;
use oriel_store::export::ExportFormat;
use serde::Deserialize;

use crate::auth::Principal;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    party_id: Option<String>,
    user_id: Option<String>,
    format: Option<String>,
}

pub(super) async fn export(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let format: ExportFormat = query.format.as_deref().unwrap_or("jsonl").parse()?;
    let selector = Selector { party_id: query.party_id, user_id: query.user_id };
    if selector.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidInput, "name the visitor with ?party_id= or the user with ?user_id="));
    }
    let store = Arc::clone(state.store().ready()?);
    tracing::info!(by = %principal.name, "export of one visitor's events requested");
    let bytes = store.export(&selector, format).await?;
    let name = format!("oriel-export.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
