//! Logging (tracing to stderr, filtered by `RUST_LOG`) and the Prometheus metrics recorder.

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Sends `tracing` output to stderr; `RUST_LOG` overrides the default `info` level. Colours
/// only on a terminal (and never with `NO_COLOR`): in a file or pipe they are noise.
pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).try_init();
}

/// Installs the global metrics recorder, with histogram buckets for the metrics that need them.
pub(crate) fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    use oriel_log::metrics as log;
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(log::FSYNC_SECONDS.into()), log::FSYNC_BUCKETS)
        .context("invalid fsync buckets")?
        .set_buckets_for_metric(Matcher::Full(log::GROUP_RECORDS.into()), log::GROUP_BUCKETS)
        .context("invalid group buckets")?
        .install_recorder()
        .context("failed to install the metrics recorder")
}
