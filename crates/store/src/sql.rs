//! SQL over the store with Apache DataFusion, in Druid's dialect and strictly read-only.
//!
//! Statements are parsed first and only queries (`SELECT`, `WITH`, `VALUES`, `EXPLAIN` of a
//! query, `SHOW`/`DESCRIBE` of tables) get through; anything that creates, writes, copies or
//! sets something is refused with a clear error before planning. Table functions and file or
//! URL tables are not registered, so a query can read nothing but the store's tables.
//! `FLOOR(t TO unit)` is rewritten to `date_trunc` (DataFusion's SQL planner lacks it); the
//! Druid time functions come from [`crate::udf`].

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    self, CeilFloorKind, DateTimeField, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, ObjectNamePart, Statement, Value, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{Error, Result, udf};

/// Memory for cached Parquet footers and page indexes.
const METADATA_CACHE_BYTES: usize = 256 << 20;

/// Things a running query must keep alive until it finishes, such as the snapshot of segment
/// files a table scan planned with (compaction may replace those files meanwhile; they are
/// deleted only when the last holder is gone). Attached to each query's session config.
#[derive(Debug, Default)]
pub struct KeepAlive(parking_lot::Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>);

impl KeepAlive {
    /// Keeps `value` alive for the rest of the query.
    pub fn hold(&self, value: Arc<dyn std::any::Any + Send + Sync>) {
        self.0.lock().push(value);
    }
}

/// A query's result: its schema and rows.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The SQL engine of one process.
#[derive(Clone)]
pub struct SqlEngine {
    ctx: SessionContext,
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine").field("session", &self.ctx.session_id()).finish()
    }
}

impl SqlEngine {
    /// An engine with `tables` registered by name, whose queries share `memory_bytes`.
    pub fn new(tables: Vec<(&str, Arc<dyn TableProvider>)>, memory_bytes: usize) -> Result<Self> {
        let mut config = SessionConfig::new().with_information_schema(true).with_target_partitions(2);
        let options = config.options_mut();
        options.execution.parquet.pushdown_filters = false;
        options.execution.parquet.reorder_filters = true;
        options.execution.parquet.schema_force_view_types = false;
        options.sql_parser.enable_ident_normalization = true;
        // A fair pool: every spilling operator (the sort of each partition of a window query)
        // gets its share and spills past it. With the default greedy pool one sort took the
        // whole pool and the other could not even merge: sessions and funnel failed at 100M
        // events with 4 GiB.
        let pool = FairSpillPool::new(memory_bytes);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(TrackConsumersPool::new(pool, std::num::NonZeroUsize::MIN.saturating_add(4))))
            // Keep every segment's footer and page index cached: re-reading them per query
            // costs more than the query itself on small segments.
            .with_metadata_cache_limit(METADATA_CACHE_BYTES)
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        for (name, table) in tables {
            ctx.register_table(name, table)?;
        }
        for f in udf::druid_time_functions() {
            ctx.register_udf(f);
        }
        ctx.register_udaf(approx_distinct_udaf().as_ref().clone().with_aliases(["approx_count_distinct"]));
        Ok(Self { ctx })
    }

    /// A session state of its own for one query, carrying a [`KeepAlive`].
    fn query_state(&self) -> SessionState {
        let mut state = self.ctx.state();
        state.config_mut().set_extension(Arc::new(KeepAlive::default()));
        state
    }

    /// Parses, checks and plans `sql` without running it.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan> {
        let statement = read_only_statement(sql)?;
        self.query_state().statement_to_plan(statement).await.map_err(|e| Error::InvalidQuery(e.to_string()))
    }

    /// Runs `sql` and collects the result.
    pub async fn query(&self, sql: &str) -> Result<QueryResult> {
        let statement = read_only_statement(sql)?;
        let state = self.query_state();
        let plan = state.statement_to_plan(statement).await.map_err(|e| Error::InvalidQuery(e.to_string()))?;
        let frame = DataFrame::new(state, plan);
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| match e.find_root() {
            DataFusionError::ResourcesExhausted(reason) => Error::TooBig(reason.clone()),
            _ => Error::DataFusion(e),
        })?;
        Ok(QueryResult { schema, batches })
    }
}

