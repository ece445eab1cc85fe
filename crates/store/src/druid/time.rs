//! Time in native queries: ISO-8601 instants and intervals as Druid's clients write them, and
//! granularities (bucket sizes) with their time zone and origin.

use serde_json::Value;

use crate::query::functions::{Period, Zone, format_time};
use crate::{Error, Result};

/// The most buckets a granularity may cut a query's time range into.
pub const MAX_BUCKETS: u64 = 100_000;

/// Parses an ISO-8601 instant of any precision Druid's clients send: `2015`, `2015-03-12`,
/// `2015-03-12T08Z`, `2015-03-12T08:30Z`, `2015-03-12T08:30:00.000+01:00`, … Without a zone
/// it is UTC. Returns milliseconds since the epoch.
pub fn parse_instant(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i32 = digits(parts.next()?, 4)?;
    let month: u32 = parts.next().map_or(Some(1), |m| digits(m, 2))?;
    let day: u32 = parts.next().map_or(Some(1), |d| digits(d, 2))?;
    if parts.next().is_some() {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let (mut hour, mut minute, mut second, mut millis, mut offset_s) = (0u32, 0u32, 0u32, 0u32, 0i32);
    if let Some(rest) = rest {
        let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (clock, fraction) = match clock.split_once(['.', ',']) {
            Some((c, f)) => (c, Some(f)),
            None => (clock, None),
        };
        let mut fields = clock.split(':');
        hour = digits(fields.next()?, 2)?;
        minute = fields.next().map_or(Some(0), |m| digits(m, 2))?;
        second = fields.next().map_or(Some(0), |s| digits(s, 2))?;
        if fields.next().is_some() {
            return None;
        }
        if let Some(f) = fraction {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{f:0<3}");
            millis = padded[..3].parse().ok()?;
        }
        offset_s = match zone {
            "" | "Z" | "z" => 0,
            _ => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let body: String = zone[1..].chars().filter(|c| *c != ':').collect();
                if !body.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let (h, m) = match body.len() {
                    2 => (digits::<i32>(&body, 2)?, 0),
                    4 => (digits::<i32>(&body[..2], 2)?, digits::<i32>(&body[2..], 2)?),
                    _ => return None,
                };
                if h > 18 || m > 59 {
                    return None;
                }
                sign * (h * 3600 + m * 60)
            }
        };
    }
    let time = chrono::NaiveTime::from_hms_milli_opt(hour, minute, second, millis)?;
    let local = date.and_time(time).and_utc().timestamp_millis();
    local.checked_sub(i64::from(offset_s) * 1000)
}

/// A number of exactly `width` digits.
fn digits<T: std::str::FromStr>(text: &str, width: usize) -> Option<T> {
    (text.len() == width && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// A half-open time range `[start, end)` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// First millisecond in the range.
    pub start: i64,
    /// First millisecond after the range.
    pub end: i64,
}

impl Interval {
    /// Parses `start/end`, `start/period` or `period/end`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidQuery(format!("interval {text:?} {why}; write start/end, start/period or period/end in ISO-8601"))
        };
        let (a, b) = text.split_once('/').ok_or_else(|| bad("has no '/'"))?;
        let is_period = |s: &str| s.starts_with(['P', 'p']);
        let (start, end) = match (is_period(a), is_period(b)) {
            (false, false) => (
                parse_instant(a).ok_or_else(|| bad("has an invalid start"))?,
                parse_instant(b).ok_or_else(|| bad("has an invalid end"))?,
            ),
            (false, true) => {
                let start = parse_instant(a).ok_or_else(|| bad("has an invalid start"))?;
                let period = Period::parse(b).ok_or_else(|| bad("has an invalid period"))?;
                (start, period.shift(start, 1, Zone::utc()).ok_or_else(|| bad("ends out of range"))?)
            }
            (true, false) => {
                let end = parse_instant(b).ok_or_else(|| bad("has an invalid end"))?;
                let period = Period::parse(a).ok_or_else(|| bad("has an invalid period"))?;
                (period.shift(end, -1, Zone::utc()).ok_or_else(|| bad("starts out of range"))?, end)
            }
            (true, true) => return Err(bad("has two periods")),
        };
        if end < start {
            return Err(bad("ends before it starts"));
        }
        Ok(Self { start, end })
    }

    /// Reads `intervals` in any of its forms: a string (several separated by commas), an array
    /// of strings, or `{"type": "intervals", "intervals": [...]}`. `None` (absent or null)
    /// means all of time.
    pub fn list(value: Option<&Value>) -> Result<Option<Vec<Self>>> {
        let texts: Vec<String> = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Error::InvalidQuery("intervals must be strings".into())))
                .collect::<Result<_>>()?,
            Some(Value::Object(o)) => match (o.get("type").and_then(Value::as_str), o.get("intervals")) {
                (Some("intervals"), Some(inner)) => return Self::list(Some(inner)),
                (Some("segments"), _) => {
                    return Err(Error::Unsupported("intervals of type \"segments\" are not supported; give intervals".into()));
                }
                _ => return Err(Error::InvalidQuery("intervals must be {\"type\": \"intervals\", \"intervals\": [...]}".into())),
            },
            Some(_) => return Err(Error::InvalidQuery("intervals must be a string, an array or an object".into())),
        };
        if texts.len() > 10_000 {
            return Err(Error::InvalidQuery(format!("{} intervals are too many (at most 10000)", texts.len())));
        }
        texts.iter().map(|t| Self::parse(t.trim())).collect::<Result<Vec<_>>>().map(Some)
    }
}

