//! Counting failed sign-ins per client address, in bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked; when full, the table starts over (an attacker with that many
/// addresses is not slowed by a per-address limit anyway).
const MAX_TRACKED: usize = 10_000;

/// Failures per client address within a sliding minute.
pub(crate) struct Throttle {
    limit: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    pub(crate) fn new(limit: u32) -> Self {
        Self { limit, seen: Mutex::new(HashMap::new()) }
    }

    /// Records one failure of `ip`.
    pub(crate) fn fail(&self, ip: IpAddr) {
        let mut seen = self.seen.lock();
        if seen.len() >= MAX_TRACKED {
            seen.clear();
        }
        let now = Instant::now();
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) > WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Whether `ip` failed too often within the window.
    pub(crate) fn is_blocked(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock();
        seen.get(&ip).is_some_and(|(since, count)| *count >= self.limit && since.elapsed() <= WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit() {
        let t = Throttle::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            t.fail(ip);
        }
        assert!(!t.is_blocked(ip));
        t.fail(ip);
        assert!(t.is_blocked(ip));
        assert!(!t.is_blocked("192.0.2.2".parse().unwrap()));
    }
}