/// Parses one statement, refuses anything that is not a read, and applies Druid rewrites.
fn read_only_statement(sql: &str) -> Result<DfStatement> {
    let trimmed = sql.trim().trim_end_matches(';');
    let mut statements = DFParser::parse_sql_with_dialect(trimmed, &GenericDialect {})
        .map_err(|e| Error::InvalidQuery(format!("SQL parse failed: {e}")))?;
    if statements.len() != 1 {
        return Err(Error::InvalidQuery(format!("expected one statement, found {}", statements.len())));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(Error::InvalidQuery("empty statement".into()));
    };
    let refuse = |what: &str| Error::Forbidden(format!("{what} is not allowed: the SQL interface is read-only"));
    let mut inner = match statement {
        DfStatement::Statement(inner) => *inner,
        DfStatement::CreateExternalTable(_) => return Err(refuse("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => return Err(refuse("COPY")),
        DfStatement::Explain(explain) => {
            let plain_query = matches!(explain.statement.as_ref(), DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)));
            if explain.options.analyze || !plain_query {
                return Err(refuse(if explain.options.analyze { "EXPLAIN ANALYZE" } else { "EXPLAIN of a statement that is not a query" }));
            }
            return Ok(DfStatement::Explain(explain));
        }
        DfStatement::Reset(_) => return Err(refuse("RESET")),
    };
    match &inner {
        Statement::Query(_) => {}
        Statement::Explain { statement, analyze: false, .. } if matches!(statement.as_ref(), Statement::Query(_)) => {}
        Statement::ShowTables { .. } | Statement::ShowColumns { .. } | Statement::ExplainTable { .. } => {}
        other => {
            let keyword = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            return Err(refuse(&keyword.to_uppercase()));
        }
    }
    rewrite_floor_to(&mut inner);
    Ok(DfStatement::Statement(Box::new(inner)))
}

/// Rewrites `FLOOR(t TO unit)` to `date_trunc('unit', t)`.
fn rewrite_floor_to(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let SqlExpr::Floor { expr: inner, field: CeilFloorKind::DateTimeField(field) } = expr {
            let unit = match field {
                DateTimeField::Second | DateTimeField::Seconds => Some("second"),
                DateTimeField::Minute | DateTimeField::Minutes => Some("minute"),
                DateTimeField::Hour | DateTimeField::Hours => Some("hour"),
                DateTimeField::Day | DateTimeField::Days => Some("day"),
                DateTimeField::Week(_) | DateTimeField::Weeks => Some("week"),
                DateTimeField::Month | DateTimeField::Months => Some("month"),
                DateTimeField::Quarter => Some("quarter"),
                DateTimeField::Year | DateTimeField::Years => Some("year"),
                _ => None,
            };
            if let Some(unit) = unit {
                let target = std::mem::replace(inner.as_mut(), SqlExpr::value(Value::Null));
                *expr = SqlExpr::Function(ast::Function {
                    name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new("date_trunc"))]),
                    uses_odbc_syntax: false,
                    parameters: FunctionArguments::None,
                    args: FunctionArguments::List(FunctionArgumentList {
                        duplicate_treatment: None,
                        args: vec![
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::value(Value::SingleQuotedString(unit.into())))),
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(target)),
                        ],
                        clauses: vec![],
                    }),
                    filter: None,
                    null_treatment: None,
                    over: None,
                    within_group: vec![],
                });
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_get_through() {
        for ok in ["SELECT 1", "select 1;", "WITH a AS (SELECT 1) SELECT * FROM a", "EXPLAIN SELECT 1", "SHOW TABLES", "VALUES (1)"] {
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
            assert!(matches!(err, Error::Forbidden(_)), "{bad}: {err}");
            assert_eq!(err.to_string(), format!("{what} is not allowed: the SQL interface is read-only"), "{bad}");
        }
        assert!(matches!(read_only_statement("SELECT 1; SELECT 2"), Err(Error::InvalidQuery(_))));
        assert!(matches!(read_only_statement("SELEC 1"), Err(Error::InvalidQuery(_))));
    }

    #[test]
    fn floor_to_becomes_date_trunc() {
        let DfStatement::Statement(s) = read_only_statement("SELECT FLOOR(__time TO HOUR), FLOOR(x) FROM events").unwrap() else {
            panic!()
        };
        assert_eq!(s.to_string(), "SELECT date_trunc('hour', __time), FLOOR(x) FROM events");
    }
}
