//! Druid SQL on DataFusion: the rewrites that make Druid's functions and naming work.
//!
//! Both dialects (Oriel's `/api/v1/sql` and Druid's `/druid/v2/sql`) get the function rewrites:
//! `FLOOR(t TO unit)`, `CEIL(t TO unit)`, `TIMESTAMPADD(unit, n, t)`, `TIMESTAMPDIFF(unit, a, b)`,
//! `EARLIEST(x)`/`LATEST(x)` (by `__time`), `APPROX_QUANTILE[_DS](x, p)` and
//! `APPROX_COUNT_DISTINCT_DS_HLL/THETA(x)`. Druid SQL also gets what Calcite does for Druid:
//! an unnamed expression in the outer select list is named `EXPR$<position>` (`SELECT 1` answers
//! `[{"EXPR$0": 1}]`), and `?` placeholders take the request's `parameters`, bound as literals
//! in the syntax tree (never spliced into the text).

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, CeilFloorKind, DateTimeField, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, OrderByExpr, OrderByOptions, SelectItem, SetExpr,
    Statement, Value, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::Deserialize;

use crate::query::statement;
use crate::{Error, Result};

/// Most parameters one query may bind.
const MAX_PARAMETERS: usize = 10_000;

/// A value for a `?` placeholder: `{"type": "VARCHAR", "value": "x"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Parameter {
    /// Its SQL type: `VARCHAR`, `BIGINT`, `INTEGER`, `DOUBLE`, `FLOAT`, `BOOLEAN`, `TIMESTAMP`, `DATE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its value (JSON null for SQL NULL).
    #[serde(default)]
    pub value: serde_json::Value,
}

/// Parses one Druid SQL statement, refuses anything that is not a read, binds `parameters`,
/// names unnamed columns `EXPR$n`, and applies the function rewrites.
pub(crate) fn statement(sql: &str, parameters: &[Parameter]) -> Result<DfStatement> {
    let mut parsed = statement::read_only_statement(sql)?;
    let inner = match &mut parsed {
        DfStatement::Statement(inner) => inner.as_mut(),
        DfStatement::Explain(explain) => match explain.statement.as_mut() {
            DfStatement::Statement(inner) => inner.as_mut(),
            _ => return Ok(parsed),
        },
        _ => return Ok(parsed),
    };
    bind(inner, parameters)?;
    if let Statement::Query(query) = inner {
        name_unnamed(&mut query.body);
    }
    Ok(parsed)
}

/// Replaces the `?` placeholders, in order, by the parameters' literals.
fn bind(statement: &mut Statement, parameters: &[Parameter]) -> Result<()> {
    if parameters.len() > MAX_PARAMETERS {
        return Err(Error::InvalidQuery(format!("{} parameters are too many (at most {MAX_PARAMETERS})", parameters.len())));
    }
    let literals = parameters.iter().enumerate().map(|(i, p)| literal(i, p)).collect::<Result<Vec<_>>>()?;
    let mut next = 0usize;
    let mut extra = false;
    let _ = visit_expressions_mut(statement, |expr| {
        if let SqlExpr::Value(v) = expr
            && matches!(&v.value, Value::Placeholder(p) if p == "?")
        {
            match literals.get(next) {
                Some(literal) => *expr = literal.clone(),
                None => extra = true,
            }
            next += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    if extra || next != literals.len() {
        return Err(Error::InvalidQuery(format!(
            "the query has {next} ? placeholders but {} parameters were given",
            literals.len()
        )));
    }
    Ok(())
}

/// The literal expression of parameter `p` (number `i`).
fn literal(i: usize, p: &Parameter) -> Result<SqlExpr> {
    use serde_json::Value as J;
    let bad = |why: &str| Error::InvalidQuery(format!("parameter {} ({}): {why}", i + 1, p.kind));
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let text = match (p.kind.to_ascii_uppercase().as_str(), &p.value) {
        (_, J::Null) => "NULL".to_string(),
        ("VARCHAR" | "CHAR" | "STRING", J::String(s)) => quoted(s),
        ("VARCHAR" | "CHAR" | "STRING", other) => quoted(&other.to_string()),
        ("BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "LONG", J::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        ("BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "LONG", J::String(s)) => {
            s.trim().parse::<i64>().map_err(|_| bad("not a whole number"))?.to_string()
        }
        ("DOUBLE" | "FLOAT" | "REAL" | "DECIMAL", J::Number(n)) => {
            format!("CAST({} AS DOUBLE)", n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| bad("not a number"))?)
        }
        ("DOUBLE" | "FLOAT" | "REAL" | "DECIMAL", J::String(s)) => {
            let f = s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| bad("not a number"))?;
            format!("CAST({f} AS DOUBLE)")
        }
        ("BOOLEAN", J::Bool(b)) => b.to_string(),
        ("BOOLEAN", J::String(s)) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => s.to_lowercase(),
        ("TIMESTAMP", J::String(s)) => format!("CAST({} AS TIMESTAMP)", quoted(s)),
        ("TIMESTAMP", J::Number(n)) => format!("MILLIS_TO_TIMESTAMP({})", n.as_i64().ok_or_else(|| bad("not milliseconds"))?),
        ("DATE", J::String(s)) => format!("CAST({} AS DATE)", quoted(s)),
        (kind, _) => return Err(bad(&format!("cannot bind a value of type {kind}"))),
    };
    Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| Error::Internal(format!("parameter literal {text}: {e}")))
}

