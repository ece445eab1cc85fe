//! The lists that decide an event's traffic `channel`, and the rules that apply them.
//!
//! Order of the rules: explicit campaign parameters first (a paid click from Google is `paid`,
//! not `search`), then click ids of ad networks, then the referrer: none → `direct`, the site
//! itself → `internal`, then the search, social and webmail lists, else `referral`.

/// `utm_medium` values that mean paid traffic.
const PAID_MEDIUMS: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "cpm",
    "cpv",
    "cpa",
    "cpp",
    "display",
    "banner",
    "retargeting",
    "paid_social",
    "paid-social",
    "paidsocial",
    "affiliate",
    "affiliates",
    "ads",
];
/// `utm_medium` values that mean e-mail.
const EMAIL_MEDIUMS: &[&str] = &["email", "e-mail", "e_mail", "mail", "newsletter"];
/// `utm_medium` values that mean (organic) social.
const SOCIAL_MEDIUMS: &[&str] = &["social", "social-network", "social_network", "social-media", "social_media", "sm"];
/// Query parameters set by ad networks on paid clicks.
const CLICK_IDS: &[&str] = &["gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "ttclid", "twclid", "li_fat_id"];

/// Search engines, matched against the referrer host and its parent domains. `google.` style
/// entries match any top-level domain.
const SEARCH: &[&str] = &[
    "google.",
    "bing.com",
    "duckduckgo.com",
    "search.yahoo.com",
    "yahoo.co.jp",
    "baidu.com",
    "yandex.",
    "ya.ru",
    "ecosia.org",
    "search.brave.com",
    "startpage.com",
    "qwant.com",
    "naver.com",
    "seznam.cz",
    "ask.com",
    "search.aol.com",
    "so.com",
    "sogou.com",
    "daum.net",
    "kagi.com",
    "perplexity.ai",
    "you.com",
    "mojeek.com",
    "yep.com",
    "presearch.com",
    "metager.de",
    "search.lilo.org",
    "dogpile.com",
    "webcrawler.com",
    "petalsearch.com",
];
/// Social networks and link shorteners they use.
const SOCIAL: &[&str] = &[
    "facebook.com",
    "fb.com",
    "fb.me",
    "messenger.com",
    "instagram.com",
    "threads.net",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "reddit.com",
    "redd.it",
    "pinterest.",
    "pin.it",
    "youtube.com",
    "youtu.be",
    "tiktok.com",
    "vk.com",
    "ok.ru",
    "weibo.com",
    "snapchat.com",
    "tumblr.com",
    "quora.com",
    "news.ycombinator.com",
    "mastodon.social",
    "bsky.app",
    "discord.com",
    "discord.gg",
    "telegram.org",
    "t.me",
    "whatsapp.com",
    "wa.me",
    "line.me",
    "xing.com",
    "medium.com",
    "flipboard.com",
    "twitch.tv",
    "stackoverflow.com",
];
/// Webmail front ends: a click in a mail read there arrives with them as referrer.
const WEBMAIL: &[&str] = &[
    "mail.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.aol.com",
    "mail.proton.me",
    "mail.protonmail.com",
    "webmail.",
    "mail.yandex.ru",
    "mail.ru",
    "gmx.net",
    "web.de",
    "fastmail.com",
    "mail.zoho.com",
    "icloud.com",
];

/// What the channel decision looks at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Signals<'a> {
    /// Host of the page.
    pub page_host: Option<&'a str>,
    /// Host of the referrer.
    pub referrer_host: Option<&'a str>,
    /// `utm_medium`, lowercased by the caller.
    pub utm_medium: Option<&'a str>,
    /// `utm_source`, lowercased by the caller.
    pub utm_source: Option<&'a str>,
    /// Whether the page URL carries an ad-network click id.
    pub has_click_id: bool,
}

/// Whether a query parameter name is an ad-network click id.
pub(crate) fn is_click_id(name: &str) -> bool {
    CLICK_IDS.contains(&name)
}

