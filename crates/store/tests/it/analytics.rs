//! Sessions, funnels, retention and paths over a small hand-made click stream whose answers
//! are worked out here by hand (the browser and oracle tests check them on generated data).

use oriel_core::Event;
use oriel_store::analytics::funnel::{FunnelRequest, Step, funnel};
use oriel_store::analytics::paths::{PathsRequest, paths};
use oriel_store::analytics::retention::{RetentionRequest, retention};
use oriel_store::analytics::scope::Scope;
use oriel_store::analytics::sessions::{SessionsRequest, sessions};
use oriel_store::analytics::{AnalyticsContext, Goal};
use oriel_store::report::request::RangeSpec;

use crate::{Fixture, T0};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn view(party: &str, session: Option<&str>, path: &str, t: i64, n: &mut usize) -> Event {
    *n += 1;
    Event {
        time: t,
        site: Some("s".into()),
        event_id: Some(format!("e{n:04}")),
        event_type: "pageView".into(),
        party_id: Some(party.into()),
        session_id: session.map(str::to_string),
        path: Some(path.into()),
        country: Some(if party.starts_with('n') { "NL" } else { "US" }.into()),
        ..Event::default()
    }
}

fn custom(party: &str, kind: &str, t: i64, n: &mut usize) -> Event {
    Event { event_type: kind.into(), path: None, ..view(party, None, "/", t, n) }
}

fn scope() -> Scope {
    Scope {
        site: Some("s".into()),
        range: RangeSpec { preset: None, start: Some("2026-11-01".into()), end: Some("2026-12-15".into()) },
        time_zone: None,
        filters: Vec::new(),
    }
}

