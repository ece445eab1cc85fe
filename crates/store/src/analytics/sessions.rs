//! Sessions: the tag's `session_id` where events carry one; for pixel, API and Divolte events
//! without one, a visitor's events cut wherever they pause longer than the site's session
//! timeout. Measures per session: count, visitors, duration (first to last event), bounce rate
//! (one page view), pages per session; a breakdown by the value of any dimension on a
//! session's first event; entry and exit pages.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::scope::{Scope, refuse_unknown};
use crate::analytics::timeline::{Budget, Extra, Groups, each_visitor};
use crate::query::engine::QueryEngine;
use crate::report::compile::value_expr;
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

/// Sums over a group of sessions, from which its [`SessionMeasures`] follow.
#[derive(Debug, Default)]
struct Sums {
    sessions: u64,
    visitors: u64,
    /// The visitor last counted (the walk hands over one visitor's sessions together).
    last_visitor: Option<u64>,
    duration_ms: i128,
    views: u64,
    with_views: u64,
    bounces: u64,
}

impl Sums {
    fn add(&mut self, visitor: u64, session: &Session) {
        self.sessions += 1;
        if self.last_visitor != Some(visitor) {
            self.visitors += 1;
            self.last_visitor = Some(visitor);
        }
        self.duration_ms += i128::from(session.duration_ms);
        self.views += session.views;
        self.with_views += u64::from(session.views > 0);
        self.bounces += u64::from(session.views == 1);
    }

    fn measures(&self, key: Value) -> SessionMeasures {
        let per_session = |x: f64| (self.sessions > 0).then(|| x / self.sessions as f64);
        SessionMeasures {
            key,
            sessions: self.sessions,
            visitors: self.visitors,
            avg_duration_seconds: per_session(self.duration_ms as f64 / 1000.0),
            bounce_rate: (self.with_views > 0).then(|| 100.0 * self.bounces as f64 / self.with_views as f64),
            pages_per_session: per_session(self.views as f64),
        }
    }
}

/// What the measures need of one session.
struct Session<'a> {
    duration_ms: i64,
    views: u64,
    key: Option<&'a str>,
    entry: Option<&'a str>,
    exit: Option<&'a str>,
}

/// The most rows a list may ask for.
const MAX_LIMIT: u32 = 1000;

/// Answers `request` at `now`.
pub async fn sessions(
    engine: &Arc<QueryEngine>,
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
        Some(name) => Some(value_expr(&Dimension::parse(name)?)),
        None => None,
    };
    let runner = Arc::clone(engine);
    let context = context.clone();
    // Only page views' paths are read: the others need not be sorted.
    let label = Some("CASE WHEN \"event_type\" = 'pageView' THEN \"path\" END".to_string());
    let extra = Extra { sessions: true, key, label, ..Extra::default() };
    let (totals, breakdown, entry, exit) = engine
        .on_query_threads(async move {
            let mut totals = Sums::default();
            let (mut breakdown, mut entry, mut exit) =
                (Groups::<Sums>::default(), Groups::<Sums>::default(), Groups::<Sums>::default());
            let mut visitor = 0_u64;
            let mut budget = Budget::new(&runner);
            each_visitor(&runner, &scope, &context, &extra, |v| {
                visitor += 1;
                for events in v.sessions() {
                    // A session counts when one of its events meets the filters.
                    if !events.iter().any(|&i| v.hit(i)) {
                        continue;
                    }
                    let (first, last) = (events[0], events[events.len() - 1]);
                    let entry_at = events.iter().find(|&&i| v.is_view(i)).copied();
                    let exit_at = events.iter().rev().find(|&&i| v.is_view(i)).copied();
                    let session = Session {
                        duration_ms: v.time(last) - v.time(first),
                        views: events.iter().filter(|&&i| v.is_view(i)).count() as u64,
                        key: v.key(first),
                        entry: entry_at.and_then(|i| v.label(i)),
                        exit: exit_at.and_then(|i| v.label(i)),
                    };
                    totals.add(visitor, &session);
                    breakdown.at(session.key).add(visitor, &session);
                    // Sessions without a page view have no entry or exit page.
                    if entry_at.is_some() {
                        entry.at(session.entry).add(visitor, &session);
                        exit.at(session.exit).add(visitor, &session);
                    }
                }
                budget.hold(breakdown.bytes() + entry.bytes() + exit.bytes())
            })
            .await?;
            Ok::<_, Error>((totals, breakdown, entry, exit))
        })
        .await??;
    let list = |groups: Groups<Sums>, keep_none: bool| -> Vec<SessionMeasures> {
        groups
            .into_entries()
            .filter(|(k, _)| keep_none || k.is_some())
            .map(|(k, sums)| sums.measures(k.map_or(Value::Null, Value::String)))
            .collect()
    };
    let mut lists =
        [if request.breakdown.is_some() { list(breakdown, true) } else { Vec::new() }, list(entry, false), list(exit, false)];
    for list in &mut lists {
        list.sort_by(|a, b| b.sessions.cmp(&a.sessions).then_with(|| a.key.to_string().cmp(&b.key.to_string())));
        list.truncate(limit as usize);
    }
    let [breakdown, entry_pages, exit_pages] = lists;
    Ok(SessionsAnswer { totals: totals.measures(Value::Null), breakdown, entry_pages, exit_pages })
}
