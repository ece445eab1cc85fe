//! The collector's HTTP endpoints: public by nature, so every one reads its input within caps
//! and deadlines and hands it to [`oriel_collector::Collector::accept`].
//!
//! | route | what |
//! | --- | --- |
//! | `GET /oriel.js` | the tag, `?site=ID` for a site's settings ([`tag`]) |
//! | `POST /e` | batched events from the tag ([`tag`]) |
//! | `GET /e.gif` | one event from a pixel ([`pixel`]) |
//! | `POST /api/v1/events` | server-side and mobile events, with a write key ([`api`]) |
//! | `GET /divolte.js`, `GET /csc-event`, `POST /json` | the Divolte Collector protocol ([`divolte`]) |
//!
//! Until the event log is recovered every route answers 503 with `Retry-After`.

mod api;
mod divolte;
mod pixel;
mod tag;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use oriel_collector::assets::Asset;
use oriel_collector::{Collector, Privacy, Request};

use crate::body::header_str;
use crate::{ApiError, AppState};

/// The collector's routes; the Divolte ones when Divolte compatibility is on.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route("/oriel.js", get(tag::script))
        .route("/e", post(tag::batch).options(tag::preflight))
        .route("/e.gif", get(pixel::event))
        .route("/api/v1/events", post(api::events));
    if let Some(json_path) = state.divolte_json_path() {
        router = router
            .route("/divolte.js", divolte::only(axum::http::Method::GET, get(divolte::script)))
            .route("/csc-event", divolte::only(axum::http::Method::GET, get(divolte::event)))
            .route(json_path, divolte::only(axum::http::Method::POST, post(divolte::json)));
    }
    router
}

/// The collector, or 503 while it starts.
fn collector(state: &AppState) -> Result<&Arc<Collector>, ApiError> {
    state.collector().ready()
}

/// The request as the collector needs it. `forwarded` holds the joined `X-Forwarded-For`.
fn request<'a>(peer: IpAddr, headers: &'a HeaderMap, forwarded: &'a Option<String>) -> Request<'a> {
    let opted_out = header_str(headers, header::DNT) == Some("1") || headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1");
    Request {
        peer,
        forwarded_for: forwarded.as_deref(),
        user_agent: header_str(headers, header::USER_AGENT).unwrap_or_default(),
        privacy: Privacy {
            origin: header_str(headers, header::ORIGIN),
            referer: header_str(headers, header::REFERER),
            opted_out,
        },
    }
}

/// `response` with a `Server-Timing` entry for the time the log took to make the events durable,
/// so a client (or a browser's developer tools) can tell the disk's time from the server's.
fn with_timing(mut response: Response, outcome: &oriel_collector::Outcome) -> Response {
    let ms = outcome.durable_wait.as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("durable;dur={ms:.1};desc=\"log append\"")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// Every `X-Forwarded-For` value, joined; the collector believes it only from trusted proxies.
fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let joined = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    (!joined.is_empty()).then_some(joined)
}

/// The answer to a GET of a script: the best encoding the client accepts, or 304.
fn script(asset: &Asset, headers: &HeaderMap, cache_control: &'static str) -> Response {
    crate::ui::negotiated(asset, headers, "application/javascript; charset=utf-8", cache_control)
}
