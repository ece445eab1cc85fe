//! Ingestion: tailing the event log into the live buffer.
//!
//! One task per log partition reads records from the next offset, decodes them into an Arrow
//! batch off the async threads ([`crate::schema::BatchBuilder`]) and pushes the batch into the
//! [`live`] buffer. It pauses while the buffer is over its byte budget (the log keeps the
//! events durably meanwhile) and asks for a flush, so memory stays bounded however fast events
//! arrive or however much a restart replays.

pub(crate) mod live;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use oriel_log::EventLog;

use crate::Result;
use crate::metrics as m;
use crate::schema::BatchBuilder;
use crate::store::Store;

/// Payload bytes one ingest read asks the log for.
const READ_BYTES: usize = 4 << 20;
/// How long to wait before retrying after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How often the consumer lag is published.
const LAG_EVERY: Duration = Duration::from_secs(5);

impl Store {
    /// Tails one log partition into the live buffer until the store stops.
    pub(crate) async fn ingest(self: Arc<Self>, log: Arc<dyn EventLog>, partition: u32, mut next: u64) {
        let mut stop = self.stop.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before the check: a flush that makes room between the check and the
            // wait still wakes this task.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.live_is_full() {
                self.flush_wanted.notify_one();
                metrics::counter!(m::INGEST_PAUSES).increment(1);
                tokio::select! {
                    () = room => {}
                    () = tokio::time::sleep(RETRY) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            // One read may overshoot the budget by what it brings: keep reads small next to it.
            let read_bytes = READ_BYTES.min((self.shared.options.live_buffer_bytes / 4).max(64 << 10));
            let records = match log.read(partition, next, read_bytes).await {
                Ok(records) => records,
                Err(oriel_log::Error::OffsetRemoved { start, .. }) => {
                    // Only possible if the consumer registration was lost; say how much is gone.
                    tracing::error!(
                        partition,
                        from = next,
                        to = start,
                        "log retention removed events the store had not ingested"
                    );
                    next = start;
                    continue;
                }
                Err(oriel_log::Error::Closed) => return,
                Err(error) => {
                    tracing::error!(partition, offset = next, %error, "cannot read the event log; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let Some(last) = records.last().map(|r| r.offset) else {
                tokio::select! {
                    _ = log.wait_for(partition, next) => continue,
                    _ = stop.changed() => return,
                }
            };
            let Ok(decoded) = tokio::task::spawn_blocking(move || decode(&records)).await else { return };
            let pushed = decoded.and_then(|(batch, offsets)| self.push_live(partition, batch, &offsets, last + 1));
            match pushed {
                Ok(()) => next = last + 1,
                Err(error) => {
                    // The offset does not move: the same records are read again after the pause.
                    tracing::error!(partition, offset = next, %error, "cannot ingest events; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// Publishes each partition's consumer lag (the log's end minus what is ingested) every
    /// [`LAG_EVERY`] until the store stops; on a remote log each turn asks the brokers.
    pub(crate) async fn report_lag(self: Arc<Self>, log: Arc<dyn EventLog>) {
        let mut stop = self.stop.subscribe();
        loop {
            let ingested = self.shared.state.read().live.offsets.clone();
            let mut total = 0;
            for (partition, next) in ingested {
                if let Ok(range) = log.offsets(partition).await {
                    let lag = range.end.saturating_sub(next);
                    total += lag;
                    metrics::gauge!(m::INGEST_LAG, "partition" => partition.to_string()).set(lag as f64);
                }
            }
            self.measured_lag.store(total, std::sync::atomic::Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(LAG_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn live_is_full(&self) -> bool {
        self.shared.state.read().live.bytes >= self.shared.options.live_buffer_bytes
    }

    fn push_live(&self, partition: u32, batch: RecordBatch, offsets: &[u64], next: u64) -> Result<()> {
        let now = self.shared.options.clock.now_ms();
        let cutoffs = self.shared.options.retention.cutoffs(now);
        let (rows, live_rows, live_bytes) = {
            let mut guard = self.shared.state.write();
            let state = &mut *guard;
            let rows = state.live.push(partition, batch, offsets, next, &state.manifest.tombstones, &cutoffs, now)?;
            (rows, state.live.rows, state.live.bytes)
        };
        metrics::counter!(m::INGESTED).increment(rows as u64);
        metrics::gauge!(m::LIVE_ROWS).set(live_rows as f64);
        metrics::gauge!(m::LIVE_BYTES).set(live_bytes as f64);
        let options = &self.shared.options;
        if live_rows >= options.flush_rows || live_bytes >= options.live_buffer_bytes / 2 {
            self.flush_wanted.notify_one();
        }
        Ok(())
    }
}

/// Decodes log records into one batch, and the log offset of each row. A record that is not an
/// event is skipped and counted: it cannot be stored, and blocking the partition on it would
/// stop everything after it.
fn decode(records: &[oriel_log::StoredRecord]) -> Result<(RecordBatch, Vec<u64>)> {
    let mut builder = BatchBuilder::with_capacity(records.len());
    let mut offsets = Vec::with_capacity(records.len());
    for record in records {
        match builder.push_json(&record.value) {
            Ok(()) => offsets.push(record.offset),
            Err(error) => {
                metrics::counter!(m::BAD_EVENTS).increment(1);
                tracing::error!(partition = record.partition, offset = record.offset, %error, "skipping a log record that is not an event");
            }
        }
    }
    Ok((builder.finish()?, offsets))
}
