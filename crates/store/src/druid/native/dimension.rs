//! Dimension specs and extraction functions, as expressions over the input rows.
//!
//! A dimension's values are text unless its spec asks for `LONG`, `FLOAT` or `DOUBLE`; an
//! extraction function maps text to text, except `timeFormat`, which reads the column's time
//! (or parses its text as ISO-8601) and formats it.

use std::ops::Not;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{Expr, cast, lit, try_cast, when};
use datafusion::prelude::{coalesce, nullif};

use crate::druid::native::context::Columns;
use crate::druid::native::model::{DimensionSpec, ExtractionFn, SearchSpec, ValueFilter};
use crate::druid::time::Granularity;
use crate::druid::types::ColumnKind;
use crate::{Error, Result};

/// Most entries of an inline lookup map.
const MAX_LOOKUP_ENTRIES: usize = 10_000;

/// What an extraction function reads: the value as text, and as a timestamp when the column is
/// a time.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// The value as text.
    pub(crate) text: Expr,
    /// The value as a timestamp, for time columns.
    pub(crate) time: Option<Expr>,
}

impl Input {
    /// The input of column `name`.
    pub(crate) fn column(columns: &Columns<'_>, name: &str) -> Result<Self> {
        Ok(Self { text: columns.text(name)?, time: columns.timestamp(name) })
    }
}

/// `timestamp` floored to `granularity` (`None` for `all`).
pub(crate) fn floor(columns: &Columns<'_>, granularity: &Granularity, timestamp: Expr) -> Result<Option<Expr>> {
    Ok(match granularity {
        Granularity::All => None,
        Granularity::None => Some(timestamp),
        Granularity::Period { text, zone_text, origin, .. } => {
            let origin = match origin {
                Some(ms) => lit(crate::druid::time::iso(*ms).as_str().unwrap_or_default().to_string()),
                None => lit(ScalarValue::Utf8(None)),
            };
            Some(columns.function("time_floor")?.call(vec![timestamp, lit(text.clone()), origin, lit(zone_text.clone())]))
        }
        Granularity::Duration { ms, origin } => {
            let m = columns.millis(timestamp)?;
            let offset = ((m.clone() - lit(*origin)) % lit(*ms) + lit(*ms)) % lit(*ms);
            Some(columns.function("millis_to_timestamp")?.call(vec![m - offset]))
        }
    })
}

