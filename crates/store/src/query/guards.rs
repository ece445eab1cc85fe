//! Caps on what one SQL expression may allocate.
//!
//! DataFusion's memory pool sees sorts, joins and aggregations, not scalar functions:
//! `repeat('x', 2147483647)` allocates 2 GiB in one call, and nested `concat` or `||` doubles a
//! string at every level. So the string functions whose output can outgrow their input are
//! registered again, wrapped in [`Guarded`], which computes an upper bound of the output from
//! the arguments *before* calling the function and refuses with a clear error past
//! [`MAX_VALUE_BYTES`] per value or [`MAX_CALL_BYTES`] per call (a constant value counts once
//! per row it is repeated on). `levenshtein`, whose work grows with the product of its inputs
//! and cannot be interrupted once called, is bounded the same way in operations. The `||`
//! operator is rewritten to a guarded function by [`GuardStringConcat`]. Array functions (which
//! can build arrays from a count or double them at every step) and the table functions are not
//! registered at all: no client of Oriel uses them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// Largest string one function call may produce for one row.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;
/// Largest total one function call may produce over a batch.
pub(crate) const MAX_CALL_BYTES: usize = 256 << 20;

/// Most character pairs `levenshtein` may compare in one value, and in one call.
const MAX_VALUE_OPS: usize = 1 << 24;
const MAX_CALL_OPS: usize = 1 << 30;

/// The functions that are not registered: every array function.
pub(crate) fn unregistered_functions() -> Vec<String> {
    datafusion::functions_nested::all_default_nested_functions().iter().map(|f| f.name().to_string()).collect()
}

/// How a guarded function's output size is bounded by its arguments, per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bound {
    /// `repeat(s, n)`: `len(s) × n`.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: `n` characters of at most four bytes.
    Pad,
    /// `replace(s, from, to)`: every occurrence of `from` (or every gap, when empty) becomes `to`.
    Replace,
    /// `regexp_replace(s, pattern, replacement [, flags])`: every match (at most one per gap)
    /// becomes the replacement, which may copy the whole input per group reference.
    RegexpReplace,
    /// `concat(a, b, …)` and `||`: the sum of the arguments.
    Concat,
    /// `concat_ws(sep, a, b, …)`: the arguments plus a separator between each.
    ConcatWs,
    /// `encode(s, format)`: hex doubles the input; base64 is smaller.
    Encode,
    /// `overlay(s placing p …)`: at most the input plus the placed string.
    Overlay,
    /// `levenshtein(a, b)`: work, not bytes: one operation per pair of characters.
    Levenshtein,
}

/// A function wrapped with a size check before each call.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Guarded {
    inner: Arc<ScalarUDF>,
    bound: Bound,
}

impl Guarded {
    /// `inner` checked with `bound`.
    pub(crate) fn udf(inner: Arc<ScalarUDF>, bound: Bound) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self { inner, bound })
    }
}

/// Length in bytes of the string argument at `row`, 0 for null or non-string values.
fn text_len(arg: &ColumnarValue, row: usize) -> usize {
    match arg {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => v.len(),
            ScalarValue::Binary(Some(v)) | ScalarValue::LargeBinary(Some(v)) | ScalarValue::BinaryView(Some(v)) => v.len(),
            _ => 0,
        },
        ColumnarValue::Array(a) if a.is_null(row) => 0,
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).len(),
            DataType::LargeUtf8 => a.as_string::<i64>().value(row).len(),
            DataType::Utf8View => a.as_string_view().value(row).len(),
            DataType::Binary => a.as_binary::<i32>().value(row).len(),
            DataType::LargeBinary => a.as_binary::<i64>().value(row).len(),
            DataType::BinaryView => a.as_binary_view().value(row).len(),
            _ => 0,
        },
    }
}

/// The string argument at `row`, when it is one.
fn text(arg: &ColumnarValue, row: usize) -> Option<String> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v)) => v.clone(),
        ColumnarValue::Array(a) if !a.is_null(row) => {
            let s = cast(&a.slice(row, 1), &DataType::Utf8).ok()?;
            Some(s.as_string::<i32>().value(0).to_string())
        }
        _ => None,
    }
}

/// The integer argument at `row`, 0 for null.
fn count(arg: &ColumnarValue, row: usize) -> i64 {
    let scalar = match arg {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, row).unwrap_or(ScalarValue::Null),
    };
    match scalar.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) => n,
        _ => 0,
    }
}

