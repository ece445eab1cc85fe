//! A streaming k-way merge of segments sorted by (`site`, `__time`) into one sorted segment.
//!
//! Compaction must not load a day into memory: each input is read a batch at a time, the next
//! row is the smallest of the inputs' current rows (compared in Arrow's row format), and output
//! is written as it fills. Memory is one batch per input plus the writer's open row group,
//! whatever the size of the day. Rows a deletion selects are dropped on the way.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{SortOptions, filter_record_batch, interleave_record_batch};
use datafusion::arrow::row::{RowConverter, Rows, SortField};

use crate::deletion::{self, Removal};
use crate::schema::{TIME, events_schema};
use crate::segment::{self, READ_BATCH_ROWS, SegmentWriter, Written};
use crate::{Error, Result};

/// One input: its remaining batches, the current batch and its sort keys.
struct Cursor {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// Index of the current batch in the held list.
    held: usize,
    keys: Rows,
    row: usize,
    len: usize,
}

/// The sort key columns of a batch in Arrow's row format, which compares with `memcmp`.
fn keys(converter: &RowConverter, batch: &RecordBatch) -> Result<Rows> {
    let site = events_schema().index_of("site").map_err(|e| Error::Internal(e.to_string()))?;
    let columns: [ArrayRef; 2] = [batch.column(site).clone(), batch.column(TIME).clone()];
    Ok(converter.convert_columns(&columns)?)
}

/// Merges the sorted segments `inputs` into a new segment at `output`, leaving out the rows
/// `removal` selects. Returns what was written, or `None` when no row is left.
pub(crate) fn merge(inputs: &[PathBuf], output: &Path, removal: &Removal) -> Result<Option<Written>> {
    let order = SortOptions { descending: false, nulls_first: true };
    let schema = events_schema();
    let converter = RowConverter::new(vec![
        SortField::new_with_options(
            schema.field_with_name("site").map_err(|e| Error::Internal(e.to_string()))?.data_type().clone(),
            order,
        ),
        SortField::new_with_options(schema.field(TIME).data_type().clone(), order),
    ])?;
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut cursors: Vec<Cursor> = Vec::with_capacity(inputs.len());
    for path in inputs {
        let mut batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = Box::new(segment::reader(path)?);
        if let Some(cursor) = next_batch(&mut batches, &converter, &mut held)? {
            cursors.push(Cursor { batches, ..cursor });
        }
    }
    let mut writer = SegmentWriter::create(output)?;
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(READ_BATCH_ROWS);
    while !cursors.is_empty() {
        // The input whose current row sorts first; inputs are few, so a scan beats a heap.
        let mut best = 0;
        for i in 1..cursors.len() {
            if cursors[i].keys.row(cursors[i].row) < cursors[best].keys.row(cursors[best].row) {
                best = i;
            }
        }
        let cursor = &mut cursors[best];
        picks.push((cursor.held, cursor.row));
        cursor.row += 1;
        if cursor.row == cursor.len {
            // Keep the finished batch held until the picks that point into it are written.
            match next_batch(&mut cursor.batches, &converter, &mut held)? {
                Some(next) => {
                    cursor.held = next.held;
                    cursor.keys = next.keys;
                    cursor.row = 0;
                    cursor.len = next.len;
                }
                None => {
                    cursors.swap_remove(best);
                }
            }
        }
        if picks.len() >= READ_BATCH_ROWS || cursors.is_empty() {
            emit(&mut writer, &held, &mut picks, removal)?;
            // Only the inputs' current batches are still needed: renumber them.
            let mut kept = Vec::with_capacity(cursors.len());
            for cursor in &mut cursors {
                kept.push(held[cursor.held].clone());
                cursor.held = kept.len() - 1;
            }
            held = kept;
        }
    }
    if writer.rows() == 0 {
        // Dropping the writer removes the empty file.
        return Ok(None);
    }
    writer.finish().map(Some)
}

/// Reads the next non-empty batch of an input and holds it.
fn next_batch(
    batches: &mut Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    converter: &RowConverter,
    held: &mut Vec<RecordBatch>,
) -> Result<Option<Cursor>> {
    for batch in batches.by_ref() {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let keys = keys(converter, &batch)?;
        let len = batch.num_rows();
        held.push(batch);
        return Ok(Some(Cursor { batches: Box::new(std::iter::empty()), held: held.len() - 1, keys, row: 0, len }));
    }
    Ok(None)
}

