//! Druid's native JSON queries: each is translated into a DataFusion plan on the store's query
//! engine (so it gets the same limits, pruning and speed as SQL), run, and its rows shaped as
//! Druid answers them.
//!
//! - `model`: the queries as JSON.
//! - `expression`: Druid's expression language.
//! - `context`: the columns a query can name.
//! - `filter`, `dimension`, `aggregate`: filters and `having`, dimension specs and extraction
//!   functions, aggregators and post-aggregators.
//! - `plan`: inputs and aggregation.
//!
//! A query on a data source that does not exist answers `[]`, as Druid does.

mod aggregate;
mod context;
mod dimension;
mod expression;
mod filter;
pub mod model;
mod plan;

pub(crate) use dimension::check_regex;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{Expr, ExprFunctionExt, LogicalPlan, SortExpr, cast, lit, try_cast};
use datafusion::prelude::ident;
use serde_json::{Map, Value, json};

use crate::druid::native::context::{Column, Columns};
use crate::druid::native::model::{
    DataSource, DataSourceMetadata, GroupBy, Ordering, Query, Scan, Search, SegmentMetadata, TimeBoundary, Timeseries, TopN,
    TopNMetric,
};
use crate::druid::native::plan::{BUCKET, Grouped, Input};
use crate::druid::time::{Granularity, Interval, iso};
use crate::druid::types::ColumnKind;
use crate::druid::{DATASOURCE, DRUID_VERSION};
use crate::query::engine::{PlanContext, QueryInput, QuerySettings};
use crate::query::{QueryEngine, QueryResult, values};
use crate::schema::events_schema;
use crate::{Error, Result};

/// Runs native query `body` on `engine` and returns Druid's answer. All of it, the shaping of
/// the answer included, runs on the query threads.
pub async fn execute(engine: Arc<QueryEngine>, body: Value) -> Result<Value> {
    let runner = Arc::clone(&engine);
    engine.on_query_threads(async move { answer(&runner, body).await }).await?
}

async fn answer(engine: &QueryEngine, body: Value) -> Result<Value> {
    let query = Query::from_value(body)?;
    let common = query.common();
    if !plan::exists(&common.data_source, 0)? {
        return Ok(json!([]));
    }
    // One time limit for the whole request, however many queries it takes.
    let limit = common
        .context
        .timeout
        .filter(|t| *t > 0)
        .map_or(engine.options().timeout, |ms| Duration::from_millis(ms).min(engine.options().timeout));
    let run = Runner {
        engine,
        deadline: tokio::time::Instant::now() + limit,
        limit,
        as_long: common.context.serialize_date_time_as_long,
    };
    match query {
        Query::Timeseries(q) => run.timeseries(q).await,
        Query::TopN(q) => run.top_n(q).await,
        Query::GroupBy(q) => run.group_by(q).await,
        Query::Scan(q) => run.scan(q).await,
        Query::Search(q) => run.search(q).await,
        Query::TimeBoundary(q) => run.time_boundary(q).await,
        Query::SegmentMetadata(q) => run.segment_metadata(q).await,
        Query::DataSourceMetadata(q) => run.data_source_metadata(q).await,
    }
}

/// Most groupings of one `subtotalsSpec` (each is a query of its own).
const MAX_SUBTOTALS: usize = 64;
/// Most dimensions one search looks in.
const MAX_SEARCH_DIMENSIONS: usize = 256;

struct Runner<'a> {
    engine: &'a QueryEngine,
    /// When the whole request must be done.
    deadline: tokio::time::Instant,
    /// Its time limit, for the error message.
    limit: Duration,
    as_long: bool,
}

/// One result row: its values by column name.
type Row = Map<String, Value>;

