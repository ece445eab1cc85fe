//! User agent → browser, OS, device type, and bot signals, with uap-core rules behind an LRU
//! cache (most traffic repeats a few hundred user agents, and each parse runs many regexes).
//! The cache is bounded by the bytes it holds, not by entries: keys are whatever clients send,
//! and the collector cuts them to `collector.max_user_agent_bytes` before they get here.

use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// The uap-core rules, converted to JSON by the build script.
static RULES: &str = include_str!(concat!(env!("OUT_DIR"), "/uap-regexes.json"));

/// What a user agent says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserAgentInfo {
    /// Browser family, e.g. `Chrome`.
    pub browser: Option<String>,
    /// Browser major version.
    pub browser_version: Option<String>,
    /// Operating system family.
    pub os: Option<String>,
    /// Operating system version (`major.minor`).
    pub os_version: Option<String>,
    /// desktop, mobile, tablet, bot or other.
    pub device_type: &'static str,
    /// Whether the client is a crawler, a script or an automated browser.
    pub is_bot: bool,
}

/// Parses user agents with a cache bounded in bytes.
pub(crate) struct UserAgents {
    extractor: ua_parser::Extractor<'static>,
    cache: Mutex<Cache>,
}

/// Cached answers and the bytes they hold.
struct Cache {
    entries: LruCache<Box<str>, Arc<UserAgentInfo>>,
    bytes: usize,
    budget: usize,
}

/// Bookkeeping bytes of one entry besides its strings (hash slot, list links, `Arc`).
const ENTRY_OVERHEAD: usize = 128;

impl UserAgentInfo {
    fn heap_bytes(&self) -> usize {
        [&self.browser, &self.browser_version, &self.os, &self.os_version].iter().map(|s| s.as_ref().map_or(0, String::len)).sum()
    }
}

impl Cache {
    fn insert(&mut self, key: &str, info: Arc<UserAgentInfo>) {
        let cost = key.len() + info.heap_bytes() + ENTRY_OVERHEAD;
        if cost > self.budget {
            return;
        }
        if let Some(old) = self.entries.put(key.into(), info) {
            self.bytes -= key.len() + old.heap_bytes() + ENTRY_OVERHEAD;
        }
        self.bytes += cost;
        while self.bytes > self.budget {
            let Some((k, v)) = self.entries.pop_lru() else { break };
            self.bytes -= k.len() + v.heap_bytes() + ENTRY_OVERHEAD;
        }
    }
}

impl std::fmt::Debug for UserAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.lock();
        f.debug_struct("UserAgents").field("cached", &cache.entries.len()).field("bytes", &cache.bytes).finish()
    }
}

/// Words that only crawlers, scripts and automation put in a user agent.
const BOT_WORDS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "httpclient",
    "okhttp",
    "go-http-client",
    "java/",
    "libwww",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "lighthouse",
    "pingdom",
    "uptimerobot",
    "monitor",
    "facebookexternalhit",
    "embedly",
    "preview",
    "scrapy",
    "node-fetch",
    "axios/",
    "httpie",
    "postman",
    "insomnia",
    "wrk",
    "apachebench",
    "k6/",
    "gatling",
    "jmeter",
];

impl UserAgents {
    /// Compiles the rules, with a cache of at most `cache_bytes`. Takes a while (hundreds of
    /// regexes), so start-up does it off the async threads.
    pub(crate) fn new(cache_bytes: usize) -> Result<Self, String> {
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(RULES).map_err(|e| format!("invalid user agent rules: {e}"))?;
        let extractor = ua_parser::Extractor::try_from(regexes).map_err(|e| format!("invalid user agent rules: {e}"))?;
        let cache = Cache { entries: LruCache::unbounded(), bytes: 0, budget: cache_bytes };
        Ok(Self { extractor, cache: Mutex::new(cache) })
    }

