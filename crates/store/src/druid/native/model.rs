//! Native queries as JSON, read as tolerantly as Druid's clients need: unknown fields are
//! ignored, `null` means absent, booleans and numbers may come as strings, a `limit` of 0 means
//! none, and dimension specs, metrics and orderings come in their short and long forms.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use crate::{Error, Result};

/// `null` as the default value (Grafana sends `"postAggregations": null`, `"virtualColumns": []`).
pub(crate) fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A boolean written as `true`, `"true"`, `1` or null (false).
pub(crate) fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Null => false,
        other => return Err(de::Error::custom(format!("expected a boolean, not {other}"))),
    })
}

/// Like [`flex_bool`], with `None` for absent or null.
pub(crate) fn flex_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::Bool(b) => Some(b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        Value::Number(n) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
        other => return Err(de::Error::custom(format!("expected a boolean, not {other}"))),
    })
}

/// A whole number written as a number or a string; null is absent.
pub(crate) fn flex_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::Number(n) => Some(
            n.as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
                .ok_or_else(|| de::Error::custom(format!("expected a non-negative whole number, not {n}")))?,
        ),
        Value::String(s) => Some(s.trim().parse().map_err(|_| de::Error::custom(format!("expected a whole number, not {s:?}")))?),
        other => return Err(de::Error::custom(format!("expected a whole number, not {other}"))),
    })
}

/// A value as Druid's filters compare it: text (numbers and booleans in their text form), or
/// `None` for null.
pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Where a query reads from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// A table by name.
    Table(String),
    /// Several tables, rows of each.
    Union(Vec<String>),
    /// The rows of another query.
    Query(Box<Value>),
}

impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match &value {
            Value::String(name) => Ok(Self::Table(name.clone())),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("table") => Ok(Self::Table(o.get("name").and_then(Value::as_str).unwrap_or_default().to_string())),
                Some("union") => {
                    let names = o
                        .get("dataSources")
                        .and_then(Value::as_array)
                        .ok_or_else(|| de::Error::custom("a union dataSource needs \"dataSources\""))?
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Object(t) => t.get("name").and_then(Value::as_str).map(str::to_string),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| de::Error::custom("a union lists table names"))?;
                    Ok(Self::Union(names))
                }
                Some("query") => Ok(Self::Query(Box::new(
                    o.get("query").cloned().ok_or_else(|| de::Error::custom("a query dataSource needs \"query\""))?,
                ))),
                Some(other) => {
                    Err(de::Error::custom(format!("dataSource type {other:?} is not supported (table, union, query are)")))
                }
                None => Err(de::Error::custom("a dataSource object needs a \"type\"")),
            },
            other => Err(de::Error::custom(format!("dataSource must be a name or an object, not {other}"))),
        }
    }
}

/// What every native query may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    /// Where rows come from.
    pub data_source: DataSource,
    /// The time ranges, in any of their forms (read by `time::Interval::list`).
    #[serde(default)]
    pub intervals: Option<Value>,
    /// Which rows.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Columns computed per row.
    #[serde(default, deserialize_with = "nullable")]
    pub virtual_columns: Vec<VirtualColumn>,
    /// Query context.
    #[serde(default, deserialize_with = "nullable")]
    pub context: Context,
}

/// The query context keys Oriel reads; the others are accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// A time limit in ms, below the server's own.
    #[serde(default, deserialize_with = "flex_u64")]
    pub timeout: Option<u64>,
    /// Timeseries: leave out buckets without rows.
    #[serde(default, deserialize_with = "flex_bool")]
    pub skip_empty_buckets: bool,
    /// Timeseries: add a row with the totals.
    #[serde(default, deserialize_with = "flex_bool")]
    pub grand_total: bool,
    /// Timestamps as milliseconds instead of ISO text.
    #[serde(default, deserialize_with = "flex_bool")]
    pub serialize_date_time_as_long: bool,
    /// The client's id for the query.
    #[serde(default)]
    pub query_id: Option<String>,
}

/// `{"type": "expression", "name": …, "expression": …, "outputType": …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualColumn {
    /// Only `expression`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Its name.
    pub name: String,
    /// A Druid expression over the row.
    pub expression: String,
    /// `STRING`, `LONG`, `FLOAT`, `DOUBLE`.
    #[serde(default)]
    pub output_type: Option<String>,
}

