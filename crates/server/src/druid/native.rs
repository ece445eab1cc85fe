//! `POST /druid/v2`: native JSON queries. The whole answer is built (and bounded by
//! `store.max_result_rows` and `max_result_mb`) before it is sent; `?pretty` indents it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::error::DruidError;
use crate::AppState;

/// Largest native query body (long `in` filters and lookups are legitimately large).
const MAX_BODY_BYTES: usize = 4 << 20;

#[derive(Debug, Deserialize)]
pub(super) struct NativeParams {
    pretty: Option<String>,
}

/// `POST /druid/v2`.
pub(super) async fn native(
    State(state): State<AppState>,
    Query(params): Query<NativeParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match answer(state, params.pretty.is_some(), headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(state: AppState, pretty: bool, headers: HeaderMap, body: Body) -> Result<Response, DruidError> {
    let bytes = crate::body::read(&headers, body, MAX_BODY_BYTES, state.limits().body_read_timeout).await?;
    let query: Value =
        serde_json::from_slice(&bytes).map_err(|e| DruidError::invalid(format!("the body is not a JSON query: {e}")))?;
    let query_id = match query.pointer("/context/queryId") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 256 => id.clone(),
        _ => super::query_id(),
    };
    // Checked here too, for its error message; the store reads it again.
    super::context_timeout(query.pointer("/context/timeout"))?;
    let store = Arc::clone(state.store().ready()?);
    let limit = store.engine().options().max_result_bytes;
    let result = oriel_store::druid::native::execute(Arc::clone(store.engine()), query).await?;
    let text =
        tokio::task::spawn_blocking(
            move || if pretty { serde_json::to_string_pretty(&result) } else { serde_json::to_string(&result) },
        )
        .await
        .map_err(|e| DruidError::from(crate::ApiError::new(oriel_core::ErrorCode::Internal, e.to_string())))?
        .map_err(|e| DruidError::from(crate::ApiError::new(oriel_core::ErrorCode::Internal, e.to_string())))?;
    if text.len() as u64 > limit {
        return Err(oriel_store::Error::TooBig(format!(
            "the answer is larger than {limit} bytes (store.max_result_mb); add a limit or a filter"
        ))
        .into());
    }
    let mut response = (StatusCode::OK, text).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(&query_id) {
        h.insert("x-druid-query-id", id);
    }
    Ok(response)
}
