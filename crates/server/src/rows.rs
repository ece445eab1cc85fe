//! Streaming a query's rows into a response body, in any text format, within the result byte
//! limit (`store.max_result_mb`).
//!
//! Rows are encoded batch by batch on blocking threads (encoding thousands of rows is CPU work
//! that must not hold up the threads answering the collector and `/healthz`), and a batch is
//! encoded only up to the bytes left, so one batch of huge values is never built whole past the
//! limit. A failure after the status line went out (a limit, the time limit, an error while
//! executing) ends the body the way the format says: with an error member, or cut off.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use futures::stream::{self, StreamExt};
use oriel_store::QueryStream;
use oriel_store::arrow::array::RecordBatch;

use crate::ApiError;

/// How one response format writes rows.
pub(crate) trait RowFormat: Send + Sync + 'static {
    /// The rows of `batch` as text (`first`: no row was written before it); `None` as soon as
    /// the text would pass `budget` bytes.
    fn rows(&self, batch: &RecordBatch, first: bool, budget: u64) -> Option<String>;
    /// What ends a complete body.
    fn end(&self) -> String;
    /// What ends a body cut short by `message`; `None` cuts it off, so the client sees a
    /// truncated answer.
    fn failed(&self, message: &str) -> Option<String>;
}

/// Encodes rows one at a time, separated by `separator` (after the first), until `budget`.
pub(crate) fn encode_each(
    batch: &RecordBatch,
    first: bool,
    budget: u64,
    separator: &str,
    mut row: impl FnMut(&RecordBatch, usize, &mut String),
) -> Option<String> {
    let mut out = String::new();
    for i in 0..batch.num_rows() {
        if i > 0 || !first {
            out.push_str(separator);
        }
        row(batch, i, &mut out);
        if out.len() as u64 > budget {
            return None;
        }
    }
    Some(out)
}

/// A body of `open`, then the rows of `first` and of `rest` in `format`.
pub(crate) fn body(open: String, first: Option<RecordBatch>, rest: QueryStream, format: Arc<dyn RowFormat>) -> Body {
    struct Encoder {
        rest: QueryStream,
        pending: Option<RecordBatch>,
        written: u64,
        rows: u64,
        done: bool,
        format: Arc<dyn RowFormat>,
    }
    let limit = rest.max_result_bytes();
    let start = Encoder { rest, pending: first, written: open.len() as u64, rows: 0, done: false, format };
    let chunks = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(open)) }).chain(stream::unfold(
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
                        return Some((Ok(Bytes::from(e.format.end())), e));
                    }
                },
            };
            let failure = match batch {
                Ok(batch) => {
                    let first = e.rows == 0;
                    e.rows += batch.num_rows() as u64;
                    let budget = limit.saturating_sub(e.written);
                    let format = Arc::clone(&e.format);
                    match tokio::task::spawn_blocking(move || format.rows(&batch, first, budget)).await {
                        Ok(Some(out)) => {
                            e.written += out.len() as u64;
                            return Some((Ok(Bytes::from(out)), e));
                        }
                        Ok(None) => {
                            format!("the result is larger than {limit} bytes (store.max_result_mb); add a LIMIT or aggregate")
                        }
                        Err(error) => {
                            tracing::error!(%error, "encoding a query result failed");
                            "encoding the result failed on the server; see its log".to_string()
                        }
                    }
                }
                Err(error) => ApiError::from(error).public_message(),
            };
            e.done = true;
            tracing::debug!(%failure, "query result cut off");
            match e.format.failed(&failure) {
                Some(text) => Some((Ok(Bytes::from(text)), e)),
                None => Some((Err(std::io::Error::other(failure)), e)),
            }
        },
    ));
    Body::from_stream(chunks)
}
