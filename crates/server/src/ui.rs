//! The UI: the built files of `ui/` (`crates/server/ui-dist`, embedded in the binary), served
//! with gzip or brotli, content-hashed assets cached for a year, and a strict
//! Content-Security-Policy: scripts, styles and connections only from Oriel itself, no inline
//! script, no framing.
//!
//! The page itself holds no data: it is served to anyone, and asks the query APIs (which need
//! a credential) for everything; a browser without one gets the sign-in page.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oriel_collector::assets::Asset;

use crate::AppState;

/// The built UI, embedded.
#[derive(rust_embed::Embed)]
#[folder = "ui-dist/"]
struct Built;

/// Every built file, compressed once on first use.
static FILES: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    Built::iter()
        .filter_map(|name| {
            let file = Built::get(&name)?;
            Asset::from_bytes(file.data.into_owned()).ok().map(|asset| (name.to_string(), asset))
        })
        .collect()
});

/// Compresses the UI's files now (brotli at its best takes a while), so the first browser to
/// ask does not stall a serving thread with it. Call it off the async threads.
pub fn prepare() {
    LazyLock::force(&FILES);
}

/// The policy sent with the UI.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI's routes: its pages (one document; the script shows the page the path names) and
/// its assets.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/explore", get(page))
        .route("/journeys", get(page))
        .route("/data", get(page))
        .route("/assets/{file}", get(asset))
}

/// The answer to a GET of an asset: the best encoding the client accepts, or 304.
pub(crate) fn negotiated(
    asset: &Asset,
    headers: &HeaderMap,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    let values = |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    let chosen = asset.negotiate(&values(header::ACCEPT_ENCODING), &values(header::IF_NONE_MATCH));
    let mut response =
        if chosen.not_modified { StatusCode::NOT_MODIFIED.into_response() } else { chosen.body.to_vec().into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(value) = HeaderValue::from_str(&chosen.etag) {
        h.insert(header::ETAG, value);
    }
    if let (Some(encoding), false) = (chosen.encoding, chosen.not_modified) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

async fn page(headers: HeaderMap) -> Response {
    match FILES.get("index.html") {
        Some(index) => secured(negotiated(index, &headers, "text/html; charset=utf-8", "no-cache")),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this oriel was built without its UI: run `npm run build:ui` (which writes crates/server/ui-dist) and rebuild\n",
        )
            .into_response(),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = FILES.get(&format!("assets/{file}")) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let content_type = match file.rsplit('.').next() {
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    secured(negotiated(asset, &headers, content_type, "public, max-age=31536000, immutable"))
}

/// The UI's files and their sizes (uncompressed, gzip), for the budget test.
pub fn built_sizes() -> Vec<(String, usize, usize)> {
    let mut sizes: Vec<(String, usize, usize)> = FILES
        .iter()
        .map(|(name, asset)| {
            let gzip = asset.negotiate(&["gzip"], &[]).body.len();
            (name.clone(), asset.text().len(), gzip)
        })
        .collect();
    sizes.sort();
    sizes
}