impl Runner<'_> {
    async fn run(&self, build: impl FnOnce(&PlanContext<'_>) -> Result<LogicalPlan> + Send + 'static) -> Result<QueryResult> {
        let left = self.deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!("the query ran longer than {} s", self.limit.as_secs_f64())));
        }
        let mut stream = self
            .engine
            .start(QueryInput::Plan(Box::new(build)), QuerySettings { timeout: Some(left), ..Default::default() })
            .await?;
        // The answer is built whole: its batches count against the result size limit as they
        // come, before any of it is shaped.
        let budget = self.engine.options().max_result_bytes;
        let (schema, mut batches, mut held) = (Arc::clone(stream.schema()), Vec::new(), 0u64);
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            held += batch.get_array_memory_size() as u64;
            if held > budget {
                return Err(Error::TooBig(format!(
                    "the answer is larger than {} bytes (store.max_result_mb); add a limit or a filter",
                    self.engine.options().max_result_bytes
                )));
            }
            batches.push(batch);
        }
        Ok(QueryResult { schema, batches })
    }

    /// The first and last `__time` of the whole data source; `None` when it is empty.
    async fn boundary(&self) -> Result<Option<(i64, i64)>> {
        if let Some(known) = self.engine.time_range() {
            return Ok(known);
        }
        let result = self
            .run(|ctx| {
                let Input { builder, columns } = plan::input(ctx, &empty_common(), 0)?;
                let time = columns.timestamp("__time").ok_or_else(|| Error::Internal("no __time".into()))?;
                Ok(builder
                    .aggregate(Vec::<Expr>::new(), vec![agg::min(time.clone()).alias("lo"), agg::max(time).alias("hi")])?
                    .build()?)
            })
            .await?;
        let times = timestamps(&result, &["lo", "hi"]);
        Ok(match times.first() {
            Some(row) => row[0].zip(row[1]),
            None => None,
        })
    }

    fn time(&self, ms: i64, granularity: &Granularity) -> Value {
        if self.as_long { json!(ms) } else { granularity.format(ms) }
    }

    /// The timestamp of a granularity-`all` answer: the first interval's start, or the data's
    /// first time when that is later.
    fn universal(intervals: Option<&[Interval]>, bounds: Option<(i64, i64)>) -> Option<i64> {
        let (lo, hi) = bounds?;
        match intervals {
            None => Some(lo),
            Some(list) => list.iter().filter(|i| i.start <= hi && i.end > lo).map(|i| i.start.max(lo)).min(),
        }
    }

    async fn timeseries(&self, q: Timeseries) -> Result<Value> {
        let granularity = Granularity::from_json(q.granularity.as_ref())?;
        let intervals = Interval::list(q.common.intervals.as_ref())?;
        let table = !matches!(q.common.data_source, DataSource::Query(_));
        let fill_wanted =
            table && !q.common.context.skip_empty_buckets && !matches!(granularity, Granularity::All | Granularity::None);
        let bounds = if matches!(granularity, Granularity::All) || fill_wanted { self.boundary().await? } else { None };
        let mut universal = None;
        if matches!(granularity, Granularity::All) && table {
            universal = Self::universal(intervals.as_deref(), bounds);
            if universal.is_none() {
                return Ok(json!([]));
            }
        } else if matches!(granularity, Granularity::All) {
            // Over an inner query: the first interval's start, as for a groupBy.
            universal = intervals.as_deref().and_then(|i| i.first()).map(|i| i.start);
        }
        let fill = match (fill_wanted, bounds) {
            (true, Some((lo, hi))) => {
                let ranges: Vec<Interval> = intervals.clone().unwrap_or_else(|| vec![Interval { start: lo, end: hi + 1 }]);
                let mut buckets = Vec::new();
                for r in ranges {
                    let (start, end) = (r.start.max(lo), r.end.min(hi.saturating_add(1)));
                    if start < end {
                        buckets.extend(granularity.buckets(start, end)?);
                        if buckets.len() as u64 > crate::druid::time::MAX_BUCKETS {
                            return Err(granularity.too_many());
                        }
                    }
                }
                buckets.sort_unstable();
                buckets.dedup();
                Some(buckets)
            }
            _ => None,
        };
        let (common, g, aggs, posts) =
            (q.common.clone(), granularity.clone(), q.aggregations.clone(), q.post_aggregations.clone());
        let (descending, limit) = (q.descending, q.limit.filter(|l| *l > 0));
        let result = self
            .run(move |ctx| {
                let grouped = plan::aggregate(plan::input(ctx, &common, 0)?, &g, &[], &aggs, &posts, fill)?;
                let mut builder = grouped.builder;
                if grouped.bucket {
                    builder = builder.sort(vec![ident(BUCKET).sort(!descending, true)])?;
                }
                if let Some(limit) = limit {
                    builder = builder.limit(0, Some(usize::try_from(limit).unwrap_or(usize::MAX)))?;
                }
                Ok(builder.build()?)
            })
            .await?;
        let mut out: Vec<Value> = Vec::new();
        for (bucket, row) in rows_with_bucket(&result) {
            let timestamp = match (bucket, universal) {
                (Some(ms), _) => self.time(ms, &granularity),
                (None, Some(ms)) => self.time(ms, &granularity),
                (None, None) => Value::Null,
            };
            out.push(json!({ "timestamp": timestamp, "result": row }));
        }
        if q.common.context.grand_total {
            let (common, aggs, posts) = (q.common.clone(), q.aggregations.clone(), q.post_aggregations.clone());
            let total = self
                .run(move |ctx| {
                    Ok(plan::aggregate(plan::input(ctx, &common, 0)?, &Granularity::All, &[], &aggs, &posts, None)?
                        .builder
                        .build()?)
                })
                .await?;
            if let Some((_, row)) = rows_with_bucket(&total).into_iter().next() {
                out.push(json!({ "timestamp": null, "result": row }));
            }
        }
        Ok(Value::Array(out))
    }

    async fn top_n(&self, q: TopN) -> Result<Value> {
        let granularity = Granularity::from_json(q.granularity.as_ref())?;
        let intervals = Interval::list(q.common.intervals.as_ref())?;
        let threshold =
            q.threshold.filter(|t| *t > 0).ok_or_else(|| Error::InvalidQuery("a topN needs a positive threshold".into()))?;
        let threshold = usize::try_from(threshold).unwrap_or(usize::MAX);
        let all = matches!(granularity, Granularity::All);
        let universal = if all { Self::universal(intervals.as_deref(), self.boundary().await?) } else { None };
        let name = q.dimension.output_name().to_string();
        let (common, g, dimension, aggs, posts, metric) = (
            q.common.clone(),
            granularity.clone(),
            q.dimension.clone(),
            q.aggregations.clone(),
            q.post_aggregations.clone(),
            q.metric.clone(),
        );
        let result = self
            .run(move |ctx| {
                let grouped = plan::aggregate(plan::input(ctx, &common, 0)?, &g, &[dimension], &aggs, &posts, None)?;
                let (sorts, after) = top_n_order(&metric, &name, &grouped)?;
                let mut builder = grouped.builder;
                if let Some(after) = after {
                    builder = builder.filter(after)?;
                }
                if grouped.bucket {
                    let rank = row_number().partition_by(vec![ident(BUCKET)]).order_by(sorts).build()?.alias("__oriel_rank");
                    builder = builder
                        .window(vec![rank])?
                        .filter(ident("__oriel_rank").lt_eq(lit(i64::try_from(threshold).unwrap_or(i64::MAX))))?
                        .sort(vec![ident(BUCKET).sort(true, true), ident("__oriel_rank").sort(true, true)])?;
                    let keep: Vec<Expr> = builder
                        .schema()
                        .fields()
                        .iter()
                        .filter(|f| f.name() != "__oriel_rank")
                        .map(|f| ident(f.name()))
                        .collect();
                    builder = builder.project(keep)?;
                } else {
                    builder = builder.sort(sorts)?.limit(0, Some(threshold))?;
                }
                Ok(builder.build()?)
            })
            .await?;
        let mut buckets: Vec<(Option<i64>, Vec<Value>)> = Vec::new();
        for (bucket, row) in rows_with_bucket(&result) {
            match buckets.last_mut() {
                Some((b, rows)) if *b == bucket => rows.push(Value::Object(row)),
                _ => buckets.push((bucket, vec![Value::Object(row)])),
            }
        }
        Ok(Value::Array(
            buckets
                .into_iter()
                .map(|(bucket, rows)| {
                    let timestamp = bucket.or(universal).map_or(Value::Null, |ms| self.time(ms, &granularity));
                    json!({ "timestamp": timestamp, "result": rows })
                })
                .collect(),
        ))
    }

    async fn group_by(&self, q: GroupBy) -> Result<Value> {
        let granularity = Granularity::from_json(q.granularity.as_ref())?;
        let intervals = Interval::list(q.common.intervals.as_ref())?;
        let universal = match intervals.as_deref().and_then(|i| i.first()) {
            Some(first) => Some(first.start),
            None if matches!(granularity, Granularity::All) => self.boundary().await?.map(|(lo, _)| lo),
            None => None,
        };
        let groupings: Vec<Vec<String>> = match &q.subtotals_spec {
            Some(subtotals) if subtotals.len() > MAX_SUBTOTALS => {
                return Err(Error::InvalidQuery(format!(
                    "subtotalsSpec has {} groupings; at most {MAX_SUBTOTALS}",
                    subtotals.len()
                )));
            }
            Some(subtotals) => subtotals.clone(),
            None => vec![q.dimensions.iter().map(|d| d.output_name().to_string()).collect()],
        };
        let mut out = Vec::new();
        for grouping in groupings {
            let dimensions: Vec<_> =
                q.dimensions.iter().filter(|d| grouping.iter().any(|g| g == d.output_name())).cloned().collect();
            if dimensions.len() != grouping.len() {
                return Err(Error::InvalidQuery(format!(
                    "subtotalsSpec names dimensions that the query does not have: {grouping:?}"
                )));
            }
            let absent: Vec<String> =
                q.dimensions.iter().map(|d| d.output_name().to_string()).filter(|n| !grouping.contains(n)).collect();
            let q2 = q.clone();
            let g = granularity.clone();
            let result = self
                .run(move |ctx| {
                    let grouped = plan::aggregate(
                        plan::input(ctx, &q2.common, 0)?,
                        &g,
                        &dimensions,
                        &q2.aggregations,
                        &q2.post_aggregations,
                        None,
                    )?;
                    let output = output_columns(ctx, &grouped);
                    let mut builder = grouped.builder;
                    if let Some(having) = &q2.having {
                        builder = builder.filter(filter::having(&output, having)?)?;
                    }
                    let limit = q2.limit_spec.clone().unwrap_or_default();
                    let mut sorts = Vec::new();
                    if grouped.bucket {
                        sorts.push(ident(BUCKET).sort(true, true));
                    }
                    if limit.columns.is_empty() {
                        sorts.extend(grouped.outputs[..grouped.dimensions].iter().map(|(name, _)| ident(name).sort(true, true)));
                    }
                    for column in &limit.columns {
                        let found = output.get(&column.dimension).ok_or_else(|| {
                            Error::InvalidQuery(format!(
                                "limitSpec orders by {:?}, which is not an output column",
                                column.dimension
                            ))
                        })?;
                        sorts.extend(ordered(ident(&column.dimension), found.kind, column.ordering, !column.descending)?);
                    }
                    if !sorts.is_empty() {
                        builder = builder.sort(sorts)?;
                    }
                    let fetch = limit.limit.filter(|l| *l > 0).map(|l| usize::try_from(l).unwrap_or(usize::MAX));
                    let skip = usize::try_from(limit.offset.unwrap_or(0)).unwrap_or(usize::MAX);
                    if fetch.is_some() || skip > 0 {
                        builder = builder.limit(skip, fetch)?;
                    }
                    Ok(builder.build()?)
                })
                .await?;
            for (bucket, mut row) in rows_with_bucket(&result) {
                for name in &absent {
                    row.insert(name.clone(), Value::Null);
                }
                let timestamp = bucket.or(universal).map_or(Value::Null, |ms| self.time(ms, &granularity));
                out.push(json!({ "version": "v1", "timestamp": timestamp, "event": row }));
            }
        }
        Ok(Value::Array(out))
    }

    async fn scan(&self, q: Scan) -> Result<Value> {
        let compacted = match q.result_format.as_deref() {
            None | Some("list") => false,
            Some("compactedList") => true,
            Some(other) => return Err(Error::InvalidQuery(format!("scan resultFormat {other:?}: use list or compactedList"))),
        };
        let order = match q.order.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("none") => None,
            Some("ascending") => Some(true),
            Some("descending") => Some(false),
            Some(other) => return Err(Error::InvalidQuery(format!("scan order {other:?}: use none, ascending or descending"))),
        };
        let mut names: Vec<String> = q.columns.clone();
        if names.is_empty() {
            names = events_schema().fields().iter().map(|f| f.name().clone()).collect();
            names.extend(q.common.virtual_columns.iter().map(|v| v.name.clone()));
        }
        let (common, selected) = (q.common.clone(), names.clone());
        let (limit, offset) = (q.limit.filter(|l| *l > 0), q.offset.unwrap_or(0));
        let result = self
            .run(move |ctx| {
                let Input { mut builder, columns } = plan::input(ctx, &common, 0)?;
                if let (Some(ascending), Some(time)) = (order, columns.timestamp("__time")) {
                    builder = builder.sort(vec![time.sort(ascending, true)])?;
                }
                let mut exprs = Vec::new();
                for name in &selected {
                    let expr = match columns.get(name) {
                        Some(Column { expr, kind: ColumnKind::Time }) => columns.millis(expr.clone())?,
                        Some(Column { expr, kind: ColumnKind::Bool }) => context::bool_text(expr.clone()),
                        Some(Column { expr, .. }) => expr.clone(),
                        None => lit(datafusion::common::ScalarValue::Utf8(None)),
                    };
                    exprs.push(expr.alias(name));
                }
                builder = builder.project(exprs)?;
                let skip = usize::try_from(offset).unwrap_or(usize::MAX);
                let fetch = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
                if fetch.is_some() || skip > 0 {
                    builder = builder.limit(skip, fetch)?;
                }
                Ok(builder.build()?)
            })
            .await?;
        let rows = values::rows(&result);
        if rows.is_empty() {
            return Ok(json!([]));
        }
        let mut header = names.clone();
        let legacy_time = if q.legacy { names.iter().position(|n| n == "__time") } else { None };
        if let Some(i) = legacy_time {
            header[i] = "timestamp".into();
        }
        let events: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let mut cells = match row {
                    Value::Array(cells) => cells,
                    other => vec![other],
                };
                if let Some(i) = legacy_time {
                    cells[i] = cells[i].as_i64().map_or(Value::Null, iso);
                }
                if compacted { Value::Array(cells) } else { Value::Object(header.iter().cloned().zip(cells).collect()) }
            })
            .collect();
        Ok(json!([{ "segmentId": segment_id(), "columns": header, "events": events }]))
    }

    async fn search(&self, q: Search) -> Result<Value> {
        let granularity = Granularity::from_json(q.granularity.as_ref())?;
        let intervals = Interval::list(q.common.intervals.as_ref())?;
        let universal = if matches!(granularity, Granularity::All) {
            Self::universal(intervals.as_deref(), self.boundary().await?)
        } else {
            None
        };
        if q.search_dimensions.len() > MAX_SEARCH_DIMENSIONS {
            return Err(Error::InvalidQuery(format!(
                "{} searchDimensions are too many; at most {MAX_SEARCH_DIMENSIONS}",
                q.search_dimensions.len()
            )));
        }
        let mut specs = q.search_dimensions.clone();
        if specs.is_empty() {
            specs = events_schema()
                .fields()
                .iter()
                .filter(|f| crate::druid::types::column_kind(f.data_type()) == ColumnKind::String)
                .map(|f| model::DimensionSpec::Default {
                    dimension: f.name().clone(),
                    output_name: f.name().clone(),
                    output_type: None,
                })
                .collect();
        }
        let (common, g, spec) = (q.common.clone(), granularity.clone(), q.query.clone());
        let result = self
            .run(move |ctx| {
                let Input { builder, columns } = plan::input(ctx, &common, 0)?;
                let time = columns.timestamp("__time").unwrap_or_else(|| lit(0i64));
                let bucket = dimension::floor(&columns, &g, time)?;
                let mut union: Option<datafusion::logical_expr::LogicalPlanBuilder> = None;
                for spec_dim in &specs {
                    let text = dimension::dimension_text(&columns, spec_dim)?;
                    let matched = dimension::search(&spec, text.clone())?;
                    let mut exprs = Vec::new();
                    if let Some(b) = &bucket {
                        exprs.push(b.clone().alias(BUCKET));
                    }
                    exprs.push(lit(spec_dim.output_name().to_string()).alias("dimension"));
                    exprs.push(text.alias("value"));
                    let part = builder.clone().filter(matched)?.project(exprs)?;
                    union = Some(match union {
                        None => part,
                        Some(u) => u.union(part.build()?)?,
                    });
                }
                let union = union.ok_or_else(|| Error::InvalidQuery("a search needs searchDimensions".into()))?;
                let mut groups = Vec::new();
                if bucket.is_some() {
                    groups.push(ident(BUCKET));
                }
                groups.extend([ident("dimension"), ident("value")]);
                Ok(union.aggregate(groups, vec![agg::count(lit(1i64)).alias("count")])?.build()?)
            })
            .await?;
        let sort = q.sort.unwrap_or(Ordering::Lexicographic);
        let limit = usize::try_from(q.limit.filter(|l| *l > 0).unwrap_or(1000)).unwrap_or(usize::MAX);
        let mut buckets: BTreeMap<Option<i64>, Vec<Row>> = BTreeMap::new();
        for (bucket, row) in rows_with_bucket(&result) {
            buckets.entry(bucket).or_default().push(row);
        }
        let text = |r: &Row, key: &str| r.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut out = Vec::new();
        for (bucket, mut rows) in buckets {
            rows.sort_by(|a, b| {
                let (va, vb) = (text(a, "value"), text(b, "value"));
                let primary = match sort {
                    Ordering::Strlen => va.chars().count().cmp(&vb.chars().count()).then_with(|| va.cmp(&vb)),
                    Ordering::Numeric => {
                        let n = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
                        n(&va).total_cmp(&n(&vb))
                    }
                    _ => va.cmp(&vb),
                };
                primary.then_with(|| text(a, "dimension").cmp(&text(b, "dimension")))
            });
            rows.truncate(limit);
            let timestamp = bucket.or(universal).map_or(Value::Null, |ms| self.time(ms, &granularity));
            out.push(json!({ "timestamp": timestamp, "result": rows }));
        }
        Ok(Value::Array(out))
    }

    async fn time_boundary(&self, q: TimeBoundary) -> Result<Value> {
        let common = q.common.clone();
        let result = self
            .run(move |ctx| {
                let Input { builder, columns } = plan::input(ctx, &common, 0)?;
                let time =
                    columns.timestamp("__time").ok_or_else(|| Error::InvalidQuery("the data source has no __time".into()))?;
                Ok(builder
                    .aggregate(Vec::<Expr>::new(), vec![agg::min(time.clone()).alias("lo"), agg::max(time).alias("hi")])?
                    .build()?)
            })
            .await?;
        let Some((lo, hi)) = timestamps(&result, &["lo", "hi"]).first().and_then(|r| r[0].zip(r[1])) else {
            return Ok(json!([]));
        };
        let utc = Granularity::All;
        Ok(match q.bound.as_deref() {
            Some("maxTime") => json!([{ "timestamp": self.time(hi, &utc), "result": { "maxTime": self.time(hi, &utc) } }]),
            Some("minTime") => json!([{ "timestamp": self.time(lo, &utc), "result": { "minTime": self.time(lo, &utc) } }]),
            None => {
                json!([{ "timestamp": self.time(lo, &utc), "result": { "minTime": self.time(lo, &utc), "maxTime": self.time(hi, &utc) } }])
            }
            Some(other) => return Err(Error::InvalidQuery(format!("timeBoundary bound {other:?}: use minTime or maxTime"))),
        })
    }

    async fn data_source_metadata(&self, _q: DataSourceMetadata) -> Result<Value> {
        let Some((_, hi)) = self.boundary().await? else { return Ok(json!([])) };
        let t = self.time(hi, &Granularity::All);
        Ok(json!([{ "timestamp": t, "result": { "maxIngestedEventTime": t } }]))
    }

    async fn segment_metadata(&self, q: SegmentMetadata) -> Result<Value> {
        let analyses: Vec<String> =
            q.analysis_types.clone().unwrap_or_else(|| vec!["cardinality".into(), "interval".into(), "minmax".into()]);
        let wants = |a: &str| analyses.iter().any(|x| x.eq_ignore_ascii_case(a));
        let schema = events_schema();
        let included: Vec<(String, ColumnKind, bool)> = schema
            .fields()
            .iter()
            .filter(|f| match &q.to_include {
                None | Some(Value::Null) => true,
                Some(spec) => match spec.get("type").and_then(Value::as_str) {
                    Some("none") => false,
                    Some("list") => spec
                        .get("columns")
                        .and_then(Value::as_array)
                        .is_some_and(|c| c.iter().any(|v| v.as_str() == Some(f.name()))),
                    _ => true,
                },
            })
            .map(|f| (f.name().clone(), crate::druid::types::column_kind(f.data_type()), f.is_nullable()))
            .collect();
        let (cardinality, minmax) = (wants("cardinality"), wants("minmax"));
        let strings: Vec<String> =
            included.iter().filter(|(_, k, _)| *k == ColumnKind::String).map(|(n, ..)| n.clone()).collect();
        let (common, strings_plan) = (q.common.clone(), strings.clone());
        let result = self
            .run(move |ctx| {
                let Input { builder, columns } = plan::input(ctx, &common, 0)?;
                let time =
                    columns.timestamp("__time").ok_or_else(|| Error::InvalidQuery("the data source has no __time".into()))?;
                let mut aggregates =
                    vec![agg::count(lit(1i64)).alias("rows"), agg::min(time.clone()).alias("lo"), agg::max(time).alias("hi")];
                for (i, name) in strings_plan.iter().enumerate() {
                    let value = columns.text(name)?;
                    if cardinality {
                        aggregates.push(
                            cast(agg::approx_distinct(value.clone()), datafusion::arrow::datatypes::DataType::Int64)
                                .alias(format!("c{i}")),
                        );
                    }
                    if minmax {
                        aggregates.push(agg::min(value.clone()).alias(format!("min{i}")));
                        aggregates.push(agg::max(value).alias(format!("max{i}")));
                    }
                }
                Ok(builder.aggregate(Vec::<Expr>::new(), aggregates)?.build()?)
            })
            .await?;
        let Some((_, row)) = rows_with_bucket(&result).into_iter().next() else { return Ok(json!([])) };
        let rows = row.get("rows").and_then(Value::as_i64).unwrap_or(0);
        let Some((lo, hi)) = timestamps(&result, &["lo", "hi"]).first().and_then(|r| r[0].zip(r[1])) else {
            return Ok(json!([]));
        };
        if rows == 0 {
            return Ok(json!([]));
        }
        let mut columns = Map::new();
        for (name, kind, nullable) in &included {
            let index = strings.iter().position(|s| s == name);
            let stat = |prefix: &str| index.and_then(|i| row.get(&format!("{prefix}{i}")).cloned()).unwrap_or(Value::Null);
            columns.insert(
                name.clone(),
                json!({
                    "type": kind.native_name(), "typeSignature": kind.native_name(), "hasMultipleValues": false,
                    "hasNulls": *nullable, "size": 0,
                    "cardinality": if cardinality { stat("c") } else { Value::Null },
                    "minValue": if minmax { stat("min") } else { Value::Null },
                    "maxValue": if minmax { stat("max") } else { Value::Null },
                    "errorMessage": null,
                }),
            );
        }
        let interval = format!("{}/{}", iso(lo).as_str().unwrap_or_default(), iso(hi + 1).as_str().unwrap_or_default());
        let merged = q.merge.unwrap_or(false);
        Ok(json!([{
            "id": if merged { "merged".to_string() } else { segment_id() },
            "intervals": if wants("interval") { json!([interval]) } else { Value::Null },
            "columns": columns,
            "size": 0,
            "numRows": rows,
            "aggregators": if wants("aggregators") { json!({}) } else { Value::Null },
            "projections": null,
            "timestampSpec": if wants("timestampSpec") { json!({"column": "__time", "format": "millis", "missingValue": null}) } else { Value::Null },
            "queryGranularity": if wants("queryGranularity") { json!({"type": "none"}) } else { Value::Null },
            "rollup": if wants("rollup") { json!(false) } else { Value::Null },
        }]))
    }
}

