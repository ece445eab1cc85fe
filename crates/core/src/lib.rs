//! Oriel's shared vocabulary, used by every other crate.
//!
//! - [`event`]: the [`Event`] record (datasource `events`) as it travels from the collector through
//!   the event log into the store, and the column list that the store turns into its schema.
//! - [`config`]: the whole configuration tree, loaded from TOML plus `ORIEL_*` environment
//!   overrides and validated before anything starts.
//! - [`clock`]: injected time, so flushing, retention and sessions can be tested with a mock clock.
//! - [`error_code`]: the error classification that the HTTP layer maps to status codes.
//! - [`durable`]: atomic, fsynced file writes and the data-directory lock.
//! - [`secret`]: constant-time comparison of tokens and keys.

pub mod clock;
pub mod config;
pub mod durable;
mod error_code;
pub mod event;
pub mod secret;

pub use clock::{Clock, MockClock, SystemClock};
pub use config::{Config, ConfigError};
pub use error_code::ErrorCode;
pub use event::{Event, EventSource};