/// Applies extraction function `function` to `input`; the result is text.
pub(crate) fn extract(columns: &Columns<'_>, function: &ExtractionFn, input: Input) -> Result<Expr> {
    let null_text = || lit(ScalarValue::Utf8(None));
    Ok(match function {
        ExtractionFn::TimeFormat { format, time_zone, granularity, as_millis } => {
            let timestamp = match (&input.time, as_millis) {
                (Some(t), _) => t.clone(),
                (None, true) => columns.function("millis_to_timestamp")?.call(vec![try_cast(input.text, DataType::Int64)]),
                (None, false) => columns.function("time_parse")?.call(vec![input.text]),
            };
            let granularity = Granularity::from_json(granularity.as_ref())?;
            let timestamp = floor(columns, &granularity, timestamp.clone())?.unwrap_or(timestamp);
            let format = format.clone().map_or_else(null_text, lit);
            let zone = lit(time_zone.clone().unwrap_or_else(|| "UTC".into()));
            columns.function("time_format")?.call(vec![timestamp, format, zone])
        }
        ExtractionFn::Substring { index, length } => {
            let from = lit(i64::try_from(index.unwrap_or(0)).unwrap_or(i64::MAX).saturating_add(1));
            let part = match length {
                Some(n) => f::substring(input.text, from, lit(i64::try_from(*n).unwrap_or(i64::MAX))),
                None => f::substr(input.text, from),
            };
            // Past the end Druid gives null, not empty text.
            nullif(part, lit(""))
        }
        ExtractionFn::Regex { expr, index, replace_missing_value, replace_missing_value_with } => {
            check_regex(expr)?;
            let group = i64::try_from(index.unwrap_or(1)).unwrap_or(i64::MAX);
            let found = columns.function("regexp_extract")?.call(vec![input.text.clone(), lit(expr.clone()), lit(group)]);
            let missing =
                if *replace_missing_value { replace_missing_value_with.clone().map_or_else(null_text, lit) } else { input.text };
            coalesce(vec![found, missing])
        }
        ExtractionFn::Lookup { lookup, retain_missing_value, replace_missing_value_with } => {
            let map = lookup.get("map").and_then(serde_json::Value::as_object).ok_or_else(|| {
                Error::InvalidQuery("a lookup extraction needs an inline {\"type\": \"map\", \"map\": {…}}".into())
            })?;
            let entries: Vec<(String, String)> =
                map.iter().filter_map(|(k, v)| Some((k.clone(), crate::druid::native::model::as_text(v)?))).collect();
            lookup_expr(input.text, &entries, *retain_missing_value, replace_missing_value_with.as_deref())?
        }
        ExtractionFn::RegisteredLookup { lookup } => {
            return Err(Error::InvalidQuery(format!("lookup {lookup:?} does not exist: Oriel has no registered lookups")));
        }
        ExtractionFn::Cascade { extraction_fns } => {
            let mut current = input;
            for function in extraction_fns {
                current = Input { text: extract(columns, function, current)?, time: None };
            }
            current.text
        }
        ExtractionFn::StringFormat { format, null_handling } => string_format(format, null_handling.as_deref(), input.text)?,
        ExtractionFn::Strlen {} => cast(coalesce(vec![f::character_length(input.text), lit(0)]), DataType::Utf8),
        ExtractionFn::Upper {} => f::upper(input.text),
        ExtractionFn::Lower {} => f::lower(input.text),
        ExtractionFn::Bucket { size, offset } => {
            let (size, offset) = (size.unwrap_or(1.0), offset.unwrap_or(0.0));
            if !(size.is_finite() && size > 0.0 && offset.is_finite()) {
                return Err(Error::InvalidQuery("a bucket extraction needs a positive size".into()));
            }
            let n = try_cast(input.text, DataType::Float64);
            let bucket = f::floor((n - lit(offset)) / lit(size)) * lit(size) + lit(offset);
            cast(bucket, DataType::Utf8)
        }
        ExtractionFn::Partial { expr } => {
            check_regex(expr)?;
            when(f::regexp_like(input.text.clone(), lit(expr.clone()), None), input.text).otherwise(null_text())?
        }
        ExtractionFn::SearchQuery { query } => when(search(query, input.text.clone())?, input.text).otherwise(null_text())?,
        ExtractionFn::Time { time_format, result_format } => {
            let parsed = columns.function("time_parse")?.call(vec![input.text, lit(time_format.clone())]);
            columns.function("time_format")?.call(vec![parsed, lit(result_format.clone())])
        }
        ExtractionFn::Identity {} => input.text,
        ExtractionFn::Javascript {} => {
            return Err(Error::Unsupported("JavaScript extraction functions are disabled in Druid and not supported".into()));
        }
    })
}

/// `text` through a map: its value when mapped, else `text` itself (`retain`) or `replacement`.
fn lookup_expr(text: Expr, entries: &[(String, String)], retain: bool, replacement: Option<&str>) -> Result<Expr> {
    if entries.len() > MAX_LOOKUP_ENTRIES {
        return Err(Error::InvalidQuery(format!(
            "a lookup of {} entries is too large (at most {MAX_LOOKUP_ENTRIES})",
            entries.len()
        )));
    }
    let missing = if retain { text.clone() } else { replacement.map_or_else(|| lit(ScalarValue::Utf8(None)), lit) };
    let Some(((k, v), rest)) = entries.split_first() else { return Ok(missing) };
    let mut case = datafusion::logical_expr::case(text).when(lit(k.clone()), lit(v.clone()));
    for (k, v) in rest {
        case = case.when(lit(k.clone()), lit(v.clone()));
    }
    Ok(case.otherwise(missing)?)
}

