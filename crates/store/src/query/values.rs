//! Query results as JSON: column descriptions and rows of plain JSON values.
//!
//! Timestamps become ISO-8601 strings with milliseconds and `Z` (as Druid returns them), integers
//! and floats JSON numbers (NaN and infinities `null`), everything else its natural form.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::arrow::datatypes::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use serde_json::{Map, Value, json};

use crate::query::QueryResult;

/// The SQL type name of an Arrow type, as Druid reports it.
pub(crate) fn sql_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "INTEGER",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT",
        DataType::Float32 => "FLOAT",
        DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => "VARCHAR",
        DataType::List(_) | DataType::LargeList(_) => "ARRAY",
        _ => "OTHER",
    }
}

/// A time (ms since the epoch) as Druid writes it, `2026-11-27T09:00:00.000Z`; null when out
/// of range.
pub fn iso(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms).map_or(Value::Null, |t| json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
}

/// One value of `array` at `row` as JSON.
pub fn value(array: &ArrayRef, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    let float = |f: f64| if f.is_finite() { json!(f) } else { Value::Null };
    match array.data_type() {
        DataType::Boolean => json!(array.as_boolean().value(row)),
        DataType::Int8 => json!(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => json!(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => json!(array.as_string::<i64>().value(row)),
        DataType::Utf8View => json!(array.as_string_view().value(row)),
        DataType::Timestamp(unit, _) => iso(match unit {
            TimeUnit::Second => match array.as_primitive::<TimestampSecondType>().value(row).checked_mul(1000) {
                Some(ms) => ms,
                None => return Value::Null,
            },
            TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
            TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row).div_euclid(1000),
            TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row).div_euclid(1_000_000),
        }),
        DataType::Date32 => iso(i64::from(array.as_primitive::<Date32Type>().value(row)) * 86_400_000),
        _ => {
            // Decimals, lists, dictionaries and the rest: Arrow's own display form.
            let formatted = datafusion::arrow::util::display::array_value_to_string(array, row).unwrap_or_default();
            match array.data_type() {
                DataType::Decimal128(..) | DataType::Decimal256(..) => formatted.parse::<f64>().map_or(Value::Null, float),
                _ => json!(formatted),
            }
        }
    }
}

/// `{"name", "type"}` for each column of `schema`.
pub fn columns(schema: &SchemaRef) -> Vec<Value> {
    schema.fields().iter().map(|f: &std::sync::Arc<Field>| json!({ "name": f.name(), "type": sql_type(f.data_type()) })).collect()
}

/// The rows of one batch, each an array of values.
pub fn rows_of(batch: &RecordBatch) -> impl Iterator<Item = Value> + '_ {
    (0..batch.num_rows()).map(move |row| Value::Array(batch.columns().iter().map(|c| value(c, row)).collect()))
}

/// Every row as an array of values.
pub fn rows(result: &QueryResult) -> Vec<Value> {
    result.batches.iter().flat_map(rows_of).collect()
}

/// Every row as an object keyed by column name.
pub fn objects(result: &QueryResult) -> Vec<Value> {
    let names: Vec<String> = result.schema.fields().iter().map(|f| f.name().clone()).collect();
    rows(result)
        .into_iter()
        .map(|row| match row {
            Value::Array(values) => Value::Object(names.iter().cloned().zip(values).collect::<Map<_, _>>()),
            other => other,
        })
        .collect()
}
