//! `POST /api/v1/sql`: a read-only query, its result streamed as JSON.
//!
//! The answer is `{"ingest_lag_events": N, "caught_up": true, "columns": [...], "rows": [...]}`:
//! how far the store was behind the event log when the query started (also in the
//! `Oriel-Ingest-Lag-Events` and `Oriel-Caught-Up` headers, so a UI can say "catching up"),
//! then the rows as they are produced. An error before the first row is an HTTP error; one
//! after (a limit reached, the time limit, a failure while executing) ends the rows and adds an
//! `"error"` member, since the status line is already sent.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;
use oriel_store::arrow::array::RecordBatch;
use oriel_store::query::values;
use serde::Deserialize;
use serde_json::json;

use crate::rows::{self, RowFormat};
use crate::{ApiError, AppState};

/// Largest SQL text accepted.
const MAX_QUERY_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

pub(super) async fn sql(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = crate::body::read(&headers, body, MAX_QUERY_BYTES + 1024, state.limits().body_read_timeout).await?;
    let request: SqlRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("the body must be {{\"query\": \"SELECT …\"}}: {e}")))?;
    if request.query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("queries are limited to {MAX_QUERY_BYTES} bytes")));
    }
    let store = Arc::clone(state.store().ready()?);
    let lag = store.ingest_lag().await?;
    let mut stream = store.engine().query(&request.query).await?;
    // Wait for the first batch, so an error that shows at once still gets its own status.
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(error)) => return Err(error.into()),
        None => None,
    };
    let head = json!({
        "ingest_lag_events": lag.events,
        "caught_up": lag.caught_up,
        "columns": values::columns(stream.schema()),
    });
    let head = head.to_string();
    // `{"…":…,"columns":[…]` then `,"rows":[` …
    let open = format!("{},\"rows\":[", &head[..head.len() - 1]);
    let body = rows::body(open, first, stream, Arc::new(Rows));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&lag.events.to_string()) {
        h.insert("oriel-ingest-lag-events", v);
    }
    h.insert("oriel-caught-up", HeaderValue::from_static(if lag.caught_up { "true" } else { "false" }));
    Ok(response)
}

/// Oriel's format: the rows as JSON arrays inside `"rows": [...]`; a failure after the first
/// row adds an `"error"` member.
struct Rows;

impl RowFormat for Rows {
    fn rows(&self, batch: &RecordBatch, first: bool, budget: u64) -> Option<String> {
        rows::encode_each(batch, first, budget, ",", |batch, i, out| {
            let row: Vec<serde_json::Value> = batch.columns().iter().map(|c| values::value(c, i)).collect();
            out.push_str(&serde_json::Value::Array(row).to_string());
        })
    }

    fn end(&self) -> String {
        "]}".into()
    }

    fn failed(&self, message: &str) -> Option<String> {
        Some(format!("],\"error\":{}}}", serde_json::Value::String(message.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oriel_store::arrow::array::{ArrayRef, StringArray};

    #[test]
    fn encoding_stops_at_the_byte_budget() {
        let column: ArrayRef = Arc::new(StringArray::from(vec!["x".repeat(100); 50]));
        let batch = RecordBatch::try_from_iter([("s", column)]).unwrap();
        let whole = Rows.rows(&batch, true, u64::MAX).unwrap();
        assert_eq!(whole.matches("],[").count(), 49);
        assert!(Rows.rows(&batch, true, whole.len() as u64).is_some());
        assert!(Rows.rows(&batch, true, 1000).is_none());
    }
}
