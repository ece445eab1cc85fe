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
/// Most sequences a query groups; past it the answer says it is truncated.
const MAX_SEQUENCES: usize = 100_000;

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
    /// Whether more distinct sequences existed than were grouped.
    pub truncated: bool,
}

/// A sequence of labels after (or before) the anchor, `None` where the session ended, and how
/// often it occurred.
type Sequence = (Vec<Option<String>>, u64);

/// Builds the tree from leaf sequences and their counts, keeping `breadth` children a node.
fn tree(label: &str, sequences: &[Sequence], depth: usize, breadth: usize, ended: &str) -> PathNode {
    let count = sequences.iter().map(|(_, n)| n).sum();
    let mut node = PathNode { label: label.to_string(), count, children: Vec::new() };
    if depth == 0 {
        return node;
    }
    let mut groups: BTreeMap<Option<String>, Vec<Sequence>> = BTreeMap::new();
    for (sequence, n) in sequences {
        let (head, rest) = sequence.split_first().map_or((None, Vec::new()), |(h, r)| (h.clone(), r.to_vec()));
        groups.entry(head).or_default().push((rest, *n));
    }
    let mut children: Vec<PathNode> = groups
        .into_iter()
        .map(|(head, rest)| match head {
            Some(label) => tree(&label, &rest, depth - 1, breadth, ended),
            None => PathNode { label: ended.to_string(), count: rest.iter().map(|(_, n)| n).sum(), children: Vec::new() },
        })
        .collect();
    children.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    if children.len() > breadth {
        let other: u64 = children[breadth..].iter().map(|c| c.count).sum();
        children.truncate(breadth);
        children.push(PathNode { label: "(other)".into(), count: other, children: Vec::new() });
    }
    node.children = children;
    node
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
    let steps: Vec<String> = (1..=depth).map(|i| format!("{function}(label, {i}) OVER w AS n{i}")).collect();
    let columns: Vec<String> = (1..=depth).map(|i| format!("n{i}")).collect();
    let columns = columns.join(", ");
    let sql = format!(
        "WITH {ctes}, \
         keep AS (SELECT sid FROM sess GROUP BY sid HAVING bool_or(hit)), \
         seq AS (SELECT s.sid, s.label, s.t, s.\"event_id\" FROM sess s JOIN keep k ON s.sid = k.sid WHERE {kept}), \
         around AS (SELECT label, {steps} FROM seq WINDOW w AS (PARTITION BY sid ORDER BY t, \"event_id\")) \
         SELECT {columns}, COUNT(*) AS n FROM around WHERE label = {from} GROUP BY {columns} ORDER BY n DESC LIMIT {limit}",
        ctes = sessionized(&scope, context, &format!("{label} AS label, ")),
        steps = steps.join(", "),
        from = quote(&request.from),
        limit = MAX_SEQUENCES + 1,
    );
    let result = engine.collect(&sql).await?;
    let mut sequences: Vec<Sequence> = values::rows(&result)
        .into_iter()
        .map(|row| {
            let labels: Vec<Option<String>> = (0..depth as usize).map(|i| row[i].as_str().map(str::to_string)).collect();
            // A sequence stops at its first gap: nothing follows the end of a session.
            let cut = labels.iter().position(Option::is_none).map_or(labels.clone(), |p| labels[..=p].to_vec());
            (cut, row[depth as usize].as_u64().unwrap_or(0))
        })
        .collect();
    let truncated = sequences.len() > MAX_SEQUENCES;
    sequences.truncate(MAX_SEQUENCES);
    Ok(PathsAnswer {
        direction: if next { "next" } else { "previous" }.into(),
        root: tree(&request.from, &sequences, depth as usize, breadth as usize, ended),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(labels: &[Option<&str>], n: u64) -> Sequence {
        (labels.iter().map(|l| l.map(str::to_string)).collect(), n)
    }

    #[test]
    fn a_tree_counts_every_branch_and_folds_the_rest() {
        let sequences = [
            seq(&[Some("/a"), Some("/b")], 5),
            seq(&[Some("/a"), None], 2),
            seq(&[Some("/c"), Some("/a")], 1),
            seq(&[Some("/d"), Some("/a")], 1),
            seq(&[None], 3),
        ];
        let root = tree("/x", &sequences, 2, 2, "(end)");
        assert_eq!(root.count, 12);
        let labels: Vec<(&str, u64)> = root.children.iter().map(|c| (c.label.as_str(), c.count)).collect();
        assert_eq!(labels, vec![("/a", 7), ("(end)", 3), ("(other)", 2)]);
        let a = &root.children[0];
        assert_eq!(a.children.iter().map(|c| (c.label.as_str(), c.count)).collect::<Vec<_>>(), vec![("/b", 5), ("(end)", 2)]);
        assert!(a.children[0].children.is_empty(), "the depth is reached");
    }
}
