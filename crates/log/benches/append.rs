//! Durable append throughput of the embedded log, side by side with the raw disk.
//!
//! `cargo bench -p oriel-log --bench append -- [--seconds N] [--dir PATH] [--only p1-w64-e1-l0]`
//!
//! For each scenario, concurrent writers append 1 KiB events for N seconds; every append waits
//! until its events are fsynced. The "raw disk" column replays the same group size the log
//! achieved as plain `write` + `fdatasync` from one thread into a pre-zeroed file, with no log at
//! all: the ceiling for that group size, without the concurrency the log adds. The report is a markdown table for `bench/README.md`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oriel_log::{EmbeddedLog, EmbeddedOptions, EventLog, Record};

const EVENT_BYTES: usize = 1024;

struct Scenario {
    partitions: u32,
    writers: usize,
    per_append: usize,
    linger_ms: u64,
}

struct Outcome {
    events_per_sec: f64,
    appends_per_sec: f64,
    events_per_sync: f64,
    mean_sync_ms: f64,
}

fn main() {
    let mut seconds = 3.0f64;
    let mut dir = PathBuf::from("target/bench-log");
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).expect("--seconds N"),
            "--dir" => dir = args.next().map(PathBuf::from).expect("--dir PATH"),
            "--only" => only = args.next(),
            _ => {} // cargo passes --bench
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    let run = Duration::from_secs_f64(seconds);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let scenario = |partitions, writers, per_append, linger_ms| Scenario { partitions, writers, per_append, linger_ms };
    let scenarios = [
        scenario(1, 1, 1, 0),
        scenario(1, 8, 1, 0),
        scenario(1, 64, 1, 0),
        scenario(2, 64, 1, 0),
        scenario(4, 64, 1, 0),
        scenario(1, 64, 1, 2),
        scenario(1, 64, 16, 0),
        scenario(4, 64, 16, 0),
    ];

    println!("durable appends of {EVENT_BYTES}-byte events, {seconds} s per scenario, dir {}\n", dir.display());
    println!(
        "| partitions | writers | events/append | linger | events/s | appends/s | events/fsync | mean fsync | raw disk events/s | log/raw |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in &scenarios {
        let name = format!("p{}-w{}-e{}-l{}", s.partitions, s.writers, s.per_append, s.linger_ms);
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        let log_dir = dir.join(&name);
        let _ = std::fs::remove_dir_all(&log_dir);
        let out = rt.block_on(run_log(&log_dir, s, run));
        let raw = raw_disk(&dir.join("raw.dat"), (out.events_per_sync.round() as usize).max(1), run);
        println!(
            "| {} | {} | {} | {} ms | {:.0} | {:.0} | {:.1} | {:.3} ms | {:.0} | {:.2} |",
            s.partitions,
            s.writers,
            s.per_append,
            s.linger_ms,
            out.events_per_sec,
            out.appends_per_sec,
            out.events_per_sync,
            out.mean_sync_ms,
            raw.0,
            out.events_per_sec / raw.0
        );
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    if only.is_some() {
        return;
    }
    println!("\nfsync latency of the raw disk (write + fdatasync into a pre-zeroed file, one thread):\n");
    println!("| bytes per sync | p50 | p99 | max |");
    println!("| ---: | ---: | ---: | ---: |");
    for events in [1usize, 16, 64, 256] {
        let (_, mut lat) = raw_disk(&dir.join("raw.dat"), events, run.min(Duration::from_secs(2)));
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] * 1000.0;
        println!("| {} | {:.3} ms | {:.3} ms | {:.3} ms |", events * EVENT_BYTES, q(0.5), q(0.99), q(1.0));
    }
    let _ = std::fs::remove_file(dir.join("raw.dat"));
}

async fn run_log(dir: &Path, s: &Scenario, run: Duration) -> Outcome {
    let options = EmbeddedOptions {
        partitions: s.partitions,
        group_commit_interval: Duration::from_millis(s.linger_ms),
        ..EmbeddedOptions::default()
    };
    let log = Arc::new(EmbeddedLog::open(dir, options).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(AtomicU64::new(0));
    let payload = bytes::Bytes::from(vec![b'x'; EVENT_BYTES - 16]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..s.writers)
        .map(|w| {
            let (log, stop, appends, payload) = (log.clone(), stop.clone(), appends.clone(), payload.clone());
            let per_append = s.per_append;
            tokio::spawn(async move {
                let key = bytes::Bytes::from(format!("party-{w:08}"));
                while !stop.load(Ordering::Relaxed) {
                    let records = (0..per_append).map(|_| Record::new(key.clone(), payload.clone(), 0)).collect();
                    log.append(records).await.unwrap();
                    appends.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = log.stats();
    log.close().await.unwrap();
    Outcome {
        events_per_sec: stats.records as f64 / elapsed,
        appends_per_sec: appends.load(Ordering::Relaxed) as f64 / elapsed,
        events_per_sync: stats.records as f64 / stats.syncs.max(1) as f64,
        mean_sync_ms: stats.sync_seconds * 1000.0 / stats.syncs.max(1) as f64,
    }
}

/// Writes groups of `events` events with `write` + `fdatasync` into a pre-zeroed file, as the log
/// does; returns events/s and each sync's seconds.
fn raw_disk(path: &Path, events: usize, run: Duration) -> (f64, Vec<f64>) {
    const FILE_BYTES: u64 = 256 << 20;
    let _ = std::fs::remove_file(path);
    let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for i in 0..FILE_BYTES / zeros.len() as u64 {
        file.write_all_at(&zeros, i * zeros.len() as u64).unwrap();
    }
    file.sync_all().unwrap();
    let group = vec![b'x'; events * EVENT_BYTES];
    let mut latencies = Vec::new();
    let mut written = 0u64;
    let mut at = 0u64;
    let started = Instant::now();
    while started.elapsed() < run {
        if at + group.len() as u64 > FILE_BYTES {
            at = 0;
        }
        file.write_all_at(&group, at).unwrap();
        at += group.len() as u64;
        let t = Instant::now();
        file.sync_data().unwrap();
        latencies.push(t.elapsed().as_secs_f64());
        written += events as u64;
    }
    (written as f64 / started.elapsed().as_secs_f64(), latencies)
}
