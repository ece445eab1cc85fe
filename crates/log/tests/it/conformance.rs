//! The contract every [`EventLog`] implementation must honour, run once per implementation.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use oriel_core::MockClock;
use oriel_core::config::KafkaLogConfig;
use oriel_log::{EmbeddedLog, EmbeddedOptions, Error, EventLog, KafkaLog, MemoryLog, Record, RetentionPolicy};
use oriel_testkit::kafka::{Broker, unique_topic};

/// Builds a fresh log of one implementation with the consumer `store` registered. The returned
/// guard keeps its files alive.
type Factory = fn(u32, RetentionPolicy, MockClock) -> (Arc<dyn EventLog>, Option<tempfile::TempDir>);

fn memory(partitions: u32, retention: RetentionPolicy, clock: MockClock) -> (Arc<dyn EventLog>, Option<tempfile::TempDir>) {
    let log = MemoryLog::with_retention(partitions, retention, Arc::new(clock));
    log.register_consumer("store");
    (Arc::new(log), None)
}

fn embedded(partitions: u32, retention: RetentionPolicy, clock: MockClock) -> (Arc<dyn EventLog>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { consumers: vec!["store".into()], ..crate::small_options(partitions, retention, clock) };
    let log = EmbeddedLog::open(dir.path(), options).unwrap();
    (Arc::new(log), Some(dir))
}

/// A topic of its own on the shared broker. Retention is the brokers' (`retention.ms`), so the
/// policy and clock do not apply.
fn kafka(partitions: u32, _: RetentionPolicy, _: MockClock) -> (Arc<dyn EventLog>, Option<tempfile::TempDir>) {
    let config = KafkaLogConfig {
        brokers: Broker::shared().address.clone(),
        topic: unique_topic("conformance"),
        partitions,
        linger_ms: 0,
        ..KafkaLogConfig::default()
    };
    let log =
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(KafkaLog::open(&config, &["store"]))).unwrap();
    (Arc::new(log), None)
}

/// Runs each named check against the named implementations, as its own test.
macro_rules! conformance {
    ($($module:ident: $factory:ident),+; $checks:tt) => {
        $(conformance!(@one $module $factory $checks);)+
    };
    (@one $module:ident $factory:ident [$($check:ident),* $(,)?]) => {
        mod $module {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(super::$factory).await })*
        }
    };
}

conformance!(
    memory_log: memory, embedded_log: embedded, kafka_log: kafka;
    [
    appends_read_back_in_order,
    same_key_stays_in_one_partition,
    read_honours_offset_and_size,
    wait_for_wakes_on_append,
    concurrent_appends_get_unique_positions,
    bad_partition_is_an_error,
    consumers_keep_positions,
    closed_log_refuses_work,
    ]
);

// Retention is the log's own only where it keeps the data.
conformance!(
    memory_log_retention: memory, embedded_log_retention: embedded;
    [retention_spares_unprocessed_records, retention_by_size]
);

fn rec(key: &str, value: String, ts: i64) -> Record {
    Record::new(key.as_bytes().to_vec(), value.into_bytes(), ts)
}

