//! Paths: what visitors did next (or before) around one page — the most common sequences of
//! the following (or preceding) pages, or events, within the same session, to a chosen depth,
//! as a tree with counts.
//!
//! Every time the anchor occurs in a session counts once. A branch that ends because the
//! session ended is the child `(end)` (`(start)` looking back); children beyond the breadth
//! asked for are summed into `(other)`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::AnalyticsContext;
use crate::analytics::scope::{Scope, refuse_unknown};
use crate::analytics::timeline::{Budget, Extra, each_visitor};
use crate::query::engine::QueryEngine;
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

/// The counted children of each node: per parent prefix (the labels from the anchor down,
/// `None` for the end of a session), its children's labels and counts.
type Children = BTreeMap<Vec<Option<String>>, Vec<(Option<String>, u64)>>;

/// How a tree is drawn: levels below the anchor, children shown per node, and the label of
/// the end of a session.
#[derive(Debug, Clone, Copy)]
struct Shape<'a> {
    depth: usize,
    breadth: usize,
    ended: &'a str,
}

/// The node of `prefix` counted `count` times, with its `breadth` largest children down to
/// `depth` more levels; what they do not cover is `(other)`.
fn node(label: String, count: u64, prefix: &[Option<String>], children: &Children, shape: Shape<'_>) -> PathNode {
    let mut out = PathNode { label, count, children: Vec::new() };
    if shape.depth == 0 {
        return out;
    }
    let ended = shape.ended;
    let mut kids = children.get(prefix).cloned().unwrap_or_default();
    kids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_deref().unwrap_or(ended).cmp(b.0.as_deref().unwrap_or(ended))));
    kids.truncate(shape.breadth);
    let shown: u64 = kids.iter().map(|(_, n)| n).sum();
    for (label, n) in kids {
        let mut path = prefix.to_vec();
        path.push(label.clone());
        out.children.push(match label {
            Some(label) => node(label, n, &path, children, Shape { depth: shape.depth - 1, ..shape }),
            // Nothing follows the end of a session.
            None => PathNode { label: ended.to_string(), count: n, children: Vec::new() },
        });
    }
    if shown < count {
        out.children.push(PathNode { label: "(other)".into(), count: count - shown, children: Vec::new() });
    }
    out
}

/// A label's number in a walk: the anchor is 0, and this one is the end of a session.
const ENDED: u32 = u32::MAX;

/// The labels after (or before) one occurrence of the anchor, to the depth asked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
struct Sequence {
    labels: [u32; MAX_DEPTH as usize],
    len: usize,
}

