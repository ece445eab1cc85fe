//! How Druid names the types of Oriel's columns: SQL types with their JDBC codes, and the
//! native types of native queries and result headers.

use datafusion::arrow::datatypes::DataType;

/// A column's type as Druid SQL reports it: the SQL name and the `java.sql.Types` code.
pub fn sql_type(data_type: &DataType) -> (&'static str, i64) {
    match data_type {
        DataType::Timestamp(..) => ("TIMESTAMP", 93),
        DataType::Date32 | DataType::Date64 => ("DATE", 91),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => ("INTEGER", 4),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ("BIGINT", -5),
        DataType::Float32 => ("FLOAT", 6),
        DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => ("DOUBLE", 8),
        DataType::Boolean => ("BOOLEAN", 16),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => ("VARCHAR", 12),
        DataType::List(_) | DataType::LargeList(_) => ("ARRAY", 2003),
        _ => ("OTHER", 1111),
    }
}

/// The native (runtime) type of a column in a SQL result header: timestamps and booleans are
/// `LONG`, as in Druid.
pub fn native_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "LONG",
        DataType::Float32 => "FLOAT",
        DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => "DOUBLE",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => "STRING",
        DataType::List(_) | DataType::LargeList(_) => "ARRAY<STRING>",
        _ => "COMPLEX<json>",
    }
}

/// The type of an `events` column in native queries and `segmentMetadata`: `__time` and the
/// other timestamps are `LONG` milliseconds, booleans are the strings `true`/`false` (so they
/// can be split on), numbers `LONG` or `DOUBLE`, text `STRING`.
pub fn column_kind(data_type: &DataType) -> ColumnKind {
    match data_type {
        DataType::Timestamp(..) => ColumnKind::Time,
        DataType::Boolean => ColumnKind::Bool,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => ColumnKind::Long,
        DataType::Float32 | DataType::Float64 => ColumnKind::Double,
        _ => ColumnKind::String,
    }
}

/// What kind of value a column holds, seen from native queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Milliseconds since the epoch.
    Time,
    /// Whole numbers.
    Long,
    /// Floating point.
    Double,
    /// `true` or `false`, shown as text.
    Bool,
    /// Text.
    String,
}

impl ColumnKind {
    /// Druid's native type name.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::Time | Self::Long => "LONG",
            Self::Double => "DOUBLE",
            Self::Bool | Self::String => "STRING",
        }
    }
}
