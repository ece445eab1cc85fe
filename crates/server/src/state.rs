//! Shared state of the HTTP handlers.

use std::fmt;
use std::sync::{Arc, OnceLock};

use oriel_log::EventLog;

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
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl AppState {
    /// State of a process that is starting: nothing recovered yet.
    pub fn new(metrics: MetricsRenderer) -> Self {
        Self { inner: Arc::new(Inner { metrics, log: OnceLock::new() }) }
    }

    /// Publishes the recovered event log; from now on the process is ready.
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
        self.inner.log.get().is_some()
    }

    /// The metrics text.
    pub fn render_metrics(&self) -> String {
        (self.inner.metrics)()
    }
}
