//! The UI's API: reports (`POST /api/v1/query`), the live stream of a site
//! (`GET /api/v1/live`, server-sent events), the sites and dimensions to pick from, and what
//! Oriel holds ("Your data", `GET /api/v1/data`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use oriel_core::{Clock, ErrorCode, SystemClock};
use oriel_store::query::values;
use oriel_store::report::{ReportRequest, live};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Largest report request.
const MAX_REPORT_BYTES: usize = 256 * 1024;
/// How often the live stream sends a snapshot.
const LIVE_EVERY: Duration = Duration::from_secs(2);
/// Most sites whose live snapshots are kept.
const LIVE_SITES: usize = 256;
/// Snapshots one live stream sends before it ends. The browser's EventSource reconnects at
/// once, and the reconnection is authenticated afresh: a signed-out session, an expired
/// cookie or a removed token stops receiving within this many snapshots (10 minutes).
const LIVE_SNAPSHOTS_PER_STREAM: u32 = 300;

/// `POST /api/v1/query`: a report.
pub(super) async fn query(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = crate::body::read(&headers, body, MAX_REPORT_BYTES, state.limits().body_read_timeout).await?;
    let request: ReportRequest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("invalid report at {}: {}", e.path(), e.inner())))?;
    let store = Arc::clone(state.store().ready()?);
    let goals = state.analytics().map(|a| a.context()).unwrap_or_default();
    let report = oriel_store::report::run(store.engine(), request, &goals.goals, SystemClock.now_ms()).await?;
    let lag = store.ingest_lag().await?;
    let mut answer = serde_json::to_value(report).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    answer["caughtUp"] = json!(lag.caught_up);
    answer["ingestLagEvents"] = json!(lag.events);
    Ok(Json(answer))
}

