//! Aggregators and post-aggregators, as DataFusion aggregate and scalar expressions.
//!
//! Distinct counts (`cardinality`, `hyperUnique`, `thetaSketch`, `HLLSketch*`) are exact: Oriel
//! keeps raw values, not sketches, so it counts them exactly where Druid estimates. A
//! `quantilesDoublesSketch` answers its row count, as Druid's finalized sketch does, and a
//! `quantilesDoublesSketchToQuantile` over it adds a hidden approximate-percentile aggregate.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::functions::expr_fn as f;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{Expr, ExprFunctionExt, SortExpr, cast, lit, try_cast, when};
use datafusion::prelude::ident;

use crate::druid::native::context::{Column, Columns};
use crate::druid::native::dimension;
use crate::druid::native::expression::{self, Ty};
use crate::druid::native::filter::filter as translate_filter;
use crate::druid::native::model::{Aggregator, PostAggregator};
use crate::druid::types::ColumnKind;
use crate::{Error, Result};

/// One aggregate column of the result.
#[derive(Debug, Clone)]
pub(crate) struct Aggregation {
    /// Output name.
    pub(crate) name: String,
    /// The aggregate expression (unaliased).
    pub(crate) expr: Expr,
    /// What it holds.
    pub(crate) kind: ColumnKind,
    /// Its value for a bucket without rows (count-like aggregates are 0; the rest null).
    pub(crate) empty: Option<Expr>,
    /// Hidden helpers (percentiles) are not part of the answer.
    pub(crate) hidden: bool,
}

/// What a sketch aggregator was given, for post-aggregators that read more out of it.
#[derive(Debug, Clone)]
pub(crate) struct SketchInput {
    value: Expr,
    filter: Option<Expr>,
}

/// The aggregators of a query, with what their sketches read.
#[derive(Debug, Default)]
pub(crate) struct Aggregations {
    pub(crate) list: Vec<Aggregation>,
    sketches: HashMap<String, SketchInput>,
}

/// The input of an aggregator: its `fieldName` column or its `expression`, as a number.
fn numeric_input(columns: &Columns<'_>, a: &Aggregator) -> Result<Expr> {
    match (&a.field_name, &a.expression) {
        (_, Some(text)) => Ok(expression::translate(&expression::parse(text)?, columns)?.number().expr),
        (Some(name), None) => columns.number(name),
        (None, None) => Err(Error::InvalidQuery(format!("a {} aggregator needs a fieldName or an expression", a.kind))),
    }
}

/// The input of an aggregator as text.
fn text_input(columns: &Columns<'_>, a: &Aggregator) -> Result<Expr> {
    match (&a.field_name, &a.expression) {
        (_, Some(text)) => Ok(expression::translate(&expression::parse(text)?, columns)?.text()),
        (Some(name), None) => columns.text(name),
        (None, None) => Err(Error::InvalidQuery(format!("a {} aggregator needs a fieldName or an expression", a.kind))),
    }
}

impl Aggregations {
    /// Translates `aggregators` over the input `columns`.
    pub(crate) fn new(columns: &Columns<'_>, aggregators: &[Aggregator]) -> Result<Self> {
        let mut out = Self::default();
        for a in aggregators {
            let name = a.output_name()?;
            if out.list.iter().any(|x| x.name == name) {
                return Err(Error::InvalidQuery(format!("two aggregators are named {name:?}")));
            }
            let aggregation = out.one(columns, a, name, None)?;
            out.list.push(aggregation);
        }
        if out.list.is_empty() {
            // A query without aggregators still answers one row per bucket (with no values).
            let expr = agg::count(lit(1i64));
            out.list.push(Aggregation {
                name: "\u{1}rows".into(),
                expr,
                kind: ColumnKind::Long,
                empty: Some(lit(0i64)),
                hidden: true,
            });
        }
        Ok(out)
    }

