//! What a report asks for, as the UI sends it, and the checks it must pass before any SQL is
//! written: known dimensions and measures, bounded lists and values.

use serde::{Deserialize, Serialize};

use crate::schema::events_schema;
use crate::{Error, Result};

/// Most filters of one report.
pub const MAX_FILTERS: usize = 32;
/// Most values of one filter.
pub const MAX_VALUES: usize = 1000;
/// Longest value.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most rows a report returns.
pub const MAX_LIMIT: u32 = 10_000;
/// Columns that are not dimensions: identifiers too fine to split on, and raw properties.
const NOT_DIMENSIONS: [&str; 4] = ["event_id", "page_view_id", "props", "client_time"];

/// A report request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRequest {
    /// Only this site's events (all sites when absent).
    #[serde(default)]
    pub site: Option<String>,
    /// The time range.
    pub range: RangeSpec,
    /// The IANA zone days and buckets are cut in (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Filters, all of which must hold.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Up to two splits.
    #[serde(default)]
    pub split: Vec<SplitSpec>,
    /// What to compute.
    pub measures: Vec<String>,
    /// The order of the rows (the first measure, largest first, by default; time ascending
    /// for a time split).
    #[serde(default)]
    pub sort: Option<SortSpec>,
    /// Most rows (10 by default).
    #[serde(default)]
    pub limit: Option<u32>,
    /// `previous` (the period before, as long) or `year` (the same period a year before).
    #[serde(default)]
    pub compare: Option<String>,
}

/// A time range: a preset or fixed instants.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeSpec {
    /// `realtime`, `today`, `yesterday`, `24h`, `7d`, `28d`, `30d`, `91d`, `month`, `lastMonth`,
    /// `6mo`, `12mo`, `year`, `all`.
    #[serde(default)]
    pub preset: Option<String>,
    /// The first instant (ISO-8601), for a fixed range.
    #[serde(default)]
    pub start: Option<String>,
    /// The instant after the range (ISO-8601), for a fixed range.
    #[serde(default)]
    pub end: Option<String>,
}

/// One filter (the configuration's type, shared with goals).
pub use oriel_core::config::FilterSpec;

/// One split.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitSpec {
    /// A column or `prop:<key>`.
    #[serde(default)]
    pub dimension: Option<String>,
    /// A time granularity: `PT1M`, `PT5M`, `PT15M`, `PT1H`, `P1D`, `P1W`, `P1M`, or `auto`.
    #[serde(default)]
    pub time: Option<String>,
}

/// The order of the rows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SortSpec {
    /// A measure or a split dimension (`time` for the time split).
    pub by: String,
    /// Largest first.
    #[serde(default)]
    pub desc: bool,
}

/// A measure the language knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    /// All events.
    Events,
    /// Page-view events.
    Pageviews,
    /// Distinct visitors (`party_id`).
    Visitors,
    /// Distinct sessions.
    Sessions,
    /// The share of sessions with one page view, in percent.
    BounceRate,
    /// Page views per session.
    ViewsPerSession,
    /// Mean engaged time of engagement events, in seconds.
    AvgEngagedSeconds,
    /// Mean scroll depth of engagement events, in percent.
    AvgScrollDepth,
    /// Events of a custom type.
    Event(String),
    /// Visitors who converted a goal.
    Goal(String),
}

