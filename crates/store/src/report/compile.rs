//! The SQL of a report. Names come only from the schema and the language's own vocabulary, and
//! every value a client sends is written as a quoted literal (quotes doubled; the SQL dialect
//! has no backslash escapes), so a report cannot add SQL of its own.
//!
//! One statement answers a report, its comparison included: each period's events are
//! aggregated by the split keys, a previous period's time buckets are moved onto the current
//! ones, and the two periods' aggregates are joined by their split keys.

use oriel_core::config::Goal;

use crate::query::functions::Zone;
use crate::report::range::{Span, TimeRange};
use crate::report::request::{Dimension, FilterSpec, Measure, ReportRequest};
use crate::schema::events_schema;
use crate::{Error, Result};

/// A split of the compiled report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// A dimension.
    Dimension(Dimension),
    /// Time, in buckets of an ISO-8601 period.
    Time(String),
}

/// A report as SQL, with what its columns are.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The statement.
    pub sql: String,
    /// The splits, in column order (columns `k0`, `k1`).
    pub splits: Vec<Split>,
    /// The measures, in column order (columns `m0`…, and `p0`… for the compared period).
    pub measures: Vec<Measure>,
    /// Whether the statement has the compared period's columns.
    pub compared: bool,
}

/// A SQL string literal of `value` (quotes doubled).
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn millis(ms: i64) -> String {
    format!("MILLIS_TO_TIMESTAMP({ms})")
}

/// The expression of a dimension's values, raw (for splits).
pub(crate) fn value_expr(dimension: &Dimension) -> String {
    match dimension {
        Dimension::Column(c) => format!("\"{c}\""),
        Dimension::Prop(key) => format!("prop(\"props\", {})", quote(key)),
    }
}

/// The expression of a dimension's values as text (for filters).
fn text_expr(dimension: &Dimension) -> String {
    match dimension {
        Dimension::Column(c) => {
            let is_text = events_schema()
                .field_with_name(c)
                .is_ok_and(|f| matches!(f.data_type(), datafusion::arrow::datatypes::DataType::Utf8));
            if is_text { format!("\"{c}\"") } else { format!("CAST(\"{c}\" AS VARCHAR)") }
        }
        Dimension::Prop(_) => value_expr(dimension),
    }
}

/// `parts` joined by OR as a balanced tree, so a long list of values stays within the
/// statement's expression depth limit.
fn any_of(parts: &[String]) -> String {
    match parts {
        [] => "FALSE".into(),
        [one] => one.clone(),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            format!("({} OR {})", any_of(left), any_of(right))
        }
    }
}

/// One filter as a condition.
pub(crate) fn condition(filter: &FilterSpec) -> Result<String> {
    let dimension = Dimension::parse(&filter.dimension)?;
    let x = text_expr(&dimension);
    let values = &filter.values;
    let need_values = || -> Result<()> {
        if values.is_empty() {
            return Err(Error::InvalidQuery(format!("the {} filter on {} needs values", filter.op, filter.dimension)));
        }
        Ok(())
    };
    let list = || values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ");
    let any_contains =
        || any_of(&values.iter().map(|v| format!("strpos(lower({x}), lower({})) > 0", quote(v))).collect::<Vec<_>>());
    Ok(match filter.op.as_str() {
        "is" => {
            need_values()?;
            format!("{x} IN ({})", list())
        }
        "isNot" => {
            need_values()?;
            format!("({x} IS NULL OR {x} NOT IN ({}))", list())
        }
        "contains" => {
            need_values()?;
            format!("({})", any_contains())
        }
        "notContains" => {
            need_values()?;
            format!("({x} IS NULL OR NOT ({}))", any_contains())
        }
        "matches" => {
            need_values()?;
            for pattern in values {
                crate::druid::native::check_regex(pattern)?;
            }
            any_of(&values.iter().map(|v| format!("regexp_like({x}, {})", quote(v))).collect::<Vec<_>>())
        }
        "set" => format!("{x} IS NOT NULL"),
        "notSet" => format!("{x} IS NULL"),
        "between" => {
            let [low, high] = values.as_slice() else {
                return Err(Error::InvalidQuery(format!("the between filter on {} needs two numbers", filter.dimension)));
            };
            let number = |v: &str| -> Result<f64> {
                v.trim().parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| {
                    Error::InvalidQuery(format!("the between filter on {} needs numbers, not {v:?}", filter.dimension))
                })
            };
            let (low, high) = (number(low)?, number(high)?);
            format!("(TRY_CAST({x} AS DOUBLE) >= {low:?} AND TRY_CAST({x} AS DOUBLE) < {high:?})")
        }
        other => {
            return Err(Error::InvalidQuery(format!(
                "unknown filter operator {other:?}: use is, isNot, contains, notContains, matches, set, notSet or between"
            )));
        }
    })
}

