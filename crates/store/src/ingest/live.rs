//! The live buffer: ingested events not yet in a segment, queryable at once.
//!
//! Its memory is bounded by `store.live_buffer_mb`: the ingester stops reading the log while
//! the buffer is full, and the maintenance task flushes early once it is half full. Batches a
//! flush is writing stay pinned at the front until the flush drains them.

use std::collections::BTreeMap;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::TimestampMillisecondType;

use crate::deletion;
use crate::expiry::Cutoffs;
use crate::manifest::Tombstone;
use crate::schema::{TIME, events_schema};
use crate::{Error, Result};

/// Live batches smaller than this are merged once [`COALESCE_COUNT`] of them follow each other:
/// an ingester that keeps up with the log reads a few events at a time, and thousands of tiny
/// batches cost memory and query time. Batches of a catching-up ingester (thousands of rows
/// per read) are left alone, so replay copies nothing.
const COALESCE_ROWS: usize = 1024;
/// How many small batches in a row trigger a merge.
const COALESCE_COUNT: usize = 32;

/// The live buffer of the store.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) batches: Vec<RecordBatch>,
    /// Each batch's number, increasing: a batch whose rows change (merged, filtered) gets a new
    /// one, so a query node can keep the batches it fetched and ask only for newer ones.
    pub(crate) seqs: Vec<u64>,
    next_seq: u64,
    /// Names this numbering: a store that opens again numbers from zero under a new instance.
    pub(crate) instance: u64,
    /// Leading batches a flush is writing; they must keep their place until it drains them.
    pub(crate) pinned: usize,
    pub(crate) rows: usize,
    /// Memory the batches hold.
    pub(crate) bytes: usize,
    /// Per log partition, the offset of the next event to ingest.
    pub(crate) offsets: BTreeMap<u32, u64>,
    /// When (clock ms) the oldest batch still in the buffer arrived.
    pub(crate) since_ms: Option<i64>,
    /// The newest `__time` ever pushed (ms), for deletions to cover imported future events.
    pub(crate) max_time_ms: Option<i64>,
}

