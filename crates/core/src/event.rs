//! The event record: one row of the `events` datasource.
//!
//! The collector builds an [`Event`] from whatever protocol a request used, enriches it, and
//! appends it to the event log as one JSON object keyed by `party_id`. The store reads the same
//! JSON back and turns [`COLUMNS`] into its Arrow schema, so the field list lives here, once.

use serde::{Deserialize, Serialize};

/// Which protocol an event arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// The `oriel.js` tag (`POST /e`).
    #[default]
    Tag,
    /// A no-JavaScript pixel (`GET /e.gif`).
    Pixel,
    /// The Divolte Collector wire protocol (`/csc-event`, `/json`).
    Divolte,
    /// Server-side or mobile ingestion (`POST /api/v1/events`).
    Api,
}

impl EventSource {
    /// The lowercase name stored in the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Pixel => "pixel",
            Self::Divolte => "divolte",
            Self::Api => "api",
        }
    }
}

/// One click-stream event, with the columns of DESIGN §4. Absent values are `None` and are left
/// out of the JSON form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Server receive time, milliseconds since the Unix epoch, UTC.
    #[serde(rename = "__time")]
    pub time: i64,
    /// The client's own clock at the time of the event, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_time: Option<i64>,
    /// Site id from the tag or write key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Unique id of the event, used for duplicate detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Event type; `pageView` for automatic page views.
    pub event_type: String,
    /// Visitor id (first-party storage, cookieless hash, or Divolte party cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party_id: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Page-view id shared by all events of one page view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_view_id: Option<String>,
    /// Whether the visitor id was created for this event's page load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_new_party: Option<bool>,
    /// Whether this is the first page load of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_first_in_session: Option<bool>,
    /// The site's own user id, when the site identified the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Full page URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Host part of the page URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path part of the page URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Query string of the page URL, without `?`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Document title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Referrer URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Host of the referrer URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
    /// Traffic channel: direct, search, social, email, paid, referral or internal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `utm_source` campaign parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    /// `utm_medium` campaign parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    /// `utm_campaign` campaign parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    /// `utm_term` campaign parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    /// `utm_content` campaign parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    /// Browser family, e.g. `Chrome`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Browser major version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    /// Operating system family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Operating system version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// desktop, mobile, tablet, bot or other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Browser language, e.g. `en-US`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Screen width in CSS pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<i32>,
    /// Screen height in CSS pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_height: Option<i32>,
    /// Viewport width in CSS pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport_width: Option<i32>,
    /// Viewport height in CSS pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewport_height: Option<i32>,
    /// Device pixel ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_ratio: Option<f64>,
    /// ISO 3166 alpha-2 country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region name or code, when the GeoIP database has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// City name, when the GeoIP database has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Client IP address, anonymised unless configured otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Visible (engaged) time of the page view in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engaged_ms: Option<i64>,
    /// Maximum scroll depth of the page view, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scroll_depth: Option<i32>,
    /// Custom properties as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<String>,
    /// Flagged as a bot by user-agent rules or headless-browser signals.
    pub is_bot: bool,
    /// An event with the same `event_id` was seen recently.
    pub is_duplicate: bool,
    /// The request failed its integrity check (Divolte checksum).
    pub is_corrupt: bool,
    /// The protocol the event arrived through.
    pub source: EventSource,
}

/// The logical type of a column of the `events` datasource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Milliseconds since the epoch, stored as a timestamp.
    TimestampMs,
    /// UTF-8 text.
    String,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Bool,
}

/// Name, type and nullability of one column of the `events` datasource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name, identical to the JSON field name.
    pub name: &'static str,
    /// Logical type.
    pub kind: ColumnType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

const fn col(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind, nullable: true }
}

const fn required(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind, nullable: false }
}

/// The columns of the `events` datasource, in schema order.
pub const COLUMNS: &[Column] = {
    use ColumnType::*;
    &[
        required("__time", TimestampMs),
        col("client_time", TimestampMs),
        col("site", String),
        col("event_id", String),
        required("event_type", String),
        col("party_id", String),
        col("session_id", String),
        col("page_view_id", String),
        col("is_new_party", Bool),
        col("is_first_in_session", Bool),
        col("user_id", String),
        col("url", String),
        col("host", String),
        col("path", String),
        col("query", String),
        col("title", String),
        col("referrer", String),
        col("referrer_host", String),
        col("channel", String),
        col("utm_source", String),
        col("utm_medium", String),
        col("utm_campaign", String),
        col("utm_term", String),
        col("utm_content", String),
        col("browser", String),
        col("browser_version", String),
        col("os", String),
        col("os_version", String),
        col("device_type", String),
        col("language", String),
        col("screen_width", Int32),
        col("screen_height", Int32),
        col("viewport_width", Int32),
        col("viewport_height", Int32),
        col("pixel_ratio", Float64),
        col("country", String),
        col("region", String),
        col("city", String),
        col("ip", String),
        col("engaged_ms", Int64),
        col("scroll_depth", Int32),
        col("props", String),
        required("is_bot", Bool),
        required("is_duplicate", Bool),
        required("is_corrupt", Bool),
        required("source", String),
    ]
};

