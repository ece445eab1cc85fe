//! `POST /e`: a batch of events from the `oriel.js` tag.

use oriel_core::{Event, EventSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{id, text, whole};
use crate::limits::Limits;

/// A batch as the tag sends it. Fields shared by the batch's events come once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagBatch {
    /// Site id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Visitor id (absent in cookieless mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// User id, once the page identified one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Screen width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw: Option<f64>,
    /// Screen height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sh: Option<f64>,
    /// Viewport width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vw: Option<f64>,
    /// Viewport height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vh: Option<f64>,
    /// Device pixel ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpr: Option<f64>,
    /// Browser language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `navigator.webdriver`: the browser is driven by automation (a headless-browser signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wd: Option<bool>,
    /// The events.
    pub ev: Vec<TagEvent>,
}

/// One event of a [`TagBatch`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagEvent {
    /// Event id, for duplicate detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Event type.
    pub t: String,
    /// Client time, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// Page view id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pv: Option<String>,
    /// Page URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Referrer.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Page title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ti: Option<String>,
    /// First event of a new visitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nv: Option<bool>,
    /// First event of a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs: Option<bool>,
    /// Custom properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<Value>,
    /// Engaged time, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub em: Option<f64>,
    /// Scroll depth, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
}

/// A decoded batch: the site it names and its events.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The `site` field.
    pub site: Option<String>,
    /// The events, in order, not yet enriched.
    pub events: Vec<Event>,
}

/// Largest screen or viewport dimension accepted.
const MAX_PIXELS: f64 = 100_000.0;
/// Latest client timestamp accepted: year 2200.
const MAX_TIME_MS: f64 = 7_258_118_400_000.0;
/// Longest engaged time of one page view: a week.
const MAX_ENGAGED_MS: f64 = 7.0 * 86_400_000.0;