/// A row filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Filter {
    /// A dimension equals a value (null matches null).
    #[serde(rename = "selector")]
    Selector {
        /// The column.
        dimension: String,
        /// The value.
        #[serde(default)]
        value: Value,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// A column equals a typed value; never matches null.
    #[serde(rename = "equals")]
    Equals {
        /// The column.
        column: String,
        /// The value's type.
        #[serde(default)]
        match_value_type: Option<String>,
        /// The value.
        match_value: Value,
    },
    /// A column is null.
    #[serde(rename = "null")]
    Null {
        /// The column.
        column: String,
    },
    /// A dimension is one of values.
    #[serde(rename = "in")]
    In {
        /// The column.
        dimension: String,
        /// The values (null matches null).
        #[serde(default, deserialize_with = "nullable")]
        values: Vec<Value>,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// Between bounds, in an ordering.
    #[serde(rename = "bound")]
    Bound {
        /// The column.
        dimension: String,
        /// The lower bound.
        #[serde(default)]
        lower: Value,
        /// The upper bound.
        #[serde(default)]
        upper: Value,
        /// Whether the lower bound is excluded.
        #[serde(default, deserialize_with = "flex_bool")]
        lower_strict: bool,
        /// Whether the upper bound is excluded.
        #[serde(default, deserialize_with = "flex_bool")]
        upper_strict: bool,
        /// `lexicographic` (default), `numeric`, `strlen`, …
        #[serde(default)]
        ordering: Option<Ordering>,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// Between typed bounds; never matches null.
    #[serde(rename = "range")]
    Range {
        /// The column.
        column: String,
        /// The bounds' type.
        #[serde(default)]
        match_value_type: Option<String>,
        /// The lower bound.
        #[serde(default)]
        lower: Value,
        /// The upper bound.
        #[serde(default)]
        upper: Value,
        /// Whether the lower bound is excluded.
        #[serde(default, deserialize_with = "flex_bool")]
        lower_open: bool,
        /// Whether the upper bound is excluded.
        #[serde(default, deserialize_with = "flex_bool")]
        upper_open: bool,
    },
    /// A regular expression finds a match.
    #[serde(rename = "regex")]
    Regex {
        /// The column.
        dimension: String,
        /// The pattern.
        pattern: String,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// SQL LIKE.
    #[serde(rename = "like")]
    Like {
        /// The column.
        dimension: String,
        /// `%` and `_` wildcards.
        pattern: String,
        /// The escape character.
        #[serde(default)]
        escape: Option<String>,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// A search query spec matches.
    #[serde(rename = "search")]
    Search {
        /// The column.
        dimension: String,
        /// What to look for.
        query: SearchSpec,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// Times in intervals.
    #[serde(rename = "interval")]
    Interval {
        /// The column (usually `__time`).
        dimension: String,
        /// The intervals.
        intervals: Value,
        /// Applied to the column first.
        #[serde(default)]
        extraction_fn: Option<ExtractionFn>,
    },
    /// All of the filters.
    #[serde(rename = "and")]
    And {
        /// The filters.
        #[serde(default, deserialize_with = "nullable")]
        fields: Vec<Filter>,
    },
    /// Any of the filters.
    #[serde(rename = "or")]
    Or {
        /// The filters.
        #[serde(default, deserialize_with = "nullable")]
        fields: Vec<Filter>,
    },
    /// Not the filter.
    #[serde(rename = "not")]
    Not {
        /// The filter.
        field: Box<Filter>,
    },
    /// Every row.
    #[serde(rename = "true")]
    True {},
    /// No row.
    #[serde(rename = "false")]
    False {},
    /// A Druid expression is true.
    #[serde(rename = "expression")]
    Expression {
        /// The expression.
        expression: String,
    },
    /// Dimensions are equal.
    #[serde(rename = "columnComparison")]
    ColumnComparison {
        /// The dimensions.
        dimensions: Vec<DimensionSpec>,
    },
    /// An array column holds an element (a plain column: equals it).
    #[serde(rename = "arrayContainsElement")]
    ArrayContainsElement {
        /// The column.
        column: String,
        /// The element.
        element_match_value: Value,
    },
    /// Deprecated and disabled in Druid; refused.
    #[serde(rename = "javascript")]
    Javascript {},
    /// Not available in Oriel; refused.
    #[serde(rename = "spatial")]
    Spatial {},
    /// Deprecated in Druid; refused.
    #[serde(rename = "extraction")]
    Extraction {},
}

/// How values are compared: `lexicographic`, `numeric`, `strlen`, `alphanumeric`, `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// By UTF-8 bytes.
    Lexicographic,
    /// As numbers.
    Numeric,
    /// By length, then lexicographic.
    Strlen,
    /// Numbers inside text compared as numbers.
    Alphanumeric,
    /// Version strings.
    Version,
}

impl<'de> Deserialize<'de> for Ordering {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let name = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
            other => return Err(de::Error::custom(format!("an ordering is a name, not {other}"))),
        };
        Self::named(&name).ok_or_else(|| de::Error::custom(format!("unknown ordering {name:?}")))
    }
}

impl Ordering {
    fn named(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "lexicographic" | "" => Self::Lexicographic,
            "numeric" => Self::Numeric,
            "strlen" => Self::Strlen,
            "alphanumeric" => Self::Alphanumeric,
            "version" => Self::Version,
            _ => return None,
        })
    }
}

