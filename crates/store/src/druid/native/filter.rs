//! Native filters and `having` specs, as boolean expressions.
//!
//! Values are compared as Druid compares them: a dimension's text against the filter's text,
//! except on numeric and time columns, where a value that reads as a number is compared as one
//! (times in milliseconds, as timestamps, so segments are pruned by time). `and`/`or` build
//! balanced trees, so a filter of thousands of clauses stays shallow.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn as f;
use std::ops::Not;

use datafusion::logical_expr::{Expr, Like, Operator, binary_expr, lit, try_cast};
use serde_json::Value;

use crate::druid::native::context::Columns;
use crate::druid::native::dimension::{self, Input, check_regex, search};
use crate::druid::native::expression;
use crate::druid::native::model::{ExtractionFn, Filter, Having, Ordering, as_text};
use crate::druid::time::Interval;
use crate::druid::types::ColumnKind;
use crate::{Error, Result};

/// A timestamp literal (milliseconds).
pub(crate) fn timestamp(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(Some(ms), None))
}

/// `exprs` joined with `and` (or `or`) as a balanced tree; `empty` when there are none.
pub(crate) fn balanced(mut exprs: Vec<Expr>, and: bool, empty: bool) -> Expr {
    if exprs.is_empty() {
        return lit(empty);
    }
    while exprs.len() > 1 {
        let mut next = Vec::with_capacity(exprs.len().div_ceil(2));
        let mut items = exprs.into_iter();
        while let Some(a) = items.next() {
            next.push(match items.next() {
                Some(b) if and => a.and(b),
                Some(b) => a.or(b),
                None => a,
            });
        }
        exprs = next;
    }
    exprs.pop().unwrap_or_else(|| lit(empty))
}

/// Rows whose `__time` (a timestamp column of the input) falls in one of `intervals`.
pub(crate) fn in_intervals(time: Expr, intervals: &[Interval]) -> Expr {
    let ranges =
        intervals.iter().map(|i| time.clone().gt_eq(timestamp(i.start)).and(time.clone().lt(timestamp(i.end)))).collect();
    balanced(ranges, false, false)
}

/// The value of column `name` after an optional extraction, as text.
fn text_of(columns: &Columns<'_>, name: &str, extraction: Option<&ExtractionFn>) -> Result<Expr> {
    match extraction {
        Some(function) => dimension::extract(columns, function, Input::column(columns, name)?),
        None => columns.text(name),
    }
}

/// A literal of a column's kind for the text `value`, or `None` when the text cannot be one
/// (a word compared with a number column matches nothing).
fn typed_literal(kind: ColumnKind, value: &str) -> Option<Expr> {
    let trimmed = value.trim();
    match kind {
        ColumnKind::String => Some(lit(value.to_string())),
        ColumnKind::Time => trimmed.parse::<i64>().ok().map(timestamp),
        ColumnKind::Long => match trimmed.parse::<i64>() {
            Ok(n) => Some(lit(n)),
            Err(_) => trimmed.parse::<f64>().ok().filter(|f| f.is_finite()).map(lit),
        },
        ColumnKind::Double => trimmed.parse::<f64>().ok().filter(|f| f.is_finite()).map(lit),
        ColumnKind::Bool => match trimmed {
            "true" => Some(lit(true)),
            "false" => Some(lit(false)),
            _ => None,
        },
    }
}

/// Column `name` (with an optional extraction) equals one of `values` (a `None` is null).
fn one_of(columns: &Columns<'_>, name: &str, values: &[Option<String>], extraction: Option<&ExtractionFn>) -> Result<Expr> {
    let wants_null = values.iter().any(Option::is_none);
    let present: Vec<&String> = values.iter().flatten().collect();
    let (subject, literals) = match (extraction, columns.get(name)) {
        (None, Some(column)) => {
            let literals: Vec<Expr> = present.iter().filter_map(|v| typed_literal(column.kind, v)).collect();
            (column.expr.clone(), literals)
        }
        // No such column: every value is null.
        (None, None) => return Ok(lit(wants_null)),
        (Some(_), _) => (text_of(columns, name, extraction)?, present.iter().map(|v| lit((*v).clone())).collect()),
    };
    let mut any = Vec::new();
    match literals.len() {
        0 => {}
        1 => any.push(subject.clone().eq(literals.into_iter().next().unwrap_or_else(|| lit(false)))),
        _ => any.push(subject.clone().in_list(literals, false)),
    }
    if wants_null {
        any.push(subject.is_null());
    }
    Ok(balanced(any, false, false))
}

