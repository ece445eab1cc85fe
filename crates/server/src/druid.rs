//! Apache Druid's HTTP API, so Druid's clients work against Oriel: pydruid and Superset (SQL),
//! plywood and Turnilo (native queries), Grafana's Druid plugin (both).
//!
//! | route | what |
//! | --- | --- |
//! | `POST /druid/v2/sql[/]` | Druid SQL in every result format ([`sql`]) |
//! | `POST /druid/v2[/]` | native queries ([`native`]) |
//! | `GET /druid/v2/datasources[/]`, `GET /druid/v2/datasources/{name}` | data sources ([`status`]) |
//! | `GET /status`, `GET /druid/broker/v1/loadstatus`, `GET /druid/broker/v1/readiness` | status ([`status`]) |
//! | `GET /status/health` | `true` while the process runs; the only one without a credential |
//!
//! All but `/status/health` need a credential, as every query endpoint does; errors come in
//! Druid's envelope ([`error`]).

mod error;
mod native;
mod sql;
mod status;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use crate::AppState;
pub(crate) use error::DruidError;

/// The Druid routes that need a credential.
pub(crate) fn protected() -> Router<AppState> {
    Router::new()
        .route("/druid/v2/sql", post(sql::sql))
        .route("/druid/v2/sql/", post(sql::sql))
        .route("/druid/v2", post(native::native))
        .route("/druid/v2/", post(native::native))
        .route("/druid/v2/datasources", get(status::datasources))
        .route("/druid/v2/datasources/", get(status::datasources))
        .route("/druid/v2/datasources/{name}", get(status::datasource))
        .route("/druid/broker/v1/loadstatus", get(status::load_status))
        .route("/druid/broker/v1/readiness", get(status::readiness))
        .route("/status", get(status::status))
}

/// The Druid routes open to anyone.
pub(crate) fn public() -> Router<AppState> {
    Router::new().route("/status/health", get(status::health))
}

/// A fresh query id, for answers whose request named none.
fn query_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A client's `context.timeout` (milliseconds, a number or a string); 0 or absent is none.
fn context_timeout(value: Option<&Value>) -> Result<Option<std::time::Duration>, DruidError> {
    let ms = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| DruidError::invalid("context.timeout must be a whole number of milliseconds"))?;
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms)))
}
