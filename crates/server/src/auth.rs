//! Who may read analytics data: loopback clients that are not a proxy's forwarded requests
//! always, others only with a configured token.
//!
//! The collector endpoints are public by nature and are not behind this check; everything that
//! returns stored events (SQL, deletion, the UI's APIs) is.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;

use crate::{ApiError, AppState};

/// Middleware: lets the request through when it comes from loopback or carries a valid token.
pub async fn require_access(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    // Without connect info the router runs in-process (tests), which is as local as loopback.
    let local = peer.is_none_or(|ip| ip.is_loopback() || ip.to_canonical().is_loopback());
    // A reverse proxy on the same host connects from loopback on behalf of anyone: a request
    // that names a client it was forwarded for is not a local one.
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| request.headers().contains_key(*h));
    if local && !forwarded {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let tokens = state.api_tokens();
    if tokens.is_empty() {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "analytics data is only served to loopback clients (not through a proxy) unless server.api_tokens is configured",
        )
        .into_response();
    }
    match token {
        Some(t) if tokens.iter().any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) => next.run(request).await,
        _ => ApiError::new(ErrorCode::Unauthorized, "missing or invalid bearer token").into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
