//! `oriel gen`: writes generated traffic to a file, or sends it to a running collector.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use oriel_collector::enrich::{Client, Enricher};
use oriel_collector::wire::api::{ApiBatch, ApiEvent};
use oriel_collector::wire::tag::{TagBatch, TagEvent};
use oriel_core::config::CollectorConfig;
use oriel_core::{Clock, Event, SystemClock};
use oriel_store::schema::{BatchBuilder, events_schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::sync::Semaphore;

use crate::generate::{Generated, Generator, Plan};
use crate::progress;

/// Options of `oriel gen`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenArgs {
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Days of history the events span (ending now, or at --end).
    #[arg(long, default_value_t = 7.0)]
    days: f64,
    /// End of the span, as an RFC 3339 time (default: now).
    #[arg(long)]
    end: Option<String>,
    /// Number of sites (1 to 8).
    #[arg(long, default_value_t = 3)]
    sites: usize,
    /// Random seed; the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write the events to this file: `.jsonl` (one event per line, for `oriel import`) or
    /// `.parquet` (the events table's schema).
    #[arg(long, conflicts_with = "url")]
    out: Option<PathBuf>,
    /// Send the events to the collector at this URL instead (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    url: Option<String>,
    /// Write key for `POST /api/v1/events`; without one, events go to `POST /e` as a tag sends
    /// them, with the visitor's address in X-Forwarded-For (make 127.0.0.1 a trusted proxy).
    #[arg(long, requires = "url")]
    key: Option<String>,
    /// Requests in flight at once when sending.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Most events per second when sending; 0 = as fast as the collector takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

pub(crate) fn run(args: GenArgs) -> anyhow::Result<()> {
    let end_ms = match &args.end {
        Some(text) => oriel_collector::timestamp::parse_rfc3339_ms(text)
            .with_context(|| format!("--end {text:?} is not an RFC 3339 time such as 2026-11-27T00:00:00Z"))?,
        None => SystemClock.now_ms(),
    };
    if !(args.days > 0.0 && args.days <= 3650.0) {
        bail!("--days must be between 0 and 3650");
    }
    let plan = Plan { events: args.events, days: args.days, end_ms, sites: args.sites, seed: args.seed };
    let generator = Generator::new(plan);
    let started = Instant::now();
    let written = match (&args.out, &args.url) {
        (Some(path), None) => write_file(path, generator, args.events)?,
        (None, Some(url)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(send(url, args.key.as_deref(), generator, &args))?
        }
        _ => bail!("give --out FILE or --url URL"),
    };
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("generated {written} events in {secs:.1} s ({:.0} events/s)", written as f64 / secs.max(1e-9));
    }
    Ok(())
}

/// Fills what the collector would add, so a file import looks like collected traffic.
fn enrich(enricher: &Enricher, generated: Generated) -> Event {
    let mut event = generated.event;
    let client = Client { ip: generated.ip, user_agent: generated.user_agent.to_string() };
    enricher.enrich(&mut event, &client, oriel_core::config::IpHandling::Anonymize);
    event.country = Some(generated.country.to_string());
    event
}

fn write_file(path: &Path, generator: Generator, total: u64) -> anyhow::Result<u64> {
    let enricher = Enricher::new(&CollectorConfig::default(), None).context("user agent rules")?;
    let bar = progress::bar(total, "generating");
    let parquet = path.extension().is_some_and(|e| e == "parquet");
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut count = 0u64;
    if parquet {
        let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?)).build();
        let mut writer = ArrowWriter::try_new(file, events_schema(), Some(props))?;
        let mut builder = BatchBuilder::new();
        for generated in generator {
            builder.push(&enrich(&enricher, generated))?;
            count += 1;
            if builder.len() == 65_536 {
                writer.write(&builder.finish()?)?;
                bar.set_position(count);
            }
        }
        if !builder.is_empty() {
            writer.write(&builder.finish()?)?;
        }
        writer.close()?;
    } else {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for generated in generator {
            serde_json::to_writer(&mut out, &enrich(&enricher, generated))?;
            out.write_all(b"\n")?;
            count += 1;
            if count.is_multiple_of(65_536) {
                bar.set_position(count);
            }
        }
        out.flush()?;
    }
    bar.finish_and_clear();
    Ok(count)
}

