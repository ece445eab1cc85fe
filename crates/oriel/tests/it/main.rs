//! End-to-end tests of the `oriel` binary on a temporary directory and a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Tests may unwrap and print (STYLE.md 5).

mod abuse;
mod analytics;
mod browser;
mod cli;
mod crash;
mod druid;
mod kafka;
mod oracle;
mod restart;
mod roles;
mod serve;
mod store;
mod ui;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The machine's CPUs, shared by the tests that load them: those take it shared; the abuse
/// test, whose point is to time answers under its own load, takes it alone, so the load of the
/// crash test or a browser next to it is not held against the server; so does the roles test,
/// whose six processes would otherwise starve the tests next to it.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// A share of the machine for a test that loads it.
pub(crate) fn shared_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The whole machine, for a test that times answers.
pub(crate) fn whole_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The binary under test.
pub(crate) fn oriel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oriel"))
}

/// A running `oriel serve`, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) stderr: mpsc::Receiver<String>,
    /// The data directory the server reported.
    pub(crate) data_dir: std::path::PathBuf,
}

impl Server {
    /// Starts `oriel serve` with `args` in `cwd` and waits until it listens.
    pub(crate) fn start(cwd: &Path, args: &[&str]) -> Self {
        Self::start_logging(cwd, args, "info")
    }

    /// [`Server::start`] with `RUST_LOG` set to `filter`.
    pub(crate) fn start_logging(cwd: &Path, args: &[&str], filter: &str) -> Self {
        Self::start_role("serve", cwd, args, &[("RUST_LOG", filter)])
    }

    /// Starts the `role` command (`serve`, `collect`, `ingest`, `query`) with `args` in `cwd`
    /// and `env` (`RUST_LOG` is `info` unless set there), and waits until it listens.
    #[allow(clippy::zombie_processes)] // Drop kills and waits for the child.
    pub(crate) fn start_role(role: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = oriel()
            .arg(role)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx.recv_timeout(deadline - std::time::Instant::now()).expect("server did not start listening");
            if let Some(at) = line.find("listening on http://") {
                let addr = line[at + "listening on ".len()..].split_whitespace().next().unwrap().to_string();
                let data_dir = line.split_whitespace().find_map(|w| w.strip_prefix("data_dir=")).expect("data_dir in the line");
                return Self { child, base: addr, stderr: rx, data_dir: cwd.join(data_dir) };
            }
        }
    }

    /// GET `path`, returning status and body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http_get(&format!("{}{path}", self.base))
    }

    /// Waits for `/readyz` to answer 200: up to a minute, as a debug build starting on a machine
    /// that other tests load can take a while.
    pub(crate) fn wait_ready(&self) {
        for _ in 0..1200 {
            if self.get("/readyz").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server never became ready");
    }

    /// Waits for `/readyz/query`: the store has caught up with the log after a restart.
    pub(crate) fn wait_query_ready(&self) {
        for _ in 0..1200 {
            if self.get("/readyz/query").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the store never caught up with the log");
    }

    /// Sends `signal` and returns the exit code, waiting at most 20 s.
    pub(crate) fn stop_with(mut self, signal: i32) -> Option<i32> {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on a child we own; no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not exit after signal {signal}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET with a fresh runtime, to keep tests free of async plumbing.
pub(crate) fn http_get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match reqwest::get(url).await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    })
}

/// A blocking POST of JSON with a bearer token (when given), returning status and parsed body.
pub(crate) fn http_post(url: &str, token: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut request = reqwest::Client::new().post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
            }
            Err(e) => (0, serde_json::Value::String(e.to_string())),
        }
    })
}

impl Server {
    /// The admin token the server created in its data directory.
    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-token")).unwrap().trim().to_string()
    }

    /// POSTs `body` to `path` with the admin token.
    pub(crate) fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        http_post(&format!("{}{path}", self.base), Some(&self.token()), body)
    }

    /// `oriel` pointed at this server: its URL in `ORIEL_URL`, its data directory (where the
    /// command finds the admin token) in `ORIEL_DATA_DIR`.
    pub(crate) fn cli(&self) -> Command {
        let mut command = oriel();
        command.env("ORIEL_URL", &self.base).env("ORIEL_DATA_DIR", &self.data_dir);
        command
    }

    /// Rows of a SQL query through the query API; panics on an error answer.
    pub(crate) fn sql(&self, query: &str) -> Vec<serde_json::Value> {
        let (status, body) = self.post("/api/v1/sql", serde_json::json!({ "query": query }));
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body.get("error").is_none(), "{query}: {body}");
        body["rows"].as_array().unwrap().clone()
    }

    /// The single integer a query returns.
    pub(crate) fn count(&self, query: &str) -> i64 {
        self.sql(query)[0][0].as_i64().unwrap()
    }

    /// Waits until `query` returns `n`.
    pub(crate) fn wait_count(&self, query: &str, n: i64) {
        for _ in 0..600 {
            if self.count(query) == n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{query} never reached {n}; it is {}", self.count(query));
    }
}

/// Writes `text` as `oriel.toml` in `dir` and returns its path.
pub(crate) fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("oriel.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The repository root.
pub(crate) fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The body of `POST /e` for visitor `vid` of `site`, with page views of the given ids, in the
/// collector's own wire types (a renamed field fails to compile here).
pub(crate) fn tag_batch(site: &str, vid: &str, uid: Option<&str>, ids: &[String]) -> String {
    use oriel_collector::wire::tag::{TagBatch, TagEvent};
    let ev = ids
        .iter()
        .map(|id| TagEvent {
            id: Some(id.clone()),
            t: "pageView".into(),
            url: Some("https://a.example/p".into()),
            ..TagEvent::default()
        })
        .collect();
    let batch = TagBatch { site: Some(site.into()), vid: Some(vid.into()), uid: uid.map(Into::into), ev, ..TagBatch::default() };
    serde_json::to_string(&batch).unwrap()
}

/// Stops a test of the Node clients with one line naming the missing install step.
pub(crate) fn require_node_packages() {
    if Command::new("node").arg("--version").output().is_err() {
        panic!("node is not installed (apt: nodejs): run scripts/test once, then cargo test works alone");
    }
    if !repo().join("node_modules/plywood").exists() {
        panic!("node_modules/plywood is missing (npm ci): run scripts/test once, then cargo test works alone");
    }
}

/// Stops a browser test with one line naming the missing install step, instead of a failure
/// deep inside Node.
pub(crate) fn require_browser_tools() {
    let missing =
        |what: &str| panic!("{what}: run scripts/test once (it installs what the tests need), then cargo test works alone");
    if Command::new("node").arg("--version").output().is_err() {
        missing("node is not installed (apt: nodejs)");
    }
    if !repo().join("node_modules/playwright-core").exists() {
        missing("node_modules is missing (npm ci)");
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        missing(&format!("{chromium} is missing (apt: chromium)"));
    }
}

/// The Python with the test command's packages (DuckDB), from `ORIEL_PYTHON` or the venv that
/// `scripts/test` makes.
pub(crate) fn python() -> String {
    if let Ok(p) = std::env::var("ORIEL_PYTHON") {
        return p;
    }
    let venv = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/oriel/venv/bin/python");
    assert!(venv.exists(), "{} is missing: run scripts/test, which creates it with tests/requirements.txt", venv.display());
    venv.to_str().unwrap().to_string()
}
