//! Divolte's party and session identifiers: `0:<base-36 timestamp>:<unique part>`.

use crate::divolte::base36;

/// Parses an identifier as Divolte's server does and returns its normal form: version `0`,
/// the timestamp re-rendered in lowercase base 36 (no sign, no leading zeros), the unique part
/// unchanged. `None` when it is not an identifier.
pub(crate) fn normalize(text: &str) -> Option<String> {
    let mut parts = text.splitn(4, ':');
    let (version, timestamp, unique) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "0" {
        return None;
    }
    let ts = base36::parse_i64(timestamp)?;
    Some(format!("0:{}:{unique}", base36::encode_i64(ts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(
            normalize("0:mwz7zu1h:l2OxiladWq1SR_HsBrN5jMbCaPNbC7IG").as_deref(),
            Some("0:mwz7zu1h:l2OxiladWq1SR_HsBrN5jMbCaPNbC7IG")
        );
        assert_eq!(normalize("0:+00MWZ7ZU1H:x").as_deref(), Some("0:mwz7zu1h:x"));
        assert_eq!(normalize("0:k:").as_deref(), Some("0:k:"));
        assert_eq!(normalize("1:k:x"), None);
        assert_eq!(normalize("0:k"), None);
        assert_eq!(normalize("0:k:x:y"), None);
        assert_eq!(normalize("0:?:x"), None);
    }
}
