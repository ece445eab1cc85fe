//! Signing a browser in: a one-time code, or a user's name and password, becomes a session
//! cookie; signing out clears it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oriel_core::ErrorCode;
use oriel_core::config::Role;
use serde::Deserialize;

use crate::auth::{CODE_SECONDS, Principal, SESSION_COOKIE, SESSION_SECONDS};
use crate::peer::Peer;
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
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    set_cookie(h, &headers, &cookie, SESSION_SECONDS);
    response
}

/// Sets the session cookie to `value` for `max_age` seconds (0 clears it).
fn set_cookie(response: &mut HeaderMap, request: &HeaderMap, value: &str, max_age: i64) {
    // Secure only where the browser reached Oriel over TLS (a proxy says so), or the cookie
    // would never come back over plain http://127.0.0.1.
    let secure = request.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.insert(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordSignin {
    name: String,
    password: String,
}

/// `POST /api/v1/signin` with `{"name", "password"}`: a user of `server.users` signs a browser
/// in; answers who and sets the session cookie. Failures count towards the client's limit.
pub(super) async fn password(State(state): State<AppState>, Peer(peer): Peer, headers: HeaderMap, body: Body) -> Response {
    let auth = state.auth();
    if !auth.host_allowed(&headers, None) {
        return ApiError::new(ErrorCode::Forbidden, "this host name is not one Oriel answers to; add it to server.public_hosts")
            .into_response();
    }
    // A form on another site must not sign a browser in to someone else's account.
    if headers.contains_key(header::ORIGIN) && !crate::auth::same_origin(&headers) {
        return ApiError::new(ErrorCode::Forbidden, "sign in from Oriel's own page (Origin must match Host)").into_response();
    }
    let bytes = match crate::body::read(&headers, body, 8 * 1024, state.limits().body_read_timeout).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let Ok(request) = serde_json::from_slice::<PasswordSignin>(&bytes) else {
        return ApiError::new(ErrorCode::InvalidInput, "the body must be {\"name\": \"…\", \"password\": \"…\"}").into_response();
    };
    let principal = match auth.sign_in(&request.name, &request.password, peer).await {
        Ok(principal) => principal,
        Err(error) => {
            if error.code == ErrorCode::Unauthorized {
                // The name (when it is a valid one), never the password.
                tracing::warn!(%peer, user = %crate::auth::loggable(&request.name), "refused a sign-in");
            }
            return error.into_response();
        }
    };
    let Some(cookie) = auth.session_for(&principal) else {
        return ApiError::new(ErrorCode::Internal, "cannot sign the session").into_response();
    };
    tracing::info!(who = %principal.name, "signed in a browser with a password");
    let mut response = Json(serde_json::json!({ "name": principal.name, "role": principal.role.as_str() })).into_response();
    set_cookie(response.headers_mut(), &headers, &cookie, SESSION_SECONDS);
    response
}

/// `POST /api/v1/signout`: clears the session cookie.
pub(super) async fn signout(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(response.headers_mut(), &headers, "", 0);
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
