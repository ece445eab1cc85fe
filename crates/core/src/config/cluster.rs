//! The `[cluster]` section: how the roles of a scaled-out installation find each other.
//!
//! `oriel serve` ignores it. `oriel collect` needs only a Kafka log. `oriel ingest` writes its
//! segments into `store_dir` (shared with the query nodes) and serves its live buffer to them;
//! `oriel query` reads every ingest node's segments there and asks each node for its live events.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// Shortest cluster token accepted: it is the only thing between the network and every
/// ingest node's live events.
pub const MIN_CLUSTER_TOKEN_CHARS: usize = 32;

/// What one process of the binary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Everything in one process (`oriel serve`).
    Serve,
    /// The collector endpoints, writing to Kafka (`oriel collect`).
    Collect,
    /// Consumes its Kafka partitions into segments in the shared store (`oriel ingest`).
    Ingest,
    /// SQL, the Druid API and the UI over the shared store (`oriel query`).
    Query,
}

impl NodeRole {
    /// The command that runs the role.
    pub fn command(self) -> &'static str {
        match self {
            Self::Serve => "oriel serve",
            Self::Collect => "oriel collect",
            Self::Ingest => "oriel ingest",
            Self::Query => "oriel query",
        }
    }

    /// Whether the role runs the collector endpoints.
    pub fn collects(self) -> bool {
        matches!(self, Self::Serve | Self::Collect)
    }

    /// Whether the role consumes the event log into a store.
    pub fn ingests(self) -> bool {
        matches!(self, Self::Serve | Self::Ingest)
    }

    /// Whether the role answers queries (SQL, the Druid API, the UI).
    pub fn queries(self) -> bool {
        matches!(self, Self::Serve | Self::Query)
    }
}

/// Cluster settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The directory every ingest and query node shares (a network file system, or one
    /// machine's disk when trying the roles out). Each ingest node keeps its store in a
    /// directory in it named after its partitions, e.g. `partitions-0-1`. Empty:
    /// `<data_dir>/cluster`.
    pub store_dir: PathBuf,
    /// The secret query nodes show ingest nodes to read their live events; the same on every
    /// node, at least 32 characters. Best set through `ORIEL_CLUSTER__TOKEN`.
    pub token: String,
    /// Ingest role: the log partitions this node consumes. Each partition must be ingested by
    /// exactly one node; a node that takes over a dead one's partitions lists the same ones.
    pub partitions: Vec<u32>,
    /// Ingest role: the URL query nodes reach this node's HTTP port at, e.g.
    /// `http://10.0.0.5:8080`.
    pub advertise_url: String,
    /// Query role: how long a query waits for an ingest node's live events, in milliseconds,
    /// before answering from that node's persisted segments alone.
    pub live_timeout_ms: u64,
    /// Query role: the most bytes one ingest node's live events may take in one answer, in MiB.
    pub max_live_mb: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            store_dir: PathBuf::new(),
            token: String::new(),
            partitions: Vec::new(),
            advertise_url: String::new(),
            live_timeout_ms: 5000,
            max_live_mb: 1024,
        }
    }
}

