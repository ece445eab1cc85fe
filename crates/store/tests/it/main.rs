//! Integration tests of the store over a real embedded log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Tests may unwrap and print (STYLE.md 5).

mod analytics;
mod bounds;
mod druid;
mod fuzz;
mod lifecycle;
mod objects;
mod report;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use oriel_core::{Event, MockClock};
use oriel_log::{EmbeddedLog, EmbeddedOptions, EventLog, Record};
use oriel_store::segment::Granularity;
use oriel_store::{Store, StoreOptions};
use serde_json::Value;

/// A fixed pseudo-random sequence (xorshift) from `seed`: each call gives a number below its
/// argument, the same numbers on every run.
pub(crate) fn pseudo_random(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    }
}

/// 2026-11-27T09:00:00Z.
pub(crate) const T0: i64 = 1_795_770_000_000;

/// A log and a store in one temporary directory.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) store: Arc<Store>,
    pub(crate) clock: MockClock,
}

pub(crate) fn options(dir: &std::path::Path, clock: &MockClock) -> StoreOptions {
    StoreOptions {
        dir: dir.join("store"),
        granularity: Granularity::Hour,
        flush_interval: Duration::from_secs(3600),
        flush_rows: 1_000_000,
        compaction_min_segments: 3,
        housekeeping_interval: Duration::from_secs(3600),
        retention: oriel_store::expiry::RetentionPolicy::default(),
        live_buffer_bytes: 256 << 20,
        query: oriel_store::QueryOptions { memory_bytes: 1 << 30, ..oriel_store::QueryOptions::default() },
        clock: Arc::new(clock.clone()),
        partitions: None,
        retired_grace: Duration::ZERO,
        object_store: None,
    }
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::with_options(|_| {}).await
    }

    /// A fixture whose store options `edit` changes.
    pub(crate) async fn with_options(edit: impl FnOnce(&mut StoreOptions)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = MockClock::new(T0);
        let log = Self::open_log(dir.path());
        let mut options = options(dir.path(), &clock);
        edit(&mut options);
        let store = Store::open(options, Some(log.clone())).await.unwrap();
        Self { dir, log, store, clock }
    }

    pub(crate) fn open_log(dir: &std::path::Path) -> Arc<dyn EventLog> {
        let options = EmbeddedOptions {
            partitions: 2,
            preallocate: false,
            consumers: vec![oriel_store::CONSUMER.into()],
            ..EmbeddedOptions::default()
        };
        Arc::new(EmbeddedLog::open(dir.join("log"), options).unwrap())
    }

    /// Closes and reopens both, as a restart does.
    pub(crate) async fn restart(self) -> Self {
        self.store.close().await.unwrap();
        self.log.close().await.unwrap();
        let Self { dir, clock, .. } = self;
        let log = Self::open_log(dir.path());
        let store = Store::open(options(dir.path(), &clock), Some(log.clone())).await.unwrap();
        Self { dir, log, store, clock }
    }

    /// Appends events to the log, as the collector does.
    pub(crate) async fn send(&self, events: &[Event]) {
        let records = events
            .iter()
            .map(|e| Record::new(e.party_id.clone().unwrap_or_default().into_bytes(), serde_json::to_vec(e).unwrap(), e.time))
            .collect();
        self.log.append(records).await.unwrap();
    }

    /// Runs SQL and returns rows as JSON arrays.
    pub(crate) async fn sql(&self, query: &str) -> Vec<Vec<Value>> {
        let result = self.store.engine().collect(query).await.unwrap_or_else(|e| panic!("{query}: {e}"));
        oriel_store::query::values::rows(&result).into_iter().map(|r| r.as_array().unwrap().clone()).collect()
    }

    /// The single number a query returns.
    pub(crate) async fn count(&self, query: &str) -> i64 {
        self.sql(query).await[0][0].as_i64().unwrap()
    }

    /// Waits until `SELECT count(*)` reaches `n`.
    pub(crate) async fn wait_for_count(&self, n: i64) {
        for _ in 0..500 {
            if self.count("SELECT count(*) FROM events").await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("count never reached {n}: {}", self.count("SELECT count(*) FROM events").await);
    }
}

/// An event of visitor `party` on `site` at `time`.
pub(crate) fn event(i: usize, site: &str, party: &str, time: i64) -> Event {
    Event {
        time,
        site: Some(site.into()),
        event_id: Some(format!("e{i}")),
        event_type: if i.is_multiple_of(3) { "signup".into() } else { "pageView".into() },
        party_id: Some(party.into()),
        session_id: Some(format!("{party}-s")),
        path: Some(format!("/p{}", i % 5)),
        country: Some(["NL", "US", "DE"][i % 3].into()),
        ..Event::default()
    }
}
