//! Bounded fuzz passes over the native query reader and Druid's expression language: arbitrary
//! queries built from the vocabulary of native queries (and random text), and arbitrary
//! expressions built from the language's tokens, are answered or refused with an error of the
//! caller's making, never a panic or an internal error, over a small store.

use std::sync::Arc;

use oriel_store::Error;
use oriel_store::druid::native;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::{Fixture, T0, event};

const KEYS: &[&str] = &[
    "type",
    "dimension",
    "value",
    "values",
    "fields",
    "field",
    "name",
    "fieldName",
    "expression",
    "extractionFn",
    "lower",
    "upper",
    "ordering",
    "pattern",
    "query",
    "aggregator",
    "filter",
    "outputName",
    "outputType",
    "granularity",
    "intervals",
    "fn",
    "period",
    "timeZone",
    "origin",
    "format",
    "index",
    "length",
    "lookup",
    "map",
    "metric",
    "threshold",
    "limit",
    "columns",
    "direction",
    "dimensionOrder",
    "having",
    "aggregation",
    "havingSpecs",
    "delegate",
    "isWhitelist",
    "prefix",
    "expr",
    "replaceMissingValue",
    "extractionFns",
    "size",
    "offset",
    "round",
    "byRow",
    "matchValue",
    "matchValueType",
];

const WORDS: &[&str] = &[
    "selector",
    "in",
    "bound",
    "range",
    "regex",
    "like",
    "search",
    "interval",
    "and",
    "or",
    "not",
    "true",
    "false",
    "expression",
    "columnComparison",
    "equals",
    "null",
    "count",
    "longSum",
    "doubleSum",
    "doubleMin",
    "longMax",
    "cardinality",
    "filtered",
    "stringFirst",
    "longLast",
    "hyperUnique",
    "thetaSketch",
    "quantilesDoublesSketch",
    "arithmetic",
    "fieldAccess",
    "constant",
    "quantilesDoublesSketchToQuantile",
    "doubleGreatest",
    "timeFormat",
    "substring",
    "lookup",
    "cascade",
    "stringFormat",
    "strlen",
    "upper",
    "bucket",
    "partial",
    "default",
    "extraction",
    "listFiltered",
    "regexFiltered",
    "numeric",
    "lexicographic",
    "strlen",
    "inverted",
    "contains",
    "insensitive_contains",
    "fragment",
    "period",
    "duration",
    "all",
    "hour",
    "day",
    "PT1H",
    "P1D",
    "P1M",
    "Europe/Amsterdam",
    "__time",
    "site",
    "country",
    "path",
    "screen_width",
    "engaged_ms",
    "is_bot",
    "event_type",
    "nope",
    "n",
    "!T_0",
    "/",
    "+",
    "quotient",
    "%s-%s",
    "yyyy-MM-dd",
    "1000/3000",
    "2026-11-27/P1D",
    "(a|b",
    ".*",
    "10",
    "-1",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn query() -> impl Strategy<Value = Value> {
    let types =
        proptest::sample::select(vec!["timeseries", "topN", "groupBy", "scan", "search", "timeBoundary", "segmentMetadata"]);
    (types, proptest::collection::vec((proptest::sample::select(KEYS), tree()), 0..8)).prop_map(|(kind, pairs)| {
        let mut query: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        query.insert("queryType".into(), json!(kind));
        query.insert("dataSource".into(), json!("events"));
        // Renamed so the common keys also get arbitrary values.
        for key in ["aggregations", "postAggregations", "dimensions", "virtualColumns", "searchDimensions"] {
            if let Some(v) = query.remove(&key.to_lowercase()) {
                query.insert(key.into(), v);
            }
        }
        Value::Object(query)
    })
}

const TOKENS: &[&str] = &[
    "\"site\"",
    "\"screen_width\"",
    "\"__time\"",
    "\"engaged_ms\"",
    "\"nope\"",
    "site",
    "'a'",
    "'x\\'y'",
    "1",
    "0",
    "-7",
    "2.5",
    "1e308",
    "9223372036854775807",
    "null",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "(",
    ")",
    ",",
    "if(",
    "nvl(",
    "cast(",
    "'DOUBLE'",
    "'LONG'",
    "'STRING'",
    "concat(",
    "substring(",
    "strlen(",
    "lower(",
    "timestamp_floor(",
    "'PT1H'",
    "'P1M'",
    "timestamp_shift(",
    "timestamp_extract(",
    "'HOUR'",
    "regexp_extract(",
    "'(a+)+$'",
    "like(",
    "'%a%'",
    "abs(",
    "pow(",
    "log(",
    "div(",
    "greatest(",
    "case_searched(",
    "case_simple(",
    "[",
    "]",
    "lookup(",
];

fn expression() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 1..24).prop_map(|t| t.join(" "))
}

/// Answered, or refused with an error the caller made: never a panic or a failure of ours.
fn acceptable(result: &Result<Value, Error>) -> bool {
    !matches!(result, Err(Error::Internal(_) | Error::DataFusion(_) | Error::Closed))
}

/// Cases per pass: 300 in the test suite; `ORIEL_FUZZ_CASES` runs longer passes by hand.
fn cases() -> u32 {
    std::env::var("ORIEL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

fn store() -> (tokio::runtime::Runtime, Fixture) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let f = runtime.block_on(async {
        let f = Fixture::new().await;
        let events: Vec<_> =
            (0..60).map(|i| event(i, ["a", "b"][i % 2], &format!("p{}", i % 7), T0 + i as i64 * 60_000)).collect();
        f.send(&events).await;
        f.wait_for_count(60).await;
        f
    });
    (runtime, f)
}

#[test]
fn arbitrary_native_queries_are_answered_or_refused() {
    let (runtime, f) = store();
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(query in query())| {
        let result = runtime.block_on(native::execute(Arc::clone(f.store.engine()), query.clone()));
        prop_assert!(acceptable(&result), "{query}\n{result:?}");
    });
}

#[test]
fn arbitrary_expressions_are_answered_or_refused() {
    let (runtime, f) = store();
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(text in expression())| {
        let queries = [
            json!({"queryType": "timeseries", "dataSource": "events", "granularity": "all",
                   "filter": {"type": "expression", "expression": text},
                   "aggregations": [{"type": "count", "name": "n"}, {"type": "doubleSum", "name": "s", "expression": text}],
                   "postAggregations": [{"type": "expression", "name": "p", "expression": text.replace("\"site\"", "\"n\"")}]}),
            json!({"queryType": "scan", "dataSource": "events", "columns": ["v"], "limit": 5,
                   "virtualColumns": [{"type": "expression", "name": "v", "expression": text}]}),
        ];
        for query in queries {
            let result = runtime.block_on(native::execute(Arc::clone(f.store.engine()), query.clone()));
            prop_assert!(acceptable(&result), "{text}\n{result:?}");
        }
    });
}
