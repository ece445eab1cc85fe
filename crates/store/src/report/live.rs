//! The live view of a site: visitors now, events per minute over the last hour, and the latest
//! page views, for the UI's overview to show as they happen.

use serde::Serialize;
use serde_json::Value;

use crate::Result;
use crate::query::engine::QueryEngine;
use crate::query::values;
use crate::report::compile::quote;

/// What "now" means for visitors: the last five minutes, as Plausible counts them.
pub const NOW_MINUTES: i64 = 5;
/// How many of the latest page views the feed shows.
pub const FEED: usize = 20;

/// A live snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    /// When it was taken (ms).
    pub at: i64,
    /// Distinct visitors in the last five minutes.
    pub visitors_now: i64,
    /// Events per minute over the last hour: `[minute start ISO-8601, count]`, oldest first.
    pub per_minute: Vec<(Value, i64)>,
    /// The latest page views: time, path, title, country, referrer host.
    pub recent: Vec<Vec<Value>>,
}

/// The live snapshot of `site` (all sites when `None`) at `now` (ms).
pub async fn live(engine: &QueryEngine, site: Option<&str>, now: i64) -> Result<Live> {
    // As in reports: bots, duplicates and corrupt events are not counted.
    let site = format!(
        " AND NOT \"is_bot\" AND NOT \"is_duplicate\" AND NOT \"is_corrupt\"{}",
        site.map(|s| format!(" AND \"site\" = {}", quote(s))).unwrap_or_default()
    );
    let since = |minutes: i64| format!("\"__time\" >= MILLIS_TO_TIMESTAMP({})", now - minutes * 60_000);
    let visitors = format!("SELECT COUNT(DISTINCT \"party_id\") FROM events WHERE {}{site}", since(NOW_MINUTES));
    let minutes = format!(
        "SELECT TIME_FLOOR(\"__time\", 'PT1M') AS m, COUNT(*) FROM events WHERE {}{site} GROUP BY 1 ORDER BY 1",
        since(60)
    );
    let recent = format!(
        "SELECT \"__time\", \"path\", \"title\", \"country\", \"referrer_host\" FROM events \
         WHERE {} AND \"event_type\" = 'pageView'{site} ORDER BY \"__time\" DESC LIMIT {FEED}",
        since(60)
    );
    let (visitors, minutes, recent) =
        tokio::try_join!(engine.collect(&visitors), engine.collect(&minutes), engine.collect(&recent))?;
    let number = |v: &Value| v.as_i64().unwrap_or(0);
    Ok(Live {
        at: now,
        visitors_now: values::rows(&visitors).first().and_then(|r| r.get(0)).map_or(0, number),
        per_minute: values::rows(&minutes).into_iter().map(|r| (r[0].clone(), number(&r[1]))).collect(),
        recent: values::rows(&recent).into_iter().filter_map(|r| r.as_array().cloned()).collect(),
    })
}
