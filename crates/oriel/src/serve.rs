//! `oriel serve`: bind, recover, serve, and shut down cleanly.
//!
//! The port is bound first so `/healthz` answers during recovery; `/readyz` turns 200 once the
//! event log is recovered. SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests
//! finish (up to `server.shutdown_timeout_ms`), closes the log (which syncs what is queued) and
//! exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use oriel_core::Config;
use oriel_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use oriel_server::AppState;
use tokio::sync::watch;

use crate::{ServeArgs, settings, telemetry};

/// How often retention runs.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let flags = args.listen.map(|listen| ("server.listen", "--listen", listen)).into_iter().collect();
    let config = settings::load_for(&args.base, flags)?;
    telemetry::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("oriel")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = telemetry::install_metrics()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {} (set data_dir or --data-dir)", config.data_dir.display()))?;
    let addr = config.server.listen_addr().context("server.listen")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another process using it? (set server.listen or --listen)"))?;
    let bound = listener.local_addr().context("listener address")?;
    tracing::info!(data_dir = %config.data_dir.display(), "listening on http://{bound}");

    let renderer = {
        let metrics = metrics.clone();
        Arc::new(move || {
            metrics.run_upkeep();
            metrics.render()
        })
    };
    let divolte = config.collector.divolte.enabled.then(|| config.collector.divolte.json_path.clone());
    let state = AppState::new(renderer, divolte, config.server.api_tokens.clone());
    let (stop_tx, stop_rx) = watch::channel(None::<String>);

    let recovery = tokio::spawn(recover(config.clone(), state.clone(), stop_tx.clone()));
    let signals = tokio::spawn(wait_for_signal(stop_tx.clone()));

    let mut server_stop = stop_rx.clone();
    let app = oriel_server::router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(Option::is_some).await;
        });
    let server = tokio::spawn(async move { server.await });

    let mut stopping = stop_rx.clone();
    let _ = stopping.wait_for(Option::is_some).await;
    let reason = stopping.borrow().clone().unwrap_or_default();
    tracing::info!(%reason, "shutting down");
    signals.abort();
    let timeout = Duration::from_millis(config.server.shutdown_timeout_ms);
    match tokio::time::timeout(timeout, server).await {
        Ok(result) => result.context("server task")?.context("server")?,
        Err(_) => tracing::warn!(?timeout, "in-flight requests did not finish in time; closing anyway"),
    }
    let fatal = recovery.await.context("recovery task")?;
    if let Some(store) = state.store() {
        store.close().await.context("failed to close the store")?;
        tracing::info!("store flushed and closed");
    }
    if let Some(log) = state.log() {
        log.close().await.context("failed to close the event log")?;
        tracing::info!("event log closed and synced");
    }
    fatal
}

/// Opens (and so recovers) the event log, builds the collector, then runs retention until
/// shutdown.
async fn recover(config: Config, state: AppState, stop: watch::Sender<Option<String>>) -> anyhow::Result<()> {
    let log = match start_services(&config, &state).await {
        Ok(log) => log,
        Err(error) => {
            let _ = stop.send(Some("start-up failed".into()));
            return Err(error);
        }
    };
    let report = log.recovery();
    tracing::info!(
        truncated_bytes = report.truncated_bytes,
        corrupt_segments = report.corrupt_segments,
        disk_bytes = log.disk_bytes(),
        "event log recovered"
    );

    let mut stopped = stop.subscribe();
    let mut ticker = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tokio::select! {
            () = async { let _ = stopped.wait_for(Option::is_some).await; } => return Ok(()),
            _ = ticker.tick() => match log.enforce_retention().await {
                Ok(report) if report.records_removed > 0 => {
                    tracing::info!(records = report.records_removed, bytes = report.bytes_removed, "log retention");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "log retention failed"),
            },
        }
    }
}

/// Recovers the log, builds the collector and opens the store; the process is ready when all
/// three are published.
async fn start_services(config: &Config, state: &AppState) -> anyhow::Result<Arc<EmbeddedLog>> {
    let dir: PathBuf = config.data_dir.join("log");
    let options = EmbeddedOptions::from_config(&config.log);
    let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(dir, options))
        .await
        .context("log recovery task")?
        .context("cannot open the event log")?;
    let log = Arc::new(log);
    state.set_log(log.clone());
    let shared: Arc<dyn EventLog> = log.clone();
    let collector_config = config.clone();
    let collector = tokio::task::spawn_blocking(move || {
        oriel_collector::Collector::new(&collector_config, shared, Arc::new(oriel_core::SystemClock))
    })
    .await
    .context("collector start-up task")?
    .context("cannot start the collector")?;
    state.collector().set(Arc::new(collector));
    let store = oriel_store::Store::open(oriel_store::StoreOptions::from_config(config), Some(log.clone() as Arc<dyn EventLog>))
        .await
        .context("cannot open the store")?;
    let stats = store.stats();
    tracing::info!(segments = stats.segments, rows = stats.segment_rows, "store opened");
    state.set_store(store);
    Ok(log)
}

async fn wait_for_signal(stop: watch::Sender<Option<String>>) {
    let ctrl_c = tokio::signal::ctrl_c();
    let reason = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = ctrl_c => "interrupt",
            _ = term.recv() => "terminate",
        },
        Err(_) => {
            let _ = ctrl_c.await;
            "interrupt"
        }
    };
    let _ = stop.send(Some(format!("received {reason} signal")));
}
