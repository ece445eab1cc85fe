//! The part every analytics request shares — site, time range, time zone, filters — and the
//! SQL of the events it selects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::query::functions::Zone;
use crate::report::compile::{condition, quote};
use crate::report::range::{TimeRange, resolve};
use crate::report::request::{FilterSpec, MAX_FILTERS, MAX_VALUE_BYTES, MAX_VALUES, RangeSpec};
use crate::{Error, Result};

/// Who and when an analytics request looks at. Requests embed it (`#[serde(flatten)]`), with
/// a catch-all map that [`refuse_unknown`] checks, since serde cannot deny unknown fields
/// across a flattened struct.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Only this site's events (all sites when absent).
    #[serde(default)]
    pub site: Option<String>,
    /// The time range (a preset or fixed instants, as in reports).
    pub range: RangeSpec,
    /// The IANA zone days are cut in (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Conditions that pick the sessions or visitors analysed: those with an event in range
    /// matching them all.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
}

/// A scope checked and resolved at one instant.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The range.
    pub range: TimeRange,
    /// The zone.
    pub zone: Zone,
    /// Its name.
    pub zone_name: String,
    /// SQL conditions every counted event meets (range, site, no bots).
    pub events: Vec<String>,
    /// The filters as one SQL condition (`TRUE` without filters).
    pub hit: String,
}

/// `MILLIS_TO_TIMESTAMP(ms)`.
pub(crate) fn millis(ms: i64) -> String {
    format!("MILLIS_TO_TIMESTAMP({ms})")
}

/// `__time` in milliseconds.
pub(crate) const TIME_MS: &str = "TIMESTAMP_TO_MILLIS(\"__time\")";

impl Scope {
    /// Checks the scope and resolves its range at `now`; `first` is the data's first time.
    pub fn resolve(&self, now: i64, first: Option<i64>) -> Result<Resolved> {
        if self.filters.len() > MAX_FILTERS {
            return Err(Error::InvalidQuery(format!("{} filters are too many; at most {MAX_FILTERS}", self.filters.len())));
        }
        for filter in &self.filters {
            if filter.values.len() > MAX_VALUES || filter.values.iter().any(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(Error::InvalidQuery(format!(
                    "a filter may have {MAX_VALUES} values of at most {MAX_VALUE_BYTES} bytes"
                )));
            }
        }
        if self.site.as_ref().is_some_and(|s| s.len() > 256) {
            return Err(Error::InvalidQuery("the site id is longer than 256 bytes".into()));
        }
        let zone_name = self.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let zone = Zone::parse(&zone_name).ok_or_else(|| {
            Error::InvalidQuery(format!("unknown time zone {zone_name:?}; use an IANA name such as Europe/Amsterdam"))
        })?;
        let (range, _) = resolve(&self.range, zone, now, first)?;
        let mut events = vec![
            format!("\"__time\" >= {} AND \"__time\" < {}", millis(range.start), millis(range.end)),
            "NOT \"is_bot\" AND NOT \"is_duplicate\" AND NOT \"is_corrupt\"".into(),
            "\"party_id\" IS NOT NULL".into(),
        ];
        if let Some(site) = &self.site {
            events.push(format!("\"site\" = {}", quote(site)));
        }
        let hits = self.filters.iter().map(condition).collect::<Result<Vec<_>>>()?;
        let hit = if hits.is_empty() { "TRUE".into() } else { format!("({})", hits.join(" AND ")) };
        Ok(Resolved { range, zone, zone_name, events, hit })
    }
}

/// Fails naming the first field a request does not know.
pub fn refuse_unknown(unknown: &BTreeMap<String, Value>) -> Result<()> {
    match unknown.keys().next() {
        Some(field) => Err(Error::InvalidQuery(format!("unknown field {field:?} in the request"))),
        None => Ok(()),
    }
}

impl Resolved {
    /// The events' conditions joined by AND.
    pub fn where_clause(&self) -> String {
        self.events.join(" AND ")
    }

    /// The same conditions, but for all time before the range's end instead of the range.
    pub fn where_until_end(&self) -> String {
        std::iter::once(format!("\"__time\" < {}", millis(self.range.end)))
            .chain(self.events.iter().skip(1).cloned())
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}
