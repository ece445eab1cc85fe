//! Which rows a deletion removes: one matcher for the live buffer, log replay, segment rewrites
//! and compaction.
//!
//! A [`Selector`] names a visitor (`party_id`) or a user (`user_id`). A [`PendingDeletion`] is a
//! selector with the moment it was asked for: it removes the events received before then, and
//! it stays in the manifest until every segment has been rewritten without them, so a crash
//! halfway resumes instead of leaving some behind. [`keep_mask`] evaluates any rule over a
//! batch's `party_id`, `user_id` and `__time` columns. It fails when those columns are not what
//! the schema says, and callers fail closed on that error: a batch that cannot be checked is
//! never served or written. A [`Removal`] joins the pending deletions with the sites' retention
//! cutoffs, for the rewrites that apply both.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, PrimitiveArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use serde::{Deserialize, Serialize};

use crate::expiry::Cutoffs;
use crate::{Error, Result};

/// A visitor or user whose events are deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// Events with this `party_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party_id: Option<String>,
    /// Events with this `user_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Selector {
    /// Whether an event with `party_id` and `user_id` is one of the selected.
    pub fn matches(&self, party_id: Option<&str>, user_id: Option<&str>) -> bool {
        self.party_id.as_deref().is_some_and(|p| party_id == Some(p))
            || self.user_id.as_deref().is_some_and(|u| user_id == Some(u))
    }

    /// Whether the selector names anyone at all.
    pub fn is_empty(&self) -> bool {
        self.party_id.is_none() && self.user_id.is_none()
    }
}

/// A deletion not yet applied to every segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeletion {
    /// Whose events.
    #[serde(flatten)]
    pub selector: Selector,
    /// When it was asked for (ms): events received after are new and stay.
    pub before_ms: i64,
    /// The id of its receipt.
    #[serde(default)]
    pub id: String,
    /// Who asked for it.
    #[serde(default)]
    pub requested_by: String,
    /// When it was asked for by the clock, ms.
    #[serde(default)]
    pub requested_at_ms: i64,
    /// Per log partition, the end offset when it was asked for.
    #[serde(default)]
    pub until: BTreeMap<u32, u64>,
}

impl PendingDeletion {
    /// Whether the event with `party_id`, `user_id` received at `time_ms` is removed.
    pub fn matches(&self, party_id: Option<&str>, user_id: Option<&str>, time_ms: i64) -> bool {
        time_ms <= self.before_ms && self.selector.matches(party_id, user_id)
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a StringArray>> {
    match batch.schema().index_of(name) {
        Ok(i) => batch
            .column(i)
            .as_string_opt::<i32>()
            .map(Some)
            .ok_or_else(|| Error::Internal(format!("column {name} is not text; cannot apply deletions"))),
        // A projection without the column cannot hold the selected values.
        Err(_) => Ok(None),
    }
}

fn value(column: Option<&StringArray>, row: usize) -> Option<&str> {
    column.filter(|c| c.is_valid(row)).map(|c| c.value(row))
}

/// What the matcher sees of one row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    /// Position in the batch.
    pub(crate) index: usize,
    pub(crate) site: Option<&'a str>,
    pub(crate) party_id: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
    /// `__time`, ms (`i64::MIN` when the batch has no such column).
    pub(crate) time_ms: i64,
}

/// The rows of `batch` to keep: those `deleted` does not pick.
pub(crate) fn keep_mask(batch: &RecordBatch, deleted: impl Fn(Row<'_>) -> bool) -> Result<BooleanArray> {
    let site = column(batch, "site")?;
    let party = column(batch, "party_id")?;
    let user = column(batch, "user_id")?;
    let time: Option<&PrimitiveArray<TimestampMillisecondType>> = match batch.schema().index_of("__time") {
        Ok(i) => Some(
            batch
                .column(i)
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| Error::Internal("column __time is not a timestamp; cannot apply deletions".into()))?,
        ),
        Err(_) => None,
    };
    Ok((0..batch.num_rows())
        .map(|index| {
            let time_ms = time.filter(|t| t.is_valid(index)).map_or(i64::MIN, |t| t.value(index));
            let row =
                Row { index, site: value(site, index), party_id: value(party, index), user_id: value(user, index), time_ms };
            Some(!deleted(row))
        })
        .collect())
}

/// Everything a rewrite of segments leaves out: the deletions pending when it started, and
/// events past their site's retention.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Removal {
    /// Deletions not yet applied everywhere.
    pub(crate) deletions: Vec<PendingDeletion>,
    /// The oldest time each site keeps.
    pub(crate) cutoffs: Cutoffs,
}

impl Removal {
    /// Whether the rewrite keeps every row.
    pub(crate) fn is_empty(&self) -> bool {
        self.deletions.is_empty() && self.cutoffs.is_none()
    }

    /// Whether `row` is left out.
    pub(crate) fn removes(&self, row: Row<'_>) -> bool {
        self.cutoffs.expired(row.site, row.time_ms)
            || self.deletions.iter().any(|d| d.matches(row.party_id, row.user_id, row.time_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int32Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn selects_by_party_or_user_and_fails_on_a_wrong_column() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("party_id", DataType::Utf8, true),
            Field::new("user_id", DataType::Utf8, true),
        ]));
        let party: ArrayRef = Arc::new(StringArray::from(vec![Some("p1"), Some("p2"), None]));
        let user: ArrayRef = Arc::new(StringArray::from(vec![None, Some("u1"), Some("u1")]));
        let batch = RecordBatch::try_new(schema, vec![party, user]).unwrap();
        let by_user = Selector { party_id: None, user_id: Some("u1".into()) };
        let keep = keep_mask(&batch, |r| by_user.matches(r.party_id, r.user_id)).unwrap();
        assert_eq!(keep, BooleanArray::from(vec![true, false, false]));
        let by_party = Selector { party_id: Some("p1".into()), user_id: None };
        assert_eq!(
            keep_mask(&batch, |r| by_party.matches(r.party_id, r.user_id)).unwrap(),
            BooleanArray::from(vec![false, true, true])
        );

        let bad_schema = Arc::new(Schema::new(vec![Field::new("party_id", DataType::Int32, true)]));
        let bad = RecordBatch::try_new(bad_schema, vec![Arc::new(Int32Array::from(vec![1])) as ArrayRef]).unwrap();
        assert!(keep_mask(&bad, |r| by_party.matches(r.party_id, r.user_id)).is_err());
    }

    #[test]
    fn a_pending_deletion_spares_what_came_after_it() {
        let d = PendingDeletion {
            selector: Selector { party_id: Some("p".into()), user_id: None },
            before_ms: 100,
            ..PendingDeletion::default()
        };
        assert!(d.matches(Some("p"), None, 100));
        assert!(!d.matches(Some("p"), None, 101), "received after the request: a new event");
        assert!(!d.matches(Some("q"), None, 5));
    }
}
