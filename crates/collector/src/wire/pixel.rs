//! `GET /e.gif`: one event in the query string, for pages without JavaScript and e-mail.

use oriel_core::{Event, EventSource};
use serde::{Deserialize, Serialize};

use super::{id, text, whole};
use crate::limits::Limits;

/// The parameters of a pixel request, by their names in the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelQuery {
    /// Site id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Event type; `pageView` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    /// Event id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Visitor id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Page URL; the `Referer` stands in when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Referrer.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ti: Option<String>,
    /// Client time, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// Custom properties as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
}

impl PixelQuery {
    /// The query string, encoded as browsers encode forms.
    pub fn to_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.pairs() {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    fn pairs(&self) -> [(&'static str, Option<&String>); 11] {
        [
            ("site", self.site.as_ref()),
            ("t", self.t.as_ref()),
            ("id", self.id.as_ref()),
            ("vid", self.vid.as_ref()),
            ("sid", self.sid.as_ref()),
            ("uid", self.uid.as_ref()),
            ("url", self.url.as_ref()),
            ("ref", self.referrer.as_ref()),
            ("ti", self.ti.as_ref()),
            ("ts", self.ts.as_ref()),
            ("p", self.p.as_ref()),
        ]
    }

    /// Reads the parameters of a query string; the first of repeated names counts, unknown
    /// names are ignored (campaign links add their own).
    fn parse(query: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for (count, (name, value)) in url::form_urlencoded::parse(query.as_bytes()).enumerate() {
            if count >= MAX_PARAMETERS {
                return Err(format!("more than {MAX_PARAMETERS} query parameters"));
            }
            let slot = match name.as_ref() {
                "site" => &mut out.site,
                "t" => &mut out.t,
                "id" => &mut out.id,
                "vid" => &mut out.vid,
                "sid" => &mut out.sid,
                "uid" => &mut out.uid,
                "url" => &mut out.url,
                "ref" => &mut out.referrer,
                "ti" => &mut out.ti,
                "ts" => &mut out.ts,
                "p" => &mut out.p,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        Ok(out)
    }
}

/// A decoded pixel request.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The `site` parameter.
    pub site: Option<String>,
    /// The event, not yet enriched.
    pub event: Event,
}

/// Most parameters accepted.
const MAX_PARAMETERS: usize = 32;

/// Decodes the query; `referer` stands in for a missing `url`.
pub(crate) fn decode(query: &str, referer: Option<&str>, limits: &Limits) -> Result<Decoded, String> {
    let q = PixelQuery::parse(query)?;
    let site = id(limits, "site", q.site)?;
    let event_type = id(limits, "t", q.t)?.unwrap_or_else(|| "pageView".into());
    let ts = match q.ts {
        Some(raw) => Some(raw.parse::<f64>().map_err(|_| format!("ts must be a number, not {raw:?}"))?),
        None => None,
    };
    let props = match q.p.filter(|p| !p.is_empty()) {
        Some(raw) => {
            let value: serde_json::Value = serde_json::from_str(&raw).map_err(|e| format!("p is not JSON: {e}"))?;
            Some(limits.props(&value).map_err(|m| format!("p: {m}"))?)
        }
        None => None,
    };
    let url = text(limits, "url", q.url)?.or_else(|| referer.filter(|r| r.len() <= limits.max_field_bytes).map(str::to_string));
    let event = Event {
        client_time: whole("ts", ts, 7_258_118_400_000.0)?,
        site: site.clone(),
        event_id: id(limits, "id", q.id)?,
        event_type,
        party_id: id(limits, "vid", q.vid)?,
        session_id: id(limits, "sid", q.sid)?,
        user_id: id(limits, "uid", q.uid)?,
        url,
        referrer: text(limits, "ref", q.referrer)?,
        title: text(limits, "ti", q.ti)?,
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
        let d = decode(
            "site=news&t=open&vid=V&p=%7B%22campaign%22%3A%22nov%22%7D&ti=Hello+world",
            Some("https://a.com/mail"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.site.as_deref(), Some("news"));
        assert_eq!(d.event.event_type, "open");
        assert_eq!(d.event.title.as_deref(), Some("Hello world"));
        assert_eq!(d.event.url.as_deref(), Some("https://a.com/mail"), "the Referer stands in for url");
        assert_eq!(d.event.props.as_deref(), Some(r#"{"campaign":"nov"}"#));
        let bare = decode("", None, &Limits::default()).unwrap();
        assert_eq!(bare.event.event_type, "pageView");
    }

    #[test]
    fn the_query_type_writes_what_the_decoder_reads() {
        let q = PixelQuery {
            site: Some("s".into()),
            ti: Some("a & b".into()),
            referrer: Some("https://r/".into()),
            ..PixelQuery::default()
        };
        assert_eq!(q.to_query(), "site=s&ref=https%3A%2F%2Fr%2F&ti=a+%26+b");
        let d = decode(&q.to_query(), None, &Limits::default()).unwrap();
        assert_eq!(d.event.title.as_deref(), Some("a & b"));
        assert_eq!(d.event.referrer.as_deref(), Some("https://r/"));
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