/// The channel: direct, search, social, email, paid, referral or internal.
pub(crate) fn classify(s: Signals<'_>) -> &'static str {
    if let Some(medium) = s.utm_medium {
        if PAID_MEDIUMS.contains(&medium) {
            return "paid";
        }
        if EMAIL_MEDIUMS.contains(&medium) {
            return "email";
        }
        if SOCIAL_MEDIUMS.contains(&medium) {
            return "social";
        }
    }
    if s.utm_source.is_some_and(|src| EMAIL_MEDIUMS.iter().any(|m| src.contains(m))) {
        return "email";
    }
    if s.has_click_id {
        return "paid";
    }
    let Some(referrer) = s.referrer_host.filter(|h| !h.is_empty()) else {
        return if s.utm_source.is_some() { "referral" } else { "direct" };
    };
    if s.page_host.is_some_and(|page| same_site(page, referrer)) {
        return "internal";
    }
    if matches_list(referrer, WEBMAIL) {
        "email"
    } else if matches_list(referrer, SEARCH) {
        "search"
    } else if matches_list(referrer, SOCIAL) {
        "social"
    } else {
        "referral"
    }
}

/// Whether `host` is an entry of `list`, a subdomain of one, or (for `name.` entries) that name
/// under any top-level domain.
fn matches_list(host: &str, list: &[&str]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    list.iter().any(|entry| {
        if let Some(name) = entry.strip_suffix('.') {
            // "google." matches google.com, google.co.uk, www.google.de, news.google.com: the
            // name as any label but the top-level one.
            let labels: Vec<&str> = host.split('.').collect();
            labels.len() > 1 && labels[..labels.len() - 1].contains(&name)
        } else {
            host == *entry || host.ends_with(&format!(".{entry}"))
        }
    })
}

/// Whether two hosts belong to the same site, ignoring a leading `www.`.
fn same_site(a: &str, b: &str) -> bool {
    let norm = |h: &str| h.trim_end_matches('.').to_ascii_lowercase().trim_start_matches("www.").to_string();
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(page: &str, referrer: Option<&str>, medium: Option<&str>, source: Option<&str>, click: bool) -> &'static str {
        classify(Signals {
            page_host: Some(page),
            referrer_host: referrer,
            utm_medium: medium,
            utm_source: source,
            has_click_id: click,
        })
    }

    #[test]
    fn channels() {
        assert_eq!(ch("example.com", None, None, None, false), "direct");
        assert_eq!(ch("example.com", Some("www.example.com"), None, None, false), "internal");
        assert_eq!(ch("example.com", Some("www.google.co.uk"), None, None, false), "search");
        assert_eq!(ch("example.com", Some("google.com"), None, None, false), "search");
        assert_eq!(ch("example.com", Some("news.google.com"), None, None, false), "search");
        assert_eq!(ch("example.com", Some("googleusercontent.com"), None, None, false), "referral");
        assert_eq!(ch("example.com", Some("duckduckgo.com"), None, None, false), "search");
        assert_eq!(ch("example.com", Some("t.co"), None, None, false), "social");
        assert_eq!(ch("example.com", Some("l.facebook.com"), None, None, false), "social");
        assert_eq!(ch("example.com", Some("mail.google.com"), None, None, false), "email");
        assert_eq!(ch("example.com", Some("blog.other.org"), None, None, false), "referral");
        assert_eq!(ch("example.com", Some("www.google.com"), Some("cpc"), Some("google"), false), "paid");
        assert_eq!(ch("example.com", Some("www.google.com"), None, None, true), "paid");
        assert_eq!(ch("example.com", None, Some("email"), Some("newsletter"), false), "email");
        assert_eq!(ch("example.com", None, None, Some("weekly-newsletter"), false), "email");
        assert_eq!(ch("example.com", None, Some("social"), Some("mastodon"), false), "social");
        assert_eq!(ch("example.com", None, None, Some("partner"), false), "referral");
    }
}