/// Sends events in per-visitor batches, as browsers do, with bounded concurrency; retries a 503.
async fn send(url: &str, key: Option<&str>, generator: Generator, args: &GenArgs) -> anyhow::Result<u64> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let base = url.trim_end_matches('/').to_string();
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let bar = progress::bar(args.events, "sending");
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buffered: HashMap<String, Vec<Generated>> = HashMap::new();
    let mut buffered_count = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    let max_batch = if key.is_some() { 100 } else { 20 };
    let flush = |batch: Vec<Generated>, tasks: &mut tokio::task::JoinSet<anyhow::Result<usize>>| {
        let (client, base, slots, key) = (client.clone(), base.clone(), Arc::clone(&slots), key.map(str::to_string));
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await?;
            post(&client, &base, key.as_deref(), &batch).await
        });
    };
    for generated in generator {
        let visitor = generated.event.party_id.clone().unwrap_or_default();
        let batch = buffered.entry(if key.is_some() { String::new() } else { visitor }).or_default();
        batch.push(generated);
        buffered_count += 1;
        if batch.len() >= max_batch {
            let full = std::mem::take(batch);
            buffered_count -= full.len();
            sent += full.len() as u64;
            flush(full, &mut tasks);
        }
        if buffered_count >= 2_000 {
            for (_, batch) in buffered.drain() {
                sent += batch.len() as u64;
                flush(batch, &mut tasks);
            }
            buffered_count = 0;
        }
        while tasks.len() > args.concurrency * 4 {
            if let Some(done) = tasks.join_next().await {
                done??;
            }
        }
        bar.set_position(sent);
        if args.rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    for (_, batch) in buffered.drain() {
        sent += batch.len() as u64;
        flush(batch, &mut tasks);
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    bar.finish_and_clear();
    Ok(sent)
}

async fn post(client: &reqwest::Client, base: &str, key: Option<&str>, batch: &[Generated]) -> anyhow::Result<usize> {
    let Some(first) = batch.first() else { return Ok(0) };
    let props = |e: &Event| e.props.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    let request = || match key {
        Some(key) => {
            let events = batch
                .iter()
                .map(|g| {
                    let e = &g.event;
                    ApiEvent {
                        event_type: e.event_type.clone(),
                        event_id: e.event_id.clone(),
                        party_id: e.party_id.clone(),
                        session_id: e.session_id.clone(),
                        page_view_id: e.page_view_id.clone(),
                        user_id: e.user_id.clone(),
                        client_time: e.client_time,
                        url: e.url.clone(),
                        referrer: e.referrer.clone(),
                        title: e.title.clone(),
                        language: e.language.clone(),
                        props: props(e),
                        ip: Some(g.ip.to_string()),
                        user_agent: Some(g.user_agent.to_string()),
                    }
                })
                .collect();
            client.post(format!("{base}/api/v1/events")).bearer_auth(key).json(&ApiBatch { events })
        }
        None => {
            let e = &first.event;
            let events = batch
                .iter()
                .map(|g| {
                    let e = &g.event;
                    TagEvent {
                        id: e.event_id.clone(),
                        t: e.event_type.clone(),
                        ts: e.client_time.map(|t| t as f64),
                        pv: e.page_view_id.clone(),
                        url: e.url.clone(),
                        referrer: e.referrer.clone(),
                        ti: e.title.clone(),
                        nv: e.is_new_party,
                        fs: e.is_first_in_session,
                        p: props(e),
                        em: e.engaged_ms.map(|v| v as f64),
                        sd: e.scroll_depth.map(f64::from),
                    }
                })
                .collect();
            let body = TagBatch {
                site: e.site.clone(),
                vid: e.party_id.clone(),
                sid: e.session_id.clone(),
                uid: e.user_id.clone(),
                sw: e.screen_width.map(f64::from),
                sh: e.screen_height.map(f64::from),
                vw: e.viewport_width.map(f64::from),
                vh: e.viewport_height.map(f64::from),
                dpr: e.pixel_ratio,
                lang: e.language.clone(),
                wd: None,
                ev: events,
            };
            client
                .post(format!("{base}/e"))
                .header("content-type", "text/plain;charset=UTF-8")
                .header("user-agent", first.user_agent)
                .header("x-forwarded-for", first.ip.to_string())
                .body(serde_json::to_string(&body).unwrap_or_default())
        }
    };
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let response = request().send().await.with_context(|| format!("cannot reach the collector at {base}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(batch.len());
        }
        if status.as_u16() == 503 && attempt < 50 {
            tokio::time::sleep(Duration::from_millis(100 * attempt.min(10))).await;
            continue;
        }
        let body = response.text().await.unwrap_or_default();
        bail!("the collector refused a batch with {status}: {body}");
    }
}
