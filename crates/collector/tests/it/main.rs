//! Integration tests of the collector.
