//! Mincode: Divolte's URL-friendly encoding of JSON, used for custom event parameters (`u`).
//!
//! A value is one record: a type character, then (inside an object only) the escaped member
//! name and `!`, then a payload. `s` string + `!`; `t`/`f`/`n` true, false, null; `d` base-36
//! integer + `!`; `j` JSON number text + `!`; `(` … `)` object; `a` … `.` array; `o` empty
//! object. In names and strings `~~` means `~` and `~!` means `!`.

use serde_json::{Map, Number, Value};

use crate::divolte::base36;

/// Limits applied while decoding, so hostile input cannot make deep or huge values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Most object members and array elements, counted at every level.
    pub max_entries: usize,
}

/// Why a Mincode text does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MincodeError {
    /// The text ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A character that cannot start a record.
    #[error("unknown record type {0:?}")]
    UnknownType(char),
    /// A number payload that does not parse.
    #[error("invalid number {0:?}")]
    BadNumber(String),
    /// `~` followed by something other than `~` or `!`.
    #[error("invalid escape")]
    BadEscape,
    /// Text after the value.
    #[error("trailing characters after the value")]
    Trailing,
    /// Nesting deeper than allowed.
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    /// More entries than allowed.
    #[error("more than {0} entries")]
    TooMany(usize),
}

/// Decodes one Mincode value.
pub(crate) fn decode(text: &str, limits: Limits) -> Result<Value, MincodeError> {
    let mut parser = Parser { chars: text.chars().collect(), pos: 0, limits, entries: 0 };
    let value = parser.value(0)?;
    if parser.pos != parser.chars.len() {
        return Err(MincodeError::Trailing);
    }
    Ok(value)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    limits: Limits,
    entries: usize,
}

impl Parser {
    fn next(&mut self) -> Result<char, MincodeError> {
        let c = *self.chars.get(self.pos).ok_or(MincodeError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(c)
    }

    /// Reads an escaped text up to its terminating `!`.
    fn text(&mut self) -> Result<String, MincodeError> {
        let mut out = String::new();
        loop {
            match self.next()? {
                '!' => return Ok(out),
                '~' => match self.next()? {
                    '~' => out.push('~'),
                    '!' => out.push('!'),
                    _ => return Err(MincodeError::BadEscape),
                },
                c => out.push(c),
            }
        }
    }

    fn count(&mut self) -> Result<(), MincodeError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(MincodeError::TooMany(self.limits.max_entries));
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, MincodeError> {
        let kind = self.next()?;
        self.payload(kind, depth)
    }

    fn payload(&mut self, kind: char, depth: usize) -> Result<Value, MincodeError> {
        Ok(match kind {
            's' => Value::String(self.text()?),
            't' => Value::Bool(true),
            'f' => Value::Bool(false),
            'n' => Value::Null,
            'o' => Value::Object(Map::new()),
            'd' => {
                let digits = self.text()?;
                let n = base36::parse_i64(&digits).ok_or(MincodeError::BadNumber(digits))?;
                Value::Number(n.into())
            }
            'j' => {
                let text = self.text()?;
                let n = text
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)))
                    .and_then(Number::from_f64)
                    .ok_or(MincodeError::BadNumber(text))?;
                Value::Number(n)
            }
            '(' => {
                self.enter(depth)?;
                let mut map = Map::new();
                loop {
                    let kind = self.next()?;
                    if kind == ')' {
                        break;
                    }
                    self.count()?;
                    let name = self.text()?;
                    let value = self.payload(kind, depth + 1)?;
                    map.insert(name, value);
                }
                Value::Object(map)
            }
            'a' => {
                self.enter(depth)?;
                let mut items = Vec::new();
                loop {
                    let kind = self.next()?;
                    if kind == '.' {
                        break;
                    }
                    self.count()?;
                    items.push(self.payload(kind, depth + 1)?);
                }
                Value::Array(items)
            }
            other => return Err(MincodeError::UnknownType(other)),
        })
    }

    fn enter(&self, depth: usize) -> Result<(), MincodeError> {
        if depth >= self.limits.max_depth {
            return Err(MincodeError::TooDeep(self.limits.max_depth));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const LIMITS: Limits = Limits { max_depth: 8, max_entries: 1000 };

    fn d(text: &str) -> Value {
        decode(text, LIMITS).unwrap()
    }

    /// Examples from the protocol reference (§1.8).
    #[test]
    fn reference_examples() {
        assert_eq!(d("(sfoo!bar!sbaz!daz!)"), json!({"foo": "bar", "baz": "daz"}));
        assert_eq!(d("a."), json!([]));
        assert_eq!(d("()"), json!({}));
        assert_eq!(d("o"), json!({}));
        assert_eq!(d("d16!"), json!(42));
        assert_eq!(
            d("(sname!John Doe!dage!16!achildren!sMary!sBill!.)"),
            json!({"name": "John Doe", "age": 42, "children": ["Mary", "Bill"]})
        );
        assert_eq!(d("sHello~~World~!!"), json!("Hello~World!"));
        assert_eq!(
            d("((a!)sb!c!sc!esc ~~~! ünï!ae!s1!s2!.df!16!jg!53.2!dh!-11!ji!-7.83e-9!tj!fk!nl!sm!2015-06-13T15:49:33.002Z!)"),
            json!({"a": {}, "b": "c", "c": "esc ~! ünï", "e": ["1", "2"], "f": 42, "g": 53.2, "h": -37,
                   "i": -7.83e-9, "j": true, "k": false, "l": null, "m": "2015-06-13T15:49:33.002Z"})
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in ["", "(", "(sfoo!bar", "x", "d!", "dzzzzzzzzzzzzzzzzz!", "jnope!", "jInfinity!", "s~x!", "a", "sa!b", "tt"] {
            assert!(decode(bad, LIMITS).is_err(), "{bad:?} should not decode");
        }
    }

    #[test]
    fn limits_hold() {
        let deep = "a".repeat(20) + &".".repeat(20);
        assert_eq!(decode(&deep, LIMITS), Err(MincodeError::TooDeep(8)));
        let wide = format!("a{}.", "t".repeat(2000));
        assert_eq!(decode(&wide, LIMITS), Err(MincodeError::TooMany(1000)));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = decode(&text, LIMITS);
        }

        #[test]
        fn arbitrary_mincode_alphabet_never_panics(text in "[()a.sdjtfno!~0-9xyz-]{0,200}") {
            let _ = decode(&text, LIMITS);
        }
    }
}
