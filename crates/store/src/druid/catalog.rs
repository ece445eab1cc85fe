//! Druid's `INFORMATION_SCHEMA`, as pydruid's SQLAlchemy dialect and Superset read it.
//!
//! Druid's identifiers are case-sensitive and its system tables and columns are upper case
//! (`INFORMATION_SCHEMA.COLUMNS.JDBC_TYPE`), unlike DataFusion's own lower-case
//! `information_schema`, which Oriel's SQL keeps. So Druid's three tables are a schema of their
//! own, `INFORMATION_SCHEMA`, that only a case-sensitive (Druid SQL) query reaches. Their
//! content is fixed: Oriel has one datasource with a fixed schema. `IS_NULLABLE` is `YES`/`NO`
//! and `COLUMN_DEFAULT` is `''`, never NULL, because pydruid calls string methods on both.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::SessionContext;

use crate::druid::types::sql_type;
use crate::druid::{CATALOG, DATASOURCE, SCHEMA};
use crate::schema::events_schema;
use crate::{Error, Result};

/// The schema name of Druid's system tables.
pub const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";

/// One cell of a system table.
enum Cell {
    Text(Option<String>),
    Number(Option<i64>),
}

fn text(value: &str) -> Cell {
    Cell::Text(Some(value.to_string()))
}

/// A table of `columns` (name, whether numeric) holding `rows`.
fn table(columns: &[(&str, bool)], rows: Vec<Vec<Cell>>) -> Result<(SchemaRef, RecordBatch)> {
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, numeric)| Field::new(*name, if *numeric { DataType::Int64 } else { DataType::Utf8 }, true))
            .collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, (_, numeric)) in columns.iter().enumerate() {
        let array: ArrayRef = if *numeric {
            Arc::new(rows.iter().map(|r| if let Cell::Number(n) = &r[i] { *n } else { None }).collect::<Int64Array>())
        } else {
            Arc::new(rows.iter().map(|r| if let Cell::Text(t) = &r[i] { t.clone() } else { None }).collect::<StringArray>())
        };
        arrays.push(array);
    }
    Ok((Arc::clone(&schema), RecordBatch::try_new(schema, arrays)?))
}

const SCHEMATA: &[(&str, bool)] = &[
    ("CATALOG_NAME", false),
    ("SCHEMA_NAME", false),
    ("SCHEMA_OWNER", false),
    ("DEFAULT_CHARACTER_SET_CATALOG", false),
    ("DEFAULT_CHARACTER_SET_SCHEMA", false),
    ("DEFAULT_CHARACTER_SET_NAME", false),
    ("SQL_PATH", false),
];

const TABLES: &[(&str, bool)] = &[
    ("TABLE_CATALOG", false),
    ("TABLE_SCHEMA", false),
    ("TABLE_NAME", false),
    ("TABLE_TYPE", false),
    ("IS_JOINABLE", false),
    ("IS_BROADCAST", false),
];

const COLUMNS: &[(&str, bool)] = &[
    ("TABLE_CATALOG", false),
    ("TABLE_SCHEMA", false),
    ("TABLE_NAME", false),
    ("COLUMN_NAME", false),
    ("ORDINAL_POSITION", true),
    ("COLUMN_DEFAULT", false),
    ("IS_NULLABLE", false),
    ("DATA_TYPE", false),
    ("CHARACTER_MAXIMUM_LENGTH", true),
    ("CHARACTER_OCTET_LENGTH", true),
    ("NUMERIC_PRECISION", true),
    ("NUMERIC_PRECISION_RADIX", true),
    ("NUMERIC_SCALE", true),
    ("DATETIME_PRECISION", true),
    ("CHARACTER_SET_NAME", false),
    ("COLLATION_NAME", false),
    ("JDBC_TYPE", true),
];

/// The tables Druid lists, with their schemas: `(schema, name, type, columns)`.
fn listed_tables() -> Result<Vec<(&'static str, String, &'static str, SchemaRef)>> {
    let mut tables = vec![(SCHEMA, DATASOURCE.to_string(), "TABLE", events_schema())];
    for (name, columns) in [("COLUMNS", COLUMNS), ("SCHEMATA", SCHEMATA), ("TABLES", TABLES)] {
        tables.push((INFORMATION_SCHEMA, name.to_string(), "SYSTEM_TABLE", table(columns, Vec::new())?.0));
    }
    Ok(tables)
}

fn column_rows(tables: &[(&str, String, &str, SchemaRef)]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (schema, name, _, columns) in tables {
        for (i, field) in columns.fields().iter().enumerate() {
            let (data_type, jdbc) = sql_type(field.data_type());
            let numeric = matches!(data_type, "BIGINT" | "INTEGER" | "DOUBLE" | "FLOAT");
            let (precision, radix, scale) = match data_type {
                "BIGINT" => (Some(19), Some(10), Some(0)),
                "INTEGER" => (Some(10), Some(10), Some(0)),
                "DOUBLE" => (Some(15), Some(10), None),
                "FLOAT" => (Some(7), Some(10), None),
                _ => (None, None, None),
            };
            let is_text = data_type == "VARCHAR";
            rows.push(vec![
                text(CATALOG),
                text(schema),
                text(name),
                text(field.name()),
                Cell::Number(Some(i as i64 + 1)),
                text(""),
                text(if field.is_nullable() { "YES" } else { "NO" }),
                text(data_type),
                Cell::Number(is_text.then_some(i64::from(i32::MAX))),
                Cell::Number(is_text.then_some(i64::from(i32::MAX))),
                Cell::Number(if numeric { precision } else { None }),
                Cell::Number(if numeric { radix } else { None }),
                Cell::Number(if numeric { scale } else { None }),
                Cell::Number((data_type == "TIMESTAMP").then_some(3)),
                Cell::Text(is_text.then(|| "UTF-16LE".to_string())),
                Cell::Text(is_text.then(|| "UTF-16LE$en_US$primary".to_string())),
                Cell::Number(Some(jdbc)),
            ]);
        }
    }
    rows
}

/// Registers Druid's `INFORMATION_SCHEMA` in the catalog of `ctx`.
pub(crate) fn register(ctx: &SessionContext) -> Result<()> {
    let catalog = ctx.catalog(CATALOG).ok_or_else(|| Error::Internal(format!("catalog {CATALOG} is missing")))?;
    let provider = MemorySchemaProvider::new();
    let tables = listed_tables()?;
    let schemata = vec![
        vec![
            text(CATALOG),
            text(SCHEMA),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
        ],
        vec![
            text(CATALOG),
            text(INFORMATION_SCHEMA),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
            Cell::Text(None),
        ],
    ];
    let table_rows = tables
        .iter()
        .map(|(schema, name, kind, _)| vec![text(CATALOG), text(schema), text(name), text(kind), text("NO"), text("NO")])
        .collect();
    for (name, columns, rows) in
        [("SCHEMATA", SCHEMATA, schemata), ("TABLES", TABLES, table_rows), ("COLUMNS", COLUMNS, column_rows(&tables))]
    {
        let (schema, batch) = table(columns, rows)?;
        provider.register_table(name.to_string(), Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))?;
    }
    catalog.register_schema(INFORMATION_SCHEMA, Arc::new(provider))?;
    Ok(())
}
