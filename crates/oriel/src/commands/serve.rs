//! `oriel serve` and the cluster roles `oriel collect`, `oriel ingest` and `oriel query`: bind,
//! recover, serve, and shut down cleanly. Each role starts only its part: `collect` the event
//! log (Kafka) and the collector, `ingest` the log and a store over its partitions in the shared
//! store directory, `query` a read-only view of every ingest node's store
//! ([`oriel_store::cluster`]).
//!
//! The port is bound first so `/healthz` answers during recovery; `/readyz` turns 200 once the
//! event log is recovered, the collector built and the store open, and `/readyz/query` once the
//! store has caught up with the log. SIGTERM or Ctrl-C stops accepting connections, lets
//! in-flight requests finish (up to `server.shutdown_timeout_ms`), persists the live buffer,
//! closes the log (which syncs what is queued) and exits 0.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Not;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use oriel_core::Config;
use oriel_core::config::{ClusterConfig, LogConfig, NodeRole, Role};
use oriel_log::EventLog;
use oriel_server::{AppState, Auth, ConnectionLimits, HttpLimits};
use tokio::sync::watch;

use crate::settings::{self, ConfigArgs};
use crate::telemetry;

/// Options of `oriel serve`; each overrides the configuration file and environment.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    base: ConfigArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
}

pub(crate) fn run(args: ServeArgs, role: NodeRole) -> anyhow::Result<()> {
    let flags = args.listen.map(|listen| ("server.listen", "--listen", listen)).into_iter().collect();
    let config = settings::load_for(&args.base, flags)?;
    let kafka = matches!(config.log, LogConfig::Kafka(_));
    config.cluster.check_for(role, config.log.partitions(), kafka).map_err(anyhow::Error::msg)?;
    telemetry::init_logging();
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("oriel")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(config, role))
}

/// Every connection and segment file is a descriptor: use the hard limit the system allows,
/// not the 1024 many shells default to, so `server.max_connections` can be reached.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on this process with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The address a browser on this machine reaches a listener at (a wildcard becomes loopback).
fn browser_address(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port()),
        _ => bound,
    }
}

async fn serve(config: Config, role: NodeRole) -> anyhow::Result<()> {
    for (i, site) in config.sites.iter().enumerate() {
        if let Some(zone) = &site.time_zone
            && oriel_store::query::functions::Zone::parse(zone).is_none()
        {
            anyhow::bail!("sites[{i}].time_zone {zone:?} is not a time zone: use an IANA name such as \"Europe/Amsterdam\"");
        }
    }
    let metrics = telemetry::install_metrics()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {} (set data_dir or --data-dir)", config.data_dir.display()))?;
    let auth = Auth::load_or_create(&config.data_dir, &config.server)
        .with_context(|| format!("cannot set up the credentials in {}", config.data_dir.display()))?;
    let addr = config.server.listen_addr().context("server.listen")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another process using it? (set server.listen or --listen)"))?;
    let bound = listener.local_addr().context("listener address")?;
    tracing::info!(data_dir = %config.data_dir.display(), role = role.command(), "listening on http://{bound}");
    // The link is a credential for an hour: shown to a person at a terminal, never written
    // into logs that may be collected elsewhere.
    use std::io::IsTerminal;
    if role.queries() && std::io::stdout().is_terminal() {
        let link = format!("http://{}/signin?code={}", browser_address(bound), auth.signin_code(Role::Admin));
        #[allow(clippy::print_stdout)]
        {
            println!("\n  Sign in to Oriel (within an hour; the link works once): {link}\n");
        }
    } else if role.queries() {
        tracing::info!("run `oriel signin` on this machine for a link that signs a browser in");
    }

    let renderer = {
        let metrics = metrics.clone();
        Arc::new(move || {
            metrics.run_upkeep();
            metrics.render()
        })
    };
    let divolte = config.collector.divolte.enabled.then(|| config.collector.divolte.json_path.clone());
    let limits = HttpLimits { body_read_timeout: Duration::from_millis(config.server.body_read_timeout_ms) };
    let state = AppState::new(renderer, divolte, auth, limits);
    state.set_role(role);
    let (stop_tx, stop_rx) = watch::channel(None::<String>);

    let startup = tokio::spawn(start_services(config.clone(), state.clone(), stop_tx.clone()));
    let signals = tokio::spawn(wait_for_signal(stop_tx.clone()));

    let connection_limits = ConnectionLimits {
        max_connections: config.server.max_connections as usize,
        header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(config.server.idle_timeout_ms),
        shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
    };
    let mut server_stop = stop_rx.clone();
    let router = oriel_server::router(state.clone());
    tokio::task::spawn_blocking(oriel_server::ui::prepare);
    let server = tokio::spawn(oriel_server::serve(listener, router, connection_limits, async move {
        let _ = server_stop.wait_for(Option::is_some).await;
    }));

    let mut stopping = stop_rx.clone();
    let _ = stopping.wait_for(Option::is_some).await;
    let reason = stopping.borrow().clone().unwrap_or_default();
    tracing::info!(%reason, "shutting down");
    signals.abort();
    server.await.context("server task")?;
    let started = startup.await.context("start-up task")?;
    if let Some(store) = state.store().get() {
        store.close().await.context("failed to close the store")?;
        tracing::info!("store flushed and closed");
    }
    if let Some(log) = state.log().get() {
        log.close().await.context("failed to close the event log")?;
        tracing::info!("event log closed and synced");
    }
    started
}