/// The live snapshots last taken, per site, shared by every browser that watches the site; and
/// the sites seen in the data, which every page load asks for.
#[derive(Default)]
pub(crate) struct LiveCache {
    taken: Mutex<HashMap<Option<String>, Snapshot>>,
    seen_sites: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// A live snapshot as sent, and when it was taken.
type Snapshot = (Instant, Arc<String>);

/// How long the list of sites seen in the data is reused: a new site shows in the switcher
/// within this time, and a page load does not scan every event for it.
const SITES_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
pub(super) struct LiveParams {
    site: Option<String>,
}

/// The live snapshot of `site`, at most [`LIVE_EVERY`] old.
async fn snapshot(state: &AppState, site: &Option<String>) -> Result<Arc<String>, ApiError> {
    let key = site.clone();
    if let Some((at, text)) = state.live_cache().taken.lock().get(&key)
        && at.elapsed() < LIVE_EVERY
    {
        return Ok(Arc::clone(text));
    }
    let store = Arc::clone(state.store().ready()?);
    let snapshot = live::live(store.engine(), site.as_deref(), SystemClock.now_ms()).await?;
    let lag = store.ingest_lag().await?;
    let mut value = serde_json::to_value(snapshot).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    value["ingestLagEvents"] = json!(lag.events);
    value["caughtUp"] = json!(lag.caught_up);
    let text = Arc::new(value.to_string());
    let mut taken = state.live_cache().taken.lock();
    if taken.len() >= LIVE_SITES {
        taken.retain(|_, (at, _)| at.elapsed() < LIVE_EVERY);
    }
    if taken.len() < LIVE_SITES {
        taken.insert(key, (Instant::now(), Arc::clone(&text)));
    }
    Ok(text)
}

/// `GET /api/v1/live?site=`: a `live` event every two seconds with the site's visitors now,
/// events per minute over the last hour and latest page views, until the browser goes away.
pub(super) async fn stream(
    State(state): State<AppState>,
    Query(params): Query<LiveParams>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if params.site.as_ref().is_some_and(|s| s.len() > 256) {
        return Err(ApiError::new(ErrorCode::InvalidInput, "the site id is longer than 256 bytes"));
    }
    // The first snapshot now, so a failure is an HTTP error rather than a silent stream.
    let first = snapshot(&state, &params.site).await?;
    let start = (state, params.site, Some(first), 0u32);
    let events = futures::stream::unfold(start, |(state, site, pending, sent)| async move {
        if sent >= LIVE_SNAPSHOTS_PER_STREAM {
            return None;
        }
        let text = match pending {
            Some(text) => text,
            None => {
                tokio::time::sleep(LIVE_EVERY).await;
                match snapshot(&state, &site).await {
                    Ok(text) => text,
                    // A failed snapshot (a query limit, a restart) is reported and the stream
                    // goes on.
                    Err(error) => Arc::new(json!({ "error": error.public_message() }).to_string()),
                }
            }
        };
        Some((Ok(Event::default().event("live").data(text.as_str())), (state, site, None, sent + 1)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/sites`: the configured sites and those seen in the data, with their zones.
pub(super) async fn sites(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cached =
        state.live_cache().seen_sites.lock().as_ref().filter(|(at, _)| at.elapsed() < SITES_EVERY).map(|(_, s)| Arc::clone(s));
    let seen = match cached {
        Some(seen) => seen,
        None => {
            let store = Arc::clone(state.store().ready()?);
            let result = store
                .engine()
                .collect(
                    "SELECT \"site\", COUNT(*) AS n FROM events WHERE \"site\" IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1000",
                )
                .await?;
            let names: Vec<String> = values::rows(&result).iter().filter_map(|row| row[0].as_str().map(str::to_string)).collect();
            let names = Arc::new(names);
            *state.live_cache().seen_sites.lock() = Some((Instant::now(), Arc::clone(&names)));
            names
        }
    };
    let mut sites: Vec<Value> = Vec::new();
    let about = state.about();
    for site in &about.sites {
        sites.push(json!({ "id": site.id, "timeZone": site.time_zone, "configured": true }));
    }
    for id in seen.iter() {
        if !about.sites.iter().any(|s| &s.id == id) {
            sites.push(json!({ "id": id, "timeZone": null, "configured": false }));
        }
    }
    Ok(Json(json!({ "sites": sites })))
}

#[derive(Debug, Deserialize)]
pub(super) struct DimensionParams {
    site: Option<String>,
}

/// `GET /api/v1/dimensions?site=`: what can be filtered and split on, with the custom property
/// keys of the latest events.
pub(super) async fn dimensions(
    State(state): State<AppState>,
    Query(params): Query<DimensionParams>,
) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(state.store().ready()?);
    let site = match &params.site {
        Some(s) if s.len() <= 256 => format!(" AND \"site\" = {}", oriel_store::report::compile::quote(s)),
        Some(_) => return Err(ApiError::new(ErrorCode::InvalidInput, "the site id is longer than 256 bytes")),
        None => String::new(),
    };
    let sample = store
        .engine()
        .collect(&format!("SELECT \"props\" FROM events WHERE \"props\" IS NOT NULL{site} ORDER BY \"__time\" DESC LIMIT 2000"))
        .await?;
    let mut keys: Vec<(String, usize)> = Vec::new();
    for row in values::rows(&sample) {
        let Some(Value::Object(props)) = row[0].as_str().and_then(|p| serde_json::from_str::<Value>(p).ok()) else { continue };
        for key in props.keys() {
            if let Some((_, n)) = keys.iter_mut().find(|(k, _)| k == key) {
                *n += 1;
            } else if keys.len() < 200 {
                keys.push((key.clone(), 1));
            }
        }
    }
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let columns: Vec<String> = oriel_store::schema::events_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| oriel_store::report::request::Dimension::parse(n).is_ok())
        .collect();
    Ok(Json(json!({ "columns": columns, "props": keys.into_iter().map(|(k, _)| k).collect::<Vec<_>>() })))
}

/// `GET /api/v1/data`: where Oriel keeps the data, what it holds per site, how long it keeps
/// it, what it stores about visitors and how.
pub(super) async fn data(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(state.store().ready()?);
    let per_site = store
        .engine()
        .collect(
            "SELECT \"site\", COUNT(*) AS events, MIN(\"__time\") AS first, MAX(\"__time\") AS last FROM events \
             GROUP BY 1 ORDER BY 2 DESC LIMIT 1000",
        )
        .await?;
    let stats = store.stats();
    let about = state.about();
    let sites: Vec<Value> = values::rows(&per_site)
        .into_iter()
        .map(|r| {
            let kept =
                about.sites.iter().find(|s| r[0].as_str() == Some(&s.id)).map_or(about.retention_days, |s| s.retention_days);
            json!({ "site": r[0], "events": r[1], "first": r[2], "last": r[3], "retentionDays": kept })
        })
        .collect();
    let columns: Vec<Value> = oriel_store::schema::events_schema()
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": oriel_store::druid::types::sql_type(f.data_type()).0 }))
        .collect();
    Ok(Json(json!({
        "dataDir": about.data_dir,
        "retentionDays": about.retention_days,
        "storeBytes": stats.segment_bytes,
        "logBytes": state.log().get().and_then(|log| log.stored_bytes()),
        "events": stats.segment_rows + stats.live_rows as u64,
        "segments": stats.segments,
        "sites": sites,
        "columns": columns,
        "privacy": about.privacy,
        "geoip": about.geoip,
    })))
}
