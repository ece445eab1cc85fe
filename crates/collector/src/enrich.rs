//! Enrichment: what the collector adds to an event from the request and from reference data.
//!
//! - [`page`]: URL parts, campaign parameters, referrer host and the traffic [`channels`].
//! - [`useragent`]: browser, OS and device type from uap-core rules; bot signals.
//! - [`geo`]: country (region, city) from a MaxMind-format database, when one is configured.
//! - [`ip`]: the client address behind trusted proxies, anonymised before storage.
//! - [`cookieless`]: server-derived visitor and session ids.
//! - [`dedup`]: recently seen event ids, to flag duplicates.

pub(crate) mod channels;
pub(crate) mod cookieless;
pub(crate) mod dedup;
pub(crate) mod geo;
pub(crate) mod ip;
pub(crate) mod page;
pub(crate) mod useragent;

use std::net::IpAddr;

use oriel_core::Event;
use oriel_core::config::{Cidr, CollectorConfig, IpHandling};
use parking_lot::Mutex;

use crate::Error;

/// What is known about the client from the connection and its headers.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client address (after trusted proxies), not yet anonymised.
    pub ip: IpAddr,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// The enrichment stage, shared by all requests.
#[derive(Debug)]
pub struct Enricher {
    user_agents: useragent::UserAgents,
    geo: Option<geo::Geo>,
    proxies: Vec<Cidr>,
    dedup: Mutex<dedup::Dedup>,
    /// Server-side ids for cookieless sites.
    pub cookieless: cookieless::Cookieless,
}

impl Enricher {
    /// Builds the stage from configuration; compiles the user agent rules and opens the GeoIP
    /// database, so call it off the async threads. `salt_dir` keeps the cookieless salt.
    pub fn new(config: &CollectorConfig, salt_dir: Option<std::path::PathBuf>) -> Result<Self, Error> {
        let cache_bytes = usize::try_from(config.user_agent_cache_bytes).unwrap_or(usize::MAX);
        let user_agents = useragent::UserAgents::new(cache_bytes).map_err(Error::Setup)?;
        let geo = if config.geoip_database.as_os_str().is_empty() {
            None
        } else if config.geoip_database.as_os_str() == oriel_core::config::BUILT_IN_GEOIP {
            Some(geo::Geo::built_in().map_err(Error::Setup)?)
        } else {
            Some(geo::Geo::open(&config.geoip_database).map_err(Error::Setup)?)
        };
        Ok(Self {
            user_agents,
            geo,
            proxies: config.proxies(),
            dedup: Mutex::new(dedup::Dedup::new(config.duplicate_memory as usize)),
            cookieless: cookieless::Cookieless::new(salt_dir, 200_000),
        })
    }

    /// The GeoIP database in use and its build date, for people; `None` without one.
    pub fn geoip(&self) -> Option<String> {
        self.geo.as_ref().map(geo::Geo::describe)
    }

    /// The client behind the connection from `peer`; `user_agent` is already cut to the limit.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>, user_agent: &str) -> Client {
        Client { ip: ip::client_ip(peer, forwarded_for, &self.proxies), user_agent: user_agent.to_string() }
    }

    /// Adds everything derivable to `event` sent by `client`, and flags bots and duplicates.
    /// The location comes from the whole address; `ip_handling` says what of it is stored.
    pub fn enrich(&self, event: &mut Event, client: &Client, ip_handling: IpHandling) {
        page::enrich(event);
        let ua = self.user_agents.parse(&client.user_agent);
        event.browser = ua.browser.clone();
        event.browser_version = ua.browser_version.clone();
        event.os = ua.os.clone();
        event.os_version = ua.os_version.clone();
        event.device_type = Some(ua.device_type.to_string());
        // A bot by its user agent, or by a signal the decoder already found (automation).
        event.is_bot |= ua.is_bot;
        if let Some(geo) = &self.geo {
            let location = geo.locate(client.ip);
            event.country = location.country;
            event.region = location.region;
            event.city = location.city;
        }
        event.ip = match ip_handling {
            IpHandling::Drop => None,
            IpHandling::Anonymize => Some(ip::anonymize(client.ip).to_string()),
            IpHandling::Keep => Some(client.ip.to_string()),
        };
        if let Some(id) = &event.event_id {
            event.is_duplicate = self.dedup.lock().seen(event.site.as_deref().unwrap_or_default(), id);
        }
    }
}
