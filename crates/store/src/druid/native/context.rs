//! The columns a native query can name, as expressions over its input, and what kind each is.
//!
//! Row-level parts (filters, dimensions, aggregator inputs, virtual columns) see the input's
//! columns; post-aggregators and `having` see the aggregated results. Native queries see
//! `__time` and other timestamps as milliseconds and booleans as the text `true`/`false`, as
//! `segmentMetadata` reports them; a column that does not exist is null, as in Druid.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{Expr, ScalarUDF, cast, lit, try_cast, when};
use datafusion::prelude::ident;

use crate::druid::native::expression::{Ty, Typed};
use crate::druid::types::ColumnKind;
use crate::{Error, Result};

/// What expressions can ask of the query being translated.
pub(crate) trait Resolver {
    /// The column `name` as a value of Druid's expression language.
    fn expression_column(&self, name: &str) -> Result<Typed>;
    /// A scalar function of the session.
    fn udf(&self, name: &str) -> Result<Arc<ScalarUDF>>;
}

/// A column a query can name.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// How to compute it from the input.
    pub(crate) expr: Expr,
    /// What it holds.
    pub(crate) kind: ColumnKind,
}

/// The columns of one level of a query: the input rows, or the aggregated results.
pub(crate) struct Columns<'a> {
    registry: &'a dyn FunctionRegistry,
    columns: HashMap<String, Column>,
}

impl<'a> Columns<'a> {
    /// The columns of a plan's output `schema`.
    pub(crate) fn of_schema(registry: &'a dyn FunctionRegistry, schema: &DFSchema) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), Column { expr: ident(f.name()), kind: crate::druid::types::column_kind(f.data_type()) }))
            .collect();
        Self { registry, columns }
    }

    /// Columns with explicit kinds (aggregated results).
    pub(crate) fn with(registry: &'a dyn FunctionRegistry, columns: impl IntoIterator<Item = (String, Column)>) -> Self {
        Self { registry, columns: columns.into_iter().collect() }
    }

    /// Other columns, with the same functions.
    pub(crate) fn derive(&self, columns: impl IntoIterator<Item = (String, Column)>) -> Columns<'a> {
        Columns { registry: self.registry, columns: columns.into_iter().collect() }
    }

    /// Adds (or replaces) a column.
    pub(crate) fn insert(&mut self, name: String, column: Column) {
        self.columns.insert(name, column);
    }

    /// The column `name`, or `None` when the input has no such column.
    pub(crate) fn get(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }

    /// The session's scalar function `name`.
    pub(crate) fn function(&self, name: &str) -> Result<Arc<ScalarUDF>> {
        self.registry.udf(name).map_err(|e| Error::Internal(format!("function {name}: {e}")))
    }

    /// The column as a timestamp (for time columns; `None` otherwise).
    pub(crate) fn timestamp(&self, name: &str) -> Option<Expr> {
        self.get(name).filter(|c| c.kind == ColumnKind::Time).map(|c| c.expr.clone())
    }

    /// The column as Druid compares dimension values: text, null when absent. Times are their
    /// milliseconds, booleans `true`/`false`.
    pub(crate) fn text(&self, name: &str) -> Result<Expr> {
        let Some(column) = self.get(name) else { return Ok(lit(ScalarValue::Utf8(None))) };
        Ok(match column.kind {
            ColumnKind::String => column.expr.clone(),
            ColumnKind::Time => cast(self.millis(column.expr.clone())?, DataType::Utf8),
            ColumnKind::Bool => bool_text(column.expr.clone()),
            ColumnKind::Long | ColumnKind::Double => cast(column.expr.clone(), DataType::Utf8),
        })
    }

    /// The column as a number (text parsed, null when it is not one); times in milliseconds.
    pub(crate) fn number(&self, name: &str) -> Result<Expr> {
        let Some(column) = self.get(name) else { return Ok(lit(ScalarValue::Float64(None))) };
        Ok(match column.kind {
            ColumnKind::Long | ColumnKind::Double => column.expr.clone(),
            ColumnKind::Time => self.millis(column.expr.clone())?,
            ColumnKind::Bool => cast(column.expr.clone(), DataType::Int64),
            ColumnKind::String => try_cast(column.expr.clone(), DataType::Float64),
        })
    }

    /// Milliseconds of a timestamp expression.
    pub(crate) fn millis(&self, timestamp: Expr) -> Result<Expr> {
        Ok(self.function("timestamp_to_millis")?.call(vec![timestamp]))
    }
}

/// A boolean as the text `true`/`false` (null stays null).
pub(crate) fn bool_text(expr: Expr) -> Expr {
    when(expr.clone().is_true(), lit("true")).when(expr.is_false(), lit("false")).end().unwrap_or_else(|_| lit("false"))
}

impl Resolver for Columns<'_> {
    fn expression_column(&self, name: &str) -> Result<Typed> {
        let Some(column) = self.get(name) else { return Ok(Typed { expr: lit(ScalarValue::Null), ty: Ty::Null }) };
        Ok(match column.kind {
            ColumnKind::Time => Typed { expr: self.millis(column.expr.clone())?, ty: Ty::Long },
            ColumnKind::Long => Typed { expr: column.expr.clone(), ty: Ty::Long },
            ColumnKind::Double => Typed { expr: column.expr.clone(), ty: Ty::Double },
            ColumnKind::Bool => Typed { expr: bool_text(column.expr.clone()), ty: Ty::Text },
            ColumnKind::String => Typed { expr: column.expr.clone(), ty: Ty::Text },
        })
    }

    fn udf(&self, name: &str) -> Result<Arc<ScalarUDF>> {
        self.function(name)
    }
}
