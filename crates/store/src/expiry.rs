//! Per-site retention: how many days each site's events are kept, and the oldest event time
//! that survives at a given moment.
//!
//! Retention is counted in whole UTC days: with `retention_days = 30`, today and the 30 days
//! before it are kept, and an event expires the moment its day falls out of that window. Day
//! boundaries keep the work bounded: a segment is rewritten (or dropped) at most once per day
//! for retention, instead of on every housekeeping turn as an instant-exact cutoff would need.

use std::collections::BTreeMap;

use oriel_core::config::Config;

const DAY_MS: i64 = 86_400_000;

/// How many days each site's events are kept; 0 keeps them forever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days for events of sites without their own setting (and of events without a site).
    pub default_days: u32,
    /// Sites with their own setting.
    pub sites: BTreeMap<String, u32>,
}

impl RetentionPolicy {
    /// `store.retention_days` and every `sites[].retention_days`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            default_days: config.store.retention_days,
            sites: config.sites.iter().filter_map(|s| Some((s.id.clone(), s.retention_days?))).collect(),
        }
    }

    /// Whether every event is kept forever.
    pub fn keeps_everything(&self) -> bool {
        self.default_days == 0 && self.sites.values().all(|&d| d == 0)
    }

    /// The shortest retention in force, in days; `None` when everything is kept forever.
    pub fn shortest_days(&self) -> Option<u32> {
        std::iter::once(self.default_days).chain(self.sites.values().copied()).filter(|&d| d > 0).min()
    }

    /// The oldest `__time` each site keeps at `now_ms`.
    pub fn cutoffs(&self, now_ms: i64) -> Cutoffs {
        let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
        let cutoff = |days: u32| (days > 0).then(|| today.saturating_sub(i64::from(days) * DAY_MS));
        Cutoffs {
            default: cutoff(self.default_days),
            sites: self.sites.iter().map(|(site, &days)| (site.clone(), cutoff(days))).collect(),
        }
    }
}

/// The oldest `__time` kept, per site, at one moment; `None` keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cutoffs {
    default: Option<i64>,
    sites: BTreeMap<String, Option<i64>>,
}

impl Cutoffs {
    /// The oldest time kept for events of `site`.
    pub fn of(&self, site: Option<&str>) -> Option<i64> {
        site.and_then(|s| self.sites.get(s)).copied().unwrap_or(self.default)
    }

    /// Whether an event of `site` at `time_ms` has expired.
    pub fn expired(&self, site: Option<&str>, time_ms: i64) -> bool {
        self.of(site).is_some_and(|cutoff| time_ms < cutoff)
    }

    /// Whether nothing expires.
    pub fn is_none(&self) -> bool {
        self.default.is_none() && self.sites.values().all(Option::is_none)
    }

    /// A time before which every event has expired, whatever its site: the oldest cutoff, or
    /// `None` when some site keeps everything.
    pub fn all_expired_before(&self) -> Option<i64> {
        let mut all = std::iter::once(self.default).chain(self.sites.values().copied());
        all.try_fold(i64::MAX, |oldest, cutoff| cutoff.map(|c| oldest.min(c)))
    }

    /// A time from which no event expires, whatever its site: the newest cutoff.
    pub fn none_expired_from(&self) -> Option<i64> {
        std::iter::once(self.default).chain(self.sites.values().copied()).flatten().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000 + 12 * 3_600_000;

    #[test]
    fn sites_keep_whole_utc_days() {
        let policy = RetentionPolicy { default_days: 0, sites: BTreeMap::from([("short".into(), 2), ("forever".into(), 0)]) };
        let cutoffs = policy.cutoffs(NOW);
        let today = NOW.div_euclid(DAY_MS) * DAY_MS;
        assert_eq!(cutoffs.of(Some("short")), Some(today - 2 * DAY_MS));
        assert!(cutoffs.expired(Some("short"), today - 2 * DAY_MS - 1));
        assert!(!cutoffs.expired(Some("short"), today - 2 * DAY_MS), "the first millisecond of the oldest kept day stays");
        assert!(!cutoffs.expired(Some("forever"), 0));
        assert!(!cutoffs.expired(Some("unconfigured"), 0), "the default keeps everything");
        assert!(!cutoffs.expired(None, 0));
        assert_eq!(cutoffs.all_expired_before(), None, "some sites keep everything");
        assert_eq!(cutoffs.none_expired_from(), Some(today - 2 * DAY_MS));
        assert_eq!(policy.shortest_days(), Some(2));
        assert!(!policy.keeps_everything());
    }

    #[test]
    fn a_default_applies_to_unconfigured_sites_and_events_without_a_site() {
        let policy = RetentionPolicy { default_days: 10, sites: BTreeMap::from([("long".into(), 30)]) };
        let cutoffs = policy.cutoffs(NOW);
        let today = NOW.div_euclid(DAY_MS) * DAY_MS;
        assert_eq!(cutoffs.of(None), Some(today - 10 * DAY_MS));
        assert_eq!(cutoffs.of(Some("other")), Some(today - 10 * DAY_MS));
        assert_eq!(cutoffs.all_expired_before(), Some(today - 30 * DAY_MS));
        assert_eq!(cutoffs.none_expired_from(), Some(today - 10 * DAY_MS));
        assert!(RetentionPolicy::default().cutoffs(NOW).is_none());
        assert!(RetentionPolicy::default().keeps_everything());
    }
}
