//! `POST /druid/v2/sql`: Druid SQL, answered in Druid's result formats.
//!
//! The body is JSON (`query`, `resultFormat`, `header`, `typesHeader`, `sqlTypesHeader`,
//! `context`, `parameters`; other fields are ignored), or the SQL itself as `text/plain` or
//! URL-encoded form data. Formats: `object` (the default; keys in select order, duplicates
//! kept), `array`, `objectLines`, `arrayLines` (one value per line, ending with an empty line)
//! and `csv`. Times are ISO-8601 with milliseconds in UTC. Rows stream as they are produced; a
//! failure after the first row cuts the body off, as Druid does, so a client sees a truncated
//! answer rather than a short one that looks complete.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oriel_store::arrow::array::RecordBatch;
use oriel_store::arrow::datatypes::SchemaRef;
use oriel_store::druid::sql::Parameter;
use oriel_store::druid::types;
use oriel_store::query::engine::{QueryInput, QuerySettings};
use oriel_store::query::values;
use serde::Deserialize;
use serde_json::Value;

use super::error::DruidError;
use crate::AppState;
use crate::rows::{self, RowFormat};

/// Largest request body.
const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqlRequest {
    query: String,
    #[serde(default)]
    result_format: Option<String>,
    #[serde(default)]
    header: Option<bool>,
    #[serde(default)]
    types_header: Option<bool>,
    #[serde(default)]
    sql_types_header: Option<bool>,
    #[serde(default)]
    context: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    parameters: Option<Vec<Parameter>>,
}

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Object,
    Array,
    ObjectLines,
    ArrayLines,
    Csv,
}

impl Format {
    fn parse(name: Option<&str>) -> Result<Self, DruidError> {
        Ok(match name.unwrap_or("object") {
            "object" | "OBJECT" => Self::Object,
            "array" | "ARRAY" => Self::Array,
            "objectLines" | "OBJECTLINES" | "objectlines" => Self::ObjectLines,
            "arrayLines" | "ARRAYLINES" | "arraylines" => Self::ArrayLines,
            "csv" | "CSV" => Self::Csv,
            other => {
                return Err(DruidError::invalid(format!(
                    "resultFormat {other:?} is not one of object, array, objectLines, arrayLines, csv"
                )));
            }
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Object | Self::Array => "application/json",
            Self::ObjectLines | Self::ArrayLines => "text/plain",
            Self::Csv => "text/csv",
        }
    }
}

/// How the rows of one answer are written.
struct Writer {
    format: Format,
    /// JSON-encoded column names, for objects.
    keys: Vec<String>,
    /// Whether a header row opened a JSON array, so the first data row needs a comma too.
    after_header: bool,
}

impl Writer {
    /// The header rows: names, then native types, then SQL types, as asked.
    fn header(&self, schema: &SchemaRef, names: bool, native: bool, sql: bool) -> (String, bool) {
        let fields = schema.fields();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        if !names {
            return (String::new(), false);
        }
        match self.format {
            Format::Object | Format::ObjectLines => {
                let cells = fields
                    .iter()
                    .map(|f| match (native, sql) {
                        (false, false) => Value::Null,
                        (n, s) => {
                            let mut o = serde_json::Map::new();
                            if n {
                                o.insert("type".into(), Value::String(types::native_type(f.data_type()).into()));
                            }
                            if s {
                                o.insert("sqlType".into(), Value::String(types::sql_type(f.data_type()).0.into()));
                            }
                            Value::Object(o)
                        }
                    })
                    .collect();
                rows.push(cells);
            }
            _ => {
                rows.push(fields.iter().map(|f| Value::String(f.name().clone())).collect());
                if native {
                    rows.push(fields.iter().map(|f| Value::String(types::native_type(f.data_type()).into())).collect());
                }
                if sql {
                    rows.push(fields.iter().map(|f| Value::String(types::sql_type(f.data_type()).0.into())).collect());
                }
            }
        }
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            if i > 0 && matches!(self.format, Format::Object | Format::Array) {
                out.push(',');
            }
            self.row(row, &mut out);
        }
        (out, true)
    }

    /// One row (data or header) in the format, without a separator before it.
    fn row(&self, cells: &[Value], out: &mut String) {
        match self.format {
            Format::Object | Format::ObjectLines => {
                out.push('{');
                for (i, (key, value)) in self.keys.iter().zip(cells).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(key);
                    out.push(':');
                    out.push_str(&value.to_string());
                }
                out.push('}');
            }
            Format::Array | Format::ArrayLines => out.push_str(&Value::Array(cells.to_vec()).to_string()),
            Format::Csv => {
                for (i, value) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    csv_cell(value, out);
                }
            }
        }
        if !matches!(self.format, Format::Object | Format::Array) {
            out.push('\n');
        }
    }
}

/// A value as an RFC 4180 field: quoted when it holds a comma, quote or line break.
fn csv_cell(value: &Value, out: &mut String) {
    let text = match value {
        Value::Null => return,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&text);
    }
}

