//! Native queries as DataFusion logical plans: the input (table, union or inner query, with
//! virtual columns, intervals and filter) and the aggregation most query types share.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{JoinType, LogicalPlanBuilder, cast, lit, try_cast};
use datafusion::prelude::{coalesce, ident};

use crate::druid::DATASOURCE;
use crate::druid::native::aggregate::Aggregations;
use crate::druid::native::context::{Column, Columns};
use crate::druid::native::dimension;
use crate::druid::native::expression::{self, Ty};
use crate::druid::native::filter::{balanced, filter, in_intervals, timestamp};
use crate::druid::native::model::{Aggregator, Common, DataSource, DimensionSpec, PostAggregator, Query};
use crate::druid::time::{Granularity, Interval};
use crate::druid::types::ColumnKind;
use crate::query::engine::PlanContext;
use crate::{Error, Result};

/// The bucket column of aggregated results.
pub(crate) const BUCKET: &str = "__oriel_bucket";
/// The aggregated side's bucket while it is joined to the list of buckets.
const KEY: &str = "__oriel_key";
/// How deeply query data sources may nest.
const MAX_NESTING: usize = 8;
/// Most data sources of one union.
const MAX_UNION: usize = 16;

/// Whether `source` names only data that exists (a query on anything else answers `[]`).
pub(crate) fn exists(source: &DataSource, depth: usize) -> Result<bool> {
    if depth > MAX_NESTING {
        return Err(Error::InvalidQuery(format!("query data sources nest deeper than {MAX_NESTING} levels")));
    }
    Ok(match source {
        DataSource::Table(name) => name == DATASOURCE,
        DataSource::Union(names) => names.iter().any(|n| n == DATASOURCE),
        DataSource::Query(inner) => exists(&Query::from_value((**inner).clone())?.common().data_source, depth + 1)?,
    })
}

/// A query's input rows and the columns it can name.
pub(crate) struct Input<'a> {
    pub(crate) builder: LogicalPlanBuilder,
    pub(crate) columns: Columns<'a>,
}

fn scan(ctx: &PlanContext<'_>) -> Result<LogicalPlanBuilder> {
    Ok(LogicalPlanBuilder::scan(DATASOURCE, provider_as_source(Arc::clone(&ctx.events)), None)?)
}

/// How far past now an interval must reach to be taken as covering every event to come.
const TEN_YEARS_MS: i64 = 10 * 366 * 24 * 3_600_000;

