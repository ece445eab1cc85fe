//! The browser event request, `GET /csc-event?p=…&x=…`, decoded into an event.

use oriel_core::{Event, EventSource};

use crate::divolte::{base36, checksum, ids, mincode};
use crate::limits::Limits;

/// Why a Divolte browser request carries no usable event. Divolte answers these with the pixel
/// anyway; Oriel counts them by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// A required parameter is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// The party or session id is not a Divolte identifier.
    #[error("invalid identifier in parameter {0}")]
    BadIdentifier(&'static str),
    /// The client timestamp is not a base-36 integer.
    #[error("invalid client timestamp")]
    BadTimestamp,
    /// A value exceeds the field length limit.
    #[error("parameter {0} is too long")]
    TooLong(&'static str),
    /// More parameters than any tag sends.
    #[error("too many parameters")]
    TooManyParameters,
}

impl Rejected {
    /// Short label for the rejection metric.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Missing(_) => "missing_parameter",
            Self::BadIdentifier(_) => "bad_identifier",
            Self::BadTimestamp => "bad_timestamp",
            Self::TooLong(_) => "too_long",
            Self::TooManyParameters => "too_many_parameters",
        }
    }
}

/// Parameters that hold identifiers or the event type, checked against the identifier limit.
const ID_PARAMETERS: &[&str] = &["p", "s", "v", "e", "t"];

/// Most parameters accepted in one request; the tag sends at most 17.
const MAX_PARAMETERS: usize = 64;

/// Splits a query string into decoded pairs as Undertow does: `%xx` as UTF-8 (invalid sequences
/// replaced), `+` as space, a key without `=` gets the value `""`.
pub(crate) fn decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes the query of a `/csc-event` request into an event with `source = divolte`. The
/// checksum decides `is_corrupt`; bad custom parameters leave `props` empty, as in Divolte.
pub(crate) fn parse_event(query: &str, limits: &Limits) -> Result<Event, Rejected> {
    let pairs = decode_pairs(query);
    if pairs.len() > MAX_PARAMETERS {
        return Err(Rejected::TooManyParameters);
    }
    let get = |name: &'static str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for (key, value) in &pairs {
        let limit = if ID_PARAMETERS.contains(&key.as_str()) { limits.max_id_bytes } else { limits.max_field_bytes };
        if value.len() > limit && key != "u" {
            return Err(Rejected::TooLong(static_name(key)));
        }
    }
    let required = |name: &'static str| get(name).ok_or(Rejected::Missing(name));
    let party_id = ids::normalize(required("p")?).ok_or(Rejected::BadIdentifier("p"))?;
    let session_id = ids::normalize(required("s")?).ok_or(Rejected::BadIdentifier("s"))?;
    let page_view_id = required("v")?.to_string();
    let event_id = required("e")?.to_string();
    let client_time = base36::parse_i64(required("c")?).ok_or(Rejected::BadTimestamp)?;
    let is_new_party = required("n")? == "t";
    let is_first_in_session = required("f")? == "t";

    let expected = checksum::checksum(pairs.iter().filter(|(k, _)| k != "x").map(|(k, v)| (k.as_str(), v.as_str())));
    let is_corrupt = get("x").and_then(base36::parse_i32) != Some(expected);

    let int = |name| get(name).and_then(base36::parse_i32);
    let props = get("u")
        .filter(|u| u.len() <= limits.max_props_bytes * 4)
        .and_then(|u| mincode::decode(u, limits.mincode()).ok())
        .map(|value| value.to_string())
        .filter(|json| json.len() <= limits.max_props_bytes);
    Ok(Event {
        client_time: Some(client_time),
        event_id: Some(event_id),
        event_type: get("t").filter(|t| !t.is_empty()).unwrap_or("unknown").to_string(),
        party_id: Some(party_id),
        session_id: Some(session_id),
        page_view_id: Some(page_view_id),
        is_new_party: Some(is_new_party),
        is_first_in_session: Some(is_first_in_session),
        url: get("l").map(str::to_string),
        referrer: get("r").filter(|r| !r.is_empty()).map(str::to_string),
        screen_width: int("i"),
        screen_height: int("j"),
        // Divolte reads the pixel ratio as an integer, so a fractional ratio becomes absent.
        pixel_ratio: int("k").map(f64::from),
        viewport_width: int("w"),
        viewport_height: int("h"),
        props,
        is_corrupt,
        source: EventSource::Divolte,
        ..Event::default()
    })
}