/// Names the unnamed expressions of the outer select list `EXPR$<position>`, as Calcite does
/// for Druid. Plain column references keep their names.
fn name_unnamed(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for (i, item) in select.projection.iter_mut().enumerate() {
                if let SelectItem::UnnamedExpr(expr) = item
                    && !matches!(expr, SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_))
                {
                    let expr = std::mem::replace(expr, SqlExpr::value(Value::Null));
                    *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', format!("EXPR${i}")) };
                }
            }
        }
        SetExpr::SetOperation { left, .. } => name_unnamed(left),
        SetExpr::Query(query) => name_unnamed(&mut query.body),
        _ => {}
    }
}

/// A call of function `name` with `args`.
fn call(name: &str, args: Vec<SqlExpr>, clauses: Vec<FunctionArgumentClause>, within_group: Vec<OrderByExpr>) -> SqlExpr {
    SqlExpr::Function(ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group,
    })
}

fn string(text: &str) -> SqlExpr {
    SqlExpr::value(Value::SingleQuotedString(text.to_string()))
}

fn by_time() -> OrderByExpr {
    OrderByExpr {
        expr: SqlExpr::Identifier(Ident::new("__time")),
        options: OrderByOptions { asc: None, nulls_first: None },
        with_fill: None,
    }
}

/// A time unit as written in `FLOOR(… TO unit)` or `TIMESTAMPADD(unit, …)`: its name and ISO
/// period.
fn unit_of(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name.to_ascii_uppercase().trim_end_matches('S') {
        "MILLISECOND" => ("millisecond", "PT0.001S"),
        "SECOND" => ("second", "PT1S"),
        "MINUTE" => ("minute", "PT1M"),
        "HOUR" => ("hour", "PT1H"),
        "DAY" => ("day", "P1D"),
        "WEEK" => ("week", "P1W"),
        "MONTH" => ("month", "P1M"),
        "QUARTER" => ("quarter", "P3M"),
        "YEAR" => ("year", "P1Y"),
        _ => return None,
    })
}

fn field_unit(field: &DateTimeField) -> Option<&'static str> {
    Some(match field {
        DateTimeField::Second | DateTimeField::Seconds => "SECOND",
        DateTimeField::Minute | DateTimeField::Minutes => "MINUTE",
        DateTimeField::Hour | DateTimeField::Hours => "HOUR",
        DateTimeField::Day | DateTimeField::Days => "DAY",
        DateTimeField::Week(_) | DateTimeField::Weeks => "WEEK",
        DateTimeField::Month | DateTimeField::Months => "MONTH",
        DateTimeField::Quarter => "QUARTER",
        DateTimeField::Year | DateTimeField::Years => "YEAR",
        _ => return None,
    })
}

