//! The collector's HTTP endpoints.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /oriel.js` | the tag, `?site=ID` for a site's settings |
//! | `POST /e` | batched events from the tag (`docs/tag.md`) |
//! | `GET /e.gif` | one event from a pixel |
//! | `POST /api/v1/events` | server-side and mobile events, with a write key |
//! | `GET /divolte.js`, `GET /csc-event`, `POST /json` | the Divolte Collector protocol |
//!
//! Until the event log is recovered every route answers 503 with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Query, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;

use crate::divolte::{self, PIXEL, PIXEL_ETAG};
use crate::metrics::rejected;
use crate::pipeline::Collector;
use crate::sites::Site;
use crate::{Error, Result, wire};

/// Where the collector appears once start-up has built it; routes answer 503 before that.
#[derive(Debug, Clone, Default)]
pub struct CollectorSlot(Arc<OnceLock<Arc<Collector>>>);

impl CollectorSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes the collector; the first call wins.
    pub fn set(&self, collector: Arc<Collector>) {
        let _ = self.0.set(collector);
    }

    /// The collector, if start-up has finished.
    pub fn get(&self) -> Option<&Arc<Collector>> {
        self.0.get()
    }

    fn ready(&self) -> Result<&Arc<Collector>> {
        self.get().ok_or_else(|| Error::Unavailable("the collector is starting, retry shortly".into()))
    }
}

/// The collector's routes. The Divolte ones are included when `divolte_json_path` is given.
pub fn routes(slot: CollectorSlot, divolte_json_path: Option<&str>) -> Router {
    let mut router = Router::new()
        .route("/oriel.js", get(oriel_js))
        .route("/e", post(tag_batch).options(preflight))
        .route("/e.gif", get(pixel))
        .route("/api/v1/events", post(api_events));
    if let Some(json_path) = divolte_json_path {
        router = router
            .route("/divolte.js", divolte_only(Method::GET, get(divolte_js)))
            .route("/csc-event", divolte_only(Method::GET, get(csc_event)))
            .route(json_path, divolte_only(Method::POST, post(divolte_json)));
    }
    router.with_state(slot)
}

/// Divolte answers other methods with 405, `Allow` and a sentence.
fn divolte_only(allowed: Method, route: MethodRouter<CollectorSlot>) -> MethodRouter<CollectorSlot> {
    route.fallback(move |method: Method| async move {
        let mut response = (StatusCode::METHOD_NOT_ALLOWED, format!("HTTP method {method} not allowed.")).into_response();
        if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        divolte_server_header(response)
    })
}

/// The connecting address (127.0.0.1 when the server runs without connect info, as in tests).
#[derive(Debug, Clone, Copy)]
struct Peer(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
        Ok(Self(ip))
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a body of at most `limit` bytes; a declared larger length is refused before reading.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Error::TooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large { Error::TooLarge { limit } } else { Error::BadRequest(format!("cannot read the body: {e}")) }
    })
}

fn client(c: &Collector, peer: IpAddr, headers: &HeaderMap) -> crate::enrich::Client {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let forwarded = (!forwarded.is_empty()).then_some(forwarded);
    c.enricher.client(peer, forwarded.as_deref(), header_str(headers, header::USER_AGENT).unwrap_or_default())
}

/// Whether the browser asked not to be tracked (Do-Not-Track or Global Privacy Control).
fn opted_out(headers: &HeaderMap) -> bool {
    header_str(headers, header::DNT) == Some("1") || headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1")
}

#[derive(Debug, Deserialize)]
struct SiteQuery {
    site: Option<String>,
}

async fn oriel_js(State(slot): State<CollectorSlot>, Query(query): Query<SiteQuery>, headers: HeaderMap) -> Result<Response> {
    let c = slot.ready()?;
    // Only configured sites get their own variant, so arbitrary ?site= values cannot grow the cache.
    let (site, named): (Site, bool) = match query.site.as_deref().and_then(|id| c.sites.configured(id)) {
        Some(site) => (site.clone(), true),
        None => (c.sites.defaults().clone(), false),
    };
    Ok(c.assets.oriel(&site, named)?.respond(&headers, "public, max-age=3600"))
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

async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    with_cors(response, header_str(&headers, header::ORIGIN))
}