/// What a search looks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum SearchSpec {
    /// Contains `value`.
    #[serde(rename = "contains")]
    Contains {
        /// The text.
        value: String,
        /// Whether case matters (default false).
        #[serde(default, deserialize_with = "flex_bool")]
        case_sensitive: bool,
    },
    /// Contains `value`, any case.
    #[serde(rename = "insensitive_contains")]
    InsensitiveContains {
        /// The text.
        value: String,
    },
    /// Contains every one of `values`.
    #[serde(rename = "fragment")]
    Fragment {
        /// The texts.
        values: Vec<String>,
        /// Whether case matters (default false).
        #[serde(default, deserialize_with = "flex_bool")]
        case_sensitive: bool,
    },
    /// A regular expression finds a match.
    #[serde(rename = "regex")]
    Regex {
        /// The pattern.
        pattern: String,
    },
}

/// A dimension and how it is shown.
#[derive(Debug, Clone)]
pub enum DimensionSpec {
    /// The column as it is.
    Default {
        /// The column.
        dimension: String,
        /// The name in results.
        output_name: String,
        /// `STRING` (default), `LONG`, `FLOAT`, `DOUBLE`.
        output_type: Option<String>,
    },
    /// The column through an extraction function.
    Extraction {
        /// The column.
        dimension: String,
        /// The name in results.
        output_name: String,
        /// The output type.
        output_type: Option<String>,
        /// The function.
        extraction_fn: ExtractionFn,
    },
    /// Values kept only when the filter says so (null otherwise).
    Filtered {
        /// The spec filtered.
        delegate: Box<DimensionSpec>,
        /// What is kept.
        keep: ValueFilter,
    },
    /// Values mapped through an inline map.
    Lookup {
        /// The column.
        dimension: String,
        /// The name in results.
        output_name: String,
        /// The mapping.
        map: Vec<(String, String)>,
        /// Keep values not in the map.
        retain_missing_value: bool,
        /// What values not in the map become otherwise.
        replace_missing_value_with: Option<String>,
    },
}

/// Which values a filtered dimension spec keeps.
#[derive(Debug, Clone)]
pub enum ValueFilter {
    /// Those in (or, `false`, not in) a list.
    List(Vec<String>, bool),
    /// Those a pattern finds a match in.
    Regex(String),
    /// Those starting with a prefix.
    Prefix(String),
}

impl DimensionSpec {
    /// The name the dimension has in results.
    pub fn output_name(&self) -> &str {
        match self {
            Self::Default { output_name, .. } | Self::Extraction { output_name, .. } | Self::Lookup { output_name, .. } => {
                output_name
            }
            Self::Filtered { delegate, .. } => delegate.output_name(),
        }
    }

    /// The requested output type, upper case.
    pub fn output_type(&self) -> Option<String> {
        match self {
            Self::Default { output_type, .. } | Self::Extraction { output_type, .. } => {
                output_type.as_ref().map(|t| t.to_ascii_uppercase())
            }
            Self::Lookup { .. } => None,
            Self::Filtered { delegate, .. } => delegate.output_type(),
        }
    }
}

impl<'de> Deserialize<'de> for DimensionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        DimensionSpec::from_value(value).map_err(de::Error::custom)
    }
}

