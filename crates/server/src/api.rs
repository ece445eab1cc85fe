//! Oriel's own query API, behind [`crate::auth::require_credential`]:
//!
//! | route | what | role |
//! | --- | --- | --- |
//! | `POST /api/v1/sql` | `{"query": "SELECT …"}` → columns and rows, streamed ([`sql`]) | viewer |
//! | `POST /api/v1/delete` | `{"party_id": …}` or `{"user_id": …}` → how many events went, and the receipt ([`delete`]) | admin |
//! | `GET /api/v1/deletions` | the receipts of past deletions, newest first | admin |
//! | `GET /api/v1/export?party_id=` | every event of one visitor or user, as JSON lines or Parquet ([`export`]) | admin |
//! | `GET /api/v1/session` | who the credential signs in | viewer |
//! | `POST /api/v1/signin-links` | a one-time sign-in link for a browser ([`signin`]) | admin |
//! | `POST /api/v1/query` | a report of the UI's query language ([`report`], `docs/api.md`) | viewer |
//! | `GET /api/v1/live?site=` | server-sent `live` events: visitors now, events per minute, latest page views | viewer |
//! | `GET /api/v1/sites`, `GET /api/v1/dimensions?site=` | what the UI offers to pick | viewer |
//! | `GET /api/v1/data` | "Your data": where and what Oriel holds, for how long | viewer |
//! | `POST /api/v1/analytics/{sessions,funnel,retention,paths}` | product analytics ([`analytics`], `docs/api.md`) | viewer |
//! | `GET /api/v1/goals` | the goals | viewer |
//! | `PUT`, `DELETE /api/v1/goals/{name}` | make, replace or remove a goal | admin |
//!
//! and the public `GET /signin?code=` that trades a one-time code for a session cookie,
//! `POST /api/v1/signin` that trades a user's name and password for one, and
//! `POST /api/v1/signout`.

pub mod analytics;
pub(crate) mod delete;
mod export;
pub(crate) mod report;
mod signin;
mod sql;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};

use crate::AppState;
use crate::auth::Principal;

/// The routes that need a credential.
pub(crate) fn protected() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sql", post(sql::sql))
        .route("/api/v1/delete", post(delete::delete))
        .route("/api/v1/deletions", get(delete::receipts))
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/session", get(session))
        .route("/api/v1/signin-links", post(signin::link))
        .route("/api/v1/query", post(report::query))
        .route("/api/v1/live", get(report::stream))
        .route("/api/v1/sites", get(report::sites))
        .route("/api/v1/dimensions", get(report::dimensions))
        .route("/api/v1/data", get(report::data))
        .route("/api/v1/analytics/sessions", post(analytics::sessions))
        .route("/api/v1/analytics/funnel", post(analytics::funnel))
        .route("/api/v1/analytics/retention", post(analytics::retention))
        .route("/api/v1/analytics/paths", post(analytics::paths))
        .route("/api/v1/goals", get(analytics::goals))
        .route("/api/v1/goals/{name}", put(analytics::put_goal).delete(analytics::delete_goal))
}

/// The public routes of signing in.
pub(crate) fn public() -> Router<AppState> {
    Router::new()
        .route("/signin", get(signin::signin))
        .route("/api/v1/signin", post(signin::password))
        .route("/api/v1/signout", post(signin::signout))
}

async fn session(Extension(principal): Extension<Arc<Principal>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": principal.name, "role": principal.role.as_str() }))
}
