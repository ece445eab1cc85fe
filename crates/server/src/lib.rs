//! Oriel's HTTP surface, assembled into one axum [`Router`].
//!
//! - [`health`]: `/healthz` (the process is up), `/readyz` (recovery finished; traffic may come),
//!   `/metrics` (Prometheus text format).
//! - [`query`]: `POST /api/v1/sql` and `POST /api/v1/delete`, behind [`auth`] (loopback or a
//!   bearer token).
//! - [`error`]: [`ApiError`], the one place where errors become HTTP statuses.
//! - [`state`]: [`AppState`], what every handler can reach, filled in as start-up progresses.
//! - the collector's routes (`oriel-collector`), merged in.
//!
//! The process binds its port before recovery runs, so orchestrators see a live but not yet ready
//! server instead of a refused connection.

pub mod auth;
pub mod error;
pub mod health;
pub mod query;
pub mod state;

use axum::Router;

pub use error::ApiError;
pub use state::AppState;

/// The complete router for one `oriel serve` process.
pub fn router(state: AppState) -> Router {
    let collector = oriel_collector::routes(state.collector().clone(), state.divolte_json_path());
    let protected = query::routes()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_access));
    Router::new().merge(health::routes()).merge(protected).with_state(state).merge(collector)
}
