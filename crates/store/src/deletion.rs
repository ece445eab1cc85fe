//! Which rows a deletion removes: one matcher for the live buffer, log replay, segment rewrites
//! and compaction.
//!
//! A [`Selector`] names a visitor (`party_id`) or a user (`user_id`). [`keep_mask`] evaluates
//! any rule over a batch's `party_id` and `user_id` columns. It fails when those columns are not
//! what the schema says, and callers fail closed on that error: a batch that cannot be checked
//! is never served or written.

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A visitor or user whose events are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The rows of `batch` to keep: those for which `deleted(row, party_id, user_id)` is false.
pub(crate) fn keep_mask(
    batch: &RecordBatch,
    deleted: impl Fn(usize, Option<&str>, Option<&str>) -> bool,
) -> Result<BooleanArray> {
    let party = column(batch, "party_id")?;
    let user = column(batch, "user_id")?;
    Ok((0..batch.num_rows()).map(|row| Some(!deleted(row, value(party, row), value(user, row)))).collect())
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
        let keep = keep_mask(&batch, |_, p, u| by_user.matches(p, u)).unwrap();
        assert_eq!(keep, BooleanArray::from(vec![true, false, false]));
        let by_party = Selector { party_id: Some("p1".into()), user_id: None };
        assert_eq!(keep_mask(&batch, |_, p, u| by_party.matches(p, u)).unwrap(), BooleanArray::from(vec![false, true, true]));

        let bad_schema = Arc::new(Schema::new(vec![Field::new("party_id", DataType::Int32, true)]));
        let bad = RecordBatch::try_new(bad_schema, vec![Arc::new(Int32Array::from(vec![1])) as ArrayRef]).unwrap();
        assert!(keep_mask(&bad, |_, p, u| by_party.matches(p, u)).is_err());
    }
}
