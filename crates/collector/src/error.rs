//! The collector's error type. The HTTP layer (`oriel-server`) turns it into a response
//! through [`Error::code`].

use oriel_core::ErrorCode;

/// Result with the collector's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while collecting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; nothing of it was stored.
    #[error("{0}")]
    BadRequest(String),
    /// A protocol that answers success whatever it receives (Divolte) refused the event; the
    /// reason is counted and logged at debug level, the client gets the usual answer.
    #[error("{0}")]
    Refused(String),
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
            Self::BadRequest(_) | Self::Refused(_) => ErrorCode::InvalidInput,
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
