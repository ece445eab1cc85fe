//! The one place where errors become HTTP responses.
//!
//! Every error has an [`ErrorCode`]; the code decides the status. Client errors (4xx) carry
//! their message and are never logged; a request that could not be served because Oriel is
//! busy, starting or slow (503, 504) carries its message too; any other 5xx is logged once here
//! and the client gets no internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;

/// An error answered to an HTTP client: a status from its [`ErrorCode`] and a short JSON reason.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// A short, lowercase reason that is safe to show the client.
    pub message: String,
}

impl ApiError {
    /// An error of kind `code` with a client-safe `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The status the error is answered with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The message the client may see.
    pub(crate) fn public_message(&self) -> String {
        match self.code {
            code if code.is_client_error() => self.message.clone(),
            // Saying what is not implemented, or why to retry, reveals nothing internal.
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::Unsupported => self.message.clone(),
            _ => "internal error".to_string(),
        }
    }
}

impl From<oriel_collector::Error> for ApiError {
    fn from(error: oriel_collector::Error) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<oriel_store::Error> for ApiError {
    fn from(error: oriel_store::Error) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self.code, ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::Unsupported)
        {
            // Logged once, here; the client gets no internals.
            tracing::error!(code = ?self.code, error = %self.message, "request failed");
        }
        let mut response = (status, Json(serde_json::json!({ "error": self.public_message() }))).into_response();
        let headers = response.headers_mut();
        if self.code == ErrorCode::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.code == ErrorCode::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"oriel\""));
        }
        response
    }
}