/// Answers `request` at `now`.
pub async fn paths(
    engine: &Arc<QueryEngine>,
    context: &AnalyticsContext,
    request: &PathsRequest,
    now: i64,
) -> Result<PathsAnswer> {
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
    // Which events a sequence is made of, given whether one is a page view and whether an
    // engagement ping; and the same as SQL.
    let (label, kept, kept_sql): (&str, fn(bool, bool) -> bool, &str) = match request.by.as_deref().unwrap_or("page") {
        "page" => ("CASE WHEN \"event_type\" = 'pageView' THEN \"path\" END", |view, _| view, "\"event_type\" = 'pageView'"),
        "event" => (
            "CASE WHEN \"event_type\" = 'pageView' THEN \"path\" ELSE \"event_type\" END",
            |_, engagement| !engagement,
            "\"event_type\" <> 'engagement'",
        ),
        other => return Err(Error::InvalidQuery(format!("unknown by {other:?}: use page or event"))),
    };
    if request.from.is_empty() || request.from.len() > 4096 {
        return Err(Error::InvalidQuery("from names a page path or an event type of 1 to 4096 bytes".into()));
    }
    let scope = request.scope.resolve(now, engine.time_range().flatten().map(|(lo, _)| lo))?;
    // The walk needs the events sequences are made of; the others only to cut sessions without
    // the tag's id (every event of those counts) and to know whether a session meets the
    // filters. A smaller sort.
    let mut only = format!("{kept_sql} OR \"session_id\" IS NULL");
    if !request.scope.filters.is_empty() {
        only = format!("{only} OR COALESCE({}, FALSE)", scope.hit);
    }
    let extra = Extra { sessions: true, only: Some(only), label: Some(label.into()), ..Extra::default() };
    let (runner, context, from, d) = (Arc::clone(engine), context.clone(), request.from.clone(), depth as usize);
    let (names, counts) = engine
        .on_query_threads(async move {
            // Labels are numbered as first seen; a sequence is the anchor's following (or
            // preceding) labels, ENDED where the session ends.
            let mut names: Vec<String> = vec![from.clone()];
            let mut ids: HashMap<String, u32> = HashMap::from([(from.clone(), 0)]);
            let mut counts: HashMap<Sequence, u64> = HashMap::new();
            let (mut budget, mut name_bytes) = (Budget::new(&runner), 0_usize);
            each_visitor(&runner, &scope, &context, &extra, |v| {
                for events in v.sessions() {
                    if !events.iter().any(|&i| v.hit(i)) {
                        continue;
                    }
                    let labels: Vec<Option<&str>> =
                        events.iter().filter(|&&i| kept(v.is_view(i), v.is_engagement(i))).map(|&i| v.label(i)).collect();
                    // Only labels near an anchor are numbered (and kept).
                    let mut number = |label: Option<&str>| match label {
                        // A page view without a path ends what can be followed, as the end does.
                        None => ENDED,
                        Some(text) => match ids.get(text) {
                            Some(&id) => id,
                            None => {
                                let id = u32::try_from(names.len()).unwrap_or(ENDED - 1);
                                name_bytes += 2 * text.len() + 2 * size_of::<String>() + 16;
                                names.push(text.to_string());
                                ids.insert(text.to_string(), id);
                                id
                            }
                        },
                    };
                    for (at, _) in labels.iter().enumerate().filter(|(_, l)| **l == Some(from.as_str())) {
                        let mut sequence = Sequence::default();
                        *counts.entry(sequence).or_default() += 1;
                        for step in 1..=d {
                            let j = if next { at.checked_add(step) } else { at.checked_sub(step) };
                            let label = number(j.and_then(|j| labels.get(j).copied()).flatten());
                            sequence.labels[sequence.len] = label;
                            sequence.len += 1;
                            *counts.entry(sequence).or_default() += 1;
                            if label == ENDED {
                                break;
                            }
                        }
                    }
                }
                budget.hold(name_bytes + counts.len() * (size_of::<(Sequence, u64)>() + 8))
            })
            .await?;
            Ok::<_, Error>((names, counts))
        })
        .await??;
    let name = |id: u32| (id != ENDED).then(|| names[id as usize].clone());
    let mut root = 0;
    let mut children = Children::new();
    for (sequence, count) in counts {
        let Some((&child, parent)) = sequence.labels[..sequence.len].split_last() else {
            root = count;
            continue;
        };
        children.entry(parent.iter().map(|&id| name(id)).collect()).or_default().push((name(child), count));
    }
    Ok(PathsAnswer {
        direction: if next { "next" } else { "previous" }.into(),
        root: node(request.from.clone(), root, &[], &children, Shape { depth: d, breadth: breadth as usize, ended }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_shows_the_kept_children_and_the_rest_as_other() {
        let some = |s: &str| Some(s.to_string());
        let mut children = Children::new();
        children.insert(vec![], vec![(some("/c"), 1), (some("/a"), 7), (None, 3), (some("/d"), 1)]);
        children.insert(vec![some("/a")], vec![(some("/b"), 5), (None, 2)]);
        let root = node("/x".into(), 12, &[], &children, Shape { depth: 2, breadth: 3, ended: "(end)" });
        let labels: Vec<(&str, u64)> = root.children.iter().map(|c| (c.label.as_str(), c.count)).collect();
        assert_eq!(labels, vec![("/a", 7), ("(end)", 3), ("/c", 1), ("(other)", 1)], "the largest three, ties by label");
        let a = &root.children[0];
        assert_eq!(a.children.iter().map(|c| (c.label.as_str(), c.count)).collect::<Vec<_>>(), vec![("/b", 5), ("(end)", 2)]);
        assert!(a.children[0].children.is_empty(), "the depth is reached");
    }
}
