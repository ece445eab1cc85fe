//! Counting failed sign-ins per client, in bounded memory.
//!
//! A client is its IPv4 address or its IPv6 /64 (one subscriber's network: an attacker gets
//! 2^64 addresses with one connection). When the table is full, clients whose window has
//! passed go first, then the one with the fewest failures; so a flood of new addresses cannot
//! reset the count of a client that is being refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// Most clients tracked.
const MAX_TRACKED: usize = 10_000;

/// Failures per client within a sliding minute.
pub(crate) struct Throttle {
    limit: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The client an address belongs to: IPv6 addresses by their /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

impl Throttle {
    pub(crate) fn new(limit: u32) -> Self {
        Self { limit, seen: Mutex::new(HashMap::new()) }
    }

    /// Records one failure (or attempt) of `ip`.
    pub(crate) fn fail(&self, ip: IpAddr) {
        let mut seen = self.seen.lock();
        let now = Instant::now();
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, (since, _)| now.duration_since(*since) <= WINDOW);
            if seen.len() >= MAX_TRACKED
                && let Some(least) = seen.iter().min_by_key(|(_, (since, count))| (*count, *since)).map(|(ip, _)| *ip)
            {
                seen.remove(&least);
            }
        }
        let entry = seen.entry(client(ip)).or_insert((now, 0));
        if now.duration_since(entry.0) > WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Takes back one counted attempt of `ip` that turned out not to be a failure.
    pub(crate) fn forgive(&self, ip: IpAddr) {
        if let Some(entry) = self.seen.lock().get_mut(&client(ip)) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Whether `ip` failed too often within the window.
    pub(crate) fn is_blocked(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock();
        seen.get(&client(ip)).is_some_and(|(since, count)| *count >= self.limit && since.elapsed() <= WINDOW)
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
        t.forgive(ip);
        assert!(!t.is_blocked(ip), "a forgiven attempt does not count");
        assert!(!t.is_blocked("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_network_is_one_client_and_new_addresses_do_not_reset_the_count() {
        let t = Throttle::new(2);
        t.fail("2001:db8::1".parse().unwrap());
        t.fail("2001:db8::ffff:2".parse().unwrap());
        assert!(t.is_blocked("2001:db8::3".parse().unwrap()), "the same /64");
        assert!(!t.is_blocked("2001:db8:0:1::1".parse().unwrap()), "another /64");
        for i in 0..MAX_TRACKED as u32 {
            t.fail(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(t.is_blocked("2001:db8::3".parse().unwrap()), "still counted after a flood of addresses");
    }
}