/// Opens (and so recovers) the event log, builds the collector and opens the store, publishing
/// each as it comes up; then runs the log's retention until shutdown. A failure stops the
/// process.
async fn start_services(config: Config, state: AppState, stop: watch::Sender<Option<String>>) -> anyhow::Result<()> {
    let log = match open_services(&config, &state).await {
        Ok(log) => log,
        Err(error) => {
            let _ = stop.send(Some("start-up failed".into()));
            return Err(error);
        }
    };
    if let Some(log) = log {
        run_log_retention(&config, log.as_ref(), stop.subscribe()).await;
    }
    Ok(())
}

/// The log's settings with its retention no longer than the shortest a site keeps its events:
/// the log holds a site's raw events no longer than the store does (what the store has not yet
/// persisted is kept regardless, by the log's consumer positions).
fn log_config(config: &Config) -> LogConfig {
    let mut log = config.log.clone();
    let shortest = oriel_store::expiry::RetentionPolicy::from_config(config).shortest_days();
    match (&mut log, shortest) {
        (LogConfig::Embedded(embedded), Some(days)) => {
            // Whole days are kept, plus today: a record is past every site's retention after
            // days + 1 days.
            let hours = (u64::from(days) + 1) * 24;
            if embedded.retention_hours == 0 || embedded.retention_hours > hours {
                tracing::info!(hours, "log retention shortened to the shortest retention of a site");
                embedded.retention_hours = hours;
            }
        }
        (LogConfig::Embedded(_), None) => {}
        (LogConfig::Kafka(kafka), Some(days)) => {
            // The brokers own the topic's retention: say what it should be, once.
            tracing::info!(
                topic = kafka.topic,
                "keep the topic's retention.ms at most {} ({} days + today) so Kafka holds raw events no longer than the store",
                (u64::from(days) + 1) * 86_400_000,
                days
            );
        }
        (LogConfig::Kafka(_), None) => {}
    }
    log
}

