//! Persisting the live buffer, and importing batches directly as segments.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;

use crate::Result;
use crate::metrics as m;
use crate::store::{CONSUMER, FlushReport, Store};

impl Store {
    /// Persists the live buffer into segments and commits them with the offsets they cover.
    pub async fn flush(&self) -> Result<FlushReport> {
        self.writable("flushing")?;
        let _turn = self.maintenance.lock().await;
        let started = std::time::Instant::now();
        let (batches, offsets, manifest) = {
            let mut s = self.shared.state.write();
            s.live.pinned = s.live.batches.len();
            (s.live.batches.clone(), s.live.offsets.clone(), s.manifest.clone())
        };
        let count = batches.len();
        if count == 0 && offsets == manifest.offsets {
            self.shared.state.write().live.pinned = 0;
            return Ok(FlushReport::default());
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        // Start and end lines bracket the persistence, so a crash test can tell where it struck.
        tracing::debug!(rows, "flushing the live buffer");
        let granularity = self.shared.options.granularity;
        let written = self.write_segments(granularity, manifest, batches, |m| m.offsets = offsets).await;
        let (next, added) = match written {
            Ok(written) => written,
            Err(error) => {
                self.shared.state.write().live.pinned = 0;
                return Err(error);
            }
        };
        let report = FlushReport { rows: rows as u64, segments: added.len() };
        {
            let now = self.shared.options.clock.now_ms();
            let mut s = self.shared.state.write();
            s.manifest = next.clone();
            s.segments.extend(added);
            s.live.drain_front(count, now);
        }
        self.room.notify_waiters();
        self.commit_consumer(&next.offsets).await;
        metrics::histogram!(m::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        self.publish_stats();
        tracing::debug!(rows, segments = report.segments, "flushed the live buffer");
        Ok(report)
    }

    async fn commit_consumer(&self, offsets: &BTreeMap<u32, u64>) {
        let Some(log) = &self.log else { return };
        for (&p, &offset) in offsets {
            if let Err(error) = log.commit_consumer(CONSUMER, p, offset).await {
                tracing::warn!(partition = p, %error, "cannot tell the log how far the store has persisted");
            }
        }
    }

    /// Adds events directly as segments (backfills and migrations), bypassing the log. The log
    /// offsets in the manifest do not move.
    pub async fn import(&self, batches: Vec<RecordBatch>) -> Result<FlushReport> {
        self.writable("importing events")?;
        let _turn = self.maintenance.lock().await;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(FlushReport::default());
        }
        let manifest = self.shared.state.read().manifest.clone();
        let granularity = self.shared.options.granularity;
        let (next, added) = self.write_segments(granularity, manifest, batches, |_| {}).await?;
        let segments = added.len();
        self.shared.swap_segments(next, added, &[]);
        self.publish_stats();
        Ok(FlushReport { rows: rows as u64, segments })
    }
}