/// The rows `common` selects: its data source with its virtual columns, within its intervals
/// and filter.
pub(crate) fn input<'a>(ctx: &'a PlanContext<'_>, common: &Common, depth: usize) -> Result<Input<'a>> {
    let data_range = ctx.data_range;
    let builder = match &common.data_source {
        DataSource::Table(_) => scan(ctx)?,
        DataSource::Union(names) => {
            if names.len() > MAX_UNION {
                return Err(Error::InvalidQuery(format!(
                    "a union of {} data sources is too large; at most {MAX_UNION}",
                    names.len()
                )));
            }
            let known = names.iter().filter(|n| *n == DATASOURCE).count().max(1);
            let mut builder = scan(ctx)?;
            for _ in 1..known {
                builder = builder.union(scan(ctx)?.build()?)?;
            }
            builder
        }
        DataSource::Query(inner) => inner_query(ctx, &Query::from_value((**inner).clone())?, depth + 1)?,
    };
    let mut columns = Columns::of_schema(ctx.state, builder.schema());
    for v in &common.virtual_columns {
        if v.kind.as_deref().is_some_and(|k| k != "expression") {
            return Err(Error::Unsupported(format!("virtual columns of type {:?} are not supported", v.kind)));
        }
        let typed = expression::translate(&expression::parse(&v.expression)?, &columns)?;
        let (expr, kind) = match v.output_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("STRING") => (typed.text(), ColumnKind::String),
            Some("LONG") => (try_cast(typed.number().expr, DataType::Int64), ColumnKind::Long),
            Some("FLOAT" | "DOUBLE") => (cast(typed.number().expr, DataType::Float64), ColumnKind::Double),
            None => match typed.ty {
                Ty::Long | Ty::Bool => (typed.number().expr, ColumnKind::Long),
                Ty::Double => (typed.expr, ColumnKind::Double),
                Ty::Text | Ty::Null => (typed.text(), ColumnKind::String),
            },
            Some(other) => return Err(Error::InvalidQuery(format!("unknown virtual column outputType {other:?}"))),
        };
        columns.insert(v.name.clone(), Column { expr, kind });
    }
    let mut conditions = Vec::new();
    if let Some(intervals) = Interval::list(common.intervals.as_ref())? {
        let time = columns
            .timestamp("__time")
            .ok_or_else(|| Error::InvalidQuery("the data source has no __time column to apply the intervals to".into()))?;
        // Intervals that cover all the data (Turnilo's "1000/3000") filter nothing: leaving
        // them out lets counts come from the segments' statistics. The range is read before the
        // scan takes its snapshot, so events may arrive in between; an interval from before
        // 1970 to a decade past now covers those too.
        let horizon = chrono::Utc::now().timestamp_millis().saturating_add(TEN_YEARS_MS);
        let covered = matches!(common.data_source, DataSource::Table(_) | DataSource::Union(_))
            && data_range.is_some_and(|(lo, hi)| intervals.iter().any(|i| i.start <= lo.min(0) && i.end > hi.max(horizon)));
        if !covered {
            conditions.push(in_intervals(time, &intervals));
        }
    }
    if let Some(f) = &common.filter {
        conditions.push(filter(&columns, f)?);
    }
    let builder = if conditions.is_empty() { builder } else { builder.filter(balanced(conditions, true, true))? };
    Ok(Input { builder, columns })
}

/// The rows of an inner query, as an outer query reads them: `__time` (the bucket), the
/// dimensions, the aggregates and post-aggregates.
fn inner_query(ctx: &PlanContext<'_>, query: &Query, depth: usize) -> Result<LogicalPlanBuilder> {
    let (common, granularity, dimensions, aggregations, post) = match query {
        Query::GroupBy(q) => (&q.common, &q.granularity, q.dimensions.clone(), &q.aggregations, &q.post_aggregations),
        Query::Timeseries(q) => (&q.common, &q.granularity, Vec::new(), &q.aggregations, &q.post_aggregations),
        _ => return Err(Error::Unsupported("only groupBy and timeseries queries can be query data sources".into())),
    };
    if let Query::GroupBy(q) = query
        && (q.having.is_some() || q.limit_spec.as_ref().is_some_and(|l| l.limit.unwrap_or(0) > 0) || q.subtotals_spec.is_some())
    {
        return Err(Error::Unsupported("an inner groupBy with having, a limit or subtotals is not supported".into()));
    }
    let granularity = Granularity::from_json(granularity.as_ref())?;
    let universal = Interval::list(common.intervals.as_ref())?.and_then(|i| i.first().map(|i| i.start)).unwrap_or(0);
    let input = input(ctx, common, depth)?;
    let grouped = aggregate(input, &granularity, &dimensions, aggregations, post, None)?;
    // The bucket becomes the inner rows' `__time`; with `all` it is the first interval's start.
    let mut exprs = vec![match grouped.bucket {
        true => ident(BUCKET).alias("__time"),
        false => timestamp(universal).alias("__time"),
    }];
    exprs.extend(grouped.outputs.iter().map(|(name, _)| ident(name)));
    Ok(grouped.builder.project(exprs)?)
}

/// An aggregated result: its plan and output columns.
pub(crate) struct Grouped {
    pub(crate) builder: LogicalPlanBuilder,
    /// Whether there is a bucket column ([`BUCKET`]).
    pub(crate) bucket: bool,
    /// The dimensions, aggregates and post-aggregates, in order, with their kinds.
    pub(crate) outputs: Vec<(String, ColumnKind)>,
    /// How many of `outputs` are dimensions.
    pub(crate) dimensions: usize,
}

