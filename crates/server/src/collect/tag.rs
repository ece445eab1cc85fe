//! `GET /oriel.js` and `POST /e`: the tag and its batches.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_collector::Payload;
use serde::Deserialize;

use super::{collector, forwarded_for, request};
use crate::body::{self, header_str};
use crate::peer::Peer;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(super) struct SiteQuery {
    site: Option<String>,
}

pub(super) async fn script(
    State(state): State<AppState>,
    Query(query): Query<SiteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = collector(&state)?.oriel_js(query.site.as_deref())?;
    Ok(super::script(&asset, &headers, "public, max-age=3600"))
}

/// CORS answers carry the page's origin, so the tag can read the status (204, 4xx or 503) and
/// decide whether to retry. They grant nothing else: the write already happened or was refused.
fn with_cors(mut response: Response, origin: Option<&str>) -> Response {
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

pub(super) async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    with_cors(response, header_str(&headers, header::ORIGIN))
}

pub(super) async fn batch(State(state): State<AppState>, Peer(peer): Peer, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let c = collector(&state)?;
        let body = body::read(&headers, body, c.limits().max_body_bytes, state.limits().body_read_timeout).await?;
        let forwarded = forwarded_for(&headers);
        let outcome = c.accept(Payload::Tag(&body), &request(peer, &headers, &forwarded)).await?;
        Ok::<_, ApiError>(super::with_timing(StatusCode::NO_CONTENT.into_response(), &outcome))
    }
    .await;
    with_cors(result.unwrap_or_else(IntoResponse::into_response), header_str(&headers, header::ORIGIN))
}
