//! The collector: Oriel's front door for events.
//!
//! A request is decoded by its protocol's decoder ([`wire`] for Oriel's tag, pixel and API;
//! [`divolte`] for Divolte's wire protocol), checked against [`limits`], completed by the
//! [`pipeline::Collector`] (site rules from [`sites`], [`enrich`]ment, bot and duplicate flags)
//! and appended to the event log. An event is acknowledged only once the log says it is durable;
//! when too many events are pending the answer is 503 with `Retry-After`. [`assets`] serves the
//! browser tags and [`routes`] wires it all to HTTP.

pub mod assets;
pub mod divolte;
pub mod enrich;
mod error;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod routes;
pub mod sites;
pub mod timestamp;
pub mod wire;

pub use error::{Error, Result};
pub use pipeline::{Collector, Outcome};
pub use routes::{CollectorSlot, routes};