impl DimensionSpec {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        let o = match value {
            Value::String(name) => {
                return Ok(Self::Default { dimension: name.clone(), output_name: name, output_type: None });
            }
            Value::Object(o) => o,
            other => return Err(format!("a dimension is a name or a spec, not {other}")),
        };
        let text = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_string);
        let dimension = || text("dimension").ok_or_else(|| "a dimension spec needs \"dimension\"".to_string());
        let output_name = |dimension: &str| text("outputName").unwrap_or_else(|| dimension.to_string());
        let delegate = || -> std::result::Result<Box<Self>, String> {
            Ok(Box::new(Self::from_value(o.get("delegate").cloned().ok_or("a filtered dimension spec needs \"delegate\"")?)?))
        };
        match o.get("type").and_then(Value::as_str).unwrap_or("default") {
            "default" => {
                let dimension = dimension()?;
                Ok(Self::Default { output_name: output_name(&dimension), dimension, output_type: text("outputType") })
            }
            "extraction" => {
                let dimension = dimension()?;
                let extraction_fn: ExtractionFn = serde_json::from_value(
                    o.get("extractionFn").cloned().ok_or("an extraction dimension spec needs \"extractionFn\"")?,
                )
                .map_err(|e| e.to_string())?;
                Ok(Self::Extraction {
                    output_name: output_name(&dimension),
                    dimension,
                    output_type: text("outputType"),
                    extraction_fn,
                })
            }
            "listFiltered" => {
                let values = o
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or("listFiltered needs \"values\"")?
                    .iter()
                    .filter_map(as_text)
                    .collect();
                let whitelist = !matches!(o.get("isWhitelist"), Some(Value::Bool(false)));
                Ok(Self::Filtered { delegate: delegate()?, keep: ValueFilter::List(values, whitelist) })
            }
            "regexFiltered" => Ok(Self::Filtered {
                delegate: delegate()?,
                keep: ValueFilter::Regex(text("pattern").ok_or("regexFiltered needs \"pattern\"")?),
            }),
            "prefixFiltered" => Ok(Self::Filtered {
                delegate: delegate()?,
                keep: ValueFilter::Prefix(text("prefix").ok_or("prefixFiltered needs \"prefix\"")?),
            }),
            "lookup" => {
                let dimension = dimension()?;
                let lookup = o.get("lookup").and_then(Value::as_object);
                let Some(map) = lookup.and_then(|l| l.get("map")).and_then(Value::as_object) else {
                    return Err("only lookups with an inline map are supported; Oriel has no registered lookups".into());
                };
                Ok(Self::Lookup {
                    output_name: output_name(&dimension),
                    dimension,
                    map: map.iter().filter_map(|(k, v)| Some((k.clone(), as_text(v)?))).collect(),
                    retain_missing_value: matches!(o.get("retainMissingValue"), Some(Value::Bool(true))),
                    replace_missing_value_with: text("replaceMissingValueWith"),
                })
            }
            other => Err(format!("dimension spec type {other:?} is not supported")),
        }
    }
}

/// A function applied to dimension values.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ExtractionFn {
    /// Formats times (the bucket of `__time`, or text parsed as ISO-8601).
    #[serde(rename = "timeFormat")]
    TimeFormat {
        /// A Joda pattern; ISO-8601 without one.
        #[serde(default)]
        format: Option<String>,
        /// The zone to format in.
        #[serde(default)]
        time_zone: Option<String>,
        /// Floors the time first.
        #[serde(default)]
        granularity: Option<Value>,
        /// Output milliseconds instead.
        #[serde(default, deserialize_with = "flex_bool")]
        as_millis: bool,
    },
    /// Part of the text.
    #[serde(rename = "substring")]
    Substring {
        /// First character, from 0.
        #[serde(default, deserialize_with = "flex_u64")]
        index: Option<u64>,
        /// How many characters.
        #[serde(default, deserialize_with = "flex_u64")]
        length: Option<u64>,
    },
    /// A group of a regular expression's first match.
    #[serde(rename = "regex")]
    Regex {
        /// The pattern.
        expr: String,
        /// The group (default 1).
        #[serde(default, deserialize_with = "flex_u64")]
        index: Option<u64>,
        /// Replace values without a match.
        #[serde(default, deserialize_with = "flex_bool")]
        replace_missing_value: bool,
        /// With this.
        #[serde(default)]
        replace_missing_value_with: Option<String>,
    },
    /// An inline map.
    #[serde(rename = "lookup")]
    Lookup {
        /// `{"type": "map", "map": {…}}`.
        lookup: Value,
        /// Keep values not in the map.
        #[serde(default, deserialize_with = "flex_bool")]
        retain_missing_value: bool,
        /// What values not in the map become otherwise.
        #[serde(default)]
        replace_missing_value_with: Option<String>,
    },
    /// A lookup registered in Druid; Oriel has none.
    #[serde(rename = "registeredLookup")]
    RegisteredLookup {
        /// Its name.
        lookup: String,
    },
    /// Functions one after the other.
    #[serde(rename = "cascade")]
    Cascade {
        /// The functions.
        extraction_fns: Vec<ExtractionFn>,
    },
    /// `String.format` with `%s`.
    #[serde(rename = "stringFormat")]
    StringFormat {
        /// The format.
        format: String,
        /// `nullString`, `emptyString` or `returnNull`.
        #[serde(default)]
        null_handling: Option<String>,
    },
    /// The length.
    #[serde(rename = "strlen")]
    Strlen {},
    /// Upper case.
    #[serde(rename = "upper")]
    Upper {},
    /// Lower case.
    #[serde(rename = "lower")]
    Lower {},
    /// Numbers into buckets of `size` from `offset`.
    #[serde(rename = "bucket")]
    Bucket {
        /// Bucket size.
        #[serde(default)]
        size: Option<f64>,
        /// Where buckets start.
        #[serde(default)]
        offset: Option<f64>,
    },
    /// The value when a pattern finds a match in it, else null.
    #[serde(rename = "partial")]
    Partial {
        /// The pattern.
        expr: String,
    },
    /// The value when a search spec matches it, else null.
    #[serde(rename = "searchQuery")]
    SearchQuery {
        /// The spec.
        query: SearchSpec,
    },
    /// Parses times in one format and writes them in another.
    #[serde(rename = "time")]
    Time {
        /// The input's Joda pattern.
        time_format: String,
        /// The output's Joda pattern.
        result_format: String,
    },
    /// The value itself.
    #[serde(rename = "identity")]
    Identity {},
    /// Disabled in Druid; refused.
    #[serde(rename = "javascript")]
    Javascript {},
}

