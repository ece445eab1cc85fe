//! Oriel's own request formats (the Divolte ones are in [`crate::divolte`]): one set of serde
//! types per format, used by the decoder here, by `oriel gen` and by the tests, so a renamed
//! field fails to compile instead of failing at run time.
//!
//! - [`tag`]: `POST /e`, the batched JSON the `oriel.js` tag sends (docs/tag.md).
//! - [`pixel`]: `GET /e.gif`, one event in the query string.
//! - [`api`]: `POST /api/v1/events`, server-side and mobile events with a write key.
//!
//! Each decoder checks every field against the [`Limits`](crate::limits::Limits) and returns
//! events without enrichment, or a short reason that becomes a 4xx answer.

pub mod api;
pub mod pixel;
pub mod tag;

use crate::limits::Limits;

/// A text field, checked against the length limit.
pub(crate) fn text(limits: &Limits, name: &str, value: Option<String>) -> Result<Option<String>, String> {
    if let Some(v) = &value {
        limits.field(name, v)?;
    }
    Ok(value.filter(|v| !v.is_empty()))
}

/// An identifier, checked against the identifier length limit.
pub(crate) fn id(limits: &Limits, name: &str, value: Option<String>) -> Result<Option<String>, String> {
    if let Some(v) = &value {
        limits.id(name, v)?;
    }
    Ok(value.filter(|v| !v.is_empty()))
}

/// A whole number in `0..=max` from a JSON number; `None` for absent or non-finite values.
pub(crate) fn whole(name: &str, value: Option<f64>, max: f64) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..=max).contains(&v) => Ok(Some(v.round() as i64)),
        Some(v) => Err(format!("{name} must be a number between 0 and {max}, not {v}")),
    }
}
