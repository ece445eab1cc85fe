//! The Arrow schema of the `events` datasource, and the builder that turns event JSON from the
//! log into Arrow record batches.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use oriel_core::Event;
use oriel_core::event::{COLUMNS, ColumnType};

use crate::{Error, Result};

/// The Arrow type of a logical column type. Timestamps are UTC milliseconds without a zone,
/// which is what Druid's `__time` is and what SQL literals compare against.
pub fn arrow_type(kind: ColumnType) -> DataType {
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
    Arc::new(Schema::new(
        COLUMNS.iter().map(|c| Field::new(c.name, arrow_type(c.kind), c.nullable)).collect::<Vec<_>>(),
    ))
});

/// The schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// Index of `__time` in [`events_schema`].
pub const TIME: usize = 0;

/// Accumulates events into one record batch.
pub struct BatchBuilder {
    time: TimestampMillisecondBuilder,
    client_time: TimestampMillisecondBuilder,
    strings: Vec<StringBuilder>,
    int32: Vec<Int32Builder>,
    int64: Vec<Int64Builder>,
    float64: Vec<Float64Builder>,
    bools: Vec<BooleanBuilder>,
    rows: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! each_string {
    ($e:expr) => {
        [
            $e.site.as_deref(),
            $e.event_id.as_deref(),
            Some($e.event_type.as_str()),
            $e.party_id.as_deref(),
            $e.session_id.as_deref(),
            $e.page_view_id.as_deref(),
            $e.user_id.as_deref(),
            $e.url.as_deref(),
            $e.host.as_deref(),
            $e.path.as_deref(),
            $e.query.as_deref(),
            $e.title.as_deref(),
            $e.referrer.as_deref(),
            $e.referrer_host.as_deref(),
            $e.channel.as_deref(),
            $e.utm_source.as_deref(),
            $e.utm_medium.as_deref(),
            $e.utm_campaign.as_deref(),
            $e.utm_term.as_deref(),
            $e.utm_content.as_deref(),
            $e.browser.as_deref(),
            $e.browser_version.as_deref(),
            $e.os.as_deref(),
            $e.os_version.as_deref(),
            $e.device_type.as_deref(),
            $e.language.as_deref(),
            $e.country.as_deref(),
            $e.region.as_deref(),
            $e.city.as_deref(),
            $e.ip.as_deref(),
            $e.props.as_deref(),
            Some($e.source.as_str()),
        ]
    };
}

const STRINGS: usize = 32;

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            time: TimestampMillisecondBuilder::new(),
            client_time: TimestampMillisecondBuilder::new(),
            strings: (0..STRINGS).map(|_| StringBuilder::new()).collect(),
            int32: (0..5).map(|_| Int32Builder::new()).collect(),
            int64: (0..1).map(|_| Int64Builder::new()).collect(),
            float64: (0..1).map(|_| Float64Builder::new()).collect(),
            bools: (0..5).map(|_| BooleanBuilder::new()).collect(),
            rows: 0,
        }
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
    pub fn push(&mut self, e: &Event) {
        self.time.append_value(e.time);
        self.client_time.append_option(e.client_time);
        for (builder, value) in self.strings.iter_mut().zip(each_string!(e)) {
            builder.append_option(value);
        }
        for (builder, value) in self.int32.iter_mut().zip([e.screen_width, e.screen_height, e.viewport_width, e.viewport_height, e.scroll_depth]) {
            builder.append_option(value);
        }
        self.int64[0].append_option(e.engaged_ms);
        self.float64[0].append_option(e.pixel_ratio);
        for (builder, value) in
            self.bools.iter_mut().zip([e.is_new_party, e.is_first_in_session, Some(e.is_bot), Some(e.is_duplicate), Some(e.is_corrupt)])
        {
            builder.append_option(value);
        }
        self.rows += 1;
    }

    /// Decodes one event from its JSON form (a log record) and adds it.
    pub fn push_json(&mut self, json: &[u8]) -> Result<()> {
        let event: Event = serde_json::from_slice(json).map_err(|e| Error::BadEvent(e.to_string()))?;
        self.push(&event);
        Ok(())
    }

    /// The batch of everything added; the builder is empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut strings = self.strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut int32 = self.int32.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut bools = self.bools.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut next = |kind: ColumnType, name: &str| -> Option<ArrayRef> {
            Some(match (kind, name) {
                (ColumnType::TimestampMs, "__time") => Arc::new(self.time.finish()),
                (ColumnType::TimestampMs, _) => Arc::new(self.client_time.finish()),
                (ColumnType::String, _) => strings.next()?,
                (ColumnType::Int32, _) => int32.next()?,
                (ColumnType::Int64, _) => Arc::new(self.int64[0].finish()),
                (ColumnType::Float64, _) => Arc::new(self.float64[0].finish()),
                (ColumnType::Bool, _) => bools.next()?,
            })
        };
        let mut columns = Vec::with_capacity(COLUMNS.len());
        for c in COLUMNS {
            columns.push(next(c.kind, c.name).ok_or_else(|| Error::Internal("column list and builder disagree".into()))?);
        }
        self.rows = 0;
        Ok(RecordBatch::try_new(events_schema(), columns)?)
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
        b.push(&event);
        b.push_json(br#"{"__time":2000,"event_type":"x","is_bot":true,"is_duplicate":false,"is_corrupt":false,"source":"tag"}"#).unwrap();
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
}
