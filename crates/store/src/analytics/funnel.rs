//! Ordered funnels: 2 to 10 steps, each an event matcher or a goal, completed within a
//! conversion window counted from the first step; per visitor or per session; in relaxed order
//! (other events may come between steps) or strict order (each step the very next event,
//! engagement pings aside).
//!
//! A unit reaches step k when some event matching step 1 starts a chain whose steps follow in
//! order (by time, then event id) with the k-th no later than the window after the first.
//! Which chain is reported for the times between steps: the earliest start that reaches the
//! unit's furthest step, each later step taken at its first matching event after the previous
//! one (in strict order, the very next event). [`walk`] follows one unit's events this way,
//! over the visitor-ordered scan of [`timeline`](crate::analytics::timeline).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::goals::event_condition;
use crate::analytics::scope::{Scope, refuse_unknown};
use crate::analytics::timeline::{Budget, Extra, Groups, each_visitor};
use crate::query::engine::QueryEngine;
use crate::report::compile::value_expr;
use crate::report::request::Dimension;
use crate::{Error, Result};

/// Most steps.
pub const MAX_STEPS: usize = 10;
/// Longest conversion window: 90 days.
pub const MAX_WINDOW_SECONDS: u64 = 90 * 86_400;

/// One step: a goal, or an event matcher.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// A label for people (the goal's name or what it matches by default).
    #[serde(default)]
    pub name: Option<String>,
    /// A goal's name.
    #[serde(default)]
    pub goal: Option<String>,
    /// The event type.
    #[serde(default)]
    pub event_type: Option<String>,
    /// A page path, `*` matching any characters.
    #[serde(default)]
    pub path: Option<String>,
    /// Conditions on dimensions or properties.
    #[serde(default)]
    pub filters: Vec<crate::report::request::FilterSpec>,
}

impl Step {
    /// The SQL condition of an event that makes this step, and the step's label.
    pub fn condition(&self, context: &AnalyticsContext) -> Result<(String, String)> {
        if let Some(goal) = &self.goal {
            if self.event_type.is_some() || self.path.is_some() || !self.filters.is_empty() {
                return Err(Error::InvalidQuery("a goal step has no other conditions".into()));
            }
            let condition = crate::analytics::goals::condition(context.goal(goal)?)?;
            return Ok((condition, self.name.clone().unwrap_or_else(|| goal.clone())));
        }
        let label = self.name.clone().or_else(|| self.path.clone()).or_else(|| self.event_type.clone()).unwrap_or_default();
        Ok((event_condition(self.event_type.as_deref(), self.path.as_deref(), &self.filters)?, label))
    }
}

/// A funnel request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunnelRequest {
    /// Site, range, zone, filters.
    #[serde(flatten)]
    pub scope: Scope,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How long after the first step the last may come, in seconds (a day by default).
    #[serde(default)]
    pub window_seconds: Option<u64>,
    /// `relaxed` (the default) or `strict`.
    #[serde(default)]
    pub order: Option<String>,
    /// `visitor` (the default) or `session`.
    #[serde(default)]
    pub count_by: Option<String>,
    /// A dimension whose value on each unit's first event splits the funnel.
    #[serde(default)]
    pub breakdown: Option<String>,
    /// Most breakdown rows (10 by default, at most 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Fields the request does not know (refused).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, Value>,
}

/// One step of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOut {
    /// The step's label.
    pub name: String,
    /// Units that reached it.
    pub count: u64,
    /// Units that reached the step before but not this one.
    pub dropped: u64,
    /// Percent of the previous step's units.
    pub conversion_from_previous: Option<f64>,
    /// Percent of the first step's units.
    pub conversion_from_first: Option<f64>,
    /// Median time from the previous step, in seconds.
    pub median_seconds_from_previous: Option<f64>,
}

/// A funnel for one group of units.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelGroup {
    /// The breakdown value (`null` for the totals).
    pub key: Value,
    /// The steps.
    pub steps: Vec<StepOut>,
}

/// A funnel answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunnelAnswer {
    /// `visitor` or `session`.
    pub count_by: String,
    /// Over every unit.
    pub totals: FunnelGroup,
    /// Per breakdown value, most units at the first step first.
    pub breakdown: Vec<FunnelGroup>,
}

