//! The browser tags, with settings baked in, pre-compressed, with strong ETags. Which encoding
//! a client gets is decided here ([`Asset::negotiate`]); the HTTP layer only writes it out.
//!
//! `oriel.js` is built from `tag/oriel.js` into `assets/oriel.min.js` (see `tag/build.mjs`); the
//! collector replaces the literal `"__ORIEL_CONFIG__"` with the settings of the default site or
//! of a configured site (`/oriel.js?site=ID`). `divolte.js` is Oriel's own implementation of
//! Divolte's tag; its constants come from `[collector.divolte]`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use oriel_core::config::CollectorConfig;
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::sites::Site;
use crate::{Error, Result};

static ORIEL_JS: &str = include_str!("../assets/oriel.min.js");
static DIVOLTE_JS: &str = include_str!("../assets/divolte.min.js");
const ORIEL_PLACEHOLDER: &str = "\"__ORIEL_CONFIG__\"";
const DIVOLTE_PLACEHOLDER: &str = "\"__DIVOLTE_CONFIG__\"";

/// One script in every encoding, with its ETag.
#[derive(Debug)]
pub struct Asset {
    identity: Vec<u8>,
    gzip: Vec<u8>,
    brotli: Vec<u8>,
    etag: String,
}

impl Asset {
    fn new(text: String) -> Result<Self> {
        Self::from_bytes(text.into_bytes())
    }

    /// An asset of `identity` bytes, compressed with gzip and brotli at their best once here.
    pub fn from_bytes(identity: Vec<u8>) -> Result<Self> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&identity).map_err(|e| Error::Setup(format!("gzip: {e}")))?;
        let gzip = gz.finish().map_err(|e| Error::Setup(format!("gzip: {e}")))?;
        let mut brotli = Vec::new();
        let params = brotli::enc::BrotliEncoderParams { quality: 11, ..Default::default() };
        brotli::BrotliCompress(&mut identity.as_slice(), &mut brotli, &params)
            .map_err(|e| Error::Setup(format!("brotli: {e}")))?;
        let digest = Sha256::digest(&identity);
        let etag = base64::engine::general_purpose::STANDARD.encode(digest);
        Ok(Self { identity, gzip, brotli, etag })
    }

    /// What to answer a GET whose `Accept-Encoding` and `If-None-Match` header values are given:
    /// the best encoding the client accepts, or "not modified".
    pub fn negotiate<'a>(&'a self, accept_encoding: &[&str], if_none_match: &[&str]) -> Negotiated<'a> {
        let accepts = |coding: &str| {
            accept_encoding.iter().any(|v| {
                v.split(',').any(|item| {
                    let mut parts = item.split(';');
                    let name = parts.next().unwrap_or_default().trim();
                    let refused = parts.any(|p| {
                        p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f64>().ok()).is_some_and(|q| q <= 0.0)
                    });
                    name.eq_ignore_ascii_case(coding) && !refused
                })
            })
        };
        let (body, encoding, etag) = if accepts("br") {
            (&self.brotli, Some("br"), format!("\"br+{}\"", self.etag))
        } else if accepts("gzip") {
            (&self.gzip, Some("gzip"), format!("\"gz+{}\"", self.etag))
        } else {
            (&self.identity, None, format!("\"{}\"", self.etag))
        };
        let not_modified = if_none_match.iter().any(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        Negotiated { body, encoding, etag, not_modified }
    }

    /// The uncompressed bytes.
    pub fn text(&self) -> &[u8] {
        &self.identity
    }
}

/// The answer to one request for an [`Asset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated<'a> {
    /// The bytes to send (unless not modified).
    pub body: &'a [u8],
    /// The `Content-Encoding`, if compressed.
    pub encoding: Option<&'static str>,
    /// The `ETag` of this encoding.
    pub etag: String,
    /// The client's copy is current: answer 304.
    pub not_modified: bool,
}

/// The tags this collector serves.
#[derive(Debug)]
pub(crate) struct Assets {
    public_url: Option<String>,
    oriel: Mutex<HashMap<String, Arc<Asset>>>,
    divolte: Arc<Asset>,
}

impl Assets {
    /// Prepares `divolte.js`; `oriel.js` variants are made on first request.
    pub(crate) fn new(config: &CollectorConfig) -> Result<Self> {
        let d = &config.divolte;
        let settings = json!({
            "partyCookie": d.party_cookie,
            "partyTimeoutSeconds": u64::from(d.party_timeout_days) * 86_400,
            "sessionCookie": d.session_cookie,
            "sessionTimeoutSeconds": u64::from(d.session_timeout_minutes) * 60,
            "cookieDomain": d.cookie_domain,
            "eventSuffix": "csc-event",
            "scriptName": "divolte.js",
            "autoPageViewEvent": d.auto_page_view_event,
            "eventTimeoutSeconds": f64::from(d.event_timeout_ms) / 1000.0,
            "logging": false,
        });
        let divolte = Arc::new(Asset::new(bake(DIVOLTE_JS, DIVOLTE_PLACEHOLDER, &settings.to_string())?)?);
        let public_url = (!config.public_url.is_empty()).then(|| config.public_url.clone());
        Ok(Self { public_url, oriel: Mutex::new(HashMap::new()), divolte })
    }

    /// `oriel.js` for `site` (its settings baked in) or for the defaults (`named` = false).
    pub(crate) fn oriel(&self, site: &Site, named: bool) -> Result<Arc<Asset>> {
        let key = if named { site.id.clone() } else { String::new() };
        if let Some(asset) = self.oriel.lock().get(&key) {
            return Ok(Arc::clone(asset));
        }
        let settings = serde_json::to_string(&site.tag_settings(self.public_url.as_deref(), named))
            .map_err(|e| Error::Setup(format!("tag settings: {e}")))?;
        let asset = Arc::new(Asset::new(bake(ORIEL_JS, ORIEL_PLACEHOLDER, &settings)?)?);
        self.oriel.lock().insert(key, Arc::clone(&asset));
        Ok(asset)
    }

    /// `divolte.js`.
    pub(crate) fn divolte(&self) -> &Asset {
        &self.divolte
    }
}

fn bake(script: &str, placeholder: &str, settings: &str) -> Result<String> {
    if !script.contains(placeholder) {
        return Err(Error::Setup(format!(
            "the built tag lacks its {placeholder} placeholder; rebuild it with node tag/build.mjs"
        )));
    }
    // JSON is valid JavaScript except for U+2028/U+2029 inside strings in old engines; escape them.
    let settings = settings.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029");
    Ok(script.replacen(placeholder, &settings, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_encoding_and_answers_304() {
        let asset = Asset::new("var a = 1;".repeat(100)).unwrap();
        let best = asset.negotiate(&["gzip, deflate, br"], &[]);
        assert_eq!(best.encoding, Some("br"));
        assert!(!best.not_modified);
        assert!(asset.negotiate(&["gzip, deflate, br"], &[&best.etag]).not_modified);
        assert_eq!(asset.negotiate(&["gzip;q=1, br;q=0"], &[]).encoding, Some("gzip"));
        let plain = asset.negotiate(&[], &[]);
        assert_eq!((plain.encoding, plain.body), (None, asset.text()));
    }

    #[test]
    fn bakes_settings_into_the_placeholder() {
        assert_eq!(bake("var C=\"__ORIEL_CONFIG__\";", ORIEL_PLACEHOLDER, "{\"a\":1}").unwrap(), "var C={\"a\":1};");
        assert!(bake("var C=1;", ORIEL_PLACEHOLDER, "{}").is_err());
    }
}
