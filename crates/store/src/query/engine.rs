//! The SQL engine: DataFusion over a snapshot source, bounded in every dimension.
//!
//! A query waits for one of `max_concurrent_queries` slots (or is refused after the queue
//! wait), is parsed and planned on the [`QueryRuntime`], and streams its batches back through
//! a small channel, so a result is never held whole and a slow reader slows the query instead
//! of growing memory. The query is cancelled when its time limit passes, when it returns more
//! than the row limit, or when the reader goes away (a client that disconnected).

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryReservation, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use oriel_core::config::StoreConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::metrics as m;
use crate::query::runtime::QueryRuntime;
use crate::query::{functions, guards, statement};
use crate::{Error, Result};

/// Memory for cached Parquet footers and page indexes.
const METADATA_CACHE_BYTES: usize = 256 << 20;
/// Batches buffered between a running query and its reader.
const CHANNEL_BATCHES: usize = 2;
/// How long past its deadline a reader waits for a query's own answer before giving one itself:
/// the task can only notice its deadline between polls, and one poll of a heavy operator (or a
/// starved query thread) can run long.
const READER_GRACE: Duration = Duration::from_secs(1);

/// Limits of queries.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Memory all running queries may use together; sorts and joins spill beyond it.
    pub memory_bytes: usize,
    /// A query running longer is cancelled.
    pub timeout: Duration,
    /// Queries that may run at once.
    pub max_concurrent: usize,
    /// How long a query waits for a slot.
    pub queue_wait: Duration,
    /// Most rows a query may return.
    pub max_rows: u64,
    /// Most bytes a query's encoded result may take (checked by whoever encodes it).
    pub max_result_bytes: u64,
    /// Threads of the query runtime.
    pub threads: usize,
}

impl QueryOptions {
    /// Limits from the `[store]` section.
    pub fn from_config(s: &StoreConfig) -> Self {
        Self {
            memory_bytes: usize::try_from(s.query_memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            timeout: Duration::from_secs(s.query_timeout_seconds),
            max_concurrent: s.max_concurrent_queries as usize,
            queue_wait: Duration::from_secs(s.query_queue_seconds),
            max_rows: s.max_result_rows,
            max_result_bytes: s.max_result_mb.saturating_mul(1 << 20),
            threads: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self::from_config(&StoreConfig::default())
    }
}

/// Things a running query must keep alive until it finishes, such as the snapshot of segment
/// files a table scan planned with (compaction may replace those files meanwhile; they are
/// deleted only when the last holder is gone). Attached to each query's session config.
#[derive(Debug, Default)]
pub(crate) struct KeepAlive(parking_lot::Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>);

impl KeepAlive {
    /// Keeps `value` alive for the rest of the query.
    pub(crate) fn hold(&self, value: Arc<dyn std::any::Any + Send + Sync>) {
        self.0.lock().push(value);
    }
}

/// What one query is: SQL in one of the two dialects, or a plan a caller builds.
pub enum QueryInput {
    /// SQL in Oriel's dialect: unquoted identifiers are folded to lower case.
    Sql(String),
    /// SQL in Druid's dialect: identifiers are case-sensitive, unnamed columns are called
    /// `EXPR$n`, and `?` placeholders take `parameters` in order.
    DruidSql {
        /// The statement.
        sql: String,
        /// Values of the `?` placeholders.
        parameters: Vec<crate::druid::sql::Parameter>,
    },
    /// A plan built from the session by the caller (the Druid native translator), so it gets the
    /// same tables, functions and limits as SQL.
    Plan(PlanBuilder),
}

impl std::fmt::Debug for QueryInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sql(sql) => f.debug_tuple("Sql").field(sql).finish(),
            Self::DruidSql { sql, parameters } => {
                f.debug_struct("DruidSql").field("sql", sql).field("parameters", parameters).finish()
            }
            Self::Plan(_) => f.write_str("Plan"),
        }
    }
}