/// An aggregator.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregator {
    /// The type: `count`, `longSum`, `cardinality`, `filtered`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Output name (optional for `filtered`, whose inner aggregator names it then).
    #[serde(default)]
    pub name: Option<String>,
    /// The input column.
    #[serde(default)]
    pub field_name: Option<String>,
    /// A Druid expression as the input, instead of a column.
    #[serde(default)]
    pub expression: Option<String>,
    /// `cardinality`: the inputs (names or dimension specs).
    #[serde(default, deserialize_with = "nullable")]
    pub fields: Vec<DimensionSpec>,
    /// pydruid's `cardinality` inputs.
    #[serde(default, deserialize_with = "nullable")]
    pub field_names: Vec<String>,
    /// `cardinality`: count combinations of the fields rather than values.
    #[serde(default, deserialize_with = "flex_bool")]
    pub by_row: bool,
    /// Round estimates to whole numbers.
    #[serde(default, deserialize_with = "flex_bool")]
    pub round: bool,
    /// `filtered`: which rows.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// `filtered`: the aggregator applied to them.
    #[serde(default)]
    pub aggregator: Option<Box<Aggregator>>,
    /// `*First`/`*Last`: the column that orders rows.
    #[serde(default)]
    pub time_column: Option<String>,
}

impl Aggregator {
    /// The result name: its own, or for `filtered` the inner aggregator's.
    pub fn output_name(&self) -> Result<String> {
        match (&self.name, &self.aggregator) {
            (Some(name), _) => Ok(name.clone()),
            (None, Some(inner)) => inner.output_name(),
            (None, None) => Err(Error::InvalidQuery(format!("a {} aggregator needs a \"name\"", self.kind))),
        }
    }
}

/// A post-aggregator.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostAggregator {
    /// The type: `arithmetic`, `fieldAccess`, `expression`, `constant`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Output name.
    #[serde(default)]
    pub name: Option<String>,
    /// `arithmetic`: `+`, `-`, `*`, `/`, `quotient`.
    #[serde(default)]
    pub r#fn: Option<String>,
    /// Inputs of `arithmetic`, `*Greatest`, `*Least`.
    #[serde(default, deserialize_with = "nullable")]
    pub fields: Vec<PostAggregator>,
    /// The input of sketch post-aggregators.
    #[serde(default)]
    pub field: Option<Box<PostAggregator>>,
    /// `fieldAccess` and friends: the aggregator.
    #[serde(default)]
    pub field_name: Option<String>,
    /// `constant`: the value.
    #[serde(default)]
    pub value: Option<Value>,
    /// `expression`: the expression.
    #[serde(default)]
    pub expression: Option<String>,
    /// `quantilesDoublesSketchToQuantile`: which quantile.
    #[serde(default)]
    pub fraction: Option<f64>,
}

