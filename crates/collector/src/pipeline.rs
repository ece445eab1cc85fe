//! The [`Collector`] and the last steps of every event: completion (receive time, site,
//! cookieless ids, enrichment), flags, back-pressure, and the append that makes it durable.

use std::sync::Arc;

use oriel_core::config::{Config, DivolteConfig};
use oriel_core::{Clock, Event, EventSource};
use oriel_log::{EventLog, Record};
use tokio::sync::Semaphore;

use crate::assets::{Asset, Assets};
use crate::enrich::{Client, Enricher};
use crate::limits::Limits;
use crate::metrics as m;
use crate::sites::{Site, Sites};
use crate::{Error, Result};

/// The collector: everything a request needs, shared by all requests.
#[derive(Debug)]
pub struct Collector {
    pub(crate) limits: Limits,
    pub(crate) sites: Sites,
    pub(crate) enricher: Enricher,
    divolte: DivolteConfig,
    assets: Assets,
    log: Arc<dyn EventLog>,
    pending: Arc<Semaphore>,
    max_pending: usize,
    clock: Arc<dyn Clock>,
    drop_bots: bool,
    drop_duplicates: bool,
}

/// What happened to a request's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Events now durable in the log.
    pub stored: usize,
    /// Events dropped because configuration drops bots or duplicates.
    pub dropped: usize,
    /// How long the append waited for the log to make the events durable (an `fdatasync`,
    /// perhaps after the one in progress): the disk's time, not the collector's.
    pub durable_wait: std::time::Duration,
}

impl Collector {
    /// Builds the collector. Compiles user agent rules and opens the GeoIP database: call it off
    /// the async threads.
    pub fn new(config: &Config, log: Arc<dyn EventLog>, clock: Arc<dyn Clock>) -> Result<Self> {
        let c = &config.collector;
        let salt =
            if c.salt_dir.as_os_str().is_empty() { config.data_dir.join("collector").join("salts") } else { c.salt_dir.clone() };
        // Versions before the salt directory kept the day's salt here; a past salt must not stay.
        let _ = std::fs::remove_file(config.data_dir.join("collector").join("cookieless-salt.json"));
        m::describe();
        Ok(Self {
            limits: Limits::from_config(c),
            sites: Sites::new(c, &config.sites),
            enricher: Enricher::new(c, Some(salt))?,
            divolte: c.divolte.clone(),
            assets: Assets::new(c)?,
            log,
            pending: Arc::new(Semaphore::new(c.max_pending_events as usize)),
            max_pending: c.max_pending_events as usize,
            clock,
            drop_bots: c.drop_bots,
            drop_duplicates: c.drop_duplicates,
        })
    }

    /// The limits requests are checked against (the HTTP layer reads bodies within them).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The GeoIP database in use and its build date; `None` without one.
    pub fn geoip(&self) -> Option<String> {
        self.enricher.geoip()
    }

    /// The Divolte settings.
    pub fn divolte(&self) -> &DivolteConfig {
        &self.divolte
    }

    /// `oriel.js` for `?site=ID`: a configured site's settings baked in, else the defaults.
    /// Only configured sites get their own variant, so arbitrary ids cannot grow the cache.
    pub fn oriel_js(&self, site: Option<&str>) -> Result<std::sync::Arc<Asset>> {
        match site.and_then(|id| self.sites.configured(id)) {
            Some(site) => self.assets.oriel(site, true),
            None => self.assets.oriel(self.sites.defaults(), false),
        }
    }

    /// `divolte.js`, with `[collector.divolte]` baked in.
    pub fn divolte_js(&self) -> &Asset {
        self.assets.divolte()
    }

    /// Milliseconds since the epoch, by the collector's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The Divolte site's settings: the configured `collector.divolte.site`, or the defaults.
    pub(crate) fn divolte_site(&self) -> Site {
        let id = &self.divolte.site;
        self.sites.configured(id).cloned().unwrap_or_else(|| Site { id: id.clone(), ..self.sites.defaults().clone() })
    }

