//! `POST /api/v1/events`: events from servers and mobile apps, authorised by a site's write key.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use oriel_collector::Payload;
use oriel_core::ErrorCode;

use super::{collector, forwarded_for, request};
use crate::auth::bearer;
use crate::body::{self, header_str};
use crate::peer::Peer;
use crate::{ApiError, AppState};

pub(super) async fn events(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let c = collector(&state)?;
    let write_key = bearer(&headers);
    if write_key.is_none() {
        return Err(oriel_collector::Error::Unauthorized.into());
    }
    let json = header_str(&headers, axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the events as application/json"));
    }
    let body = body::read(&headers, body, c.limits().max_body_bytes, state.limits().body_read_timeout).await?;
    let forwarded = forwarded_for(&headers);
    let outcome = c.accept(Payload::Api { body: &body, write_key }, &request(peer, &headers, &forwarded)).await?;
    Ok(Json(serde_json::json!({ "accepted": outcome.stored, "dropped": outcome.dropped })).into_response())
}
