//! Integration tests of the event log: one binary, as for every crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // Tests may unwrap and print (STYLE.md 5).

mod conformance;
mod crash;
mod embedded;

use std::sync::Arc;
use std::time::Duration;

use oriel_core::MockClock;
use oriel_log::{EmbeddedLog, EmbeddedOptions, RetentionPolicy};

/// Embedded-log options for tests: small segments so rolling and retention are exercised.
pub(crate) fn small_options(partitions: u32, retention: RetentionPolicy, clock: MockClock) -> EmbeddedOptions {
    EmbeddedOptions {
        partitions,
        segment_bytes: 4096,
        group_commit_interval: Duration::ZERO,
        max_append_bytes: 1 << 20,
        preallocate: true,
        retention,
        consumers: Vec::new(),
        clock: Arc::new(clock),
    }
}

/// Opens an embedded log in `dir` with [`small_options`].
pub(crate) fn open_small(dir: &std::path::Path, partitions: u32) -> EmbeddedLog {
    EmbeddedLog::open(dir, small_options(partitions, RetentionPolicy::default(), MockClock::new(0))).unwrap()
}
