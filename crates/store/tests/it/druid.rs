//! Druid's native queries and Druid SQL over the store: the shapes of the answers, and a
//! property test that random timeseries, topN and groupBy queries give the same numbers as the
//! SQL written for them independently.

use std::collections::BTreeMap;

use oriel_core::Event;
use oriel_store::druid::native;
use oriel_store::query::engine::{QueryInput, QuerySettings};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{Fixture, T0};

const HOUR: i64 = 3_600_000;

/// Events over three days, from a fixed pseudo-random sequence.
fn events(n: usize) -> Vec<Event> {
    let mut next = crate::pseudo_random(0x2545_f491_4f6c_dd1du64);
    (0..n)
        .map(|i| {
            let country = ["NL", "US", "DE", "FR"][next(4) as usize];
            Event {
                time: T0 - 2 * 24 * HOUR + next(3 * 24 * HOUR as u64) as i64,
                site: Some(["a", "b", "c"][next(3) as usize].into()),
                event_id: Some(format!("e{i}")),
                event_type: ["pageView", "signup", "purchase"][next(3) as usize].into(),
                party_id: Some(format!("p{}", next(150))),
                path: Some(format!("/p{}", next(12))),
                country: if next(10) == 0 { None } else { Some(country.into()) },
                screen_width: Some([390, 1280, 1920][next(3) as usize]),
                engaged_ms: if next(4) == 0 { None } else { Some(next(60_000) as i64) },
                is_bot: next(20) == 0,
                ..Event::default()
            }
        })
        .collect()
}

async fn fixture(n: usize) -> Fixture {
    let f = Fixture::new().await;
    f.send(&events(n)).await;
    f.wait_for_count(n as i64).await;
    f
}

async fn native_query(f: &Fixture, query: Value) -> Value {
    native::execute(std::sync::Arc::clone(f.store.engine()), query.clone()).await.unwrap_or_else(|e| panic!("{query}: {e}"))
}

