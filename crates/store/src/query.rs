//! SQL over the store: a read-only DataFusion engine, in Druid's dialect, bounded in memory,
//! time and result size, and running apart from the threads that serve HTTP.
//!
//! - [`engine`]: the [`QueryEngine`], its limits, and the streams of results it hands out.
//! - [`table`]: the `events` table over a [`crate::snapshot::SnapshotSource`].
//! - [`statement`]: what SQL is accepted (reads only, bounded nesting) and Druid rewrites.
//! - [`functions`]: Druid's time functions.
//! - `props`: `prop(props, key)`, one custom property as text.
//! - [`guards`]: caps on what one expression may allocate.
//! - [`values`]: result values as JSON, as Druid encodes them.
//! - `runtime`: the query threads.

pub mod engine;
pub mod functions;
mod guards;
mod props;
mod runtime;
pub(crate) mod statement;
pub mod table;
pub mod values;

pub use engine::{QueryEngine, QueryOptions, QueryResult, QueryStream};
pub use table::EventsTable;
