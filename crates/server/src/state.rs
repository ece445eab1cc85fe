//! Shared state of the HTTP handlers.

use std::fmt;
use std::sync::{Arc, OnceLock};

use oriel_collector::CollectorSlot;
use oriel_log::EventLog;
use oriel_store::Store;

/// Renders the process's metrics in Prometheus text format.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// What handlers can reach. Cheap to clone. Services appear once start-up has recovered them.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: MetricsRenderer,
    log: OnceLock<Arc<dyn EventLog>>,
    store: OnceLock<Arc<Store>>,
    collector: CollectorSlot,
    divolte_json_path: Option<String>,
    api_tokens: Vec<String>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl AppState {
    /// State of a process that is starting: nothing recovered yet. `divolte_json_path` enables
    /// the Divolte endpoints, with the JSON one at that path; `api_tokens` authorise the query
    /// APIs for clients that are not on loopback.
    pub fn new(metrics: MetricsRenderer, divolte_json_path: Option<String>, api_tokens: Vec<String>) -> Self {
        let inner = Inner {
            metrics,
            log: OnceLock::new(),
            store: OnceLock::new(),
            collector: CollectorSlot::new(),
            divolte_json_path,
            api_tokens,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Publishes the opened store.
    pub fn set_store(&self, store: Arc<Store>) {
        let _ = self.inner.store.set(store);
    }

    /// The store, once opened.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.inner.store.get()
    }

    /// Tokens that authorise the query APIs.
    pub fn api_tokens(&self) -> &[String] {
        &self.inner.api_tokens
    }

    /// Where the collector appears once it is built.
    pub fn collector(&self) -> &CollectorSlot {
        &self.inner.collector
    }

    /// The path of the Divolte JSON endpoint, when Divolte compatibility is on.
    pub fn divolte_json_path(&self) -> Option<&str> {
        self.inner.divolte_json_path.as_deref()
    }

    /// Publishes the recovered event log.
    pub fn set_log(&self, log: Arc<dyn EventLog>) {
        // Start-up calls this once; a second call would be a wiring bug and is ignored.
        let _ = self.inner.log.set(log);
    }

    /// The event log, once recovered.
    pub fn log(&self) -> Option<&Arc<dyn EventLog>> {
        self.inner.log.get()
    }

    /// Whether every service has finished recovery.
    pub fn is_ready(&self) -> bool {
        self.inner.log.get().is_some() && self.inner.collector.get().is_some() && self.inner.store.get().is_some()
    }

    /// The metrics text.
    pub fn render_metrics(&self) -> String {
        (self.inner.metrics)()
    }
}
