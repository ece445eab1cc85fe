//! Druid SQL's time functions as DataFusion scalar functions, and `APPROX_COUNT_DISTINCT`.
//!
//! | function | meaning |
//! | --- | --- |
//! | `TIME_FLOOR(t, period [, origin [, zone]])` | floor to an ISO-8601 period (`PT5M`, `PT1H`, `P1D`, `P1W`, `P1M`, `P1Y`) |
//! | `TIME_SHIFT(t, period, step [, zone])` | add `step` periods |
//! | `TIME_FORMAT(t [, pattern [, zone]])` | format with a Joda pattern; ISO-8601 by default |
//! | `TIME_PARSE(s [, pattern [, zone]])` | parse with a Joda pattern, ISO-8601 by default; NULL when it does not parse |
//! | `MILLIS_TO_TIMESTAMP(ms)`, `TIMESTAMP_TO_MILLIS(t)` | conversions |
//!
//! Zones are IANA names (`Europe/Amsterdam`) or fixed offsets (`+02:00`); the default is UTC.
//! `FLOOR(t TO unit)` is rewritten to `date_trunc` before planning (see `statement.rs`).
//! Every computation is checked: an argument out of range gives NULL or a clear error, never a
//! panic.

use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use datafusion::common::{DataFusionError, Result as DfResult, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// The type of timestamps: UTC milliseconds.
pub(crate) const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// An ISO-8601 period as Druid uses them for granularities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A fixed number of milliseconds (seconds to days).
    Millis(i64),
    /// Weeks, which start on Monday.
    Weeks(i64),
    /// Calendar months (a year is 12).
    Months(i64),
}

