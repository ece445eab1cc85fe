//! `POST /api/v1/events`: events from servers and mobile apps, authorised by a write key.

use std::net::IpAddr;

use oriel_core::{Event, EventSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{id, text};
use crate::limits::Limits;

/// The body of `POST /api/v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiBatch {
    /// The events.
    pub events: Vec<ApiEvent>,
}

/// One event, with the column names of the `events` datasource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiEvent {
    /// Event type.
    pub event_type: String,
    /// Event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Visitor id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_id: Option<String>,
    /// Session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Page view id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_view_id: Option<String>,
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Client time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<i64>,
    /// Page or screen URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Custom properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Value>,
    /// The end user's IP address (the caller's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The end user's user agent (the caller's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// An event with the end user's address and user agent, when the caller gave them.
#[derive(Debug)]
pub(crate) struct ApiItem {
    /// The event, not yet enriched.
    pub event: Event,
    /// The end user's IP address.
    pub ip: Option<IpAddr>,
    /// The end user's user agent.
    pub user_agent: Option<String>,
}

/// Decodes a request body.
pub(crate) fn decode(body: &[u8], limits: &Limits) -> Result<Vec<ApiItem>, String> {
    let body: ApiBatch = serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))?;
    if body.events.is_empty() {
        return Err("events must hold at least one event".into());
    }
    if body.events.len() > limits.max_events {
        return Err(format!("{} events, more than the limit of {}", body.events.len(), limits.max_events));
    }
    body.events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at = |field: &str| format!("events[{i}].{field}");
            if e.event_type.is_empty() {
                return Err(format!("{} must not be empty", at("event_type")));
            }
            limits.id(&at("event_type"), &e.event_type)?;
            let ip = match e.ip {
                Some(raw) => Some(raw.parse::<IpAddr>().map_err(|_| format!("{} is not an IP address: {raw:?}", at("ip")))?),
                None => None,
            };
            let props = match e.props {
                None | Some(Value::Null) => None,
                Some(p) => Some(limits.props(&p).map_err(|m| format!("{}: {m}", at("props")))?),
            };
            Ok(ApiItem {
                event: Event {
                    client_time: e.client_time,
                    event_id: id(limits, &at("event_id"), e.event_id)?,
                    event_type: e.event_type,
                    party_id: id(limits, &at("party_id"), e.party_id)?,
                    session_id: id(limits, &at("session_id"), e.session_id)?,
                    page_view_id: id(limits, &at("page_view_id"), e.page_view_id)?,
                    user_id: id(limits, &at("user_id"), e.user_id)?,
                    url: text(limits, &at("url"), e.url)?,
                    referrer: text(limits, &at("referrer"), e.referrer)?,
                    title: text(limits, &at("title"), e.title)?,
                    language: id(limits, &at("language"), e.language)?,
                    props,
                    source: EventSource::Api,
                    ..Event::default()
                },
                ip,
                user_agent: e.user_agent.map(|ua| limits.user_agent(&ua).to_string()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_and_refuses() {
        let ok = br#"{"events":[{"event_type":"purchase","party_id":"p1","client_time":1700000000000,"props":{"amount":42.5},"ip":"203.0.113.7","user_agent":"App/1.0"}]}"#;
        let items = decode(ok, &Limits::default()).unwrap();
        assert_eq!(items[0].event.event_type, "purchase");
        assert_eq!(items[0].ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(items[0].event.props.as_deref(), Some(r#"{"amount":42.5}"#));
        assert_eq!(items[0].event.source, EventSource::Api);
        assert!(
            decode(br#"{"events":[{"event_type":"x","colour":"red"}]}"#, &Limits::default())
                .unwrap_err()
                .contains("unknown field `colour`")
        );
        assert!(
            decode(br#"{"events":[{"event_type":"x","ip":"nope"}]}"#, &Limits::default())
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(decode(br#"{"events":[]}"#, &Limits::default()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&body, &Limits::default());
        }
    }
}