    /// The settings for events of site `id`, or 403 when the site is not accepted.
    pub(crate) fn site(&self, id: Option<&str>) -> Result<Site> {
        self.sites.get(id).ok_or_else(|| match id {
            Some(id) => {
                Error::Forbidden(format!("unknown site {id:?}; add it to [[sites]] or set collector.allow_unknown_sites"))
            }
            None => Error::Forbidden("the event names no site and collector.allow_unknown_sites is off".into()),
        })
    }

    /// Completes `events` from one request of `client` for `site`: receive time, site, ids in
    /// cookieless mode (or when a tag or pixel sent none), enrichment.
    pub(crate) fn prepare(&self, events: &mut [Event], site: &Site, client: &Client, received_ms: i64) {
        let client_ip = client.ip.to_string();
        for event in events.iter_mut() {
            event.time = received_ms;
            event.site = (!site.id.is_empty()).then(|| site.id.clone());
            let derive =
                matches!(event.source, EventSource::Tag | EventSource::Pixel) && (site.cookieless || event.party_id.is_none());
            if derive {
                let timeout = i64::from(site.session_timeout_minutes) * 60_000;
                let ids = self.enricher.cookieless.ids(received_ms, &site.id, &client_ip, &client.user_agent, timeout);
                event.party_id = Some(ids.party_id);
                event.session_id = Some(ids.session_id);
                event.is_new_party = None;
                event.is_first_in_session = Some(ids.new_session);
            }
            self.enricher.enrich(event, client, site.ip_handling);
        }
    }

    /// Turns prepared events into log records, leaving out flagged ones configuration drops.
    pub(crate) fn encode(&self, events: Vec<Event>) -> Result<Encoded> {
        let mut encoded = Encoded { records: Vec::with_capacity(events.len()), sources: Vec::new(), dropped: 0 };
        for event in events {
            for (flag, set) in [("bot", event.is_bot), ("duplicate", event.is_duplicate), ("corrupt", event.is_corrupt)] {
                if set {
                    metrics::counter!(m::FLAGGED, "flag" => flag).increment(1);
                }
            }
            if (self.drop_bots && event.is_bot) || (self.drop_duplicates && event.is_duplicate) {
                let flag = if event.is_bot { "bot" } else { "duplicate" };
                metrics::counter!(m::DROPPED, "flag" => flag).increment(1);
                encoded.dropped += 1;
                continue;
            }
            let value = serde_json::to_vec(&event).map_err(|e| Error::BadRequest(format!("unencodable event: {e}")))?;
            let key = event.party_id.unwrap_or_default().into_bytes();
            encoded.sources.push(event.source.as_str());
            encoded.records.push(Record::new(key, value, event.time));
        }
        Ok(encoded)
    }

    /// Appends encoded events to the log and returns once they are durable. Answers
    /// [`Error::Unavailable`] without storing anything when too many events are pending.
    pub(crate) async fn append(&self, encoded: Encoded) -> Result<Outcome> {
        let Encoded { records, sources, dropped } = encoded;
        let mut outcome = Outcome { stored: 0, dropped, durable_wait: std::time::Duration::ZERO };
        if records.is_empty() {
            return Ok(outcome);
        }
        let n = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let Ok(_permits) = self.pending.clone().try_acquire_many_owned(n) else {
            metrics::counter!(m::UNAVAILABLE).increment(1);
            return Err(Error::Unavailable("the collector is at capacity, retry shortly".into()));
        };
        metrics::gauge!(m::PENDING).set((self.max_pending - self.pending.available_permits()) as f64);
        let waited = std::time::Instant::now();
        let result = self.log.append(records).await;
        outcome.durable_wait = waited.elapsed();
        metrics::gauge!(m::PENDING).set((self.max_pending - self.pending.available_permits()) as f64);
        match result {
            Ok(_) => {
                for source in sources {
                    metrics::counter!(m::EVENTS, "source" => source).increment(1);
                }
                outcome.stored = n as usize;
                Ok(outcome)
            }
            Err(oriel_log::Error::Closed) => Err(Error::Unavailable("shutting down, retry shortly".into())),
            Err(e) => Err(Error::Log(e)),
        }
    }
}

/// Events ready to append: their records, the protocol of each, and how many were dropped.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    records: Vec<Record>,
    sources: Vec<&'static str>,
    dropped: usize,
}
