//! Errors in Druid's envelope, so Druid's clients read them as they read Druid's.
//!
//! `error` is always a string holding one of Druid's legacy codes (go-druid asserts it is a
//! string and does not retry `SQL parse failed`, `Plan validation failed`, `Unsupported
//! operation`, `Query cancelled` or `Unknown exception`; plywood maps `Query timeout` to a
//! timeout), with `errorMessage`, `errorClass` and `host`, and the newer `errorCode`, `persona`,
//! `category` and `context` beside them.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;
use serde_json::json;

use crate::ApiError;

/// An error answered by a Druid endpoint.
#[derive(Debug, Clone)]
pub(crate) struct DruidError {
    status: StatusCode,
    /// Druid's legacy code.
    error: &'static str,
    message: String,
    class: &'static str,
    code: &'static str,
    category: &'static str,
}

impl DruidError {
    fn new(
        status: u16,
        error: &'static str,
        message: String,
        class: &'static str,
        code: &'static str,
        category: &'static str,
    ) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error,
            message,
            class,
            code,
            category,
        }
    }

    /// A request Oriel does not accept (a bad body, a bad parameter).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "Unknown exception", message.into(), "java.lang.IllegalArgumentException", "invalidInput", "INVALID_INPUT")
    }

    /// Something that does not exist.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "Unknown exception", message.into(), "java.lang.IllegalArgumentException", "notFound", "NOT_FOUND")
    }

    /// A feature Oriel does not implement.
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            501,
            "Unsupported operation",
            message.into(),
            "java.lang.UnsupportedOperationException",
            "unsupported",
            "UNSUPPORTED",
        )
    }
}

const DRUID_EXCEPTION: &str = "org.apache.druid.error.DruidException";

impl From<oriel_store::Error> for DruidError {
    fn from(error: oriel_store::Error) -> Self {
        use oriel_store::Error as E;
        let message = error.to_string();
        match &error {
            E::SqlParse(_) => Self::new(
                400,
                "SQL parse failed",
                message,
                "org.apache.calcite.sql.parser.SqlParseException",
                "invalidInput",
                "INVALID_INPUT",
            ),
            E::InvalidQuery(_) | E::ReadOnly(_) => {
                Self::new(400, "Plan validation failed", message, DRUID_EXCEPTION, "invalidInput", "INVALID_INPUT")
            }
            E::TooBig(_) => Self::new(
                400,
                "Resource limit exceeded",
                message,
                "org.apache.druid.query.ResourceLimitExceededException",
                "resourceLimitExceeded",
                "CAPACITY_EXCEEDED",
            ),
            E::Busy(_) => Self::new(
                429,
                "Query capacity exceeded",
                message,
                "org.apache.druid.query.QueryCapacityExceededException",
                "capacityExceeded",
                "CAPACITY_EXCEEDED",
            ),
            E::Timeout(_) => Self::new(
                504,
                "Query timeout",
                message,
                "java.util.concurrent.TimeoutException",
                "legacyQueryException",
                "TIMEOUT",
            ),
            E::Unsupported(_) => Self::unsupported(message),
            _ => ApiError::from(error).into(),
        }
    }
}

impl From<ApiError> for DruidError {
    fn from(error: ApiError) -> Self {
        let message = error.public_message();
        if error.status().is_server_error() && !matches!(error.code, ErrorCode::Unavailable | ErrorCode::Timeout) {
            // Logged once, here; the client gets no internals.
            tracing::error!(code = ?error.code, error = %error.message, "druid request failed");
        }
        let status = error.status().as_u16();
        match error.code {
            ErrorCode::Unauthorized => {
                Self::new(status, "Unauthorized", message, DRUID_EXCEPTION, "unauthorized", "UNAUTHORIZED")
            }
            ErrorCode::Forbidden => Self::new(status, "Forbidden", message, DRUID_EXCEPTION, "forbidden", "FORBIDDEN"),
            ErrorCode::TooManyRequests => {
                Self::new(status, "Query capacity exceeded", message, DRUID_EXCEPTION, "capacityExceeded", "CAPACITY_EXCEEDED")
            }
            // Not ready yet: a string go-druid does not know, so it retries.
            ErrorCode::Unavailable => {
                Self::new(status, "Service unavailable", message, DRUID_EXCEPTION, "unavailable", "RUNTIME_FAILURE")
            }
            ErrorCode::Timeout => Self::new(
                status,
                "Query timeout",
                message,
                "java.util.concurrent.TimeoutException",
                "legacyQueryException",
                "TIMEOUT",
            ),
            ErrorCode::Unsupported => Self::unsupported(message),
            code if code.is_client_error() => Self::new(
                status,
                "Unknown exception",
                message,
                "java.lang.IllegalArgumentException",
                "invalidInput",
                "INVALID_INPUT",
            ),
            _ => Self::new(status, "Unknown exception", message, DRUID_EXCEPTION, "internal", "RUNTIME_FAILURE"),
        }
    }
}

impl IntoResponse for DruidError {
    fn into_response(self) -> Response {
        let persona = if self.category == "RUNTIME_FAILURE" { "OPERATOR" } else { "USER" };
        let body = json!({
            "error": self.error,
            "errorMessage": self.message,
            "errorClass": self.class,
            "host": null,
            "errorCode": self.code,
            "persona": persona,
            "category": self.category,
            "context": {},
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
