//! Goals: named conversions — a page view whose path matches a pattern, or a custom event,
//! optionally with conditions on its properties — and the event condition funnel steps share.
//!
//! Goals come from the configuration (`[[goals]]`) and from the API; those made through the API
//! are kept in `goals.json` in the data directory. A configured goal cannot be changed through
//! the API. The goal type itself is the configuration's ([`oriel_core::config::Goal`]).

use std::path::{Path, PathBuf};

use crate::report::compile::{self, quote};
use crate::report::request::{FilterSpec, MAX_FILTERS};
use crate::{Error, Result};

/// Most goals.
pub const MAX_GOALS: usize = 200;

/// The SQL condition of an event that matches an event type, a page path pattern (which implies
/// page views) and conditions on dimensions or properties — what goals and funnel steps share.
pub fn event_condition(event_type: Option<&str>, path: Option<&str>, filters: &[FilterSpec]) -> Result<String> {
    if event_type.is_none() && path.is_none() && filters.is_empty() {
        return Err(Error::InvalidQuery("a step or goal needs an eventType, a path or filters".into()));
    }
    if filters.len() > MAX_FILTERS {
        return Err(Error::InvalidQuery(format!("at most {MAX_FILTERS} filters per step or goal")));
    }
    let mut parts = Vec::new();
    match (event_type, path) {
        (Some(kind), _) => parts.push(format!("\"event_type\" = {}", quote(kind))),
        (None, Some(_)) => parts.push("\"event_type\" = 'pageView'".into()),
        (None, None) => {}
    }
    if let Some(pattern) = path {
        parts.push(path_condition(pattern)?);
    }
    for filter in filters {
        parts.push(compile::condition(filter)?);
    }
    Ok(format!("({})", parts.join(" AND ")))
}

/// A path pattern as a condition: `*` matches any characters, everything else itself.
fn path_condition(pattern: &str) -> Result<String> {
    if pattern.is_empty() || pattern.len() > 1024 {
        return Err(Error::InvalidQuery("a path pattern has 1 to 1024 bytes".into()));
    }
    if !pattern.contains('*') {
        return Ok(format!("\"path\" = {}", quote(pattern)));
    }
    let regex: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Ok(format!("regexp_like(\"path\", {})", quote(&format!("^{}$", regex.join(".*")))))
}

/// A named conversion (the configuration's type).
pub use oriel_core::config::Goal;

/// The SQL condition of an event that converts `goal`.
pub fn condition(goal: &Goal) -> Result<String> {
    if let Some(problem) = goal.problem() {
        return Err(Error::InvalidQuery(format!("goal {:?} needs {problem}", goal.name)));
    }
    let matcher = event_condition(goal.event_type.as_deref(), goal.path.as_deref(), &goal.filters)?;
    Ok(match &goal.site {
        Some(site) => format!("({matcher} AND \"site\" = {})", quote(site)),
        None => matcher,
    })
}

/// The goals made through the API, kept in a file.
#[derive(Debug)]
pub struct GoalFile {
    path: PathBuf,
}

impl GoalFile {
    /// The goals file of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self { path: data_dir.join("goals.json") }
    }

    /// The goals in the file; none when it does not exist yet.
    pub fn load(&self) -> Result<Vec<Goal>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("{} is not a list of goals: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("failed to read", &self.path)(e)),
        }
    }

    /// Replaces the file's goals, durably.
    pub fn save(&self, goals: &[Goal]) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(goals).map_err(|e| Error::Internal(e.to_string()))?;
        oriel_core::durable::atomic_write(&self.path, &bytes, None).map_err(Error::io("failed to write", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_goals_become_conditions() {
        let page = |path: &str| event_condition(None, Some(path), &[]).unwrap();
        assert_eq!(page("/blog/*"), "(\"event_type\" = 'pageView' AND regexp_like(\"path\", '^/blog/.*$'))");
        assert!(page("/a.b").contains("\"path\" = '/a.b'"));
        assert!(page("/a.b/*").contains("'^/a\\.b/.*$'"), "{}", page("/a.b/*"));
        let bought = Goal {
            name: "pro".into(),
            site: Some("shop".into()),
            event_type: Some("purchase".into()),
            path: None,
            filters: vec![FilterSpec { dimension: "prop:plan".into(), op: "is".into(), values: vec!["pro".into()] }],
        };
        let sql = condition(&bought).unwrap();
        assert!(sql.contains("\"event_type\" = 'purchase'") && sql.contains("prop(\"props\", 'plan') IN ('pro')"), "{sql}");
        assert!(sql.ends_with("AND \"site\" = 'shop')"));
        assert!(event_condition(None, None, &[]).is_err());
        let bad = Goal { name: String::new(), site: None, event_type: None, path: Some("/x".into()), filters: Vec::new() };
        assert!(condition(&bad).unwrap_err().to_string().contains("a name of 1 to 64"));
        let json: Goal = serde_json::from_str(r#"{"name":"signup","eventType":"signup"}"#).unwrap();
        assert_eq!(json.event_type.as_deref(), Some("signup"));
        assert!(serde_json::from_str::<Goal>(r#"{"name":"x","evenType":"y"}"#).is_err(), "a misspelt key is refused");
    }
}
