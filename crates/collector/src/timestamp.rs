//! RFC 3339 timestamps (`2026-11-27T10:00:00.250+01:00`) to milliseconds since the epoch.

/// Parses a date-time with a mandatory offset (`Z` or `±HH:MM`) and optional fraction; digits
/// past milliseconds are cut, not rounded.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2015-06-13T15:49:33.002Z"), Some(1_434_210_573_002));
        assert_eq!(parse_rfc3339_ms("2015-06-13T17:49:33.002+02:00"), Some(1_434_210_573_002));
        assert_eq!(parse_rfc3339_ms("2015-06-13T15:49:33.0029999Z"), Some(1_434_210_573_002));
        assert_eq!(parse_rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.5Z"), Some(-500));
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2015-06-13T15:49:33",
            "2015-06-13T15:49:33.Z",
            "2015-02-30T00:00:00Z",
            "2015-06-13T15:49:33+2:00",
            "2015-13-01T00:00:00Z",
            "x015-06-13T15:49:33Z",
            "2015-06-13T15:49:33Zjunk",
            "２０15-06-13T15:49:33Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
        }
    }
}
