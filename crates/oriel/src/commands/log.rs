//! `oriel log dump` and `oriel log stats`: look inside the event log of a stopped server,
//! whichever log the configuration names.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use oriel_log::EventLog;

use crate::settings::{self, ConfigArgs};

/// What to look at.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LogCommand {
    /// Print every stored event as one JSON object per line, partition by partition.
    Dump(ConfigArgs),
    /// Print the offsets, size and consumers of each partition.
    Stats(ConfigArgs),
}

pub(crate) fn run(command: LogCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    match command {
        LogCommand::Dump(args) => runtime.block_on(dump(&args)),
        LogCommand::Stats(args) => runtime.block_on(stats(&args)),
    }
}

async fn open(args: &ConfigArgs) -> anyhow::Result<Arc<dyn EventLog>> {
    let config = settings::load_for(args, Vec::new())?;
    oriel_log::open_existing(&config.log, &config.data_dir)
        .await
        .with_context(|| format!("cannot open the event log of {} (is oriel serve still running?)", config.data_dir.display()))
}

/// Prints every record's value, one per line.
async fn dump(args: &ConfigArgs) -> anyhow::Result<()> {
    let log = open(args).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for partition in 0..log.partition_count() {
        let mut offset = log.offsets(partition).await?.start;
        loop {
            let records = log.read(partition, offset, 1 << 20).await?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for record in records {
                out.write_all(&record.value)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    log.close().await?;
    Ok(())
}

/// Prints one line per partition, with how far the store has persisted it.
async fn stats(args: &ConfigArgs) -> anyhow::Result<()> {
    let log = open(args).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "partition  start  end  records  store")?;
    for partition in 0..log.partition_count() {
        let range = log.offsets(partition).await?;
        let store = log.consumer_position(oriel_store::CONSUMER, partition).await?.map_or("-".to_string(), |p| p.to_string());
        writeln!(out, "{partition:>9}  {:>5}  {:>3}  {:>7}  {store:>5}", range.start, range.end, range.end - range.start)?;
    }
    if let Some(bytes) = log.stored_bytes() {
        writeln!(out, "{bytes} bytes in segments ({} log)", log.kind())?;
    }
    log.close().await?;
    Ok(())
}
