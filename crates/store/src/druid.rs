//! Apache Druid's query languages over the store, so Druid's clients (pydruid and Superset,
//! plywood and Turnilo, Grafana's Druid plugin) work against Oriel unchanged.
//!
//! - [`sql`]: Druid SQL: case-sensitive identifiers, `EXPR$n` names, `?` parameters, and the
//!   functions DataFusion lacks (`TIME_CEIL`, `TIMESTAMPADD`, `EARLIEST`, …).
//! - [`catalog`]: Druid's `INFORMATION_SCHEMA` (`SCHEMATA`, `TABLES`, `COLUMNS` with `JDBC_TYPE`).
//! - [`native`]: native JSON queries (timeseries, topN, groupBy, scan, search, timeBoundary,
//!   segmentMetadata, dataSourceMetadata), each translated into a DataFusion plan on the same
//!   engine as SQL, then shaped as Druid answers.
//!
//! There is one datasource, `events`, in schema `druid` of catalog `druid`.

pub mod catalog;
pub mod functions;
pub mod native;
pub mod sql;
pub mod time;
pub mod types;

/// The catalog name Druid reports.
pub const CATALOG: &str = "druid";
/// The schema that holds the datasources.
pub const SCHEMA: &str = "druid";
/// The one datasource.
pub const DATASOURCE: &str = "events";
/// The Druid version Oriel reports: clients gate features on it (plywood needs at least 0.14).
pub const DRUID_VERSION: &str = "30.0.0";