async fn druid_sql(f: &Fixture, sql: &str) -> Vec<Vec<Value>> {
    let input = QueryInput::DruidSql { sql: sql.into(), parameters: Vec::new() };
    let result = f.store.engine().start(input, QuerySettings::default()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let result = result.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    oriel_store::query::values::rows(&result).into_iter().map(|r| r.as_array().unwrap().clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_answers_have_druids_shapes() {
    let f = fixture(600).await;
    let start = "2026-11-25T09:00:00Z";
    let total = f.count("SELECT count(*) FROM events").await;

    let ts = native_query(
        &f,
        json!({"queryType": "timeseries", "dataSource": "events", "intervals": [format!("{start}/P3D")], "granularity": "all",
               "aggregations": [{"type": "count", "name": "rows"}, {"type": "longSum", "name": "ms", "fieldName": "engaged_ms"}],
               "postAggregations": [{"type": "expression", "name": "avg", "expression": "if(\"rows\"!=0,(cast(\"ms\",'DOUBLE')/\"rows\"),null)"}]}),
    )
    .await;
    assert_eq!(ts[0]["result"]["rows"], json!(total));
    let ms = f.count("SELECT sum(engaged_ms) FROM events").await;
    assert_eq!(ts[0]["result"]["ms"], json!(ms));
    assert!((ts[0]["result"]["avg"].as_f64().unwrap() - ms as f64 / total as f64).abs() < 1e-9);

    // Hourly buckets are filled between the first and last event; skipEmptyBuckets leaves them out.
    let hourly = |skip: bool| {
        json!({"queryType": "timeseries", "dataSource": {"type": "table", "name": "events"},
               "intervals": {"type": "intervals", "intervals": [format!("{start}/P3D")]}, "granularity": "hour",
               "filter": {"type": "selector", "dimension": "site", "value": "zzz"},
               "aggregations": [{"type": "count", "name": "n"}], "context": {"skipEmptyBuckets": if skip { "true" } else { "false" }}})
    };
    let filled = native_query(&f, hourly(false)).await;
    assert!(filled.as_array().unwrap().len() > 24, "{filled}");
    assert!(filled.as_array().unwrap().iter().all(|b| b["result"]["n"] == json!(0)));
    assert_eq!(filled[1]["timestamp"].as_str().unwrap().len(), "2026-11-25T10:00:00.000Z".len());
    assert_eq!(native_query(&f, hourly(true)).await, json!([]));

    let top = native_query(
        &f,
        json!({"queryType": "topN", "dataSource": "events", "intervals": "1000/3000", "granularity": "all",
               "dimension": {"type": "default", "dimension": "country", "outputName": "Country"}, "threshold": 2,
               "metric": "Count", "aggregations": [{"type": "count", "name": "Count"}]}),
    )
    .await;
    let sql = druid_sql(&f, "SELECT country, COUNT(*) AS c FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2").await;
    let result = top[0]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    for (row, expected) in result.iter().zip(&sql) {
        assert_eq!((&row["Country"], &row["Count"]), (&expected[0], &expected[1]), "{top}");
    }

    let grouped = native_query(
        &f,
        json!({"queryType": "groupBy", "dataSource": "events", "intervals": ["1000/3000"], "granularity": "all",
               "dimensions": ["site", {"type": "extraction", "dimension": "__time", "outputName": "day",
                   "extractionFn": {"type": "timeFormat", "format": "yyyy-MM-dd", "timeZone": "Etc/UTC"}}],
               "aggregations": [{"type": "count", "name": "n"},
                                {"type": "cardinality", "name": "visitors", "fields": ["party_id"], "round": true},
                                {"type": "filtered", "filter": {"type": "in", "dimension": "event_type", "values": ["signup"]},
                                 "aggregator": {"type": "count", "name": "signups"}}],
               "having": {"type": "greaterThan", "aggregation": "n", "value": 10},
               "limitSpec": {"type": "default", "limit": 3, "columns": [{"dimension": "n", "direction": "descending", "dimensionOrder": "numeric"}]}}),
    )
    .await;
    let sql = druid_sql(
        &f,
        "SELECT site, TIME_FORMAT(__time, 'yyyy-MM-dd') AS d, COUNT(*) AS n, COUNT(DISTINCT party_id) AS v, \
         COUNT(*) FILTER (WHERE event_type = 'signup') AS s FROM events GROUP BY 1, 2 HAVING COUNT(*) > 10 ORDER BY 3 DESC LIMIT 3",
    )
    .await;
    assert_eq!(grouped.as_array().unwrap().len(), 3);
    assert_eq!(grouped[0]["version"], json!("v1"));
    assert_eq!(grouped[0]["timestamp"], json!("1000-01-01T00:00:00.000Z"));
    assert_eq!(grouped[0]["event"]["n"], sql[0][2]);
    for (row, expected) in grouped.as_array().unwrap().iter().zip(&sql) {
        assert_eq!(row["event"]["n"], expected[2], "{grouped}");
    }
    let by_key: BTreeMap<(String, String), Vec<Value>> =
        sql.iter().map(|r| ((r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()), r.clone())).collect();
    for row in grouped.as_array().unwrap() {
        let key = (row["event"]["site"].as_str().unwrap().to_string(), row["event"]["day"].as_str().unwrap().to_string());
        let Some(expected) = by_key.get(&key) else { continue };
        assert_eq!((&row["event"]["visitors"], &row["event"]["signups"]), (&expected[3], &expected[4]), "{row}");
    }

    let scan = native_query(
        &f,
        json!({"queryType": "scan", "dataSource": "events", "intervals": ["1000/3000"], "columns": ["__time", "event_id", "is_bot", "nope"],
               "resultFormat": "compactedList", "limit": 3, "order": "descending"}),
    )
    .await;
    assert_eq!(scan[0]["columns"], json!(["__time", "event_id", "is_bot", "nope"]));
    let events = scan[0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[0][0].as_i64().unwrap() >= events[1][0].as_i64().unwrap(), "newest first, as milliseconds");
    assert!(matches!(events[0][2].as_str(), Some("true" | "false")));
    assert_eq!(events[0][3], Value::Null);

    let boundary = native_query(&f, json!({"queryType": "timeBoundary", "dataSource": "events"})).await;
    let range = druid_sql(&f, "SELECT MIN(__time), MAX(__time) FROM events").await;
    assert_eq!(boundary[0]["result"], json!({"minTime": range[0][0], "maxTime": range[0][1]}));
    let max = native_query(&f, json!({"queryType": "timeBoundary", "dataSource": "events", "bound": "maxTime"})).await;
    assert_eq!(max[0]["result"], json!({"maxTime": range[0][1]}));

    let meta = native_query(
        &f,
        json!({"queryType": "segmentMetadata", "dataSource": "events", "merge": true, "analysisTypes": ["aggregators"],
               "lenientAggregatorMerge": true}),
    )
    .await;
    assert_eq!(meta[0]["columns"]["__time"]["type"], json!("LONG"));
    assert_eq!(meta[0]["columns"]["country"]["type"], json!("STRING"));
    assert_eq!(meta[0]["columns"]["screen_width"]["type"], json!("LONG"));
    assert_eq!(meta[0]["columns"]["pixel_ratio"]["type"], json!("DOUBLE"));
    assert_eq!(meta[0]["numRows"], json!(total));
    assert_eq!(meta[0]["aggregators"], json!({}));

    let search = native_query(
        &f,
        json!({"queryType": "search", "dataSource": "events", "intervals": ["1000/3000"], "granularity": "all",
               "searchDimensions": ["path"], "query": {"type": "insensitive_contains", "value": "P1"}, "limit": 3}),
    )
    .await;
    let values: Vec<&str> = search[0]["result"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["/p1", "/p10", "/p11"]);

    let md = native_query(&f, json!({"queryType": "dataSourceMetadata", "dataSource": "events"})).await;
    assert_eq!(md[0]["result"]["maxIngestedEventTime"], range[0][1]);

    // A data source that does not exist answers an empty list, as plywood expects.
    assert_eq!(native_query(&f, json!({"queryType": "timeBoundary", "dataSource": "nope"})).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_group_by_averages_per_day_counts() {
    let f = fixture(400).await;
    let answer = native_query(
        &f,
        json!({"queryType": "groupBy", "intervals": "1000/3000", "granularity": "all", "dimensions": [],
               "dataSource": {"type": "query", "query": {"queryType": "groupBy", "dataSource": "events",
                   "intervals": ["1000/3000"], "granularity": {"type": "period", "period": "P1D", "timeZone": "Etc/UTC"},
                   "dimensions": [], "aggregations": [{"type": "count", "name": "!T_0"}]}},
               "aggregations": [{"type": "doubleSum", "name": "!T_1", "fieldName": "!T_0"}, {"type": "count", "name": "!T_2"}],
               "postAggregations": [{"type": "expression", "name": "avg", "expression": "(\"!T_1\"/\"!T_2\")"}]}),
    )
    .await;
    let days = druid_sql(&f, "SELECT COUNT(*) FROM (SELECT TIME_FLOOR(__time, 'P1D') FROM events GROUP BY 1)").await;
    let days = days[0][0].as_f64().unwrap();
    assert_eq!(answer[0]["event"]["!T_2"].as_f64().unwrap(), days);
    assert!((answer[0]["event"]["avg"].as_f64().unwrap() - 400.0 / days).abs() < 1e-9, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_native_queries_get_clear_errors() {
    let f = fixture(10).await;
    let cases = [
        (
            json!({"queryType": "timeseries", "dataSource": "events", "intervals": "2026/2025", "granularity": "all"}),
            "ends before it starts",
        ),
        (
            json!({"queryType": "timeseries", "dataSource": "events", "intervals": "1000/3000", "granularity": "second"}),
            "buckets",
        ),
        (
            json!({"queryType": "topN", "dataSource": "events", "intervals": "1000/3000", "dimension": "site", "threshold": 3, "metric": "nope",
                "aggregations": [{"type": "count", "name": "n"}]}),
            "is not an aggregator",
        ),
        (
            json!({"queryType": "timeseries", "dataSource": "events", "filter": {"type": "javascript", "function": "x"}}),
            "JavaScript",
        ),
        (
            json!({"queryType": "timeseries", "dataSource": "events", "aggregations": [{"type": "sum", "name": "x"}]}),
            "unknown aggregator type",
        ),
        (
            json!({"queryType": "timeseries", "dataSource": "events", "postAggregations": [{"type": "expression", "name": "x", "expression": "1 +"}]}),
            "invalid expression",
        ),
        (
            json!({"queryType": "scan", "dataSource": "events", "filter": {"type": "regex", "dimension": "site", "pattern": "("}}),
            "invalid regular expression",
        ),
    ];
    for (query, part) in cases {
        let error = native::execute(std::sync::Arc::clone(f.store.engine()), query.clone()).await.unwrap_err().to_string();
        assert!(error.contains(part), "{query}: {error}");
    }
    // Thousands of clauses stay shallow: balanced, not a chain.
    let many: Vec<Value> =
        (0..5000).map(|i| json!({"type": "selector", "dimension": "site", "value": format!("s{i}")})).collect();
    let wide = json!({"queryType": "timeseries", "dataSource": "events", "granularity": "all",
                      "filter": {"type": "or", "fields": many}, "aggregations": [{"type": "count", "name": "n"}]});
    assert_eq!(native_query(&f, wide).await[0]["result"]["n"], json!(0));
    // Deep nesting is refused before it is read, not a stack overflow.
    let mut deep = json!({"type": "true"});
    for _ in 0..200 {
        deep = json!({"type": "not", "field": deep});
    }
    let error = native::execute(
        std::sync::Arc::clone(f.store.engine()),
        json!({"queryType": "timeseries", "dataSource": "events", "filter": deep}),
    )
    .await;
    assert!(error.unwrap_err().to_string().contains("nests deeper than 128 levels"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn druid_sql_names_and_catalog() {
    let f = fixture(20).await;
    assert_eq!(druid_sql(&f, "SELECT 1").await, vec![vec![json!(1)]]);
    let input = QueryInput::DruidSql { sql: "SELECT 1, COUNT(*) AS n FROM druid.events".into(), parameters: Vec::new() };
    let stream = f.store.engine().start(input, QuerySettings::default()).await.unwrap();
    let names: Vec<String> = stream.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["EXPR$0", "n"]);
    assert_eq!(druid_sql(&f, "SELECT COUNT(*) FROM \"druid\".\"events\"").await, vec![vec![json!(20)]]);
    assert_eq!(
        druid_sql(&f, "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA ORDER BY 1").await,
        vec![vec![json!("INFORMATION_SCHEMA")], vec![json!("druid")]]
    );
    assert_eq!(
        druid_sql(&f, "SELECT COUNT(*) > 0 AS exists_ FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'events'").await,
        vec![vec![json!(true)]]
    );
    let columns = druid_sql(
        &f,
        "SELECT COLUMN_NAME, JDBC_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM INFORMATION_SCHEMA.COLUMNS \
         WHERE TABLE_NAME = 'events' AND TABLE_SCHEMA = 'druid' ORDER BY ORDINAL_POSITION",
    )
    .await;
    assert_eq!(columns[0], vec![json!("__time"), json!(93), json!("NO"), json!("")]);
    assert!(columns.contains(&vec![json!("country"), json!(12), json!("YES"), json!("")]));
    // Identifiers are case-sensitive, as in Druid.
    let input = QueryInput::DruidSql { sql: "SELECT COUNTRY FROM events".into(), parameters: Vec::new() };
    assert!(f.store.engine().start(input, QuerySettings::default()).await.is_err());
}

/// One random aggregation query, written both as a native query and as SQL.
#[derive(Debug, Clone)]
struct Case {
    kind: usize,
    granularity: usize,
    dims: Vec<&'static str>,
    filter: usize,
}

const DIMENSIONS: [&str; 4] = ["country", "site", "path", "event_type"];
const GRANULARITIES: [(&str, &str); 4] = [("\"all\"", ""), ("\"hour\"", "PT1H"), ("\"day\"", "P1D"), ("period6", "PT6H")];

fn native_and_sql(case: &Case) -> (Value, String) {
    let (filters, sql_filters): ([Value; 5], [&str; 5]) = (
        [
            json!(null),
            json!({"type": "selector", "dimension": "country", "value": "NL"}),
            json!({"type": "in", "dimension": "event_type", "values": ["signup", "purchase"]}),
            json!({"type": "bound", "dimension": "screen_width", "lower": "1000", "ordering": "numeric"}),
            json!({"type": "and", "fields": [{"type": "not", "field": {"type": "selector", "dimension": "site", "value": "a"}},
                                             {"type": "selector", "dimension": "country", "value": null}]}),
        ],
        [
            "TRUE",
            "country = 'NL'",
            "event_type IN ('signup', 'purchase')",
            "screen_width >= 1000",
            "NOT (site = 'a') AND country IS NULL",
        ],
    );
    let (g_json, period) = GRANULARITIES[case.granularity];
    let granularity: Value = if g_json == "period6" {
        json!({"type": "period", "period": "PT6H", "timeZone": "Europe/Amsterdam"})
    } else {
        serde_json::from_str(g_json).unwrap()
    };
    let bucket = match (case.granularity, period) {
        (3, p) => format!("TIME_FLOOR(__time, '{p}', NULL, 'Europe/Amsterdam')"),
        (_, "") => String::new(),
        (_, p) => format!("TIME_FLOOR(__time, '{p}')"),
    };
    let aggregations = json!([
        {"type": "count", "name": "n"},
        {"type": "longSum", "name": "ms", "fieldName": "engaged_ms"},
        {"type": "cardinality", "name": "visitors", "fields": ["party_id"], "round": true},
        {"type": "filtered", "filter": {"type": "selector", "dimension": "is_bot", "value": "true"},
         "aggregator": {"type": "count", "name": "bots"}},
    ]);
    let sql_aggs = "COUNT(*) AS n, SUM(engaged_ms) AS ms, COUNT(DISTINCT party_id) AS visitors, \
                    COUNT(*) FILTER (WHERE is_bot) AS bots";
    let dims: Vec<&str> = match case.kind {
        0 => vec![],
        1 => case.dims[..1].to_vec(),
        _ => case.dims.clone(),
    };
    let mut select: Vec<String> = Vec::new();
    if !bucket.is_empty() {
        select.push(format!("{bucket} AS b"));
    }
    select.extend(dims.iter().map(|d| (*d).to_string()));
    let group = (1..=select.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    select.push(sql_aggs.into());
    let sql = format!(
        "SELECT {} FROM events WHERE {}{}",
        select.join(", "),
        sql_filters[case.filter],
        if group.is_empty() { String::new() } else { format!(" GROUP BY {group}") }
    );
    let common = json!({"dataSource": "events", "intervals": ["1000/3000"], "granularity": granularity,
                        "filter": filters[case.filter], "aggregations": aggregations});
    let mut query = common.as_object().unwrap().clone();
    match case.kind {
        0 => {
            query.insert("queryType".into(), json!("timeseries"));
            query.insert("context".into(), json!({"skipEmptyBuckets": true}));
        }
        1 => {
            query.insert("queryType".into(), json!("topN"));
            query.insert("dimension".into(), json!(dims[0]));
            query.insert("threshold".into(), json!(10_000));
            query.insert("metric".into(), json!("n"));
        }
        _ => {
            query.insert("queryType".into(), json!("groupBy"));
            query.insert("dimensions".into(), json!(dims));
        }
    }
    (Value::Object(query), sql)
}

/// Native rows flattened to (bucket?, dims…) → [n, ms, visitors, bots].
fn native_rows(case: &Case, answer: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    let numbers = |r: &Value| vec![r["n"].clone(), r["ms"].clone(), r["visitors"].clone(), r["bots"].clone()];
    for element in answer.as_array().unwrap() {
        let bucket = if case.granularity == 0 { vec![] } else { vec![millis(&element["timestamp"])] };
        match case.kind {
            0 => {
                out.insert(json!(bucket).to_string(), numbers(&element["result"]));
            }
            1 => {
                for r in element["result"].as_array().unwrap() {
                    let mut key = bucket.clone();
                    key.push(r[case.dims[0]].clone());
                    out.insert(json!(key).to_string(), numbers(r));
                }
            }
            _ => {
                let mut key = bucket.clone();
                key.extend(case.dims.iter().map(|d| element["event"][*d].clone()));
                out.insert(json!(key).to_string(), numbers(&element["event"]));
            }
        }
    }
    out
}

/// An ISO time (with any offset) as milliseconds, so zones compare equal.
fn millis(value: &Value) -> Value {
    json!(chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap().timestamp_millis())
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (0..3usize, 0..4usize, proptest::sample::subsequence(DIMENSIONS.to_vec(), 1..=2), 0..5usize)
        .prop_map(|(kind, granularity, dims, filter)| Case { kind, granularity, dims, filter })
}

#[test]
fn native_queries_give_the_numbers_of_the_equivalent_sql() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let f = runtime.block_on(fixture(1500));
    let config = ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(case in case_strategy())| {
        let (query, sql) = native_and_sql(&case);
        let (answer, rows) = runtime.block_on(async { (native_query(&f, query.clone()).await, druid_sql(&f, &sql).await) });
        let native = native_rows(&case, &answer);
        let width = rows.first().map_or(0, |r| r.len() - 4);
        let expected: BTreeMap<String, Vec<Value>> = rows
            .into_iter()
            // An aggregate over no rows has one row in SQL, and none (or zero counts) natively.
            .filter(|r| r[width] != json!(0) || case.kind == 0 && case.granularity == 0)
            .map(|r| {
                let mut key = r[..width].to_vec();
                if case.granularity != 0 {
                    key[0] = millis(&key[0]);
                }
                (json!(key).to_string(), r[width..].to_vec())
            })
            .collect();
        let native: BTreeMap<_, _> = native.into_iter().filter(|(_, v)| v[0] != json!(0) || case.kind == 0 && case.granularity == 0).collect();
        prop_assert_eq!(native, expected, "{}\n{}", query, sql);
    });
}

/// Days in a zone with daylight saving are 23 or 25 hours: empty-bucket filling must use the
/// same days as the grouping, or a day's rows would be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filled_days_follow_daylight_saving() {
    let f = Fixture::new().await;
    // Every two hours from 2026-03-05 to 2026-03-12 (clocks go forward in Los Angeles on the 8th).
    let start = 1_772_668_800_000; // 2026-03-05T00:00:00Z
    let events: Vec<_> = (0..84).map(|i| crate::event(i, "a", "p", start + i as i64 * 2 * HOUR)).collect();
    f.send(&events).await;
    f.wait_for_count(84).await;
    let answer = native_query(
        &f,
        json!({"queryType": "timeseries", "dataSource": "events", "intervals": "2026-03-01/2026-03-20",
               "granularity": {"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"},
               "aggregations": [{"type": "count", "name": "n"}]}),
    )
    .await;
    let sql = druid_sql(
        &f,
        "SELECT TIME_FLOOR(__time, 'P1D', NULL, 'America/Los_Angeles') AS d, COUNT(*) FROM events GROUP BY 1 ORDER BY 1",
    )
    .await;
    let native: Vec<(Value, Value)> =
        answer.as_array().unwrap().iter().map(|e| (millis(&e["timestamp"]), e["result"]["n"].clone())).collect();
    let expected: Vec<(Value, Value)> = sql.iter().map(|r| (millis(&r[0]), r[1].clone())).collect();
    assert_eq!(native, expected, "{answer}");
    assert_eq!(native.iter().map(|(_, n)| n.as_i64().unwrap()).sum::<i64>(), 84, "no row lost");
    assert!(answer.as_array().unwrap().iter().any(|e| e["timestamp"].as_str().unwrap().ends_with("-07:00")));
}
