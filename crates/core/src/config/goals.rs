//! The `[[goals]]` list: named conversions the analytics count. The types are shared with the
//! query API, which takes the same filters and goals as JSON.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A condition on a dimension or a custom property.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterSpec {
    /// A column, or `prop:<key>` for a custom property.
    pub dimension: String,
    /// `is`, `isNot`, `contains`, `notContains`, `matches` (a regular expression), `set`,
    /// `notSet`, `between` (numbers: two values, the upper one excluded).
    pub op: String,
    /// The values (any of them matches).
    #[serde(default)]
    pub values: Vec<String>,
}

/// A named conversion: a page view whose path matches a pattern, or an event of a type,
/// optionally with conditions on its dimensions or properties.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Goal {
    /// Its name, as measures (`goal:<name>`) and funnel steps name it.
    pub name: String,
    /// Only this site's events (all sites when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The event type that converts (`pageView`, or a custom event's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// A page path that converts, `*` matching any characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Conditions on any dimension or property, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterSpec>,
}

impl Goal {
    /// What is wrong with the goal's shape (the store checks its conditions further).
    pub fn problem(&self) -> Option<&'static str> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.chars().any(char::is_control) {
            return Some("a name of 1 to 64 printable characters");
        }
        if self.event_type.is_none() && self.path.is_none() && self.filters.is_empty() {
            return Some("an eventType, a path or filters");
        }
        None
    }
}

pub(super) fn validate(goals: &[Goal], invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, goal) in goals.iter().enumerate() {
        if let Some(problem) = goal.problem() {
            return Err(invalid(&format!("goals[{i}]"), format!("{:?}", goal.name), problem));
        }
        if !seen.insert(goal.name.as_str()) {
            return Err(invalid(&format!("goals[{i}].name"), format!("{:?}", goal.name), "a goal name used only once"));
        }
    }
    Ok(())
}
