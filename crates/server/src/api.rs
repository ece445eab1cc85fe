//! Oriel's own query API, behind [`crate::auth::require_credential`]:
//!
//! | route | what | role |
//! | --- | --- | --- |
//! | `POST /api/v1/sql` | `{"query": "SELECT …"}` → columns and rows, streamed ([`sql`]) | viewer |
//! | `POST /api/v1/delete` | `{"party_id": …}` or `{"user_id": …}` → how many events went ([`delete`]) | admin |
//! | `GET /api/v1/session` | who the credential signs in | viewer |
//! | `POST /api/v1/signin-links` | a one-time sign-in link for a browser ([`signin`]) | admin |
//!
//! and the public `GET /signin?code=` that trades a one-time code for a session cookie,
//! `POST /api/v1/signin` that trades a user's name and password for one, and
//! `POST /api/v1/signout`.

pub(crate) mod delete;
mod signin;
mod sql;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use crate::AppState;
use crate::auth::Principal;

/// The routes that need a credential.
pub(crate) fn protected() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sql", post(sql::sql))
        .route("/api/v1/delete", post(delete::delete))
        .route("/api/v1/session", get(session))
        .route("/api/v1/signin-links", post(signin::link))
}

/// The public routes of signing in.
pub(crate) fn public() -> Router<AppState> {
    Router::new()
        .route("/signin", get(signin::signin))
        .route("/api/v1/signin", post(signin::password))
        .route("/api/v1/signout", post(signin::signout))
        .route("/", get(signin::home))
}

async fn session(Extension(principal): Extension<Arc<Principal>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": principal.name, "role": principal.role.as_str() }))
}