impl Period {
    /// Parses `PT15M`, `PT1H`, `P1D`, `P1W`, `P3M`, `P1Y`, `P1DT12H`, … Periods longer than
    /// [`MAX_PERIOD_MS`] are refused: no timestamp is that far from the epoch.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('P').or_else(|| text.strip_prefix('p'))?;
        let (date, time) = match rest.split_once(['T', 't']) {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut months = 0i64;
        let mut millis = 0i64;
        let mut weeks = 0i64;
        let mut any = false;
        for (part, in_time) in [(date, false), (time.unwrap_or(""), true)] {
            let mut number = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() || (c == '.' && in_time) {
                    number.push(c);
                    continue;
                }
                // Only seconds may have a fraction, to the millisecond (`PT0.001S`).
                if let Some((whole, fraction)) = number.split_once('.') {
                    if !c.eq_ignore_ascii_case(&'S') || fraction.is_empty() || fraction.len() > 3 || fraction.contains('.') {
                        return None;
                    }
                    let ms = whole
                        .parse::<i64>()
                        .ok()?
                        .checked_mul(1000)?
                        .checked_add(format!("{fraction:0<3}").parse::<i64>().ok()?)?;
                    number.clear();
                    any = true;
                    millis = millis.checked_add(ms)?;
                    continue;
                }
                let n: i64 = number.parse().ok()?;
                number.clear();
                any = true;
                let (total, unit) = match (c.to_ascii_uppercase(), in_time) {
                    ('Y', false) => (&mut months, 12),
                    ('M', false) => (&mut months, 1),
                    ('W', false) => (&mut weeks, 1),
                    ('D', false) => (&mut millis, 86_400_000),
                    ('H', true) => (&mut millis, 3_600_000),
                    ('M', true) => (&mut millis, 60_000),
                    ('S', true) => (&mut millis, 1000),
                    _ => return None,
                };
                *total = total.checked_add(n.checked_mul(unit)?)?;
            }
            if !number.is_empty() {
                return None;
            }
        }
        let period = match (months, weeks, millis) {
            _ if !any => return None,
            (m, 0, 0) if m > 0 => Self::Months(m),
            (0, w, 0) if w > 0 => Self::Weeks(w),
            (0, 0, ms) if ms > 0 => Self::Millis(ms),
            _ => return None,
        };
        (period.approx_ms()? <= MAX_PERIOD_MS).then_some(period)
    }

    /// The period's length in milliseconds, months counted as 31 days.
    fn approx_ms(self) -> Option<i64> {
        match self {
            Self::Millis(p) => Some(p),
            Self::Weeks(w) => w.checked_mul(WEEK_MS),
            Self::Months(m) => m.checked_mul(31 * 86_400_000),
        }
    }

    /// The start of the period containing `ms`, in zone `zone`; `None` when it is out of the
    /// range of timestamps.
    pub fn floor(self, ms: i64, zone: Zone) -> Option<i64> {
        let offset = zone.offset_ms(ms);
        let local = ms.checked_add(offset)?;
        let floored = match self {
            Self::Millis(p) => local.div_euclid(p).checked_mul(p)?,
            // 1970-01-05 was a Monday.
            Self::Weeks(w) => {
                let p = w.checked_mul(WEEK_MS)?;
                let monday = 4 * 86_400_000;
                local.checked_sub(monday)?.div_euclid(p).checked_mul(p)?.checked_add(monday)?
            }
            Self::Months(m) => {
                let date = DateTime::from_timestamp_millis(local)?.naive_utc();
                let index = (i64::from(date.year()) - 1970) * 12 + i64::from(date.month0());
                let start = index.div_euclid(m).checked_mul(m)?;
                let (year, month) = (start.div_euclid(12).checked_add(1970)?, start.rem_euclid(12) + 1);
                let first = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, 1)?;
                first.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()
            }
        };
        floored.checked_sub(zone.offset_ms(floored.checked_sub(offset)?))
    }

    /// The start of the period containing `ms` when periods are counted from `origin` (fixed
    /// lengths only: months ignore it), else as [`Period::floor`].
    pub fn floor_from(self, ms: i64, origin: Option<i64>, zone: Zone) -> Option<i64> {
        let fixed = match self {
            Self::Millis(p) => p,
            Self::Weeks(w) => w.checked_mul(WEEK_MS)?,
            Self::Months(_) => return self.floor(ms, zone),
        };
        match origin {
            Some(o) => ms.checked_sub(o)?.div_euclid(fixed).checked_mul(fixed)?.checked_add(o),
            None => self.floor(ms, zone),
        }
    }

    /// `ms` moved by `step` periods; `None` when the result is out of the range of timestamps.
    /// Periods under a day move by their length; days, weeks and months move on the local
    /// calendar of `zone`, so a day is 23 or 25 hours across a daylight-saving change, as in
    /// Druid.
    pub fn shift(self, ms: i64, step: i64, zone: Zone) -> Option<i64> {
        let offset = zone.offset_ms(ms);
        let local = ms.checked_add(offset)?;
        let moved_local = match self {
            Self::Millis(p) if p % DAY_MS != 0 => return ms.checked_add(p.checked_mul(step)?),
            Self::Millis(p) => local.checked_add(p.checked_mul(step)?)?,
            Self::Weeks(w) => local.checked_add(w.checked_mul(WEEK_MS)?.checked_mul(step)?)?,
            Self::Months(m) => {
                let date = DateTime::from_timestamp_millis(local)?.naive_utc();
                let total = (i64::from(date.year()) * 12 + i64::from(date.month0())).checked_add(m.checked_mul(step)?)?;
                let (year, month) = (i32::try_from(total.div_euclid(12)).ok()?, (total.rem_euclid(12) + 1) as u32);
                let day = date.day().min(days_in_month(year, month));
                date.with_day(1)?.with_year(year)?.with_month(month)?.with_day(day)?.and_utc().timestamp_millis()
            }
        };
        local_to_utc(moved_local, zone)
    }
}

/// The instant of local time `local` (ms, as if UTC) in `zone`.
pub(crate) fn local_to_utc(local: i64, zone: Zone) -> Option<i64> {
    local.checked_sub(zone.offset_ms(local.checked_sub(zone.offset_ms(local))?))
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a week.
const WEEK_MS: i64 = 7 * 86_400_000;
/// The longest period accepted: ten thousand years.
pub(crate) const MAX_PERIOD_MS: i64 = 10_000 * 366 * 86_400_000;

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

/// A time zone argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset from UTC (UTC itself is offset 0).
    Fixed(FixedOffset),
    /// An IANA zone with daylight saving rules.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses `UTC`, `Etc/UTC`, `Europe/Amsterdam`, `+02:00`, `-0530`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
            return Some(Self::Fixed(FixedOffset::east_opt(0)?));
        }
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Some(Self::Named(tz));
        }
        let (sign, rest) = match text.as_bytes().first()? {
            b'+' => (1, &text[1..]),
            b'-' => (-1, &text[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if digits.len() != 4 {
            return None;
        }
        let h: i32 = digits[..2].parse().ok()?;
        let m: i32 = digits[2..].parse().ok()?;
        FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(Self::Fixed)
    }

    /// UTC.
    pub(crate) fn utc() -> Self {
        Self::Fixed(Utc.fix())
    }

    /// The offset from UTC at instant `ms`, in milliseconds.
    pub(crate) fn offset_ms(self, ms: i64) -> i64 {
        match self {
            Self::Fixed(f) => i64::from(f.local_minus_utc()) * 1000,
            Self::Named(tz) => {
                let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
                i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()) * 1000
            }
        }
    }
}

