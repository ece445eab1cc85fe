//! The UI in real headless Chromium against a running `oriel serve` with generated events
//! (`tests/browser/ui.mjs` holds every number it shows against SQL), and the built UI: fresh,
//! and within its size budget.

use std::process::{Command, Stdio};

use crate::{Server, config_file, oriel, repo};

/// The UI's JavaScript, gzipped, must stay under this many bytes.
const JS_BUDGET_GZIP: usize = 250 * 1024;

#[test]
fn the_ui_in_chromium_shows_what_sql_says() {
    let _machine = crate::shared_machine();
    crate::require_browser_tools();
    let dir = tempfile::tempdir().unwrap();
    // Three days ending now, so the live view, today and yesterday all have events.
    let out = oriel()
        .args(["gen", "--events", "6000", "--days", "3", "--seed", "11", "--sites", "2", "--out", "events.jsonl"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = oriel().args(["import", "--data-dir", "d", "events.jsonl"]).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let password = "the editor's password";
    let mut add = oriel()
        .args(["user", "add", "editor", "--role", "admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(add.stdin.as_mut().unwrap(), format!("{password}\n").as_bytes()).unwrap();
    let entry = add.wait_with_output().unwrap();
    assert!(entry.status.success(), "{}", String::from_utf8_lossy(&entry.stderr));
    let config = config_file(dir.path(), &format!("[server]\n{}", String::from_utf8_lossy(&entry.stdout)));
    let server = Server::start(dir.path(), &["--config", &config, "--listen", "127.0.0.1:0", "--data-dir", "d"]);
    server.wait_ready();
    server.wait_query_ready();

    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo().join("target"), std::path::PathBuf::from)
        .join("ui-screenshots");
    let out = Command::new("node")
        .arg("tests/browser/ui.mjs")
        .args(["--base", &server.base, "--token", &server.token(), "--user", "editor", "--password", password])
        .args(["--site", "shop", "--shots"])
        .arg(&shots)
        .current_dir(repo())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tests/browser/ui.mjs:\n{text}");
    println!("{text}");
}

/// The committed `crates/server/ui-dist` is what `npm run build:ui` makes of `ui/`, and the
/// UI's JavaScript is within its budget.
#[test]
fn the_built_ui_is_fresh_and_within_budget() {
    let _machine = crate::shared_machine();
    crate::require_browser_tools();
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("npx")
        .args(["--no-install", "vite", "build", "--config", "ui/vite.config.ts", "--logLevel", "error", "--outDir"])
        .arg(out_dir.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "vite build: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let committed = repo().join("crates/server/ui-dist");
    let listing = |root: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    files.push((name, std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let (built, kept) = (listing(out_dir.path()), listing(&committed));
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert!(
        built == kept,
        "crates/server/ui-dist is stale: run `npm run build:ui` and commit it (built {:?}, committed {:?})",
        names(&built),
        names(&kept)
    );

    let sizes = oriel_server::ui::built_sizes();
    let js: usize = sizes.iter().filter(|(name, ..)| name.ends_with(".js")).map(|(_, _, gzip)| gzip).sum();
    println!("UI files (name, bytes, gzipped): {sizes:?}; JavaScript gzipped: {js} bytes");
    assert!(js > 0, "no JavaScript is embedded");
    assert!(js <= JS_BUDGET_GZIP, "the UI's JavaScript is {js} bytes gzipped, over the {JS_BUDGET_GZIP}-byte budget");
}
