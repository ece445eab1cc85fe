//! Base-36 numbers as Java's `Long.parseLong(s, 36)` reads and JavaScript's `toString(36)` writes.

/// Parses a signed base-36 integer like Java's `Long.parseLong(text, 36)`: optional `+` or `-`,
/// digits and letters of either case, no overflow.
pub(crate) fn parse_i64(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses, as Java does.
    let mut value: i64 = 0;
    for c in digits.chars() {
        let d = i64::from(c.to_digit(36)?);
        value = value.checked_mul(36)?.checked_sub(d)?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// Parses a base-36 `int` (Java `Integer.parseInt(text, 36)`).
pub(crate) fn parse_i32(text: &str) -> Option<i32> {
    parse_i64(text).and_then(|v| i32::try_from(v).ok())
}

/// Writes `value` in lowercase base 36 with a leading `-` when negative.
pub(crate) fn encode_i64(value: i64) -> String {
    if value == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    let mut v = value.unsigned_abs();
    while v > 0 {
        let d = (v % 36) as u32;
        digits.push(char::from_digit(d, 36).unwrap_or('0'));
        v /= 36;
    }
    if value < 0 {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_java() {
        assert_eq!(parse_i64("i1t8q2b6"), Some(1_414_499_908_146));
        assert_eq!(parse_i64("I1T8Q2B6"), Some(1_414_499_908_146));
        assert_eq!(parse_i64("+z"), Some(35));
        assert_eq!(parse_i64("-z"), Some(-35));
        assert_eq!(parse_i64("-1y2p0ij32e8e8"), Some(i64::MIN));
        assert_eq!(parse_i64("1y2p0ij32e8e8"), None, "overflow");
        assert_eq!(parse_i64(""), None);
        assert_eq!(parse_i64("-"), None);
        assert_eq!(parse_i64("1.i"), None, "fractional numbers are not integers");
        assert_eq!(parse_i32("zik0zj"), Some(i32::MAX));
        assert_eq!(parse_i32("zik0zk"), None);
    }

    #[test]
    fn encodes_like_javascript() {
        assert_eq!(encode_i64(0), "0");
        assert_eq!(encode_i64(1_414_499_908_146), "i1t8q2b6");
        assert_eq!(encode_i64(-37), "-11");
        assert_eq!(encode_i64(i64::MIN), "-1y2p0ij32e8e8");
        for v in [1i64, 35, 36, -1, 123_456_789_012] {
            assert_eq!(parse_i64(&encode_i64(v)), Some(v));
        }
    }
}
