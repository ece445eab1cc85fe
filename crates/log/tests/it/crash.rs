//! Crash safety: a child process appends under concurrent load and is killed with SIGKILL at
//! random moments. After each kill, every append that had returned success must be read back
//! exactly once, at the position it was acknowledged with, in order, and the log must accept
//! new appends.
//!
//! The child is this same test binary, re-run with `ORIEL_CRASH_CHILD_DIR` set so that only
//! [`crash_child_entry_point`] does work. It prints one `ack` line per record after `append`
//! returned, so the parent learns exactly what was acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use oriel_core::MockClock;
use oriel_log::{EmbeddedLog, EmbeddedOptions, EventLog, Record, RetentionPolicy};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "ORIEL_CRASH_CHILD_DIR";
const RUN_ENV: &str = "ORIEL_CRASH_CHILD_RUN";
const PARTITIONS: u32 = 3;
const WRITERS: u32 = 16;
const KILLS: u32 = 20;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        // Small segments, so kills also land during segment rolls.
        segment_bytes: 64 * 1024,
        ..crate::small_options(PARTITIONS, RetentionPolicy::default(), MockClock::new(0))
    }
}

/// Not a test of its own: the body of the child process when the crash test runs it.
#[test]
fn crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let run: u32 = std::env::var(RUN_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let log = Arc::new(EmbeddedLog::open(&dir, options()).unwrap());
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        println!("ready");
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = Arc::clone(&log);
                let out = Arc::clone(&out);
                tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(run * 1000 + w));
                    for seq in 0u64.. {
                        let n = rng.random_range(1..8);
                        let records: Vec<Record> = (0..n)
                            .map(|i| {
                                let id = format!("{run}/{w}/{seq}/{i}");
                                let pad = "x".repeat(rng.random_range(10..400));
                                let key = format!("party-{}", rng.random_range(0..50));
                                Record::new(key.into_bytes(), format!("{id} {pad}").into_bytes(), 0)
                            })
                            .collect();
                        let ids: Vec<String> = (0..n).map(|i| format!("{run}/{w}/{seq}/{i}")).collect();
                        let positions = log.append(records).await.unwrap();
                        let mut out = out.lock().unwrap();
                        for (pos, id) in positions.iter().zip(ids) {
                            writeln!(out, "ack {} {} {id}", pos.partition, pos.offset).unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = rand::rng().random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let exe = std::env::current_exe().unwrap();
    // Every acknowledged record: id -> (partition, offset).
    let mut acked: HashMap<String, (u32, u64)> = HashMap::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    for run in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash::crash_child_entry_point", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(RUN_ENV, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack, acking) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ack ") {
                    let _ = first_ack.send(());
                }
                lines.push(line);
            }
            lines
        });
        // Kill at a random moment once appends are being acknowledged: a fixed delay from the
        // spawn lands before the first ack on a loaded machine, and then the run proves nothing.
        acking.recv_timeout(Duration::from_secs(60)).expect("the child acknowledged nothing within a minute");
        std::thread::sleep(Duration::from_millis(rng.random_range(50..500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert!(lines.iter().any(|l| l.ends_with("ready")), "run {run}: the child never opened the log");
        let mut new_acks = 0;
        for line in lines.iter().filter(|l| l.starts_with("ack ")) {
            let mut parts = line.split(' ').skip(1);
            let (Some(p), Some(o), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                continue; // the last line may be cut off by the kill
            };
            let (Ok(p), Ok(o)) = (p.parse(), o.parse()) else { continue };
            assert!(acked.insert(id.to_string(), (p, o)).is_none(), "{id} acknowledged twice");
            new_acks += 1;
        }
        assert!(new_acks > 0, "run {run}: no append was acknowledged before the kill");

        rt.block_on(async {
            let log = EmbeddedLog::open(dir.path(), options()).unwrap();
            assert_eq!(log.recovery().corrupt_segments, 0, "run {run}: a crash must never look like corruption");
            let mut found: HashMap<String, (u32, u64)> = HashMap::new();
            for p in 0..PARTITIONS {
                // Per writer and run, the sequence numbers in offset order never go backwards.
                let mut last_seq: BTreeMap<(u32, u32), u64> = BTreeMap::new();
                let mut offset = 0;
                loop {
                    let batch = log.read(p, offset, 1 << 20).await.unwrap();
                    let Some(last) = batch.last() else { break };
                    offset = last.offset + 1;
                    for r in batch {
                        let text = String::from_utf8(r.value.to_vec()).unwrap();
                        let id = text.split(' ').next().unwrap().to_string();
                        if id.starts_with("after/") {
                            continue;
                        }
                        let f: Vec<u64> = id.split('/').map(|x| x.parse().unwrap()).collect();
                        let key = (f[0] as u32, f[1] as u32);
                        assert!(last_seq.get(&key).is_none_or(|&s| s <= f[2]), "run {run}: {id} out of order");
                        last_seq.insert(key, f[2]);
                        assert!(found.insert(id.clone(), (p, r.offset)).is_none(), "run {run}: {id} stored twice");
                    }
                }
            }
            for (id, at) in &acked {
                assert_eq!(found.get(id), Some(at), "run {run}: acknowledged record {id} lost or moved");
            }
            // The log still accepts appends, and they read back.
            let pos = log.append(vec![Record::new(b"k".to_vec(), format!("after/{run}").into_bytes(), 0)]).await.unwrap()[0];
            let back = log.read(pos.partition, pos.offset, 100).await.unwrap();
            assert_eq!(back[0].value, format!("after/{run}").into_bytes());
            log.close().await.unwrap();
        });
    }
    println!("{} acknowledged records checked over {KILLS} kills", acked.len());
}
