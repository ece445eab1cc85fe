//! Druid SQL functions DataFusion lacks, as scalar functions of both dialects.
//!
//! | function | meaning |
//! | --- | --- |
//! | `TIME_CEIL(t, period [, origin [, zone]])` | the end of `t`'s period (`t` itself on a boundary) |
//! | `TIME_EXTRACT(t [, unit [, zone]])` | a part of `t`: `EPOCH`, `SECOND`, `MINUTE`, `HOUR`, `DAY`, `DOW`, `ISODOW`, `DOY`, `WEEK`, `MONTH`, `QUARTER`, `YEAR`, `ISOYEAR`, `MILLISECOND` |
//! | `TIME_IN_INTERVAL(t, 'start/end')` | whether `t` is in the ISO-8601 interval |
//! | `timestampdiff(unit, a, b)` | whole units from `a` to `b` (what `TIMESTAMPDIFF` becomes) |
//! | `REGEXP_EXTRACT(s, pattern [, group])` | the first match (or group) of `pattern` in `s`, NULL without one |
//!
//! Constant arguments (periods, units, zones, patterns) are read once per batch; every
//! computation is checked and answers NULL or an error, never a panic.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::druid::time::Interval;
use crate::query::functions::{Period, TS, Zone, constant_string, parse_iso, period_arg, zone_arg};

/// Largest compiled regular expression, so a pattern cannot take much memory.
const MAX_REGEX_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Ceil,
    Extract,
    InInterval,
    Diff,
    RegexpExtract,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DruidFunction {
    kind: Kind,
    name: &'static str,
    signature: Signature,
}

/// The functions of this module.
pub fn all() -> Vec<ScalarUDF> {
    [
        (Kind::Ceil, "time_ceil"),
        (Kind::Extract, "time_extract"),
        (Kind::InInterval, "time_in_interval"),
        (Kind::Diff, "timestampdiff"),
        (Kind::RegexpExtract, "regexp_extract"),
    ]
    .into_iter()
    .map(|(kind, name)| {
        ScalarUDF::new_from_impl(DruidFunction { kind, name, signature: Signature::user_defined(Volatility::Immutable) })
    })
    .collect()
}

fn invalid(name: &str, why: String) -> DataFusionError {
    DataFusionError::Plan(format!("{}: {why}", name.to_uppercase()))
}

impl ScalarUDFImpl for DruidFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let (min, max) = match self.kind {
            Kind::Ceil => (2, 4),
            Kind::Extract => (1, 3),
            Kind::InInterval => (2, 2),
            Kind::Diff => (3, 3),
            Kind::RegexpExtract => (2, 3),
        };
        if args.len() < min || args.len() > max {
            return plan_err!("{} takes {min} to {max} arguments, not {}", self.name.to_uppercase(), args.len());
        }
        Ok((0..args.len())
            .map(|i| match (self.kind, i) {
                (Kind::Diff, 0) | (Kind::RegexpExtract, 0 | 1) => DataType::Utf8,
                (Kind::RegexpExtract, 2) => DataType::Int64,
                (Kind::Diff, _) | (_, 0) => TS,
                _ => DataType::Utf8,
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::Ceil => TS,
            Kind::Extract | Kind::Diff => DataType::Int64,
            Kind::InInterval => DataType::Boolean,
            Kind::RegexpExtract => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let name = self.name;
        let times = |i: usize| -> DfResult<ArrayRef> { Ok(cast(&arrays[i], &TS)?) };
        let out: ArrayRef = match self.kind {
            Kind::Ceil => {
                let period = period_arg(&arrays, 1, name)?;
                let origin = match constant_string(&arrays, 2, name)? {
                    Some(text) => Some(parse_iso(&text).ok_or_else(|| invalid(name, format!("invalid origin {text:?}")))?),
                    None => None,
                };
                let zone = zone_arg(&arrays, 3, name)?;
                let t = times(0)?;
                Arc::new(t.as_primitive::<TimestampMillisecondType>().unary_opt::<_, TimestampMillisecondType>(|ms| {
                    let floor = match (origin, period) {
                        (Some(o), Period::Millis(p)) => ms.checked_sub(o)?.div_euclid(p).checked_mul(p)?.checked_add(o)?,
                        _ => period.floor(ms, zone)?,
                    };
                    if floor == ms { Some(ms) } else { period.shift(floor, 1, zone) }
                }))
            }
            Kind::Extract => {
                let unit = constant_string(&arrays, 1, name)?.unwrap_or_else(|| "MILLISECOND".into()).to_ascii_uppercase();
                let zone = zone_arg(&arrays, 2, name)?;
                if extract(0, &unit, zone).is_none() {
                    return Err(invalid(name, format!("unknown unit {unit:?}")));
                }
                let t = times(0)?;
                let out: Int64Array =
                    t.as_primitive::<TimestampMillisecondType>().iter().map(|ms| extract(ms?, &unit, zone)).collect();
                Arc::new(out)
            }
            Kind::InInterval => {
                let text = constant_string(&arrays, 1, name)?.unwrap_or_default();
                let interval = Interval::parse(&text).map_err(|e| invalid(name, e.to_string()))?;
                let t = times(0)?;
                let out: BooleanArray = t
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .map(|ms| ms.map(|ms| ms >= interval.start && ms < interval.end))
                    .collect();
                Arc::new(out)
            }
            Kind::Diff => {
                let unit = constant_string(&arrays, 0, name)?.unwrap_or_default();
                if diff(0, 0, &unit).is_none() {
                    return Err(invalid(name, format!("unknown unit {unit:?}")));
                }
                let (a, b) = (times(1)?, times(2)?);
                let (a, b) = (a.as_primitive::<TimestampMillisecondType>(), b.as_primitive::<TimestampMillisecondType>());
                let out: Int64Array = a.iter().zip(b.iter()).map(|(a, b)| diff(a?, b?, &unit)).collect();
                Arc::new(out)
            }
            Kind::RegexpExtract => {
                let pattern = constant_string(&arrays, 1, name)?.unwrap_or_default();
                let regex = regex::RegexBuilder::new(&pattern)
                    .size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|e| invalid(name, format!("invalid pattern: {e}")))?;
                let group = match arrays.get(2) {
                    Some(g) => {
                        let g = cast(g, &DataType::Int64)?;
                        let g = g.as_primitive::<Int64Type>();
                        if g.is_empty() || g.is_null(0) { 0 } else { g.value(0) }
                    }
                    None => 0,
                };
                let group = usize::try_from(group).map_err(|_| invalid(name, format!("group {group} is negative")))?;
                if group >= regex.captures_len() {
                    return Err(invalid(name, format!("the pattern has no group {group}")));
                }
                let s = cast(&arrays[0], &DataType::Utf8)?;
                let out: StringArray = s
                    .as_string::<i32>()
                    .iter()
                    .map(|s| regex.captures(s?).and_then(|c| c.get(group)).map(|m| m.as_str().to_string()))
                    .collect();
                Arc::new(out)
            }
        };
        if scalar { Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)) } else { Ok(ColumnarValue::Array(out)) }
    }
}

