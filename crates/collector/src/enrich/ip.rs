//! The client's IP address: from the connection, or from `X-Forwarded-For` when the connection
//! comes from a trusted proxy; and its anonymised form for storage.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oriel_core::config::Cidr;

/// The address of the client behind at most the configured proxies. `X-Forwarded-For` is read
/// right to left, skipping trusted proxies: the first untrusted address is the client, since
/// anything left of it could have been written by the client itself.
pub(crate) fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let trusted_ip = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !trusted_ip(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for part in header.rsplit(',') {
        let Ok(ip) = part.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !trusted_ip(ip) {
            break;
        }
    }
    client
}

/// Zeroes the host part: IPv4 to /24, IPv6 to /48.
pub(crate) fn anonymize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymize(IpAddr::V4(v4));
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxies = [Cidr::parse("10.0.0.0/8").unwrap()];
        assert_eq!(client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &proxies), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(client_ip(ip("10.0.0.2"), Some("1.2.3.4"), &proxies), ip("1.2.3.4"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("6.6.6.6, 1.2.3.4, 10.0.0.7"), &proxies),
            ip("1.2.3.4"),
            "spoofed left part ignored"
        );
        assert_eq!(client_ip(ip("10.0.0.2"), Some("garbage"), &proxies), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), None, &proxies), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), Some("1.2.3.4"), &[]), ip("10.0.0.2"), "no trusted proxies configured");
    }

    #[test]
    fn anonymises() {
        assert_eq!(anonymize(ip("203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(anonymize(ip("2001:db8:85a3:8d3:1319:8a2e:370:7348")), ip("2001:db8:85a3::"));
        assert_eq!(anonymize(ip("::ffff:203.0.113.77")), ip("203.0.113.0"));
    }
}