/// Builds a logical plan from what a query may read.
pub type PlanBuilder = Box<dyn FnOnce(&PlanContext<'_>) -> Result<LogicalPlan> + Send>;

/// What a [`PlanBuilder`] builds from: the query's session and the `events` table.
pub struct PlanContext<'a> {
    /// The session the query runs in (its functions and settings).
    pub state: &'a SessionState,
    /// The `events` table.
    pub events: Arc<dyn TableProvider>,
    /// The first and last `__time` of `events` when the plan was built, from the store's
    /// bookkeeping; `None` when it is empty or cannot tell.
    pub data_range: Option<(i64, i64)>,
}

/// Limits of one query, within the engine's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuerySettings {
    /// A shorter time limit than `store.query_timeout_seconds` (a client's own timeout).
    pub timeout: Option<Duration>,
    /// The rows feed an operator in this process (an analytics walk over every event in
    /// range), not a client: `store.max_result_rows` does not apply; time and memory limits do.
    pub internal: bool,
}

/// A query's whole result: its schema and rows.
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

/// How a query ended, as its task reports it before letting go of the channel.
type Ending = Arc<parking_lot::Mutex<Option<Result<()>>>>;

/// A running query: its schema now, its batches as they come.
#[derive(Debug)]
pub struct QueryStream {
    schema: SchemaRef,
    batches: mpsc::Receiver<RecordBatch>,
    ending: Ending,
    ended: bool,
    max_result_bytes: u64,
    /// When the reader stops waiting even if the query task has not noticed its own deadline.
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl QueryStream {
    /// Column names and types.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next batch; `None` at the end. Errors (the time or row limit, a failure while
    /// executing) end the stream; a query that stopped without saying how (its task died) ends
    /// with an error too, never as if it were complete.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        if self.ended {
            return None;
        }
        match tokio::time::timeout_at(self.deadline, self.batches.recv()).await {
            Ok(Some(batch)) => return Some(Ok(batch)),
            Ok(None) => {}
            Err(_) => {
                // Closing the channel stops the task at its next poll.
                self.ended = true;
                self.batches.close();
                return Some(Err(late(self.timeout)));
            }
        }
        self.ended = true;
        match self.ending.lock().take() {
            Some(Ok(())) => None,
            Some(Err(error)) => Some(Err(error)),
            None => Some(Err(Error::Internal("the query stopped before it finished".into()))),
        }
    }

    /// Most bytes the encoded result may take.
    pub fn max_result_bytes(&self) -> u64 {
        self.max_result_bytes
    }

    /// Reads everything (for small results: tests and tools).
    pub async fn collect(mut self) -> Result<QueryResult> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch?);
        }
        Ok(QueryResult { schema: self.schema, batches })
    }
}

/// The SQL engine of one process.
pub struct QueryEngine {
    ctx: SessionContext,
    events: Arc<dyn TableProvider>,
    runtime: Arc<QueryRuntime>,
    slots: Arc<Semaphore>,
    options: QueryOptions,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").field("session", &self.ctx.session_id()).field("options", &self.options).finish()
    }
}

