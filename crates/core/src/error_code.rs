//! Error classification shared by all crates.
//!
//! Each crate's error type reports an [`ErrorCode`]; the HTTP layer maps the code to a status in
//! one place, so the same failure gets the same answer on every endpoint.

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request or input is malformed or violates a limit (400).
    InvalidInput,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// Credentials are valid but do not allow this (403).
    Forbidden,
    /// What the request names does not exist (404).
    NotFound,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// The content type is not accepted (415).
    UnsupportedMediaType,
    /// The client sent too many requests, or failed too often; it should wait (429).
    TooManyRequests,
    /// The pipeline is full or shutting down; the client should retry later (503).
    Unavailable,
    /// The operation took too long (504).
    Timeout,
    /// The request asks for something Oriel does not implement (501).
    Unsupported,
    /// A bug or an I/O failure on our side (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status code for this kind of failure.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidInput => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
            Self::Timeout => 504,
            Self::Unsupported => 501,
        }
    }

    /// Whether the failure is the client's (4xx), which is never logged as an error.
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.http_status())
    }
}
