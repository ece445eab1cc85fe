//! The configuration tree.
//!
//! Oriel runs with no configuration file at all; every key has a default (see
//! `oriel.example.toml`, which documents each one). A file given with `--config` and `ORIEL_*`
//! environment variables override the defaults, in that order. Unknown keys are rejected, and
//! [`Config::validate`] checks every value before anything starts, so a mistake is reported at
//! start with the key, the bad value and what is allowed.
//!
//! Environment variables name a key by its path with `__` between levels:
//! `ORIEL_DATA_DIR=/srv/oriel`, `ORIEL_SERVER__LISTEN=0.0.0.0:8080`,
//! `ORIEL_LOG__EMBEDDED__SEGMENT_BYTES=67108864`. Values are read as TOML values when they parse
//! as one (numbers, booleans, arrays) and as strings otherwise. A variable whose first part is
//! not a top-level key and that has no `__` (`ORIEL_CONFIG`, `ORIEL_URL`) is not configuration
//! and is left alone; one with `__` is, so `ORIEL_LOGG__PARTITIONS` is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod cluster;
mod collector;
mod goals;
mod log;
mod object_store;
mod server;
mod store;

pub use cluster::{ClusterConfig, MIN_CLUSTER_TOKEN_CHARS, NodeRole};
pub use collector::{BUILT_IN_GEOIP, Cidr, CollectorConfig, DivolteConfig, IpHandling, SiteConfig};
pub use goals::{FilterSpec, Goal};
pub use log::{EmbeddedLogConfig, KAFKA_RESERVED_PROPERTIES, KafkaLogConfig, LogConfig};
pub use object_store::ObjectStoreConfig;
pub use server::{ApiToken, Role, ServerConfig, User};
pub use store::{Partitioning, StoreConfig};

/// Environment variables with this prefix override configuration keys.
pub(crate) const ENV_PREFIX: &str = "ORIEL_";

/// A configuration problem, reported before Oriel starts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid TOML.
    #[error("{origin}: not valid TOML: {message}")]
    Syntax {
        /// The file the text came from.
        origin: String,
        /// The parser's description, with line and column.
        message: String,
    },
    /// A key is unknown or its value has the wrong type.
    #[error("{origin}: key `{key}`: {message}")]
    Shape {
        /// The file or environment variable the offending key came from.
        origin: String,
        /// Dotted path of the key.
        key: String,
        /// What is wrong, and what is expected.
        message: String,
    },
    /// A value has the right type but is not allowed.
    #[error("{origin}: key `{key}` has invalid value {value}: {allowed}")]
    Invalid {
        /// The file or environment variable the value came from (or "default").
        origin: String,
        /// Dotted path of the key.
        key: String,
        /// The value given, as written.
        value: String,
        /// What values are allowed.
        allowed: String,
    },
}

/// The whole configuration of one Oriel process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the event log and the store. Created when missing.
    pub data_dir: PathBuf,
    /// HTTP server.
    pub server: ServerConfig,
    /// Event log.
    pub log: LogConfig,
    /// Collector: limits, privacy, enrichment, Divolte compatibility.
    pub collector: CollectorConfig,
    /// Store: segments, flushing, compaction, retention.
    pub store: StoreConfig,
    /// Sites that send events (`[[sites]]`).
    pub sites: Vec<SiteConfig>,
    /// Named conversions (`[[goals]]`).
    pub goals: Vec<Goal>,
    /// How the roles of a scaled-out installation find each other (`oriel collect`, `ingest`,
    /// `query`); `oriel serve` ignores it.
    pub cluster: ClusterConfig,
    /// Where segments and manifests are kept: S3 (or an S3-compatible server), or local disk.
    pub object_store: ObjectStoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./oriel-data"),
            server: ServerConfig::default(),
            log: LogConfig::default(),
            collector: CollectorConfig::default(),
            store: StoreConfig::default(),
            sites: Vec::new(),
            goals: Vec::new(),
            cluster: ClusterConfig::default(),
            object_store: ObjectStoreConfig::default(),
        }
    }
}

/// Tracks where each key's value came from, so an error can name the file, variable or flag.
#[derive(Debug, Default)]
struct Origins {
    file: String,
    /// Dotted key → "environment variable ORIEL_X" or "command-line flag --x".
    overrides: BTreeMap<String, String>,
}

impl Origins {
    fn of(&self, key: &str) -> String {
        // The longest override that is the key itself or one of its parents set the value.
        self.overrides
            .iter()
            .filter(|(path, _)| {
                key == path.as_str() || key.starts_with(&format!("{path}.")) || path.starts_with(&format!("{key}."))
            })
            .max_by_key(|(path, _)| path.len())
            .map(|(_, origin)| origin.clone())
            .unwrap_or_else(|| self.file.clone())
    }
}