/// How a query cuts time into buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum Granularity {
    /// One bucket for everything.
    All,
    /// Millisecond buckets (each distinct time its own).
    None,
    /// Calendar periods in a time zone, optionally counted from an origin.
    Period {
        /// The ISO-8601 text, for the plan.
        text: String,
        /// The period.
        period: Period,
        /// Where bucket boundaries are computed.
        zone: Zone,
        /// The zone as given (for the plan), `UTC` by default.
        zone_text: String,
        /// A bucket boundary.
        origin: Option<i64>,
    },
    /// Fixed-length buckets counted from an origin (the epoch by default).
    Duration {
        /// Bucket length, ms.
        ms: i64,
        /// A bucket boundary.
        origin: i64,
    },
}

impl Granularity {
    /// Reads a granularity: a name (`all`, `none`, `minute`, `fifteen_minute`, `hour`, `day`,
    /// …, any case) or `{"type": "period" | "duration" | "all" | "none", …}`. Absent means `all`.
    pub fn from_json(value: Option<&Value>) -> Result<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self::All),
            Some(Value::String(name)) => Self::named(name),
            Some(Value::Object(o)) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "all" | "none" => Self::named(kind),
                    "period" => {
                        let text = o.get("period").and_then(Value::as_str).unwrap_or_default();
                        let period = Period::parse(text).ok_or_else(|| {
                            Error::InvalidQuery(format!("granularity period {text:?} is not an ISO-8601 period such as PT1H"))
                        })?;
                        let zone_text = match o.get("timeZone") {
                            Some(Value::String(z)) => z.clone(),
                            _ => "UTC".to_string(),
                        };
                        let zone = Zone::parse(&zone_text)
                            .ok_or_else(|| Error::InvalidQuery(format!("unknown time zone {zone_text:?} in the granularity")))?;
                        let origin = origin(o.get("origin"))?;
                        if origin.is_some() && matches!(period, Period::Months(_)) {
                            return Err(Error::Unsupported(
                                "an origin with a period of months or years is not supported; drop the origin".into(),
                            ));
                        }
                        Ok(Self::Period { text: text.to_string(), period, zone, zone_text, origin })
                    }
                    "duration" => {
                        let ms = match o.get("duration") {
                            Some(Value::Number(n)) => n.as_i64(),
                            Some(Value::String(s)) => s.parse().ok(),
                            _ => None,
                        }
                        .filter(|ms| *ms > 0)
                        .ok_or_else(|| {
                            Error::InvalidQuery("a duration granularity needs a positive \"duration\" in ms".into())
                        })?;
                        Ok(Self::Duration { ms, origin: origin(o.get("origin"))?.unwrap_or(0) })
                    }
                    other => Err(Error::InvalidQuery(format!("unknown granularity type {other:?}"))),
                }
            }
            Some(other) => Err(Error::InvalidQuery(format!("granularity must be a name or an object, not {other}"))),
        }
    }

    fn named(name: &str) -> Result<Self> {
        let period = match name.to_ascii_lowercase().as_str() {
            "all" => return Ok(Self::All),
            "none" => return Ok(Self::None),
            "second" => "PT1S",
            "minute" => "PT1M",
            "five_minute" => "PT5M",
            "ten_minute" => "PT10M",
            "fifteen_minute" => "PT15M",
            "thirty_minute" => "PT30M",
            "hour" => "PT1H",
            "six_hour" => "PT6H",
            "eight_hour" => "PT8H",
            "day" => "P1D",
            "week" => "P1W",
            "month" => "P1M",
            "quarter" => "P3M",
            "year" => "P1Y",
            other => return Err(Error::InvalidQuery(format!("unknown granularity {other:?}"))),
        };
        let p = Period::parse(period).ok_or_else(|| Error::Internal(format!("period {period}")))?;
        Ok(Self::Period { text: period.into(), period: p, zone: Zone::utc(), zone_text: "UTC".into(), origin: None })
    }

    /// The start of the bucket holding `ms`.
    pub fn floor(&self, ms: i64) -> Option<i64> {
        match self {
            Self::All | Self::None => Some(ms),
            Self::Period { period, zone, origin, .. } => period.floor_from(ms, *origin, *zone),
            Self::Duration { ms: d, origin } => ms.checked_sub(*origin)?.div_euclid(*d).checked_mul(*d)?.checked_add(*origin),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(&self, start: i64) -> Option<i64> {
        match self {
            Self::All => None,
            Self::None => start.checked_add(1),
            Self::Period { period, zone, .. } => period.shift(start, 1, *zone),
            Self::Duration { ms, .. } => start.checked_add(*ms),
        }
    }

    /// The bucket starts that cover `[start, end)`, refused past [`MAX_BUCKETS`].
    pub fn buckets(&self, start: i64, end: i64) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        let Some(mut at) = self.floor(start) else { return Ok(out) };
        if matches!(self, Self::All) {
            return Ok(vec![start]);
        }
        while at < end {
            if out.len() as u64 >= MAX_BUCKETS {
                return Err(self.too_many());
            }
            out.push(at);
            match self.next(at) {
                Some(next) if next > at => at = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The error for a granularity that cuts a range into too many buckets.
    pub fn too_many(&self) -> Error {
        Error::TooBig(format!(
            "the granularity cuts the intervals into more than {MAX_BUCKETS} buckets; use a coarser granularity or shorter intervals"
        ))
    }

    /// Renders a bucket start as Druid does: ISO-8601 with milliseconds, in the granularity's
    /// zone (`Z` for UTC, else the offset).
    pub fn format(&self, ms: i64) -> Value {
        let zone = match self {
            Self::Period { zone, .. } => *zone,
            _ => Zone::utc(),
        };
        format_time(ms, None, zone).map_or(Value::Null, Value::String)
    }
}

/// An `origin`: an ISO instant, or null.
fn origin(value: Option<&Value>) -> Result<Option<i64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            parse_instant(s).map(Some).ok_or_else(|| Error::InvalidQuery(format!("origin {s:?} is not an ISO-8601 time")))
        }
        Some(Value::Number(n)) => Ok(n.as_i64()),
        Some(other) => Err(Error::InvalidQuery(format!("origin must be an ISO-8601 time, not {other}"))),
    }
}