/// The JSON Schema of one event as the collector writes it to the log (and so to the Kafka
/// topic): `docs/kafka-event.schema.json` is this, and a test keeps the two equal. Fields may be
/// added in later versions, never renamed or retyped, so consumers should accept unknown ones.
pub fn json_schema() -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut properties = Map::new();
    for column in COLUMNS {
        let mut schema = match column.kind {
            ColumnType::TimestampMs | ColumnType::Int64 => json!({ "type": "integer" }),
            ColumnType::Int32 => json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }),
            ColumnType::Float64 => json!({ "type": "number" }),
            ColumnType::Bool => json!({ "type": "boolean" }),
            ColumnType::String => json!({ "type": "string" }),
        };
        if column.name == "source" {
            let names: Vec<&str> = [EventSource::Tag, EventSource::Pixel, EventSource::Divolte, EventSource::Api]
                .into_iter()
                .map(EventSource::as_str)
                .collect();
            schema["enum"] = json!(names);
        }
        properties.insert(column.name.to_string(), schema);
    }
    let required: Vec<Value> = COLUMNS.iter().filter(|c| !c.nullable).map(|c| Value::from(c.name)).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Oriel event",
        "description": "One enriched click-stream event, as Oriel's collector writes it to the event log (docs/kafka.md). \
                        Absent fields are unknown; later versions may add fields, never rename or retype them.",
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_this_version_s() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kafka-event.schema.json");
        let published: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let current = json_schema();
        assert_eq!(
            published,
            current,
            "{} is stale; write this into it:\n{}",
            path.display(),
            serde_json::to_string_pretty(&current).unwrap()
        );
    }

    #[test]
    fn json_round_trip_omits_absent_fields() {
        let event = Event {
            time: 1_700_000_000_123,
            event_type: "pageView".into(),
            party_id: Some("p1".into()),
            screen_width: Some(1920),
            pixel_ratio: Some(1.5),
            source: EventSource::Pixel,
            ..Event::default()
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"__time":1700000000123,"event_type":"pageView","party_id":"p1","screen_width":1920,"pixel_ratio":1.5,"is_bot":false,"is_duplicate":false,"is_corrupt":false,"source":"pixel"}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn every_column_is_a_field_of_the_json_form() {
        // A fully populated event must serialize exactly the columns, in order, so the store's
        // schema and the collector's records can never drift apart.
        let event = Event {
            client_time: Some(1),
            site: Some(String::new()),
            event_id: Some(String::new()),
            party_id: Some(String::new()),
            session_id: Some(String::new()),
            page_view_id: Some(String::new()),
            is_new_party: Some(true),
            is_first_in_session: Some(true),
            user_id: Some(String::new()),
            url: Some(String::new()),
            host: Some(String::new()),
            path: Some(String::new()),
            query: Some(String::new()),
            title: Some(String::new()),
            referrer: Some(String::new()),
            referrer_host: Some(String::new()),
            channel: Some(String::new()),
            utm_source: Some(String::new()),
            utm_medium: Some(String::new()),
            utm_campaign: Some(String::new()),
            utm_term: Some(String::new()),
            utm_content: Some(String::new()),
            browser: Some(String::new()),
            browser_version: Some(String::new()),
            os: Some(String::new()),
            os_version: Some(String::new()),
            device_type: Some(String::new()),
            language: Some(String::new()),
            screen_width: Some(1),
            screen_height: Some(1),
            viewport_width: Some(1),
            viewport_height: Some(1),
            pixel_ratio: Some(1.0),
            country: Some(String::new()),
            region: Some(String::new()),
            city: Some(String::new()),
            ip: Some(String::new()),
            engaged_ms: Some(1),
            scroll_depth: Some(1),
            props: Some(String::new()),
            ..Event::default()
        };
        let value = serde_json::to_value(&event).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(sorted_keys, columns);
    }
}
