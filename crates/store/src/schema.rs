//! The Arrow schema of the `events` datasource, and the builder that turns event JSON from the
//! log into Arrow record batches.

use std::sync::{Arc, LazyLock};

use std::borrow::Cow;
use std::collections::HashMap;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use oriel_core::Event;
use oriel_core::event::{COLUMNS, ColumnType};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// The Arrow type of a logical column type. Timestamps are UTC milliseconds without a zone,
/// which is what Druid's `__time` is and what SQL literals compare against. Strings are plain
/// UTF-8 arrays: string views made grouping about 1.8 times faster but window functions over
/// millions of rows up to 12 times slower in DataFusion 55 (bench/README.md).
pub(crate) fn arrow_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::TimestampMs => DataType::Timestamp(TimeUnit::Millisecond, None),
        ColumnType::String => DataType::Utf8,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
    }
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(COLUMNS.iter().map(|c| Field::new(c.name, arrow_type(c.kind), c.nullable)).collect::<Vec<_>>()))
});

/// The schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// Index of `__time` in [`events_schema`].
pub const TIME: usize = 0;

/// One column being built.
enum ColumnBuilder {
    Time(TimestampMillisecondBuilder),
    Str(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
}

impl ColumnBuilder {
    fn new(kind: ColumnType, rows: usize) -> Self {
        match kind {
            ColumnType::TimestampMs => Self::Time(TimestampMillisecondBuilder::with_capacity(rows)),
            // String bytes are unknown up front; the value buffer grows as needed.
            ColumnType::String => Self::Str(StringBuilder::with_capacity(rows, 0)),
            ColumnType::Int32 => Self::I32(Int32Builder::with_capacity(rows)),
            ColumnType::Int64 => Self::I64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Self::F64(Float64Builder::with_capacity(rows)),
            ColumnType::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Time(b) => b.append_null(),
            Self::Str(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Time(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
        }
    }

    fn append(&mut self, value: &Value<'_>) {
        match (self, value) {
            (Self::Time(b), Value::Int(v)) => b.append_value(*v),
            (Self::I64(b), Value::Int(v)) => b.append_value(*v),
            (Self::I32(b), Value::Int(v)) => b.append_value(*v as i32),
            (Self::F64(b), Value::Float(v)) => b.append_value(*v),
            (Self::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Self::Str(b), Value::Str(v)) => b.append_value(v),
            (builder, _) => builder.append_null(),
        }
    }
}

/// One decoded field value, borrowing strings from the input where it can.
enum Value<'de> {
    Null,
    Str(Cow<'de, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// A string that borrows from the JSON input unless it had escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Reads the value of a field of column type `kind`.
fn read_value<'de, A: MapAccess<'de>>(kind: ColumnType, map: &mut A) -> std::result::Result<Value<'de>, A::Error> {
    Ok(match kind {
        ColumnType::TimestampMs | ColumnType::Int64 => map.next_value::<Option<i64>>()?.map_or(Value::Null, Value::Int),
        ColumnType::Int32 => map.next_value::<Option<i32>>()?.map_or(Value::Null, |v| Value::Int(i64::from(v))),
        ColumnType::Float64 => map.next_value::<Option<f64>>()?.map_or(Value::Null, Value::Float),
        ColumnType::Bool => map.next_value::<Option<bool>>()?.map_or(Value::Null, Value::Bool),
        ColumnType::String => map.next_value::<Option<Text<'de>>>()?.map_or(Value::Null, |t| Value::Str(t.0)),
    })
}

/// Accumulates events into one record batch.
pub struct BatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// An empty builder with room for `rows` rows, so a small batch does not carry the
    /// capacity of a large one.
    pub fn with_capacity(rows: usize) -> Self {
        Self { columns: COLUMNS.iter().map(|c| ColumnBuilder::new(c.kind, rows)).collect(), rows: 0 }
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one event.
    pub fn push(&mut self, event: &Event) -> Result<()> {
        let json = serde_json::to_vec(event).map_err(|e| Error::BadEvent(e.to_string()))?;
        self.push_json(&json)
    }

    /// Decodes one event from its JSON form (a log record) straight into the columns, borrowing
    /// strings from the input instead of allocating them: this is the ingest hot path. The row is
    /// read completely before anything is appended, so a record that is not an event adds
    /// nothing.
    pub fn push_json(&mut self, json: &[u8]) -> Result<()> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let row = de.deserialize_map(RowVisitor).and_then(|row| de.end().map(|()| row));
        let row = row.map_err(|e| Error::BadEvent(e.to_string()))?;
        for (builder, value) in self.columns.iter_mut().zip(&row) {
            builder.append(value);
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch of everything added; the builder is empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.rows = 0;
        Ok(RecordBatch::try_new(events_schema(), columns)?)
    }
}

/// Index of each column by JSON field name.
static COLUMN_INDEX: LazyLock<HashMap<&'static str, usize>> =
    LazyLock::new(|| COLUMNS.iter().enumerate().map(|(i, c)| (c.name, i)).collect());

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = Vec<Value<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut row: Vec<Option<Value<'de>>> = (0..COLUMNS.len()).map(|_| None).collect();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match COLUMN_INDEX.get(key.0.as_ref()) {
                Some(&i) if row[i].is_none() => row[i] = Some(read_value(COLUMNS[i].kind, &mut map)?),
                Some(_) => return Err(serde::de::Error::custom(format!("duplicate field `{}`", key.0))),
                // Fields of newer versions are ignored, as the typed decoder did.
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        row.into_iter()
            .zip(COLUMNS)
            .map(|(value, column)| match value {
                Some(Value::Null) | None if !column.nullable => match (column.kind, column.name) {
                    // Flags default to false and the source to "tag", as in `Event`.
                    (ColumnType::Bool, _) => Ok(Value::Bool(false)),
                    (ColumnType::String, "source") => Ok(Value::Str(Cow::Borrowed("tag"))),
                    _ => Err(serde::de::Error::custom(format!("missing field `{}`", column.name))),
                },
                Some(value) => Ok(value),
                None => Ok(Value::Null),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int32Type, TimestampMillisecondType};

    /// The builder's column order must follow `COLUMNS`; check a value of every type lands in
    /// the column of its name.
    #[test]
    fn values_land_in_their_columns() {
        let event = Event {
            time: 1_000,
            client_time: Some(999),
            site: Some("s".into()),
            event_type: "pageView".into(),
            party_id: Some("p".into()),
            source: oriel_core::EventSource::Pixel,
            props: Some("{}".into()),
            country: Some("NL".into()),
            scroll_depth: Some(40),
            viewport_height: Some(700),
            engaged_ms: Some(5),
            pixel_ratio: Some(2.0),
            is_first_in_session: Some(true),
            is_duplicate: true,
            ..Event::default()
        };
        let mut b = BatchBuilder::new();
        b.push(&event).unwrap();
        b.push_json(br#"{"__time":2000,"event_type":"x","is_bot":true,"is_duplicate":false,"is_corrupt":false,"source":"tag"}"#)
            .unwrap();
        let batch = b.finish().unwrap();
        let col = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
        let s = |name: &str, row: usize| col(name).as_string::<i32>().value(row).to_string();
        assert_eq!(col("__time").as_primitive::<TimestampMillisecondType>().value(1), 2000);
        assert_eq!(col("client_time").as_primitive::<TimestampMillisecondType>().value(0), 999);
        assert_eq!(s("site", 0), "s");
        assert_eq!(s("event_type", 1), "x");
        assert_eq!(s("party_id", 0), "p");
        assert_eq!(s("country", 0), "NL");
        assert_eq!(s("props", 0), "{}");
        assert_eq!(s("source", 0), "pixel");
        assert_eq!(s("source", 1), "tag");
        assert_eq!(col("scroll_depth").as_primitive::<Int32Type>().value(0), 40);
        assert_eq!(col("viewport_height").as_primitive::<Int32Type>().value(0), 700);
        assert!(col("is_first_in_session").as_boolean().value(0));
        assert!(col("is_duplicate").as_boolean().value(0));
        assert!(col("is_bot").as_boolean().value(1));
        assert!(col("site").is_null(1));
    }

    #[test]
    fn bad_records_leave_no_partial_row() {
        let mut b = BatchBuilder::new();
        b.push_json(br#"{"__time":1,"event_type":"a"}"#).unwrap();
        for bad in [
            &b"{\"__time\":2,\"event_type\":\"b\",\"site\":5}"[..],
            b"not json",
            b"{\"event_type\":\"no time\"}",
            b"[1]",
            b"{\"__time\":3,\"event_type\":\"x\",\"__time\":4}",
        ] {
            assert!(b.push_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        b.push_json(br#"{"__time":5,"event_type":"c","future_field":{"x":1}}"#).unwrap();
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let types = batch.column(batch.schema().index_of("event_type").unwrap()).as_string::<i32>().clone();
        assert_eq!(types.iter().flatten().collect::<Vec<_>>(), vec!["a", "c"]);
        assert_eq!(batch.column(batch.schema().index_of("source").unwrap()).as_string::<i32>().value(0), "tag");
    }
}