impl Config {
    /// Loads the configuration: defaults, then the file text (named `origin` in errors), then the
    /// `ORIEL_*` variables among `env`, then validation.
    pub fn load(file: Option<(&str, &str)>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        Self::load_with_flags(file, env, Vec::new())
    }

    /// [`Config::load`] with command-line flags applied last: `(dotted key, flag, value)`, each
    /// string value named by its flag in errors.
    pub fn load_with_flags(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Vec<(&str, &str, String)>,
    ) -> Result<Self, ConfigError> {
        let mut origins = Origins { file: "defaults".into(), overrides: BTreeMap::new() };
        let mut table = match file {
            Some((origin, text)) => {
                origins.file = origin.to_string();
                text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax {
                    origin: origin.to_string(),
                    message: e.message().to_string() + &location(text, e.span()),
                })?
            }
            None => toml::Table::new(),
        };
        let top_level: Vec<String> = match toml::Value::try_from(Config::default()) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for (var, value) in env {
            let Some(name) = var.strip_prefix(ENV_PREFIX) else { continue };
            let path = name.to_ascii_lowercase().replace("__", ".");
            // `ORIEL_<KEY>` and `ORIEL_<SECTION>__<KEY>` are configuration; other single-word
            // names (ORIEL_CONFIG, ORIEL_URL, ORIEL_TOKEN) belong to the command line.
            let first = path.split('.').next().unwrap_or_default();
            if !top_level.iter().any(|k| k == first) && !name.contains("__") {
                continue;
            }
            set_path(&mut table, &path, parse_env_value(&value)).map_err(|message| ConfigError::Shape {
                origin: format!("environment variable {var}"),
                key: path.clone(),
                message,
            })?;
            origins.overrides.insert(path, format!("environment variable {var}"));
        }
        for (key, flag, value) in flags {
            set_path(&mut table, key, toml::Value::String(value)).map_err(|message| ConfigError::Shape {
                origin: format!("command-line flag {flag}"),
                key: key.to_string(),
                message,
            })?;
            origins.overrides.insert(key.to_string(), format!("command-line flag {flag}"));
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().to_string();
            ConfigError::Shape { origin: origins.of(&key), key, message }
        })?;
        config.collector.upgrade(&|key: &str, value: String, allowed: &str| ConfigError::Invalid {
            origin: origins.of(key),
            key: key.to_string(),
            value,
            allowed: allowed.to_string(),
        })?;
        config.validate_with(&origins)?;
        Ok(config)
    }

    /// Checks every value; the error names the key, the value and what is allowed.
    fn validate_with(&self, origins: &Origins) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: String, allowed: &str| ConfigError::Invalid {
            origin: origins.of(key),
            key: key.to_string(),
            value,
            allowed: allowed.to_string(),
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "\"\"".into(), "a directory path"));
        }
        self.server.validate(&invalid)?;
        self.log.validate(&invalid)?;
        self.collector.validate(&self.sites, &invalid)?;
        self.store.validate(&invalid)?;
        goals::validate(&self.goals, &invalid)?;
        self.cluster.validate(&invalid)?;
        self.object_store.validate(&invalid)?;
        if let Some(max_append) = self.log.max_append_bytes()
            && self.collector.max_body_bytes > max_append
        {
            return Err(invalid(
                "collector.max_body_bytes",
                self.collector.max_body_bytes.to_string(),
                "at most log.embedded.max_append_bytes, so one accepted request always fits one append",
            ));
        }
        Ok(())
    }
}

