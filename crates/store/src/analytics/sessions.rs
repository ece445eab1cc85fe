//! Sessions: the tag's `session_id` where events carry one; for pixel, API and Divolte events
//! without one, a visitor's events cut wherever they pause longer than the site's session
//! timeout. Measures per session: count, visitors, duration (first to last event), bounce rate
//! (one page view), pages per session; a breakdown by the value of any dimension on a
//! session's first event; entry and exit pages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::scope::{Resolved, Scope, TIME_MS, refuse_unknown};
use crate::query::engine::QueryEngine;
use crate::query::values;
use crate::report::compile::{quote, value_expr};
use crate::report::request::Dimension;
use crate::{Error, Result};

/// A sessions request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsRequest {
    /// Site, range, zone, filters.
    #[serde(flatten)]
    pub scope: Scope,
    /// A dimension whose value on each session's first event splits the sessions.
    #[serde(default)]
    pub breakdown: Option<String>,
    /// Most rows per list (10 by default, at most 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Fields the request does not know (refused).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, Value>,
}

/// The measures of a group of sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMeasures {
    /// The group's value (`null` for the totals and for sessions without a value).
    pub key: Value,
    /// Sessions.
    pub sessions: u64,
    /// Distinct visitors.
    pub visitors: u64,
    /// Mean time from a session's first to its last event, in seconds.
    pub avg_duration_seconds: Option<f64>,
    /// Sessions with one page view, in percent of those with any.
    pub bounce_rate: Option<f64>,
    /// Page views per session.
    pub pages_per_session: Option<f64>,
}

/// A sessions answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsAnswer {
    /// Over every session.
    pub totals: SessionMeasures,
    /// Per value of the breakdown, most sessions first.
    pub breakdown: Vec<SessionMeasures>,
    /// Per first page, most sessions first.
    pub entry_pages: Vec<SessionMeasures>,
    /// Per last page, most sessions first.
    pub exit_pages: Vec<SessionMeasures>,
}

/// The session timeout of each event's site, in ms, as SQL.
fn timeout_expr(context: &AnalyticsContext) -> String {
    if context.site_timeouts_ms.is_empty() {
        return context.session_timeout_ms.to_string();
    }
    let arms: String = context.site_timeouts_ms.iter().map(|(site, ms)| format!(" WHEN {} THEN {ms}", quote(site))).collect();
    format!("CASE \"site\"{arms} ELSE {} END", context.session_timeout_ms)
}

/// CTEs ending in `sess`: the scope's events with `t` (ms), `hit` (the filters hold), `sid` (the
/// session) and the `extra` columns (each `expr AS name, `).
pub(crate) fn sessionized(scope: &Resolved, context: &AnalyticsContext, extra: &str) -> String {
    // Events with the tag's session id keep it; the others are cut by pauses longer than the
    // site's timeout, counted per visitor in time order.
    let order = "ORDER BY t, \"event_id\"";
    format!(
        "ev AS (SELECT \"party_id\", \"session_id\", \"event_id\", \"event_type\", \"path\", {extra}{TIME_MS} AS t, \
         {timeout} AS timeout, {hit} AS hit FROM events WHERE {where_}), \
         gap AS (SELECT *, CASE WHEN \"session_id\" IS NULL AND (LAG(t) OVER w IS NULL OR t - LAG(t) OVER w > timeout) \
         THEN 1 ELSE 0 END AS starts FROM ev WINDOW w AS (PARTITION BY \"party_id\", \"session_id\" {order})), \
         sess AS (SELECT *, COALESCE(\"session_id\", concat(\"party_id\", '~', arrow_cast(SUM(starts) OVER (PARTITION BY \
         \"party_id\", \"session_id\" {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 'Utf8'))) AS sid FROM gap)",
        timeout = timeout_expr(context),
        hit = scope.hit,
        where_ = scope.where_clause(),
    )
}

/// The most rows a list may ask for.
const MAX_LIMIT: u32 = 1000;

