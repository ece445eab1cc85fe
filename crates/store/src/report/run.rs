//! Running a report and shaping its answer: rows of split keys with the measures of the range
//! (and of the compared range), and the totals over all rows.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimestampMillisecondType};
use serde::Serialize;
use serde_json::Value;

use oriel_core::config::Goal;

use crate::query::engine::QueryEngine;
use crate::query::functions::{Zone, format_time};
use crate::query::{QueryResult, values};
use crate::report::compile::{Compiled, Plan, Split, compile};
use crate::report::range::{TimeRange, auto_granularity, compared, resolve};
use crate::report::request::{Measure, ReportRequest};
use crate::{Error, Result};

/// A report's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The range, as ISO-8601 instants in the report's zone.
    pub range: RangeOut,
    /// The compared range, if any.
    pub compare_range: Option<RangeOut>,
    /// The zone days and buckets were cut in.
    pub time_zone: String,
    /// The time split's granularity, if the report splits by time.
    pub granularity: Option<String>,
    /// The split names (a dimension's, or `time`).
    pub splits: Vec<String>,
    /// The measure names, in the order of the values.
    pub measures: Vec<String>,
    /// Which measures are better when smaller (bounce rate).
    pub lower_is_better: Vec<bool>,
    /// The rows.
    pub rows: Vec<Row>,
    /// The measures over everything the filters let through.
    pub totals: Row,
    /// Whether more rows than the limit exist.
    pub truncated: bool,
}

/// A range in an answer.
#[derive(Debug, Clone, Serialize)]
pub struct RangeOut {
    /// The first instant.
    pub start: String,
    /// The instant after.
    pub end: String,
}

/// One row of an answer.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The split keys (time as ISO-8601 in the report's zone).
    pub keys: Vec<Value>,
    /// The measures.
    pub values: Vec<Value>,
    /// The measures of the compared range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Vec<Value>>,
}

fn range_out(range: TimeRange, zone: Zone) -> RangeOut {
    let text = |ms| format_time(ms, None, zone).unwrap_or_default();
    RangeOut { start: text(range.start), end: text(range.end) }
}

/// Runs `request` on `engine` at instant `now` (ms); `goal:<name>` measures name `goals`.
pub async fn run(engine: &QueryEngine, request: ReportRequest, goals: &[Goal], now: i64) -> Result<Report> {
    request.check_bounds()?;
    let zone_name = request.time_zone.clone().unwrap_or_else(|| "UTC".into());
    let zone = Zone::parse(&zone_name).ok_or_else(|| {
        Error::InvalidQuery(format!("unknown time zone {zone_name:?}; use an IANA name such as Europe/Amsterdam"))
    })?;
    let first = engine.time_range().flatten().map(|(lo, _)| lo);
    let (range, span) = resolve(&request.range, zone, now, first)?;
    let compare = match &request.compare {
        Some(how) => Some((compared(range, span, how, zone)?, how.as_str())),
        None => None,
    };
    let auto = auto_granularity(range);
    let plan = |totals| Plan { request: &request, range, span, compare, zone: (zone, zone_name.as_str()), auto, totals, goals };
    let rows_plan = compile(&plan(false))?;
    let (mut shaped, totals) = if rows_plan.splits.is_empty() {
        // Without splits the one row is the totals: one statement, not the same one twice.
        let rows = shape(&rows_plan, &collect(engine, &rows_plan.sql).await?, zone);
        (rows.clone(), rows)
    } else {
        let totals_plan = compile(&plan(true))?;
        let (rows, totals) = tokio::try_join!(collect(engine, &rows_plan.sql), collect(engine, &totals_plan.sql))?;
        (shape(&rows_plan, &rows, zone), shape(&totals_plan, &totals, zone))
    };
    let limit = request.limit.unwrap_or(10) as usize;
    let truncated = !rows_plan.splits.is_empty() && shaped.len() > limit;
    shaped.truncate(limit);
    let totals = totals.into_iter().next().unwrap_or_else(|| Row {
        keys: Vec::new(),
        values: vec![Value::Null; rows_plan.measures.len()],
        previous: compare.map(|_| vec![Value::Null; rows_plan.measures.len()]),
    });
    Ok(Report {
        range: range_out(range, zone),
        compare_range: compare.map(|(c, _)| range_out(c, zone)),
        time_zone: zone_name,
        granularity: rows_plan.splits.iter().find_map(|s| match s {
            Split::Time(g) => Some(g.clone()),
            Split::Dimension(_) => None,
        }),
        splits: rows_plan
            .splits
            .iter()
            .map(|s| match s {
                Split::Time(_) => "time".to_string(),
                Split::Dimension(d) => d.name(),
            })
            .collect(),
        measures: request.measures.clone(),
        lower_is_better: rows_plan.measures.iter().map(Measure::lower_is_better).collect(),
        rows: shaped,
        totals,
        truncated,
    })
}

async fn collect(engine: &QueryEngine, sql: &str) -> Result<QueryResult> {
    engine.collect(sql).await
}

/// The rows of a compiled report's result.
fn shape(compiled: &Compiled, result: &QueryResult, zone: Zone) -> Vec<Row> {
    let mut out = Vec::new();
    let column = |batch: &datafusion::arrow::array::RecordBatch, name: &str| {
        result.schema.index_of(name).ok().map(|i| batch.column(i).clone())
    };
    for batch in &result.batches {
        let keys: Vec<_> = (0..compiled.splits.len()).filter_map(|i| column(batch, &format!("k{i}"))).collect();
        let current: Vec<_> = (0..compiled.measures.len()).filter_map(|i| column(batch, &format!("m{i}"))).collect();
        let previous: Vec<_> = if compiled.compared {
            (0..compiled.measures.len()).filter_map(|i| column(batch, &format!("p{i}"))).collect()
        } else {
            Vec::new()
        };
        for row in 0..batch.num_rows() {
            let key = |array: &datafusion::arrow::array::ArrayRef| match array.data_type() {
                DataType::Timestamp(..) if array.is_valid(row) => {
                    let ms = array.as_primitive::<TimestampMillisecondType>().value(row);
                    format_time(ms, None, zone).map_or(Value::Null, Value::String)
                }
                _ => values::value(array, row),
            };
            let measure = |array: &datafusion::arrow::array::ArrayRef| values::value(array, row);
            out.push(Row {
                keys: keys.iter().map(key).collect(),
                values: current.iter().map(measure).collect(),
                previous: compiled.compared.then(|| previous.iter().map(measure).collect()),
            });
        }
    }
    out
}
