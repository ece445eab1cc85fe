//! Oriel's HTTP surface: every route, the one place errors become responses, credentials, and
//! the connection handling that keeps slow or many clients from tying the server up.
//!
//! - [`collect`]: the collector endpoints (public by nature), on top of `oriel-collector`.
//! - [`api`]: Oriel's query API and signing in, behind [`auth`] (a credential is always needed).
//! - `druid`: Apache Druid's HTTP API (SQL, native queries, status), behind [`auth`] too.
//! - [`health`]: `/healthz`, `/readyz`, `/readyz/query`, `/metrics`.
//! - `internal`: what an ingest node serves query nodes (its live events), behind the cluster's
//!   token.
//! - [`error`]: [`ApiError`], the one place where errors become HTTP statuses.
//! - [`state`]: [`AppState`], what every handler can reach, filled in as start-up progresses.
//! - [`listen`]: accepting connections within limits.
//! - [`ui`]: the UI's page and assets, embedded in the binary.
//!
//! The process binds its port before recovery runs, so orchestrators see a live but not yet ready
//! server instead of a refused connection.

pub mod api;
pub mod auth;
mod body;
pub mod collect;
mod druid;
pub mod error;
pub mod health;
mod internal;
pub mod listen;
pub mod peer;
mod rows;
pub mod state;
pub mod ui;

use axum::Router;

pub use auth::Auth;
pub use error::ApiError;
pub use listen::{ConnectionLimits, serve};
pub use state::{About, AppState, HttpLimits, SiteAbout};

/// The router of one process: the routes of its role ([`AppState::role`]).
pub fn router(state: AppState) -> Router {
    let role = state.role();
    let mut router = Router::new().merge(health::routes());
    if role.queries() {
        let protected = api::protected()
            .merge(druid::protected())
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_credential));
        router = router.merge(api::public()).merge(druid::public()).merge(ui::routes()).merge(protected);
    }
    if role.collects() {
        router = router.merge(collect::routes(&state));
    }
    if role == oriel_core::config::NodeRole::Ingest {
        router = router.merge(internal::routes());
    }
    router.with_state(state)
}