pub(crate) fn check_range(
    invalid: &impl Fn(&str, String, &str) -> ConfigError,
    key: &str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, value.to_string(), &format!("must be between {min} and {max}")))
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return String::new() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" (line {line}, column {column})")
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop().filter(|s| !s.is_empty()) else {
        return Err("empty key".into());
    };
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| format!("`{part}` is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_file_gives_defaults() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./oriel-data"));
    }

    #[test]
    fn environment_overrides_file() {
        let file = "data_dir = \"/srv/a\"\n[log.embedded]\npartitions = 8\n";
        let config = Config::load(
            Some(("oriel.toml", file)),
            env(&[("ORIEL_LOG__EMBEDDED__PARTITIONS", "16"), ("ORIEL_SERVER__LISTEN", "0.0.0.0:9000"), ("HOME", "/x")]),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/a"));
        assert_eq!(config.log.partitions(), 16);
        assert_eq!(config.server.listen, "0.0.0.0:9000");
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = Config::load(None, env(&[("ORIEL_LOG__PARTITIONZ", "3")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable ORIEL_LOG__PARTITIONZ: key `log.partitionz`: unknown field `partitionz`, \
             expected one of `type`, `embedded`, `kafka`"
        );
    }

    #[test]
    fn kafka_is_one_section_away_and_guards_its_own_settings() {
        let file = "[log]\ntype = \"kafka\"\n[log.kafka]\nbrokers = \"k1:9092,k2:9093\"\npartitions = 6\n\
                    [log.kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n";
        let config = Config::load(Some(("oriel.toml", file)), env(&[])).unwrap();
        let LogConfig::Kafka(kafka) = &config.log else { panic!("{:?}", config.log) };
        assert_eq!(
            (kafka.brokers.as_str(), kafka.topic.as_str(), config.log.partitions()),
            ("k1:9092,k2:9093", "oriel-events", 6)
        );
        assert_eq!(kafka.properties["security.protocol"], "SASL_SSL");
        for (bad, named) in [
            ("[log.kafka.properties]\n\"enable.auto.commit\" = \"true\"", "log.kafka.properties.enable.auto.commit"),
            ("[log.kafka]\nbrokers = \"k1\"", "log.kafka.brokers"),
            ("[log.kafka]\ntopic = \"a/b\"", "log.kafka.topic"),
            ("[log.kafka]\ncompression = \"brotli\"", "log.kafka.compression"),
        ] {
            let err = Config::load(Some(("oriel.toml", &format!("[log]\ntype = \"kafka\"\n{bad}\n"))), env(&[])).unwrap_err();
            assert!(err.to_string().contains(&format!("key `{named}` has invalid value")), "{err}");
        }
    }

    #[test]
    fn other_oriel_variables_are_not_configuration() {
        let config =
            Config::load(None, env(&[("ORIEL_CONFIG", "x.toml"), ("ORIEL_URL", "http://a"), ("ORIEL_PYTHON", "/p")])).unwrap();
        assert_eq!(config, Config::default());
        let err = Config::load(None, env(&[("ORIEL_LOGG__PARTITIONS", "2")])).unwrap_err();
        assert!(
            err.to_string().starts_with("environment variable ORIEL_LOGG__PARTITIONS: key `logg`: unknown field `logg`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_environment_value_is_named() {
        let err = Config::load(None, env(&[("ORIEL_LOG__EMBEDDED__PARTITIONS", "0")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable ORIEL_LOG__EMBEDDED__PARTITIONS: key `log.embedded.partitions` has invalid value 0: \
             must be between 1 and 1024"
        );
    }

    #[test]
    fn a_missing_geoip_database_and_a_hostless_origin_are_refused_at_start() {
        let err = Config::load(Some(("o.toml", "[collector]\ngeoip_database = \"/no/such.mmdb\"\n")), env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: key `collector.geoip_database` has invalid value \"/no/such.mmdb\": \"built-in\" (the country \
             database inside oriel), the path of an existing MaxMind .mmdb file, or empty (no location)"
        );
        let err = Config::load(Some(("o.toml", "[[sites]]\nid = \"a\"\norigins = [\"https://\"]\n")), env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("o.toml: key `sites[0].origins` has invalid value \"https://\""), "{err}");
    }

    #[test]
    fn the_replaced_anonymize_ip_still_reads() {
        use super::collector::IpHandling;
        let load = |text: &str| Config::load(Some(("o.toml", text)), env(&[]));
        assert_eq!(load("[collector]\nanonymize_ip = false\n").unwrap().collector.ip_handling, IpHandling::Keep);
        assert_eq!(load("[collector]\nanonymize_ip = true\n").unwrap().collector.ip_handling, IpHandling::Anonymize);
        let both = load("[collector]\nanonymize_ip = false\nip_handling = \"drop\"\n").unwrap_err().to_string();
        assert!(both.contains("ip_handling replaces it"), "{both}");
        assert_eq!(load("[collector]\nanonymize_ip = true\n").unwrap(), Config::default(), "nothing of it is kept");
    }

    #[test]
    fn a_short_token_is_reported_by_its_length_only() {
        let file = "[server]\napi_tokens = [\"s3cret\"]\n";
        let err = Config::load(Some(("o.toml", file)), env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: key `server.api_tokens[0]` has invalid value (a token of 6 characters): tokens of at least 16 characters"
        );
        let file = "[[sites]]\nid = \"a\"\nwrite_keys = [\"short-key\"]\n";
        let err = Config::load(Some(("o.toml", file)), env(&[])).unwrap_err().to_string();
        assert!(!err.contains("short-key"), "{err}");
    }

    #[test]
    fn tokens_take_a_role() {
        let file = "[server]\napi_tokens = [\"viewer-token-0123456\", { token = \"admin-token-0123456\", role = \"admin\" }]\n";
        let config = Config::load(Some(("o.toml", file)), env(&[])).unwrap();
        let roles: Vec<Role> = config.server.api_tokens.iter().map(ApiToken::role).collect();
        assert_eq!(roles, vec![Role::Viewer, Role::Admin]);
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = Config::load(Some(("bad.toml", "[log]\npartitions = = 3\n")), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
