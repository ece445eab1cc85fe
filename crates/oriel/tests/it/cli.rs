//! `oriel version` and `oriel check-config`.

use std::path::PathBuf;

use crate::oriel;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn check(path: &PathBuf) -> (bool, String, String) {
    let out = oriel().arg("check-config").arg(path).env_remove("ORIEL_CONFIG").output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn version_prints_the_crate_version() {
    let out = oriel().arg("version").output().unwrap();
    assert!(out.status.success());
    // The tests run a debug build.
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("oriel {} (debug build)\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn good_file_passes() {
    let path = fixture("good.toml");
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}: ok (listen 0.0.0.0:9090, data in /var/lib/oriel, embedded log with 8 partitions)\n", path.display())
    );
}

#[test]
fn unknown_key_is_named_with_the_allowed_keys() {
    let path = fixture("unknown_key.toml");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "error: {}: key `log.embedded.partitons`: unknown field `partitons`, expected one of `partitions`, \
             `retention_hours`, `retention_bytes`, `retention_check_seconds`, `segment_bytes`, \
             `group_commit_interval_ms`, `max_append_bytes`, `preallocate`\n",
            path.display()
        )
    );
}

#[test]
fn invalid_value_names_key_value_and_range() {
    let path = fixture("invalid_value.toml");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "error: {}: key `log.embedded.segment_bytes` has invalid value 100: must be between 4096 and 1099511627776\n",
            path.display()
        )
    );
}

#[test]
fn bad_listen_address_says_what_is_expected() {
    let path = fixture("bad_listen.toml");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "error: {}: key `server.listen` has invalid value \"localhost\": an IP address and port such as \
             \"127.0.0.1:8080\" or \"[::1]:8080\"\n",
            path.display()
        )
    );
}

#[test]
fn wrong_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, "[log.embedded]\npartitions = \"many\"\n").unwrap();
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!("error: {}: key `log.embedded.partitions`: invalid type: string \"many\", expected u32\n", path.display())
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let (ok, _, stderr) = check(&PathBuf::from("/nonexistent/oriel.toml"));
    assert!(!ok);
    assert!(stderr.starts_with("error: cannot read configuration file /nonexistent/oriel.toml:"), "{stderr}");
}

/// The documented example must be exactly the defaults, so the docs cannot drift from the code.
#[test]
fn example_config_documents_the_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../oriel.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = oriel_core::Config::load(Some(("oriel.example.toml", &text)), Vec::new()).unwrap();
    assert_eq!(parsed, oriel_core::Config::default());
    let (ok, _, stderr) = check(&path);
    assert!(ok, "{stderr}");
    // Equal values prove nothing about a key the example leaves out: every key must be written.
    let mut written = std::collections::BTreeSet::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            written.insert(format!("{section}{}", key.trim()));
        }
    }
    let mut keys = Vec::new();
    leaf_keys(&serde_json::to_value(oriel_core::Config::default()).unwrap(), "", &mut keys);
    // `sites` and `goals` are arrays of tables, shown as commented-out example entries.
    let missing: Vec<_> = keys.iter().filter(|k| !["sites", "goals"].contains(&k.as_str()) && !written.contains(*k)).collect();
    assert!(missing.is_empty(), "oriel.example.toml does not document {missing:?}");
}

/// Dotted paths of the non-null leaves (arrays count as leaves) of a JSON object.
fn leaf_keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                leaf_keys(v, &format!("{prefix}{k}."), out);
            }
        }
        serde_json::Value::Null => {}
        _ => out.push(prefix.trim_end_matches('.').to_string()),
    }
}