/// The times of the chain a unit's events (`times` and step `masks`, bit k for step k, in
/// order) form: see the module's definition. Empty when no event matches step 1.
pub fn walk(times: &[i64], masks: &[i64], steps: usize, window_ms: i64, strict: bool) -> Vec<i64> {
    let matches = |i: usize, step: usize| masks[i] & (1 << step) != 0;
    // Per step, the positions of its events, for the next one after a position.
    let by_step: Vec<Vec<usize>> = (0..steps).map(|s| (0..times.len()).filter(|&i| matches(i, s)).collect()).collect();
    let mut best: Vec<i64> = Vec::new();
    for &start in &by_step[0] {
        let mut chain = vec![times[start]];
        let mut at = start;
        for (step, positions) in by_step.iter().enumerate().skip(1) {
            let next = if strict {
                Some(at + 1).filter(|&n| n < times.len() && matches(n, step))
            } else {
                let p = positions.partition_point(|&i| i <= at);
                positions.get(p).copied()
            };
            match next {
                Some(n) if times[n].saturating_sub(times[start]) <= window_ms => {
                    chain.push(times[n]);
                    at = n;
                }
                _ => break,
            }
        }
        // The earliest start that goes furthest.
        if chain.len() > best.len() {
            best = chain;
            if best.len() == steps {
                break;
            }
        }
    }
    best
}

/// How many units of a group reached each step, and the times between steps.
#[derive(Debug, Default)]
struct Reached {
    counts: Vec<u64>,
    /// Per step, the ms from the previous step of each unit that reached it.
    gaps: Vec<Vec<i64>>,
}

impl Reached {
    /// Counts one unit's chain of step times.
    fn add(&mut self, chain: &[i64], steps: usize) {
        if self.counts.len() < steps {
            self.counts.resize(steps, 0);
            self.gaps.resize(steps, Vec::new());
        }
        for (k, t) in chain.iter().enumerate() {
            self.counts[k] += 1;
            if k > 0 {
                self.gaps[k].push(t - chain[k - 1]);
            }
        }
    }

    /// The steps as answered, named `names`.
    fn steps(mut self, names: &[String], steps: usize) -> Vec<StepOut> {
        self.counts.resize(steps, 0);
        self.gaps.resize(steps, Vec::new());
        let counts = &self.counts;
        let percent = |part: u64, whole: u64| (whole > 0).then(|| 100.0 * part as f64 / whole as f64);
        (0..steps)
            .map(|i| StepOut {
                name: names[i].clone(),
                count: counts[i],
                dropped: if i == 0 { 0 } else { counts[i - 1] - counts[i] },
                conversion_from_previous: percent(counts[i], counts[i.saturating_sub(1)]),
                conversion_from_first: percent(counts[i], counts[0]),
                median_seconds_from_previous: median(&mut self.gaps[i]).map(|ms| ms / 1000.0),
            })
            .collect()
    }
}

/// The median of `values` (the mean of the middle two when their number is even).
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] as f64 } else { (values[mid - 1] as f64 + values[mid] as f64) / 2.0 })
}

