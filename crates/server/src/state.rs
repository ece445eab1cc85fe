//! Shared state of the HTTP handlers, filled in as start-up progresses.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oriel_collector::Collector;
use oriel_core::ErrorCode;
use oriel_core::config::NodeRole;
use oriel_log::EventLog;
use oriel_store::Store;

use crate::ApiError;
use crate::api::delete::DeletionLimit;
use crate::auth::Auth;

/// Renders the process's metrics in Prometheus text format.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// A service that appears once start-up has recovered it: requests that need it before then
/// are answered 503 with `Retry-After`.
#[derive(Debug)]
pub struct Latch<T> {
    value: OnceLock<T>,
    what: &'static str,
}

impl<T> Latch<T> {
    fn new(what: &'static str) -> Self {
        Self { value: OnceLock::new(), what }
    }

    /// Publishes the service; the first call wins (start-up calls it once).
    pub fn set(&self, value: T) {
        let _ = self.value.set(value);
    }

    /// The service, if it is up.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The service, or 503 while it is starting.
    pub fn ready(&self) -> Result<&T, ApiError> {
        self.get().ok_or_else(|| ApiError::new(ErrorCode::Unavailable, format!("the {} is starting, retry shortly", self.what)))
    }
}

/// Per-request limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request body must arrive within this time.
    pub body_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { body_read_timeout: Duration::from_secs(30) }
    }
}

/// What the UI's "Your data" page and site switcher show about this installation.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// Where the data lives.
    pub data_dir: String,
    /// How many days events are kept.
    pub retention_days: u32,
    /// The configured sites.
    pub sites: Vec<SiteAbout>,
    /// What is stored about visitors and how, in sentences.
    pub privacy: Vec<String>,
    /// The GeoIP database in use, described.
    pub geoip: Option<String>,
}

/// A configured site.
#[derive(Debug, Clone, Default)]
pub struct SiteAbout {
    /// Its id.
    pub id: String,
    /// The zone its days are cut in.
    pub time_zone: Option<String>,
    /// Days its events are kept; 0 = forever.
    pub retention_days: u32,
}

/// What handlers can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: MetricsRenderer,
    log: Latch<Arc<dyn EventLog>>,
    store: Latch<Arc<Store>>,
    collector: Latch<Arc<Collector>>,
    divolte_json_path: Option<String>,
    auth: Auth,
    limits: HttpLimits,
    deletions: DeletionLimit,
    about: OnceLock<About>,
    analytics: OnceLock<crate::api::analytics::Analytics>,
    live: crate::api::report::LiveCache,
    role: OnceLock<NodeRole>,
    cluster_token: OnceLock<String>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl AppState {
    /// State of a process that is starting: nothing recovered yet. `divolte_json_path` enables
    /// the Divolte endpoints, with the JSON one at that path; `auth` decides who may read.
    pub fn new(metrics: MetricsRenderer, divolte_json_path: Option<String>, auth: Auth, limits: HttpLimits) -> Self {
        let inner = Inner {
            metrics,
            log: Latch::new("event log"),
            store: Latch::new("store"),
            collector: Latch::new("collector"),
            divolte_json_path,
            auth,
            limits,
            deletions: DeletionLimit::default(),
            about: OnceLock::new(),
            analytics: OnceLock::new(),
            live: crate::api::report::LiveCache::default(),
            role: OnceLock::new(),
            cluster_token: OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Sets what this process does (once, before the router is built); `oriel serve` when unset.
    pub fn set_role(&self, role: NodeRole) {
        let _ = self.inner.role.set(role);
    }

    /// What this process does.
    pub fn role(&self) -> NodeRole {
        self.inner.role.get().copied().unwrap_or(NodeRole::Serve)
    }

    /// Sets the secret query nodes present to read this ingest node's live events (once).
    pub fn set_cluster_token(&self, token: String) {
        let _ = self.inner.cluster_token.set(token);
    }

    /// The cluster's secret, on an ingest node.
    pub(crate) fn cluster_token(&self) -> Option<&str> {
        self.inner.cluster_token.get().map(String::as_str)
    }

    /// The event log, once recovered.
    pub fn log(&self) -> &Latch<Arc<dyn EventLog>> {
        &self.inner.log
    }

    /// The store, once opened.
    pub fn store(&self) -> &Latch<Arc<Store>> {
        &self.inner.store
    }

    /// The collector, once built.
    pub fn collector(&self) -> &Latch<Arc<Collector>> {
        &self.inner.collector
    }

    /// Who may read analytics, and how they prove it.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Sets what the UI shows about this installation (once, at start).
    pub fn set_about(&self, about: About) {
        let _ = self.inner.about.set(about);
    }

    /// Sets how sessions are cut and which goals exist (once, at start).
    pub fn set_analytics(&self, analytics: crate::api::analytics::Analytics) {
        let _ = self.inner.analytics.set(analytics);
    }

    /// How sessions are cut and which goals exist, once set.
    pub(crate) fn analytics(&self) -> Option<&crate::api::analytics::Analytics> {
        self.inner.analytics.get()
    }

    /// What the UI shows about this installation.
    pub(crate) fn about(&self) -> About {
        self.inner.about.get().cloned().unwrap_or_default()
    }

    /// The live snapshots last taken.
    pub(crate) fn live_cache(&self) -> &crate::api::report::LiveCache {
        &self.inner.live
    }

    /// The rate limit of deletions.
    pub(crate) fn deletions(&self) -> &DeletionLimit {
        &self.inner.deletions
    }

    /// Per-request limits.
    pub fn limits(&self) -> HttpLimits {
        self.inner.limits
    }

    /// The path of the Divolte JSON endpoint, when Divolte compatibility is on.
    pub(crate) fn divolte_json_path(&self) -> Option<&str> {
        self.inner.divolte_json_path.as_deref()
    }

    /// Whether the process does its role: when it collects, the log is recovered and the
    /// collector built, so an event sent now is accepted; when it ingests or queries, the store
    /// is open. Queries may still be catching up: see the store's lag.
    pub fn is_ready(&self) -> bool {
        let role = self.role();
        let log = self.inner.log.get().is_some();
        (!role.collects() || (log && self.inner.collector.get().is_some()))
            && (!role.ingests() || (log && self.inner.store.get().is_some_and(|s| !s.fenced())))
            && (!role.queries() || self.inner.store.get().is_some())
    }

    /// The metrics text.
    pub(crate) fn render_metrics(&self) -> String {
        (self.inner.metrics)()
    }
}