impl QueryEngine {
    /// An engine over `events`, with `options`' limits.
    pub fn new(events: Arc<dyn TableProvider>, options: QueryOptions) -> Result<Self> {
        // Druid's catalog and schema names, so `druid.events` and `"druid"."events"` work.
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2)
            .with_default_catalog_and_schema(crate::druid::CATALOG, crate::druid::SCHEMA);
        let o = config.options_mut();
        o.execution.parquet.pushdown_filters = false;
        o.execution.parquet.reorder_filters = true;
        o.execution.parquet.schema_force_view_types = false;
        o.execution.enable_recursive_ctes = false;
        o.sql_parser.enable_ident_normalization = true;
        // A fair pool: every spilling operator (the sort of each partition of a window query)
        // gets its share and spills past it. With the default greedy pool one sort took the
        // whole pool and the other could not even merge: sessions and funnel failed at 100M
        // events with 4 GiB.
        let pool = FairSpillPool::new(options.memory_bytes);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(TrackConsumersPool::new(pool, std::num::NonZeroUsize::MIN.saturating_add(4))))
            // Keep every segment's footer and page index cached: re-reading them per query
            // costs more than the query itself on small segments.
            .with_metadata_cache_limit(METADATA_CACHE_BYTES)
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        ctx.register_table(crate::druid::DATASOURCE, Arc::clone(&events))?;
        crate::druid::catalog::register(&ctx)?;
        for name in guards::unregistered_functions() {
            ctx.deregister_udf(&name);
        }
        for name in ["range", "generate_series"] {
            ctx.deregister_udtf(name);
        }
        for f in guards::guarded_functions() {
            ctx.register_udf(f);
        }
        ctx.add_analyzer_rule(Arc::new(guards::GuardStringConcat::new()));
        for f in functions::druid_time_functions() {
            ctx.register_udf(f);
        }
        for f in crate::druid::functions::all() {
            ctx.register_udf(f);
        }
        ctx.register_udf(crate::query::props::prop());
        ctx.register_udaf(approx_distinct_udaf().as_ref().clone().with_aliases(["approx_count_distinct"]));
        let slots = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        Ok(Self { ctx, events, runtime: Arc::new(QueryRuntime::new(options.threads)?), slots, options })
    }

    /// Runs `task` on the query threads (work that belongs with a query, such as shaping its
    /// answer, stays off the threads that serve HTTP).
    pub(crate) async fn on_query_threads<F>(&self, task: F) -> Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Abort the task when the caller goes away (a client that disconnected).
        struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
        impl<T> Drop for AbortOnDrop<T> {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let mut handle = AbortOnDrop(self.runtime.spawn(task)?);
        (&mut handle.0).await.map_err(|e| Error::Internal(format!("a query task failed: {e}")))
    }

    /// The first and last `__time` of the `events` table, from its bookkeeping when it is the
    /// store's table (no data is read); `None` when it is empty or cannot tell.
    pub fn time_range(&self) -> Option<Option<(i64, i64)>> {
        let table: &dyn std::any::Any = self.events.as_ref();
        table.downcast_ref::<crate::query::EventsTable>().map(crate::query::EventsTable::time_range)
    }

    /// A reservation named `name` in the query memory pool, for memory held outside
    /// DataFusion's operators (an analytics walk's sums), so it counts against the same budget.
    pub(crate) fn reserve(&self, name: &str) -> MemoryReservation {
        MemoryConsumer::new(name).register(&self.ctx.runtime_env().memory_pool)
    }

    /// The limits queries run under.
    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    /// A session state of its own for one query, carrying a [`KeepAlive`].
    fn query_state(&self) -> SessionState {
        let mut state = self.ctx.state();
        state.config_mut().set_extension(Arc::new(KeepAlive::default()));
        state
    }

    /// Starts `sql` (Oriel's dialect): waits for a slot, plans it on the query runtime, and
    /// returns the stream of its results once planning succeeded.
    pub async fn query(&self, sql: &str) -> Result<QueryStream> {
        self.start(QueryInput::Sql(sql.to_string()), QuerySettings::default()).await
    }

    /// Starts any query: waits for a slot, plans it on the query runtime, and returns the stream
    /// of its results once planning succeeded.
    pub async fn start(&self, input: QueryInput, settings: QuerySettings) -> Result<QueryStream> {
        let permit = match tokio::time::timeout(self.options.queue_wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => {
                metrics::counter!(m::QUERIES_REFUSED).increment(1);
                return Err(Error::Busy(format!(
                    "{} queries are running and none finished within {} s (store.max_concurrent_queries, \
                     store.query_queue_seconds); retry shortly",
                    self.options.max_concurrent,
                    self.options.queue_wait.as_secs_f64()
                )));
            }
        };
        let (schema_tx, schema_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let ending: Ending = Arc::default();
        let state = self.query_state();
        let mut options = self.options.clone();
        if let Some(timeout) = settings.timeout {
            options.timeout = options.timeout.min(timeout);
        }
        if settings.internal {
            options.max_rows = u64::MAX;
        }
        let (timeout, deadline) = (options.timeout, tokio::time::Instant::now() + options.timeout + READER_GRACE);
        let job = Job { state, events: Arc::clone(&self.events), input, options };
        self.runtime.spawn(run(job, permit, schema_tx, tx, Arc::clone(&ending)))?;
        let schema = match tokio::time::timeout_at(deadline, schema_rx).await {
            Ok(planned) => planned.map_err(|_| Error::Internal("the query task ended before planning".into()))??,
            // Dropping the receivers stops the task once it polls again.
            Err(_) => return Err(late(timeout)),
        };
        Ok(QueryStream {
            schema,
            batches: rx,
            ending,
            ended: false,
            max_result_bytes: self.options.max_result_bytes,
            deadline,
            timeout,
        })
    }

    /// Runs `sql` and collects the whole result.
    pub async fn collect(&self, sql: &str) -> Result<QueryResult> {
        self.query(sql).await?.collect().await
    }
}