/// Decodes a batch body.
pub(crate) fn decode(body: &[u8], limits: &Limits) -> Result<Decoded, String> {
    let batch: TagBatch = serde_json::from_slice(body).map_err(|e| format!("invalid batch: {e}"))?;
    if batch.ev.is_empty() {
        return Err("the batch holds no events".into());
    }
    if batch.ev.len() > limits.max_events {
        return Err(format!("the batch holds {} events, more than the limit of {}", batch.ev.len(), limits.max_events));
    }
    let site = id(limits, "site", batch.site)?;
    let party_id = id(limits, "vid", batch.vid)?;
    let session_id = id(limits, "sid", batch.sid)?;
    let user_id = id(limits, "uid", batch.uid)?;
    let language = id(limits, "lang", batch.lang)?;
    let px = |name, v| whole(name, v, MAX_PIXELS).map(|v| v.map(|v| v as i32));
    let (screen_width, screen_height) = (px("sw", batch.sw)?, px("sh", batch.sh)?);
    let (viewport_width, viewport_height) = (px("vw", batch.vw)?, px("vh", batch.vh)?);
    let pixel_ratio = match batch.dpr {
        Some(r) if r.is_finite() && r > 0.0 && r <= 100.0 => Some(r),
        Some(r) => return Err(format!("dpr must be a number between 0 and 100, not {r}")),
        None => None,
    };
    let automated = batch.wd == Some(true);
    let mut events = Vec::with_capacity(batch.ev.len());
    for (i, e) in batch.ev.into_iter().enumerate() {
        let at = |field: &str| format!("ev[{i}].{field}");
        if e.t.is_empty() {
            return Err(format!("{} must not be empty", at("t")));
        }
        limits.id(&at("t"), &e.t)?;
        let props = match e.p {
            None | Some(Value::Null) => None,
            Some(p) => Some(limits.props(&p).map_err(|m| format!("{}: {m}", at("p")))?),
        };
        events.push(Event {
            client_time: whole(&at("ts"), e.ts, MAX_TIME_MS)?,
            site: site.clone(),
            event_id: id(limits, &at("id"), e.id)?,
            event_type: e.t,
            party_id: party_id.clone(),
            session_id: session_id.clone(),
            page_view_id: id(limits, &at("pv"), e.pv)?,
            is_new_party: e.nv,
            is_first_in_session: e.fs,
            user_id: user_id.clone(),
            url: text(limits, &at("url"), e.url)?,
            title: text(limits, &at("ti"), e.ti)?,
            referrer: text(limits, &at("ref"), e.referrer)?,
            language: language.clone(),
            screen_width,
            screen_height,
            viewport_width,
            viewport_height,
            pixel_ratio,
            engaged_ms: whole(&at("em"), e.em, MAX_ENGAGED_MS)?,
            scroll_depth: whole(&at("sd"), e.sd, 100.0)?.map(|v| v as i32),
            props,
            source: EventSource::Tag,
            is_bot: automated,
            ..Event::default()
        });
    }
    Ok(Decoded { site, events })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_batch() {
        let body = br#"{"site":"docs","vid":"V","sid":"S","uid":"U","sw":1920,"sh":1080,"vw":1280.4,"vh":720,"dpr":1.5,"lang":"nl-NL",
            "ev":[{"id":"e1","t":"pageView","ts":1700000000000,"pv":"P","url":"https://a.com/x","ref":"https://b.com/","ti":"T","nv":true,"fs":false},
                  {"id":"e2","t":"signup","p":{"plan":"pro","n":[1,{"a":null}]}},
                  {"id":"e3","t":"engagement","em":8123,"sd":75}]}"#;
        let d = decode(body, &Limits::default()).unwrap();
        assert_eq!(d.site.as_deref(), Some("docs"));
        assert_eq!(d.events.len(), 3);
        let pv = &d.events[0];
        assert_eq!(pv.event_type, "pageView");
        assert_eq!(pv.party_id.as_deref(), Some("V"));
        assert_eq!(pv.viewport_width, Some(1280));
        assert_eq!(pv.pixel_ratio, Some(1.5));
        assert_eq!(pv.client_time, Some(1_700_000_000_000));
        assert_eq!(pv.is_new_party, Some(true));
        assert_eq!(pv.language.as_deref(), Some("nl-NL"));
        assert_eq!(d.events[1].props.as_deref(), Some(r#"{"n":[1,{"a":null}],"plan":"pro"}"#));
        assert_eq!((d.events[2].engaged_ms, d.events[2].scroll_depth), (Some(8123), Some(75)));
        assert!(d.events.iter().all(|e| !e.is_bot));
        let automated = decode(br#"{"wd":true,"ev":[{"t":"pageView"},{"t":"click"}]}"#, &Limits::default()).unwrap();
        assert!(automated.events.iter().all(|e| e.is_bot), "navigator.webdriver marks every event of the batch");
    }

    #[test]
    fn refuses_bad_batches_with_a_reason() {
        let limits = Limits { max_events: 2, ..Limits::default() };
        let cases: &[(&str, &str)] = &[
            ("", "invalid batch"),
            ("[]", "invalid batch"),
            (r#"{"ev":[]}"#, "no events"),
            (r#"{"ev":[{"t":"a"},{"t":"b"},{"t":"c"}]}"#, "more than the limit of 2"),
            (r#"{"ev":[{"t":""}]}"#, "ev[0].t must not be empty"),
            (r#"{"ev":[{"t":"a","p":[1]}]}"#, "ev[0].p: props must be a JSON object"),
            (r#"{"ev":[{"t":"a","sd":101}]}"#, "ev[0].sd must be a number between 0 and 100"),
            (r#"{"ev":[{"t":"a","ts":-5}]}"#, "ev[0].ts must be a number"),
            (r#"{"sw":-1,"ev":[{"t":"a"}]}"#, "sw must be a number"),
            (r#"{"dpr":0,"ev":[{"t":"a"}]}"#, "dpr must be a number"),
            (r#"{"ev":[{"t":5}]}"#, "invalid batch"),
        ];
        for (body, reason) in cases {
            let err = decode(body.as_bytes(), &limits).unwrap_err();
            assert!(err.contains(reason), "{body}: {err}");
        }
        let long = format!(r#"{{"ev":[{{"t":"a","url":"{}"}}]}}"#, "x".repeat(5000));
        assert!(decode(long.as_bytes(), &Limits::default()).unwrap_err().contains("ev[0].url is 5000 bytes"));
        let long_id = format!(r#"{{"vid":"{}","ev":[{{"t":"a"}}]}}"#, "v".repeat(300));
        assert!(
            decode(long_id.as_bytes(), &Limits::default()).unwrap_err().contains("vid is 300 bytes, more than the limit of 256")
        );
    }

    #[test]
    fn the_wire_types_write_what_the_decoder_reads() {
        let batch = TagBatch {
            site: Some("s".into()),
            vid: Some("v".into()),
            ev: vec![TagEvent {
                t: "pageView".into(),
                referrer: Some("https://r/".into()),
                sd: Some(50.0),
                ..TagEvent::default()
            }],
            ..TagBatch::default()
        };
        let body = serde_json::to_vec(&batch).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"site":"s","vid":"v","ev":[{"t":"pageView","ref":"https://r/","sd":50.0}]}"#
        );
        let d = decode(&body, &Limits::default()).unwrap();
        assert_eq!(d.events[0].referrer.as_deref(), Some("https://r/"));
        assert_eq!(d.events[0].scroll_depth, Some(50));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&body, &Limits::default());
        }

        #[test]
        fn arbitrary_json_values_never_panic(t in ".{0,20}", ts in any::<f64>(), sd in any::<f64>(), p in "[\\[\\]{}:,\"a-z0-9 ]{0,60}") {
            let body = format!(r#"{{"ev":[{{"t":{},"ts":{},"sd":{},"p":{}}}]}}"#,
                serde_json::to_string(&t).unwrap(), ts, sd, if p.is_empty() { "null".into() } else { p });
            let _ = decode(body.as_bytes(), &Limits::default());
        }
    }
}
