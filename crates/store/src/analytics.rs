//! Product analytics Druid lacks: sessions, ordered funnels, retention cohorts and paths, and
//! the goals they count — over segments and live buffer alike, so answers include events
//! seconds old. Sessions, funnels and paths sort the range's events by visitor and time in one
//! statement and walk them one visitor at a time ([`timeline`]); retention is one aggregating
//! statement.
//!
//! Every question starts from the same [`scope`]: a site, a time range in a time zone, and
//! filters. Filters pick *who* is analysed — the sessions or visitors with at least one event in
//! range matching them all — never which of their events are seen, so a funnel of visitors
//! from one country still sees all their steps. Bots, duplicates and corrupt events are left
//! out, as in reports.
//!
//! - [`scope`]: the shared request part and the SQL of the events it selects.
//! - [`sessions`]: sessions (the tag's id, or cut by inactivity per site), their measures and
//!   breakdown, entry and exit pages.
//! - [`funnel`]: ordered funnels within a conversion window, strict or relaxed, per visitor or
//!   per session.
//! - [`retention`]: cohorts by first-seen period and their return in the periods after.
//! - [`paths`]: the pages (or events) most often after or before a page, as a tree.
//! - [`goals`]: named conversions, usable as funnel steps and report measures.
//! - [`timeline`]: the visitor-ordered scan the walks share, and a session's cut.

pub mod funnel;
pub mod goals;
pub mod paths;
pub mod retention;
pub mod scope;
pub mod sessions;
mod timeline;

use std::collections::BTreeMap;

use oriel_core::config::Config;

pub use goals::Goal;

/// What the analytics need from the configuration: how sessions are cut, and the goals.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsContext {
    /// Inactivity that ends a session, in ms, for sites without their own.
    pub session_timeout_ms: i64,
    /// Sites with their own session timeout, in ms.
    pub site_timeouts_ms: BTreeMap<String, i64>,
    /// The goals in force.
    pub goals: Vec<Goal>,
}

impl AnalyticsContext {
    /// Session timeouts from the configuration, with `goals`.
    pub fn from_config(config: &Config, goals: Vec<Goal>) -> Self {
        let minutes = |m: u32| i64::from(m) * 60_000;
        Self {
            session_timeout_ms: minutes(config.collector.session_timeout_minutes),
            site_timeouts_ms: config
                .sites
                .iter()
                .filter_map(|s| Some((s.id.clone(), minutes(s.session_timeout_minutes?))))
                .collect(),
            goals,
        }
    }

    /// The goal named `name`.
    pub fn goal(&self, name: &str) -> crate::Result<&Goal> {
        self.goals.iter().find(|g| g.name == name).ok_or_else(|| {
            crate::Error::InvalidQuery(format!("unknown goal {name:?}; define it in [[goals]] or with PUT /api/v1/goals/{name}"))
        })
    }
}