/// One query as its task receives it.
struct Job {
    state: SessionState,
    events: Arc<dyn TableProvider>,
    input: QueryInput,
    options: QueryOptions,
}

/// Plans and runs one query on the query runtime, sending the schema once planned and then
/// the batches, within the time and row limits. How it ended goes into `ending` before the
/// channel closes; the slot (`_permit`) is free as soon as this returns, whatever the reader
/// does, and a reader that goes away stops the query even while it computes.
async fn run(
    job: Job,
    _permit: OwnedSemaphorePermit,
    schema_tx: tokio::sync::oneshot::Sender<Result<SchemaRef>>,
    tx: mpsc::Sender<RecordBatch>,
    ending: Ending,
) {
    let _running = Running::start();
    let Job { state, events, input, options } = job;
    let deadline = tokio::time::Instant::now() + options.timeout;
    let planned = tokio::time::timeout_at(deadline, plan(&state, events, input)).await;
    let stream = match planned {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let _ = schema_tx.send(Err(error));
            return;
        }
        Err(_) => {
            let _ = schema_tx.send(Err(timed_out(&options)));
            return;
        }
    };
    if schema_tx.send(Ok(stream.schema())).is_ok() {
        let outcome = match tokio::time::timeout_at(deadline, forward(stream, &tx, options.max_rows)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timed_out(&options)),
        };
        *ending.lock() = Some(outcome);
    }
}

/// A query in the metrics while it runs: counted out however its task ends (a panic too).
struct Running(std::time::Instant);

impl Running {
    fn start() -> Self {
        metrics::gauge!(m::QUERIES_RUNNING).increment(1.0);
        Self(std::time::Instant::now())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        metrics::gauge!(m::QUERIES_RUNNING).decrement(1.0);
        metrics::histogram!(m::QUERY_SECONDS).record(self.0.elapsed().as_secs_f64());
    }
}

/// Sends the batches of `stream` to the reader until the end, an error, the row limit, or the
/// reader going away.
async fn forward(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    tx: &mpsc::Sender<RecordBatch>,
    max_rows: u64,
) -> Result<()> {
    let mut rows = 0u64;
    loop {
        let batch = tokio::select! {
            batch = stream.next() => batch,
            // Dropping the stream cancels the plan.
            () = tx.closed() => return Ok(()),
        };
        let Some(batch) = batch else { return Ok(()) };
        let batch = batch.map_err(classify)?;
        rows += batch.num_rows() as u64;
        if rows > max_rows {
            return Err(Error::TooBig(format!(
                "the result has more than {max_rows} rows (store.max_result_rows); add a LIMIT or aggregate"
            )));
        }
        if tx.send(batch).await.is_err() {
            return Ok(());
        }
    }
}

