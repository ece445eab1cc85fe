//! Behaviour specific to the embedded log: persistence across reopen, recovery, locking.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oriel_core::MockClock;
use oriel_log::{EmbeddedLog, EmbeddedOptions, Error, EventLog, Record, RetentionPolicy};
use proptest::prelude::*;

use crate::{open_small, small_options};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn segments(dir: &Path, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(format!("partition-{partition:04}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Byte positions of the batches in a segment file, from their length fields.
fn batch_positions(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    let mut positions = Vec::new();
    let mut pos = 0usize;
    while pos + 12 <= bytes.len() {
        positions.push(pos as u64);
        pos += u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    positions
}

fn flip_byte(path: &Path, at: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

async fn values(log: &dyn EventLog, partition: u32) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.offsets(partition).await.unwrap().start;
    loop {
        let batch = log.read(partition, offset, 4096).await.unwrap();
        let Some(last) = batch.last() else { break };
        offset = last.offset + 1;
        out.extend(batch.into_iter().map(|r| (r.offset, r.value.to_vec())));
    }
    out
}

/// Ten single-record appends to one partition with large segments: ten batches in one file.
async fn ten_batches(dir: &Path) -> PathBuf {
    let options = EmbeddedOptions { partitions: 1, ..small_options(1, RetentionPolicy::default(), MockClock::new(0)) };
    // Without preallocation the layout is deterministic: one segment, batches back to back.
    let options = EmbeddedOptions { segment_bytes: 1 << 20, preallocate: false, ..options };
    let log = EmbeddedLog::open(dir, options).unwrap();
    for i in 0..10u8 {
        log.append(vec![Record::new(vec![b'k'], vec![b'a' + i; 100], 0)]).await.unwrap();
    }
    log.close().await.unwrap();
    let files = segments(dir, 0);
    assert_eq!(files.len(), 1);
    assert_eq!(batch_positions(&files[0]).len(), 10);
    files[0].clone()
}

fn reopen_large(dir: &Path) -> EmbeddedLog {
    let options = EmbeddedOptions {
        segment_bytes: 1 << 20,
        preallocate: false,
        ..small_options(1, RetentionPolicy::default(), MockClock::new(0))
    };
    EmbeddedLog::open(dir, options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_mid_batch_recovers_to_last_good_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_batches(dir.path()).await;
    let cut = batch_positions(&file)[7] + 30;
    OpenOptions::new().write(true).open(&file).unwrap().set_len(cut).unwrap();

    let log = reopen_large(dir.path());
    assert_eq!(log.recovery().truncated_bytes, 30);
    assert_eq!(log.recovery().corrupt_segments, 0);
    assert_eq!(log.offsets(0).await.unwrap().end, 7);
    let got = values(&log, 0).await;
    assert_eq!(got.len(), 7);
    assert!(got.iter().enumerate().all(|(i, (o, v))| *o == i as u64 && v[0] == b'a' + i as u8));
    let pos = log.append(vec![Record::new(vec![b'k'], b"after".to_vec(), 0)]).await.unwrap();
    assert_eq!(pos[0].offset, 7, "appends continue right after the last good batch");
    log.close().await.unwrap();
    let log = reopen_large(dir.path());
    assert_eq!(log.recovery().truncated_bytes, 0);
    assert_eq!(values(&log, 0).await.last().unwrap().1, b"after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_last_batch_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_batches(dir.path()).await;
    let last = batch_positions(&file)[9];
    flip_byte(&file, last + 60);

    let log = reopen_large(dir.path());
    assert!(log.recovery().truncated_bytes > 0);
    assert_eq!(log.offsets(0).await.unwrap().end, 9);
    assert_eq!(values(&log, 0).await.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_middle_batch_is_an_error_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let file = ten_batches(dir.path()).await;
    let size_before = fs::metadata(&file).unwrap().len();
    flip_byte(&file, batch_positions(&file)[4] + 60);

    let log = reopen_large(dir.path());
    assert_eq!(log.recovery().corrupt_segments, 1);
    assert_eq!(log.recovery().truncated_bytes, 0, "valid batches after the bad one must be kept");
    assert_eq!(fs::metadata(&file).unwrap().len(), size_before);
    assert_eq!(log.offsets(0).await.unwrap().end, 10);

    // Reading from the start serves the good records before the bad batch, and stops there.
    let first = log.read(0, 0, 1 << 20).await.unwrap();
    assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let err = log.read(0, 4, 1 << 20).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { partition: 0, .. }), "{err}");
    assert!(err.to_string().contains("crc32c mismatch"), "{err}");
    // Records after it are still there and readable.
    let after = log.read(0, 5, 1 << 20).await.unwrap();
    assert_eq!(after.first().unwrap().offset, 5);
    assert_eq!(after.len(), 5);
    assert_eq!(log.append(vec![Record::new(vec![b'k'], b"x".to_vec(), 0)]).await.unwrap()[0].offset, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_a_sealed_segment_is_reported_where_read() {
    let dir = tempfile::tempdir().unwrap();
    // Without spares, segments roll only when full, so every sealed one holds many batches (a
    // spare that is ready early replaces a growing segment after one batch, at random).
    let options = EmbeddedOptions { preallocate: false, ..small_options(1, RetentionPolicy::default(), MockClock::new(0)) };
    let log = EmbeddedLog::open(dir.path(), options).unwrap();
    for i in 0..100u32 {
        log.append(vec![Record::new(b"k".to_vec(), format!("{i:0200}").into_bytes(), 0)]).await.unwrap();
    }
    log.close().await.unwrap();
    let files = segments(dir.path(), 0);
    assert!(files.len() > 3, "small segments should have rolled: {files:?}");
    let sealed = &files[1];
    let positions = batch_positions(sealed);
    // One flip in a record, one in the length field of a later sealed segment.
    flip_byte(sealed, positions[2] + 60);
    flip_byte(&files[2], batch_positions(&files[2])[1] + 9);

    let log = open_small(dir.path(), 1);
    let mut offset = 0;
    let mut errors = 0;
    let mut seen = 0;
    while offset < log.offsets(0).await.unwrap().end {
        match log.read(0, offset, 1 << 20).await {
            Ok(batch) => {
                seen += batch.len();
                offset = batch.last().unwrap().offset + 1;
            }
            Err(Error::Corrupt { .. }) => {
                errors += 1;
                // An operator skipping a bad batch has to do it explicitly, one offset at a time.
                offset += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(errors >= 2, "both corrupt batches must be reported, got {errors}");
    assert!(seen < 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_is_refused_and_partition_count_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_small(dir.path(), 2);
    let err = EmbeddedLog::open(dir.path(), small_options(2, RetentionPolicy::default(), MockClock::new(0))).unwrap_err();
    assert!(err.to_string().contains("held by another process; stop the other oriel first"), "{err}");
    log.close().await.unwrap();
    drop(log);
    let err = EmbeddedLog::open(dir.path(), small_options(3, RetentionPolicy::default(), MockClock::new(0))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("log at {} has 2 partitions but 3 are configured; the partition count cannot change", dir.path().display())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open_small(dir.path(), 1));
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for i in 0..20 {
                    log.append(vec![Record::new(b"k".to_vec(), format!("{w}-{i}").into_bytes(), 0)]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.records, 64 * 20);
    assert!(stats.syncs < stats.records / 2, "group commit should share syncs: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_append_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_small(dir.path(), 1);
    let err = log.append(vec![Record::new(Vec::new(), vec![0u8; (1 << 20) + 1], 0)]).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(log.offsets(0).await.unwrap().end, 0);
}

#[test]
fn consumer_positions_survive_reopen() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = open_small(dir.path(), 1);
        log.register_consumer("store").await.unwrap();
        log.append(vec![Record::new(b"k".to_vec(), b"v".to_vec(), 0)]).await.unwrap();
        log.commit_consumer("store", 0, 1).await.unwrap();
        log.close().await.unwrap();
        drop(log);
        let log = open_small(dir.path(), 1);
        assert_eq!(log.consumer_position("store", 0).await.unwrap(), Some(1));
    });
}

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<(u8, Vec<u8>)>),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::collection::vec((0u8..8, prop::collection::vec(any::<u8>(), 0..600)), 1..12).prop_map(Step::Append),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any sequence of appends, with reopens in between, reads back identically.
    #[test]
    fn appends_read_back_identically_across_reopen(partitions in 1u32..4, steps in prop::collection::vec(step(), 1..25)) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut log = open_small(dir.path(), partitions);
            let mut model: Vec<Vec<(u64, Vec<u8>)>> = vec![Vec::new(); partitions as usize];
            for step in steps {
                match step {
                    Step::Append(records) => {
                        let values: Vec<Vec<u8>> = records.iter().map(|(_, v)| v.clone()).collect();
                        let batch = records.into_iter().map(|(k, v)| Record::new(vec![k], v, 7)).collect();
                        for (pos, value) in log.append(batch).await.unwrap().into_iter().zip(values) {
                            model[pos.partition as usize].push((pos.offset, value));
                        }
                    }
                    Step::Reopen => {
                        log.close().await.unwrap();
                        drop(log);
                        log = open_small(dir.path(), partitions);
                        assert_eq!(log.recovery().truncated_bytes, 0);
                    }
                }
            }
            log.close().await.unwrap();
            drop(log);
            let log = open_small(dir.path(), partitions);
            for (p, want) in model.iter_mut().enumerate() {
                want.sort();
                assert_eq!(&values(&log, p as u32).await, want);
            }
        });
    }
}

/// Regression: `close` returned while the spare segment was still being zeroed; a log opened
/// again on the directory could take that file as a segment, append to it, and have the late
/// zeros overwrite the acknowledged batch.
#[test]
fn close_leaves_no_thread_writing_into_the_directory() {
    runtime().block_on(async {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let options = EmbeddedOptions {
                segment_bytes: 256 << 20,
                preallocate: true,
                ..small_options(1, RetentionPolicy::default(), MockClock::new(0))
            };
            let log = EmbeddedLog::open(dir.path(), options).unwrap();
            log.append(vec![Record::new(b"k".to_vec(), b"v".to_vec(), 0)]).await.unwrap();
            log.close().await.unwrap();
            let partition = dir.path().join("partition-0000");
            let listing = || {
                let mut files: Vec<(String, u64)> = std::fs::read_dir(&partition)
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
                    })
                    .collect();
                files.sort();
                files
            };
            let after_close = listing();
            assert!(!after_close.iter().any(|(name, _)| name.ends_with(".tmp")), "a half-zeroed spare is left: {after_close:?}");
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert_eq!(listing(), after_close, "something still writes into the closed log's directory");
        }
    });
}