/// ISO-8601 text of `ms` in UTC with milliseconds, as Druid writes times.
pub fn iso(ms: i64) -> Value {
    format_time(ms, None, Zone::utc()).map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: i64 = 86_400_000;

    #[test]
    fn instants_of_every_precision() {
        let t = parse_instant("2015-03-12T00:00:00.000Z").unwrap();
        assert_eq!(parse_instant("2015-03-12"), Some(t));
        assert_eq!(parse_instant("2015-03-12T00Z"), Some(t));
        assert_eq!(parse_instant("2015-03-12T08:30Z"), Some(t + 8 * 3_600_000 + 30 * 60_000));
        assert_eq!(parse_instant("2015-03-12T01:00:00+01:00"), Some(t));
        assert_eq!(parse_instant("2015-03-11T16:00:00.000-0800"), Some(t));
        assert_eq!(parse_instant("2015-03-12T00:00:00.5Z"), Some(t + 500));
        assert_eq!(parse_instant("2015"), parse_instant("2015-01-01T00:00:00Z"));
        assert_eq!(parse_instant("1000"), Some(-30_610_224_000_000));
        for bad in ["", "15-03-12", "2015-13-01", "2015-03-12T25", "2015-03-12T00:00+19:00", "yesterday", "2015-03-12T00:00:00.Z"]
        {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn intervals_in_every_form() {
        let day = Interval::parse("2015-03-12/2015-03-13").unwrap();
        assert_eq!(day.end - day.start, DAY);
        assert_eq!(Interval::parse("2015-03-12/P1D").unwrap(), day);
        assert_eq!(Interval::parse("P1D/2015-03-13").unwrap(), day);
        assert_eq!(Interval::parse("2015-03-12T00Z/pt24h").unwrap(), day);
        assert!(Interval::parse("2015-03-13/2015-03-12").unwrap_err().to_string().contains("ends before it starts"));
        assert!(Interval::parse("2015-03-12").is_err());
        let all = Interval::list(Some(&json!("1000/3000"))).unwrap().unwrap();
        assert_eq!(all.len(), 1);
        let grafana = json!({"type": "intervals", "intervals": ["2015-03-12/2015-03-13", "2015-03-14/P1D"]});
        assert_eq!(Interval::list(Some(&grafana)).unwrap().unwrap().len(), 2);
        assert_eq!(Interval::list(Some(&json!("2015-03-12/P1D,2015-03-14/P1D"))).unwrap().unwrap().len(), 2);
        assert_eq!(Interval::list(None).unwrap(), None);
    }

    #[test]
    fn granularities_and_their_buckets() {
        let t = parse_instant("2013-08-31T01:02:33Z").unwrap();
        let hour = Granularity::from_json(Some(&json!("HOUR"))).unwrap();
        assert_eq!(hour.format(hour.floor(t).unwrap()), json!("2013-08-31T01:00:00.000Z"));
        let la =
            Granularity::from_json(Some(&json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}))).unwrap();
        assert_eq!(la.format(la.floor(t).unwrap()), json!("2013-08-30T00:00:00.000-07:00"));
        let origin =
            Granularity::from_json(Some(&json!({"type": "period", "period": "PT1H", "origin": "2012-01-01T00:30:00Z"}))).unwrap();
        assert_eq!(origin.format(origin.floor(t).unwrap()), json!("2013-08-31T00:30:00.000Z"));
        let duration =
            Granularity::from_json(Some(&json!({"type": "duration", "duration": "7200000", "origin": "2012-01-01T00:30:00Z"})))
                .unwrap();
        assert_eq!(duration.format(duration.floor(t).unwrap()), json!("2013-08-31T00:30:00.000Z"));
        assert_eq!(hour.buckets(t, t + 3 * 3_600_000).unwrap().len(), 4);
        let second = Granularity::from_json(Some(&json!("second"))).unwrap();
        assert!(matches!(second.buckets(0, 365 * DAY), Err(Error::TooBig(_))));
        assert!(Granularity::from_json(Some(&json!("fortnight"))).is_err());
        // Days on the local calendar: 23 hours when the clocks go forward, 25 when they go back.
        let la =
            Granularity::from_json(Some(&json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}))).unwrap();
        let spring =
            la.buckets(parse_instant("2024-03-09T12:00:00Z").unwrap(), parse_instant("2024-03-13T00:00:00Z").unwrap()).unwrap();
        let lengths: Vec<i64> = spring.windows(2).map(|w| (w[1] - w[0]) / 3_600_000).collect();
        assert_eq!(lengths, [24, 23, 24]);
        let autumn =
            la.buckets(parse_instant("2024-11-02T12:00:00Z").unwrap(), parse_instant("2024-11-06T00:00:00Z").unwrap()).unwrap();
        let lengths: Vec<i64> = autumn.windows(2).map(|w| (w[1] - w[0]) / 3_600_000).collect();
        assert_eq!(lengths, [24, 25, 24]);
        assert!(spring.iter().chain(&autumn).all(|b| la.floor(*b) == Some(*b)), "every bucket start is a floor");
        let months =
            Granularity::from_json(Some(&json!({"type": "period", "period": "P1M", "timeZone": "America/Los_Angeles"}))).unwrap();
        let starts = months
            .buckets(parse_instant("2024-02-15T00:00:00Z").unwrap(), parse_instant("2024-05-01T00:00:00Z").unwrap())
            .unwrap();
        assert_eq!(
            starts.iter().map(|b| months.format(*b)).collect::<Vec<_>>(),
            [
                json!("2024-02-01T00:00:00.000-08:00"),
                json!("2024-03-01T00:00:00.000-08:00"),
                json!("2024-04-01T00:00:00.000-07:00"),
            ]
        );
        assert_eq!(Granularity::from_json(None).unwrap(), Granularity::All);
    }
}
