//! Export of one visitor's or user's events, for data-subject access requests: every column of
//! every event the store holds for them (segments and live buffer), oldest first, as JSON lines
//! or as a Parquet file.

use std::str::FromStr;

use parquet::arrow::ArrowWriter;

use crate::deletion::Selector;
use crate::query::values;
use crate::store::Store;
use crate::{Error, Result};

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per event and line; absent values left out.
    JsonLines,
    /// A Parquet file with the store's schema.
    Parquet,
}

impl FromStr for ExportFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "jsonl" | "json" | "ndjson" => Ok(Self::JsonLines),
            "parquet" => Ok(Self::Parquet),
            other => Err(Error::InvalidQuery(format!("unknown export format {other:?}: use \"jsonl\" or \"parquet\""))),
        }
    }
}

impl ExportFormat {
    /// The media type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::JsonLines => "application/x-ndjson",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::JsonLines => "jsonl",
            Self::Parquet => "parquet",
        }
    }
}

/// A SQL string literal of `text`.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Store {
    /// Every event of the visitor or user `selector` names, oldest first, as a file of `format`.
    /// Bounded like any query result (`store.max_result_mb`).
    pub async fn export(&self, selector: &Selector, format: ExportFormat) -> Result<Vec<u8>> {
        let condition = match (&selector.party_id, &selector.user_id) {
            (Some(p), None) => format!("\"party_id\" = {}", literal(p)),
            (None, Some(u)) => format!("\"user_id\" = {}", literal(u)),
            (Some(p), Some(u)) => format!("(\"party_id\" = {} OR \"user_id\" = {})", literal(p), literal(u)),
            (None, None) => return Err(Error::InvalidQuery("name a party_id or a user_id to export".into())),
        };
        let sql = format!("SELECT * FROM events WHERE {condition} ORDER BY \"__time\", \"event_id\"");
        let result = self.engine().collect(&sql).await?;
        let limit = self.engine().options().max_result_bytes;
        let bytes = match format {
            ExportFormat::JsonLines => {
                let mut out = Vec::new();
                for row in values::objects(&result) {
                    serde_json::to_writer(&mut out, &row).map_err(|e| Error::Internal(e.to_string()))?;
                    out.push(b'\n');
                }
                out
            }
            ExportFormat::Parquet => {
                let mut writer = ArrowWriter::try_new(Vec::new(), result.schema.clone(), None)?;
                for batch in &result.batches {
                    writer.write(batch)?;
                }
                writer.into_inner()?
            }
        };
        if bytes.len() as u64 > limit {
            return Err(Error::InvalidQuery(format!(
                "the export is {} bytes, more than store.max_result_mb allows ({limit} bytes); raise it for this export",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_literals() {
        assert_eq!("jsonl".parse::<ExportFormat>().unwrap(), ExportFormat::JsonLines);
        assert_eq!("parquet".parse::<ExportFormat>().unwrap(), ExportFormat::Parquet);
        assert!("csv".parse::<ExportFormat>().unwrap_err().to_string().contains("\"jsonl\" or \"parquet\""));
        assert_eq!(literal("o'brien"), "'o''brien'");
    }
}