/// Translates a row filter.
pub(crate) fn filter(columns: &Columns<'_>, spec: &Filter) -> Result<Expr> {
    Ok(match spec {
        Filter::Selector { dimension, value, extraction_fn } => {
            one_of(columns, dimension, &[as_text(value)], extraction_fn.as_ref())?
        }
        Filter::In { dimension, values, extraction_fn } => {
            let values: Vec<Option<String>> = values.iter().map(as_text).collect();
            if values.is_empty() { lit(false) } else { one_of(columns, dimension, &values, extraction_fn.as_ref())? }
        }
        Filter::ArrayContainsElement { column, element_match_value } => {
            one_of(columns, column, &[as_text(element_match_value)], None)?
        }
        Filter::Equals { column, match_value_type, match_value } => {
            let Some(value) = as_text(match_value) else {
                return Err(Error::InvalidQuery("an equals filter needs a non-null matchValue; use the null filter".into()));
            };
            match typed(columns, column, match_value_type.as_deref())? {
                Some((subject, kind)) => match typed_literal(kind, &value) {
                    Some(literal) => subject.eq(literal),
                    None => lit(false),
                },
                None => lit(false),
            }
        }
        Filter::Null { column } => match columns.get(column) {
            Some(c) => c.expr.clone().is_null(),
            None => lit(true),
        },
        Filter::Bound { dimension, lower, upper, lower_strict, upper_strict, ordering, extraction_fn } => bound(
            columns,
            dimension,
            (as_text(lower), *lower_strict),
            (as_text(upper), *upper_strict),
            ordering.unwrap_or(Ordering::Lexicographic),
            extraction_fn.as_ref(),
        )?,
        Filter::Range { column, match_value_type, lower, upper, lower_open, upper_open } => {
            let Some((subject, kind)) = typed(columns, column, match_value_type.as_deref())? else { return Ok(lit(false)) };
            let mut parts = vec![subject.clone().is_not_null()];
            for (value, open, is_lower) in [(lower, *lower_open, true), (upper, *upper_open, false)] {
                let Some(text) = as_text(value) else { continue };
                let literal = typed_literal(kind, &text)
                    .ok_or_else(|| Error::InvalidQuery(format!("range bound {text:?} is not a {}", kind.native_name())))?;
                parts.push(match (is_lower, open) {
                    (true, false) => subject.clone().gt_eq(literal),
                    (true, true) => subject.clone().gt(literal),
                    (false, false) => subject.clone().lt_eq(literal),
                    (false, true) => subject.clone().lt(literal),
                });
            }
            balanced(parts, true, true)
        }
        Filter::Regex { dimension, pattern, extraction_fn } => {
            check_regex(pattern)?;
            f::regexp_like(text_of(columns, dimension, extraction_fn.as_ref())?, lit(pattern.clone()), None)
        }
        Filter::Like { dimension, pattern, escape, extraction_fn } => {
            let escape = match escape.as_deref() {
                None | Some("") => None,
                Some(e) if e.chars().count() == 1 => e.chars().next(),
                Some(e) => return Err(Error::InvalidQuery(format!("a like escape is one character, not {e:?}"))),
            };
            let subject = text_of(columns, dimension, extraction_fn.as_ref())?;
            Expr::Like(Like::new(false, Box::new(subject), Box::new(lit(pattern.clone())), escape, false))
        }
        Filter::Search { dimension, query, extraction_fn } => {
            search(query, text_of(columns, dimension, extraction_fn.as_ref())?)?
        }
        Filter::Interval { dimension, intervals, extraction_fn } => {
            let intervals = Interval::list(Some(intervals))?.unwrap_or_default();
            match (extraction_fn, columns.timestamp(dimension)) {
                (None, Some(time)) => in_intervals(time, &intervals),
                (None, None) => {
                    let ms = columns.number(dimension)?;
                    let ranges =
                        intervals.iter().map(|i| ms.clone().gt_eq(lit(i.start)).and(ms.clone().lt(lit(i.end)))).collect();
                    balanced(ranges, false, false)
                }
                (Some(_), _) => {
                    return Err(Error::Unsupported("an interval filter with an extractionFn is not supported".into()));
                }
            }
        }
        Filter::And { fields } => balanced(fields.iter().map(|f| filter(columns, f)).collect::<Result<_>>()?, true, true),
        Filter::Or { fields } => balanced(fields.iter().map(|f| filter(columns, f)).collect::<Result<_>>()?, false, false),
        Filter::Not { field } => filter(columns, field)?.not(),
        Filter::True {} => lit(true),
        Filter::False {} => lit(false),
        Filter::Expression { expression } => expression::translate(&expression::parse(expression)?, columns)?.truth(),
        Filter::ColumnComparison { dimensions } => {
            let values = dimensions.iter().map(|d| dimension::dimension_text(columns, d)).collect::<Result<Vec<_>>>()?;
            let pairs = values.windows(2).map(|w| binary_expr(w[0].clone(), Operator::IsNotDistinctFrom, w[1].clone())).collect();
            balanced(pairs, true, true)
        }
        Filter::Javascript {} => {
            return Err(Error::Unsupported("JavaScript filters are disabled in Druid and not supported".into()));
        }
        Filter::Spatial {} => {
            return Err(Error::Unsupported("spatial filters are not supported: Oriel has no spatial columns".into()));
        }
        Filter::Extraction {} => {
            return Err(Error::Unsupported(
                "the deprecated extraction filter is not supported; use selector with extractionFn".into(),
            ));
        }
    })
}

