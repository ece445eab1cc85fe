//! Store retention: each site's events older than its retention (see [`crate::expiry`]), and
//! deletion tombstones that log replay can no longer need.
//!
//! A segment whose every site has expired is dropped whole in one commit. A segment that holds
//! expired events of some sites beside events still kept (a day shared by a site kept 7 days
//! and one kept 90) is rewritten without them, off the maintenance turn, like a deletion
//! rewrite. Each segment's list of sites with their oldest event says which segments need it
//! without reading them; segments written before that list existed are read once.

use crate::Result;
use crate::deletion::Removal;
use crate::expiry::Cutoffs;
use crate::manifest::SegmentMeta;
use crate::metrics as m;
use crate::store::Store;

/// What retention does with one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
    Rewrite,
}

/// The site of a segment's list entry: `""` stands for events without one.
fn site(name: &str) -> Option<&str> {
    (!name.is_empty()).then_some(name)
}

fn fate(meta: &SegmentMeta, cutoffs: &Cutoffs) -> Fate {
    match &meta.sites {
        Some(sites) => {
            if sites.keys().all(|name| cutoffs.of(site(name)).is_some_and(|c| meta.max_time < c)) {
                Fate::Drop
            } else if sites.iter().any(|(name, &oldest)| cutoffs.expired(site(name), oldest)) {
                Fate::Rewrite
            } else {
                Fate::Keep
            }
        }
        None if cutoffs.all_expired_before().is_some_and(|c| meta.max_time < c) => Fate::Drop,
        // Rewritten for these cutoffs already: what is left is kept by some site.
        None if meta.expiry_checked.is_some() && meta.expiry_checked == cutoffs.none_expired_from() => Fate::Keep,
        None if cutoffs.none_expired_from().is_some_and(|c| meta.min_time < c) => Fate::Rewrite,
        None => Fate::Keep,
    }
}

impl Store {
    /// Drops and rewrites segments so no event older than its site's retention is left, and
    /// drops deletion tombstones no longer needed. Returns the events removed.
    pub async fn enforce_retention(&self) -> Result<u64> {
        let cutoffs = self.shared.options.retention.cutoffs(self.shared.options.clock.now_ms());
        let dropped = self.drop_expired(&cutoffs).await?;
        let rewritten = self.rewrite_expired(&cutoffs).await?;
        let rows = dropped + rewritten;
        if rows > 0 {
            tracing::info!(rows, "store retention removed expired events");
            self.publish_stats();
        }
        metrics::counter!(m::RETENTION_ROWS).increment(rows);
        Ok(rows)
    }

    /// Drops the segments that hold nothing but expired events, and spent tombstones, in one
    /// commit on the maintenance turn.
    async fn drop_expired(&self, cutoffs: &Cutoffs) -> Result<u64> {
        let _turn = self.maintenance.lock().await;
        let manifest = self.shared.state.read().manifest.clone();
        let expired: Vec<u64> = manifest.segments.iter().filter(|s| fate(s, cutoffs) == Fate::Drop).map(|s| s.id).collect();
        let spent = manifest.tombstones.iter().filter(|t| t.is_spent(&manifest.offsets)).count();
        if expired.is_empty() && spent == 0 {
            return Ok(0);
        }
        let rows: u64 = manifest.segments.iter().filter(|s| expired.contains(&s.id)).map(|s| s.rows).sum();
        let mut next = manifest;
        next.segments.retain(|s| !expired.contains(&s.id));
        let offsets = next.offsets.clone();
        next.tombstones.retain(|t| !t.is_spent(&offsets));
        next.generation += 1;
        self.commit_manifest(&next).await?;
        self.shared.swap_segments(next, Vec::new(), &expired);
        Ok(rows)
    }

    /// Rewrites, one at a time, the segments that hold expired events beside kept ones. A
    /// rewrite whose segment changed meanwhile (compaction got there first, and already left
    /// the expired rows out) is discarded.
    async fn rewrite_expired(&self, cutoffs: &Cutoffs) -> Result<u64> {
        let candidates: Vec<SegmentMeta> =
            self.shared.state.read().manifest.segments.iter().filter(|s| fate(s, cutoffs) == Fate::Rewrite).cloned().collect();
        let mut removed = 0;
        for meta in candidates {
            let deletions = self.shared.state.read().manifest.deletions.clone();
            let removal = Removal { deletions, cutoffs: cutoffs.clone() };
            let mut replacement = self.prepare_replacement(&meta.partition.clone(), vec![meta], removal).await?;
            if let Some(new) = replacement.new.as_mut().filter(|n| n.sites.is_none()) {
                new.expiry_checked = cutoffs.none_expired_from();
            }
            let _turn = self.maintenance.lock().await;
            if self.shared.state.read().manifest.deletions != replacement.deletions {
                replacement.discard();
                continue;
            }
            removed += self.commit_replacements(vec![replacement], |_| {}).await?.iter().sum::<u64>();
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::expiry::RetentionPolicy;

    const DAY: i64 = 86_400_000;

    fn segment(min_time: i64, max_time: i64, sites: Option<&[(&str, i64)]>) -> SegmentMeta {
        SegmentMeta {
            id: 1,
            partition: "p".into(),
            file: "f".into(),
            rows: 1,
            bytes: 1,
            min_time,
            max_time,
            sites: sites.map(|s| s.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()),
            expiry_checked: None,
        }
    }

    #[test]
    fn segments_are_kept_dropped_or_rewritten_by_their_sites() {
        let now = 100 * DAY;
        let policy = RetentionPolicy { default_days: 0, sites: BTreeMap::from([("short".into(), 5)]) };
        let cutoffs = policy.cutoffs(now);
        let old = 90 * DAY;
        assert_eq!(fate(&segment(old, old + 1, Some(&[("short", old)])), &cutoffs), Fate::Drop);
        assert_eq!(fate(&segment(old, old + 1, Some(&[("short", old), ("other", old)])), &cutoffs), Fate::Rewrite);
        assert_eq!(fate(&segment(old, old + 1, Some(&[("other", old), ("", old)])), &cutoffs), Fate::Keep);
        assert_eq!(fate(&segment(99 * DAY, 99 * DAY, Some(&[("short", 99 * DAY)])), &cutoffs), Fate::Keep);
        assert_eq!(fate(&segment(old, old + 1, None), &cutoffs), Fate::Rewrite, "unknown sites: read once");
        let checked = SegmentMeta { expiry_checked: cutoffs.none_expired_from(), ..segment(old, old + 1, None) };
        assert_eq!(fate(&checked, &cutoffs), Fate::Keep, "and not again for the same cutoffs");
        assert_eq!(fate(&checked, &policy.cutoffs(now + DAY)), Fate::Rewrite, "but again a day later");
        assert_eq!(fate(&segment(99 * DAY, 99 * DAY, None), &cutoffs), Fate::Keep);
        let everything = RetentionPolicy { default_days: 5, sites: BTreeMap::new() }.cutoffs(now);
        assert_eq!(fate(&segment(old, old + 1, None), &everything), Fate::Drop);
        assert_eq!(fate(&segment(old, 99 * DAY, None), &everything), Fate::Rewrite);
        assert_eq!(fate(&segment(old, old, None), &RetentionPolicy::default().cutoffs(now)), Fate::Keep);
    }
}