impl RowFormat for Writer {
    fn rows(&self, batch: &RecordBatch, first: bool, budget: u64) -> Option<String> {
        let separator = if matches!(self.format, Format::Object | Format::Array) { "," } else { "" };
        rows::encode_each(batch, first && !self.after_header, budget, separator, |batch, i, out| {
            let cells: Vec<Value> = batch.columns().iter().map(|c| values::value(c, i)).collect();
            self.row(&cells, out);
        })
    }

    fn end(&self) -> String {
        match self.format {
            Format::Object | Format::Array => "]".into(),
            // The empty line tells a complete answer from a truncated one.
            _ => "\n".into(),
        }
    }

    fn failed(&self, _message: &str) -> Option<String> {
        None
    }
}

/// The SQL and options of a request, from its JSON, text or form body.
fn read_request(headers: &HeaderMap, body: &[u8]) -> Result<SqlRequest, DruidError> {
    let content_type = crate::body::header_str(headers, header::CONTENT_TYPE).unwrap_or("application/json").to_ascii_lowercase();
    let text = || std::str::from_utf8(body).map_err(|_| DruidError::invalid("the body is not UTF-8"));
    if content_type.starts_with("text/plain") {
        return Ok(SqlRequest { query: text()?.to_string(), ..SqlRequest::default() });
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let decoded: String = url::form_urlencoded::parse(body).map(|(k, v)| if v.is_empty() { k } else { v }).collect();
        return Ok(SqlRequest { query: decoded, ..SqlRequest::default() });
    }
    serde_json::from_slice(body).map_err(|e| DruidError::invalid(format!("the body must be a JSON object with \"query\": {e}")))
}

/// `POST /druid/v2/sql`.
pub(super) async fn sql(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match answer(state, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(state: AppState, headers: HeaderMap, body: Body) -> Result<Response, DruidError> {
    let bytes = crate::body::read(&headers, body, MAX_BODY_BYTES, state.limits().body_read_timeout).await?;
    let request = read_request(&headers, &bytes)?;
    let format = Format::parse(request.result_format.as_deref())?;
    let context = request.context.unwrap_or_default();
    let query_id = match context.get("sqlQueryId") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 256 => id.clone(),
        _ => super::query_id(),
    };
    match context.get("sqlTimeZone") {
        None | Some(Value::Null) => {}
        Some(Value::String(zone)) if matches!(zone.as_str(), "UTC" | "Etc/UTC" | "Z" | "GMT" | "+00:00") => {}
        Some(other) => {
            return Err(DruidError::unsupported(format!("sqlTimeZone {other} is not supported: Oriel's SQL runs in UTC")));
        }
    }
    let settings = QuerySettings { timeout: super::context_timeout(context.get("timeout"))?, ..Default::default() };
    let store = Arc::clone(state.store().ready()?);
    let input = QueryInput::DruidSql { sql: request.query, parameters: request.parameters.unwrap_or_default() };
    let mut stream = store.engine().start(input, settings).await?;
    // Wait for the first batch, so an error that shows at once still gets its own status.
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(error)) => return Err(error.into()),
        None => None,
    };
    let schema = Arc::clone(stream.schema());
    let mut writer = Writer {
        format,
        keys: schema.fields().iter().map(|f| Value::String(f.name().clone()).to_string()).collect(),
        after_header: false,
    };
    let header_wanted = request.header.unwrap_or(false);
    let (header, any_header) =
        writer.header(&schema, header_wanted, request.types_header.unwrap_or(false), request.sql_types_header.unwrap_or(false));
    writer.after_header = any_header && matches!(format, Format::Object | Format::Array);
    let mut open = String::new();
    if matches!(format, Format::Object | Format::Array) {
        open.push('[');
    }
    open.push_str(&header);
    let body = rows::body(open, first, stream, Arc::new(writer));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(id) = HeaderValue::from_str(&query_id) {
        h.insert("x-druid-sql-query-id", id);
    }
    if header_wanted {
        h.insert("x-druid-sql-header-included", HeaderValue::from_static("yes"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut out = String::new();
        for v in [Value::String("plain".into()), Value::String("a,b".into()), Value::String("say \"hi\"".into()), Value::Null] {
            csv_cell(&v, &mut out);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"||");
    }

    #[test]
    fn bodies_of_every_kind() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(read_request(&h, b"SELECT 1").unwrap().query, "SELECT 1");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(read_request(&h, b"SELECT+COUNT%28*%29+FROM+events").unwrap().query, "SELECT COUNT(*) FROM events");
        assert_eq!(read_request(&h, b"query=SELECT+1").unwrap().query, "SELECT 1");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let r = read_request(&h, br#"{"query":"SELECT 1","queryType":"sql","resultFormat":"array","header":true}"#).unwrap();
        assert_eq!((r.query.as_str(), r.result_format.as_deref(), r.header), ("SELECT 1", Some("array"), Some(true)));
        assert!(read_request(&h, b"{").is_err());
    }
}