async fn tag_batch(State(slot): State<CollectorSlot>, Peer(peer): Peer, headers: HeaderMap, body: Body) -> Response {
    let origin = header_str(&headers, header::ORIGIN);
    let result = async {
        let c = slot.ready()?;
        let body = read_body(&headers, body, c.limits.max_body_bytes).await?;
        let decoded = wire::tag::decode(&body, &c.limits).map_err(|reason| {
            rejected("tag", "malformed");
            Error::BadRequest(reason)
        })?;
        let site = c.site(decoded.site.as_deref())?;
        if !site.allows_origin(origin) {
            rejected("tag", "origin");
            return Err(Error::Forbidden(format!("origin {} may not send events for site {:?}", origin.unwrap_or("?"), site.id)));
        }
        if site.respect_dnt && opted_out(&headers) {
            rejected("tag", "do_not_track");
            return Ok(());
        }
        let mut events = decoded.events;
        c.prepare(&mut events, &site, &client(c, peer, &headers), c.now_ms());
        c.store(events).await.map(|_| ())
    }
    .await;
    let response = match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    };
    with_cors(response, origin)
}

fn gif(status: StatusCode) -> Response {
    let mut response = (status, PIXEL.as_slice()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, max-age=0"));
    response
}

async fn pixel(State(slot): State<CollectorSlot>, Peer(peer): Peer, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response> {
    let c = slot.ready()?;
    let query = query.unwrap_or_default();
    if query.len() > c.limits.max_body_bytes {
        return Err(Error::TooLarge { limit: c.limits.max_body_bytes });
    }
    let decoded = wire::pixel::decode(&query, header_str(&headers, header::REFERER), &c.limits).map_err(|reason| {
        rejected("pixel", "malformed");
        Error::BadRequest(reason)
    })?;
    let site = c.site(decoded.site.as_deref())?;
    // Parsing the Referer costs per request: only for sites that restrict their origins.
    let origin = if site.origins.is_empty() { None } else { pixel_origin(&headers) };
    if !site.allows_origin(origin.as_deref()) {
        rejected("pixel", "origin");
        return Err(Error::Forbidden(format!(
            "origin {} may not send events for site {:?}",
            origin.as_deref().unwrap_or("?"),
            site.id
        )));
    }
    if site.respect_dnt && opted_out(&headers) {
        rejected("pixel", "do_not_track");
        return Ok(gif(StatusCode::OK));
    }
    let mut events = vec![decoded.event];
    c.prepare(&mut events, &site, &client(c, peer, &headers), c.now_ms());
    c.store(events).await?;
    Ok(gif(StatusCode::OK))
}

/// Where a pixel request came from: its `Origin`, else the origin of its `Referer` (an `<img>`
/// sends no `Origin`). None when there is neither, as from an e-mail client: nothing to check.
fn pixel_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = header_str(headers, header::ORIGIN) {
        return Some(origin.to_string());
    }
    let referer = url::Url::parse(header_str(headers, header::REFERER)?).ok()?;
    Some(referer.origin().ascii_serialization())
}

async fn api_events(State(slot): State<CollectorSlot>, Peer(peer): Peer, headers: HeaderMap, body: Body) -> Result<Response> {
    let c = slot.ready()?;
    let key = header_str(&headers, header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let site = key.and_then(|k| c.sites.by_write_key(k)).cloned().ok_or(Error::Unauthorized)?;
    let json = header_str(&headers, header::CONTENT_TYPE)
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(Error::UnsupportedMediaType("send the events as application/json".into()));
    }
    let body = read_body(&headers, body, c.limits.max_body_bytes).await?;
    let items = wire::api::decode(&body, &c.limits).map_err(|reason| {
        rejected("api", "malformed");
        Error::BadRequest(reason)
    })?;
    let now = c.now_ms();
    let request_client = client(c, peer, &headers);
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let mut one = vec![item.event];
        let end_user = crate::enrich::Client {
            ip: item.ip.unwrap_or(request_client.ip),
            user_agent: item.user_agent.unwrap_or_else(|| request_client.user_agent.clone()),
        };
        c.prepare(&mut one, &site, &end_user, now);
        events.extend(one);
    }
    let outcome = c.store(events).await?;
    Ok(axum::Json(serde_json::json!({ "accepted": outcome.stored, "dropped": outcome.dropped })).into_response())
}