fn timed_out(options: &QueryOptions) -> Error {
    metrics::counter!(m::QUERIES_TIMED_OUT).increment(1);
    late(options.timeout)
}

/// The time limit's error, as the reader gives it when the task is late to give it itself (the
/// task counts the query once it notices).
fn late(timeout: Duration) -> Error {
    Error::Timeout(format!("the query ran longer than {} s (store.query_timeout_seconds)", timeout.as_secs()))
}

async fn plan(
    state: &SessionState,
    events: Arc<dyn TableProvider>,
    input: QueryInput,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    let logical = match input {
        QueryInput::Sql(sql) => {
            let statement = statement::read_only_statement(&sql)?;
            state.statement_to_plan(statement).await.map_err(classify)?
        }
        QueryInput::DruidSql { sql, parameters } => {
            let statement = crate::druid::sql::statement(&sql, &parameters)?;
            let mut state = state.clone();
            // Druid's identifiers are case-sensitive, as Calcite reads them.
            state.config_mut().options_mut().sql_parser.enable_ident_normalization = false;
            state.statement_to_plan(statement).await.map_err(classify)?
        }
        // A plan a builder could not build is a query that does not plan, like SQL that does not.
        QueryInput::Plan(build) => {
            let table: &dyn std::any::Any = events.as_ref();
            let data_range = table.downcast_ref::<crate::query::EventsTable>().and_then(crate::query::EventsTable::time_range);
            build(&PlanContext { state, events, data_range }).map_err(|e| match e {
                Error::DataFusion(e) => classify(e),
                other => other,
            })?
        }
    };
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&logical)
        .map_err(|e| Error::ReadOnly(format!("{e}: the SQL interface is read-only")))?;
    let physical = state.create_physical_plan(&logical).await.map_err(classify)?;
    datafusion::physical_plan::execute_stream(physical, state.task_ctx()).map_err(classify)
}

/// Sorts DataFusion's errors into the user's mistakes (400), limits (400 with the limit named)
/// and failures on our side (500).
pub(crate) fn classify(error: DataFusionError) -> Error {
    use datafusion::arrow::error::ArrowError;
    match error.find_root() {
        DataFusionError::ResourcesExhausted(reason) => Error::TooBig(reason.clone()),
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::Execution(_) => Error::InvalidQuery(error.find_root().to_string()),
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::DivideByZero
            | ArrowError::CastError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::ParseError(_)
            | ArrowError::ArithmeticOverflow(_) => Error::InvalidQuery(arrow.to_string()),
            _ => Error::DataFusion(error),
        },
        _ => Error::DataFusion(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};

    use super::*;

    /// An engine with a one-second limit and `stall(x)`, which holds its thread for three
    /// seconds in one call, the way one poll of a heavy operator can.
    fn stalling_engine(volatility: Volatility) -> QueryEngine {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let events = Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap());
        let options = QueryOptions { timeout: Duration::from_secs(1), threads: 1, ..QueryOptions::default() };
        let engine = QueryEngine::new(events, options).unwrap();
        let stall = create_udf(
            "stall",
            vec![DataType::Int64],
            DataType::Int64,
            volatility,
            Arc::new(|args: &[ColumnarValue]| {
                std::thread::sleep(Duration::from_secs(3));
                Ok(args[0].clone())
            }),
        );
        engine.ctx.register_udf(stall);
        engine
    }

    #[tokio::test]
    async fn the_time_limit_answers_even_while_one_poll_runs_long() {
        // Volatile: called while executing. Immutable: folded, so called while planning.
        for volatility in [Volatility::Volatile, Volatility::Immutable] {
            let engine = stalling_engine(volatility);
            let asked = Instant::now();
            let answer = engine.collect("SELECT stall(1)").await;
            let took = asked.elapsed();
            assert!(matches!(answer, Err(Error::Timeout(_))), "{volatility:?}: {answer:?}");
            assert!(took < Duration::from_millis(2_800), "{volatility:?}: answered after {took:?}");
        }
    }
}
