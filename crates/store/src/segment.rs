//! Immutable Parquet segments: how they are written, read back, and named.
//!
//! Rows are sorted by (`site`, `__time`), strings dictionary-encoded, pages zstd-compressed, and
//! every page carries min/max statistics (the page index), so a query that filters on site and
//! time reads only the row groups and pages that can match. The files are plain Parquet that
//! DuckDB, Spark, Trino or ClickHouse read directly.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, ReaderProperties, WriterProperties};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use parquet::schema::types::ColumnPath;

use crate::deletion::Selector;
use crate::schema::{TIME, events_schema};
use crate::{Error, Result};

/// Rows per row group: small enough to prune by time within an hour, large enough to compress.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page, the unit the page index prunes.
const PAGE_ROWS: usize = 16 * 1024;
/// Rows per batch when a segment is read back for compaction or deletion.
pub(crate) const READ_BATCH_ROWS: usize = 8 * 1024;
/// Columns with a bloom filter, so a deletion finds the segments that can hold a visitor or
/// user without decoding the others (and queries on them skip row groups).
const BLOOM_COLUMNS: [&str; 2] = ["party_id", "user_id"];
/// False-positive rate of those filters; parquet folds them to the distinct values written.
const BLOOM_FPP: f64 = 0.01;

/// How segments are cut in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    /// One time partition per hour.
    Hour,
    /// One time partition per day.
    Day,
}

impl Granularity {
    /// The partition key of a timestamp: `2026-11-27T10` or `2026-11-27`.
    pub fn key(self, ms: i64) -> String {
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        match self {
            Self::Hour => t.format("%Y-%m-%dT%H").to_string(),
            Self::Day => t.format("%Y-%m-%d").to_string(),
        }
    }
}

/// Most sites a segment's metadata lists with their oldest event; a segment with more lists
/// none, and retention treats it as holding any site.
const MAX_LISTED_SITES: usize = 1000;

/// What writing a segment produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Rows.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// Smallest `__time`.
    pub min_time: i64,
    /// Largest `__time`.
    pub max_time: i64,
    /// Per site (`""` for none), its oldest `__time`; `None` past [`MAX_LISTED_SITES`].
    pub sites: Option<BTreeMap<String, i64>>,
}

fn site_index() -> usize {
    events_schema().index_of("site").unwrap_or(2)
}

/// Splits `batches` into one batch per time partition.
pub(crate) fn split_by_partition(batches: &[RecordBatch], granularity: Granularity) -> Result<Vec<(String, RecordBatch)>> {
    let mut out: Vec<(String, Vec<RecordBatch>)> = Vec::new();
    for batch in batches {
        let times = batch.column(TIME).as_primitive::<TimestampMillisecondType>();
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for row in 0..batch.num_rows() {
            let key = granularity.key(times.value(row));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(row as u32),
                None => groups.push((key, vec![row as u32])),
            }
        }
        for (key, rows) in groups {
            let part =
                if rows.len() == batch.num_rows() { batch.clone() } else { take_record_batch(batch, &UInt32Array::from(rows))? };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, parts)) => parts.push(part),
                None => out.push((key, vec![part])),
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(key, parts)| Ok((key, concat_batches(&events_schema(), &parts)?))).collect()
}

/// Sorts rows by (`site`, `__time`).
pub fn sort(batch: &RecordBatch) -> Result<RecordBatch> {
    let asc = SortOptions { descending: false, nulls_first: true };
    let columns = [
        SortColumn { values: Arc::clone(batch.column(site_index())), options: Some(asc) },
        SortColumn { values: Arc::clone(batch.column(TIME)), options: Some(asc) },
    ];
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

fn properties() -> Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: site_index() as i32, descending: false, nulls_first: true },
            SortingColumn { column_idx: TIME as i32, descending: false, nulls_first: true },
        ]));
    for column in BLOOM_COLUMNS {
        let path = ColumnPath::from(column);
        builder = builder
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), BLOOM_FPP)
            .set_column_bloom_filter_max_ndv(path, ROW_GROUP_ROWS as u64);
    }
    Ok(builder.build())
}

