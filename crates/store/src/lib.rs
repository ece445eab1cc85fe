//! The store: Oriel's real-time columnar database (the role Druid plays in a classic stack).
//!
//! - [`store::Store`]: ingestion from the event log into a live buffer that queries see at once,
//!   persistence into Parquet [`segment`]s committed with their log offsets in the [`manifest`]
//!   (exactly once), compaction, retention and deletion.
//! - [`schema`]: the `events` Arrow schema and the builder from event JSON.
//! - [`table`]: the DataFusion table over segments ∪ live buffer, with time pruning.
//! - [`sql`]: read-only SQL in Druid's dialect, with the functions of [`udf`].
//! - [`json`]: query results as JSON rows.

mod error;
pub mod json;
pub mod manifest;
pub mod metrics;
pub mod schema;
pub mod segment;
pub mod sql;
pub mod store;
pub mod table;
pub mod udf;

pub use error::{Error, Result};
pub use sql::{QueryResult, SqlEngine};
pub use store::{CONSUMER, FlushReport, Store, StoreOptions, StoreStats};
