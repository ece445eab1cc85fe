#![allow(clippy::expect_used, missing_docs)]
//! Embeds the uap-core user-agent rules that ship inside the `ua-parser` crate's package.
//!
//! The rules are data maintained by the uap-core project; the `ua-parser` crate on crates.io
//! carries a copy (`uap-core/regexes.yaml`), so the registry download that provides the parser
//! also provides its rules. This script finds that file in Cargo's registry sources (or takes
//! `ORIEL_UAP_REGEXES`), converts it to JSON and writes it to `OUT_DIR` for `include_str!`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=ORIEL_UAP_REGEXES");
    let source = find_rules().unwrap_or_else(|| {
        panic!(
            "cannot find uap-core's regexes.yaml in the ua-parser crate sources under $CARGO_HOME/registry/src; \
             set ORIEL_UAP_REGEXES=/path/to/regexes.yaml"
        )
    });
    println!("cargo:rerun-if-changed={}", source.display());
    let yaml = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let value: serde_json::Value =
        serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", source.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("uap-regexes.json");
    std::fs::write(&out, serde_json::to_string(&value).expect("JSON")).expect("write OUT_DIR");
}

fn find_rules() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ORIEL_UAP_REGEXES") {
        return Some(PathBuf::from(path));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(Result::ok)
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().filter_map(Result::ok))
        .filter(|krate| krate.file_name().to_str().is_some_and(|n| n.starts_with(&format!("ua-parser-{UA_PARSER}"))))
        .map(|krate| krate.path().join("uap-core/regexes.yaml"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The version of `ua-parser` in Cargo.toml, whose package carries the rules.
const UA_PARSER: &str = "0.2.";
