//! Druid compatibility through the running binary: the real clients (pydruid as Superset uses
//! it, plywood as Turnilo uses it) with every number held against DuckDB, golden requests and
//! answers for every query type and result format, and users made with `oriel user add`.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{Server, config_file, oriel, python, repo};

/// Writes `events` generated events over `days` days ending at `end` to `file`.
fn generate(dir: &Path, file: &str, events: &str, days: &str, seed: &str, end: &str) {
    let out = oriel()
        .args(["gen", "--events", events, "--days", days, "--seed", seed, "--end", end, "--out", file])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Imports `file` into the data directory `d` of `dir`.
fn import(dir: &Path, file: &str) {
    let out = oriel().args(["import", "--data-dir", "d", file]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `oriel user add` with the password on standard input: the configuration entry it prints.
fn user_add(name: &str, role: &str, password: &str) -> std::process::Output {
    let mut child = oriel()
        .args(["user", "add", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn oriel_user_add_prints_an_entry_and_refuses_bad_input() {
    let out = user_add("ana.b", "admin", "a long enough password");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(
        entry.starts_with("[[server.users]]\nname = \"ana.b\"\nrole = \"admin\"\npassword_hash = \"$argon2id$v=19$"),
        "{entry}"
    );
    assert!(!entry.contains("a long enough password"));
    let short = user_add("ana", "viewer", "short");
    assert!(!short.status.success());
    assert_eq!(String::from_utf8_lossy(&short.stderr), "error: the password must have at least 8 characters\n");
    let bad = user_add("ana b", "viewer", "a long enough password");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("must be 1 to 64 letters, digits"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn pydruid_and_plywood_answers_equal_duckdbs() {
    let _machine = crate::shared_machine();
    crate::require_node_packages();
    let dir = tempfile::tempdir().unwrap();
    let (start, end) = ("2026-11-24T00:00:00Z", "2026-11-27T00:00:00Z");
    generate(dir.path(), "events.jsonl", "20000", "3", "7", end);
    import(dir.path(), "events.jsonl");
    let entry = user_add("superset", "viewer", "superset's password");
    assert!(entry.status.success(), "{}", String::from_utf8_lossy(&entry.stderr));
    let config = config_file(dir.path(), &format!("[server]\n{}", String::from_utf8_lossy(&entry.stdout)));
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    server.wait_query_ready();
    let out = Command::new(python())
        .arg(repo().join("tests/druid/clients.py"))
        .args(["--url", &server.base, "--user", "superset", "--password", "superset's password"])
        .arg("--events")
        .arg(dir.path().join("events.jsonl"))
        .args(["--start", start, "--end", end])
        .arg("--plywood")
        .arg(repo().join("tests/druid/plywood.mjs"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "clients.py:\n{text}");
    println!("{text}");
}

/// Whether `actual` matches `expected`, where `"*"` in `expected` matches any value.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == "*" => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|x| matches(v, x)))
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y)),
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

/// `actual` with the wildcards of `expected` kept, for blessing.
fn keep_wildcards(expected: Option<&Value>, actual: Value) -> Value {
    match (expected, actual) {
        (Some(Value::String(s)), _) if s == "*" => Value::String("*".into()),
        (Some(Value::Object(e)), Value::Object(a)) => Value::Object(
            a.into_iter()
                .map(|(k, v)| {
                    let kept = keep_wildcards(e.get(&k), v);
                    (k, kept)
                })
                .collect(),
        ),
        (Some(Value::Array(e)), Value::Array(a)) => {
            Value::Array(a.into_iter().enumerate().map(|(i, v)| keep_wildcards(e.get(i), v)).collect())
        }
        (_, actual) => actual,
    }
}

/// The keys of each object of a JSON array, in the order the text has them (parsed maps sort
/// them), so the golden files also hold select-list order.
fn key_orders(text: &str) -> Option<Vec<Vec<String>>> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    serde_json::from_str::<Vec<Keys>>(text).ok().map(|rows| rows.into_iter().map(|k| k.0).collect())
}

/// The headers golden files check.
const CHECKED_HEADERS: [&str; 4] = ["content-type", "x-druid-sql-header-included", "x-druid-sql-query-id", "x-druid-query-id"];

/// Every file in `tests/druid/golden` is a request and the answer it must get over a fixed data
/// set. `ORIEL_BLESS=1` writes the answers Oriel gives now (keeping `"*"` wildcards): review
/// the diff before committing it.
#[test]
fn golden_requests_get_golden_answers() {
    let _machine = crate::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "events.jsonl", "400", "1", "42", "2026-11-27T00:00:00Z");
    import(dir.path(), "events.jsonl");
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    server.wait_query_ready();
    let bless = std::env::var("ORIEL_BLESS").is_ok_and(|v| v == "1");
    let client = reqwest::blocking::Client::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("tests/druid/golden")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 50, "the golden files are missing");
    let mut failures = Vec::new();
    for path in files {
        let mut golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let request = &golden["request"];
        let url = format!("{}{}", server.base, request["path"].as_str().unwrap());
        let mut builder = match request["method"].as_str().unwrap() {
            "GET" => client.get(&url),
            _ => client.post(&url),
        };
        builder = builder.bearer_auth(server.token());
        match &request["body"] {
            Value::Null => {}
            Value::String(text) => {
                let kind = request["contentType"].as_str().unwrap_or("text/plain");
                builder = builder.header("content-type", kind).body(text.clone());
            }
            body => builder = builder.header("content-type", "application/json").body(body.to_string()),
        }
        let response = builder.send().unwrap();
        let status = response.status().as_u16();
        let headers: serde_json::Map<String, Value> = CHECKED_HEADERS
            .iter()
            .filter_map(|h| response.headers().get(*h).map(|v| (h.to_string(), Value::String(v.to_str().unwrap().to_string()))))
            .collect();
        let text = response.text().unwrap();
        // The SQL endpoint's objects keep the select list's order.
        let keys = if request["path"].as_str().is_some_and(|p| p.starts_with("/druid/v2/sql")) {
            key_orders(&text).and_then(|k| k.into_iter().next()).map(Value::from)
        } else {
            None
        };
        let body = if headers.get("content-type").and_then(Value::as_str).is_some_and(|t| t.starts_with("application/json")) {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if bless {
            let mut headers = Value::Object(headers);
            // Query ids differ per run: only their presence is golden.
            for id in ["x-druid-sql-query-id", "x-druid-query-id"] {
                if headers.get(id).is_some() && golden["headers"].get(id) != Some(&headers[id]) {
                    headers[id] = Value::String("*".into());
                }
            }
            golden["status"] = Value::from(status);
            if let Some(keys) = &keys {
                golden["keyOrder"] = keys.clone();
            }
            golden["headers"] = keep_wildcards(golden.get("headers"), headers);
            golden["response"] = keep_wildcards(golden.get("response"), body);
            std::fs::write(&path, serde_json::to_string_pretty(&golden).unwrap() + "\n").unwrap();
            continue;
        }
        let expected_headers = golden.get("headers").cloned().unwrap_or(Value::Object(Default::default()));
        if golden["status"] != status
            || !matches(&expected_headers, &Value::Object(headers.clone()))
            || !matches(&golden["response"], &body)
            || golden.get("keyOrder").is_some_and(|k| Some(k) != keys.as_ref())
        {
            failures.push(format!(
                "{name}: got {status} {}\n{}\nwanted {} {}\n{}",
                Value::Object(headers),
                serde_json::to_string(&body).unwrap().chars().take(1500).collect::<String>(),
                golden["status"],
                expected_headers,
                serde_json::to_string(&golden["response"]).unwrap().chars().take(1500).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden answers differ (ORIEL_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A wrong password is refused, and the server's log names the user but never the password.
#[test]
fn failed_sign_ins_are_logged_by_name_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let entry = user_add("eve", "viewer", "eve's real password");
    let config = config_file(dir.path(), &format!("[server]\n{}", String::from_utf8_lossy(&entry.stdout)));
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let client = reqwest::blocking::Client::new();
    let ask = |password: &str| {
        client
            .post(format!("{}/druid/v2/sql", server.base))
            .basic_auth("eve", Some(password))
            .json(&serde_json::json!({"query": "SELECT 1"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ask("a wrong secret"), 401);
    assert_eq!(ask("eve's real password"), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let line = server.stderr.recv_timeout(std::time::Duration::from_secs(10)).expect("no log line about the refusal");
        if line.contains("refused an invalid credential") {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no log line about the refusal");
    };
    assert!(line.contains(r#"user="eve""#) && line.contains(r#"path="/druid/v2/sql""#), "{line}");
    assert!(!line.contains("wrong secret"), "{line}");
}
