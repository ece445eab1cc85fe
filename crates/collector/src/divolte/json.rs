//! The mobile and server endpoint, `POST /json?p=<party id>` with a JSON body.

use oriel_core::{Event, EventSource};
use serde::Deserialize;
use serde_json::Value;

use crate::divolte::ids;
use crate::limits::Limits;
use crate::timestamp;

/// The body, with Divolte's field names; unknown fields are refused as Divolte's Jackson does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    session_id: String,
    event_id: String,
    is_new_party: bool,
    is_new_session: bool,
    client_timestamp_iso: String,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// Checks and normalises the party id of `POST /json?p=`: a Divolte identifier within the
/// identifier length limit.
pub(crate) fn party(p: Option<&str>, limits: &Limits) -> Option<String> {
    p.filter(|p| p.len() <= limits.max_id_bytes).and_then(ids::normalize)
}

/// Decodes a JSON-source body for `party` (already normalised). Divolte drops such events after
/// answering 204; the error says why, for the metric and the debug log.
pub(crate) fn parse_event(party: String, body: &[u8], limits: &Limits) -> Result<Event, String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))?;
    let session_id = ids::normalize(&body.session_id).ok_or("invalid session_id")?;
    let client_time = timestamp::parse_rfc3339_ms(&body.client_timestamp_iso)
        .ok_or("client_timestamp_iso is not an ISO-8601 timestamp with an offset")?;
    for (name, value) in [("event_id", &body.event_id), ("session_id", &body.session_id)] {
        limits.id(name, value)?;
    }
    if let Some(t) = &body.event_type {
        limits.id("event_type", t)?;
    }
    let props = match &body.parameters {
        Some(Value::Null) | None => None,
        Some(value) => {
            let text = value.to_string();
            if text.len() > limits.max_props_bytes {
                return Err(format!("parameters are {} bytes, more than the limit", text.len()));
            }
            Some(text)
        }
    };
    Ok(Event {
        client_time: Some(client_time),
        event_id: Some(body.event_id),
        event_type: body.event_type.unwrap_or_else(|| "unknown".into()),
        party_id: Some(party),
        session_id: Some(session_id),
        is_new_party: Some(body.is_new_party),
        is_first_in_session: Some(body.is_new_session),
        props,
        source: EventSource::Divolte,
        ..Event::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_event("0:k:p".into(), &body, &Limits::default());
        }

        #[test]
        fn arbitrary_fields_never_panic(session in ".{0,40}", event in ".{0,40}", ts in ".{0,40}", p in "[\\[\\]{}:,\"a-z0-9 ]{0,60}") {
            let body = format!(
                r#"{{"session_id":{},"event_id":{},"is_new_party":true,"is_new_session":false,"client_timestamp_iso":{},"parameters":{}}}"#,
                serde_json::to_string(&session).unwrap(), serde_json::to_string(&event).unwrap(),
                serde_json::to_string(&ts).unwrap(), if p.is_empty() { "null".into() } else { p });
            let _ = parse_event("0:k:p".into(), body.as_bytes(), &Limits::default());
        }
    }

    #[test]
    fn decodes_and_refuses() {
        let limits = Limits::default();
        let ok = br#"{"session_id":"0:k:s","event_id":"e1","is_new_party":true,"is_new_session":false,
                      "client_timestamp_iso":"2026-11-27T10:00:00.250+01:00","event_type":"buy","parameters":{"a":[1]}}"#;
        let e = parse_event("0:k:p".into(), ok, &limits).unwrap();
        assert_eq!(e.client_time, Some(1_795_770_000_250));
        assert_eq!(e.event_type, "buy");
        assert_eq!(e.props.as_deref(), Some(r#"{"a":[1]}"#));
        assert_eq!(e.is_first_in_session, Some(false));
        let unknown = br#"{"session_id":"0:k:s","event_id":"e1","is_new_party":true,"is_new_session":false,"client_timestamp_iso":"2026-11-27T10:00:00Z","extra":1}"#;
        assert!(parse_event("0:k:p".into(), unknown, &limits).unwrap_err().contains("unknown field"));
        let no_offset = br#"{"session_id":"0:k:s","event_id":"e1","is_new_party":true,"is_new_session":false,"client_timestamp_iso":"2026-11-27T10:00:00"}"#;
        assert!(parse_event("0:k:p".into(), no_offset, &limits).is_err());
        assert!(parse_event("0:k:p".into(), b"not json", &limits).is_err());
    }
}