/// Answers `request` at `now`.
pub async fn funnel(
    engine: &Arc<QueryEngine>,
    context: &AnalyticsContext,
    request: &FunnelRequest,
    now: i64,
) -> Result<FunnelAnswer> {
    refuse_unknown(&request.unknown)?;
    let n = request.steps.len();
    if !(2..=MAX_STEPS).contains(&n) {
        return Err(Error::InvalidQuery(format!("a funnel has 2 to {MAX_STEPS} steps, not {n}")));
    }
    let window = request.window_seconds.unwrap_or(86_400);
    if window == 0 || window > MAX_WINDOW_SECONDS {
        return Err(Error::InvalidQuery(format!("windowSeconds must be between 1 and {MAX_WINDOW_SECONDS}")));
    }
    let strict = match request.order.as_deref().unwrap_or("relaxed") {
        "relaxed" => false,
        "strict" => true,
        other => return Err(Error::InvalidQuery(format!("unknown order {other:?}: use relaxed or strict"))),
    };
    let by_session = match request.count_by.as_deref().unwrap_or("visitor") {
        "visitor" => false,
        "session" => true,
        other => return Err(Error::InvalidQuery(format!("unknown countBy {other:?}: use visitor or session"))),
    };
    let limit = request.limit.unwrap_or(10);
    if limit == 0 || limit > 100 {
        return Err(Error::InvalidQuery("limit must be between 1 and 100".into()));
    }
    let mut names = Vec::with_capacity(n);
    let mut mask = Vec::with_capacity(n);
    for (i, step) in request.steps.iter().enumerate() {
        let (condition, name) = step.condition(context).map_err(|e| Error::InvalidQuery(format!("step {}: {e}", i + 1)))?;
        names.push(if name.is_empty() { format!("step {}", i + 1) } else { name });
        mask.push(format!("CASE WHEN {condition} THEN {} ELSE 0 END", 1_i64 << i));
    }
    let scope = request.scope.resolve(now, engine.time_range().flatten().map(|(lo, _)| lo))?;
    let key = match &request.breakdown {
        Some(name) => Some(value_expr(&Dimension::parse(name)?)),
        None => None,
    };
    let mask = mask.join(" + ");
    // A relaxed funnel of visitors only looks at events that match a step, and at the others
    // only to know whether the visitor meets the filters (without filters, any visitor with a
    // step does) — unless it needs each visitor's first event for the breakdown. Fewer events
    // make a smaller sort.
    let only = (!by_session && !strict && request.breakdown.is_none()).then(|| match request.scope.filters.is_empty() {
        true => format!("({mask}) > 0"),
        false => format!("({mask}) > 0 OR COALESCE({}, FALSE)", scope.hit),
    });
    let extra = Extra { sessions: by_session, only, key, label: None, mask: Some(mask) };
    let (runner, context, window_ms, split) =
        (Arc::clone(engine), context.clone(), window as i64 * 1000, request.breakdown.is_some());
    let (totals, by_key) = engine
        .on_query_threads(async move {
            let (mut totals, mut by_key) = (Reached::default(), Groups::<Reached>::default());
            let (mut times, mut masks) = (Vec::new(), Vec::new());
            // The times between steps are kept for exact medians: in the totals, and again
            // per breakdown value.
            let (mut budget, mut gaps) = (Budget::new(&runner), 0_usize);
            each_visitor(&runner, &scope, &context, &extra, |v| {
                let units = if by_session { v.sessions() } else { vec![v.events().collect()] };
                for unit in units {
                    // A unit counts when one of its events meets the filters.
                    if !unit.iter().any(|&i| v.hit(i)) {
                        continue;
                    }
                    // Strict order needs every event (one between two steps breaks the chain);
                    // relaxed order only those that match a step.
                    times.clear();
                    masks.clear();
                    for &i in &unit {
                        let m = v.mask(i);
                        if if strict { !v.is_engagement(i) } else { m > 0 } {
                            times.push(v.time(i));
                            masks.push(m);
                        }
                    }
                    let chain = walk(&times, &masks, n, window_ms, strict);
                    if chain.is_empty() {
                        continue;
                    }
                    totals.add(&chain, n);
                    if split {
                        by_key.at(v.key(unit[0])).add(&chain, n);
                    }
                    gaps += (chain.len() - 1) * (1 + usize::from(split));
                }
                budget.hold(by_key.bytes() + gaps * size_of::<i64>())
            })
            .await?;
            Ok::<_, Error>((totals, by_key))
        })
        .await??;
    let group = |key: Value, reached: Reached| FunnelGroup { key, steps: reached.steps(&names, n) };
    let totals = group(Value::Null, totals);
    let mut groups: Vec<FunnelGroup> =
        by_key.into_entries().map(|(k, reached)| group(k.map_or(Value::Null, Value::String), reached)).collect();
    groups.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count).then_with(|| a.key.to_string().cmp(&b.key.to_string())));
    groups.truncate(limit as usize);
    Ok(FunnelAnswer { count_by: if by_session { "session" } else { "visitor" }.into(), totals, breakdown: groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: i64 = 1;
    const B: i64 = 2;
    const C: i64 = 4;

    #[test]
    fn relaxed_chains_take_the_earliest_start_that_goes_furthest() {
        // A at 0, B at 5, A at 100, B at 105, C at 110: with a window of 20 only the second A
        // reaches C.
        let times = [0, 5, 100, 105, 110];
        let masks = [A, B, A, B, C];
        assert_eq!(walk(&times, &masks, 3, 20, false), vec![100, 105, 110]);
        assert_eq!(walk(&times, &masks, 3, 1000, false), vec![0, 5, 110], "a wide window keeps the first start");
        assert_eq!(walk(&times, &masks, 2, 1000, false), vec![0, 5]);
        assert!(walk(&[1, 2], &[B, C], 3, 100, false).is_empty(), "no first step");
        // The window is inclusive.
        assert_eq!(walk(&[0, 10], &[A, B], 2, 10, false), vec![0, 10]);
        assert_eq!(walk(&[0, 11], &[A, B], 2, 10, false), vec![0]);
    }

    #[test]
    fn a_repeated_step_needs_two_events_and_strict_order_needs_neighbours() {
        assert_eq!(walk(&[0], &[A | B], 2, 100, false), vec![0], "one event is one step");
        assert_eq!(walk(&[0, 1], &[A | B, A | B], 2, 100, false), vec![0, 1]);
        let times = [0, 1, 2];
        assert_eq!(walk(&times, &[A, 0, B], 2, 100, true), vec![0], "an event between breaks a strict chain");
        assert_eq!(walk(&times, &[A, A, B], 2, 100, true), vec![1, 2]);
        assert_eq!(walk(&times, &[A, 0, B], 2, 100, false), vec![0, 2]);
    }
}
