//! The `[collector]` section and the `[[sites]]` list.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// The `collector.geoip_database` value that names the country database built into Oriel.
pub const BUILT_IN_GEOIP: &str = "built-in";

/// Collector settings: limits, privacy, enrichment, and the defaults for sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Accept events for site ids that have no `[[sites]]` entry.
    pub allow_unknown_sites: bool,
    /// Largest request body, in bytes; larger requests are refused before the body is read.
    pub max_body_bytes: u64,
    /// Most events one batch may carry.
    pub max_events_per_batch: u32,
    /// Longest text field (URL, title, referrer), in bytes.
    pub max_field_bytes: u32,
    /// Longest identifier (site, visitor, session, user, event and page view ids, event type,
    /// language), in bytes. Shared by every event of a batch, so kept short.
    pub max_id_bytes: u32,
    /// Longest `User-Agent` header parsed and stored, in bytes; longer ones are cut.
    pub max_user_agent_bytes: u32,
    /// Largest custom-properties object, in bytes of JSON.
    pub max_props_bytes: u32,
    /// Deepest nesting of custom properties.
    pub max_props_depth: u32,
    /// Most keys and array elements in one event's custom properties, counted at every level.
    pub max_props_entries: u32,
    /// Events accepted but not yet durable; beyond this the collector answers 503 with
    /// `Retry-After`.
    pub max_pending_events: u32,
    /// Proxies (CIDR ranges) whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<String>,
    /// Default for sites: what is stored of the client's IP address (location is looked up
    /// from the whole address first, whatever this says).
    pub ip_handling: IpHandling,
    /// The setting `ip_handling` replaced: `true` reads as `"anonymize"`, `false` as `"keep"`.
    /// Still read so configurations written for earlier versions keep working.
    #[serde(skip_serializing)]
    pub anonymize_ip: Option<bool>,
    /// MaxMind-format database for IP to country (and region/city): [`BUILT_IN_GEOIP`] (the
    /// default) for the country database inside the binary, a path for another file, empty for
    /// no location.
    pub geoip_database: PathBuf,
    /// Memory for parsed user agents, in bytes (keys and answers counted).
    pub user_agent_cache_bytes: u64,
    /// Drop events flagged as bots instead of storing them flagged.
    pub drop_bots: bool,
    /// Drop events flagged as duplicates instead of storing them flagged.
    pub drop_duplicates: bool,
    /// Recent event ids remembered for duplicate detection.
    pub duplicate_memory: u32,
    /// Public URL of the event endpoint baked into `oriel.js`; empty = `/e` on the origin the
    /// script was loaded from.
    pub public_url: String,
    /// Default for sites: store nothing on the device and derive the visitor id on the server.
    pub cookieless: bool,
    /// Where the day's cookieless salt is kept; empty = `<data_dir>/collector/salts`. Point
    /// every collector at one shared directory so a visitor gets the same id from all of them.
    pub salt_dir: PathBuf,
    /// Default for sites: minutes of inactivity that end a session.
    pub session_timeout_minutes: u32,
    /// Default for sites: send nothing from browsers with Do-Not-Track or Global Privacy Control.
    pub respect_dnt: bool,
    /// Default for sites: send nothing until the page calls `oriel.consent(true)`.
    pub require_consent: bool,
    /// Divolte Collector compatibility.
    pub divolte: DivolteConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            allow_unknown_sites: true,
            max_body_bytes: 64 * 1024,
            max_events_per_batch: 100,
            max_field_bytes: 4096,
            max_id_bytes: 256,
            max_user_agent_bytes: 512,
            max_props_bytes: 8192,
            max_props_depth: 5,
            max_props_entries: 200,
            max_pending_events: 100_000,
            trusted_proxies: Vec::new(),
            ip_handling: IpHandling::Anonymize,
            anonymize_ip: None,
            geoip_database: PathBuf::from(BUILT_IN_GEOIP),
            user_agent_cache_bytes: 8 << 20,
            drop_bots: false,
            drop_duplicates: false,
            duplicate_memory: 1_000_000,
            public_url: String::new(),
            cookieless: false,
            salt_dir: PathBuf::new(),
            session_timeout_minutes: 30,
            respect_dnt: true,
            require_consent: false,
            divolte: DivolteConfig::default(),
        }
    }
}

/// What the collector stores of a client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpHandling {
    /// Nothing: the `ip` column stays empty.
    Drop,
    /// The network part only: IPv4 cut to /24, IPv6 to /48.
    #[default]
    Anonymize,
    /// The whole address.
    Keep,
}

impl IpHandling {
    /// What this means for stored data, as a sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Drop => "IP addresses are not stored",
            Self::Anonymize => "IP addresses are stored anonymised (IPv4 cut to /24, IPv6 to /48)",
            Self::Keep => "IP addresses are stored whole",
        }
    }
}

