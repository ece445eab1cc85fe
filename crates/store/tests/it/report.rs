//! Reports (the UI's query language) over the store: every measure, filter operator, split kind
//! and the comparison, each held against SQL written here for the same question.

use oriel_core::Event;
use oriel_store::report::{Report, ReportRequest, run};
use serde_json::{Value, json};

use crate::{Fixture, T0};

const HOUR: i64 = 3_600_000;
/// The report's "now": an hour after the last event.
const NOW: i64 = T0 + HOUR;

/// Sessions of page views and engagement and custom events over four days, from a fixed
/// pseudo-random sequence.
fn events() -> Vec<Event> {
    let mut next = crate::pseudo_random(0x9e37_79b9_7f4a_7c15u64);
    let mut out = Vec::new();
    for s in 0..400 {
        let party = format!("p{}", next(120));
        let start = T0 - 4 * 24 * HOUR + next(4 * 24 * HOUR as u64) as i64;
        let country = [Some("NL"), Some("US"), Some("DE"), None][next(4) as usize];
        let views = 1 + next(4) as i64;
        for v in 0..views {
            let mut base = Event {
                time: start + v * 60_000,
                site: Some(["a", "b"][next(2) as usize].into()),
                party_id: Some(party.clone()),
                session_id: Some(format!("s{s}")),
                path: Some(format!("/p{}", next(6))),
                country: country.map(Into::into),
                browser: Some(["Firefox", "Chrome"][next(2) as usize].into()),
                is_first_in_session: Some(v == 0),
                page_view_id: Some(format!("{s}-{v}")),
                props: (next(3) == 0).then(|| {
                    let plan = ["free", "pro"][next(2) as usize];
                    json!({"plan": plan, "seats": next(5)}).to_string()
                }),
                ..Event::default()
            };
            base.event_id = Some(format!("{s}-{v}-view"));
            base.event_type = "pageView".into();
            out.push(base.clone());
            if next(2) == 0 {
                let mut engagement = base.clone();
                engagement.event_id = Some(format!("{s}-{v}-eng"));
                engagement.event_type = "engagement".into();
                engagement.time += 30_000;
                engagement.engaged_ms = Some(next(90_000) as i64);
                engagement.scroll_depth = Some(next(101) as i32);
                out.push(engagement.clone());
                // The tag reports engagement cumulatively: a later report of the same page view
                // with larger values replaces the first.
                if next(2) == 0 {
                    engagement.event_id = Some(format!("{s}-{v}-eng2"));
                    engagement.time += 20_000;
                    engagement.engaged_ms = engagement.engaged_ms.map(|ms| ms + next(30_000) as i64);
                    engagement.scroll_depth = engagement.scroll_depth.map(|d| (d + next(30) as i32).min(100));
                    out.push(engagement);
                }
            }
            if next(5) == 0 {
                let mut custom = base.clone();
                custom.event_id = Some(format!("{s}-{v}-signup"));
                custom.event_type = "signup".into();
                custom.time += 40_000;
                out.push(custom);
            }
        }
    }
    // Flagged events are stored but never counted.
    for (i, flag) in ["bot", "duplicate"].into_iter().enumerate() {
        out.push(Event {
            time: T0 - HOUR,
            site: Some("a".into()),
            event_id: Some(format!("flagged-{i}")),
            event_type: "pageView".into(),
            party_id: Some(format!("flagged-{i}")),
            session_id: Some(format!("flagged-{i}")),
            path: Some("/p1".into()),
            is_bot: flag == "bot",
            is_duplicate: flag == "duplicate",
            ..Event::default()
        });
    }
    out
}

async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    let events = events();
    f.send(&events).await;
    f.wait_for_count(events.len() as i64).await;
    f
}