/// A groupBy's `having`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Having {
    /// A filter on the result columns.
    #[serde(rename = "filter")]
    Filter {
        /// The filter.
        filter: Filter,
    },
    /// An aggregate is greater than a value.
    #[serde(rename = "greaterThan")]
    GreaterThan {
        /// The aggregate.
        aggregation: String,
        /// The value.
        value: Value,
    },
    /// An aggregate is less than a value.
    #[serde(rename = "lessThan")]
    LessThan {
        /// The aggregate.
        aggregation: String,
        /// The value.
        value: Value,
    },
    /// An aggregate equals a value.
    #[serde(rename = "equalTo")]
    EqualTo {
        /// The aggregate.
        aggregation: String,
        /// The value.
        value: Value,
    },
    /// A dimension equals a value.
    #[serde(rename = "dimSelector")]
    DimSelector {
        /// The dimension.
        dimension: String,
        /// The value.
        #[serde(default)]
        value: Value,
    },
    /// All of them.
    #[serde(rename = "and")]
    And {
        /// The specs.
        having_specs: Vec<Having>,
    },
    /// Any of them.
    #[serde(rename = "or")]
    Or {
        /// The specs.
        having_specs: Vec<Having>,
    },
    /// Not this one.
    #[serde(rename = "not")]
    Not {
        /// The spec.
        having_spec: Box<Having>,
    },
}

/// A groupBy's ordering and limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitSpec {
    /// How many rows (0 or absent: all).
    #[serde(default, deserialize_with = "flex_u64")]
    pub limit: Option<u64>,
    /// Rows to skip.
    #[serde(default, deserialize_with = "flex_u64")]
    pub offset: Option<u64>,
    /// The sort columns.
    #[serde(default, deserialize_with = "nullable")]
    pub columns: Vec<OrderByColumn>,
}

/// One sort column of a limit spec.
#[derive(Debug, Clone)]
pub struct OrderByColumn {
    /// The output column.
    pub dimension: String,
    /// Descending.
    pub descending: bool,
    /// How values compare.
    pub ordering: Ordering,
}

impl<'de> Deserialize<'de> for OrderByColumn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(dimension) => Ok(Self { dimension, descending: false, ordering: Ordering::Lexicographic }),
            Value::Object(o) => {
                let dimension = o
                    .get("dimension")
                    .and_then(Value::as_str)
                    .ok_or_else(|| de::Error::custom("an orderBy column needs \"dimension\""))?
                    .to_string();
                let descending = o.get("direction").and_then(Value::as_str).is_some_and(|d| d.eq_ignore_ascii_case("descending"));
                let ordering = match o.get("dimensionOrder") {
                    None | Some(Value::Null) => Ordering::Lexicographic,
                    Some(v) => serde_json::from_value(v.clone()).map_err(de::Error::custom)?,
                };
                Ok(Self { dimension, descending, ordering })
            }
            other => Err(de::Error::custom(format!("an orderBy column is a name or an object, not {other}"))),
        }
    }
}

/// A topN's ordering.
#[derive(Debug, Clone)]
pub enum TopNMetric {
    /// By an aggregate, largest first.
    Numeric(String),
    /// By the dimension's values, from after `previous_stop`.
    Dimension {
        /// How values compare.
        ordering: Ordering,
        /// Start after this value.
        previous_stop: Option<String>,
    },
    /// The opposite order.
    Inverted(Box<TopNMetric>),
}

impl<'de> Deserialize<'de> for TopNMetric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TopNMetric::from_value(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl TopNMetric {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        let o = match value {
            Value::String(metric) => return Ok(Self::Numeric(metric)),
            Value::Object(o) => o,
            other => return Err(format!("a topN metric is a name or a spec, not {other}")),
        };
        let text = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_string);
        match o.get("type").and_then(Value::as_str).unwrap_or("numeric") {
            "numeric" => Ok(Self::Numeric(text("metric").ok_or("a numeric topN metric needs \"metric\"")?)),
            "inverted" => {
                Ok(Self::Inverted(Box::new(Self::from_value(o.get("metric").cloned().ok_or("inverted needs \"metric\"")?)?)))
            }
            "dimension" => {
                let ordering = match o.get("ordering") {
                    None | Some(Value::Null) => Ordering::Lexicographic,
                    Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
                };
                Ok(Self::Dimension { ordering, previous_stop: text("previousStop") })
            }
            "lexicographic" => Ok(Self::Dimension { ordering: Ordering::Lexicographic, previous_stop: text("previousStop") }),
            "alphaNumeric" => Ok(Self::Dimension { ordering: Ordering::Alphanumeric, previous_stop: text("previousStop") }),
            other => Err(format!("topN metric type {other:?} is not supported")),
        }
    }
}

/// `timeseries`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeseries {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Bucket size.
    #[serde(default)]
    pub granularity: Option<Value>,
    /// Newest bucket first.
    #[serde(default, deserialize_with = "flex_bool")]
    pub descending: bool,
    /// Aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub aggregations: Vec<Aggregator>,
    /// Post-aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub post_aggregations: Vec<PostAggregator>,
    /// At most this many buckets.
    #[serde(default, deserialize_with = "flex_u64")]
    pub limit: Option<u64>,
}

