//! Time ranges of reports: presets cut on the local calendar of a time zone ("today" starts at
//! local midnight, a day across a daylight-saving change has 23 or 25 hours), fixed ranges, and
//! the range a report is compared with.

use serde::Serialize;

use crate::druid::time::parse_instant;
use crate::query::functions::{Period, Zone};
use crate::report::request::RangeSpec;
use crate::{Error, Result};

/// A half-open range `[start, end)` of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    /// The first millisecond.
    pub start: i64,
    /// The first millisecond after.
    pub end: i64,
}

impl TimeRange {
    /// Its length in milliseconds.
    pub fn length(&self) -> i64 {
        self.end - self.start
    }
}

/// How a range was made, for its comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// A whole number of local days.
    Days(i64),
    /// A whole number of local months.
    Months(i64),
    /// A fixed length (realtime, 24 hours, a custom range).
    Fixed,
}

fn period(text: &str) -> Result<Period> {
    Period::parse(text).ok_or_else(|| Error::Internal(format!("period {text}")))
}

fn shift(ms: i64, text: &str, step: i64, zone: Zone) -> Result<i64> {
    period(text)?.shift(ms, step, zone).ok_or_else(|| Error::InvalidQuery("the time range is out of range".into()))
}

fn floor(ms: i64, text: &str, zone: Zone) -> Result<i64> {
    period(text)?.floor(ms, zone).ok_or_else(|| Error::InvalidQuery("the time range is out of range".into()))
}

/// The range `spec` names at instant `now` in `zone`; `first` is the data's first time (for
/// `all`).
pub fn resolve(spec: &RangeSpec, zone: Zone, now: i64, first: Option<i64>) -> Result<(TimeRange, Span)> {
    let until_now = now.saturating_add(1);
    if let Some(preset) = &spec.preset {
        let midnight = floor(now, "P1D", zone)?;
        let days = |n: i64| -> Result<(TimeRange, Span)> {
            Ok((TimeRange { start: shift(midnight, "P1D", -(n - 1), zone)?, end: until_now }, Span::Days(n)))
        };
        let month_start = floor(now, "P1M", zone)?;
        let months = |n: i64| -> Result<(TimeRange, Span)> {
            Ok((TimeRange { start: shift(month_start, "P1M", -(n - 1), zone)?, end: until_now }, Span::Months(n)))
        };
        return match preset.as_str() {
            "realtime" => Ok((TimeRange { start: now - 30 * 60_000, end: until_now }, Span::Fixed)),
            "today" => days(1),
            "yesterday" => Ok((TimeRange { start: shift(midnight, "P1D", -1, zone)?, end: midnight }, Span::Days(1))),
            "24h" => Ok((TimeRange { start: now - 86_400_000, end: until_now }, Span::Fixed)),
            "7d" => days(7),
            "28d" => days(28),
            "30d" => days(30),
            "91d" => days(91),
            "month" => months(1),
            "lastMonth" => Ok((TimeRange { start: shift(month_start, "P1M", -1, zone)?, end: month_start }, Span::Months(1))),
            "6mo" => months(6),
            "12mo" => months(12),
            "year" => Ok((TimeRange { start: floor(now, "P1Y", zone)?, end: until_now }, Span::Months(12))),
            "all" => Ok((TimeRange { start: first.unwrap_or(now).min(now), end: until_now }, Span::Fixed)),
            other => Err(Error::InvalidQuery(format!(
                "unknown range preset {other:?}: use realtime, today, yesterday, 24h, 7d, 28d, 30d, 91d, month, lastMonth, \
                 6mo, 12mo, year or all"
            ))),
        };
    }
    let instant = |text: &Option<String>, what: &str| -> Result<i64> {
        let text = text
            .as_deref()
            .ok_or_else(|| Error::InvalidQuery(format!("a range needs a preset, or a start and an end ({what} is missing)")))?;
        let ms = parse_instant(text)
            .ok_or_else(|| Error::InvalidQuery(format!("the range {what} {text:?} is not an ISO-8601 time")))?;
        // A date alone is local midnight in the report's zone (read as UTC above); an instant
        // with a time keeps its own offset (UTC without one).
        if text.contains(['T', 't']) {
            return Ok(ms);
        }
        let first_guess = ms - zone.offset_ms(ms);
        Ok(ms - zone.offset_ms(first_guess))
    };
    let (start, end) = (instant(&spec.start, "start")?, instant(&spec.end, "end")?);
    if end <= start {
        return Err(Error::InvalidQuery("the range ends before it starts".into()));
    }
    // Whole local days compare with the days before on the calendar (a day across a change of
    // clocks has 23 or 25 hours), not with a fixed number of hours.
    let dates = [&spec.start, &spec.end].iter().all(|t| t.as_deref().is_some_and(|t| !t.contains(['T', 't'])));
    if dates {
        let days = (end - start + 12 * 3_600_000) / 86_400_000;
        return Ok((TimeRange { start, end }, Span::Days(days.max(1))));
    }
    Ok((TimeRange { start, end }, Span::Fixed))
}