/// Opens what the process's role needs, publishing each part as it comes up; the event log, when
/// the role has one.
async fn open_services(config: &Config, state: &AppState) -> anyhow::Result<Option<Arc<dyn EventLog>>> {
    let role = state.role();
    state.set_analytics(oriel_server::api::analytics::Analytics::new(config).context("the goals are not valid")?);
    if role == NodeRole::Query {
        // The collectors look countries up; this node only knows what they are configured with.
        let geoip =
            config.collector.geoip_database.as_os_str().is_empty().not().then(|| {
                format!("the database the collectors are configured with ({})", config.collector.geoip_database.display())
            });
        state.set_about(about(config, geoip));
        state.store().set(open_view(config).await?);
        return Ok(None);
    }
    let log = oriel_log::open(&log_config(config), &config.data_dir, &[oriel_store::CONSUMER])
        .await
        .context("cannot open the event log")?;
    state.log().set(Arc::clone(&log));
    let mut geoip = None;
    if role.collects() {
        let collector_config = config.clone();
        let collector_log = Arc::clone(&log);
        let collector = tokio::task::spawn_blocking(move || {
            oriel_collector::Collector::new(&collector_config, collector_log, Arc::new(oriel_core::SystemClock))
        })
        .await
        .context("collector start-up task")?
        .context("cannot start the collector")?;
        geoip = collector.geoip();
        state.collector().set(Arc::new(collector));
    }
    state.set_about(about(config, geoip));
    if role == NodeRole::Ingest {
        state.set_cluster_token(config.cluster.token.clone());
        state.store().set(open_ingest_store(config, Arc::clone(&log)).await?);
    } else if role.ingests() {
        let store = oriel_store::Store::open(oriel_store::StoreOptions::from_config(config), Some(Arc::clone(&log)))
            .await
            .context("cannot open the store")?;
        let stats = store.stats();
        tracing::info!(segments = stats.segments, rows = stats.segment_rows, "store opened");
        state.store().set(store);
    }
    Ok(Some(log))
}

/// An ingest node's store: its partitions' directory in the shared store directory, advertised
/// there so query nodes find it.
async fn open_ingest_store(config: &Config, log: Arc<dyn EventLog>) -> anyhow::Result<Arc<oriel_store::Store>> {
    let cluster = &config.cluster;
    let root = shared_root(config)?;
    let name = ClusterConfig::store_name(&cluster.partitions);
    let record = oriel_store::cluster::NodeRecord {
        url: cluster.advertise_url.trim_end_matches('/').to_string(),
        partitions: cluster.partitions.clone(),
        started_ms: oriel_core::Clock::now_ms(&oriel_core::SystemClock),
    };
    // Check, claim, check again: of two nodes started at once with overlapping partitions,
    // each sees the other's claim, and both refuse.
    oriel_store::cluster::check_assignment(&root, &name, &cluster.partitions).await?;
    root.advertise(&name, &record).await.context("cannot advertise this node in the shared store")?;
    oriel_store::cluster::check_assignment(&root, &name, &cluster.partitions).await?;
    let mut options = oriel_store::StoreOptions::from_config(config);
    options.dir = match &root {
        oriel_store::cluster::SharedRoot::Dir(dir) => dir.join(&name),
        // The store is committed to object storage; this directory holds its cache and lock.
        oriel_store::cluster::SharedRoot::Objects { .. } => config.data_dir.join("store").join(&name),
    };
    if let Some(objects) = &mut options.object_store {
        objects.url = format!("{}/{CLUSTER_PREFIX}", objects.url.trim_end_matches('/'));
    }
    options.partitions = Some(cluster.partitions.clone());
    // A query node may have listed a segment just before compaction replaced it: keep the file
    // for two query time limits, so such a query still finds it.
    options.retired_grace = options.query.timeout.saturating_mul(2);
    let store = oriel_store::Store::open(options, Some(log))
        .await
        .with_context(|| format!("cannot open the store {}", root.describe(&name)))?;
    let stats = store.stats();
    tracing::info!(store = name, url = record.url, segments = stats.segments, rows = stats.segment_rows, "ingest store opened");
    Ok(store)
}

/// Where in `[object_store] url` the cluster's stores are: apart from `oriel serve`'s `store`,
/// so a query node lists ingest stores only.
const CLUSTER_PREFIX: &str = "cluster";