/// Writes one segment from batches that arrive already sorted by (`site`, `__time`), a row
/// group at a time, so a segment of any size is written in bounded memory. A writer dropped
/// before [`SegmentWriter::finish`] (an error on the way) removes its file, so a retry can
/// never trip over it.
pub(crate) struct SegmentWriter {
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
    min_time: i64,
    max_time: i64,
    sites: Option<BTreeMap<String, i64>>,
}

impl SegmentWriter {
    /// Creates the file; it must not exist (segments are never overwritten).
    pub(crate) fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("failed to create", dir))?;
        }
        let file = File::create_new(path).map_err(Error::io("failed to create segment", path))?;
        let mut this = Self {
            path: path.to_path_buf(),
            writer: None,
            rows: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
            sites: Some(BTreeMap::new()),
        };
        this.writer = Some(ArrowWriter::try_new(file, events_schema(), Some(properties()?))?);
        Ok(this)
    }

    /// Appends sorted rows.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = batch.column(TIME).as_primitive::<TimestampMillisecondType>();
        for &t in times.values() {
            self.min_time = self.min_time.min(t);
            self.max_time = self.max_time.max(t);
        }
        self.note_sites(batch)?;
        self.rows += batch.num_rows() as u64;
        let writer = self.writer.as_mut().ok_or_else(|| Error::Internal("segment writer already finished".into()))?;
        writer.write(batch)?;
        Ok(())
    }

    /// Keeps each site's oldest time. Rows arrive sorted by site, so a site's rows are one run
    /// and one map lookup per run suffices.
    fn note_sites(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(sites) = &mut self.sites else { return Ok(()) };
        let site =
            batch.column(site_index()).as_string_opt::<i32>().ok_or_else(|| Error::Internal("column site is not text".into()))?;
        let times = batch.column(TIME).as_primitive::<TimestampMillisecondType>();
        let mut run_start = 0;
        for row in 1..=batch.num_rows() {
            let name = |i: usize| if site.is_valid(i) { site.value(i) } else { "" };
            if row < batch.num_rows() && name(row) == name(run_start) {
                continue;
            }
            let oldest = times.values()[run_start..row].iter().copied().min().unwrap_or(i64::MAX);
            let key = name(run_start);
            match sites.get_mut(key) {
                Some(t) => *t = (*t).min(oldest),
                None => {
                    sites.insert(key.to_string(), oldest);
                }
            }
            run_start = row;
        }
        if sites.len() > MAX_LISTED_SITES {
            self.sites = None;
        }
        Ok(())
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes and fsyncs the file. An empty segment is an error (and its file is removed).
    pub(crate) fn finish(mut self) -> Result<Written> {
        let writer = self.writer.take().ok_or_else(|| Error::Internal("segment writer already finished".into()))?;
        let file = writer.into_inner()?;
        if self.rows == 0 {
            return Err(Error::Internal("refusing to write an empty segment".into()));
        }
        file.sync_all().map_err(Error::io("failed to sync segment", &self.path))?;
        let bytes = file.metadata().map_err(Error::io("failed to stat segment", &self.path))?.len();
        let written =
            Written { rows: self.rows, bytes, min_time: self.min_time, max_time: self.max_time, sites: self.sites.take() };
        // Finished: the file stays.
        self.path = PathBuf::new();
        Ok(written)
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `batch` (one partition's rows, in any order) sorted to a new file at `path`.
pub fn write(path: &Path, batch: &RecordBatch) -> Result<Written> {
    let sorted = sort(batch)?;
    let mut writer = SegmentWriter::create(path)?;
    writer.write(&sorted)?;
    writer.finish()
}

/// Reads a segment back batch by batch, in its sorted order.
pub(crate) fn reader(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + use<>> {
    let file = File::open(path).map_err(Error::io("failed to open segment", path))?;
    let reader: ParquetRecordBatchReader =
        ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(READ_BATCH_ROWS).build()?;
    // Segments always hold the events schema; re-attach it so field metadata matches.
    Ok(reader.map(|batch| Ok(RecordBatch::try_new(events_schema(), batch?.columns().to_vec())?)))
}

/// Reads a whole segment back.
pub fn read(path: &Path) -> Result<Vec<RecordBatch>> {
    reader(path)?.collect()
}

/// Whether the segment at `path` may hold events of `selector`, judged by the bloom filters of
/// its row groups without reading any data. A segment written without filters may.
pub(crate) fn may_contain(path: &Path, selector: &Selector) -> Result<bool> {
    let file = File::open(path).map_err(Error::io("failed to open segment", path))?;
    let options =
        ReadOptionsBuilder::new().with_reader_properties(ReaderProperties::builder().set_read_bloom_filter(true).build()).build();
    let reader = SerializedFileReader::new_with_options(file, options)?;
    let schema = events_schema();
    let wanted: Vec<(usize, &str)> = [("party_id", &selector.party_id), ("user_id", &selector.user_id)]
        .into_iter()
        .filter_map(|(name, value)| Some((schema.index_of(name).ok()?, value.as_deref()?)))
        .collect();
    for i in 0..reader.num_row_groups() {
        let group = reader.get_row_group(i)?;
        for &(column, value) in &wanted {
            match group.get_column_bloom_filter(column) {
                Some(filter) if !filter.check(value) => {}
                _ => return Ok(true),
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BatchBuilder;
    use oriel_core::Event;

    fn batch(rows: &[(&str, i64)]) -> RecordBatch {
        let mut b = BatchBuilder::new();
        for (site, t) in rows {
            b.push(&Event { time: *t, site: Some((*site).into()), event_type: "x".into(), ..Event::default() }).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn partitions_by_hour_and_day() {
        assert_eq!(Granularity::Hour.key(1_795_770_000_000), "2026-11-27T09");
        assert_eq!(Granularity::Day.key(1_795_770_000_000), "2026-11-27");
        let b = batch(&[("a", 1_795_770_000_000), ("a", 1_795_770_000_000 + 3_600_000), ("b", 1_795_770_000_001)]);
        let parts = split_by_partition(&[b], Granularity::Hour).unwrap();
        assert_eq!(
            parts.iter().map(|(k, b)| (k.as_str(), b.num_rows())).collect::<Vec<_>>(),
            vec![("2026-11-27T09", 2), ("2026-11-27T10", 1)]
        );
    }

    #[test]
    fn writes_sorted_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/1.parquet");
        let written = write(&path, &batch(&[("b", 5), ("a", 9), ("a", 3), ("b", 1)])).unwrap();
        assert_eq!((written.rows, written.min_time, written.max_time), (4, 1, 9));
        assert_eq!(written.sites, Some(BTreeMap::from([("a".into(), 3), ("b".into(), 1)])), "each site's oldest event");
        let back = read(&path).unwrap();
        let all = concat_batches(&events_schema(), &back).unwrap();
        let sites: Vec<&str> = all.column(site_index()).as_string::<i32>().iter().map(|s| s.unwrap()).collect();
        let times: Vec<i64> = all.column(TIME).as_primitive::<TimestampMillisecondType>().values().to_vec();
        assert_eq!(sites, vec!["a", "a", "b", "b"]);
        assert_eq!(times, vec![3, 9, 1, 5]);
        assert!(write(&path, &batch(&[("a", 1)])).is_err(), "segments are never overwritten");
    }

    #[test]
    fn bloom_filters_tell_which_segments_may_hold_a_visitor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let mut b = BatchBuilder::new();
        for i in 0..2000 {
            let event = Event {
                time: i,
                party_id: Some(format!("p{i}")),
                user_id: Some(format!("u{}", i % 7)),
                event_type: "x".into(),
                ..Event::default()
            };
            b.push(&event).unwrap();
        }
        write(&path, &b.finish().unwrap()).unwrap();
        let party = |p: &str| Selector { party_id: Some(p.into()), user_id: None };
        assert!(may_contain(&path, &party("p1234")).unwrap());
        let misses = (0..200).filter(|i| !may_contain(&path, &party(&format!("q{i}"))).unwrap()).count();
        assert!(misses > 190, "only {misses} of 200 absent visitors were ruled out");
        assert!(may_contain(&path, &Selector { party_id: None, user_id: Some("u3".into()) }).unwrap());
        assert!(!may_contain(&path, &Selector { party_id: None, user_id: Some("nobody".into()) }).unwrap());
    }
}
