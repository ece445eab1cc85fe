//! `oriel log dump` and `oriel log stats`: look inside the event log of a stopped server,
//! whichever log the configuration names.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use oriel_core::{Clock, Config, SystemClock};
use oriel_log::EventLog;
use oriel_store::expiry::RetentionPolicy;

use crate::settings::{self, ConfigArgs};

/// What to look at.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LogCommand {
    /// Print every stored event as one JSON object per line, partition by partition; events
    /// deleted on request or past their site's retention are left out.
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

async fn open(config: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    oriel_log::open_existing(&config.log, &config.data_dir)
        .await
        .with_context(|| format!("cannot open the event log of {} (is oriel serve still running?)", config.data_dir.display()))
}

/// What of an event decides whether the log's view still shows it.
#[derive(Debug, serde::Deserialize)]
struct Identity {
    #[serde(rename = "__time", default)]
    time: i64,
    site: Option<String>,
    party_id: Option<String>,
    user_id: Option<String>,
}

/// Prints every record's value, one per line, but those a deletion removed or whose site's
/// retention has passed: the log's view is the store's. (Their bytes stay in the log's files
/// until its retention removes the segment holding them.)
async fn dump(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = settings::load_for(args, Vec::new())?;
    let store = config.data_dir.join("store");
    let receipts = oriel_store::receipts::load(&store).context("cannot read the deletion receipts")?;
    // Deletions not finished yet, or older than receipts, are known by their tombstones.
    let object_store = config.object_store.enabled().then_some(&config.object_store);
    let tombstones = oriel_store::objects::committed_manifest(&store, object_store)
        .await
        .context("cannot read the store's manifest")?
        .tombstones;
    let cutoffs = RetentionPolicy::from_config(&config).cutoffs(SystemClock.now_ms());
    let log = open(&config).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut deleted, mut expired) = (0u64, 0u64);
    for partition in 0..log.partition_count() {
        let mut offset = log.offsets(partition).await?.start;
        loop {
            let records = log.read(partition, offset, 1 << 20).await?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for record in records {
                if let Ok(event) = serde_json::from_slice::<Identity>(&record.value) {
                    let (party, user) = (event.party_id.as_deref(), event.user_id.as_deref());
                    if receipts.iter().any(|r| r.covers(partition, record.offset, party, user))
                        || tombstones.iter().any(|t| t.covers(partition, record.offset, party, user))
                    {
                        deleted += 1;
                        continue;
                    }
                    if cutoffs.expired(event.site.as_deref(), event.time) {
                        expired += 1;
                        continue;
                    }
                }
                out.write_all(&record.value)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    log.close().await?;
    if deleted + expired > 0 {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("left out {deleted} deleted and {expired} expired events");
        }
    }
    Ok(())
}

/// Prints one line per partition, with how far the store has persisted it.
async fn stats(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = settings::load_for(args, Vec::new())?;
    let log = open(&config).await?;
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