/// Groups `input` by bucket and dimensions and computes the aggregates, then the
/// post-aggregates. With `fill`, every bucket start listed gets a row, with 0 for counts and
/// null for the rest where it had no rows; buckets with rows are kept whether listed or not.
pub(crate) fn aggregate(
    input: Input<'_>,
    granularity: &Granularity,
    dimensions: &[DimensionSpec],
    aggregators: &[Aggregator],
    post: &[PostAggregator],
    fill: Option<Vec<i64>>,
) -> Result<Grouped> {
    let Input { builder, columns } = input;
    let mut groups = Vec::new();
    let time = columns.timestamp("__time");
    let bucket = match (dimension::floor(&columns, granularity, time.clone().unwrap_or_else(|| lit(0i64)))?, time) {
        (Some(expr), Some(_)) => {
            groups.push(expr.alias(BUCKET));
            true
        }
        (Some(_), None) => return Err(Error::InvalidQuery("a granularity other than all needs a __time column".into())),
        (None, _) => false,
    };
    let mut names: Vec<String> = Vec::new();
    let mut dimension_kinds = Vec::new();
    for spec in dimensions {
        let name = spec.output_name().to_string();
        if names.contains(&name) {
            return Err(Error::InvalidQuery(format!("two dimensions are named {name:?}")));
        }
        let (expr, kind) = dimension::dimension(&columns, spec)?;
        groups.push(expr.alias(&name));
        names.push(name.clone());
        dimension_kinds.push((name, kind));
    }
    let mut aggregations = Aggregations::new(&columns, aggregators)?;
    if let Some(clash) = aggregations.list.iter().find(|a| names.contains(&a.name)) {
        return Err(Error::InvalidQuery(format!("{:?} names both a dimension and an aggregator", clash.name)));
    }
    let mut output = aggregations.output_columns(&columns, &dimension_kinds);
    let posts = aggregations.post_aggregations(&mut output, post)?;
    let mut builder = builder.aggregate(groups, aggregations.list.iter().map(|a| a.expr.clone().alias(&a.name)))?;
    if let Some(buckets) = fill.filter(|_| bucket && dimensions.is_empty()) {
        let schema = Arc::new(Schema::new(vec![Field::new(BUCKET, DataType::Timestamp(TimeUnit::Millisecond, None), false)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(TimestampMillisecondArray::from(buckets))])?;
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        let mut keyed = vec![ident(BUCKET).alias(KEY)];
        keyed.extend(aggregations.list.iter().map(|a| ident(&a.name)));
        let aggregated = builder.project(keyed)?.build()?;
        // A full join: a bucket the list lacks (data that arrived after the list was made)
        // keeps its row.
        let joined = LogicalPlanBuilder::scan("fill", provider_as_source(Arc::new(table)), None)?.join(
            aggregated,
            JoinType::Full,
            (vec![BUCKET], vec![KEY]),
            None,
        )?;
        let mut filled = vec![coalesce(vec![ident(BUCKET), ident(KEY)]).alias(BUCKET)];
        filled.extend(aggregations.list.iter().map(|a| match &a.empty {
            Some(zero) => coalesce(vec![ident(&a.name), zero.clone()]).alias(&a.name),
            None => ident(&a.name),
        }));
        builder = joined.project(filled)?;
    }
    let mut exprs = Vec::new();
    if bucket {
        exprs.push(ident(BUCKET));
    }
    let mut outputs = dimension_kinds.clone();
    for (name, _) in &dimension_kinds {
        exprs.push(ident(name));
    }
    for a in aggregations.list.iter().filter(|a| !a.hidden) {
        exprs.push(ident(&a.name));
        outputs.push((a.name.clone(), a.kind));
    }
    for (name, expr, kind) in posts {
        exprs.push(expr.alias(&name));
        outputs.push((name, kind));
    }
    Ok(Grouped { builder: builder.project(exprs)?, bucket, outputs, dimensions: dimension_kinds.len() })
}
