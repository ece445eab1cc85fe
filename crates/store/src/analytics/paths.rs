//! Paths: what visitors did next (or before) around one page — the most common sequences of
//! the following (or preceding) pages, or events, within the same session, to a chosen depth,
//! as a tree with counts.
//!
//! Every time the anchor occurs in a session counts once. A branch that ends because the
//! session ended is the child `(end)` (`(start)` looking back); children beyond the breadth
//! asked for are summed into `(other)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::scope::{Scope, refuse_unknown};
use crate::analytics::sessions::sessionized;
use crate::query::engine::QueryEngine;
use crate::query::values;
use crate::report::compile::quote;
use crate::{Error, Result};

/// Deepest tree.
pub const MAX_DEPTH: u32 = 5;
/// A paths request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathsRequest {
    /// Site, range, zone, filters.
    #[serde(flatten)]
    pub scope: Scope,
    /// The page path (or, with `by: "event"`, a page path or an event type) the paths start
    /// from.
    pub from: String,
    /// `next` (the default) or `previous`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Steps away from the anchor (3 by default).
    #[serde(default)]
    pub depth: Option<u32>,
    /// `page` (page views only, the default) or `event` (page views by path and other events
    /// by type).
    #[serde(default)]
    pub by: Option<String>,
    /// Most children per node (5 by default, at most 20).
    #[serde(default)]
    pub breadth: Option<u32>,
    /// Fields the request does not know (refused).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, Value>,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathNode {
    /// The page path or event type; `(end)`, `(start)` or `(other)`.
    pub label: String,
    /// Times this sequence occurred.
    pub count: u64,
    /// What came after (or before) it, most frequent first.
    pub children: Vec<PathNode>,
}

/// A paths answer.
#[derive(Debug, Clone, Serialize)]
pub struct PathsAnswer {
    /// `next` or `previous`.
    pub direction: String,
    /// The anchor, with every occurrence counted.
    pub root: PathNode,
}

/// The counted children of each node, top ones only: per parent prefix (the labels from the
/// anchor down, `None` for the end of a session), its children's labels and counts.
type Children = BTreeMap<Vec<Option<String>>, Vec<(Option<String>, u64)>>;

/// The node of `prefix` counted `count` times, with its children down to `depth` more levels;
/// what the kept children do not cover is `(other)`.
fn node(label: String, count: u64, prefix: &[Option<String>], children: &Children, depth: usize, ended: &str) -> PathNode {
    let mut out = PathNode { label, count, children: Vec::new() };
    if depth == 0 {
        return out;
    }
    let mut kids = children.get(prefix).cloned().unwrap_or_default();
    kids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_deref().unwrap_or(ended).cmp(b.0.as_deref().unwrap_or(ended))));
    let shown: u64 = kids.iter().map(|(_, n)| n).sum();
    for (label, n) in kids {
        let mut path = prefix.to_vec();
        path.push(label.clone());
        out.children.push(match label {
            Some(label) => node(label, n, &path, children, depth - 1, ended),
            // Nothing follows the end of a session.
            None => PathNode { label: ended.to_string(), count: n, children: Vec::new() },
        });
    }
    if shown < count {
        out.children.push(PathNode { label: "(other)".into(), count: count - shown, children: Vec::new() });
    }
    out
}