/// `topN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopN {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Bucket size.
    #[serde(default)]
    pub granularity: Option<Value>,
    /// The dimension.
    pub dimension: DimensionSpec,
    /// How many values per bucket.
    #[serde(deserialize_with = "flex_u64")]
    pub threshold: Option<u64>,
    /// The ordering.
    pub metric: TopNMetric,
    /// Aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub aggregations: Vec<Aggregator>,
    /// Post-aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub post_aggregations: Vec<PostAggregator>,
}

/// `groupBy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupBy {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Bucket size.
    #[serde(default)]
    pub granularity: Option<Value>,
    /// The dimensions.
    #[serde(default, deserialize_with = "nullable")]
    pub dimensions: Vec<DimensionSpec>,
    /// Aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub aggregations: Vec<Aggregator>,
    /// Post-aggregators.
    #[serde(default, deserialize_with = "nullable")]
    pub post_aggregations: Vec<PostAggregator>,
    /// A filter on the results.
    #[serde(default)]
    pub having: Option<Having>,
    /// Order and limit.
    #[serde(default)]
    pub limit_spec: Option<LimitSpec>,
    /// Groupings over subsets of the dimensions, whose results are concatenated.
    #[serde(default)]
    pub subtotals_spec: Option<Vec<Vec<String>>>,
}

/// `scan`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Columns to return (all when empty).
    #[serde(default, deserialize_with = "nullable")]
    pub columns: Vec<String>,
    /// `list` (objects, default) or `compactedList` (arrays).
    #[serde(default)]
    pub result_format: Option<String>,
    /// Most rows.
    #[serde(default, deserialize_with = "flex_u64")]
    pub limit: Option<u64>,
    /// Rows to skip.
    #[serde(default, deserialize_with = "flex_u64")]
    pub offset: Option<u64>,
    /// `none`, `ascending`, `descending` by `__time`.
    #[serde(default)]
    pub order: Option<String>,
    /// Legacy mode: `__time` is called `timestamp` and written as ISO text.
    #[serde(default, deserialize_with = "flex_bool")]
    pub legacy: bool,
}

/// `search`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Bucket size.
    #[serde(default)]
    pub granularity: Option<Value>,
    /// Dimensions searched (all text columns when empty).
    #[serde(default, deserialize_with = "nullable")]
    pub search_dimensions: Vec<DimensionSpec>,
    /// What to look for.
    pub query: SearchSpec,
    /// `{"type": "lexicographic" | "strlen" | "numeric" | "alphanumeric"}`.
    #[serde(default)]
    pub sort: Option<Ordering>,
    /// Most results per bucket (default 1000).
    #[serde(default, deserialize_with = "flex_u64")]
    pub limit: Option<u64>,
}

/// `timeBoundary`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBoundary {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// `minTime` or `maxTime` for only one.
    #[serde(default)]
    pub bound: Option<String>,
}

/// `segmentMetadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMetadata {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Which columns: `{"type": "all" | "none" | "list", "columns": […]}`.
    #[serde(default)]
    pub to_include: Option<Value>,
    /// One merged answer (the default answers per segment; Oriel has one logical segment).
    #[serde(default, deserialize_with = "flex_opt_bool")]
    pub merge: Option<bool>,
    /// What to compute.
    #[serde(default)]
    pub analysis_types: Option<Vec<String>>,
}

/// `dataSourceMetadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceMetadata {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
}

/// A native query of any type.
#[derive(Debug, Clone)]
pub enum Query {
    /// `timeseries`.
    Timeseries(Timeseries),
    /// `topN`.
    TopN(TopN),
    /// `groupBy`.
    GroupBy(GroupBy),
    /// `scan`.
    Scan(Scan),
    /// `search`.
    Search(Search),
    /// `timeBoundary`.
    TimeBoundary(TimeBoundary),
    /// `segmentMetadata`.
    SegmentMetadata(SegmentMetadata),
    /// `dataSourceMetadata`.
    DataSourceMetadata(DataSourceMetadata),
}

/// How deeply a query's JSON may nest (what serde_json allows when it parses text).
const MAX_JSON_DEPTH: usize = 128;

/// How deeply `value` nests, measured without recursion.
fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