fn static_name(key: &str) -> &'static str {
    const KNOWN: &[&str] = &["p", "s", "v", "e", "c", "n", "f", "l", "r", "i", "j", "k", "w", "h", "t", "u", "x"];
    KNOWN.iter().find(|k| **k == key).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = "p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8\
                        &v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f\
                        &l=http%3A%2F%2Flocalhost%3A8290%2F&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView&x=si9804";

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn decodes_a_real_request() {
        let e = parse_event(REAL, &limits()).unwrap();
        assert_eq!(e.party_id.as_deref(), Some("0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG"));
        assert_eq!(e.page_view_id.as_deref(), Some("0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF"));
        assert_eq!(e.event_id.as_deref(), Some("0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0"));
        assert_eq!(e.client_time, Some(1_414_499_908_146));
        assert_eq!(e.url.as_deref(), Some("http://localhost:8290/"));
        assert_eq!((e.screen_width, e.screen_height), (Some(1676), Some(1027)));
        assert_eq!((e.viewport_width, e.viewport_height), (Some(1106), Some(949)));
        assert_eq!(e.pixel_ratio, Some(2.0));
        assert_eq!(e.event_type, "pageView");
        assert_eq!((e.is_new_party, e.is_first_in_session), (Some(false), Some(false)));
        assert!(!e.is_corrupt);
        assert_eq!(e.source, EventSource::Divolte);
    }

    #[test]
    fn wrong_or_missing_checksum_marks_corrupt() {
        let wrong = REAL.replace("x=si9804", "x=si9805");
        assert!(parse_event(&wrong, &limits()).unwrap().is_corrupt);
        let missing = REAL.replace("&x=si9804", "");
        assert!(parse_event(&missing, &limits()).unwrap().is_corrupt);
        let changed = REAL.replace("t=pageView", "t=pageVieW");
        assert!(parse_event(&changed, &limits()).unwrap().is_corrupt, "a rewritten URL must fail the checksum");
    }

    #[test]
    fn decodes_mincode_props_and_keeps_fractional_ratio_absent() {
        let q = "p=0:k:a&s=0:k:b&v=v&e=e&c=k&n=t&f=t&k=1.i&u=(sfoo!bar!dn!16!)";
        let e = parse_event(q, &limits()).unwrap();
        assert_eq!(e.props.as_deref(), Some(r#"{"foo":"bar","n":42}"#));
        assert_eq!(e.pixel_ratio, None);
        assert_eq!(e.event_type, "unknown");
        assert_eq!((e.is_new_party, e.is_first_in_session), (Some(true), Some(true)));
        let bad_props = parse_event("p=0:k:a&s=0:k:b&v=v&e=e&c=k&n=t&f=t&u=(broken", &limits()).unwrap();
        assert_eq!(bad_props.props, None);
    }

    #[test]
    fn required_parameters() {
        let full = "p=0:k:a&s=0:k:b&v=v&e=e&c=k&n=f&f=f";
        assert!(parse_event(full, &limits()).is_ok());
        for (name, reason) in [("p", "p"), ("s", "s"), ("v", "v"), ("e", "e"), ("c", "c"), ("n", "n"), ("f", "f")] {
            let without: Vec<&str> = full.split('&').filter(|p| !p.starts_with(&format!("{name}="))).collect();
            assert_eq!(parse_event(&without.join("&"), &limits()), Err(Rejected::Missing(reason)));
        }
        assert_eq!(parse_event("p=bad&s=0:k:b&v=v&e=e&c=k&n=f&f=f", &limits()), Err(Rejected::BadIdentifier("p")));
        assert_eq!(parse_event("p=0:k:a&s=1:k:b&v=v&e=e&c=k&n=f&f=f", &limits()), Err(Rejected::BadIdentifier("s")));
        assert_eq!(parse_event("p=0:k:a&s=0:k:b&v=v&e=e&c=1.5&n=f&f=f", &limits()), Err(Rejected::BadTimestamp));
    }

    #[test]
    fn pairs_decode_like_undertow() {
        assert_eq!(
            decode_pairs("a=1+2&b&c=%E2%82%AC&d=%zz&e=%4"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), String::new()),
                ("c".into(), "€".into()),
                ("d".into(), "%zz".into()),
                ("e".into(), "%4".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(query in ".{0,400}") {
            let _ = parse_event(&query, &limits());
        }

        #[test]
        fn arbitrary_values_in_a_valid_shape_never_panic(values in prop::collection::vec("[%+~!().a-z0-9:-]{0,30}", 17)) {
            let names = ["p", "s", "v", "e", "c", "n", "f", "l", "r", "i", "j", "k", "w", "h", "t", "u", "x"];
            let query: Vec<String> = names.iter().zip(&values).map(|(n, v)| format!("{n}={v}")).collect();
            let _ = parse_event(&query.join("&"), &limits());
        }
    }
}
