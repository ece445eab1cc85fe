//! Retention: visitors grouped into cohorts by the period (day, week or month, in the request's
//! time zone) they were first seen — or first did a chosen event — and how many of each cohort
//! came back (or did a chosen event) in each period after.
//!
//! "First seen" looks at all stored history before the range's end, so a visitor seen before
//! the range's first period is in no cohort of it. The cohorts are the periods from the one that
//! holds the range's start on, with the visitors first seen in each who have an event in the
//! range.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::funnel::Step;
use crate::analytics::scope::{Scope, millis, refuse_unknown};
use crate::query::engine::QueryEngine;
use crate::query::functions::{Period, format_time};
use crate::query::values;
use crate::report::compile::quote;
use crate::{Error, Result};

/// Most periods after the cohort's own that an answer reports.
pub const MAX_PERIODS: u32 = 60;

/// A retention request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRequest {
    /// Site, range, zone, filters.
    #[serde(flatten)]
    pub scope: Scope,
    /// `day`, `week` (the default; weeks start on Monday) or `month`.
    #[serde(default)]
    pub period: Option<String>,
    /// What puts a visitor in a cohort: their first such event (any event when absent).
    #[serde(default)]
    pub cohort_event: Option<Step>,
    /// What counts as coming back (any event when absent).
    #[serde(default)]
    pub return_event: Option<Step>,
    /// Periods after the cohort's own to report (8 by default).
    #[serde(default)]
    pub periods: Option<u32>,
    /// Fields the request does not know (refused).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, Value>,
}

/// One cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cohort {
    /// The period's first instant, ISO-8601 in the request's zone.
    pub start: String,
    /// Visitors in it.
    pub size: u64,
    /// Per period from the cohort's own (0) on, the visitors who came back in it; as many
    /// periods as have begun before the range's end, at most the number asked for plus one.
    pub returned: Vec<u64>,
    /// The same as percentages of the cohort.
    pub percent: Vec<f64>,
}

/// A retention answer.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionAnswer {
    /// The period.
    pub period: String,
    /// The cohorts, oldest first.
    pub cohorts: Vec<Cohort>,
}

/// Answers `request` at `now`.
pub async fn retention(
    engine: &QueryEngine,
    context: &AnalyticsContext,
    request: &RetentionRequest,
    now: i64,
) -> Result<RetentionAnswer> {
    refuse_unknown(&request.unknown)?;
    let (name, granularity) = match request.period.as_deref().unwrap_or("week") {
        "day" => ("day", "P1D"),
        "week" => ("week", "P1W"),
        "month" => ("month", "P1M"),
        other => return Err(Error::InvalidQuery(format!("unknown period {other:?}: use day, week or month"))),
    };
    let periods = request.periods.unwrap_or(8);
    if periods > MAX_PERIODS {
        return Err(Error::InvalidQuery(format!("periods must be at most {MAX_PERIODS}")));
    }
    let scope = request.scope.resolve(now, engine.time_range().flatten().map(|(lo, _)| lo))?;
    let period = Period::parse(granularity).ok_or_else(|| Error::Internal(format!("period {granularity}")))?;
    let first_period =
        period.floor(scope.range.start, scope.zone).ok_or_else(|| Error::InvalidQuery("range out of range".into()))?;
    let condition = |step: &Option<Step>| -> Result<String> {
        match step {
            Some(step) => Ok(step.condition(context)?.0),
            None => Ok("TRUE".into()),
        }
    };
    let sql = format!(
        "WITH ev AS (SELECT \"party_id\", TIMESTAMP_TO_MILLIS(TIME_FLOOR(\"__time\", '{granularity}', NULL, {zone})) AS p, \
         {cohort} AS c, {back} AS r, ({hit} AND \"__time\" >= {start}) AS hit FROM events WHERE {where_}), \
         firsts AS (SELECT \"party_id\", MIN(p) FILTER (WHERE c) AS cohort FROM ev GROUP BY \"party_id\" HAVING bool_or(hit)), \
         cohorts AS (SELECT * FROM firsts WHERE cohort >= {first_period}), \
         act AS (SELECT DISTINCT \"party_id\", p FROM ev WHERE r) \
         SELECT cohort, CAST(NULL AS BIGINT) AS p, COUNT(*) AS n FROM cohorts GROUP BY cohort \
         UNION ALL SELECT c.cohort, a.p, COUNT(*) FROM cohorts c JOIN act a ON a.\"party_id\" = c.\"party_id\" \
         AND a.p >= c.cohort GROUP BY c.cohort, a.p",
        zone = quote(&scope.zone_name),
        cohort = condition(&request.cohort_event)?,
        back = condition(&request.return_event)?,
        hit = scope.hit,
        start = millis(scope.range.start),
        where_ = scope.where_until_end(),
    );
    let result = engine.collect(&sql).await?;
    let mut sizes: BTreeMap<i64, u64> = BTreeMap::new();
    let mut back: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for row in values::rows(&result) {
        let (Some(cohort), n) = (row[0].as_i64(), row[2].as_u64().unwrap_or(0)) else { continue };
        match row[1].as_i64() {
            None => {
                sizes.insert(cohort, n);
            }
            Some(p) => {
                back.insert((cohort, p), n);
            }
        }
    }
    let mut cohorts = Vec::with_capacity(sizes.len());
    for (&start, &size) in &sizes {
        let mut returned = Vec::new();
        let mut at = start;
        for i in 0..=i64::from(periods) {
            if i > 0 {
                at = period.shift(start, i, scope.zone).unwrap_or(i64::MAX);
            }
            if at >= scope.range.end {
                break;
            }
            returned.push(back.get(&(start, at)).copied().unwrap_or(0));
        }
        let percent = returned.iter().map(|&r| if size == 0 { 0.0 } else { 100.0 * r as f64 / size as f64 }).collect();
        cohorts.push(Cohort { start: format_time(start, None, scope.zone).unwrap_or_default(), size, returned, percent });
    }
    Ok(RetentionAnswer { period: name.into(), cohorts })
}