async fn read_all(log: &dyn EventLog, partition: u32) -> Vec<oriel_log::StoredRecord> {
    let mut out = Vec::new();
    let mut offset = log.offsets(partition).await.unwrap().start;
    loop {
        let batch = log.read(partition, offset, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        offset = last.offset + 1;
        out.extend(batch);
    }
    out
}

async fn appends_read_back_in_order(make: Factory) {
    let (log, _dir) = make(3, RetentionPolicy::default(), MockClock::new(0));
    assert!(log.append(Vec::new()).await.unwrap().is_empty());
    let mut expected: BTreeMap<u32, Vec<(u64, String)>> = BTreeMap::new();
    for round in 0..20 {
        let records: Vec<Record> =
            (0..7).map(|i| rec(&format!("k{}", (round + i) % 5), format!("v{round}-{i}"), round)).collect();
        let values: Vec<String> = (0..7).map(|i| format!("v{round}-{i}")).collect();
        let positions = log.append(records).await.unwrap();
        assert_eq!(positions.len(), 7);
        for (pos, value) in positions.into_iter().zip(values) {
            expected.entry(pos.partition).or_default().push((pos.offset, value));
        }
    }
    for partition in 0..3 {
        let mut want = expected.remove(&partition).unwrap_or_default();
        want.sort();
        let got: Vec<(u64, String)> = read_all(log.as_ref(), partition)
            .await
            .into_iter()
            .map(|r| (r.offset, String::from_utf8(r.value.to_vec()).unwrap()))
            .collect();
        assert_eq!(got, want, "partition {partition}");
        // Offsets are dense from 0.
        assert!(got.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        assert_eq!(log.offsets(partition).await.unwrap().end, got.len() as u64);
    }
}

async fn same_key_stays_in_one_partition(make: Factory) {
    let (log, _dir) = make(4, RetentionPolicy::default(), MockClock::new(0));
    let mut partitions = HashSet::new();
    let mut last = None;
    for i in 0..30 {
        let pos = log.append(vec![rec("visitor-1", format!("{i}"), 0)]).await.unwrap()[0];
        partitions.insert(pos.partition);
        assert!(last.is_none_or(|l| pos.offset > l));
        last = Some(pos.offset);
    }
    assert_eq!(partitions.len(), 1);
    let p = *partitions.iter().next().unwrap();
    assert_eq!(p, oriel_log::partition_for(b"visitor-1", 4));
}

async fn read_honours_offset_and_size(make: Factory) {
    let (log, _dir) = make(1, RetentionPolicy::default(), MockClock::new(0));
    for i in 0..50 {
        log.append(vec![rec("k", format!("{i:0100}"), 0)]).await.unwrap();
    }
    let from_middle = log.read(0, 20, 1 << 20).await.unwrap();
    assert_eq!(from_middle.first().unwrap().offset, 20);
    assert_eq!(from_middle.len(), 30);
    let small = log.read(0, 5, 1).await.unwrap();
    assert!(!small.is_empty() && small.len() < 50, "read with a tiny budget returned {}", small.len());
    assert_eq!(small[0].offset, 5);
    assert!(log.read(0, 50, 1000).await.unwrap().is_empty(), "reading at the end gives nothing");
}

async fn wait_for_wakes_on_append(make: Factory) {
    let (log, _dir) = make(1, RetentionPolicy::default(), MockClock::new(0));
    let early = tokio::time::timeout(Duration::from_millis(100), log.wait_for(0, 0)).await;
    assert!(early.is_err(), "wait_for must not return before data exists");
    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for(0, 0).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.append(vec![rec("k", "x".into(), 0)]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap().unwrap();
    // Data that already exists resolves at once.
    tokio::time::timeout(Duration::from_secs(1), log.wait_for(0, 0)).await.unwrap().unwrap();
}

async fn concurrent_appends_get_unique_positions(make: Factory) {
    let (log, _dir) = make(2, RetentionPolicy::default(), MockClock::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..40 {
                    let records = (0..3).map(|j| rec(&format!("w{w}"), format!("{w}/{i}/{j}"), 0)).collect();
                    got.extend(log.append(records).await.unwrap());
                }
                got
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        for pos in task.await.unwrap() {
            assert!(all.insert(pos), "position {pos:?} handed out twice");
        }
    }
    assert_eq!(all.len(), 16 * 40 * 3);
    let stored: usize = read_all(log.as_ref(), 0).await.len() + read_all(log.as_ref(), 1).await.len();
    assert_eq!(stored, all.len());
}

async fn bad_partition_is_an_error(make: Factory) {
    let (log, _dir) = make(2, RetentionPolicy::default(), MockClock::new(0));
    assert!(matches!(log.read(2, 0, 10).await, Err(Error::NoSuchPartition { partition: 2, count: 2 })));
    assert!(matches!(log.offsets(9).await, Err(Error::NoSuchPartition { .. })));
}

/// Old records are deleted only below what every registered consumer has processed.
async fn retention_spares_unprocessed_records(make: Factory) {
    let clock = MockClock::new(1_000_000);
    let policy = RetentionPolicy { max_age_ms: Some(1000), max_bytes: None };
    let (log, _dir) = make(1, policy, clock.clone());
    for i in 0..200 {
        log.append(vec![rec("k", format!("{i:0200}"), 1_000_000)]).await.unwrap();
    }
    clock.advance(10_000);
    // The consumer has processed nothing: everything stays although it is old.
    assert_eq!(log.enforce_retention().await.unwrap().records_removed, 0);
    assert_eq!(read_all(log.as_ref(), 0).await.len(), 200);

    log.commit_consumer("store", 0, 120).await.unwrap();
    let report = log.enforce_retention().await.unwrap();
    assert!(report.records_removed > 0, "old processed records should go");
    let range = log.offsets(0).await.unwrap();
    assert!(range.start <= 120, "retention deleted unprocessed offset(s): start is {}", range.start);
    let remaining = read_all(log.as_ref(), 0).await;
    assert_eq!(remaining.first().unwrap().offset, range.start);
    assert_eq!(remaining.last().unwrap().offset, 199);
    assert!(matches!(log.read(0, 0, 10).await, Err(Error::OffsetRemoved { .. })));

    // Records within the age limit stay even when processed.
    let clock_now = 1_000_000 + 10_000;
    log.append(vec![rec("k", "fresh".into(), clock_now)]).await.unwrap();
    log.commit_consumer("store", 0, 201).await.unwrap();
    log.enforce_retention().await.unwrap();
    let last = read_all(log.as_ref(), 0).await.pop().unwrap();
    assert_eq!(&last.value[..], b"fresh");
}

async fn retention_by_size(make: Factory) {
    let policy = RetentionPolicy { max_age_ms: None, max_bytes: Some(10_000) };
    let (log, _dir) = make(1, policy, MockClock::new(0));
    for i in 0..300 {
        log.append(vec![rec("k", format!("{i:0200}"), 0)]).await.unwrap();
    }
    // The consumer has processed everything: only the size limit decides.
    log.commit_consumer("store", 0, 300).await.unwrap();
    let report = log.enforce_retention().await.unwrap();
    assert!(report.records_removed > 0);
    let remaining = read_all(log.as_ref(), 0).await;
    let bytes: usize = remaining.iter().map(|r| r.value.len() + r.key.len()).sum();
    assert!(bytes <= 10_000 + 8192, "{bytes} bytes remain");
    assert_eq!(remaining.last().unwrap().offset, 299);
}

async fn consumers_keep_positions(make: Factory) {
    let (log, _dir) = make(2, RetentionPolicy::default(), MockClock::new(0));
    assert_eq!(log.consumer_position("nobody", 0).await.unwrap(), None);
    assert_eq!(log.consumer_position("store", 0).await.unwrap(), Some(0), "registered at the start");
    let pos = log.append(vec![rec("a", "1".into(), 0), rec("a", "2".into(), 0)]).await.unwrap();
    let p = pos[0].partition;
    log.commit_consumer("store", p, 2).await.unwrap();
    assert_eq!(log.consumer_position("store", p).await.unwrap(), Some(2));
    assert!(log.commit_consumer("store", p, 3).await.is_err(), "commit past the end must fail");
    assert!(log.consumer_position("store", 7).await.is_err(), "no such partition");
}

async fn closed_log_refuses_work(make: Factory) {
    let (log, _dir) = make(1, RetentionPolicy::default(), MockClock::new(0));
    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.wait_for(0, 5).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.close().await.unwrap();
    assert!(matches!(log.append(vec![rec("k", "x".into(), 0)]).await, Err(Error::Closed)));
    let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(matches!(woken, Err(Error::Closed)));
}