impl Bound {
    /// An upper bound of the output at `row`, in bytes.
    fn at(self, args: &[ColumnarValue], row: usize) -> usize {
        let len = |i: usize| args.get(i).map_or(0, |a| text_len(a, row));
        let n = |i: usize| args.get(i).map_or(0, |a| count(a, row)).max(0) as usize;
        match self {
            Self::Repeat => len(0).saturating_mul(n(1)),
            // Padding counts characters, which may take four bytes each, and keeps the input.
            Self::Pad => n(1).saturating_mul(4).saturating_add(len(0)),
            Self::Replace => {
                let (s, from, to) = (len(0), len(1), len(2));
                let occurrences = s.checked_div(from).unwrap_or(s + 1);
                s.saturating_add(occurrences.saturating_mul(to))
            }
            Self::RegexpReplace => {
                let s = len(0);
                let replacement = args.get(2).and_then(|a| text(a, row)).unwrap_or_default();
                let references = replacement.matches(['$', '\\']).count();
                let per_match = replacement.len().saturating_add(references.saturating_mul(s));
                s.saturating_add((s + 1).saturating_mul(per_match))
            }
            Self::Concat => (0..args.len()).map(len).fold(0usize, usize::saturating_add),
            Self::ConcatWs => {
                let parts = args.len().saturating_sub(1);
                let body = (1..args.len()).map(len).fold(0usize, usize::saturating_add);
                body.saturating_add(len(0).saturating_mul(parts.saturating_sub(1)))
            }
            Self::Encode => len(0).saturating_mul(2),
            Self::Overlay => len(0).saturating_add(len(1)),
            Self::Levenshtein => len(0).saturating_mul(len(1)),
        }
    }

    /// The caps per value and per call, and what they count.
    fn caps(self) -> (usize, usize, &'static str) {
        match self {
            Self::Levenshtein => (MAX_VALUE_OPS, MAX_CALL_OPS, "character comparisons"),
            _ => (MAX_VALUE_BYTES, MAX_CALL_BYTES, "bytes"),
        }
    }
}

/// Refuses a call whose output (or work) could exceed the caps. With only constant arguments
/// the one value is repeated on every row of the batch, and counts that many times.
fn check(name: &str, bound: Bound, args: &[ColumnarValue], rows: usize) -> DfResult<()> {
    let (per_value, per_call, unit) = bound.caps();
    let any_array = args.iter().any(|a| matches!(a, ColumnarValue::Array(_)));
    let distinct = if any_array { rows } else { 1 };
    let repeats = if any_array { 1 } else { rows.max(1) };
    let mut total = 0usize;
    for row in 0..distinct {
        let cost = bound.at(args, row);
        if cost > per_value {
            return exec_err!("{name}() would need up to {cost} {unit} for one value; the limit is {per_value}");
        }
        total = total.saturating_add(cost.saturating_mul(repeats));
        if total > per_call {
            return exec_err!("{name}() would need more than {per_call} {unit} for one batch of rows");
        }
    }
    Ok(())
}

impl ScalarUDFImpl for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn display_name(&self, args: &[Expr]) -> DfResult<String> {
        self.inner.inner().schema_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn with_updated_config(&self, _config: &ConfigOptions) -> Option<ScalarUDF> {
        None
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        check(self.inner.name(), self.bound, &args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }
}

/// `a || b` for strings, with SQL's null rule (null if either is null) and the size check.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct StringConcat {
    signature: Signature,
}

