//! The site and privacy policy every event passes, whatever protocol carried it: the site must
//! be accepted, the request must come from one of its origins, and a browser that asked not to
//! be tracked is not.

use crate::sites::Site;

/// What the request says about where it came from and what its user asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Privacy<'a> {
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Referer` header (an `<img>` sends no `Origin`).
    pub referer: Option<&'a str>,
    /// `DNT: 1` or `Sec-GPC: 1`: the browser asked not to be tracked.
    pub opted_out: bool,
}

/// What the policy decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Store the events.
    Accept,
    /// Answer as if stored, store nothing: the user opted out and the site honours it.
    OptedOut,
    /// Refuse: the request comes from an origin the site does not allow.
    WrongOrigin(String),
}

/// Applies `site`'s policy to a request. A request without `Origin` is judged by the origin of
/// its `Referer`; one with neither (curl, an e-mail client) is not a cross-origin browser
/// request and passes the origin check.
pub(crate) fn judge(site: &Site, privacy: &Privacy<'_>) -> Verdict {
    if !site.origins.is_empty() {
        let origin = privacy.origin.map(str::to_string).or_else(|| {
            // Parsing the Referer costs per request: only for sites that restrict their origins.
            let referer = url::Url::parse(privacy.referer?).ok()?;
            Some(referer.origin().ascii_serialization())
        });
        if !site.allows_origin(origin.as_deref()) {
            return Verdict::WrongOrigin(format!(
                "origin {} may not send events for site {:?}",
                origin.as_deref().unwrap_or("?"),
                site.id
            ));
        }
    }
    if site.respect_dnt && privacy.opted_out {
        return Verdict::OptedOut;
    }
    Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(origins: &[&str], respect_dnt: bool) -> Site {
        Site {
            id: "shop".into(),
            origins: origins.iter().map(|o| (*o).to_string()).collect(),
            cookieless: false,
            session_timeout_minutes: 30,
            ip_handling: oriel_core::config::IpHandling::Anonymize,
            respect_dnt,
            require_consent: false,
            track_hash: false,
            write_keys: Vec::new(),
        }
    }

    #[test]
    fn origins_referers_and_opt_outs() {
        let shop = site(&["https://shop.example.com"], true);
        let from =
            |origin: Option<&'static str>, referer: Option<&'static str>, opted_out| Privacy { origin, referer, opted_out };
        assert_eq!(judge(&shop, &from(Some("https://shop.example.com"), None, false)), Verdict::Accept);
        assert!(matches!(judge(&shop, &from(Some("https://evil.example"), None, false)), Verdict::WrongOrigin(_)));
        assert!(matches!(judge(&shop, &from(None, Some("https://evil.example/page"), false)), Verdict::WrongOrigin(_)));
        assert_eq!(judge(&shop, &from(None, Some("https://shop.example.com/cart"), false)), Verdict::Accept);
        assert_eq!(judge(&shop, &from(None, None, false)), Verdict::Accept, "no browser origin to check");
        assert_eq!(judge(&shop, &from(Some("https://shop.example.com"), None, true)), Verdict::OptedOut);
        assert_eq!(judge(&site(&[], false), &from(Some("https://any.example"), None, true)), Verdict::Accept);
    }
}
