//! The collector: Oriel's front door for events, without the HTTP framework (that is
//! `oriel-server`'s).
//!
//! A request's payload goes to [`Collector::accept`] ([`accept`]), which decodes it by its
//! protocol ([`wire`] for Oriel's tag, pixel and API; [`divolte`] for Divolte's wire protocol),
//! checks it against [`limits`], applies the site and privacy [`policy`] of its site
//! ([`sites`]), completes it ([`enrich`]ment, bot and duplicate flags, in [`pipeline`]) and
//! appends it to the event log. An event is acknowledged only once the log says it is durable;
//! when too many events are pending the answer is 503 with `Retry-After`. [`assets`] holds the
//! browser tags, pre-compressed.

pub mod accept;
pub mod assets;
pub mod divolte;
pub mod enrich;
mod error;
pub mod limits;
pub mod metrics;
pub mod pipeline;
mod policy;
pub(crate) mod sites;
pub mod timestamp;
pub mod wire;

pub use accept::{Payload, Request};
pub use error::{Error, Result};
pub use pipeline::{Collector, Outcome};
pub use policy::Privacy;