impl StringConcat {
    /// The function that replaces `||`.
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for StringConcat {
    fn name(&self) -> &str {
        "oriel_string_concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        check("||", Bound::Concat, &args.args, args.number_rows)?;
        let any_array = args.args.iter().any(|a| matches!(a, ColumnarValue::Array(_)));
        let rows = if any_array { args.number_rows } else { 1 };
        let arrays: Vec<ArrayRef> =
            args.args.iter().map(|a| cast(&a.to_array(rows)?, &DataType::Utf8).map_err(Into::into)).collect::<DfResult<_>>()?;
        let (left, right) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            if left.is_null(row) || right.is_null(row) {
                out.append_null();
            } else {
                out.append_value(format!("{}{}", left.value(row), right.value(row)));
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        if any_array {
            Ok(ColumnarValue::Array(array))
        } else {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
        }
    }
}

/// Rewrites every string `||` to [`StringConcat`], after type coercion made both sides strings
/// (array `||` has become `array_concat` by then).
#[derive(Debug)]
pub(crate) struct GuardStringConcat {
    concat: Arc<ScalarUDF>,
}

impl GuardStringConcat {
    /// The rule.
    pub(crate) fn new() -> Self {
        Self { concat: Arc::new(StringConcat::udf()) }
    }
}

impl AnalyzerRule for GuardStringConcat {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            // The rewritten expressions keep their names, so the plan's schema still matches
            // them (`a || b || c` failed in the optimizer otherwise).
            let names = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|expr| {
                let saved = names.save(&expr);
                expr.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right }) => Ok(Transformed::yes(
                        Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&self.concat), vec![*left, *right])),
                    )),
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| saved.restore(e)))
            })?;
            if rewritten.transformed { rewritten.map_data(|plan| plan.recompute_schema()) } else { Ok(rewritten) }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "oriel_guard_string_concat"
    }
}

/// The functions registered again with a guard, with the bound of each.
pub(crate) fn guarded_functions() -> Vec<ScalarUDF> {
    use datafusion::functions::{core, encoding, regex, string, unicode};
    vec![
        Guarded::udf(string::repeat(), Bound::Repeat),
        Guarded::udf(unicode::lpad(), Bound::Pad),
        Guarded::udf(unicode::rpad(), Bound::Pad),
        Guarded::udf(string::replace(), Bound::Replace),
        Guarded::udf(regex::regexp_replace(), Bound::RegexpReplace),
        Guarded::udf(string::concat(), Bound::Concat),
        Guarded::udf(string::concat_ws(), Bound::ConcatWs),
        Guarded::udf(encoding::encode(), Bound::Encode),
        Guarded::udf(core::overlay(), Bound::Overlay),
        Guarded::udf(string::levenshtein(), Bound::Levenshtein),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.into())))
    }

    fn n(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    #[test]
    fn bounds_cover_the_worst_case() {
        assert_eq!(Bound::Repeat.at(&[s("ab"), n(3)], 0), 6);
        assert_eq!(Bound::Repeat.at(&[s("ab"), n(-3)], 0), 0);
        assert_eq!(Bound::Pad.at(&[s("ab"), n(10)], 0), 42);
        assert_eq!(Bound::Replace.at(&[s("aaaa"), s("a"), s("xyz")], 0), 16);
        assert_eq!(Bound::Replace.at(&[s("ab"), s(""), s("x")], 0), 5);
        assert_eq!(Bound::Concat.at(&[s("ab"), s("cde")], 0), 5);
        assert_eq!(Bound::ConcatWs.at(&[s("--"), s("a"), s("b"), s("c")], 0), 7);
        assert_eq!(Bound::RegexpReplace.at(&[s("abc"), s("."), s("")], 0), 3);
        assert!(Bound::RegexpReplace.at(&[s("abc"), s("(.)"), s("$1$1")], 0) >= "aabbcc".len());
    }

    #[test]
    fn a_call_past_the_cap_is_refused_before_it_runs() {
        let err = check("repeat", Bound::Repeat, &[s("x"), n(2_147_483_647)], 1).unwrap_err().to_string();
        assert!(err.contains("repeat() would need up to 2147483647 bytes for one value"), "{err}");
        let err = check("repeat", Bound::Repeat, &[s("x"), n(900_000)], 8192).unwrap_err().to_string();
        assert!(err.contains("for one batch of rows"), "a constant repeated on every row counts per row: {err}");
        let long = "x".repeat(100_000);
        assert!(check("levenshtein", Bound::Levenshtein, &[s(&long), s(&long)], 1).is_err());
        assert!(check("levenshtein", Bound::Levenshtein, &[s("kitten"), s("sitting")], 8192).is_ok());
        assert!(check("repeat", Bound::Repeat, &[s("x"), n(1000)], 1).is_ok());
        let column = ColumnarValue::Array(Arc::new(datafusion::arrow::array::StringArray::from(vec!["x".repeat(1000); 1000])));
        let err = check("repeat", Bound::Repeat, &[column, n(1000)], 1000).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }
}