impl ClusterConfig {
    pub(super) fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        check_range(invalid, "cluster.live_timeout_ms", self.live_timeout_ms, 100, 600_000)?;
        check_range(invalid, "cluster.max_live_mb", self.max_live_mb, 1, 1 << 20)?;
        let mut sorted = self.partitions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.partitions.len() {
            return Err(invalid("cluster.partitions", format!("{:?}", self.partitions), "each partition listed once"));
        }
        if !self.token.is_empty() && self.token.chars().count() < MIN_CLUSTER_TOKEN_CHARS {
            return Err(invalid(
                "cluster.token",
                "(hidden)".into(),
                "at least 32 characters; make one with `openssl rand -hex 32`",
            ));
        }
        Ok(())
    }

    /// The shared store directory, `<data_dir>/cluster` when none is set.
    pub fn store_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        if self.store_dir.as_os_str().is_empty() { data_dir.join("cluster") } else { self.store_dir.clone() }
    }

    /// The directory name of the store that holds `partitions` (sorted), e.g. `partitions-0-1`.
    pub fn store_name(partitions: &[u32]) -> String {
        let mut sorted = partitions.to_vec();
        sorted.sort_unstable();
        let mut name = String::from("partitions");
        for p in sorted {
            name.push('-');
            name.push_str(&p.to_string());
        }
        name
    }

    /// What `role` needs of this section and of the log, as a sentence naming the key to set;
    /// `Ok` when it has all of it. `log_partitions` and `kafka` describe the `[log]` section.
    pub fn check_for(&self, role: NodeRole, log_partitions: u32, kafka: bool) -> Result<(), String> {
        if matches!(role, NodeRole::Collect | NodeRole::Ingest) && !kafka {
            return Err(format!(
                "{} needs a log every node can reach: set [log] type = \"kafka\" (the embedded log belongs to one process; see docs/deploy.md)",
                role.command()
            ));
        }
        if matches!(role, NodeRole::Ingest | NodeRole::Query) && self.token.is_empty() {
            return Err(format!(
                "{} needs cluster.token, the same secret of at least 32 characters on every ingest and query node (e.g. ORIEL_CLUSTER__TOKEN=$(openssl rand -hex 32))",
                role.command()
            ));
        }
        if role == NodeRole::Ingest {
            if self.partitions.is_empty() {
                return Err(format!(
                    "oriel ingest needs cluster.partitions, the log partitions this node consumes (the log has {log_partitions}: 0 to {})",
                    log_partitions.saturating_sub(1)
                ));
            }
            if let Some(p) = self.partitions.iter().find(|&&p| p >= log_partitions) {
                return Err(format!(
                    "cluster.partitions lists {p}, but the log has {log_partitions} partitions (0 to {})",
                    log_partitions.saturating_sub(1)
                ));
            }
            let url = self.advertise_url.as_str();
            let host = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if host.is_none_or(|h| h.trim_end_matches('/').is_empty()) {
                return Err(format!(
                    "oriel ingest needs cluster.advertise_url, the http:// URL query nodes reach this node at (got {url:?})"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> ClusterConfig {
        ClusterConfig {
            token: "t".repeat(32),
            partitions: vec![1, 0],
            advertise_url: "http://127.0.0.1:9000".into(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn each_role_names_what_it_lacks() {
        let c = ready();
        assert_eq!(c.check_for(NodeRole::Ingest, 2, true), Ok(()));
        assert_eq!(c.check_for(NodeRole::Query, 2, false), Ok(()));
        assert_eq!(c.check_for(NodeRole::Serve, 1, false), Ok(()));
        assert!(c.check_for(NodeRole::Collect, 2, false).unwrap_err().contains("type = \"kafka\""));
        assert!(c.check_for(NodeRole::Ingest, 1, true).unwrap_err().contains("lists 1, but the log has 1"));
        let untokened = ClusterConfig { token: String::new(), ..ready() };
        assert!(untokened.check_for(NodeRole::Query, 2, true).unwrap_err().contains("cluster.token"));
        assert_eq!(untokened.check_for(NodeRole::Collect, 2, true), Ok(()));
        let unassigned = ClusterConfig { partitions: vec![], ..ready() };
        assert!(unassigned.check_for(NodeRole::Ingest, 4, true).unwrap_err().contains("0 to 3"));
        let unadvertised = ClusterConfig { advertise_url: "10.0.0.5:8080".into(), ..ready() };
        assert!(unadvertised.check_for(NodeRole::Ingest, 2, true).unwrap_err().contains("advertise_url"));
    }

    #[test]
    fn store_names_do_not_depend_on_the_order_given() {
        assert_eq!(ClusterConfig::store_name(&[3, 0, 1]), "partitions-0-1-3");
        assert_eq!(ready().store_dir(std::path::Path::new("/d")), PathBuf::from("/d/cluster"));
    }
}
