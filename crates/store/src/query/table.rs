//! The `events` table: a DataFusion table over the store's segments and live buffer.
//!
//! Every scan takes a consistent snapshot (the segment list and the live batches at that
//! moment), drops segments whose time range cannot match the query's `__time` filters before any
//! I/O, reads the rest as Parquet (row groups and pages pruned by statistics), and unions them
//! with the live buffer, so an event is visible from the moment it is ingested until it is
//! deleted, whether it has been persisted yet or not.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DataFusionError, Statistics};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use object_store::path::Path as ObjectPath;

use crate::query::engine::KeepAlive;
use crate::schema::{TIME, events_schema};
use crate::snapshot::{SegmentFile, SnapshotSource, batch_time_range};

/// The `events` table provider.
#[derive(Debug)]
pub struct EventsTable {
    source: Arc<dyn SnapshotSource>,
}

impl EventsTable {
    /// A table over the snapshots of `source`.
    pub fn new(source: Arc<dyn SnapshotSource>) -> Self {
        Self { source }
    }

    /// The first and last `__time` of everything the table holds now, from the manifest's
    /// segment bounds and the live batches (no file is read); `None` when it is empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let snapshot = self.source.snapshot();
        let segments = snapshot.segments.iter().filter(|s| s.meta.rows > 0).map(|s| (s.meta.min_time, s.meta.max_time));
        let live = snapshot.live.iter().filter_map(batch_time_range);
        segments.chain(live).reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
    }
}

/// The `[lo, hi]` range of `__time` (ms) that `filters` allow; unbounded sides are `None`.
fn time_bounds(filters: &[Expr]) -> (Option<i64>, Option<i64>) {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut tighten_lo = |v: i64| lo = Some(lo.map_or(v, |l| l.max(v)));
    let mut tighten_hi = |v: i64| hi = Some(hi.map_or(v, |h| h.min(v)));
    for filter in filters {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column_left, value, op) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) if c.name == "__time" => (true, v, *op),
                    (Expr::Literal(v, _), Expr::Column(c)) if c.name == "__time" => (false, v, *op),
                    _ => continue,
                };
                let Some(ms) = literal_ms(value) else { continue };
                let op = if column_left { op } else { op.swap().unwrap_or(op) };
                match op {
                    Operator::Gt | Operator::GtEq => tighten_lo(ms),
                    Operator::Lt | Operator::LtEq => tighten_hi(ms),
                    Operator::Eq => {
                        tighten_lo(ms);
                        tighten_hi(ms);
                    }
                    _ => {}
                }
            }
            Expr::Between(between) if !between.negated => {
                if let (Expr::Column(c), Expr::Literal(l, _), Expr::Literal(h, _)) =
                    (between.expr.as_ref(), between.low.as_ref(), between.high.as_ref())
                    && c.name == "__time"
                {
                    if let Some(l) = literal_ms(l) {
                        tighten_lo(l);
                    }
                    if let Some(h) = literal_ms(h) {
                        tighten_hi(h);
                    }
                }
            }
            _ => {}
        }
    }
    (lo, hi)
}

fn literal_ms(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampMillisecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(v.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000_000)),
        _ => None,
    }
}

/// Statistics of a set of segments as the manifest knows them: exact row counts and `__time`
/// bounds, so DataFusion can answer `count(*)` and `min/max(__time)` without reading a file.
fn statistics(files: &[&SegmentFile]) -> Statistics {
    let schema = events_schema();
    let rows: usize = files.iter().map(|f| f.meta.rows as usize).sum();
    let bytes: usize = files.iter().map(|f| f.meta.bytes as usize).sum();
    let min = files.iter().map(|f| f.meta.min_time).min();
    let max = files.iter().map(|f| f.meta.max_time).max();
    let mut stats =
        Statistics::new_unknown(&schema).with_num_rows(Precision::Exact(rows)).with_total_byte_size(Precision::Inexact(bytes));
    if let (Some(min), Some(max)) = (min, max) {
        stats.column_statistics[TIME] = ColumnStatistics::new_unknown()
            .with_null_count(Precision::Exact(0))
            .with_min_value(Precision::Exact(ScalarValue::TimestampMillisecond(Some(min), None)))
            .with_max_value(Precision::Exact(ScalarValue::TimestampMillisecond(Some(max), None)));
    }
    stats
}