/// The aggregate of a measure over the rows of `base` (bounce rate and the engagement averages
/// are joined in from their own aggregates).
fn aggregate(measure: &Measure, index: usize) -> String {
    const PAGE_VIEW: &str = "\"event_type\" = 'pageView'";
    match measure {
        Measure::Events => "COUNT(*)".into(),
        Measure::Pageviews => format!("COUNT(*) FILTER (WHERE {PAGE_VIEW})"),
        Measure::Visitors => "COUNT(DISTINCT \"party_id\")".into(),
        Measure::Sessions => "COUNT(DISTINCT \"session_id\")".into(),
        Measure::ViewsPerSession => {
            format!("CAST(COUNT(*) FILTER (WHERE {PAGE_VIEW}) AS DOUBLE) / NULLIF(COUNT(DISTINCT \"session_id\"), 0)")
        }
        Measure::Event(kind) => format!("COUNT(*) FILTER (WHERE \"event_type\" = {})", quote(kind)),
        // The goal's condition is a column of the base rows (it may name any column).
        Measure::Goal(_) => format!("COUNT(DISTINCT \"party_id\") FILTER (WHERE g{index})"),
        // Filled in by joins with their own aggregates.
        Measure::BounceRate | Measure::AvgEngagedSeconds | Measure::AvgScrollDepth => "CAST(NULL AS DOUBLE)".into(),
    }
}

/// `<condition> AS g<i>, ` for each goal measure, for the base rows.
fn goal_columns(measures: &[Measure], goals: &[Goal]) -> Result<String> {
    let mut out = String::new();
    for (i, measure) in measures.iter().enumerate() {
        if let Measure::Goal(name) = measure {
            let goal = goals.iter().find(|g| g.name == *name).ok_or_else(|| {
                Error::InvalidQuery(format!("unknown goal {name:?}; define it in [[goals]] or with PUT /api/v1/goals/{name}"))
            })?;
            out.push_str(&format!("{} AS g{i}, ", crate::analytics::goals::condition(goal)?));
        }
    }
    Ok(out)
}

/// How a compared period's rows move onto the current period: the inverse of the shift that
/// made the compared range.
fn forward(span: Span, how: &str, zone: &str, current: TimeRange, compared: TimeRange) -> String {
    let zone = quote(zone);
    match (how, span) {
        ("year", _) => format!("TIME_SHIFT(\"__time\", 'P1Y', 1, {zone})"),
        (_, Span::Days(n)) => format!("TIME_SHIFT(\"__time\", 'P1D', {n}, {zone})"),
        (_, Span::Months(n)) => format!("TIME_SHIFT(\"__time\", 'P1M', {n}, {zone})"),
        (_, Span::Fixed) => format!("MILLIS_TO_TIMESTAMP(TIMESTAMP_TO_MILLIS(\"__time\") + {})", current.start - compared.start),
    }
}

/// `a.k0 IS NOT DISTINCT FROM b.k0 AND …` over `keys`; `TRUE` without keys.
fn same_keys(keys: &[String], a: &str, b: &str) -> String {
    if keys.is_empty() {
        return "TRUE".into();
    }
    keys.iter().map(|k| format!("{a}.{k} IS NOT DISTINCT FROM {b}.{k}")).collect::<Vec<_>>().join(" AND ")
}