/// Answers `request` at `now`.
pub async fn paths(engine: &QueryEngine, context: &AnalyticsContext, request: &PathsRequest, now: i64) -> Result<PathsAnswer> {
    refuse_unknown(&request.unknown)?;
    let depth = request.depth.unwrap_or(3);
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(Error::InvalidQuery(format!("depth must be between 1 and {MAX_DEPTH}")));
    }
    let breadth = request.breadth.unwrap_or(5);
    if !(1..=20).contains(&breadth) {
        return Err(Error::InvalidQuery("breadth must be between 1 and 20".into()));
    }
    let (next, ended) = match request.direction.as_deref().unwrap_or("next") {
        "next" => (true, "(end)"),
        "previous" => (false, "(start)"),
        other => return Err(Error::InvalidQuery(format!("unknown direction {other:?}: use next or previous"))),
    };
    let (label, kept) = match request.by.as_deref().unwrap_or("page") {
        "page" => ("\"path\"", "\"event_type\" = 'pageView'"),
        "event" => {
            ("CASE WHEN \"event_type\" = 'pageView' THEN \"path\" ELSE \"event_type\" END", "\"event_type\" <> 'engagement'")
        }
        other => return Err(Error::InvalidQuery(format!("unknown by {other:?}: use page or event"))),
    };
    if request.from.is_empty() || request.from.len() > 4096 {
        return Err(Error::InvalidQuery("from names a page path or an event type of 1 to 4096 bytes".into()));
    }
    let scope = request.scope.resolve(now, engine.time_range().flatten().map(|(lo, _)| lo))?;
    let function = if next { "LEAD" } else { "LAG" };
    let d = depth as usize;
    let steps: Vec<String> = (1..=d).map(|i| format!("{function}(label, {i}) OVER w AS n{i}")).collect();
    let columns: Vec<String> = (1..=d).map(|i| format!("n{i}")).collect();
    // Every prefix of the sequence is a grouping set, so each node's count is exact; per parent,
    // only the `breadth` largest children come back (the rest is the parent's count minus theirs).
    let sets: Vec<String> = (0..=d).map(|l| format!("({})", columns[..l].join(", "))).collect();
    let flags: Vec<String> = (1..=d).map(|i| format!("GROUPING(n{i}) AS g{i}")).collect();
    let level_of: Vec<String> = (1..=d).map(|i| format!("g{i}")).collect();
    let parents: Vec<String> = (1..d).map(|i| format!("CASE WHEN g{} = 0 THEN n{i} END", i + 1)).collect();
    let child = format!(
        "COALESCE(CASE {} END, {})",
        (1..=d).rev().map(|i| format!("WHEN g{i} = 0 THEN n{i}")).collect::<Vec<_>>().join(" "),
        quote(ended)
    );
    let sql = format!(
        "WITH {ctes}, \
         keep AS (SELECT sid FROM sess GROUP BY sid HAVING bool_or(hit)), \
         seq AS (SELECT s.sid, s.label, s.t, s.\"event_id\" FROM sess s JOIN keep k ON s.sid = k.sid WHERE {kept}), \
         around AS (SELECT label, {steps} FROM seq WINDOW w AS (PARTITION BY sid ORDER BY t, \"event_id\")), \
         g AS (SELECT {columns}, {flags}, COUNT(*) AS n FROM around WHERE label = {from} GROUP BY GROUPING SETS ({sets})), \
         r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY n DESC, {child}) AS rn FROM g) \
         SELECT {columns}, {levels}, n FROM r WHERE rn <= {breadth}",
        ctes = sessionized(&scope, context, &format!("{label} AS label, ")),
        steps = steps.join(", "),
        columns = columns.join(", "),
        flags = flags.join(", "),
        sets = sets.join(", "),
        partition = level_of.iter().chain(&parents).cloned().collect::<Vec<_>>().join(", "),
        levels = level_of.join(", "),
        from = quote(&request.from),
    );
    let result = engine.collect(&sql).await?;
    let mut root = 0;
    let mut children = Children::new();
    for row in values::rows(&result) {
        let level = (0..d).filter(|&i| row[d + i].as_u64() == Some(0)).count();
        let count = row[2 * d].as_u64().unwrap_or(0);
        if level == 0 {
            root = count;
            continue;
        }
        let labels: Vec<Option<String>> = (0..level).map(|i| row[i].as_str().map(str::to_string)).collect();
        // Below the end of a session there is nothing to show.
        if labels[..level - 1].iter().any(Option::is_none) {
            continue;
        }
        let (child, parent) = labels.split_last().map(|(c, p)| (c.clone(), p.to_vec())).unwrap_or_default();
        children.entry(parent).or_default().push((child, count));
    }
    Ok(PathsAnswer {
        direction: if next { "next" } else { "previous" }.into(),
        root: node(request.from.clone(), root, &[], &children, d, ended),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_shows_the_kept_children_and_the_rest_as_other() {
        let some = |s: &str| Some(s.to_string());
        let mut children = Children::new();
        children.insert(vec![], vec![(some("/a"), 7), (None, 3), (some("/c"), 1)]);
        children.insert(vec![some("/a")], vec![(some("/b"), 5), (None, 2)]);
        let root = node("/x".into(), 12, &[], &children, 2, "(end)");
        let labels: Vec<(&str, u64)> = root.children.iter().map(|c| (c.label.as_str(), c.count)).collect();
        assert_eq!(labels, vec![("/a", 7), ("(end)", 3), ("/c", 1), ("(other)", 1)]);
        let a = &root.children[0];
        assert_eq!(a.children.iter().map(|c| (c.label.as_str(), c.count)).collect::<Vec<_>>(), vec![("/b", 5), ("(end)", 2)]);
        assert!(a.children[0].children.is_empty(), "the depth is reached");
    }
}