impl Live {
    /// An empty buffer with a numbering of its own.
    pub(crate) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the operating system's randomness.
        let instance = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Self { instance, ..Self::default() }
    }

    /// Adds a batch read from `partition`, whose rows came from log `offsets`, without the
    /// events `tombstones` delete or `cutoffs` say have expired, and moves the partition's next
    /// offset to `next`. Fails, keeping nothing, when the deletions cannot be applied: a
    /// deleted visitor's events must never be served.
    #[allow(clippy::too_many_arguments)] // One call site; the arguments are one read's facts.
    pub(crate) fn push(
        &mut self,
        partition: u32,
        batch: RecordBatch,
        offsets: &[u64],
        next: u64,
        tombstones: &[Tombstone],
        cutoffs: &Cutoffs,
        now_ms: i64,
    ) -> Result<usize> {
        if offsets.len() != batch.num_rows() {
            return Err(Error::Internal(format!("{} offsets for {} rows", offsets.len(), batch.num_rows())));
        }
        let oldest = batch.column(TIME).as_primitive_opt::<TimestampMillisecondType>().and_then(datafusion::arrow::compute::min);
        // Replay and imports can bring events older than their site keeps.
        let may_expire = cutoffs.none_expired_from().is_some_and(|c| oldest.is_some_and(|o| o < c));
        let batch = if (tombstones.is_empty() && !may_expire) || batch.num_rows() == 0 {
            batch
        } else {
            let keep = deletion::keep_mask(&batch, |r| {
                cutoffs.expired(r.site, r.time_ms)
                    || tombstones.iter().any(|t| t.covers(partition, offsets[r.index], r.party_id, r.user_id))
            })?;
            filter_record_batch(&batch, &keep)?
        };
        let rows = batch.num_rows();
        if rows > 0 {
            let newest =
                batch.column(TIME).as_primitive_opt::<TimestampMillisecondType>().and_then(datafusion::arrow::compute::max);
            self.max_time_ms = self.max_time_ms.max(newest);
            self.bytes += batch.get_array_memory_size();
            self.rows += rows;
            self.append(batch);
            self.since_ms.get_or_insert(now_ms);
            self.coalesce();
        }
        self.offsets.insert(partition, next);
        Ok(rows)
    }

    fn append(&mut self, batch: RecordBatch) {
        self.batches.push(batch);
        self.seqs.push(self.next_seq);
        self.next_seq += 1;
    }

    /// Merges the trailing run of small batches into one once it is long enough.
    fn coalesce(&mut self) {
        let run = self.batches[self.pinned..].iter().rev().take_while(|b| b.num_rows() < COALESCE_ROWS).count();
        if run < COALESCE_COUNT {
            return;
        }
        let start = self.batches.len() - run;
        match concat_batches(&events_schema(), &self.batches[start..]) {
            Ok(merged) => {
                let before: usize = self.batches[start..].iter().map(RecordBatch::get_array_memory_size).sum();
                self.bytes = self.bytes - before + merged.get_array_memory_size();
                self.batches.truncate(start);
                self.seqs.truncate(start);
                self.append(merged);
            }
            Err(error) => tracing::warn!(%error, "cannot merge live batches"),
        }
    }

    /// Removes the first `count` batches (a flush persisted them).
    pub(crate) fn drain_front(&mut self, count: usize, now_ms: i64) {
        for batch in self.batches.drain(..count) {
            self.rows -= batch.num_rows();
            self.bytes = self.bytes.saturating_sub(batch.get_array_memory_size());
        }
        self.seqs.drain(..count);
        self.pinned = 0;
        self.since_ms = if self.batches.is_empty() { None } else { Some(now_ms) };
    }

    /// Drops every row `selector` picks; returns how many.
    pub(crate) fn remove(&mut self, selector: &deletion::Selector) -> Result<u64> {
        let mut removed = 0u64;
        let mut kept = Vec::with_capacity(self.batches.len());
        for (batch, &seq) in self.batches.iter().zip(&self.seqs) {
            let keep = deletion::keep_mask(batch, |r| selector.matches(r.party_id, r.user_id))?;
            let filtered = filter_record_batch(batch, &keep)?;
            let gone = batch.num_rows() - filtered.num_rows();
            removed += gone as u64;
            // An unchanged batch keeps its number; a changed one is a new batch.
            kept.push((if gone == 0 { Some(seq) } else { None }, filtered));
        }
        // Only once every batch was filtered: a failure leaves the buffer as it was.
        kept.retain(|(_, b)| b.num_rows() > 0);
        self.batches.clear();
        self.seqs.clear();
        for (seq, batch) in kept {
            match seq {
                Some(seq) => {
                    self.batches.push(batch);
                    self.seqs.push(seq);
                }
                None => self.append(batch),
            }
        }
        self.rows = self.batches.iter().map(RecordBatch::num_rows).sum();
        self.bytes = self.batches.iter().map(RecordBatch::get_array_memory_size).sum();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int32Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use oriel_core::Event;

    use crate::deletion::Selector;
    use crate::schema::BatchBuilder;

    fn events(parties: &[&str]) -> RecordBatch {
        let mut b = BatchBuilder::new();
        for p in parties {
            b.push(&Event { party_id: Some((*p).into()), event_type: "x".into(), ..Event::default() }).unwrap();
        }
        b.finish().unwrap()
    }

    fn tombstone(party: &str, until: u64) -> Tombstone {
        Tombstone { selector: Selector { party_id: Some(party.into()), user_id: None }, until: BTreeMap::from([(0, until)]) }
    }

    #[test]
    fn tombstones_filter_what_replay_brings_back() {
        let mut live = Live::default();
        let rows = live
            .push(0, events(&["gone", "kept", "gone"]), &[10, 11, 12], 13, &[tombstone("gone", 12)], &Cutoffs::default(), 0)
            .unwrap();
        // Offsets 10 is before the deletion; 12 came after it and is a new event.
        assert_eq!(rows, 2);
        assert_eq!(live.rows, 2);
        assert_eq!(live.offsets[&0], 13);
        assert!(live.bytes > 0);
    }

    /// Regression: when the deletions could not be applied, the unfiltered batch was kept.
    #[test]
    fn a_batch_whose_deletions_cannot_be_applied_is_refused_whole() {
        let mut live = Live::default();
        let schema = Arc::new(Schema::new(vec![Field::new("party_id", DataType::Int32, true)]));
        let odd = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef]).unwrap();
        assert!(live.push(0, odd, &[0, 1], 2, &[tombstone("1", 5)], &Cutoffs::default(), 0).is_err());
        assert_eq!(live.rows, 0);
        assert!(live.batches.is_empty());
        assert!(!live.offsets.contains_key(&0), "the offsets must not move past refused events");
    }

    #[test]
    fn remove_and_drain_keep_the_counts() {
        let mut live = Live::default();
        live.push(0, events(&["a", "b"]), &[0, 1], 2, &[], &Cutoffs::default(), 5).unwrap();
        live.push(0, events(&["a"]), &[2], 3, &[], &Cutoffs::default(), 6).unwrap();
        assert_eq!(live.since_ms, Some(5));
        live.push(0, events(&["c"]), &[3], 4, &[], &Cutoffs::default(), 7).unwrap();
        assert_eq!(live.seqs, [0, 1, 2]);
        assert_eq!(live.remove(&Selector { party_id: Some("a".into()), user_id: None }).unwrap(), 2);
        assert_eq!((live.rows, live.batches.len()), (2, 2));
        assert_eq!(live.seqs, [3, 2], "a filtered batch is a new one; an untouched one keeps its number");
        live.drain_front(1, 9);
        assert_eq!(live.seqs, [2]);
        live.drain_front(1, 10);
        assert_eq!((live.rows, live.bytes, live.since_ms), (0, 0, None));
    }
}