    fn one(&mut self, columns: &Columns<'_>, a: &Aggregator, name: String, only: Option<Expr>) -> Result<Aggregation> {
        let filtered = |e: Expr| -> Result<Expr> {
            Ok(match &only {
                Some(predicate) => e.filter(predicate.clone()).build()?,
                None => e,
            })
        };
        let time_order = |a: &Aggregator| -> Result<Vec<SortExpr>> {
            let time = a.time_column.as_deref().unwrap_or("__time");
            let key = columns.timestamp(time).map_or_else(|| columns.number(time), Ok)?;
            Ok(vec![key.sort(true, false)])
        };
        let kind = a.kind.as_str();
        let (expr, kind_out, empty) = match kind {
            "count" => (filtered(agg::count(lit(1i64)))?, ColumnKind::Long, Some(lit(0i64))),
            "longSum" => (filtered(agg::sum(try_cast(numeric_input(columns, a)?, DataType::Int64)))?, ColumnKind::Long, None),
            "doubleSum" | "floatSum" => {
                (filtered(agg::sum(cast(numeric_input(columns, a)?, DataType::Float64)))?, ColumnKind::Double, None)
            }
            "longMin" | "longMax" => {
                let input = try_cast(numeric_input(columns, a)?, DataType::Int64);
                (filtered(if kind == "longMin" { agg::min(input) } else { agg::max(input) })?, ColumnKind::Long, None)
            }
            "doubleMin" | "doubleMax" | "floatMin" | "floatMax" => {
                let input = cast(numeric_input(columns, a)?, DataType::Float64);
                (filtered(if kind.ends_with("Min") { agg::min(input) } else { agg::max(input) })?, ColumnKind::Double, None)
            }
            "doubleMean" => (filtered(agg::avg(cast(numeric_input(columns, a)?, DataType::Float64)))?, ColumnKind::Double, None),
            "longFirst" | "longLast" | "doubleFirst" | "doubleLast" | "floatFirst" | "floatLast" | "stringFirst"
            | "stringLast" => {
                let (input, out) = match &kind[..kind.len() - if kind.ends_with("First") { 5 } else { 4 }] {
                    "long" => (try_cast(numeric_input(columns, a)?, DataType::Int64), ColumnKind::Long),
                    "string" => (text_input(columns, a)?, ColumnKind::String),
                    _ => (cast(numeric_input(columns, a)?, DataType::Float64), ColumnKind::Double),
                };
                let order = time_order(a)?;
                let e = if kind.ends_with("First") { agg::first_value(input, order) } else { agg::last_value(input, order) };
                (filtered(e)?, out, None)
            }
            "longAny" | "doubleAny" | "floatAny" | "stringAny" => {
                let (input, out) = match kind {
                    "longAny" => (try_cast(numeric_input(columns, a)?, DataType::Int64), ColumnKind::Long),
                    "stringAny" => (text_input(columns, a)?, ColumnKind::String),
                    _ => (cast(numeric_input(columns, a)?, DataType::Float64), ColumnKind::Double),
                };
                (filtered(agg::first_value(input, vec![]))?, out, None)
            }
            "cardinality" => {
                let mut inputs: Vec<Expr> =
                    a.fields.iter().map(|spec| dimension::dimension_text(columns, spec)).collect::<Result<_>>()?;
                for name in &a.field_names {
                    inputs.push(columns.text(name)?);
                }
                let value = match inputs.len() {
                    0 => return Err(Error::InvalidQuery("a cardinality aggregator needs fields".into())),
                    1 => inputs.remove(0),
                    _ if a.by_row => {
                        // One value per combination; a null is a value of its own.
                        let parts = inputs.into_iter().map(|e| f::coalesce(vec![e, lit("\u{0}")])).collect();
                        f::concat_ws(lit("\u{1}"), parts)
                    }
                    _ => {
                        return Err(Error::Unsupported(
                            "cardinality over several fields with byRow false is not supported; use byRow true or one field"
                                .into(),
                        ));
                    }
                };
                distinct(filtered(agg::count_distinct(value))?, a.round)
            }
            "hyperUnique" | "thetaSketch" | "HLLSketchBuild" | "HLLSketchMerge" => {
                let value = text_input(columns, a)?;
                self.sketches.insert(name.clone(), SketchInput { value: value.clone(), filter: only.clone() });
                distinct(filtered(agg::count_distinct(value))?, a.round)
            }
            "quantilesDoublesSketch" => {
                let value = cast(numeric_input(columns, a)?, DataType::Float64);
                self.sketches.insert(name.clone(), SketchInput { value: value.clone(), filter: only.clone() });
                (filtered(agg::count(value))?, ColumnKind::Long, Some(lit(0i64)))
            }
            "filtered" => {
                let inner = a
                    .aggregator
                    .as_deref()
                    .ok_or_else(|| Error::InvalidQuery("a filtered aggregator needs \"aggregator\"".into()))?;
                let spec =
                    a.filter.as_ref().ok_or_else(|| Error::InvalidQuery("a filtered aggregator needs \"filter\"".into()))?;
                let predicate = translate_filter(columns, spec)?;
                // `FILTER (WHERE …)` counts a null predicate as false, as Druid does.
                let predicate = match only {
                    Some(outer) => outer.and(predicate),
                    None => predicate,
                };
                return self.one(columns, inner, name, Some(predicate));
            }
            "javascript" => {
                return Err(Error::Unsupported("JavaScript aggregators are disabled in Druid and not supported".into()));
            }
            "expression" | "grouping" | "approxHistogram" | "approxHistogramFold" | "fixedBucketsHistogram" => {
                return Err(Error::Unsupported(format!("the {kind} aggregator is not supported")));
            }
            other => return Err(Error::InvalidQuery(format!("unknown aggregator type {other:?}"))),
        };
        Ok(Aggregation { name, expr, kind: kind_out, empty, hidden: false })
    }

