//! Product analytics against an independent brute force: weeks of history with the awkward
//! cases (events out of order, a step repeated, the window's exact edge, one-event visitors,
//! equal timestamps, sessions cut by pauses per site, a change of clocks in the time zone) go
//! in by `oriel import`; more arrive live through the collector; one visitor is deleted. Every
//! answer of `/api/v1/analytics/*` is then recomputed by `tests/oracle/analytics.py` from the
//! imported file and the event log's dump.

use std::process::Command;

use oriel_collector::wire::tag::{TagBatch, TagEvent};
use oriel_core::Event;
use serde_json::{Value, json};

use crate::{Server, config_file, oriel, python, repo};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
const PATHS: [&str; 6] = ["/", "/pricing", "/docs", "/signup", "/blog/a", "/blog/b"];
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A fixed sequence (splitmix64) from `seed`: each call gives a number below its argument.
fn sequence(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |below: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % below
    }
}

struct History {
    events: Vec<Event>,
    next: usize,
}

impl History {
    fn push(&mut self, site: &str, party: &str, session: Option<&str>, kind: &str, path: Option<&str>, t: i64) {
        self.next += 1;
        let plan = if self.next.is_multiple_of(3) { "pro" } else { "free" };
        let country = ["NL", "US", "DE"].get(party.len() % 4).map(|c| (*c).to_string());
        self.events.push(Event {
            time: t,
            site: Some(site.into()),
            event_id: Some(format!("h{:05}", self.next)),
            event_type: kind.into(),
            party_id: Some(party.into()),
            session_id: session.map(str::to_string),
            path: if kind == "pageView" { path.map(str::to_string) } else { None },
            country,
            props: (kind == "signup").then(|| format!(r#"{{"plan":"{plan}"}}"#)),
            ..Event::default()
        });
    }
}

/// Weeks of history ending at `now`, with the edge cases named above.
fn history(now: i64) -> Vec<Event> {
    let mut random = sequence(17);
    let mut h = History { events: Vec::new(), next: 0 };
    // Pauses between events: within a session, at the 30-minute edge on both sides, past the
    // 10-minute timeout of site t, and long.
    let gaps = [1_000, 30_000, 5 * MIN, 30 * MIN, 30 * MIN + 1, 11 * MIN, 3 * 3_600_000];
    for v in 0..60u64 {
        let party = format!("v{v}{}", "x".repeat((v % 4) as usize));
        let site = if v % 5 == 0 { "t" } else { "s" };
        let tagged = v % 3 == 0;
        for visit in 0..1 + random(4) {
            let session = tagged.then(|| format!("{party}-{visit}"));
            let mut t = now - 40 * DAY + (random(38 * 24) as i64) * 3_600_000 + random(3_600_000) as i64;
            for _ in 0..1 + random(7) {
                let (kind, path) = match random(10) {
                    0 => ("signup", None),
                    1 => ("purchase", None),
                    2 => ("engagement", None),
                    _ => ("pageView", Some(PATHS[random(PATHS.len() as u64) as usize])),
                };
                h.push(site, &party, session.as_deref(), kind, path, t);
                t += gaps[random(gaps.len() as u64) as usize];
            }
        }
    }
    // One event only; two at the same millisecond; a funnel on the window's edge and just past it.
    h.push("s", "single", None, "pageView", Some("/"), now - 3 * DAY);
    h.push("s", "tie", None, "pageView", Some("/"), now - 2 * DAY);
    h.push("s", "tie", None, "pageView", Some("/pricing"), now - 2 * DAY);
    for (party, extra) in [("edge", 0), ("past", 1)] {
        let t = now - 5 * DAY;
        h.push("s", party, None, "pageView", Some("/"), t);
        h.push("s", party, None, "pageView", Some("/pricing"), t + 10 * MIN);
        h.push("s", party, None, "pageView", Some("/"), t + 20 * MIN);
        h.push("s", party, None, "pageView", Some("/signup"), t + 60 * MIN + extra);
    }
    // One tag session id under two visitors (a visitor id renewed mid-session): two sessions.
    h.push("s", "renewed-a", Some("shared"), "pageView", Some("/"), now - 4 * DAY);
    h.push("s", "renewed-b", Some("shared"), "pageView", Some("/pricing"), now - 4 * DAY + MIN);
    // The visitor who will be deleted.
    h.push("s", "gone", None, "pageView", Some("/"), now - DAY);
    h.push("s", "gone", None, "pageView", Some("/pricing"), now - DAY + MIN);
    // Out of order, as a backfill might be.
    let mut order = sequence(5);
    let mut events = h.events;
    for i in (1..events.len()).rev() {
        events.swap(i, order(i as u64 + 1) as usize);
    }
    events
}

fn send_live(server: &Server, vid: &str, paths: &[&str]) {
    let ev = paths
        .iter()
        .enumerate()
        .map(|(i, p)| TagEvent {
            id: Some(format!("live-{vid}-{i}")),
            t: "pageView".into(),
            url: Some(format!("https://a.example{p}")),
            ..TagEvent::default()
        })
        .collect();
    let batch = TagBatch { site: Some("s".into()), vid: Some(vid.into()), ev, ..TagBatch::default() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt
        .block_on(
            reqwest::Client::new()
                .post(format!("{}/e", server.base))
                .header("user-agent", CHROME)
                .body(serde_json::to_string(&batch).unwrap())
                .send(),
        )
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
}

fn request(server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new().request(method, format!("{}{path}", server.base)).bearer_auth(server.token());
        if let Some(body) = body {
            r = r.json(&body);
        }
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn analytics_match_a_brute_force_oracle() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let file = dir.path().join("history.jsonl");
    let lines: Vec<String> = history(now).iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let import = oriel().args(["import", "--data-dir", "d"]).arg(&file).current_dir(dir.path()).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));

    let config = config_file(
        dir.path(),
        "[collector]\nsession_timeout_minutes = 30\n\
         [store]\nflush_interval_seconds = 86400\nhousekeeping_interval_seconds = 86400\n\
         [[sites]]\nid = \"t\"\nsession_timeout_minutes = 10\n\
         [[goals]]\nname = \"signup_pro\"\neventType = \"signup\"\n\
         filters = [{ dimension = \"prop:plan\", op = \"is\", values = [\"pro\"] }]\n",
    );
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let imported = lines.len() as i64;
    server.wait_count("SELECT count(*) FROM events", imported);
    send_live(&server, "v1", &["/", "/pricing", "/signup"]);
    send_live(&server, "live1", &["/blog/a", "/", "/pricing"]);
    send_live(&server, "gone", &["/docs"]);
    server.wait_count("SELECT count(*) FROM events", imported + 7);
    let (status, deleted) = server.post("/api/v1/delete", json!({ "party_id": "gone" }));
    assert_eq!((status, deleted["deleted"].as_u64()), (200, Some(3)), "{deleted}");

    // Goals: the configuration's, and one made through the API.
    let (status, body) = request(&server, reqwest::Method::PUT, "/api/v1/goals/blogger", Some(json!({ "path": "/blog/*" })));
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&server, reqwest::Method::PUT, "/api/v1/goals/signup_pro", Some(json!({ "path": "/x" })));
    assert!(status == 400 && body["error"].as_str().unwrap().contains("configuration file"), "{body}");
    let (_, goals) = request(&server, reqwest::Method::GET, "/api/v1/goals", None);
    let names: Vec<(&str, bool)> =
        goals["goals"].as_array().unwrap().iter().map(|g| (g["name"].as_str().unwrap(), g["configured"] == true)).collect();
    assert_eq!(names, vec![("signup_pro", true), ("blogger", false)]);

