//! `GET /e.gif`: one event from a pixel, answered with a transparent GIF.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_collector::Payload;
use oriel_collector::divolte::PIXEL;

use super::{collector, forwarded_for, request};
use crate::peer::Peer;
use crate::{ApiError, AppState};

fn gif() -> Response {
    let mut response = (StatusCode::OK, PIXEL.as_slice()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, max-age=0"));
    response
}

pub(super) async fn event(
    State(state): State<AppState>,
    Peer(peer): Peer,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = collector(&state)?;
    let forwarded = forwarded_for(&headers);
    let query = query.unwrap_or_default();
    let outcome = c.accept(Payload::Pixel(&query), &request(peer, &headers, &forwarded)).await?;
    Ok(super::with_timing(gif(), &outcome))
}
