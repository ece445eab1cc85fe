//! User agent → browser, OS, device type, and bot signals, with uap-core rules behind an LRU
//! cache (most traffic repeats a few hundred user agents, and each parse runs many regexes).

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// The uap-core rules, converted to JSON by the build script.
static RULES: &str = include_str!(concat!(env!("OUT_DIR"), "/uap-regexes.json"));

/// What a user agent says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgentInfo {
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

/// Parses user agents with a bounded cache.
pub struct UserAgents {
    extractor: ua_parser::Extractor<'static>,
    cache: Mutex<LruCache<Box<str>, Arc<UserAgentInfo>>>,
}

impl std::fmt::Debug for UserAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgents").field("cached", &self.cache.lock().len()).finish()
    }
}

/// Words that only crawlers, scripts and automation put in a user agent.
const BOT_WORDS: &[&str] = &[
    "bot", "crawl", "spider", "slurp", "curl/", "wget/", "python-requests", "python-urllib", "httpclient", "okhttp",
    "go-http-client", "java/", "libwww", "headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium",
    "lighthouse", "pingdom", "uptimerobot", "monitor", "facebookexternalhit", "embedly", "preview", "scrapy",
    "node-fetch", "axios/", "httpie", "postman", "insomnia", "wrk", "apachebench", "k6/", "gatling", "jmeter",
];

impl UserAgents {
    /// Compiles the rules. Takes a while (hundreds of regexes), so start-up does it off the
    /// async threads.
    pub fn new(cache_size: usize) -> Result<Self, String> {
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(RULES).map_err(|e| format!("invalid user agent rules: {e}"))?;
        let extractor = ua_parser::Extractor::try_from(regexes).map_err(|e| format!("invalid user agent rules: {e}"))?;
        let size = NonZeroUsize::new(cache_size).unwrap_or(NonZeroUsize::MIN);
        Ok(Self { extractor, cache: Mutex::new(LruCache::new(size)) })
    }

    /// What `ua` says; cached.
    pub fn parse(&self, ua: &str) -> Arc<UserAgentInfo> {
        if let Some(hit) = self.cache.lock().get(ua) {
            return Arc::clone(hit);
        }
        let info = Arc::new(self.parse_uncached(ua));
        self.cache.lock().put(ua.into(), Arc::clone(&info));
        info
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
        } else if device_family == "iPad" || lower.contains("tablet") || (lower.contains("android") && !lower.contains("mobile")) {
            "tablet"
        } else if lower.contains("mobi") || lower.contains("iphone") || device_family.contains("Phone") {
            "mobile"
        } else if matches!(os_family.as_deref(), Some("Windows" | "Mac OS X" | "macOS" | "Linux" | "Ubuntu" | "Chrome OS" | "Fedora" | "FreeBSD")) {
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

    static UA: LazyLock<UserAgents> = LazyLock::new(|| UserAgents::new(100).unwrap());

    #[test]
    fn common_browsers() {
        let chrome = UA.parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36");
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
    fn cache_returns_the_same_answer() {
        let a = UA.parse("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0");
        let b = UA.parse("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
