//! `prop(props, key)`: one custom property of an event, as text.
//!
//! `props` holds an event's custom properties as a JSON object (bounded in size, depth and
//! entries by the collector). A string property is itself, a number or boolean its JSON text, an
//! object or array its JSON text, and a missing key or JSON `null` is NULL.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use serde_json::Value;

use crate::query::functions::constant_string;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Prop {
    signature: Signature,
}

/// The `prop` function.
pub(crate) fn prop() -> ScalarUDF {
    ScalarUDF::new_from_impl(Prop { signature: Signature::user_defined(Volatility::Immutable) })
}

/// Property `key` of the JSON object `props`.
fn lookup(props: &str, key: &str) -> Option<String> {
    // Only the one key is kept while parsing would be faster; properties are small (capped by
    // collector.max_props_bytes), so a whole parse is fine.
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(props) else { return None };
    match map.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl ScalarUDFImpl for Prop {
    fn name(&self) -> &str {
        "prop"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        if args.len() != 2 {
            return plan_err!("PROP takes (props, key), not {} arguments", args.len());
        }
        Ok(vec![DataType::Utf8, DataType::Utf8])
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        // One key for every row: a key from a column would be read from its first row only.
        if !matches!(args.args.get(1), Some(ColumnarValue::Scalar(_))) {
            return exec_err!("PROP(props, key) needs a constant key, such as PROP(props, 'plan')");
        }
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(key) = constant_string(&arrays, 1, "prop")? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let props = cast(&arrays[0], &DataType::Utf8)?;
        let out: StringArray = props.as_string::<i32>().iter().map(|p| lookup(p?, &key)).collect();
        let out: ArrayRef = Arc::new(out);
        if scalar { Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)) } else { Ok(ColumnarValue::Array(out)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_property_as_text() {
        let props = r#"{"plan":"pro","seats":3,"trial":false,"tags":["a"],"none":null}"#;
        assert_eq!(lookup(props, "plan").as_deref(), Some("pro"));
        assert_eq!(lookup(props, "seats").as_deref(), Some("3"));
        assert_eq!(lookup(props, "trial").as_deref(), Some("false"));
        assert_eq!(lookup(props, "tags").as_deref(), Some(r#"["a"]"#));
        assert_eq!(lookup(props, "none"), None);
        assert_eq!(lookup(props, "missing"), None);
        assert_eq!(lookup("not json", "plan"), None);
        assert_eq!(lookup("[1]", "plan"), None);
    }
}
