//! SQL statements as Oriel accepts them: one read, of bounded nesting, in Druid's dialect.
//!
//! Statements are parsed first and only queries (`SELECT`, `WITH`, `VALUES`, `EXPLAIN` of a
//! query, `SHOW`/`DESCRIBE` of tables) get through; anything that creates, writes, copies or
//! sets something, including `SELECT … INTO`, is refused with a clear error before planning.
//! Nesting is bounded twice: the parser's recursion limit for parenthesised and subquery
//! nesting, and [`MAX_DEPTH`] for operator chains such as `1+1+…+1`, which parse without
//! recursion but build a tree as deep as they are long, and every later pass recurses over it.
//! Druid's functions that DataFusion lacks are rewritten afterwards (`crate::druid::sql`).

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{self, Expr as SqlExpr, SetExpr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{Error, Result};

/// Deepest nesting of expressions and subqueries a statement may have.
pub(crate) const MAX_DEPTH: usize = 256;
/// The parser's own recursion limit (parentheses, subqueries).
const PARSER_RECURSION_LIMIT: usize = 128;

/// Parses one statement, refuses anything that is not a read, and applies Druid rewrites.
pub(crate) fn read_only_statement(sql: &str) -> Result<DfStatement> {
    let trimmed = sql.trim().trim_end_matches(';');
    let dialect = GenericDialect {};
    let mut statements = DFParserBuilder::new(trimmed)
        .with_dialect(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| Error::SqlParse(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Error::InvalidQuery(format!("expected one statement, found {}", statements.len())));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(Error::InvalidQuery("empty statement".into()));
    };
    let refuse = |what: &str| Error::ReadOnly(format!("{what} is not allowed: the SQL interface is read-only"));
    let mut inner = match statement {
        DfStatement::Statement(inner) => *inner,
        DfStatement::CreateExternalTable(_) => return Err(refuse("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => return Err(refuse("COPY")),
        DfStatement::Explain(explain) => {
            let plain_query =
                matches!(explain.statement.as_ref(), DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)));
            if explain.options.analyze || !plain_query {
                return Err(refuse(if explain.options.analyze {
                    "EXPLAIN ANALYZE"
                } else {
                    "EXPLAIN of a statement that is not a query"
                }));
            }
            let mut explain = explain;
            if let DfStatement::Statement(inner) = explain.statement.as_mut() {
                check_query(inner)?;
                crate::druid::sql::rewrite_functions(inner)?;
            }
            return Ok(DfStatement::Explain(explain));
        }
        DfStatement::Reset(_) => return Err(refuse("RESET")),
    };
    match &inner {
        Statement::Query(_) => check_query(&inner)?,
        Statement::Explain { statement, analyze: false, .. } if matches!(statement.as_ref(), Statement::Query(_)) => {
            check_query(statement)?;
        }
        Statement::ShowTables { .. } | Statement::ShowColumns { .. } | Statement::ExplainTable { .. } => {}
        other => {
            let keyword = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            return Err(refuse(&keyword.to_uppercase()));
        }
    }
    crate::druid::sql::rewrite_functions(&mut inner)?;
    Ok(DfStatement::Statement(Box::new(inner)))
}

/// Refuses `SELECT … INTO` (it creates a table) and statements nested deeper than [`MAX_DEPTH`].
fn check_query(statement: &Statement) -> Result<()> {
    if let Statement::Query(query) = statement
        && let SetExpr::Select(select) = query.body.as_ref()
        && select.into.is_some()
    {
        return Err(Error::ReadOnly("SELECT INTO is not allowed: the SQL interface is read-only".into()));
    }
    let mut depth = Depth::default();
    if statement.visit(&mut depth).is_break() {
        return Err(Error::InvalidQuery(format!(
            "the statement nests expressions deeper than {MAX_DEPTH} levels; write long chains with fewer levels \
             (for example IN (...) instead of many ORs)"
        )));
    }
    Ok(())
}

/// Tracks how deep expressions and queries nest while the statement is visited.
#[derive(Default)]
struct Depth {
    current: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &SqlExpr) -> ControlFlow<()> {
        self.current += 1;
        if self.current > MAX_DEPTH { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn post_visit_expr(&mut self, _: &SqlExpr) -> ControlFlow<()> {
        self.current -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.current += 1;
        if self.current > MAX_DEPTH { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn post_visit_query(&mut self, _: &ast::Query) -> ControlFlow<()> {
        self.current -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_get_through() {
        for ok in
            ["SELECT 1", "select 1;", "WITH a AS (SELECT 1) SELECT * FROM a", "EXPLAIN SELECT 1", "SHOW TABLES", "VALUES (1)"]
        {
            assert!(read_only_statement(ok).is_ok(), "{ok}");
        }
        for (bad, what) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'", "CREATE EXTERNAL TABLE"),
            ("INSERT INTO events VALUES (1)", "INSERT INTO"),
            ("DELETE FROM events", "DELETE FROM"),
            ("UPDATE events SET site = 'x'", "UPDATE EVENTS"),
            ("DROP TABLE events", "DROP TABLE"),
            ("COPY events TO '/tmp/x.parquet'", "COPY"),
            ("SET datafusion.execution.batch_size = 1", "SET DATAFUSION.EXECUTION.BATCH_SIZE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN ANALYZE"),
        ] {
            let err = read_only_statement(bad).unwrap_err();
            assert!(matches!(err, Error::ReadOnly(_)), "{bad}: {err}");
            assert_eq!(err.to_string(), format!("{what} is not allowed: the SQL interface is read-only"), "{bad}");
        }
        assert!(matches!(read_only_statement("SELECT 1; SELECT 2"), Err(Error::InvalidQuery(_))));
        assert!(matches!(read_only_statement("SELEC 1"), Err(Error::SqlParse(_))));
        let into = read_only_statement("SELECT 1 INTO t").unwrap_err();
        assert_eq!(into.to_string(), "SELECT INTO is not allowed: the SQL interface is read-only");
    }

    #[test]
    fn deep_nesting_is_refused_before_planning() {
        let chain = format!("SELECT {}", vec!["1"; 2000].join("+"));
        let err = read_only_statement(&chain).unwrap_err();
        assert!(matches!(err, Error::InvalidQuery(_)), "{err}");
        assert!(err.to_string().contains("deeper than 256 levels"), "{err}");
        let explained = read_only_statement(&format!("EXPLAIN {chain}")).unwrap_err();
        assert!(explained.to_string().contains("deeper than"), "{explained}");
        let parens = format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(matches!(read_only_statement(&parens), Err(Error::SqlParse(_))));
        let fine = format!("SELECT {}", vec!["1"; 200].join("+"));
        assert!(read_only_statement(&fine).is_ok());
    }

    #[test]
    fn floor_to_becomes_date_trunc() {
        let DfStatement::Statement(s) = read_only_statement("SELECT FLOOR(__time TO HOUR), FLOOR(x) FROM events").unwrap() else {
            panic!()
        };
        assert_eq!(s.to_string(), "SELECT date_trunc('hour', __time), FLOOR(x) FROM events");
    }
}