/// A data source with nothing else: all of the `events` table.
fn empty_common() -> model::Common {
    model::Common {
        data_source: DataSource::Table(DATASOURCE.into()),
        intervals: None,
        filter: None,
        virtual_columns: Vec::new(),
        context: model::Context::default(),
    }
}

/// The one logical segment Oriel reports.
fn segment_id() -> String {
    format!("{DATASOURCE}_1000-01-01T00:00:00.000Z_3000-01-01T00:00:00.000Z_{DRUID_VERSION}")
}

/// The columns of an aggregated result, for `having` and `limitSpec`.
fn output_columns<'a>(ctx: &'a PlanContext<'_>, grouped: &Grouped) -> Columns<'a> {
    Columns::with(ctx.state, grouped.outputs.iter().map(|(name, kind)| (name.clone(), Column { expr: ident(name), kind: *kind })))
}

/// Sort expressions for `value` in `ordering`.
fn ordered(value: Expr, kind: ColumnKind, ordering: Ordering, ascending: bool) -> Result<Vec<SortExpr>> {
    let text = || {
        if kind == ColumnKind::String { value.clone() } else { cast(value.clone(), datafusion::arrow::datatypes::DataType::Utf8) }
    };
    Ok(match (ordering, kind) {
        (Ordering::Numeric, ColumnKind::String) => {
            vec![try_cast(value, datafusion::arrow::datatypes::DataType::Float64).sort(ascending, ascending)]
        }
        (Ordering::Numeric | Ordering::Lexicographic, ColumnKind::Long | ColumnKind::Double | ColumnKind::Time)
        | (Ordering::Numeric, ColumnKind::Bool) => {
            vec![value.sort(ascending, ascending)]
        }
        (Ordering::Strlen, _) => vec![
            datafusion::functions::expr_fn::character_length(text()).sort(ascending, ascending),
            text().sort(ascending, ascending),
        ],
        (Ordering::Lexicographic, _) => vec![text().sort(ascending, ascending)],
        (Ordering::Alphanumeric | Ordering::Version, _) => {
            return Err(Error::Unsupported(format!("the {ordering:?} ordering is not supported; use lexicographic or numeric")));
        }
    })
}