fn emit(writer: &mut SegmentWriter, held: &[RecordBatch], picks: &mut Vec<(usize, usize)>, removal: &Removal) -> Result<()> {
    if picks.is_empty() {
        return Ok(());
    }
    let refs: Vec<&RecordBatch> = held.iter().collect();
    let mut out = interleave_record_batch(&refs, picks)?;
    picks.clear();
    if !removal.is_empty() {
        let keep = deletion::keep_mask(&out, |r| removal.removes(r))?;
        out = filter_record_batch(&out, &keep)?;
    }
    writer.write(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deletion::PendingDeletion;
    use crate::schema::BatchBuilder;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::TimestampMillisecondType;
    use oriel_core::Event;

    fn segment(dir: &Path, name: &str, rows: &[(&str, i64)]) -> PathBuf {
        let mut b = BatchBuilder::new();
        for (i, (site, t)) in rows.iter().enumerate() {
            let event = Event {
                time: *t,
                site: Some((*site).into()),
                party_id: Some(format!("{name}-{i}")),
                event_type: "x".into(),
                ..Event::default()
            };
            b.push(&event).unwrap();
        }
        let path = dir.join(name);
        let batch = b.finish().unwrap();
        if batch.num_rows() > 0 {
            segment::write(&path, &batch).unwrap();
        }
        path
    }

    #[test]
    fn merges_sorted_inputs_into_one_sorted_segment() {
        let dir = tempfile::tempdir().unwrap();
        // More rows than one read batch, so cursors move across batches mid-output.
        let many: Vec<(&str, i64)> = (0..20_000).map(|i| (if i % 3 == 0 { "b" } else { "a" }, i * 2)).collect();
        let inputs = vec![
            segment(dir.path(), "1", &many),
            segment(dir.path(), "2", &[("a", 5), ("c", 1), ("a", 100_000)]),
            segment(dir.path(), "3", &[]),
        ];
        let inputs: Vec<PathBuf> = inputs.into_iter().filter(|p| p.exists()).collect();
        let out = dir.path().join("merged");
        let written = merge(&inputs, &out, &Removal::default()).unwrap().unwrap();
        assert_eq!(written.rows, 20_003);
        let all = concat_batches(&events_schema(), &segment::read(&out).unwrap()).unwrap();
        let site = all.column(events_schema().index_of("site").unwrap()).as_string::<i32>();
        let time = all.column(TIME).as_primitive::<TimestampMillisecondType>();
        let pairs: Vec<(String, i64)> = (0..all.num_rows()).map(|i| (site.value(i).to_string(), time.value(i))).collect();
        let mut sorted = pairs.clone();
        sorted.sort();
        assert_eq!(pairs, sorted);
        assert_eq!(written.min_time, 0);
        assert_eq!(written.max_time, 100_000);
        assert_eq!(site.null_count(), 0);
    }

    #[test]
    fn drops_deleted_rows_and_reports_an_empty_result() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = vec![segment(dir.path(), "1", &[("a", 1), ("a", 2)])];
        let out = dir.path().join("merged");
        let deletion = |p: &str| PendingDeletion {
            selector: crate::deletion::Selector { party_id: Some(p.into()), user_id: None },
            before_ms: i64::MAX,
            ..PendingDeletion::default()
        };
        let removing = |deletions: Vec<PendingDeletion>| Removal { deletions, ..Removal::default() };
        let gone = deletion("1-0");
        assert_eq!(merge(&inputs, &out, &removing(vec![gone.clone()])).unwrap().unwrap().rows, 1);
        let later = PendingDeletion { before_ms: 0, ..deletion("1-1") };
        assert_eq!(
            merge(&inputs, &dir.path().join("later"), &removing(vec![later])).unwrap().unwrap().rows,
            2,
            "events after the request stay"
        );
        let everyone = removing(vec![gone, deletion("1-1")]);
        assert!(merge(&inputs, &dir.path().join("empty"), &everyone).unwrap().is_none());
        assert!(!dir.path().join("empty").exists());
    }
}