/// Answers `request` at `now`.
pub async fn sessions(
    engine: &QueryEngine,
    context: &AnalyticsContext,
    request: &SessionsRequest,
    now: i64,
) -> Result<SessionsAnswer> {
    refuse_unknown(&request.unknown)?;
    let limit = request.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let scope = request.scope.resolve(now, engine.time_range().flatten().map(|(lo, _)| lo))?;
    let key = match &request.breakdown {
        Some(name) => format!("arrow_cast({}, 'Utf8')", value_expr(&Dimension::parse(name)?)),
        None => "arrow_cast(NULL, 'Utf8')".into(),
    };
    let measures = "COUNT(*) AS sessions, COUNT(DISTINCT party) AS visitors, AVG(ended - started) / 1000.0 AS duration, \
        100.0 * COUNT(*) FILTER (WHERE views = 1) / NULLIF(COUNT(*) FILTER (WHERE views > 0), 0) AS bounce, \
        CAST(SUM(views) AS DOUBLE) / NULLIF(COUNT(*), 0) AS pages";
    let first = "ORDER BY t, \"event_id\"";
    // GROUPING() may only name a column some grouping set has.
    let (gk, k, breakdown) =
        if request.breakdown.is_some() { ("GROUPING(k)", "k", ", (k)") } else { ("1", "arrow_cast(NULL, 'Utf8')", "") };
    let sql = format!(
        "WITH {ctes}, \
         s AS (SELECT sid, MIN(\"party_id\") AS party, MIN(t) AS started, MAX(t) AS ended, \
         COUNT(*) FILTER (WHERE \"event_type\" = 'pageView') AS views, first_value(k {first}) AS k, \
         first_value(\"path\" {first}) FILTER (WHERE \"event_type\" = 'pageView') AS entry, \
         last_value(\"path\" {first}) FILTER (WHERE \"event_type\" = 'pageView') AS exit \
         FROM sess GROUP BY sid HAVING bool_or(hit)) \
         SELECT {gk} AS gk, GROUPING(entry) AS ge, GROUPING(exit) AS gx, {k} AS k, entry, exit, {measures} FROM s \
         GROUP BY GROUPING SETS ((){breakdown}, (entry), (exit))",
        ctes = sessionized(&scope, context, &format!("{key} AS k, ")),
    );
    let result = engine.collect(&sql).await?;
    // One aggregation of the sessions answers all four lists: which grouping a row belongs to
    // is in its GROUPING() flags.
    let mut parts: [Vec<SessionMeasures>; 4] = Default::default();
    for row in values::rows(&result) {
        let flag = |i: usize| row[i].as_u64() == Some(0);
        let (part, key) = match (flag(0), flag(1), flag(2)) {
            (true, _, _) => (1, row[3].clone()),
            (_, true, _) => (2, row[4].clone()),
            (_, _, true) => (3, row[5].clone()),
            _ => (0, Value::Null),
        };
        // Sessions without a page view have no entry or exit page.
        if (part == 2 || part == 3) && key.is_null() {
            continue;
        }
        let number = |i: usize| row[i].as_f64();
        parts[part].push(SessionMeasures {
            key,
            sessions: row[6].as_u64().unwrap_or(0),
            visitors: row[7].as_u64().unwrap_or(0),
            avg_duration_seconds: number(8),
            bounce_rate: number(9),
            pages_per_session: number(10),
        });
    }
    let [totals, mut breakdown, mut entry, mut exit] = parts;
    for list in [&mut breakdown, &mut entry, &mut exit] {
        list.sort_by(|a, b| b.sessions.cmp(&a.sessions).then_with(|| a.key.to_string().cmp(&b.key.to_string())));
        list.truncate(limit as usize);
    }
    Ok(SessionsAnswer { totals: totals.into_iter().next().unwrap_or_default(), breakdown, entry_pages: entry, exit_pages: exit })
}