/// Divolte Collector wire compatibility (`/divolte.js`, `/csc-event`, `/json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DivolteConfig {
    /// Serve the Divolte endpoints.
    pub enabled: bool,
    /// Site id stored with Divolte events; empty = none.
    pub site: String,
    /// Party cookie name baked into `divolte.js`.
    pub party_cookie: String,
    /// Party cookie lifetime, in days.
    pub party_timeout_days: u32,
    /// Session cookie name baked into `divolte.js`.
    pub session_cookie: String,
    /// Session cookie lifetime (sliding), in minutes.
    pub session_timeout_minutes: u32,
    /// Cookie domain baked into `divolte.js`; empty = the page's host.
    pub cookie_domain: String,
    /// How long `divolte.js` waits for one event request before sending the next, in ms.
    pub event_timeout_ms: u32,
    /// Whether `divolte.js` sends a `pageView` event on load.
    pub auto_page_view_event: bool,
    /// Path of the JSON endpoint for mobile and server apps (`POST <path>?p=<party id>`).
    pub json_path: String,
    /// Largest body of the JSON endpoint, in bytes.
    pub json_max_body_bytes: u32,
}

impl Default for DivolteConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            site: String::new(),
            party_cookie: "_dvp".into(),
            party_timeout_days: 730,
            session_cookie: "_dvs".into(),
            session_timeout_minutes: 30,
            cookie_domain: String::new(),
            event_timeout_ms: 750,
            auto_page_view_event: true,
            json_path: "/json".into(),
            json_max_body_bytes: 4096,
        }
    }
}

/// One site that sends events: its id, where its pages live, and its privacy settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The id pages send with `data-site`.
    pub id: String,
    /// Origins allowed to send events (e.g. `https://www.example.com`); empty = any origin.
    pub origins: Vec<String>,
    /// Store nothing on the device; overrides `collector.cookieless`.
    pub cookieless: Option<bool>,
    /// Session timeout in minutes; overrides `collector.session_timeout_minutes`.
    pub session_timeout_minutes: Option<u32>,
    /// What is stored of the IP address; overrides `collector.ip_handling`.
    pub ip_handling: Option<IpHandling>,
    /// Days this site's events are kept; overrides `store.retention_days` (0 keeps them forever).
    pub retention_days: Option<u32>,
    /// Honour Do-Not-Track and Global Privacy Control; overrides `collector.respect_dnt`.
    pub respect_dnt: Option<bool>,
    /// Send nothing before consent; overrides `collector.require_consent`.
    pub require_consent: Option<bool>,
    /// Count `#hash` changes as page views.
    pub track_hash: bool,
    /// Keys that authorise `POST /api/v1/events` for this site (`Authorization: Bearer <key>`).
    pub write_keys: Vec<String>,
    /// The IANA time zone the UI cuts this site's days in (e.g. `Europe/Amsterdam`); the
    /// browser's zone when unset.
    pub time_zone: Option<String>,
}

/// A CIDR range such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address (a single host).
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network: addr, prefix })
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => mask_eq(&n.octets(), &i.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(i)) => mask_eq(&n.octets(), &i.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V4(i)) => mask_eq(&n.octets(), &i.to_ipv6_mapped().octets(), self.prefix),
            (IpAddr::V4(n), IpAddr::V6(i)) => i.to_ipv4_mapped().is_some_and(|i| mask_eq(&n.octets(), &i.octets(), self.prefix)),
        }
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

impl CollectorConfig {
    /// Turns the replaced `anonymize_ip` into `ip_handling`; both at once is refused.
    pub(super) fn upgrade(&mut self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        let Some(anonymize) = self.anonymize_ip.take() else { return Ok(()) };
        if self.ip_handling != IpHandling::default() {
            return Err(invalid(
                "collector.anonymize_ip",
                anonymize.to_string(),
                "absent when collector.ip_handling is set (ip_handling replaces it)",
            ));
        }
        self.ip_handling = if anonymize { IpHandling::Anonymize } else { IpHandling::Keep };
        Ok(())
    }

    /// The trusted proxy ranges; valid after validation.
    pub fn proxies(&self) -> Vec<Cidr> {
        self.trusted_proxies.iter().filter_map(|t| Cidr::parse(t)).collect()
    }

