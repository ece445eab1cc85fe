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
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use crate::schema::events_schema;
use crate::store::Shared;

/// The `events` table provider.
#[derive(Debug)]
pub struct EventsTable {
    shared: Arc<Shared>,
}

impl EventsTable {
    /// A table over the store's state.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
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
                {
                    if c.name == "__time" {
                        if let Some(l) = literal_ms(l) {
                            tighten_lo(l);
                        }
                        if let Some(h) = literal_ms(h) {
                            tighten_hi(h);
                        }
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
        let snapshot = self.shared.snapshot();
        // The plan runs after this function returns; keep its segment files from being deleted
        // by a compaction until the query is done.
        if let Some(keep) = state.config().get_extension::<crate::sql::KeepAlive>() {
            keep.hold(Arc::new(snapshot.clone()));
        }
        let (lo, hi) = time_bounds(filters);
        let files: Vec<&str> = snapshot
            .segments
            .iter()
            .filter(|s| lo.is_none_or(|lo| s.meta.max_time >= lo) && hi.is_none_or(|hi| s.meta.min_time <= hi))
            .filter_map(|s| s.path.to_str())
            .collect();
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let urls = files.iter().map(ListingTableUrl::parse).collect::<DfResult<Vec<_>>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(events_schema());
            let table = ListingTable::try_new(config)?;
            plans.push(table.scan(state, projection, filters, limit).await?);
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