/// Converts a Joda-Time pattern (what Druid uses) to a chrono format string.
pub(crate) fn joda_to_chrono(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                push_literal(&mut out, chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y' | 'Y', 2) => "%y",
            ('y' | 'Y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('e', _) => "%u",
            ('w', _) => "%V",
            ('x', _) => "%G",
            ('Z', 1) => "%z",
            ('Z', _) => "%:z",
            ('z', _) => "%Z",
            _ => return Err(format!("unsupported pattern letters {:?}", c.to_string().repeat(n))),
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Which Druid time function an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Floor,
    Shift,
    Format,
    Parse,
    MillisToTimestamp,
    TimestampToMillis,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DruidTime {
    kind: Kind,
    name: &'static str,
    signature: Signature,
}

impl DruidTime {
    fn udf(kind: Kind, name: &'static str) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self { kind, name, signature: Signature::user_defined(Volatility::Immutable) })
    }
}

/// The Druid time functions.
pub fn druid_time_functions() -> Vec<ScalarUDF> {
    vec![
        DruidTime::udf(Kind::Floor, "time_floor"),
        DruidTime::udf(Kind::Shift, "time_shift"),
        DruidTime::udf(Kind::Format, "time_format"),
        DruidTime::udf(Kind::Parse, "time_parse"),
        DruidTime::udf(Kind::MillisToTimestamp, "millis_to_timestamp"),
        DruidTime::udf(Kind::TimestampToMillis, "timestamp_to_millis"),
    ]
}

/// Argument `i` as a constant string (its first value), `None` when absent or NULL.
pub(crate) fn constant_string(arrays: &[ArrayRef], i: usize, name: &str) -> DfResult<Option<String>> {
    let Some(array) = arrays.get(i) else { return Ok(None) };
    let strings =
        array.as_string_opt::<i32>().ok_or_else(|| DataFusionError::Plan(format!("{name}: argument {} must be text", i + 1)))?;
    Ok((strings.len() > 0 && strings.is_valid(0)).then(|| strings.value(0).to_string()))
}

/// Argument `i` as a time zone, UTC when absent.
pub(crate) fn zone_arg(arrays: &[ArrayRef], i: usize, name: &str) -> DfResult<Zone> {
    match constant_string(arrays, i, name)? {
        None => Ok(Zone::utc()),
        Some(z) => Zone::parse(&z).ok_or_else(|| DataFusionError::Plan(format!("{name}: unknown time zone {z:?}"))),
    }
}

/// An optional Joda pattern argument, converted to a chrono format.
fn pattern_arg(arrays: &[ArrayRef], i: usize, name: &str) -> DfResult<Option<String>> {
    constant_string(arrays, i, name)?
        .map(|p| joda_to_chrono(&p).map_err(|e| DataFusionError::Plan(format!("{name}: {e}"))))
        .transpose()
}

/// Argument `i` as an ISO-8601 period.
pub(crate) fn period_arg(arrays: &[ArrayRef], i: usize, name: &str) -> DfResult<Period> {
    let text = constant_string(arrays, i, name)?.unwrap_or_default();
    Period::parse(&text)
        .ok_or_else(|| DataFusionError::Plan(format!("{name}: {text:?} is not an ISO-8601 period such as PT1H or P1D")))
}

impl ScalarUDFImpl for DruidTime {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let (min, max) = match self.kind {
            Kind::Floor => (2, 4),
            Kind::Shift => (3, 4),
            Kind::Format | Kind::Parse => (1, 3),
            Kind::MillisToTimestamp | Kind::TimestampToMillis => (1, 1),
        };
        if args.len() < min || args.len() > max {
            return plan_err!("{} takes {min} to {max} arguments, not {}", self.name.to_uppercase(), args.len());
        }
        Ok(args
            .iter()
            .enumerate()
            .map(|(i, _)| match (self.kind, i) {
                (Kind::Parse, 0) => DataType::Utf8,
                (Kind::MillisToTimestamp, 0) => DataType::Int64,
                (_, 0) => TS,
                (Kind::Shift, 2) => DataType::Int64,
                _ => DataType::Utf8,
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::Format => DataType::Utf8,
            Kind::TimestampToMillis => DataType::Int64,
            _ => TS,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let name = self.name;
        let out: ArrayRef = match self.kind {
            Kind::Floor => {
                let period = period_arg(&arrays, 1, name)?;
                let origin = match arrays.get(2) {
                    Some(o) if o.data_type() != &DataType::Null && o.is_valid(0) => {
                        let text = constant_string(&arrays, 2, name)?.unwrap_or_default();
                        Some(parse_iso(&text).ok_or_else(|| DataFusionError::Plan(format!("{name}: invalid origin {text:?}")))?)
                    }
                    _ => None,
                };
                let zone = zone_arg(&arrays, 3, name)?;
                let t = cast(&arrays[0], &TS)?;
                let t = t.as_primitive::<TimestampMillisecondType>();
                Arc::new(t.unary_opt::<_, TimestampMillisecondType>(|ms| period.floor_from(ms, origin, zone)))
            }
            Kind::Shift => {
                let period = period_arg(&arrays, 1, name)?;
                let zone = zone_arg(&arrays, 3, name)?;
                let t = cast(&arrays[0], &TS)?;
                let steps = cast(&arrays[2], &DataType::Int64)?;
                let (t, steps) = (t.as_primitive::<TimestampMillisecondType>(), steps.as_primitive::<Int64Type>());
                let shifted: TimestampMillisecondArray =
                    t.iter().zip(steps.iter()).map(|(t, s)| period.shift(t?, s?, zone)).collect();
                Arc::new(shifted)
            }
            Kind::Format => {
                let format = pattern_arg(&arrays, 1, name)?;
                let zone = zone_arg(&arrays, 2, name)?;
                let t = cast(&arrays[0], &TS)?;
                let t = t.as_primitive::<TimestampMillisecondType>();
                let formatted: StringArray = t.iter().map(|ms| format_time(ms?, format.as_deref(), zone)).collect();
                Arc::new(formatted)
            }
            Kind::Parse => {
                let format = pattern_arg(&arrays, 1, name)?;
                let zone = zone_arg(&arrays, 2, name)?;
                let s = cast(&arrays[0], &DataType::Utf8)?;
                let parsed: TimestampMillisecondArray =
                    s.as_string::<i32>().iter().map(|s| parse_time(s?, format.as_deref(), zone)).collect();
                Arc::new(parsed)
            }
            Kind::MillisToTimestamp => {
                let ms = cast(&arrays[0], &DataType::Int64)?;
                Arc::new(ms.as_primitive::<Int64Type>().reinterpret_cast::<TimestampMillisecondType>())
            }
            Kind::TimestampToMillis => {
                let t = cast(&arrays[0], &TS)?;
                Arc::new(t.as_primitive::<TimestampMillisecondType>().reinterpret_cast::<Int64Type>())
            }
        };
        if scalar {
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// `ms` as text: ISO-8601 with milliseconds (`Z` in UTC, else the zone's offset) without a
/// format, else in chrono `format`.
pub(crate) fn format_time(ms: i64, format: Option<&str>, zone: Zone) -> Option<String> {
    let utc = DateTime::from_timestamp_millis(ms)?;
    let text = match format {
        // A zero offset is written `Z`, whatever the zone, as Druid (Joda) writes it.
        None if zone.offset_ms(ms) == 0 => utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => match zone {
            Zone::Fixed(f) => utc.with_timezone(&f).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            Zone::Named(tz) => utc.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        },
        Some(f) => {
            use std::fmt::Write;
            // chrono reports a format it cannot apply as a formatting error, not a panic, only
            // through `write!`.
            let mut out = String::new();
            let written = match zone {
                Zone::Fixed(o) => write!(out, "{}", utc.with_timezone(&o).format(f)),
                Zone::Named(tz) => write!(out, "{}", utc.with_timezone(&tz).format(f)),
            };
            written.ok()?;
            out
        }
    };
    Some(text)
}

/// Parses ISO-8601 (date, date-time, with or without zone) to UTC milliseconds.
pub(crate) fn parse_iso(text: &str) -> Option<i64> {
    parse_time(text, None, Zone::utc())
}

/// Parses `text` with chrono `format` (ISO-8601 without one), local times in `zone`.
pub(crate) fn parse_time(text: &str, format: Option<&str>, zone: Zone) -> Option<i64> {
    let text = text.trim();
    let at_local = |naive: NaiveDateTime| local_to_utc(naive.and_utc().timestamp_millis(), zone);
    if let Some(format) = format {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_millis());
        }
        if let Ok(n) = NaiveDateTime::parse_from_str(text, format) {
            return at_local(n);
        }
        return chrono::NaiveDate::parse_from_str(text, format).ok().and_then(|d| at_local(d.and_hms_opt(0, 0, 0)?));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, f) {
            return at_local(n);
        }
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    if let Ok(n) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(n.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| at_local(d.and_hms_opt(0, 0, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_760_625_123; // 2026-11-27T06:23:45.123Z, a Friday

    #[test]
    fn periods() {
        assert_eq!(Period::parse("PT1H"), Some(Period::Millis(3_600_000)));
        assert_eq!(Period::parse("PT0.001S"), Some(Period::Millis(1)));
        assert_eq!(Period::parse("PT1.5S"), Some(Period::Millis(1500)));
        assert_eq!(Period::parse("PT1.5M"), None);
        assert_eq!(Period::parse("PT.S"), None);
        assert_eq!(Period::parse("PT15M"), Some(Period::Millis(900_000)));
        assert_eq!(Period::parse("P1D"), Some(Period::Millis(86_400_000)));
        assert_eq!(Period::parse("P1DT12H"), Some(Period::Millis(129_600_000)));
        assert_eq!(Period::parse("P1W"), Some(Period::Weeks(1)));
        assert_eq!(Period::parse("P3M"), Some(Period::Months(3)));
        assert_eq!(Period::parse("P1Y"), Some(Period::Months(12)));
        for bad in
            ["", "P", "PT", "1H", "PT1X", "P1H", "PT1D", "P1M1D", "P18014398509481984W", "P99999999999999999999Y", "P20000Y"]
        {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    /// Regression: `TIME_FLOOR(…, 'P18014398509481984W')` multiplied unchecked and then divided
    /// by zero, which panicked the server.
    #[test]
    fn huge_periods_and_instants_never_panic() {
        let utc = Zone::utc();
        let week = Period::Weeks(i64::MAX / 2);
        assert_eq!(week.floor(T, utc), None);
        assert_eq!(Period::Millis(1).shift(i64::MAX, 1, utc), None);
        assert_eq!(Period::Months(12).floor(i64::MAX, utc), None);
        assert_eq!(format_time(i64::MAX, None, utc), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_arguments_never_panic(
            ms in proptest::prelude::any::<i64>(),
            step in proptest::prelude::any::<i64>(),
            amount in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec!["Y", "M", "W", "D", "TH", "TM", "TS"]),
            zone in proptest::sample::select(vec!["UTC", "Europe/Amsterdam", "+14:00", "-12:00", "America/St_Johns"]),
            origin in proptest::prelude::any::<i64>(),
        ) {
            let zone = Zone::parse(zone).unwrap();
            let text = format!("P{amount}{unit}");
            if let Some(period) = Period::parse(&text) {
                let _ = period.floor(ms, zone);
                let _ = period.shift(ms, step, zone);
                if let Period::Millis(p) = period {
                    let _ = ms.checked_sub(origin).map(|d| d.div_euclid(p));
                }
            }
            let _ = format_time(ms, None, zone);
            let _ = format_time(ms, Some("%Y-%m-%d %H:%M:%S%.3f %:z"), zone);
        }

        /// The registered functions themselves, called through SQL with arbitrary arguments:
        /// each call answers a value, NULL or an error, and never panics.
        #[test]
        fn the_functions_answer_or_refuse_whatever_their_arguments(
            ms in proptest::prelude::any::<i64>(),
            step in proptest::prelude::any::<i64>(),
            amount in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec!["Y", "M", "W", "D", "TH", "TM", "TS", "X", ""]),
            zone in proptest::sample::select(vec!["UTC", "Europe/Amsterdam", "+14:00", "-12:00", "Nowhere/City", "+99:99"]),
            origin in proptest::prelude::any::<i64>(),
            pattern in proptest::sample::select(vec!["yyyy-MM-dd", "HH'h'", "QQ", "''", "y".repeat(40).leak() as &str]),
            text in "[0-9TZ:+ -]{0,30}",
        ) {
            let ctx = datafusion::prelude::SessionContext::new();
            for f in druid_time_functions() {
                ctx.register_udf(f);
            }
            let period = format!("P{amount}{unit}");
            let ts = format!("millis_to_timestamp({ms})");
            let queries = [
                format!("SELECT time_floor({ts}, '{period}', millis_to_timestamp({origin}), '{zone}')"),
                format!("SELECT time_floor({ts}, '{period}')"),
                format!("SELECT time_shift({ts}, '{period}', {step}, '{zone}')"),
                format!("SELECT time_format({ts}, '{pattern}', '{zone}')"),
                format!("SELECT time_parse('{text}', '{pattern}', '{zone}')"),
                format!("SELECT time_parse('{text}')"),
                format!("SELECT timestamp_to_millis({ts})"),
            ];
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for sql in queries {
                let _ = runtime.block_on(async { ctx.sql(&sql).await?.collect().await });
            }
        }
    }

    #[test]
    fn floors() {
        let utc = Zone::utc();
        let iso = |ms: Option<i64>| format_time(ms.unwrap(), None, utc).unwrap();
        assert_eq!(iso(Period::parse("PT1H").unwrap().floor(T, utc)), "2026-11-27T06:00:00.000Z");
        assert_eq!(iso(Period::parse("PT15M").unwrap().floor(T, utc)), "2026-11-27T06:15:00.000Z");
        assert_eq!(iso(Period::parse("P1D").unwrap().floor(T, utc)), "2026-11-27T00:00:00.000Z");
        assert_eq!(iso(Period::parse("P1W").unwrap().floor(T, utc)), "2026-11-23T00:00:00.000Z", "weeks start on Monday");
        assert_eq!(iso(Period::parse("P1M").unwrap().floor(T, utc)), "2026-11-01T00:00:00.000Z");
        assert_eq!(iso(Period::parse("P3M").unwrap().floor(T, utc)), "2026-10-01T00:00:00.000Z");
        assert_eq!(iso(Period::parse("P1Y").unwrap().floor(T, utc)), "2026-01-01T00:00:00.000Z");
        let ams = Zone::parse("Europe/Amsterdam").unwrap();
        assert_eq!(iso(Period::parse("P1D").unwrap().floor(T, ams)), "2026-11-26T23:00:00.000Z", "midnight in Amsterdam");
        let plus = Zone::parse("+05:30").unwrap();
        assert_eq!(iso(Period::parse("P1D").unwrap().floor(T, plus)), "2026-11-26T18:30:00.000Z");
    }

    #[test]
    fn shifts() {
        let utc = Zone::utc();
        let iso = |ms: Option<i64>| format_time(ms.unwrap(), None, utc).unwrap();
        assert_eq!(iso(Period::parse("PT1H").unwrap().shift(T, -2, utc)), "2026-11-27T04:23:45.123Z");
        assert_eq!(
            iso(Period::parse("P1M").unwrap().shift(parse_iso("2026-01-31T00:00:00Z").unwrap(), 1, utc)),
            "2026-02-28T00:00:00.000Z"
        );
        assert_eq!(iso(Period::parse("P1Y").unwrap().shift(T, 1, utc)), "2027-11-27T06:23:45.123Z");
    }

    #[test]
    fn formats_and_parses() {
        let utc = Zone::utc();
        assert_eq!(format_time(T, None, utc).unwrap(), "2026-11-27T06:23:45.123Z");
        let f = joda_to_chrono("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        assert_eq!(format_time(T, Some(&f), utc).unwrap(), "2026-11-27 06:23:45.123");
        assert_eq!(format_time(T, Some(&joda_to_chrono("dd MMM yyyy 'at' H'h'").unwrap()), utc).unwrap(), "27 Nov 2026 at 6h");
        assert_eq!(format_time(T, None, Zone::parse("Europe/Amsterdam").unwrap()).unwrap(), "2026-11-27T07:23:45.123+01:00");
        assert!(joda_to_chrono("yyyy QQ").is_err());
        assert_eq!(parse_iso("2026-11-27T06:23:45.123Z"), Some(T));
        assert_eq!(parse_iso("2026-11-27T07:23:45.123+01:00"), Some(T));
        assert_eq!(parse_iso("2026-11-27 06:23:45.123"), Some(T));
        assert_eq!(parse_iso("2026-11-27"), Some(T - (6 * 3600 + 23 * 60 + 45) * 1000 - 123));
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_time("27/11/2026 06:23", Some(&joda_to_chrono("dd/MM/yyyy HH:mm").unwrap()), utc), Some(T - 45_123));
    }
}
