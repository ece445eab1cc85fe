//! The Divolte Collector protocol: `GET /divolte.js`, `GET /csc-event`, `POST /json?p=`.
//!
//! Divolte answers the pixel (or 204) whatever an event held, so a refused event is counted by
//! the collector and answered like a stored one; only errors of the pipeline itself (503 while
//! full) and of the request as a whole (content type, missing party) get other answers.

use axum::body::Body;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use oriel_collector::divolte::{PIXEL, PIXEL_ETAG};
use oriel_collector::metrics::rejected;
use oriel_collector::{Error, Payload};
use oriel_core::ErrorCode;
use serde::Deserialize;

use super::{collector, forwarded_for, request};
use crate::body;
use crate::peer::Peer;
use crate::{ApiError, AppState};

/// Divolte answers other methods with 405, `Allow` and a sentence.
pub(super) fn only(allowed: Method, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(move |method: Method| async move {
        let mut response = (StatusCode::METHOD_NOT_ALLOWED, format!("HTTP method {method} not allowed.")).into_response();
        if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        server_header(response)
    })
}

fn server_header(mut response: Response) -> Response {
    response.headers_mut().insert(header::SERVER, HeaderValue::from_static("divolte"));
    response
}

pub(super) async fn script(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = collector(&state)?;
    Ok(server_header(super::script(c.divolte_js(), &headers, "public, max-age=3600")))
}

/// What a stored or refused event is answered with: `ok` unless the pipeline itself failed.
fn answered(result: Result<oriel_collector::Outcome, Error>, ok: Response) -> Result<Response, ApiError> {
    match result {
        Ok(_) | Err(Error::Refused(_)) => Ok(ok),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn event(
    State(state): State<AppState>,
    Peer(peer): Peer,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = collector(&state)?;
    let revalidation = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == PIXEL_ETAG));
    if revalidation {
        // A browser revalidating a cached pixel: the event was already sent once.
        rejected("divolte", "revalidation");
        return Ok(pixel(StatusCode::NOT_MODIFIED));
    }
    let query = query.unwrap_or_default();
    let forwarded = forwarded_for(&headers);
    let result = c.accept(Payload::DivolteEvent(&query), &request(peer, &headers, &forwarded)).await;
    answered(result, pixel(StatusCode::OK))
}

fn pixel(status: StatusCode) -> Response {
    let mut response = if status == StatusCode::OK { (status, PIXEL.as_slice()).into_response() } else { status.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::ETAG, HeaderValue::from_static(PIXEL_ETAG));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache, proxy-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("Fri, 14 Apr 1995 11:30:00 GMT"));
    server_header(response)
}

#[derive(Debug, Deserialize)]
pub(super) struct PartyQuery {
    p: Option<String>,
}

pub(super) async fn json(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Query(query): Query<PartyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let c = collector(&state)?;
    let content_types: Vec<&str> = headers.get_all(header::CONTENT_TYPE).iter().filter_map(|v| v.to_str().ok()).collect();
    if content_types.len() != 1 || !content_types[0].trim().eq_ignore_ascii_case("application/json") {
        rejected("divolte", "content_type");
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "Content type must be application/json."));
    }
    let limit = c.divolte().json_max_body_bytes as usize;
    let body = body::read(&headers, body, limit, state.limits().body_read_timeout).await?;
    if body.is_empty() {
        rejected("divolte", "empty_body");
        return Err(ApiError::new(ErrorCode::InvalidInput, "empty body"));
    }
    let forwarded = forwarded_for(&headers);
    let payload = Payload::DivolteJson { party: query.p.as_deref(), body: &body };
    let result = c.accept(payload, &request(peer, &headers, &forwarded)).await;
    answered(result, server_header(StatusCode::NO_CONTENT.into_response()))
}