/// Column `name` as `match_value_type` says (`STRING`, `LONG`, `DOUBLE`, `FLOAT`), with the kind
/// of literal to compare it with; `None` when there is no such column.
fn typed(columns: &Columns<'_>, name: &str, match_value_type: Option<&str>) -> Result<Option<(Expr, ColumnKind)>> {
    let Some(column) = columns.get(name) else { return Ok(None) };
    let wanted = match_value_type.map(str::to_ascii_uppercase);
    Ok(Some(match (wanted.as_deref(), column.kind) {
        (None, kind) => (column.expr.clone(), kind),
        (Some("STRING"), _) => (columns.text(name)?, ColumnKind::String),
        (Some("LONG"), ColumnKind::Time) => (column.expr.clone(), ColumnKind::Time),
        (Some("LONG"), _) => (try_cast(columns.number(name)?, DataType::Int64), ColumnKind::Long),
        (Some("DOUBLE" | "FLOAT"), _) => (try_cast(columns.number(name)?, DataType::Float64), ColumnKind::Double),
        (Some(other), _) => return Err(Error::InvalidQuery(format!("unknown matchValueType {other:?}"))),
    }))
}

/// A bound filter in one of its orderings.
fn bound(
    columns: &Columns<'_>,
    name: &str,
    lower: (Option<String>, bool),
    upper: (Option<String>, bool),
    ordering: Ordering,
    extraction: Option<&ExtractionFn>,
) -> Result<Expr> {
    let compare = |subject: &Expr, literal: Expr, strict: bool, is_lower: bool| match (is_lower, strict) {
        (true, false) => subject.clone().gt_eq(literal),
        (true, true) => subject.clone().gt(literal),
        (false, false) => subject.clone().lt_eq(literal),
        (false, true) => subject.clone().lt(literal),
    };
    let mut parts = Vec::new();
    match ordering {
        Ordering::Numeric => {
            // A time column is compared as a timestamp, which prunes segments.
            let time = if extraction.is_none() { columns.timestamp(name) } else { None };
            let subject = match (&time, extraction) {
                (Some(t), _) => t.clone(),
                (None, None) => match columns.get(name).map(|c| c.kind) {
                    Some(ColumnKind::Long | ColumnKind::Double) => columns.number(name)?,
                    _ => try_cast(columns.text(name)?, DataType::Float64),
                },
                (None, Some(_)) => try_cast(text_of(columns, name, extraction)?, DataType::Float64),
            };
            for ((value, strict), is_lower) in [(lower, true), (upper, false)] {
                let Some(value) = value else { continue };
                let number: f64 = value.trim().parse().ok().filter(|f: &f64| f.is_finite()).ok_or_else(|| {
                    Error::InvalidQuery(format!("bound {value:?} is not a number, as the numeric ordering needs"))
                })?;
                let literal = match time {
                    // Times compare with whole milliseconds: a fractional bound rounds inward.
                    Some(_) => timestamp(if is_lower { number.ceil() } else { number.floor() } as i64),
                    None => lit(number),
                };
                parts.push(compare(&subject, literal, strict, is_lower));
            }
            parts.push(subject.is_not_null());
        }
        Ordering::Lexicographic => {
            let subject = text_of(columns, name, extraction)?;
            let unbounded_below = lower.0.is_none();
            for ((value, strict), is_lower) in [(lower, true), (upper, false)] {
                if let Some(value) = value {
                    parts.push(compare(&subject, lit(value), strict, is_lower));
                }
            }
            let within = balanced(parts, true, true);
            // Null sorts first: a bound without a lower end takes it in.
            return Ok(if unbounded_below { within.or(subject.is_null()) } else { within });
        }
        Ordering::Strlen => {
            let subject = text_of(columns, name, extraction)?;
            let length = f::character_length(subject.clone());
            for ((value, strict), is_lower) in [(lower, true), (upper, false)] {
                let Some(value) = value else { continue };
                let n = lit(value.chars().count() as i64);
                let longer = if is_lower { length.clone().gt(n.clone()) } else { length.clone().lt(n.clone()) };
                parts.push(longer.or(length.clone().eq(n).and(compare(&subject, lit(value), strict, is_lower))));
            }
        }
        Ordering::Alphanumeric | Ordering::Version => {
            return Err(Error::Unsupported(format!(
                "the {ordering:?} ordering is not supported in bound filters; use lexicographic or numeric"
            )));
        }
    }
    Ok(balanced(parts, true, true))
}