    pub(super) fn validate(
        &self,
        sites: &[SiteConfig],
        invalid: &impl Fn(&str, String, &str) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let c = self;
        check_range(invalid, "collector.max_body_bytes", c.max_body_bytes, 256, 64 << 20)?;
        check_range(invalid, "collector.max_events_per_batch", c.max_events_per_batch.into(), 1, 10_000)?;
        check_range(invalid, "collector.max_field_bytes", c.max_field_bytes.into(), 64, 1 << 20)?;
        check_range(invalid, "collector.max_id_bytes", c.max_id_bytes.into(), 16, 4096)?;
        check_range(invalid, "collector.max_user_agent_bytes", c.max_user_agent_bytes.into(), 64, 16_384)?;
        check_range(invalid, "collector.max_props_bytes", c.max_props_bytes.into(), 2, 1 << 20)?;
        check_range(invalid, "collector.max_props_depth", c.max_props_depth.into(), 1, 64)?;
        check_range(invalid, "collector.max_props_entries", c.max_props_entries.into(), 1, 100_000)?;
        check_range(invalid, "collector.max_pending_events", c.max_pending_events.into(), 1, 100_000_000)?;
        check_range(invalid, "collector.user_agent_cache_bytes", c.user_agent_cache_bytes, 1 << 16, 1 << 34)?;
        check_range(invalid, "collector.duplicate_memory", c.duplicate_memory.into(), 1, 100_000_000)?;
        check_range(invalid, "collector.session_timeout_minutes", c.session_timeout_minutes.into(), 1, 24 * 60)?;
        if c.max_pending_events < c.max_events_per_batch {
            return Err(invalid(
                "collector.max_pending_events",
                c.max_pending_events.to_string(),
                "at least collector.max_events_per_batch, or a full batch could never be accepted",
            ));
        }
        for (i, proxy) in c.trusted_proxies.iter().enumerate() {
            if Cidr::parse(proxy).is_none() {
                return Err(invalid(
                    &format!("collector.trusted_proxies[{i}]"),
                    format!("{proxy:?}"),
                    "an IP address or CIDR range such as \"10.0.0.0/8\" or \"::1/128\"",
                ));
            }
        }
        let geoip = &c.geoip_database;
        if !geoip.as_os_str().is_empty() && geoip.as_os_str() != BUILT_IN_GEOIP && !geoip.is_file() {
            return Err(invalid(
                "collector.geoip_database",
                format!("{:?}", c.geoip_database.display().to_string()),
                "\"built-in\" (the country database inside oriel), the path of an existing MaxMind .mmdb file, or empty (no location)",
            ));
        }
        if !(c.public_url.is_empty() || c.public_url.starts_with("http://") || c.public_url.starts_with("https://")) {
            return Err(invalid("collector.public_url", format!("{:?}", c.public_url), "empty or an http(s) URL"));
        }
        let d = &c.divolte;
        for (key, value) in [("party_cookie", &d.party_cookie), ("session_cookie", &d.session_cookie)] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(invalid(&format!("collector.divolte.{key}"), format!("{value:?}"), "letters, digits, _ and -"));
            }
        }
        if !d.json_path.starts_with('/') {
            return Err(invalid("collector.divolte.json_path", format!("{:?}", d.json_path), "a path starting with /"));
        }
        check_range(invalid, "collector.divolte.party_timeout_days", d.party_timeout_days.into(), 1, 3650)?;
        check_range(invalid, "collector.divolte.session_timeout_minutes", d.session_timeout_minutes.into(), 1, 24 * 60)?;
        check_range(invalid, "collector.divolte.event_timeout_ms", d.event_timeout_ms.into(), 1, 60_000)?;
        check_range(invalid, "collector.divolte.json_max_body_bytes", d.json_max_body_bytes.into(), 64, 1 << 20)?;
        let mut seen = std::collections::HashSet::new();
        for (i, site) in sites.iter().enumerate() {
            if site.id.is_empty() || site.id.len() > 128 || site.id.chars().any(char::is_control) {
                return Err(invalid(&format!("sites[{i}].id"), format!("{:?}", site.id), "1 to 128 printable characters"));
            }
            if !seen.insert(site.id.as_str()) {
                return Err(invalid(&format!("sites[{i}].id"), format!("{:?}", site.id), "a site id used only once"));
            }
            for origin in &site.origins {
                let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
                let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('/') && !h.chars().any(char::is_whitespace));
                if !ok {
                    return Err(invalid(
                        &format!("sites[{i}].origins"),
                        format!("{origin:?}"),
                        "origins such as \"https://www.example.com\" (scheme and host, no path)",
                    ));
                }
            }
            if let Some(minutes) = site.session_timeout_minutes {
                check_range(invalid, &format!("sites[{i}].session_timeout_minutes"), minutes.into(), 1, 24 * 60)?;
            }
            if let Some(days) = site.retention_days {
                check_range(invalid, &format!("sites[{i}].retention_days"), days.into(), 0, 36_500)?;
            }
            if let Some(zone) = &site.time_zone {
                let ok = !zone.is_empty()
                    && zone.len() <= 64
                    && zone.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
                if !ok {
                    return Err(invalid(
                        &format!("sites[{i}].time_zone"),
                        format!("{zone:?}"),
                        "an IANA time zone such as \"Europe/Amsterdam\"",
                    ));
                }
            }
            if let Some(key) = site.write_keys.iter().find(|k| k.len() < 16) {
                // A key is a secret: say how long it is, never what it is.
                return Err(invalid(
                    &format!("sites[{i}].write_keys"),
                    format!("(a key of {} characters)", key.len()),
                    "keys of at least 16 characters",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let lan = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains("10.1.2.3".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::parse("::ffff:0:0/96").unwrap().contains("1.2.3.4".parse().unwrap()));
        let odd = Cidr::parse("192.168.0.0/23").unwrap();
        assert!(odd.contains("192.168.1.200".parse().unwrap()));
        assert!(!odd.contains("192.168.2.1".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("nonsense"), None);
    }
}
