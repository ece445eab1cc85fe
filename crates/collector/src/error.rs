//! The collector's error type, and how it is answered over HTTP.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;

/// Result with the collector's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while collecting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; nothing of it was stored.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than allowed.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The content type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The site or origin is not accepted.
    #[error("{0}")]
    Forbidden(String),
    /// The write key is missing or wrong.
    #[error("missing or invalid write key")]
    Unauthorized,
    /// The pipeline is full, or the collector is not ready yet; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] oriel_log::Error),
    /// The collector could not be set up (rules, GeoIP database).
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// The kind of failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::InvalidInput,
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Log(e) => e.code(),
            Self::Setup(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if code.is_client_error() || code == ErrorCode::Unavailable {
            self.to_string()
        } else {
            tracing::error!(error = %self, "collector request failed");
            "internal error".to_string()
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if code == ErrorCode::Unavailable {
            response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        if code == ErrorCode::Unauthorized {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}
