//! The store: Oriel's real-time columnar database (the role Druid plays in a classic stack).
//!
//! - [`Store`] ([`store`]): opens the store, runs its tasks, reports its state.
//! - [`ingest`]: tailing the event log into the live buffer that queries see at once.
//! - [`maintenance`]: flush into Parquet [`segment`]s committed with their log offsets in the
//!   [`manifest`] (exactly once), compaction, retention and deletion ([`deletion`]).
//! - [`objects`]: segments and manifest in object storage (S3), with a local cache.
//! - [`snapshot`]: the consistent view of segments and live batches a query reads.
//! - [`query`]: the read-only SQL engine over snapshots.
//! - [`cluster`]: the ingest and query roles of a cluster: live events between nodes, and the
//!   query node's view of every ingest node's store.
//! - [`schema`]: the `events` Arrow schema and the builder from event JSON.

pub mod analytics;
pub mod cluster;
pub mod deletion;
pub mod druid;
mod error;
pub mod expiry;
pub mod export;
pub(crate) mod ingest;
pub(crate) mod maintenance;
pub mod manifest;
pub(crate) mod metrics;
pub mod objects;
pub mod query;
pub mod receipts;
pub mod report;
pub mod schema;
pub mod segment;
pub mod snapshot;
pub mod store;

pub use datafusion::arrow;
pub use deletion::Selector;
pub use error::{Error, Result};
pub use query::{QueryEngine, QueryOptions, QueryResult, QueryStream};
pub use store::{CONSUMER, FlushReport, IngestLag, Store, StoreOptions, StoreStats};