/// The plain (unnamed, expression) arguments of a call, or `None` when it has other forms.
fn plain_args(function: &ast::Function) -> Option<Vec<SqlExpr>> {
    let FunctionArguments::List(list) = &function.args else { return Some(Vec::new()) };
    if !list.clauses.is_empty() || list.duplicate_treatment.is_some() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The unit named by an argument written as a bare word (`DAY`) or a string (`'DAY'`).
fn unit_arg(expr: &SqlExpr) -> Option<(&'static str, &'static str)> {
    match expr {
        SqlExpr::Identifier(ident) => unit_of(&ident.value),
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => unit_of(s),
            _ => None,
        },
        _ => None,
    }
}

/// Rewrites Druid's time and aggregate functions that DataFusion lacks into ones it has (or
/// Oriel registers). Runs on every statement of both dialects.
pub(crate) fn rewrite_functions(statement: &mut Statement) -> Result<()> {
    let mut error = None;
    let _ = visit_expressions_mut(statement, |expr| {
        match rewrite(expr) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => {
                error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    error.map_or(Ok(()), Err)
}

fn rewrite(expr: &SqlExpr) -> Result<Option<SqlExpr>> {
    match expr {
        SqlExpr::Floor { expr: inner, field: CeilFloorKind::DateTimeField(field) } => Ok(field_unit(field)
            .and_then(unit_of)
            .map(|(unit, _)| call("date_trunc", vec![string(unit), (**inner).clone()], vec![], vec![]))),
        SqlExpr::Ceil { expr: inner, field: CeilFloorKind::DateTimeField(field) } => Ok(field_unit(field)
            .and_then(unit_of)
            .map(|(_, period)| call("time_ceil", vec![(**inner).clone(), string(period)], vec![], vec![]))),
        SqlExpr::Function(function) if function.over.is_none() && function.name.0.len() == 1 => {
            let name = function.name.to_string().trim_matches('"').to_ascii_uppercase();
            let Some(args) = plain_args(function) else { return Ok(None) };
            let wrong = |n: &str| Error::InvalidQuery(format!("{name} takes {n}"));
            Ok(Some(match name.as_str() {
                "TIMESTAMPADD" => {
                    let [unit, n, t] = <[SqlExpr; 3]>::try_from(args).map_err(|_| wrong("(unit, count, timestamp)"))?;
                    let (_, period) = unit_arg(&unit).ok_or_else(|| wrong("a unit such as DAY or HOUR"))?;
                    call("time_shift", vec![t, string(period), n], vec![], vec![])
                }
                "TIMESTAMPDIFF" => {
                    let [unit, a, b] = <[SqlExpr; 3]>::try_from(args).map_err(|_| wrong("(unit, timestamp, timestamp)"))?;
                    let (unit, _) = unit_arg(&unit).ok_or_else(|| wrong("a unit such as DAY or HOUR"))?;
                    call("timestampdiff", vec![string(unit), a, b], vec![], vec![])
                }
                "EARLIEST" | "LATEST" | "EARLIEST_BY" | "LATEST_BY" => {
                    let first = name.starts_with("EARLIEST");
                    let mut args = args.into_iter();
                    let value = args.next().ok_or_else(|| wrong("an expression"))?;
                    let order = match (name.ends_with("_BY"), args.next()) {
                        (true, Some(time)) => OrderByExpr { expr: time, ..by_time() },
                        (true, None) => return Err(wrong("(expression, timestamp)")),
                        (false, _) => by_time(),
                    };
                    let function_name = if first { "first_value" } else { "last_value" };
                    call(function_name, vec![value], vec![FunctionArgumentClause::OrderBy(vec![order])], vec![])
                }
                "ANY_VALUE" if args.len() > 1 => call("any_value", args.into_iter().take(1).collect(), vec![], vec![]),
                "APPROX_QUANTILE" | "APPROX_QUANTILE_DS" => {
                    let mut args = args.into_iter();
                    let (Some(value), Some(p)) = (args.next(), args.next()) else {
                        return Err(wrong("(expression, probability)"));
                    };
                    let order =
                        OrderByExpr { expr: value, options: OrderByOptions { asc: None, nulls_first: None }, with_fill: None };
                    call("approx_percentile_cont", vec![p], vec![], vec![order])
                }
                "APPROX_COUNT_DISTINCT_DS_HLL" | "APPROX_COUNT_DISTINCT_DS_THETA" | "APPROX_COUNT_DISTINCT_BUILTIN" => {
                    call("approx_distinct", args.into_iter().take(1).collect(), vec![], vec![])
                }
                _ => return Ok(None),
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str, parameters: &[Parameter]) -> String {
        match statement(sql, parameters).unwrap() {
            DfStatement::Statement(s) => s.to_string(),
            other => other.to_string(),
        }
    }

    fn p(kind: &str, value: serde_json::Value) -> Parameter {
        Parameter { kind: kind.into(), value }
    }

    #[test]
    fn unnamed_columns_are_named_by_position() {
        assert_eq!(text("SELECT 1", &[]), "SELECT 1 AS \"EXPR$0\"");
        assert_eq!(
            text("SELECT site, COUNT(*), COUNT(*) AS n, events.path FROM events GROUP BY 1, 4", &[]),
            "SELECT site, COUNT(*) AS \"EXPR$1\", COUNT(*) AS n, events.path FROM events GROUP BY 1, 4"
        );
        assert_eq!(text("SELECT 1 UNION ALL SELECT 2", &[]), "SELECT 1 AS \"EXPR$0\" UNION ALL SELECT 2");
    }

    #[test]
    fn parameters_are_bound_as_literals() {
        let bound = text(
            "SELECT * FROM events WHERE site = ? AND screen_width > ? AND __time >= ? AND is_bot = ?",
            &[
                p("VARCHAR", serde_json::json!("it's")),
                p("INTEGER", serde_json::json!(800)),
                p("TIMESTAMP", serde_json::json!("2026-01-01 00:00:00")),
                p("BOOLEAN", serde_json::json!(false)),
            ],
        );
        assert_eq!(
            bound,
            "SELECT * FROM events WHERE site = 'it''s' AND screen_width > 800 AND __time >= CAST('2026-01-01 00:00:00' AS TIMESTAMP) \
             AND is_bot = false"
        );
        let few = statement("SELECT ?, ?", &[p("INTEGER", serde_json::json!(1))]).unwrap_err();
        assert_eq!(few.to_string(), "the query has 2 ? placeholders but 1 parameters were given");
        let bad = statement("SELECT ?", &[p("INTEGER", serde_json::json!("1; DROP TABLE x"))]).unwrap_err();
        assert!(bad.to_string().contains("not a whole number"), "{bad}");
        assert!(statement("SELECT ?", &[p("GEOMETRY", serde_json::json!("x"))]).is_err());
    }

    #[test]
    fn druid_functions_become_datafusion_ones() {
        assert_eq!(
            text("SELECT TIMESTAMPADD(DAY, 1, __time) AS t FROM events", &[]),
            "SELECT time_shift(__time, 'P1D', 1) AS t FROM events"
        );
        assert_eq!(
            text("SELECT TIMESTAMPDIFF(MONTH, __time, CURRENT_TIMESTAMP) AS d FROM events", &[]),
            "SELECT timestampdiff('month', __time, CURRENT_TIMESTAMP) AS d FROM events"
        );
        assert_eq!(
            text("SELECT CEIL(__time TO HOUR) AS c FROM events", &[]),
            "SELECT time_ceil(__time, 'PT1H') AS c FROM events"
        );
        assert_eq!(
            text("SELECT EARLIEST(path) AS e, LATEST(path) AS l FROM events", &[]),
            "SELECT first_value(path ORDER BY __time) AS e, last_value(path ORDER BY __time) AS l FROM events"
        );
        assert_eq!(
            text("SELECT APPROX_QUANTILE_DS(engaged_ms, 0.5) AS q FROM events", &[]),
            "SELECT approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY engaged_ms) AS q FROM events"
        );
        assert!(statement("SELECT TIMESTAMPADD(FORTNIGHT, 1, __time) FROM events", &[]).is_err());
    }
}
