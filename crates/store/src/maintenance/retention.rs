//! Store retention: time partitions older than `store.retention_days`, and deletion tombstones
//! that log replay can no longer need.

use crate::metrics as m;
use crate::store::Store;
use crate::{Error, Result};

impl Store {
    /// Drops time partitions older than the retention period, and deletions no longer needed.
    pub async fn enforce_retention(&self) -> Result<u64> {
        let _turn = self.maintenance.lock().await;
        let manifest = self.shared.state.read().manifest.clone();
        let days = self.shared.options.retention_days;
        let cutoff = self.shared.options.clock.now_ms() - i64::from(days) * 86_400_000;
        let expired: Vec<u64> =
            if days == 0 { Vec::new() } else { manifest.segments.iter().filter(|s| s.max_time < cutoff).map(|s| s.id).collect() };
        let spent = manifest.tombstones.iter().filter(|t| t.is_spent(&manifest.offsets)).count();
        if expired.is_empty() && spent == 0 {
            return Ok(0);
        }
        let rows: u64 = manifest.segments.iter().filter(|s| expired.contains(&s.id)).map(|s| s.rows).sum();
        let mut next = manifest;
        next.segments.retain(|s| !expired.contains(&s.id));
        let offsets = next.offsets.clone();
        next.tombstones.retain(|t| !t.is_spent(&offsets));
        next.generation += 1;
        let dir = self.shared.options.dir.clone();
        let committed = next.clone();
        tokio::task::spawn_blocking(move || committed.commit(&dir)).await.map_err(|_| Error::Closed)??;
        self.shared.swap_segments(next, Vec::new(), &expired);
        if rows > 0 {
            tracing::info!(rows, segments = expired.len(), days, "store retention dropped old partitions");
        }
        metrics::counter!(m::RETENTION_ROWS).increment(rows);
        self.publish_stats();
        Ok(rows)
    }
}
