//! `oriel log dump` and `oriel log stats`: look inside the event log of a stopped server.

use std::io::Write;

use anyhow::Context;
use oriel_log::{EmbeddedLog, EmbeddedOptions, EventLog};

use crate::{ConfigArgs, settings};

fn open(args: &ConfigArgs) -> anyhow::Result<(EmbeddedLog, tokio::runtime::Runtime)> {
    let config = settings::load_for(args, Vec::new())?;
    let dir = config.data_dir.join("log");
    anyhow::ensure!(dir.join("meta.json").exists(), "no event log in {} (check --data-dir)", dir.display());
    let log = EmbeddedLog::open(&dir, EmbeddedOptions { preallocate: false, ..EmbeddedOptions::from_config(&config.log) })
        .with_context(|| format!("cannot open the event log in {} (is oriel serve still running?)", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    Ok((log, runtime))
}

/// Prints every record's value, one per line.
pub(crate) fn dump(args: &ConfigArgs) -> anyhow::Result<()> {
    let (log, runtime) = open(args)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    runtime.block_on(async {
        for partition in 0..log.partition_count() {
            let mut offset = log.offsets(partition)?.start;
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
        anyhow::Ok(())
    })
}

/// Prints one line per partition.
pub(crate) fn stats(args: &ConfigArgs) -> anyhow::Result<()> {
    let (log, runtime) = open(args)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "partition  start  end  records")?;
    for partition in 0..log.partition_count() {
        let range = log.offsets(partition)?;
        writeln!(out, "{partition:>9}  {:>5}  {:>3}  {:>7}", range.start, range.end, range.end - range.start)?;
    }
    writeln!(out, "{} bytes in segments", log.disk_bytes())?;
    runtime.block_on(log.close())?;
    Ok(())
}