    let zone = chrono_tz::Europe::Amsterdam;
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&zone).date_naive().format("%Y-%m-%d").to_string()
    };
    let scope = json!({ "range": { "start": date(now - 41 * DAY), "end": date(now + DAY) }, "timeZone": "Europe/Amsterdam" });
    let with = |extra: Value| {
        let mut r = scope.clone();
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let funnel_steps = json!([{ "path": "/" }, { "path": "/pricing" }, { "path": "/signup" }]);
    let cases: Vec<(&str, Value)> = vec![
        ("sessions", with(json!({ "breakdown": "country", "limit": 1000 }))),
        (
            "sessions",
            with(json!({ "site": "s", "filters": [{ "dimension": "country", "op": "is", "values": ["NL"] }], "limit": 1000 })),
        ),
        ("funnel", with(json!({ "steps": funnel_steps, "windowSeconds": 3600, "breakdown": "country", "limit": 100 }))),
        ("funnel", with(json!({ "steps": funnel_steps, "windowSeconds": 3600, "order": "strict" }))),
        (
            "funnel",
            with(
                json!({ "steps": [{ "goal": "blogger" }, { "eventType": "signup" }, { "goal": "signup_pro" }], "countBy": "session" }),
            ),
        ),
        ("funnel", with(json!({ "steps": [{ "path": "/" }, { "path": "/" }], "windowSeconds": 1800 }))),
        (
            "funnel",
            with(
                json!({ "steps": funnel_steps, "windowSeconds": 7200, "filters": [{ "dimension": "path", "op": "contains", "values": ["blog"] }] }),
            ),
        ),
        ("retention", with(json!({ "period": "week" }))),
        (
            "retention",
            with(
                json!({ "period": "day", "periods": 10, "cohortEvent": { "path": "/" }, "returnEvent": { "eventType": "signup" } }),
            ),
        ),
        ("retention", with(json!({ "period": "month", "site": "s" }))),
        ("paths", with(json!({ "from": "/", "depth": 3, "breadth": 3 }))),
        (
            "paths",
            with(
                json!({ "from": "/pricing", "direction": "previous", "depth": 2, "by": "event", "filters": [{ "dimension": "country", "op": "is", "values": ["US"] }] }),
            ),
        ),
    ];
    let mut answered = Vec::new();
    for (kind, body) in cases {
        let (status, answer) = server.post(&format!("/api/v1/analytics/{kind}"), body.clone());
        assert_eq!(status, 200, "{kind} {body}: {answer}");
        answered.push(json!({ "kind": kind, "request": body, "answer": answer }));
    }
    let (status, unknown) = server.post("/api/v1/analytics/funnel", with(json!({ "steps": funnel_steps, "window": 5 })));
    assert!(status == 400 && unknown["error"].as_str().unwrap().contains("unknown field \"window\""), "{unknown}");
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));

    // The live events, as the log holds them (the deleted visitor's left out).
    let dump = oriel().args(["log", "dump", "--data-dir"]).arg(dir.path().join("d")).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let live = dir.path().join("live.jsonl");
    std::fs::write(&live, &dump.stdout).unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(&cases, serde_json::to_vec(&answered).unwrap()).unwrap();
    let context = dir.path().join("context.json");
    let goals = json!([
        { "name": "signup_pro", "eventType": "signup", "filters": [{ "dimension": "prop:plan", "op": "is", "values": ["pro"] }] },
        { "name": "blogger", "path": "/blog/*" },
    ]);
    let context_json = json!({ "session_timeout_ms": 30 * MIN, "site_timeouts_ms": { "t": 10 * MIN }, "goals": goals });
    std::fs::write(&context, context_json.to_string()).unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/oracle/analytics.py"))
        .arg("--events")
        .args([&file, &live])
        .args(["--deleted", "gone", "--context"])
        .arg(&context)
        .arg("--cases")
        .arg(&cases)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "the oracle disagrees:\n{text}");
}
