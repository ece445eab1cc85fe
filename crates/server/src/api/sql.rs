//! `POST /api/v1/sql`: a read-only query, its result streamed as JSON.
//!
//! The answer is `{"ingest_lag_events": N, "caught_up": true, "columns": [...], "rows": [...]}`:
//! how far the store was behind the event log when the query started (also in the
//! `Oriel-Ingest-Lag-Events` and `Oriel-Caught-Up` headers, so a UI can say "catching up"),
//! then the rows as they are produced. An error before the first row is an HTTP error; one
//! after (a limit reached, the time limit, a failure while executing) ends the rows and adds an
//! `"error"` member, since the status line is already sent.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use oriel_core::ErrorCode;
use oriel_store::QueryStream;
use oriel_store::arrow::array::RecordBatch;
use oriel_store::query::values;
use serde::Deserialize;
use serde_json::json;

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
    let body = encode(open, first, stream);
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&lag.events.to_string()) {
        h.insert("oriel-ingest-lag-events", v);
    }
    h.insert("oriel-caught-up", HeaderValue::from_static(if lag.caught_up { "true" } else { "false" }));
    Ok(response)
}

/// A batch's rows as JSON arrays, comma-separated (`first` when no row was written before);
/// `None` as soon as the text would pass `budget` bytes, so one batch of huge values is never
/// encoded whole past the result limit.
fn encode_rows(batch: &RecordBatch, first: bool, budget: u64) -> Option<String> {
    let mut out = String::new();
    for (i, row) in values::rows_of(batch).enumerate() {
        if i > 0 || !first {
            out.push(',');
        }
        out.push_str(&row.to_string());
        if out.len() as u64 > budget {
            return None;
        }
    }
    Some(out)
}

/// The text that ends the rows with an error, once the status line is sent.
fn closing_error(message: &str) -> String {
    format!("],\"error\":{}}}", serde_json::Value::String(message.to_string()))
}

/// The rows of `first` and then of `rest`, as JSON text chunks, within the result byte limit.
fn encode(
    open: String,
    first: Option<RecordBatch>,
    rest: QueryStream,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct Encoder {
        rest: QueryStream,
        pending: Option<RecordBatch>,
        written: u64,
        rows: u64,
        done: bool,
    }
    let limit = rest.max_result_bytes();
    let start = Encoder { rest, pending: first, written: open.len() as u64, rows: 0, done: false };
    stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(open)) }).chain(stream::unfold(
        start,
        move |mut e| async move {
            if e.done {
                return None;
            }
            let batch = match e.pending.take() {
                Some(batch) => Ok(batch),
                None => match e.rest.next().await {
                    Some(batch) => batch,
                    None => {
                        e.done = true;
                        return Some((Ok(Bytes::from_static(b"]}")), e));
                    }
                },
            };
            let chunk = match batch {
                Ok(batch) => {
                    let first = e.rows == 0;
                    e.rows += batch.num_rows() as u64;
                    let budget = limit.saturating_sub(e.written);
                    // Encoding thousands of rows is CPU work that must not hold up the threads
                    // answering the collector and /healthz.
                    match tokio::task::spawn_blocking(move || encode_rows(&batch, first, budget)).await {
                        Ok(Some(out)) => {
                            e.written += out.len() as u64;
                            out
                        }
                        Ok(None) => {
                            e.done = true;
                            let message = format!(
                                "the result is larger than {limit} bytes (store.max_result_mb); add a LIMIT or aggregate"
                            );
                            tracing::debug!(%message, "query result cut off");
                            closing_error(&message)
                        }
                        Err(error) => {
                            e.done = true;
                            tracing::error!(%error, "encoding a query result failed");
                            closing_error("encoding the result failed on the server; see its log")
                        }
                    }
                }
                Err(error) => {
                    e.done = true;
                    closing_error(&ApiError::from(error).public_message())
                }
            };
            Some((Ok(Bytes::from(chunk)), e))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oriel_store::arrow::array::{ArrayRef, StringArray};

    #[test]
    fn encoding_stops_at_the_byte_budget() {
        let column: ArrayRef = Arc::new(StringArray::from(vec!["x".repeat(100); 50]));
        let batch = RecordBatch::try_from_iter([("s", column)]).unwrap();
        let whole = encode_rows(&batch, true, u64::MAX).unwrap();
        assert_eq!(whole.matches("],[").count(), 49);
        assert!(encode_rows(&batch, true, whole.len() as u64).is_some());
        assert!(encode_rows(&batch, true, 1000).is_none());
    }
}
