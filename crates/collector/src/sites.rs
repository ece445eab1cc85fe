//! The sites the collector accepts events for, with their settings resolved against the
//! `[collector]` defaults.

use std::collections::HashMap;

use oriel_core::config::{CollectorConfig, IpHandling, SiteConfig};
use oriel_core::secret::constant_time_eq;
use serde::Serialize;

/// One site's effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// The id.
    pub id: String,
    /// Allowed origins; empty = any.
    pub origins: Vec<String>,
    /// Store nothing on the device.
    pub cookieless: bool,
    /// Session timeout in minutes.
    pub session_timeout_minutes: u32,
    /// What is stored of the client's IP address.
    pub ip_handling: IpHandling,
    /// Honour DNT and GPC.
    pub respect_dnt: bool,
    /// Send nothing before consent.
    pub require_consent: bool,
    /// Count hash changes as page views.
    pub track_hash: bool,
    /// Write keys for the server-side API.
    pub write_keys: Vec<String>,
}

/// The settings baked into `oriel.js` (names as the tag reads them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagSettings<'a> {
    site: Option<&'a str>,
    endpoint: Option<&'a str>,
    cookieless: bool,
    session_minutes: u32,
    respect_dnt: bool,
    require_consent: bool,
    hash: bool,
}

impl Site {
    /// The settings of this site as `oriel.js` bakes them.
    pub(crate) fn tag_settings<'a>(&'a self, endpoint: Option<&'a str>, named: bool) -> TagSettings<'a> {
        TagSettings {
            site: named.then_some(self.id.as_str()),
            endpoint,
            cookieless: self.cookieless,
            session_minutes: self.session_timeout_minutes,
            respect_dnt: self.respect_dnt,
            require_consent: self.require_consent,
            hash: self.track_hash,
        }
    }

    /// Whether a request from `origin` may send events for this site.
    pub(crate) fn allows_origin(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.origins.is_empty() => true,
            Some(origin) => self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            // No Origin header: not a cross-origin browser request (curl, same-origin GET).
            None => true,
        }
    }
}

/// All configured sites, plus the defaults for unknown ones.
#[derive(Debug, Clone)]
pub(crate) struct Sites {
    known: HashMap<String, Site>,
    defaults: Site,
    allow_unknown: bool,
}

impl Sites {
    /// Resolves `[[sites]]` against `[collector]`.
    pub(crate) fn new(collector: &CollectorConfig, sites: &[SiteConfig]) -> Self {
        let defaults = Site {
            id: String::new(),
            origins: Vec::new(),
            cookieless: collector.cookieless,
            session_timeout_minutes: collector.session_timeout_minutes,
            ip_handling: collector.ip_handling,
            respect_dnt: collector.respect_dnt,
            require_consent: collector.require_consent,
            track_hash: false,
            write_keys: Vec::new(),
        };
        let known = sites
            .iter()
            .map(|s| {
                let site = Site {
                    id: s.id.clone(),
                    origins: s.origins.iter().map(|o| o.trim_end_matches('/').to_string()).collect(),
                    cookieless: s.cookieless.unwrap_or(defaults.cookieless),
                    session_timeout_minutes: s.session_timeout_minutes.unwrap_or(defaults.session_timeout_minutes),
                    ip_handling: s.ip_handling.unwrap_or(defaults.ip_handling),
                    respect_dnt: s.respect_dnt.unwrap_or(defaults.respect_dnt),
                    require_consent: s.require_consent.unwrap_or(defaults.require_consent),
                    track_hash: s.track_hash,
                    write_keys: s.write_keys.clone(),
                };
                (s.id.clone(), site)
            })
            .collect();
        Self { known, defaults, allow_unknown: collector.allow_unknown_sites }
    }

    /// The settings for events of `id`: the site's own, the defaults for an unknown site when
    /// those are allowed, or `None` when the site is refused.
    pub(crate) fn get(&self, id: Option<&str>) -> Option<Site> {
        match id.filter(|id| !id.is_empty()) {
            Some(id) => match self.known.get(id) {
                Some(site) => Some(site.clone()),
                None if self.allow_unknown => Some(Site { id: id.to_string(), ..self.defaults.clone() }),
                None => None,
            },
            None if self.allow_unknown => Some(self.defaults.clone()),
            None => None,
        }
    }

    /// A site that has a `[[sites]]` entry.
    pub(crate) fn configured(&self, id: &str) -> Option<&Site> {
        self.known.get(id)
    }

    /// The site a write key belongs to.
    pub(crate) fn by_write_key(&self, key: &str) -> Option<&Site> {
        // Compare every key in full, so the time taken does not reveal how much of a key matched.
        self.known.values().find(|site| site.write_keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())))
    }

    /// The defaults for pages that name no site.
    pub(crate) fn defaults(&self) -> &Site {
        &self.defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_unknown: bool) -> Sites {
        let collector = CollectorConfig { allow_unknown_sites: allow_unknown, cookieless: false, ..CollectorConfig::default() };
        let site = SiteConfig {
            id: "shop".into(),
            origins: vec!["https://shop.example.com/".into()],
            cookieless: Some(true),
            write_keys: vec!["0123456789abcdef".into()],
            ..SiteConfig::default()
        };
        Sites::new(&collector, &[site])
    }

    #[test]
    fn resolves_known_unknown_and_keys() {
        let sites = config(true);
        let shop = sites.get(Some("shop")).unwrap();
        assert!(shop.cookieless);
        assert!(shop.allows_origin(Some("https://shop.example.com")));
        assert!(!shop.allows_origin(Some("https://evil.example")));
        assert_eq!(sites.get(Some("blog")).unwrap().id, "blog");
        assert!(!sites.get(Some("blog")).unwrap().cookieless);
        assert_eq!(sites.by_write_key("0123456789abcdef").map(|s| s.id.as_str()), Some("shop"));
        assert!(sites.by_write_key("0123456789abcdeX").is_none());
        let strict = config(false);
        assert!(strict.get(Some("blog")).is_none());
        assert!(strict.get(None).is_none());
    }
}
