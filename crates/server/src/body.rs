//! Reading request bodies: capped before and while reading, and within a deadline.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use oriel_core::ErrorCode;

use crate::ApiError;

/// Reads a body of at most `limit` bytes within `timeout`. A declared larger length is refused
/// before anything is read; a client that sends too slowly is cut off.
pub(crate) async fn read(headers: &HeaderMap, body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(ErrorCode::PayloadTooLarge, format!("request body larger than {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                Err(too_large())
            } else {
                Err(ApiError::new(ErrorCode::InvalidInput, format!("cannot read the body: {e}")))
            }
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Timeout,
            format!("the request body did not arrive within {} s (server.body_read_timeout_ms)", timeout.as_secs_f64()),
        )),
    }
}

/// The first value of header `name`, as text.
pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
