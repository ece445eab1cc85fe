//! Request-level tests of the collector endpoints: the real router, driven with `oneshot`, over a
//! memory log.

mod bad_input;
mod divolte;
mod endpoints;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use oriel_collector::Collector;
use oriel_core::config::SiteConfig;
use oriel_core::{Config, MockClock};
use oriel_log::{EventLog, MemoryLog};
use serde_json::Value;
use tower::ServiceExt;

/// A write key of the `shop` site.
pub(crate) const WRITE_KEY: &str = "shop-key-0123456789";
/// Receive time of every event in these tests.
pub(crate) const NOW: i64 = 1_795_770_000_000;

/// A collector over a memory log, with a `shop` site restricted to one origin.
pub(crate) struct Harness {
    pub(crate) router: axum::Router,
    pub(crate) log: Arc<dyn EventLog>,
    _dir: tempfile::TempDir,
}

/// The GeoIP database the test command installs from npm.
pub(crate) fn geoip_path() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb");
    assert!(path.exists(), "{} is missing: run `npm ci` in the repository root (scripts/test does)", path.display());
    path
}

pub(crate) fn config() -> Config {
    let mut config = Config::default();
    config.collector.geoip_database = geoip_path();
    config.collector.trusted_proxies = vec!["10.0.0.0/8".into()];
    config.sites = vec![
        SiteConfig {
            id: "shop".into(),
            origins: vec!["https://shop.example.com".into()],
            write_keys: vec![WRITE_KEY.into()],
            ..SiteConfig::default()
        },
        SiteConfig { id: "private".into(), cookieless: Some(true), ..SiteConfig::default() },
    ];
    config
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_config(config())
    }

    pub(crate) fn with_config(config: Config) -> Self {
        Self::with_log(config, Arc::new(MemoryLog::new(2)))
    }

    pub(crate) fn with_log(mut config: Config, log: Arc<dyn EventLog>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        config.data_dir = dir.path().to_path_buf();
        let collector = Collector::new(&config, log.clone(), Arc::new(MockClock::new(NOW))).unwrap();
        let state = crate::state_in(dir.path(), &config);
        state.log().set(log.clone());
        state.collector().set(Arc::new(collector));
        Self { router: oriel_server::router(state), log, _dir: dir }
    }

    /// Sends `request` as if from `peer`.
    pub(crate) async fn send_from(&self, peer: &str, mut request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let ip: std::net::IpAddr = peer.parse().unwrap();
        let addr = SocketAddr::new(ip, 40000);
        request.extensions_mut().insert(ConnectInfo(addr));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec();
        (status, headers, body)
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.send_from("203.0.113.50", request).await
    }

    /// Every event in the log, as JSON, in partition and offset order.
    pub(crate) async fn stored(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for p in 0..self.log.partition_count() {
            for r in self.log.read(p, 0, usize::MAX).await.unwrap() {
                out.push(serde_json::from_slice(&r.value).unwrap());
            }
        }
        out
    }
}

/// A browser user agent that is not a bot.
pub(crate) const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

pub(crate) fn post_e(body: &str) -> Request<Body> {
    Request::post("/e")
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", CHROME)
        .body(Body::from(body.to_string()))
        .unwrap()
}