fn divolte_server_header(mut response: Response) -> Response {
    response.headers_mut().insert(header::SERVER, HeaderValue::from_static("divolte"));
    response
}

async fn divolte_js(State(slot): State<CollectorSlot>, headers: HeaderMap) -> Result<Response> {
    let c = slot.ready()?;
    Ok(divolte_server_header(c.assets.divolte().respond(&headers, "public, max-age=3600")))
}

/// The Divolte site's settings: the configured `collector.divolte.site`, or the defaults.
fn divolte_site(c: &Collector) -> Site {
    let id = &c.divolte.site;
    c.sites.configured(id).cloned().unwrap_or_else(|| Site { id: id.clone(), ..c.sites.defaults().clone() })
}

/// Completes and stores one Divolte event; it is acknowledged only once durable.
async fn store_divolte(c: &Collector, event: oriel_core::Event, peer: IpAddr, headers: &HeaderMap) -> Result<()> {
    let mut events = vec![event];
    c.prepare(&mut events, &divolte_site(c), &client(c, peer, headers), c.now_ms());
    c.store(events).await.map(|_| ())
}

async fn csc_event(State(slot): State<CollectorSlot>, Peer(peer): Peer, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response> {
    let c = slot.ready()?;
    let revalidation = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == PIXEL_ETAG));
    if revalidation {
        // A browser revalidating a cached pixel: the event was already sent once.
        rejected("divolte", "revalidation");
        return Ok(divolte_pixel(StatusCode::NOT_MODIFIED));
    }
    let query = query.unwrap_or_default();
    let event = if query.len() > c.limits.max_body_bytes {
        Err(divolte::query::Rejected::TooLong("query"))
    } else {
        divolte::query::parse_event(&query, &c.limits)
    };
    match event {
        Ok(event) => store_divolte(c, event, peer, &headers).await?,
        Err(reason) => {
            // Divolte answers the pixel whatever the request held; count what was refused.
            tracing::debug!(%reason, "divolte event refused");
            rejected("divolte", reason.reason());
        }
    }
    Ok(divolte_pixel(StatusCode::OK))
}

fn divolte_pixel(status: StatusCode) -> Response {
    let mut response = if status == StatusCode::OK { (status, PIXEL.as_slice()).into_response() } else { status.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::ETAG, HeaderValue::from_static(PIXEL_ETAG));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache, proxy-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("Fri, 14 Apr 1995 11:30:00 GMT"));
    divolte_server_header(response)
}

#[derive(Debug, Deserialize)]
struct PartyQuery {
    p: Option<String>,
}

async fn divolte_json(
    State(slot): State<CollectorSlot>,
    Peer(peer): Peer,
    Query(query): Query<PartyQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let c = slot.ready()?;
    let content_types: Vec<&str> = headers.get_all(header::CONTENT_TYPE).iter().filter_map(|v| v.to_str().ok()).collect();
    if content_types.len() != 1 || !content_types[0].trim().eq_ignore_ascii_case("application/json") {
        rejected("divolte", "content_type");
        return Err(Error::UnsupportedMediaType("Content type must be application/json.".into()));
    }
    let body = read_body(&headers, body, c.divolte.json_max_body_bytes as usize).await?;
    if body.is_empty() {
        rejected("divolte", "empty_body");
        return Err(Error::BadRequest("empty body".into()));
    }
    let party = query.p.as_deref().and_then(divolte::ids::normalize).ok_or_else(|| {
        rejected("divolte", "bad_identifier");
        Error::BadRequest("missing or invalid party id parameter p".into())
    })?;
    match divolte::json::parse_event(party, &body, &c.limits) {
        Ok(event) => store_divolte(c, event, peer, &headers).await?,
        Err(reason) => {
            // Divolte answers 204 before it parses the body; count what it would have dropped.
            tracing::debug!(%reason, "divolte json event refused");
            rejected("divolte", "malformed");
        }
    }
    Ok(divolte_server_header(StatusCode::NO_CONTENT.into_response()))
}
