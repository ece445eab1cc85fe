//! Caps on every piece of external input, from the `[collector]` configuration.

use oriel_core::config::CollectorConfig;
use serde_json::Value;

use crate::divolte::mincode;

/// The limits one request is checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most events per batch.
    pub max_events: usize,
    /// Longest text field.
    pub max_field_bytes: usize,
    /// Longest identifier (site, visitor, session, user, event and page view ids, event type,
    /// language).
    pub max_id_bytes: usize,
    /// Longest `User-Agent` kept; longer ones are cut before parsing.
    pub max_user_agent_bytes: usize,
    /// Largest custom properties, as JSON text.
    pub max_props_bytes: usize,
    /// Deepest nesting of custom properties.
    pub max_props_depth: usize,
    /// Most keys and elements in custom properties, at all levels.
    pub max_props_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&CollectorConfig::default())
    }
}

impl Limits {
    /// Limits from the `[collector]` section.
    pub fn from_config(c: &CollectorConfig) -> Self {
        Self {
            max_body_bytes: c.max_body_bytes as usize,
            max_events: c.max_events_per_batch as usize,
            max_field_bytes: c.max_field_bytes as usize,
            max_id_bytes: c.max_id_bytes as usize,
            max_user_agent_bytes: c.max_user_agent_bytes as usize,
            max_props_bytes: c.max_props_bytes as usize,
            max_props_depth: c.max_props_depth as usize,
            max_props_entries: c.max_props_entries as usize,
        }
    }

    /// The same limits for the Mincode decoder.
    pub(crate) fn mincode(&self) -> mincode::Limits {
        mincode::Limits { max_depth: self.max_props_depth, max_entries: self.max_props_entries }
    }

    /// Checks custom properties and returns them as JSON text. They must be an object within the
    /// depth, entry and size limits.
    pub fn props(&self, value: &Value) -> Result<String, String> {
        if !value.is_object() {
            return Err("props must be a JSON object".into());
        }
        let mut entries = 0usize;
        self.walk(value, 0, &mut entries)?;
        let text = value.to_string();
        if text.len() > self.max_props_bytes {
            return Err(format!("props are {} bytes, more than the limit of {}", text.len(), self.max_props_bytes));
        }
        Ok(text)
    }

    fn walk(&self, value: &Value, depth: usize, entries: &mut usize) -> Result<(), String> {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => {
                if let Some(key) = map.keys().find(|k| k.len() > self.max_field_bytes) {
                    return Err(format!("a props key of {} bytes is longer than the limit", key.len()));
                }
                Box::new(map.values())
            }
            Value::Array(items) => Box::new(items.iter()),
            _ => return Ok(()),
        };
        if depth >= self.max_props_depth {
            return Err(format!("props are nested deeper than {}", self.max_props_depth));
        }
        for child in children {
            *entries += 1;
            if *entries > self.max_props_entries {
                return Err(format!("props have more than {} entries", self.max_props_entries));
            }
            self.walk(child, depth + 1, entries)?;
        }
        Ok(())
    }

    /// Checks a text field's length; the error names the field.
    pub fn field(&self, name: &str, value: &str) -> Result<(), String> {
        check_len(name, value, self.max_field_bytes)
    }

    /// Checks an identifier's length; the error names the field.
    pub fn id(&self, name: &str, value: &str) -> Result<(), String> {
        check_len(name, value, self.max_id_bytes)
    }

    /// The `User-Agent` as stored and parsed: cut to the limit at a character boundary.
    pub fn user_agent<'a>(&self, header: &'a str) -> &'a str {
        truncate(header, self.max_user_agent_bytes)
    }
}

fn check_len(name: &str, value: &str, limit: usize) -> Result<(), String> {
    if value.len() > limit { Err(format!("{name} is {} bytes, more than the limit of {limit}", value.len())) } else { Ok(()) }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn props_limits() {
        let limits = Limits { max_props_depth: 2, max_props_entries: 3, max_props_bytes: 40, ..Limits::default() };
        assert_eq!(limits.props(&json!({"a": 1, "b": [1]})).unwrap(), r#"{"a":1,"b":[1]}"#);
        assert!(limits.props(&json!([1])).unwrap_err().contains("object"));
        assert!(limits.props(&json!({"a": {"b": {"c": 1}}})).unwrap_err().contains("deeper"));
        assert!(limits.props(&json!({"a": 1, "b": 2, "c": 3, "d": 4})).unwrap_err().contains("entries"));
        assert!(limits.props(&json!({"a": "x".repeat(50)})).unwrap_err().contains("bytes"));
    }

    #[test]
    fn user_agents_are_cut_at_a_character_boundary() {
        let limits = Limits { max_user_agent_bytes: 5, ..Limits::default() };
        assert_eq!(limits.user_agent("abc"), "abc");
        assert_eq!(limits.user_agent("abcdefgh"), "abcde");
        assert_eq!(limits.user_agent("abcd€"), "abcd", "a cut inside a character drops the whole character");
    }
}
