//! Reports: the small query language of Oriel's UI (`POST /api/v1/query`), compiled to one SQL
//! statement on the store's engine.
//!
//! A report names a time range (a preset such as `today` or `28d` in a time zone, or fixed
//! instants), filters on any dimension or custom property, up to two splits (dimensions, or
//! time with a granularity), measures (events, page views, visitors, sessions, bounce rate,
//! views per session, average engaged time and scroll depth, counts of a custom event), a sort,
//! a limit, and optionally a comparison with the previous period or the year before. Every name
//! is checked against the schema and every value is written as a literal, so nothing a client
//! sends becomes SQL text of its own.
//!
//! - [`request`]: the request, as JSON, and its validation.
//! - [`range`]: presets and comparison ranges in a time zone (daylight saving included).
//! - [`compile`]: the SQL of a report.
//! - [`run`]: running it and shaping the answer.
//! - [`live`]: the live view of a site (visitors now, events per minute, latest page views).

pub mod compile;
pub mod live;
pub mod range;
pub mod request;
pub mod run;

pub use request::ReportRequest;
pub use run::{Report, run};