/// The ordering of a topN's rows, and a filter for `previousStop`.
fn top_n_order(metric: &TopNMetric, dimension: &str, grouped: &Grouped) -> Result<(Vec<SortExpr>, Option<Expr>)> {
    let kind_of = |name: &str| grouped.outputs.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
    let (metric, inverted) = match metric {
        TopNMetric::Inverted(inner) => (inner.as_ref(), true),
        other => (other, false),
    };
    let tie = ident(dimension).sort(true, true);
    Ok(match metric {
        TopNMetric::Numeric(name) => {
            if kind_of(name).is_none() {
                return Err(Error::InvalidQuery(format!("the topN metric {name:?} is not an aggregator or post-aggregator")));
            }
            // Largest first (nulls last); inverted: smallest first.
            (vec![ident(name).sort(inverted, inverted), tie], None)
        }
        TopNMetric::Dimension { ordering, previous_stop } => {
            let kind = kind_of(dimension).unwrap_or(ColumnKind::String);
            let sorts = ordered(ident(dimension), kind, *ordering, !inverted)?;
            let after = previous_stop.as_ref().map(|stop| {
                if inverted { ident(dimension).lt(lit(stop.clone())) } else { ident(dimension).gt(lit(stop.clone())) }
            });
            (sorts, after)
        }
        TopNMetric::Inverted(_) => return Err(Error::InvalidQuery("an inverted metric cannot invert another".into())),
    })
}

