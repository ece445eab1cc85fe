//! `oriel import FILE`: backfills events from JSON lines or Parquet straight into the store.
//!
//! The server must be stopped (the store's lock says so otherwise). Events go into segments
//! directly, not through the log, so a backfill of months of history does not fill the log.
//! Time partitions that received several segments are compacted at the end.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oriel_store::schema::{BatchBuilder, events_schema};
use oriel_store::{Store, StoreOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::progress;
use crate::settings::{self, ConfigArgs};

/// Rows per import chunk: each chunk becomes one segment per time partition it touches.
const CHUNK_ROWS: usize = 1_000_000;

/// Options of `oriel import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    base: ConfigArgs,
    /// A `.jsonl` file (one event per line, as `oriel gen` or `oriel log dump` write) or a
    /// `.parquet` file with the events table's columns.
    file: PathBuf,
}

struct CountingReader<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<()> {
    let config = settings::load_for(&args.base, Vec::new())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let store = Store::open(StoreOptions::from_config(&config), None)
            .await
            .with_context(|| format!("cannot open the store in {} (stop oriel serve first)", config.data_dir.display()))?;
        let rows = import_file(&store, &args.file).await?;
        let merged = store.compact().await.context("compaction after import")?;
        store.close().await?;
        #[allow(clippy::print_stderr)]
        {
            eprintln!("imported {rows} events from {}; compacted {merged} time partitions", args.file.display());
        }
        anyhow::Ok(())
    })
}

async fn import_file(store: &Store, path: &Path) -> anyhow::Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata()?.len();
    let bar = progress::bytes(size, "importing");
    let mut total = 0u64;
    if path.extension().is_some_and(|e| e == "parquet") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a Parquet file", path.display()))?
            .with_batch_size(64 * 1024)
            .build()?;
        let schema = events_schema();
        let mut chunk = Vec::new();
        let mut rows = 0;
        for batch in reader {
            let batch = batch?;
            bar.inc((size / 100).max(1).min(size.saturating_sub(bar.position())));
            let columns = schema
                .fields()
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(c) => datafusion_cast(c, f.data_type()),
                    None if f.is_nullable() => Ok(datafusion::arrow::array::new_null_array(f.data_type(), batch.num_rows())),
                    None => bail!("{} lacks the required column {}", path.display(), f.name()),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let batch = datafusion::arrow::array::RecordBatch::try_new(schema.clone(), columns)?;
            rows += batch.num_rows();
            chunk.push(batch);
            if rows >= CHUNK_ROWS {
                total += store.import(std::mem::take(&mut chunk)).await?.rows;
                rows = 0;
            }
        }
        total += store.import(chunk).await?.rows;
    } else {
        let reader = BufReader::with_capacity(1 << 20, CountingReader { inner: file, bar: bar.clone() });
        let mut builder = BatchBuilder::new();
        let mut chunk = Vec::new();
        let mut rows = 0;
        for (n, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            builder.push_json(line.as_bytes()).with_context(|| format!("{}:{}: not an event", path.display(), n + 1))?;
            if builder.len() == 64 * 1024 {
                rows += builder.len();
                chunk.push(builder.finish()?);
            }
            if rows >= CHUNK_ROWS {
                total += store.import(std::mem::take(&mut chunk)).await?.rows;
                rows = 0;
            }
        }
        if !builder.is_empty() {
            chunk.push(builder.finish()?);
        }
        total += store.import(chunk).await?.rows;
    }
    bar.finish_and_clear();
    Ok(total)
}

fn datafusion_cast(
    column: &datafusion::arrow::array::ArrayRef,
    to: &datafusion::arrow::datatypes::DataType,
) -> anyhow::Result<datafusion::arrow::array::ArrayRef> {
    Ok(datafusion::arrow::compute::cast(column, to)?)
}