/// Translates a groupBy `having` over the result columns.
pub(crate) fn having(columns: &Columns<'_>, spec: &Having) -> Result<Expr> {
    let number = |value: &Value| -> Result<f64> {
        as_text(value)
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| Error::InvalidQuery(format!("having value {value} is not a number")))
    };
    let aggregate = |name: &str| -> Result<Expr> {
        columns.get(name).map(|_| columns.number(name)).transpose()?.ok_or_else(|| {
            Error::InvalidQuery(format!("having refers to {name:?}, which is not an aggregator or post-aggregator"))
        })
    };
    Ok(match spec {
        Having::Filter { filter: f } => filter(columns, f)?,
        Having::GreaterThan { aggregation, value } => aggregate(aggregation)?.gt(lit(number(value)?)),
        Having::LessThan { aggregation, value } => aggregate(aggregation)?.lt(lit(number(value)?)),
        Having::EqualTo { aggregation, value } => aggregate(aggregation)?.eq(lit(number(value)?)),
        Having::DimSelector { dimension, value } => one_of(columns, dimension, &[as_text(value)], None)?,
        Having::And { having_specs } => {
            balanced(having_specs.iter().map(|h| having(columns, h)).collect::<Result<_>>()?, true, true)
        }
        Having::Or { having_specs } => {
            balanced(having_specs.iter().map(|h| having(columns, h)).collect::<Result<_>>()?, false, false)
        }
        Having::Not { having_spec } => having(columns, having_spec)?.not(),
    })
}