async fn report(f: &Fixture, request: Value) -> Report {
    let request: ReportRequest = serde_json::from_value(request.clone()).unwrap_or_else(|e| panic!("{request}: {e}"));
    run(f.store.engine(), request, &[], NOW).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn sql(f: &Fixture, query: &str) -> Vec<Vec<Value>> {
    let result = f.store.engine().collect(query).await.unwrap_or_else(|e| panic!("{query}: {e}"));
    oriel_store::query::values::rows(&result).into_iter().map(|r| r.as_array().unwrap().clone()).collect()
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

fn same_row(what: &str, got: &[Value], want: &[Value]) {
    assert!(got.len() == want.len() && got.iter().zip(want).all(|(a, b)| close(a, b)), "{what}: report {got:?}, SQL {want:?}");
}

const MEASURES: [&str; 9] = [
    "events",
    "pageviews",
    "visitors",
    "sessions",
    "bounceRate",
    "viewsPerSession",
    "avgEngagedSeconds",
    "avgScrollDepth",
    "event:signup",
];

/// The measures of MEASURES over the counted events of `scope` that `filter` lets through, in
/// SQL of its own: a session's page views are all of its page views in `scope`, and a page
/// view's engagement is its largest report.
fn measures_sql(scope: &str, filter: &str) -> String {
    format!(
        "WITH c AS (SELECT * FROM events WHERE {scope} AND NOT is_bot AND NOT is_duplicate AND NOT is_corrupt), \
         e AS (SELECT * FROM c WHERE {filter}), \
         s AS (SELECT session_id, count(*) FILTER (WHERE event_type = 'pageView') AS views FROM c \
               WHERE session_id IN (SELECT session_id FROM e) GROUP BY session_id), \
         p AS (SELECT COALESCE(page_view_id, event_id) AS page, max(engaged_ms) AS em, max(scroll_depth) AS sd FROM e \
               WHERE event_type = 'engagement' GROUP BY 1) \
         SELECT (SELECT count(*) FROM e) AS a, \
                (SELECT count(*) FROM e WHERE event_type = 'pageView') AS b, \
                (SELECT count(DISTINCT party_id) FROM e) AS c, \
                (SELECT count(DISTINCT session_id) FROM e) AS d, \
                (SELECT 100.0 * count(*) FILTER (WHERE views = 1) / NULLIF(count(*), 0) FROM s WHERE views > 0) AS e, \
                (SELECT CAST(count(*) FILTER (WHERE event_type = 'pageView') AS DOUBLE) / NULLIF(count(DISTINCT session_id), 0) FROM e) AS f, \
                (SELECT avg(em) / 1000.0 FROM p) AS g, \
                (SELECT avg(CAST(sd AS DOUBLE)) FROM p) AS h, \
                (SELECT count(*) FROM e WHERE event_type = 'signup') AS i"
    )
}

fn range_sql(start: i64, end: i64) -> String {
    format!("__time >= MILLIS_TO_TIMESTAMP({start}) AND __time < MILLIS_TO_TIMESTAMP({end})")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_measure_and_filter_equals_its_sql() {
    let f = fixture().await;
    let (start, end) = (T0 - 3 * 24 * HOUR, T0 + HOUR);
    let range = json!({"start": "2026-11-24T09:00:00Z", "end": "2026-11-27T10:00:00Z"});

    let totals = report(&f, json!({"range": range, "measures": MEASURES})).await;
    let want = &sql(&f, &measures_sql(&range_sql(start, end), "TRUE")).await[0];
    same_row("totals", &totals.totals.values, want);

    // Every filter operator, each against its SQL condition.
    let cases = [
        (json!({"dimension": "country", "op": "is", "values": ["NL", "DE"]}), "country IN ('NL', 'DE')"),
        (json!({"dimension": "country", "op": "isNot", "values": ["NL"]}), "(country IS NULL OR country <> 'NL')"),
        (json!({"dimension": "path", "op": "contains", "values": ["P1", "/p2"]}), "(path LIKE '%p1%' OR path LIKE '%p2%')"),
        (json!({"dimension": "path", "op": "notContains", "values": ["p1"]}), "(path IS NULL OR path NOT LIKE '%p1%')"),
        (json!({"dimension": "path", "op": "matches", "values": ["^/p[0-2]$"]}), "path IN ('/p0', '/p1', '/p2')"),
        (json!({"dimension": "country", "op": "set"}), "country IS NOT NULL"),
        (json!({"dimension": "country", "op": "notSet"}), "country IS NULL"),
        (
            json!({"dimension": "scroll_depth", "op": "between", "values": ["20", "50"]}),
            "scroll_depth >= 20 AND scroll_depth < 50",
        ),
        (json!({"dimension": "prop:plan", "op": "is", "values": ["pro"]}), "props LIKE '%\"plan\":\"pro\"%'"),
        (json!({"dimension": "is_first_in_session", "op": "is", "values": ["true"]}), "is_first_in_session"),
    ];
    for (filter, condition) in cases {
        let got = report(&f, json!({"range": range, "measures": MEASURES, "filters": [filter.clone()], "site": "a"})).await;
        let want = &sql(&f, &measures_sql(&format!("{} AND site = 'a'", range_sql(start, end)), condition)).await[0];
        same_row(&format!("filter {filter}"), &got.totals.values, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_sorts_limits_and_comparisons_equal_their_sql() {
    let f = fixture().await;
    let range = json!({"start": "2026-11-24T09:00:00Z", "end": "2026-11-27T10:00:00Z"});
    let r = format!("{} AND NOT is_bot AND NOT is_duplicate AND NOT is_corrupt", range_sql(T0 - 3 * 24 * HOUR, T0 + HOUR));

    // One dimension, the default order (the first measure, largest first), a limit.
    let got =
        report(&f, json!({"range": range, "split": [{"dimension": "path"}], "measures": ["visitors", "events"], "limit": 4}))
            .await;
    let want = sql(
        &f,
        &format!("SELECT path, count(DISTINCT party_id), count(*) FROM events WHERE {r} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"),
    )
    .await;
    assert_eq!(got.rows.len(), 4);
    assert!(got.truncated, "six paths, four shown");
    for (row, want) in got.rows.iter().zip(&want) {
        same_row("path split", &[row.keys.clone(), row.values.clone()].concat(), want);
    }

    // Two dimensions (a missing country is null), sorted by a measure ascending.
    let got = report(
        &f,
        json!({"range": range, "split": [{"dimension": "country"}, {"dimension": "browser"}], "measures": ["sessions"],
               "sort": {"by": "sessions", "desc": false}, "limit": 100}),
    )
    .await;
    let want = sql(
        &f,
        &format!(
            "SELECT country, browser, count(DISTINCT session_id) FROM events WHERE {r} GROUP BY 1, 2 \
             ORDER BY 3 ASC, 1 ASC NULLS FIRST, 2 ASC NULLS FIRST"
        ),
    )
    .await;
    assert_eq!(got.rows.len(), want.len());
    for (row, want) in got.rows.iter().zip(&want) {
        same_row("country and browser", &[row.keys.clone(), row.values.clone()].concat(), want);
    }

    // A custom property as a split.
    let got = report(
        &f,
        json!({"range": range, "split": [{"dimension": "prop:plan"}], "measures": ["events"], "sort": {"by": "prop:plan"}}),
    )
    .await;
    let want = sql(
        &f,
        &format!(
            "SELECT CASE WHEN props LIKE '%\"plan\":\"free\"%' THEN 'free' WHEN props LIKE '%\"plan\":\"pro\"%' THEN 'pro' END AS plan, \
             count(*) FROM events WHERE {r} GROUP BY 1 ORDER BY 1 ASC NULLS FIRST"
        ),
    )
    .await;
    let rows: Vec<Vec<Value>> = got.rows.iter().map(|row| [row.keys.clone(), row.values.clone()].concat()).collect();
    assert_eq!(rows, want);

    // Days in Amsterdam, compared with the days before: each bucket's previous value is the
    // same local hours one period earlier.
    let got = report(
        &f,
        json!({"range": {"start": "2026-11-25", "end": "2026-11-27"}, "timeZone": "Europe/Amsterdam", "split": [{"time": "P1D"}],
               "measures": ["pageviews"], "compare": "previous"}),
    )
    .await;
    assert_eq!(got.granularity.as_deref(), Some("P1D"));
    let local_day = |d: &str| oriel_store::druid::time::parse_instant(&format!("{d}T00:00:00+01:00")).unwrap();
    let days = ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"].map(local_day);
    let views = |i: usize| {
        format!(
            "SELECT count(*) FROM events WHERE event_type = 'pageView' AND NOT is_bot AND NOT is_duplicate AND {}",
            range_sql(days[i], days[i + 1])
        )
    };
    assert_eq!(got.rows.len(), 2);
    for (k, row) in got.rows.iter().enumerate() {
        assert_eq!(row.keys[0], json!(format!("2026-11-{}T00:00:00.000+01:00", 25 + k)));
        let now = &sql(&f, &views(k + 2)).await[0][0];
        let before = &sql(&f, &views(k)).await[0][0];
        same_row("day", &row.values, std::slice::from_ref(now));
        same_row("the day a period before", row.previous.as_deref().unwrap(), std::slice::from_ref(before));
    }
    assert_eq!(got.compare_range.as_ref().unwrap().start, "2026-11-23T00:00:00.000+01:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_name_the_problem() {
    let f = fixture().await;
    let bad = [
        (
            json!({"range": {"preset": "7d"}, "measures": ["events"], "split": [{"dimension": "nope"}]}),
            "unknown dimension \"nope\"",
        ),
        (json!({"range": {"preset": "7d"}, "measures": ["revenue"]}), "unknown measure \"revenue\""),
        (json!({"range": {"preset": "fortnight"}, "measures": ["events"]}), "unknown range preset \"fortnight\""),
        (json!({"range": {"preset": "7d"}, "measures": ["events"], "timeZone": "Mars/Olympus"}), "unknown time zone"),
        (
            json!({"range": {"preset": "7d"}, "measures": ["events"], "filters": [{"dimension": "path", "op": "matches", "values": ["("]}]}),
            "regular expression",
        ),
        (json!({"range": {"preset": "7d"}, "measures": ["events"], "limit": 0}), "limit must be between 1 and"),
        (json!({"range": {"start": "2026-11-27", "end": "2026-11-26"}, "measures": ["events"]}), "ends before it starts"),
    ];
    for (request, part) in bad {
        let parsed: ReportRequest = serde_json::from_value(request.clone()).unwrap();
        let error = run(f.store.engine(), parsed, &[], NOW).await.unwrap_err().to_string();
        assert!(error.contains(part), "{request}: {error}");
    }
    assert!(
        serde_json::from_value::<ReportRequest>(json!({"range": {}, "measures": [], "sql": "DROP"})).is_err(),
        "unknown keys are refused"
    );
}
