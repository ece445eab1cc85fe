//! Signing a browser in: a one-time code becomes a session cookie.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oriel_core::ErrorCode;
use oriel_core::config::Role;
use serde::Deserialize;

use crate::auth::{CODE_SECONDS, Principal, SESSION_COOKIE, SESSION_SECONDS};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(super) struct SigninQuery {
    code: Option<String>,
}

/// `GET /signin?code=…`: sets the session cookie and goes to `/`.
pub(super) async fn signin(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<SigninQuery>) -> Response {
    if !state.auth().host_allowed(&headers, None) {
        return ApiError::new(ErrorCode::Forbidden, "this host name is not one Oriel answers to; add it to server.public_hosts")
            .into_response();
    }
    let Some((cookie, principal)) = query.code.as_deref().and_then(|c| state.auth().redeem(c)) else {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "this sign-in link was used already or has expired; run `oriel signin` for a new one",
        )
        .into_response();
    };
    tracing::info!(who = %principal.name, "signed in a browser");
    // Secure only where the browser reached Oriel over TLS (a proxy says so), or the cookie
    // would never come back over plain http://127.0.0.1.
    let secure = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_SECONDS,
        if secure { "; Secure" } else { "" }
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkRequest {
    #[serde(default)]
    role: Role,
}

/// `POST /api/v1/signin-links`: a fresh one-time code (administrators only).
pub(super) async fn link(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    body: Option<Json<LinkRequest>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    principal.require_admin()?;
    let role = body.map_or(Role::Admin, |Json(r)| r.role);
    let code = state.auth().signin_code(role);
    Ok(Json(
        serde_json::json!({ "path": format!("/signin?code={code}"), "role": role.as_str(), "expires_in_seconds": CODE_SECONDS }),
    ))
}

/// `GET /`: where a signed-in browser lands.
pub(super) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = crate::auth::session_principal(state.auth(), &headers);
    let text = match signed_in {
        Some(p) => format!(
            "Oriel {}: signed in as {} ({}).\nQuery with POST /api/v1/sql {{\"query\": \"SELECT ...\"}} or `oriel sql`.\n",
            env!("CARGO_PKG_VERSION"),
            p.name,
            p.role.as_str()
        ),
        None => format!(
            "Oriel {}: not signed in. Open the sign-in link `oriel serve` printed, or run `oriel signin` for a new one.\n",
            env!("CARGO_PKG_VERSION")
        ),
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}
