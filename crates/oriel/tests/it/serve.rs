//! `oriel serve` as a user runs it.

use std::time::Duration;

use crate::{Server, http_get};

/// No file and no data directory: data in ./oriel-data, clean exit on SIGTERM.
#[test]
fn serves_with_no_configuration_at_all() {
    let cwd = tempfile::tempdir().unwrap();
    // Only the port is chosen (the default, 127.0.0.1:8080, may be taken on a test machine;
    // the example config test pins it): no file, no data directory, no variables.
    let server = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"]);
    server.wait_ready();
    assert_eq!(server.get("/healthz"), (200, "ok\n".into()));
    assert!(cwd.path().join("oriel-data/log/meta.json").exists());
    assert_eq!(server.stop_with(libc::SIGTERM), Some(0));
}

#[test]
fn metrics_list_the_log_series() {
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start(cwd.path(), &["--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200);
    for series in [
        "oriel_log_appended_records_total 0",
        "oriel_log_appended_bytes_total 0",
        "oriel_log_disk_bytes{partition=\"0\"} 0",
        "# HELP oriel_log_disk_bytes bytes of segment files on disk, per partition",
    ] {
        assert!(body.contains(series), "missing {series} in\n{body}");
    }
    // One acknowledged event: the append rate, the group size and fsync latency histograms
    // (which exist from their first sample on) and the bytes on disk all move.
    assert_eq!(server.get("/e.gif?site=metrics&t=pageView&url=https%3A%2F%2Fm.example%2F").0, 200);
    let (_, body) = server.get("/metrics");
    let value = |name: &str| -> f64 {
        let line = body.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("missing {name} in\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("oriel_log_appended_records_total "), 1.0);
    assert_eq!(value("oriel_log_group_commit_records_count "), 1.0);
    assert_eq!(value("oriel_log_group_commit_records_sum "), 1.0);
    assert!(value("oriel_log_fsync_seconds_count ") >= 1.0);
    assert!(body.contains("oriel_log_fsync_seconds_bucket{le=\"0.001\"}"), "{body}");
    assert!(value("oriel_log_disk_bytes{partition=\"0\"} ") > 0.0);
    assert_eq!(server.stop_with(libc::SIGINT), Some(0));
}

#[test]
fn environment_overrides_apply_to_serve() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = crate::oriel()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env("ORIEL_LOG__EMBEDDED__PARTITIONS", "0")
        .output()
        .unwrap();
    assert!(!child.status.success());
    let stderr = String::from_utf8(std::mem::take(&mut child.stderr)).unwrap();
    assert_eq!(
        stderr,
        "error: environment variable ORIEL_LOG__EMBEDDED__PARTITIONS: key `log.embedded.partitions` has invalid value 0: \
         must be between 1 and 1024\n"
    );
}

#[test]
fn a_bad_flag_is_named_as_the_flag() {
    let cwd = tempfile::tempdir().unwrap();
    let out = crate::oriel().args(["serve", "--listen", "localhost"]).current_dir(cwd.path()).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: command-line flag --listen: key `server.listen` has invalid value \"localhost\": an IP address and port \
         such as \"127.0.0.1:8080\" or \"[::1]:8080\"\n"
    );
}

#[test]
fn a_second_server_on_the_same_data_is_refused_clearly() {
    let cwd = tempfile::tempdir().unwrap();
    let first = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"]);
    first.wait_ready();
    let second = Server::start(cwd.path(), &["--listen", "127.0.0.1:0"]);
    let mut lines = Vec::new();
    let mut second = second;
    let status = second.child.wait().unwrap();
    while let Ok(line) = second.stderr.recv_timeout(Duration::from_millis(200)) {
        lines.push(line);
    }
    assert_eq!(status.code(), Some(1));
    let all = lines.join("\n");
    assert!(
        all.contains("cannot open the event log") && all.contains("held by another process; stop the other oriel first"),
        "{all}"
    );
    assert_eq!(http_get(&format!("{}/healthz", first.base)).0, 200);
}

/// Regression: log lines written to a pipe or file carried ANSI colour codes.
#[test]
fn log_lines_to_a_pipe_have_no_colour_codes() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = crate::oriel()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        let done = line.contains("store opened");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "{lines:#?}");
}

/// `oriel signin` on the server's machine prints a one-time link; opening it signs a browser in
/// (a session cookie that queries work with), and it works only once.
#[test]
fn a_signin_link_from_the_command_line_signs_a_browser_in_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    let out = server.cli().args(["signin", "--viewer"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(link.starts_with(&format!("{}/signin?code=", server.base)), "{link}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signs the browser in as viewer"));

    let browser = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let opened = browser.get(&link).send().unwrap();
    assert_eq!(opened.status().as_u16(), 303);
    let cookie = opened.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let who = browser.get(format!("{}/api/v1/session", server.base)).header("cookie", &cookie).send().unwrap().text().unwrap();
    assert!(who.contains(r#""role":"viewer""#), "{who}");
    let home = browser.get(format!("{}/", server.base)).send().unwrap();
    assert!(home.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(home.text().unwrap().contains("<div id=\"app\">"), "the UI's page");
    let query = browser
        .post(format!("{}/api/v1/sql", server.base))
        .header("cookie", &cookie)
        .header("origin", &server.base)
        .json(&serde_json::json!({ "query": "SELECT 1 AS one" }))
        .send()
        .unwrap();
    assert_eq!(query.status().as_u16(), 200);
    assert_eq!(query.json::<serde_json::Value>().unwrap()["rows"], serde_json::json!([[1]]));
    assert_eq!(browser.get(&link).send().unwrap().status().as_u16(), 401, "the link works once");
}
