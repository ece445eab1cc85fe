//! Page and referrer URLs: host, path, query, campaign parameters and channel.

use oriel_core::Event;
use url::Url;

use crate::enrich::channels;

/// Fills `host`, `path`, `query`, the `utm_*` columns, `referrer_host` and `channel` from the
/// event's `url` and `referrer`.
pub(crate) fn enrich(event: &mut Event) {
    let page = event.url.as_deref().and_then(|u| Url::parse(u).ok());
    let mut has_click_id = false;
    if let Some(page) = &page {
        event.host = page.host_str().map(str::to_ascii_lowercase);
        event.path = Some(page.path().to_string());
        event.query = page.query().filter(|q| !q.is_empty()).map(str::to_string);
        for (key, value) in page.query_pairs() {
            let slot = match key.as_ref() {
                "utm_source" => &mut event.utm_source,
                "utm_medium" => &mut event.utm_medium,
                "utm_campaign" => &mut event.utm_campaign,
                "utm_term" => &mut event.utm_term,
                "utm_content" => &mut event.utm_content,
                other => {
                    has_click_id |= channels::is_click_id(other);
                    continue;
                }
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
    }
    event.referrer_host =
        event.referrer.as_deref().and_then(|r| Url::parse(r).ok()).and_then(|r| r.host_str().map(str::to_ascii_lowercase));
    let medium = event.utm_medium.as_deref().map(str::to_ascii_lowercase);
    let source = event.utm_source.as_deref().map(str::to_ascii_lowercase);
    event.channel = Some(
        channels::classify(channels::Signals {
            page_host: event.host.as_deref(),
            referrer_host: event.referrer_host.as_deref(),
            utm_medium: medium.as_deref(),
            utm_source: source.as_deref(),
            has_click_id,
        })
        .to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_page_url_and_finds_the_campaign() {
        let mut e = Event {
            url: Some(
                "https://Shop.Example.com/p/%C3%A4?utm_source=Newsletter&utm_medium=email&utm_campaign=Black%20Friday&x=1#top"
                    .into(),
            ),
            referrer: Some("https://mail.google.com/mail/u/0/".into()),
            ..Event::default()
        };
        enrich(&mut e);
        assert_eq!(e.host.as_deref(), Some("shop.example.com"));
        assert_eq!(e.path.as_deref(), Some("/p/%C3%A4"));
        assert_eq!(e.query.as_deref(), Some("utm_source=Newsletter&utm_medium=email&utm_campaign=Black%20Friday&x=1"));
        assert_eq!(e.utm_source.as_deref(), Some("Newsletter"));
        assert_eq!(e.utm_campaign.as_deref(), Some("Black Friday"));
        assert_eq!(e.referrer_host.as_deref(), Some("mail.google.com"));
        assert_eq!(e.channel.as_deref(), Some("email"));
    }

    #[test]
    fn no_url_means_direct_and_no_parts() {
        let mut e = Event { url: Some("not a url".into()), ..Event::default() };
        enrich(&mut e);
        assert_eq!(e.host, None);
        assert_eq!(e.channel.as_deref(), Some("direct"));
        let mut paid = Event {
            url: Some("https://a.com/?gclid=x".into()),
            referrer: Some("https://www.google.com/".into()),
            ..Event::default()
        };
        enrich(&mut paid);
        assert_eq!(paid.channel.as_deref(), Some("paid"));
    }
}
