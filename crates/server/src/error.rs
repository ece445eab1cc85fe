//! The one place where errors become HTTP responses.

use axum::Json;
use axum::http::StatusCode;
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if self.code.is_client_error() {
            self.message
        } else {
            // Server-side failures are logged once here; the client gets no internals.
            tracing::error!(code = ?self.code, error = %self.message, "request failed");
            match self.code {
                ErrorCode::Unavailable => "service unavailable, retry later".to_string(),
                ErrorCode::Unsupported => self.message,
                _ => "internal error".to_string(),
            }
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if self.code == ErrorCode::Unavailable {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}