    /// What `ua` says; cached.
    pub(crate) fn parse(&self, ua: &str) -> Arc<UserAgentInfo> {
        if let Some(hit) = self.cache.lock().entries.get(ua) {
            return Arc::clone(hit);
        }
        let info = Arc::new(self.parse_uncached(ua));
        self.cache.lock().insert(ua, Arc::clone(&info));
        info
    }

    /// Bytes the cache holds now.
    #[cfg(test)]
    pub(crate) fn cached_bytes(&self) -> usize {
        self.cache.lock().bytes
    }

    fn parse_uncached(&self, ua: &str) -> UserAgentInfo {
        let (browser, os, device) = self.extractor.extract(ua);
        let browser_family = browser.as_ref().map(|b| b.family.to_string()).filter(|f| f != "Other");
        let os_family = os.as_ref().map(|o| o.os.to_string()).filter(|f| f != "Other");
        let os_version = os.as_ref().and_then(|o| {
            let major = o.major.as_deref()?;
            Some(match o.minor.as_deref() {
                Some(minor) => format!("{major}.{minor}"),
                None => major.to_string(),
            })
        });
        let device_family = device.as_ref().map(|d| d.device.to_string()).unwrap_or_default();
        let lower = ua.to_ascii_lowercase();
        let is_bot = device_family == "Spider" || ua.is_empty() || BOT_WORDS.iter().any(|w| lower.contains(w));
        let device_type = if is_bot {
            "bot"
        } else if device_family == "iPad" || lower.contains("tablet") || (lower.contains("android") && !lower.contains("mobile"))
        {
            "tablet"
        } else if lower.contains("mobi") || lower.contains("iphone") || device_family.contains("Phone") {
            "mobile"
        } else if matches!(
            os_family.as_deref(),
            Some("Windows" | "Mac OS X" | "macOS" | "Linux" | "Ubuntu" | "Chrome OS" | "Fedora" | "FreeBSD")
        ) {
            "desktop"
        } else {
            "other"
        };
        UserAgentInfo {
            browser: browser_family,
            browser_version: browser.and_then(|b| b.major.map(str::to_string)),
            os: os_family,
            os_version,
            device_type,
            is_bot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static UA: LazyLock<UserAgents> = LazyLock::new(|| UserAgents::new(1 << 20).unwrap());

    #[test]
    fn common_browsers() {
        let chrome = UA.parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        );
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.browser_version.as_deref(), Some("124"));
        assert_eq!(chrome.os.as_deref(), Some("Windows"));
        assert_eq!(chrome.device_type, "desktop");
        assert!(!chrome.is_bot);

        let iphone = UA.parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone.browser.as_deref(), Some("Mobile Safari"));
        assert_eq!(iphone.os.as_deref(), Some("iOS"));
        assert_eq!(iphone.os_version.as_deref(), Some("17.4"));
        assert_eq!(iphone.device_type, "mobile");

        let ipad = UA.parse("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad.device_type, "tablet");

        let firefox = UA.parse("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0");
        assert_eq!(firefox.browser.as_deref(), Some("Firefox"));
        assert_eq!(firefox.device_type, "desktop");
    }

    #[test]
    fn bots_and_automation() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
            "",
        ] {
            let info = UA.parse(ua);
            assert!(info.is_bot, "{ua:?} should be a bot");
            assert_eq!(info.device_type, "bot");
        }
    }

    #[test]
    fn the_cache_stays_within_its_byte_budget() {
        let agents = UserAgents::new(64 * 1024).unwrap();
        for i in 0..2000 {
            agents.parse(&format!("Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0 {}", "x".repeat(300)));
        }
        assert!(agents.cached_bytes() <= 64 * 1024, "{} bytes cached", agents.cached_bytes());
        assert!(agents.cached_bytes() > 32 * 1024, "the budget is used: {} bytes", agents.cached_bytes());
    }

    #[test]
    fn cache_returns_the_same_answer() {
        let a = UA.parse("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0");
        let b = UA.parse("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