/// Part `unit` of instant `ms` in `zone`; `None` for an unknown unit or an instant out of range.
fn extract(ms: i64, unit: &str, zone: Zone) -> Option<i64> {
    let local = DateTime::from_timestamp_millis(ms.checked_add(zone.offset_ms(ms))?)?.naive_utc();
    Some(match unit {
        "EPOCH" => ms.div_euclid(1000),
        "MILLISECOND" => i64::from(local.second()) * 1000 + i64::from(local.and_utc().timestamp_subsec_millis()),
        "SECOND" => i64::from(local.second()),
        "MINUTE" => i64::from(local.minute()),
        "HOUR" => i64::from(local.hour()),
        "DAY" => i64::from(local.day()),
        "DOW" | "ISODOW" => i64::from(local.weekday().number_from_monday()),
        "DOY" => i64::from(local.ordinal()),
        "WEEK" => i64::from(local.iso_week().week()),
        "MONTH" => i64::from(local.month()),
        "QUARTER" => i64::from(local.month0() / 3 + 1),
        "YEAR" => i64::from(local.year()),
        "ISOYEAR" => i64::from(local.iso_week().year()),
        "DECADE" => i64::from(local.year()).div_euclid(10),
        "CENTURY" => (i64::from(local.year()) + 99).div_euclid(100),
        "MILLENNIUM" => (i64::from(local.year()) + 999).div_euclid(1000),
        _ => return None,
    })
}

/// Whole `unit`s from `a` to `b` (negative when `b` is earlier), as Calcite counts them.
fn diff(a: i64, b: i64, unit: &str) -> Option<i64> {
    let fixed = |unit_ms: i64| b.checked_sub(a).map(|d| d / unit_ms);
    match unit.to_ascii_lowercase().as_str() {
        "millisecond" => b.checked_sub(a),
        "second" => fixed(1000),
        "minute" => fixed(60_000),
        "hour" => fixed(3_600_000),
        "day" => fixed(86_400_000),
        "week" => fixed(7 * 86_400_000),
        "month" => months(a, b),
        "quarter" => months(a, b).map(|m| m / 3),
        "year" => months(a, b).map(|m| m / 12),
        _ => None,
    }
}

/// Whole months from `a` to `b`.
fn months(a: i64, b: i64) -> Option<i64> {
    let (x, y) = (DateTime::from_timestamp_millis(a)?.naive_utc(), DateTime::from_timestamp_millis(b)?.naive_utc());
    let mut m = (i64::from(y.year()) - i64::from(x.year())) * 12 + i64::from(y.month()) - i64::from(x.month());
    // Within the month, compare the rest of the instant: day, then time of day.
    let rest = |t: chrono::NaiveDateTime| (t.day(), t.time());
    if m > 0 && rest(y) < rest(x) {
        m -= 1;
    } else if m < 0 && rest(y) > rest(x) {
        m += 1;
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse_iso(text).unwrap()
    }

    #[test]
    fn parts_and_differences() {
        let t = ms("2026-11-27T06:23:45.123Z");
        let utc = Zone::utc();
        assert_eq!(extract(t, "HOUR", utc), Some(6));
        assert_eq!(extract(t, "DOW", utc), Some(5), "a Friday");
        assert_eq!(extract(t, "QUARTER", utc), Some(4));
        assert_eq!(extract(t, "HOUR", Zone::parse("Asia/Tokyo").unwrap()), Some(15));
        assert_eq!(extract(t, "FORTNIGHT", utc), None);
        assert_eq!(diff(ms("2026-01-31T00:00:00Z"), ms("2026-02-28T00:00:00Z"), "month"), Some(0));
        assert_eq!(diff(ms("2026-01-31T00:00:00Z"), ms("2026-03-31T00:00:00Z"), "month"), Some(2));
        assert_eq!(diff(ms("2026-03-31T00:00:00Z"), ms("2026-01-31T00:00:00Z"), "month"), Some(-2));
        assert_eq!(diff(ms("2020-06-01T00:00:00Z"), ms("2026-05-31T00:00:00Z"), "year"), Some(5));
        assert_eq!(diff(0, 90 * 60_000, "hour"), Some(1));
        assert_eq!(diff(i64::MIN, i64::MAX, "second"), None);
    }
}