/// The range a report over `range` is compared with: `previous` (the same span just before;
/// for a range that ends now, the same part of the span before it) or `year` (a year before).
pub fn compared(range: TimeRange, span: Span, how: &str, zone: Zone) -> Result<TimeRange> {
    let back = |ms: i64| -> Result<i64> {
        match (how, span) {
            ("year", _) => shift(ms, "P1Y", -1, zone),
            ("previous", Span::Days(n)) => shift(ms, "P1D", -n, zone),
            ("previous", Span::Months(n)) => shift(ms, "P1M", -n, zone),
            ("previous", Span::Fixed) => Ok(ms - range.length()),
            (other, _) => Err(Error::InvalidQuery(format!("unknown comparison {other:?}: use previous or year"))),
        }
    };
    Ok(TimeRange { start: back(range.start)?, end: back(range.end)? })
}

/// A time split's granularity for `range` when the report says `auto`.
pub fn auto_granularity(range: TimeRange) -> &'static str {
    match range.length() {
        l if l <= 2 * 3_600_000 => "PT1M",
        l if l <= 3 * 86_400_000 => "PT1H",
        l if l <= 92 * 86_400_000 => "P1D",
        l if l <= 400 * 86_400_000 => "P1W",
        _ => "P1M",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    fn preset(name: &str) -> RangeSpec {
        RangeSpec { preset: Some(name.into()), ..RangeSpec::default() }
    }

    #[test]
    fn presets_follow_the_local_calendar() {
        let ams = Zone::parse("Europe/Amsterdam").unwrap();
        let now = at("2026-03-29T21:30:00Z"); // 23:30 local, on the day clocks went forward
        let (today, span) = resolve(&preset("today"), ams, now, None).unwrap();
        assert_eq!(today.start, at("2026-03-28T23:00:00Z"), "local midnight");
        assert_eq!(span, Span::Days(1));
        assert_eq!(today.end - today.start, 22 * 3_600_000 + 30 * 60_000 + 1, "a 23-hour day, 22.5 h of it gone");
        let (yesterday, _) = resolve(&preset("yesterday"), ams, now, None).unwrap();
        assert_eq!((yesterday.start, yesterday.end), (at("2026-03-27T23:00:00Z"), at("2026-03-28T23:00:00Z")));
        let before = compared(today, span, "previous", ams).unwrap();
        assert_eq!(before.start, yesterday.start, "today against the same hours of yesterday");
        assert_eq!(before.end, now + 1 - 23 * 3_600_000, "to the same local time");
        let (month, span) = resolve(&preset("month"), ams, now, None).unwrap();
        assert_eq!(month.start, at("2026-02-28T23:00:00Z"));
        assert_eq!(compared(month, span, "previous", ams).unwrap().start, at("2026-01-31T23:00:00Z"));
        assert_eq!(compared(month, span, "year", ams).unwrap().start, at("2025-02-28T23:00:00Z"));
        let fixed = RangeSpec { start: Some("2026-03-01".into()), end: Some("2026-03-08".into()), ..RangeSpec::default() };
        let (week, span) = resolve(&fixed, Zone::utc(), now, None).unwrap();
        assert_eq!(compared(week, span, "previous", ams).unwrap(), TimeRange { start: at("2026-02-22"), end: at("2026-03-01") });
        // Dates are local midnights: across the change to summer time the week has 167 hours.
        let (local, local_span) = resolve(
            &RangeSpec { start: Some("2026-03-25".into()), end: Some("2026-04-01".into()), ..RangeSpec::default() },
            ams,
            now,
            None,
        )
        .unwrap();
        assert_eq!((local.start, local.end), (at("2026-03-24T23:00:00Z"), at("2026-03-31T22:00:00Z")));
        assert_eq!(local_span, Span::Days(7));
        let before = compared(local, local_span, "previous", ams).unwrap();
        assert_eq!(before.start, at("2026-03-17T23:00:00Z"), "the week before starts at local midnight too");
        let (instant, _) = resolve(
            &RangeSpec {
                start: Some("2026-03-25T00:00:00Z".into()),
                end: Some("2026-03-26T00:00:00Z".into()),
                ..RangeSpec::default()
            },
            ams,
            now,
            None,
        )
        .unwrap();
        assert_eq!(instant.start, at("2026-03-25T00:00:00Z"), "an instant keeps its own offset");
        assert!(resolve(&preset("fortnight"), ams, now, None).is_err());
        assert!(resolve(&RangeSpec::default(), ams, now, None).unwrap_err().to_string().contains("needs a preset"));
    }
}
