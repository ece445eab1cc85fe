//! `GET /e.gif`: one event in the query string, for pages without JavaScript and e-mail.

use oriel_core::{Event, EventSource};

use super::{text, whole};
use crate::limits::Limits;

/// A decoded pixel request.
#[derive(Debug)]
pub struct Decoded {
    /// The `site` parameter.
    pub site: Option<String>,
    /// The event, not yet enriched.
    pub event: Event,
}

/// Most parameters accepted.
const MAX_PARAMETERS: usize = 32;

/// Decodes the query; `referer` stands in for a missing `url`.
pub fn decode(query: &str, referer: Option<&str>, limits: &Limits) -> Result<Decoded, String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    if pairs.len() > MAX_PARAMETERS {
        return Err(format!("more than {MAX_PARAMETERS} query parameters"));
    }
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let site = text(limits, "site", get("site"))?;
    let event_type = text(limits, "t", get("t"))?.unwrap_or_else(|| "pageView".into());
    let ts = match get("ts") {
        Some(raw) => Some(raw.parse::<f64>().map_err(|_| format!("ts must be a number, not {raw:?}"))?),
        None => None,
    };
    let props = match get("p").filter(|p| !p.is_empty()) {
        Some(raw) => {
            let value: serde_json::Value = serde_json::from_str(&raw).map_err(|e| format!("p is not JSON: {e}"))?;
            Some(limits.props(&value).map_err(|m| format!("p: {m}"))?)
        }
        None => None,
    };
    let url = text(limits, "url", get("url"))?.or_else(|| referer.filter(|r| r.len() <= limits.max_field_bytes).map(str::to_string));
    let event = Event {
        client_time: whole("ts", ts, 7_258_118_400_000.0)?,
        site: site.clone(),
        event_id: text(limits, "id", get("id"))?,
        event_type,
        party_id: text(limits, "vid", get("vid"))?,
        session_id: text(limits, "sid", get("sid"))?,
        user_id: text(limits, "uid", get("uid"))?,
        url,
        referrer: text(limits, "ref", get("ref"))?,
        title: text(limits, "ti", get("ti"))?,
        props,
        source: EventSource::Pixel,
        ..Event::default()
    };
    Ok(Decoded { site, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_and_defaults() {
        let d = decode("site=news&t=open&vid=V&p=%7B%22campaign%22%3A%22nov%22%7D&ti=Hello+world", Some("https://a.com/mail"), &Limits::default()).unwrap();
        assert_eq!(d.site.as_deref(), Some("news"));
        assert_eq!(d.event.event_type, "open");
        assert_eq!(d.event.title.as_deref(), Some("Hello world"));
        assert_eq!(d.event.url.as_deref(), Some("https://a.com/mail"), "the Referer stands in for url");
        assert_eq!(d.event.props.as_deref(), Some(r#"{"campaign":"nov"}"#));
        let bare = decode("", None, &Limits::default()).unwrap();
        assert_eq!(bare.event.event_type, "pageView");
    }

    #[test]
    fn refuses_bad_values() {
        assert!(decode("p=%7Bnope", None, &Limits::default()).unwrap_err().starts_with("p is not JSON"));
        assert!(decode("p=%5B1%5D", None, &Limits::default()).unwrap_err().contains("object"));
        assert!(decode("ts=soon", None, &Limits::default()).unwrap_err().contains("ts must be a number"));
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        assert!(decode(&many.join("&"), None, &Limits::default()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(query in ".{0,300}", referer in proptest::option::of(".{0,50}")) {
            let _ = decode(&query, referer.as_deref(), &Limits::default());
        }
    }
}