impl Query {
    /// Reads a query from its JSON, by its `queryType`.
    pub fn from_value(value: Value) -> Result<Self> {
        if json_depth(&value) > MAX_JSON_DEPTH {
            return Err(Error::InvalidQuery(format!("the query nests deeper than {MAX_JSON_DEPTH} levels")));
        }
        let kind = value
            .get("queryType")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidQuery("a native query needs a \"queryType\"".into()))?
            .to_string();
        fn read<T: serde::de::DeserializeOwned>(kind: &str, value: Value) -> Result<T> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                // Fields shared by every query type are read flattened, without a path.
                let at = e.path().to_string();
                let at = if at == "." { String::new() } else { format!(" at {at}") };
                Error::InvalidQuery(format!("invalid {kind} query{at}: {}", e.inner()))
            })
        }
        Ok(match kind.as_str() {
            "timeseries" => Self::Timeseries(read(&kind, value)?),
            "topN" => Self::TopN(read(&kind, value)?),
            "groupBy" => Self::GroupBy(read(&kind, value)?),
            "scan" => Self::Scan(read(&kind, value)?),
            "search" => Self::Search(read(&kind, value)?),
            "timeBoundary" => Self::TimeBoundary(read(&kind, value)?),
            "segmentMetadata" => Self::SegmentMetadata(read(&kind, value)?),
            "dataSourceMetadata" => Self::DataSourceMetadata(read(&kind, value)?),
            "select" => return Err(Error::Unsupported("the select query was removed from Druid; use scan".into())),
            other => {
                return Err(Error::InvalidQuery(format!(
                    "unknown queryType {other:?}; Oriel answers timeseries, topN, groupBy, scan, search, timeBoundary, \
                     segmentMetadata and dataSourceMetadata"
                )));
            }
        })
    }

    /// The shared fields.
    pub fn common(&self) -> &Common {
        match self {
            Self::Timeseries(q) => &q.common,
            Self::TopN(q) => &q.common,
            Self::GroupBy(q) => &q.common,
            Self::Scan(q) => &q.common,
            Self::Search(q) => &q.common,
            Self::TimeBoundary(q) => &q.common,
            Self::SegmentMetadata(q) => &q.common,
            Self::DataSourceMetadata(q) => &q.common,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_clients_send() {
        // Grafana: object data source and intervals, null placeholders.
        let q = Query::from_value(json!({
            "queryType": "topN", "dataSource": {"type": "table", "name": "events"},
            "intervals": {"type": "intervals", "intervals": ["2024-01-01/2024-01-02"]},
            "granularity": "all", "dimension": {"type": "default", "dimension": "country", "outputName": "c", "outputType": "STRING"},
            "metric": {"type": "numeric", "metric": "n"}, "threshold": 50, "postAggregations": null, "virtualColumns": [],
            "filter": {"type": "selector", "dimension": "site", "value": "a", "extractionFn": null},
            "aggregations": [{"type": "count", "name": "n"}]
        }))
        .unwrap();
        let Query::TopN(q) = q else { panic!() };
        assert_eq!(q.dimension.output_name(), "c");
        assert_eq!(q.threshold, Some(50));
        // plywood: string booleans in the context, nested query data source.
        let q = Query::from_value(json!({
            "queryType": "groupBy", "dataSource": {"type": "query", "query": {"queryType": "groupBy"}},
            "intervals": "1000/3000", "granularity": "all", "dimensions": [],
            "aggregations": [{"type": "filtered", "filter": {"type": "not", "field": {"type": "in", "dimension": "a", "values": ["x", null]}},
                              "aggregator": {"type": "doubleSum", "name": "!T_0", "fieldName": "x"}}],
            "context": {"skipEmptyBuckets": "true", "timeout": 60000}, "limitSpec": {"type": "default", "limit": 0,
            "columns": ["a", {"dimension": "b", "direction": "descending", "dimensionOrder": {"type": "numeric"}}]}
        }))
        .unwrap();
        let Query::GroupBy(q) = q else { panic!() };
        assert!(matches!(q.common.data_source, DataSource::Query(_)));
        assert!(q.common.context.skip_empty_buckets);
        assert_eq!(q.aggregations[0].output_name().unwrap(), "!T_0");
        let limit = q.limit_spec.unwrap();
        assert_eq!(limit.columns[1].ordering, Ordering::Numeric);
        assert!(limit.columns[1].descending);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Query::from_value(json!({"queryType": "topN", "dataSource": "events", "metric": "x"})).unwrap_err();
        assert!(e.to_string().contains("invalid topN query"), "{e}");
        let e = Query::from_value(json!({"queryType": "nope"})).unwrap_err();
        assert!(e.to_string().contains("unknown queryType \"nope\""), "{e}");
        assert!(matches!(Query::from_value(json!({"queryType": "select"})), Err(Error::Unsupported(_))));
        let e = Query::from_value(json!({"queryType": "timeseries", "dataSource": "events",
            "filter": {"type": "wat", "dimension": "x"}}))
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant `wat`, expected one of `selector`"), "{e}");
    }
}