/// Each row's bucket (milliseconds, when the result has [`BUCKET`]) and its other columns.
fn rows_with_bucket(result: &QueryResult) -> Vec<(Option<i64>, Row)> {
    let schema = &result.schema;
    let mut out = Vec::new();
    for batch in &result.batches {
        let bucket =
            schema.index_of(BUCKET).ok().and_then(|i| batch.column(i).as_primitive_opt::<TimestampMillisecondType>().cloned());
        for row in 0..batch.num_rows() {
            let mut values = Map::new();
            for (i, field) in schema.fields().iter().enumerate() {
                if field.name() != BUCKET {
                    values.insert(field.name().clone(), values::value(batch.column(i), row));
                }
            }
            let ms = bucket.as_ref().and_then(|b| b.is_valid(row).then(|| b.value(row)));
            out.push((ms, values));
        }
    }
    out
}

/// Timestamp columns `names` of every row, in milliseconds.
fn timestamps(result: &QueryResult, names: &[&str]) -> Vec<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let columns: Vec<_> = names
            .iter()
            .map(|n| {
                result
                    .schema
                    .index_of(n)
                    .ok()
                    .and_then(|i| batch.column(i).as_primitive_opt::<TimestampMillisecondType>().cloned())
            })
            .collect();
        for row in 0..batch.num_rows() {
            out.push(columns.iter().map(|c| c.as_ref().and_then(|c| c.is_valid(row).then(|| c.value(row)))).collect());
        }
    }
    out
}