/// Where the cluster's stores are: `<[object_store] url>/cluster` when set, else
/// `cluster.store_dir`.
fn shared_root(config: &Config) -> anyhow::Result<oriel_store::cluster::SharedRoot> {
    let bucket = oriel_store::objects::Bucket::from_config(&config.object_store)?;
    Ok(match bucket {
        Some(bucket) => oriel_store::cluster::SharedRoot::Objects {
            bucket: bucket.child(CLUSTER_PREFIX),
            cache_dir: config.data_dir.join("cache"),
            cache: oriel_store::objects::Cache::new(
                config.object_store.cache_mb.saturating_mul(1 << 20),
                Duration::from_secs(config.store.query_timeout_seconds),
            ),
        },
        None => oriel_store::cluster::SharedRoot::Dir(config.cluster.store_dir(&config.data_dir)),
    })
}

/// A query node's read-only view of every ingest node's store.
async fn open_view(config: &Config) -> anyhow::Result<Arc<oriel_store::Store>> {
    let cluster = &config.cluster;
    let options = oriel_store::StoreOptions::from_config(config);
    let view = oriel_store::cluster::ClusterViewOptions {
        token: cluster.token.clone(),
        timeout: Duration::from_millis(cluster.live_timeout_ms),
        max_bytes: usize::try_from(cluster.max_live_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
    };
    let root = shared_root(config)?;
    let described = root.describe("");
    let store = oriel_store::Store::open_view(options, root, view)
        .await
        .with_context(|| format!("cannot open the cluster's stores at {described}"))?;
    tracing::info!(stores = described, "query view opened");
    Ok(store)
}

/// What the UI's "Your data" page and site switcher say about this installation.
fn about(config: &Config, geoip: Option<String>) -> oriel_server::About {
    let c = &config.collector;
    let mut privacy = vec![
        format!("{}.", c.ip_handling.describe()),
        if c.cookieless {
            "Visitors are counted without cookies: a daily-rotated salted hash of address and browser.".to_string()
        } else {
            "Visitors are recognised by a first-party id the tag keeps in the browser.".to_string()
        },
    ];
    if c.respect_dnt {
        privacy.push("Browsers that send Do-Not-Track are not tracked.".into());
    }
    if c.require_consent {
        privacy.push("Events are only kept once the page says the visitor consented.".into());
    }
    for site in &config.sites {
        let mut overrides: Vec<String> = [
            (site.cookieless, "cookieless", "with cookies"),
            (site.respect_dnt, "honours Do-Not-Track", "ignores Do-Not-Track"),
            (site.require_consent, "requires consent", "does not require consent"),
        ]
        .into_iter()
        .filter_map(|(value, yes, no)| value.map(|v| if v { yes } else { no }.to_string()))
        .collect();
        if let Some(ip) = site.ip_handling.filter(|ip| *ip != c.ip_handling) {
            overrides.push(ip.describe().to_lowercase());
        }
        if let Some(days) = site.retention_days {
            overrides.push(if days == 0 { "events kept forever".into() } else { format!("events kept {days} days") });
        }
        if !overrides.is_empty() {
            privacy.push(format!("Site {}: {}.", site.id, overrides.join(", ")));
        }
    }
    privacy.push(match &geoip {
        Some(db) => format!("Countries come from the address with {db}; the address is looked up before it is anonymised."),
        None => "No location is derived from addresses (collector.geoip_database is empty).".into(),
    });
    // Where the files are, whatever directory the server was started from.
    let mut data_dir = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()).display().to_string();
    if config.object_store.enabled() {
        data_dir = format!("{data_dir}, with segments and manifests in {}", config.object_store.url);
    }
    oriel_server::About {
        data_dir,
        retention_days: config.store.retention_days,
        sites: config
            .sites
            .iter()
            .map(|s| oriel_server::SiteAbout {
                id: s.id.clone(),
                time_zone: s.time_zone.clone(),
                retention_days: s.retention_days.unwrap_or(config.store.retention_days),
            })
            .collect(),
        privacy,
        geoip,
    }
}

/// Deletes log data past the retention policy, now and then, until shutdown.
async fn run_log_retention(config: &Config, log: &dyn EventLog, mut stop: watch::Receiver<Option<String>>) {
    let Some(seconds) = config.log.retention_check_seconds() else { return };
    let mut ticker = tokio::time::interval(Duration::from_secs(seconds));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
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