fn context() -> AnalyticsContext {
    AnalyticsContext {
        session_timeout_ms: 30 * MIN,
        site_timeouts_ms: Default::default(),
        goals: vec![Goal {
            name: "bought".into(),
            site: None,
            event_type: Some("purchase".into()),
            path: None,
            filters: Vec::new(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_funnels_retention_and_paths_by_hand() {
    let f = Fixture::new().await;
    let n = &mut 0;
    let events = vec![
        // Visitor a: no session ids, two sessions (a 40-minute pause), then a purchase.
        view("a", None, "/", T0, n),
        view("a", None, "/pricing", T0 + 5 * MIN, n),
        view("a", None, "/", T0 + 45 * MIN, n),
        custom("a", "purchase", T0 + 50 * MIN, n),
        // Visitor nl: the tag's session id; one page (a bounce), then back a week later.
        view("nl", Some("t1"), "/pricing", T0 + MIN, n),
        view("nl", Some("t2"), "/", T0 + 7 * DAY, n),
        // Visitor b: /, /pricing, then purchase two days later (outside a 1-day window).
        view("b", None, "/", T0, n),
        view("b", None, "/pricing", T0 + MIN, n),
        custom("b", "purchase", T0 + 2 * DAY, n),
    ];
    // Out of order, half persisted and half live.
    let mut shuffled = events.clone();
    shuffled.reverse();
    f.send(&shuffled[..4]).await;
    f.wait_for_count(4).await;
    f.store.flush().await.unwrap();
    f.send(&shuffled[4..]).await;
    f.wait_for_count(events.len() as i64).await;
    let engine = f.store.engine();
    let now = T0 + 20 * DAY;
    let ctx = context();

    let s =
        sessions(engine, &ctx, &SessionsRequest { scope: scope(), breakdown: Some("country".into()), ..Default::default() }, now)
            .await
            .unwrap();
    // a: 2 sessions ({/, /pricing}, {/, purchase}); nl: 2 ({/pricing}, {/}); b: 2 ({/, /pricing}, {purchase}).
    assert_eq!((s.totals.sessions, s.totals.visitors), (6, 3), "{s:?}");
    // Page views: 2 + 1 + 1 + 1 + 2 + 0 = 7 over 6 sessions; bounces: sessions with one view
    // among those with any: a's second, nl's two = 3 of 5.
    assert!((s.totals.pages_per_session.unwrap() - 7.0 / 6.0).abs() < 1e-9, "{s:?}");
    assert!((s.totals.bounce_rate.unwrap() - 60.0).abs() < 1e-9, "{s:?}");
    // Durations: 5 min, 5 min, 0, 0, 1 min, 0 → 11 min / 6.
    assert!((s.totals.avg_duration_seconds.unwrap() - 110.0).abs() < 1e-9, "{s:?}");
    let entries: Vec<(String, u64)> = s.entry_pages.iter().map(|e| (e.key.as_str().unwrap().to_string(), e.sessions)).collect();
    assert_eq!(entries, vec![("/".to_string(), 4), ("/pricing".to_string(), 1)]);
    assert_eq!(s.breakdown.iter().map(|b| (b.key.as_str().unwrap(), b.sessions)).collect::<Vec<_>>(), vec![("US", 4), ("NL", 2)]);

    let step = |path: Option<&str>, goal: Option<&str>| Step {
        path: path.map(str::to_string),
        goal: goal.map(str::to_string),
        ..Step::default()
    };
    let request = FunnelRequest {
        scope: scope(),
        steps: vec![step(Some("/"), None), step(Some("/pricing"), None), step(None, Some("bought"))],
        ..Default::default()
    };
    let answer = funnel(engine, &ctx, &request, now).await.unwrap();
    let counts: Vec<u64> = answer.totals.steps.iter().map(|s| s.count).collect();
    // a: / → /pricing → purchase within a day; b: purchase after two days; nl: / only after /pricing.
    assert_eq!(counts, vec![3, 2, 1], "{answer:?}");
    assert_eq!(answer.totals.steps[1].median_seconds_from_previous, Some(180.0), "a: 5 min, b: 1 min");
    let wide = funnel(engine, &ctx, &FunnelRequest { window_seconds: Some(3 * 86_400), ..request.clone() }, now).await.unwrap();
    assert_eq!(wide.totals.steps.iter().map(|s| s.count).collect::<Vec<_>>(), vec![3, 2, 2]);
    let per_session =
        funnel(engine, &ctx, &FunnelRequest { count_by: Some("session".into()), ..request.clone() }, now).await.unwrap();
    // Sessions: a1 {/, /pricing}, a2 {/, purchase}, nl2 {/}, b1 {/, /pricing}: none buys after /pricing.
    assert_eq!(per_session.totals.steps.iter().map(|s| s.count).collect::<Vec<_>>(), vec![4, 2, 0]);
    let strict = funnel(engine, &ctx, &FunnelRequest { order: Some("strict".into()), ..request }, now).await.unwrap();
    // a: /, /pricing, / , purchase — /pricing is not followed by purchase; b the same.
    assert_eq!(strict.totals.steps.iter().map(|s| s.count).collect::<Vec<_>>(), vec![3, 2, 0]);

    let r = retention(engine, &ctx, &RetentionRequest { scope: scope(), period: Some("week".into()), ..Default::default() }, now)
        .await
        .unwrap();
    // Everyone first seen in the week of T0 (Monday 2026-11-23); nl and b are back the week after.
    assert_eq!(r.cohorts.len(), 1, "{r:?}");
    assert_eq!(r.cohorts[0].start, "2026-11-23T00:00:00.000Z");
    assert_eq!((r.cohorts[0].size, &r.cohorts[0].returned[..2]), (3, &[3, 1][..]), "{r:?}");

    let p = paths(engine, &ctx, &PathsRequest { scope: scope(), from: "/".into(), depth: Some(2), ..Default::default() }, now)
        .await
        .unwrap();
    // "/" occurs 4 times: a1 → /pricing → end, a2 → end, nl2 → end, b1 → /pricing → end.
    assert_eq!(p.root.count, 4);
    let children: Vec<(&str, u64)> = p.root.children.iter().map(|c| (c.label.as_str(), c.count)).collect();
    assert_eq!(children, vec![("(end)", 2), ("/pricing", 2)]);

    // A goal is a report measure too: the visitors who converted.
    let report = oriel_store::report::ReportRequest {
        site: Some("s".into()),
        range: scope().range,
        measures: vec!["goal:bought".into(), "visitors".into()],
        ..Default::default()
    };
    let answer = oriel_store::report::run(engine, report.clone(), &ctx.goals, now).await.unwrap();
    assert_eq!(answer.totals.values, vec![serde_json::json!(2), serde_json::json!(3)]);
    // A goal may name any column: a page path on one site, from visitors of one country.
    let pricing = Goal {
        name: "pricing".into(),
        site: Some("s".into()),
        event_type: None,
        path: Some("/pri*".into()),
        filters: vec![oriel_store::report::request::FilterSpec {
            dimension: "country".into(),
            op: "is".into(),
            values: vec!["US".into()],
        }],
    };
    let by_goal = oriel_store::report::ReportRequest { measures: vec!["goal:pricing".into()], ..report.clone() };
    let answer = oriel_store::report::run(engine, by_goal, &[pricing], now).await.unwrap();
    assert_eq!(answer.totals.values, vec![serde_json::json!(2)], "a and b saw /pricing from the US; nl is NL");
    let unknown = oriel_store::report::run(engine, report, &[], now).await.unwrap_err().to_string();
    assert!(unknown.contains("unknown goal \"bought\""), "{unknown}");
}