impl Measure {
    /// Reads a measure name: `events`, `pageviews`, `visitors`, `sessions`, `bounceRate`,
    /// `viewsPerSession`, `avgEngagedSeconds`, `avgScrollDepth`, `event:<type>`, `goal:<name>`.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "events" => Self::Events,
            "pageviews" => Self::Pageviews,
            "visitors" => Self::Visitors,
            "sessions" => Self::Sessions,
            "bounceRate" => Self::BounceRate,
            "viewsPerSession" => Self::ViewsPerSession,
            "avgEngagedSeconds" => Self::AvgEngagedSeconds,
            "avgScrollDepth" => Self::AvgScrollDepth,
            other => match (other.strip_prefix("event:"), other.strip_prefix("goal:")) {
                (Some(kind), _) if !kind.is_empty() && kind.len() <= MAX_VALUE_BYTES => Self::Event(kind.to_string()),
                (_, Some(goal)) if !goal.is_empty() && goal.len() <= 64 => Self::Goal(goal.to_string()),
                _ => {
                    return Err(Error::InvalidQuery(format!(
                        "unknown measure {other:?}: use events, pageviews, visitors, sessions, bounceRate, viewsPerSession, \
                         avgEngagedSeconds, avgScrollDepth, event:<type> or goal:<name>"
                    )));
                }
            },
        })
    }

    /// Whether smaller is better (the UI colours its changes the other way round).
    pub fn lower_is_better(&self) -> bool {
        matches!(self, Self::BounceRate)
    }
}

/// A dimension the language knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// A column of `events`.
    Column(String),
    /// A custom property (`prop:<key>`).
    Prop(String),
}

impl Dimension {
    /// Reads a dimension name, refusing what is not a column that can be split or filtered on.
    pub fn parse(name: &str) -> Result<Self> {
        if let Some(key) = name.strip_prefix("prop:") {
            if key.is_empty() || key.len() > 256 {
                return Err(Error::InvalidQuery(format!("the property name in {name:?} must have 1 to 256 bytes")));
            }
            return Ok(Self::Prop(key.to_string()));
        }
        let known = events_schema().fields().iter().any(|f| f.name() == name) && !NOT_DIMENSIONS.contains(&name);
        if !known || name == "__time" {
            return Err(Error::InvalidQuery(format!(
                "unknown dimension {name:?}; use a column of events (such as path, country, browser) or prop:<key>"
            )));
        }
        Ok(Self::Column(name.to_string()))
    }

    /// The name the UI knows it by.
    pub fn name(&self) -> String {
        match self {
            Self::Column(c) => c.clone(),
            Self::Prop(key) => format!("prop:{key}"),
        }
    }
}

impl ReportRequest {
    /// Checks the bounds that do not need the schema (lists, lengths).
    pub fn check_bounds(&self) -> Result<()> {
        if self.filters.len() > MAX_FILTERS {
            return Err(Error::InvalidQuery(format!("{} filters are too many; at most {MAX_FILTERS}", self.filters.len())));
        }
        for filter in &self.filters {
            if filter.values.len() > MAX_VALUES {
                return Err(Error::InvalidQuery(format!("a filter has {} values; at most {MAX_VALUES}", filter.values.len())));
            }
            if let Some(long) = filter.values.iter().find(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(Error::InvalidQuery(format!(
                    "a filter value of {} bytes is too long; at most {MAX_VALUE_BYTES}",
                    long.len()
                )));
            }
        }
        if self.split.len() > 2 {
            return Err(Error::InvalidQuery(format!("{} splits are too many; at most 2", self.split.len())));
        }
        if self.measures.is_empty() || self.measures.len() > 16 {
            return Err(Error::InvalidQuery("a report needs 1 to 16 measures".into()));
        }
        if self.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
            return Err(Error::InvalidQuery(format!("limit must be between 1 and {MAX_LIMIT}")));
        }
        if self.site.as_ref().is_some_and(|s| s.len() > 256) {
            return Err(Error::InvalidQuery("the site id is longer than 256 bytes".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(Dimension::parse("path").unwrap(), Dimension::Column("path".into()));
        assert_eq!(Dimension::parse("prop:plan").unwrap(), Dimension::Prop("plan".into()));
        for bad in ["nope", "__time", "props", "event_id", "path; DROP", "prop:"] {
            let e = Dimension::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.split(':').next().unwrap()) || e.contains("property"), "{bad}: {e}");
        }
        assert_eq!(Measure::parse("event:signup").unwrap(), Measure::Event("signup".into()));
        assert!(Measure::parse("revenue").unwrap_err().to_string().contains("unknown measure \"revenue\""));
    }
}