/// Java's `String.format` with `%s` (and `%%`), the one form clients use.
fn string_format(format: &str, null_handling: Option<&str>, text: Expr) -> Result<Expr> {
    let value = match null_handling.unwrap_or("nullString") {
        "nullString" => coalesce(vec![text.clone(), lit("null")]),
        "emptyString" => coalesce(vec![text.clone(), lit("")]),
        "returnNull" => text.clone(),
        other => return Err(Error::InvalidQuery(format!("unknown nullHandling {other:?}"))),
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => literal.push('%'),
            Some('s') => {
                parts.push(lit(std::mem::take(&mut literal)));
                parts.push(value.clone());
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "stringFormat supports %s and %%, not %{}",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    parts.push(lit(literal));
    let joined = f::concat(parts);
    Ok(if null_handling == Some("returnNull") {
        when(text.is_null(), lit(ScalarValue::Utf8(None))).otherwise(joined)?
    } else {
        joined
    })
}

/// Refuses a pattern that does not compile, before the query runs.
pub(crate) fn check_regex(pattern: &str) -> Result<()> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(|_| ())
        .map_err(|e| Error::InvalidQuery(format!("invalid regular expression {pattern:?}: {e}")))
}

/// Whether `text` matches a search spec (null for null text).
pub(crate) fn search(spec: &SearchSpec, text: Expr) -> Result<Expr> {
    let contains = |needle: &str, case_sensitive: bool| {
        if case_sensitive {
            f::strpos(text.clone(), lit(needle.to_string())).gt(lit(0))
        } else {
            f::strpos(f::lower(text.clone()), lit(needle.to_lowercase())).gt(lit(0))
        }
    };
    Ok(match spec {
        SearchSpec::Contains { value, case_sensitive } => contains(value, *case_sensitive),
        SearchSpec::InsensitiveContains { value } => contains(value, false),
        SearchSpec::Fragment { values, case_sensitive } => {
            values.iter().map(|v| contains(v, *case_sensitive)).reduce(Expr::and).unwrap_or_else(|| lit(true))
        }
        SearchSpec::Regex { pattern } => {
            check_regex(pattern)?;
            f::regexp_like(text, lit(pattern.clone()), None)
        }
    })
}

/// The values of dimension `spec`, as the spec's output type asks.
pub(crate) fn dimension(columns: &Columns<'_>, spec: &DimensionSpec) -> Result<(Expr, ColumnKind)> {
    let text = dimension_text(columns, spec)?;
    let wants = spec.output_type();
    Ok(match (wants.as_deref(), spec) {
        (Some("LONG"), DimensionSpec::Default { dimension, .. }) => match columns.get(dimension).map(|c| c.kind) {
            Some(ColumnKind::Time | ColumnKind::Long | ColumnKind::Bool) => {
                (try_cast(columns.number(dimension)?, DataType::Int64), ColumnKind::Long)
            }
            _ => (try_cast(try_cast(text, DataType::Float64), DataType::Int64), ColumnKind::Long),
        },
        (Some("LONG"), _) => (try_cast(try_cast(text, DataType::Float64), DataType::Int64), ColumnKind::Long),
        (Some("FLOAT" | "DOUBLE"), DimensionSpec::Default { dimension, .. }) => {
            (try_cast(columns.number(dimension)?, DataType::Float64), ColumnKind::Double)
        }
        (Some("FLOAT" | "DOUBLE"), _) => (try_cast(text, DataType::Float64), ColumnKind::Double),
        (None | Some("STRING"), _) => (text, ColumnKind::String),
        (Some(other), _) => return Err(Error::InvalidQuery(format!("unknown outputType {other:?}"))),
    })
}

/// The values of dimension `spec` as text.
pub(crate) fn dimension_text(columns: &Columns<'_>, spec: &DimensionSpec) -> Result<Expr> {
    Ok(match spec {
        DimensionSpec::Default { dimension, .. } => columns.text(dimension)?,
        DimensionSpec::Extraction { dimension, extraction_fn, .. } => {
            extract(columns, extraction_fn, Input::column(columns, dimension)?)?
        }
        DimensionSpec::Filtered { delegate, keep } => {
            let value = dimension_text(columns, delegate)?;
            let kept = match keep {
                ValueFilter::List(values, whitelist) => {
                    let listed = value.clone().in_list(values.iter().map(|v| lit(v.clone())).collect(), false);
                    if *whitelist { listed } else { listed.not() }
                }
                ValueFilter::Regex(pattern) => {
                    check_regex(pattern)?;
                    f::regexp_like(value.clone(), lit(pattern.clone()), None)
                }
                ValueFilter::Prefix(prefix) => f::starts_with(value.clone(), lit(prefix.clone())),
            };
            when(kept, value).otherwise(lit(ScalarValue::Utf8(None)))?
        }
        DimensionSpec::Lookup { dimension, map, retain_missing_value, replace_missing_value_with, .. } => {
            lookup_expr(columns.text(dimension)?, map, *retain_missing_value, replace_missing_value_with.as_deref())?
        }
    })
}