/// A Parquet scan of `files`, spread over the session's partitions by size. Sizes and
/// statistics come from the manifest: nothing is listed or stat'ed per query.
async fn parquet_scan(
    state: &dyn Session,
    files: &[&SegmentFile],
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let n = state.config().target_partitions().max(1).min(files.len());
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    let mut by_size: Vec<&&SegmentFile> = files.iter().collect();
    by_size.sort_by_key(|f| std::cmp::Reverse(f.meta.bytes));
    for file in by_size {
        let location = ObjectPath::from_absolute_path(&file.path).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let partitioned =
            PartitionedFile::new(location.to_string(), file.meta.bytes).with_statistics(Arc::new(statistics(&[file])));
        // Smallest group first keeps the work even.
        if let Some(group) = groups.iter_mut().min_by_key(|(size, _)| *size) {
            group.0 += file.meta.bytes;
            group.1.push(partitioned);
        }
    }
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let source = format.file_source(events_schema().into());
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
        .with_file_groups(groups.into_iter().map(|(_, files)| FileGroup::new(files)).collect())
        .with_statistics(statistics(files))
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .build();
    format.create_physical_plan(state, config).await
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        events_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters prune segments, row groups and pages, but DataFusion still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = time_bounds(filters);
        let snapshot = self.source.current(lo, hi).await?;
        // The plan runs after this function returns; keep its segment files from being deleted
        // by a compaction until the query is done.
        if let Some(keep) = state.config().get_extension::<KeepAlive>() {
            keep.hold(Arc::new(snapshot.clone()));
        }
        let files: Vec<&SegmentFile> = snapshot
            .segments
            .iter()
            .filter(|s| lo.is_none_or(|lo| s.meta.max_time >= lo) && hi.is_none_or(|hi| s.meta.min_time <= hi))
            .map(AsRef::as_ref)
            .collect();
        // Segments kept in object storage are read from their local copies.
        crate::snapshot::ensure_local(&files).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            plans.push(parquet_scan(state, &files, projection, limit).await?);
        }
        if !snapshot.live.is_empty() {
            // Spread the live batches over the configured parallelism.
            let n = state.config().target_partitions().max(1);
            let mut partitions = vec![Vec::new(); n];
            for (i, batch) in snapshot.live.iter().enumerate() {
                partitions[i % n].push(batch.clone());
            }
            partitions.retain(|p| !p.is_empty());
            let table = MemTable::try_new(events_schema(), partitions)?;
            plans.push(table.scan(state, projection, filters, limit).await?);
        }
        Ok(match plans.len() {
            0 => {
                let schema = match projection {
                    Some(p) => Arc::new(events_schema().project(p)?),
                    None => events_schema(),
                };
                Arc::new(EmptyExec::new(schema))
            }
            1 => plans.remove(0),
            _ => UnionExec::try_new(plans)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(ms: i64) -> Expr {
        lit(ScalarValue::TimestampMillisecond(Some(ms), None))
    }

    #[test]
    fn bounds_from_filters() {
        assert_eq!(time_bounds(&[]), (None, None));
        assert_eq!(time_bounds(&[col("__time").gt_eq(ts(10)), col("__time").lt(ts(20))]), (Some(10), Some(20)));
        assert_eq!(time_bounds(&[ts(10).lt_eq(col("__time"))]), (Some(10), None));
        assert_eq!(time_bounds(&[col("__time").between(ts(5), ts(7))]), (Some(5), Some(7)));
        assert_eq!(time_bounds(&[col("site").eq(lit("a"))]), (None, None));
        assert_eq!(time_bounds(&[col("__time").gt(ts(10)), col("__time").gt(ts(15))]), (Some(15), None));
    }
}