    /// The columns of the aggregated result, for post-aggregators and `having`.
    pub(crate) fn output_columns<'a>(&self, columns: &Columns<'a>, dimensions: &[(String, ColumnKind)]) -> Columns<'a> {
        let mut out: Vec<(String, Column)> =
            dimensions.iter().map(|(name, kind)| (name.clone(), Column { expr: ident(name), kind: *kind })).collect();
        out.extend(self.list.iter().map(|a| (a.name.clone(), Column { expr: ident(&a.name), kind: a.kind })));
        columns.derive(out)
    }

    /// Translates `post` (in order; later ones may use earlier ones) over the aggregated
    /// `output`, adding the hidden aggregates they need. Returns `(name, expression, kind)`.
    pub(crate) fn post_aggregations(
        &mut self,
        output: &mut Columns<'_>,
        post: &[PostAggregator],
    ) -> Result<Vec<(String, Expr, ColumnKind)>> {
        let mut out: Vec<(String, Expr, ColumnKind)> = Vec::new();
        for p in post {
            let name =
                p.name.clone().ok_or_else(|| Error::InvalidQuery(format!("a {} post-aggregator needs a \"name\"", p.kind)))?;
            if self.list.iter().any(|a| a.name == name) || out.iter().any(|(n, ..)| *n == name) {
                return Err(Error::InvalidQuery(format!("the post-aggregator {name:?} has the name of another output")));
            }
            let (expr, kind) = self.post(output, p)?;
            output.insert(name.clone(), Column { expr: expr.clone(), kind });
            out.push((name, expr, kind));
        }
        Ok(out)
    }

    fn post(&mut self, output: &Columns<'_>, p: &PostAggregator) -> Result<(Expr, ColumnKind)> {
        let field = |name: Option<&String>| -> Result<(Expr, ColumnKind)> {
            let name = name.ok_or_else(|| Error::InvalidQuery(format!("a {} post-aggregator needs \"fieldName\"", p.kind)))?;
            let column = output
                .get(name)
                .ok_or_else(|| Error::InvalidQuery(format!("post-aggregator {:?} refers to unknown field {name:?}", p.name)))?;
            Ok((column.expr.clone(), column.kind))
        };
        let double = |e: Expr| cast(e, DataType::Float64);
        Ok(match p.kind.as_str() {
            "fieldAccess" | "finalizingFieldAccess" => field(p.field_name.as_ref())?,
            "hyperUniqueCardinality" => (double(field(p.field_name.as_ref())?.0), ColumnKind::Double),
            "constant" => match &p.value {
                Some(serde_json::Value::Number(n)) if n.is_i64() => (lit(n.as_i64().unwrap_or_default()), ColumnKind::Long),
                Some(serde_json::Value::Number(n)) => (lit(n.as_f64().unwrap_or_default()), ColumnKind::Double),
                other => return Err(Error::InvalidQuery(format!("a constant post-aggregator needs a number, not {other:?}"))),
            },
            "arithmetic" => {
                let operator = p.r#fn.as_deref().unwrap_or_default();
                let fields = p.fields.iter().map(|f| Ok(double(self.post(output, f)?.0))).collect::<Result<Vec<_>>>()?;
                let Some((first, rest)) = fields.split_first() else {
                    return Err(Error::InvalidQuery("an arithmetic post-aggregator needs fields".into()));
                };
                let mut acc = first.clone();
                for x in rest {
                    acc = match operator {
                        "+" => acc + x.clone(),
                        "-" => acc - x.clone(),
                        "*" => acc * x.clone(),
                        // Druid's `/` answers 0 for a zero divisor; `quotient` divides as IEEE does.
                        "/" => when(x.clone().eq(lit(0.0)), lit(0.0)).otherwise(acc / x.clone())?,
                        "quotient" => acc / x.clone(),
                        "pow" => f::power(acc, x.clone()),
                        other => return Err(Error::InvalidQuery(format!("unknown arithmetic function {other:?}"))),
                    };
                }
                (acc, ColumnKind::Double)
            }
            "expression" => {
                let text = p
                    .expression
                    .as_deref()
                    .ok_or_else(|| Error::InvalidQuery("an expression post-aggregator needs \"expression\"".into()))?;
                let typed = expression::translate(&expression::parse(text)?, output)?;
                let kind = match typed.ty {
                    Ty::Long => ColumnKind::Long,
                    Ty::Double | Ty::Null => ColumnKind::Double,
                    Ty::Text => ColumnKind::String,
                    Ty::Bool => ColumnKind::Long,
                };
                let expr = if typed.ty == Ty::Bool { cast(typed.expr, DataType::Int64) } else { typed.expr };
                (expr, kind)
            }
            "doubleGreatest" | "longGreatest" | "doubleLeast" | "longLeast" => {
                let fields = p.fields.iter().map(|f| Ok(self.post(output, f)?.0)).collect::<Result<Vec<_>>>()?;
                let long = p.kind.starts_with("long");
                let fields: Vec<Expr> =
                    fields.into_iter().map(|e| if long { try_cast(e, DataType::Int64) } else { double(e) }).collect();
                let expr = if p.kind.ends_with("Greatest") { f::greatest(fields) } else { f::least(fields) };
                (expr, if long { ColumnKind::Long } else { ColumnKind::Double })
            }
            "thetaSketchEstimate" | "HLLSketchEstimate" => {
                let inner = p.field.as_deref().ok_or_else(|| Error::InvalidQuery(format!("{} needs \"field\"", p.kind)))?;
                (double(self.post(output, inner)?.0), ColumnKind::Double)
            }
            "quantilesDoublesSketchToQuantile" => {
                let inner = p.field.as_deref().ok_or_else(|| Error::InvalidQuery(format!("{} needs \"field\"", p.kind)))?;
                let sketch =
                    inner.field_name.as_ref().ok_or_else(|| Error::InvalidQuery(format!("{} needs a fieldAccess", p.kind)))?;
                let input = self
                    .sketches
                    .get(sketch)
                    .cloned()
                    .ok_or_else(|| Error::InvalidQuery(format!("{sketch:?} is not a quantilesDoublesSketch aggregator")))?;
                let fraction = p.fraction.filter(|f| (0.0..=1.0).contains(f)).ok_or_else(|| {
                    Error::InvalidQuery("quantilesDoublesSketchToQuantile needs a fraction between 0 and 1".into())
                })?;
                let hidden = format!("\u{1}quantile{}", self.list.len());
                let mut expr = agg::approx_percentile_cont(input.value.sort(true, false), lit(fraction), None);
                if let Some(only) = input.filter {
                    expr = expr.filter(only).build()?;
                }
                self.list.push(Aggregation { name: hidden.clone(), expr, kind: ColumnKind::Double, empty: None, hidden: true });
                (ident(&hidden), ColumnKind::Double)
            }
            "javascript" => {
                return Err(Error::Unsupported("JavaScript post-aggregators are disabled in Druid and not supported".into()));
            }
            other => return Err(Error::Unsupported(format!("the {other} post-aggregator is not supported"))),
        })
    }
}

/// An exact distinct count, as a whole number when `round`, else as a double.
fn distinct(count: Expr, round: bool) -> (Expr, ColumnKind, Option<Expr>) {
    if round {
        (count, ColumnKind::Long, Some(lit(0i64)))
    } else {
        (cast(count, DataType::Float64), ColumnKind::Double, Some(lit(0.0)))
    }
}
