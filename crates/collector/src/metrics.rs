//! Metric names of the collector.

/// Counter, label `source`: events stored in the log.
pub const EVENTS: &str = "oriel_collector_events_total";
/// Counter, labels `source` and `reason`: requests or events refused (4xx, or counted only where
/// the Divolte protocol requires a 200).
pub(crate) const REJECTED: &str = "oriel_collector_rejected_total";
/// Counter, label `flag` (`bot`, `duplicate`, `corrupt`): events flagged.
pub(crate) const FLAGGED: &str = "oriel_collector_flagged_total";
/// Counter, label `flag`: flagged events dropped by configuration.
pub(crate) const DROPPED: &str = "oriel_collector_dropped_total";
/// Counter: requests answered 503 because the pipeline was full.
pub(crate) const UNAVAILABLE: &str = "oriel_collector_unavailable_total";
/// Gauge: events accepted and not yet durable.
pub(crate) const PENDING: &str = "oriel_collector_pending_events";

/// Describes the collector's metrics and registers the counters at zero.
pub fn describe() {
    use ::metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
    describe_counter!(EVENTS, Unit::Count, "events stored in the event log, by source");
    describe_counter!(REJECTED, Unit::Count, "requests or events refused, by source and reason");
    describe_counter!(FLAGGED, Unit::Count, "events flagged as bot, duplicate or corrupt");
    describe_counter!(DROPPED, Unit::Count, "flagged events dropped by configuration");
    describe_counter!(UNAVAILABLE, Unit::Count, "requests answered 503 because the pipeline was full");
    describe_gauge!(PENDING, Unit::Count, "events accepted and not yet durable");
    for source in ["tag", "pixel", "divolte", "api"] {
        counter!(EVENTS, "source" => source).increment(0);
    }
    counter!(UNAVAILABLE).increment(0);
    gauge!(PENDING).set(0.0);
}

/// Counts one refusal.
pub fn rejected(source: &'static str, reason: &'static str) {
    ::metrics::counter!(REJECTED, "source" => source, "reason" => reason).increment(1);
}