/// The inputs of [`compile`].
pub struct Plan<'a> {
    /// The request.
    pub request: &'a ReportRequest,
    /// Its range.
    pub range: TimeRange,
    /// How the range was made.
    pub span: Span,
    /// The compared range and how it was made (`previous`, `year`).
    pub compare: Option<(TimeRange, &'a str)>,
    /// The zone, checked, and its name.
    pub zone: (Zone, &'a str),
    /// The time split's granularity when the split asks for `auto`.
    pub auto: &'a str,
    /// Without the splits and the limit (the report's totals).
    pub totals: bool,
    /// The goals `goal:<name>` measures may name.
    pub goals: &'a [Goal],
}

/// Compiles a report.
pub fn compile(plan: &Plan<'_>) -> Result<Compiled> {
    let request = plan.request;
    let zone_name = plan.zone.1;
    let measures = request.measures.iter().map(|m| Measure::parse(m)).collect::<Result<Vec<_>>>()?;
    let splits: Vec<Split> = if plan.totals {
        Vec::new()
    } else {
        request
            .split
            .iter()
            .map(|s| match (&s.dimension, &s.time) {
                (Some(d), None) => Ok(Split::Dimension(Dimension::parse(d)?)),
                (None, Some(t)) => {
                    let t = if t == "auto" { plan.auto } else { t.as_str() };
                    if !matches!(t, "PT1M" | "PT5M" | "PT15M" | "PT1H" | "P1D" | "P1W" | "P1M") {
                        return Err(Error::InvalidQuery(format!(
                            "time split {t:?}: use PT1M, PT5M, PT15M, PT1H, P1D, P1W, P1M or auto"
                        )));
                    }
                    Ok(Split::Time(t.to_string()))
                }
                _ => Err(Error::InvalidQuery("a split names a dimension or a time granularity, not both".into())),
            })
            .collect::<Result<_>>()?
    };
    if splits.iter().filter(|s| matches!(s, Split::Time(_))).count() > 1 {
        return Err(Error::InvalidQuery("a report splits by time at most once".into()));
    }

    let current = plan.range;
    // Events flagged as bots, duplicates or corrupt are kept in the store but never counted.
    let mut scope = vec!["NOT \"is_bot\" AND NOT \"is_duplicate\" AND NOT \"is_corrupt\"".to_string()];
    if let Some(site) = &request.site {
        scope.push(format!("\"site\" = {}", quote(site)));
    }
    let mut filters = Vec::new();
    for filter in &request.filters {
        filters.push(condition(filter)?);
    }
    let key_names: Vec<String> = (0..splits.len()).map(|i| format!("k{i}")).collect();
    let keys = key_names.join(", ");
    let group_by = if keys.is_empty() { String::new() } else { format!(" GROUP BY {keys}") };
    let lead = |extra: &str| if keys.is_empty() { extra.to_string() } else { format!("{keys}, {extra}") };
    let aggregates =
        measures.iter().enumerate().map(|(i, m)| format!("{} AS m{i}", aggregate(m, i))).collect::<Vec<_>>().join(", ");
    let goal_columns = goal_columns(&measures, plan.goals)?;
    let bounce = measures.contains(&Measure::BounceRate);
    let engagement = measures.iter().any(|m| matches!(m, Measure::AvgEngagedSeconds | Measure::AvgScrollDepth));
    // A session's page views are counted over all of its events in the range, not only those
    // the filters or a dimension split keep: a session that saw /a and /b is no bounce on /a.
    let whole_sessions = !filters.is_empty() || splits.iter().any(|s| matches!(s, Split::Dimension(_)));

    // Each period is aggregated on its own, grouped by the split keys alone: tagging rows with
    // their period and grouping by it too made DataFusion's distinct counts several times slower
    // (a multi-column group key instead of one). A compared period's time buckets are moved onto
    // the current period's before they are grouped.
    let mut with = Vec::new();
    let mut periods = vec![("cur", current, None)];
    if let Some((compared, how)) = plan.compare {
        periods.push(("prev", compared, Some(how)));
    }
    for (name, range, shifted) in periods {
        let key_exprs: Vec<String> = splits
            .iter()
            .enumerate()
            .map(|(i, split)| {
                let expr = match split {
                    Split::Dimension(d) => value_expr(d),
                    Split::Time(granularity) => {
                        let time = match shifted {
                            Some(how) => forward(plan.span, how, zone_name, current, range),
                            None => "\"__time\"".into(),
                        };
                        format!("TIME_FLOOR({time}, {}, NULL, {})", quote(granularity), quote(zone_name))
                    }
                };
                format!("{expr} AS k{i}, ")
            })
            .collect();
        let in_scope: Vec<String> =
            std::iter::once(format!("\"__time\" >= {} AND \"__time\" < {}", millis(range.start), millis(range.end)))
                .chain(scope.iter().cloned())
                .collect();
        let wheres: Vec<String> = in_scope.iter().chain(&filters).cloned().collect();
        with.push(format!(
            "base_{name} AS (SELECT {}{goal_columns}\"event_type\", \"party_id\", \"session_id\", \"page_view_id\", \
             \"event_id\", \"engaged_ms\", \"scroll_depth\" FROM events WHERE {})",
            key_exprs.concat(),
            wheres.join(" AND ")
        ));
        with.push(format!("agg_{name} AS (SELECT {} FROM base_{name}{group_by})", lead(&aggregates)));
        let mut joins = Vec::new();
        if bounce {
            // Bounce rate: the share of sessions with exactly one page view, per keys.
            if whole_sessions {
                with.push(format!(
                    "views_{name} AS (SELECT \"session_id\", COUNT(*) FILTER (WHERE \"event_type\" = 'pageView') AS views \
                     FROM events WHERE {} AND \"session_id\" IS NOT NULL GROUP BY \"session_id\")",
                    in_scope.join(" AND ")
                ));
                let picked: String = key_names.iter().map(|k| format!("s.{k}, ")).collect();
                with.push(format!(
                    "sess_{name} AS (SELECT {picked}v.views FROM (SELECT DISTINCT {} FROM base_{name} \
                     WHERE \"session_id\" IS NOT NULL) s JOIN views_{name} v ON s.\"session_id\" = v.\"session_id\")",
                    lead("\"session_id\"")
                ));
            } else {
                let session_keys = lead("\"session_id\"");
                with.push(format!(
                    "sess_{name} AS (SELECT {session_keys}, COUNT(*) FILTER (WHERE \"event_type\" = 'pageView') AS views \
                     FROM base_{name} WHERE \"session_id\" IS NOT NULL GROUP BY {session_keys})"
                ));
            }
            with.push(format!(
                "bounce_{name} AS (SELECT {} FROM sess_{name} WHERE views > 0{group_by})",
                lead("100.0 * COUNT(*) FILTER (WHERE views = 1) / NULLIF(COUNT(*), 0) AS rate")
            ));
            joins.push(("b", format!("bounce_{name}")));
        }
        if engagement {
            // The tag reports a page view's engaged time and scroll depth cumulatively, each time
            // they grow: a page view counts once, with its largest values.
            let page = lead("COALESCE(\"page_view_id\", \"event_id\")");
            with.push(format!(
                "pages_{name} AS (SELECT {}, MAX(\"engaged_ms\") AS em, MAX(\"scroll_depth\") AS sd FROM base_{name} \
                 WHERE \"event_type\" = 'engagement' GROUP BY {page})",
                lead("COALESCE(\"page_view_id\", \"event_id\") AS page")
            ));
            with.push(format!(
                "engaged_{name} AS (SELECT {} FROM pages_{name}{group_by})",
                lead("AVG(em) / 1000.0 AS seconds, AVG(CAST(sd AS DOUBLE)) AS depth")
            ));
            joins.push(("g", format!("engaged_{name}")));
        }
        if joins.is_empty() {
            with.push(format!("rows_{name} AS (SELECT * FROM agg_{name})"));
            continue;
        }
        let columns: Vec<String> = key_names
            .iter()
            .map(|k| format!("a.{k}"))
            .chain(measures.iter().enumerate().map(|(i, m)| match m {
                Measure::BounceRate => format!("b.rate AS m{i}"),
                Measure::AvgEngagedSeconds => format!("g.seconds AS m{i}"),
                Measure::AvgScrollDepth => format!("g.depth AS m{i}"),
                _ => format!("a.m{i}"),
            }))
            .collect();
        let joined: String = joins
            .iter()
            .map(|(alias, table)| format!(" LEFT JOIN {table} {alias} ON {}", same_keys(&key_names, "a", alias)))
            .collect();
        with.push(format!("rows_{name} AS (SELECT {} FROM agg_{name} a{joined})", columns.join(", ")));
    }

    let measure_columns = |prefix: &str, table: &str| -> Vec<String> {
        (0..measures.len()).map(|i| format!("{table}.m{i} AS {prefix}{i}")).collect()
    };
    let time_split = splits.iter().position(|s| matches!(s, Split::Time(_)));
    let (select, from) = match plan.compare {
        Some(_) => {
            let mut columns: Vec<String> =
                key_names
                    .iter()
                    .map(|k| {
                        if time_split.is_some() {
                            format!("COALESCE(cur.{k}, prev.{k}) AS {k}")
                        } else {
                            format!("cur.{k} AS {k}")
                        }
                    })
                    .collect();
            columns.extend(measure_columns("m", "cur"));
            columns.extend(measure_columns("p", "prev"));
            // A time split keeps the compared period's buckets that the current one lacks (the
            // rest of yesterday, say); a dimension split keeps the current period's rows.
            let join = if time_split.is_some() { "FULL JOIN" } else { "LEFT JOIN" };
            (columns.join(", "), format!("rows_cur cur {join} rows_prev prev ON {}", same_keys(&key_names, "cur", "prev")))
        }
        None => {
            let mut columns: Vec<String> = key_names.iter().map(|k| format!("cur.{k}")).collect();
            columns.extend(measure_columns("m", "cur"));
            (columns.join(", "), "rows_cur cur".to_string())
        }
    };

    // Order: the request's, else time ascending, else the first measure largest first; the keys
    // break ties so answers are stable.
    let mut order = Vec::new();
    // The totals are one row: nothing to order (and their splits, which a sort may name, are gone).
    match request.sort.as_ref().filter(|_| !plan.totals) {
        Some(sort) => {
            let direction = if sort.desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
            let column = if let Some(i) = measures.iter().position(|m| Measure::parse(&sort.by).is_ok_and(|x| x == *m)) {
                format!("m{i}")
            } else if sort.by == "time" && time_split.is_some() {
                format!("k{}", time_split.unwrap_or(0))
            } else if let Some(i) = splits.iter().position(|s| matches!(s, Split::Dimension(d) if d.name() == sort.by)) {
                format!("k{i}")
            } else {
                return Err(Error::InvalidQuery(format!("sort by {:?}: it is not a measure or a split of the report", sort.by)));
            };
            order.push(format!("{column} {direction}"));
        }
        None => match time_split {
            Some(i) => order.push(format!("k{i} ASC")),
            None if !splits.is_empty() => order.push("m0 DESC NULLS LAST".into()),
            None => {}
        },
    }
    order.extend(key_names.iter().map(|k| format!("{k} ASC NULLS FIRST")));
    let mut sql = format!("WITH {} SELECT {select} FROM {from}", with.join(", "));
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    if !plan.totals && !splits.is_empty() {
        // One row more than asked, to tell a cut-off answer.
        sql.push_str(&format!(" LIMIT {}", u64::from(request.limit.unwrap_or(10)) + 1));
    }
    Ok(Compiled { sql, splits, measures, compared: plan.compare.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::request::{RangeSpec, SplitSpec};

    fn request(filters: Vec<FilterSpec>) -> ReportRequest {
        ReportRequest {
            site: Some("it's".into()),
            range: RangeSpec::default(),
            filters,
            split: vec![SplitSpec { dimension: Some("path".into()), time: None }],
            measures: vec!["visitors".into(), "bounceRate".into()],
            ..ReportRequest::default()
        }
    }

    fn plan(request: &ReportRequest) -> Plan<'_> {
        Plan {
            request,
            range: TimeRange { start: 0, end: 1000 },
            span: Span::Fixed,
            compare: Some((TimeRange { start: -1000, end: 0 }, "previous")),
            zone: (Zone::parse("UTC").unwrap(), "UTC"),
            auto: "PT1H",
            totals: false,
            goals: &[],
        }
    }

    #[test]
    fn values_are_literals_and_names_are_checked() {
        let hostile = FilterSpec { dimension: "title".into(), op: "is".into(), values: vec!["x') OR 1=1 --".into()] };
        let r = request(vec![hostile]);
        let compiled = compile(&plan(&r)).unwrap();
        assert!(compiled.sql.contains("\"title\" IN ('x'') OR 1=1 --')"), "{}", compiled.sql);
        assert!(compiled.sql.contains("\"site\" = 'it''s'"));
        let unknown = FilterSpec { dimension: "title\" OR 1=1 --".into(), op: "is".into(), values: vec!["x".into()] };
        assert!(compile(&plan(&request(vec![unknown]))).unwrap_err().to_string().contains("unknown dimension"));
        let bad_op = FilterSpec { dimension: "path".into(), op: "like".into(), values: vec!["x".into()] };
        assert!(compile(&plan(&request(vec![bad_op]))).unwrap_err().to_string().contains("unknown filter operator"));
        // Every statement parses as one read.
        crate::query::statement::read_only_statement(&compiled.sql).unwrap();
    }
}
