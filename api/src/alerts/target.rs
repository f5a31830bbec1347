//! Which addresses a webhook may reach: public ones only, unless an operator allows more.
//!
//! A rule's author chooses the URL, so without this check the hub would post, from inside the
//! host's network, to its loopback (the hub itself, a database), a cloud metadata endpoint, or
//! any private address. Every address a webhook's host resolves to is checked when the rule is
//! made and again on every delivery and every redirect: the resolver given to the HTTP client
//! drops forbidden addresses, and hosts written as IP literals (which skip the resolver) are
//! checked before each request. `KUTANGA_WEBHOOK_ALLOW` lists ranges that are allowed anyway.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// The address policy of webhooks.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    allow: Arc<Vec<IpNet>>,
}

/// Whether an IPv4 address is reachable on the public internet.
fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// Whether an address is reachable on the public internet (IPv6 forms of IPv4 addresses are
/// judged as the IPv4 address they carry).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d).
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) || s[0..6] == [0; 6] {
                let o = v6.octets();
                return public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some sites)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (64:ff9b:1::/48)
                || s[0] == 0x2002) // 6to4, which embeds any IPv4 address
        }
    }
}

impl Targets {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow: Arc::new(allow) }
    }

    /// Whether a webhook may be sent to this address.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        is_public(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Whether a URL's host, if written as an IP address, may be reached (names are checked
    /// when they are resolved).
    pub fn permits_literal(&self, url: &Url) -> bool {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.permits(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.permits(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => true,
            None => false,
        }
    }

    /// Checks a new rule's URL: an IP literal must be allowed, and a name must not resolve to a
    /// forbidden address. A name that does not resolve now is accepted (each delivery checks it).
    pub async fn check_url(&self, url: &Url) -> Result<(), String> {
        const REFUSED: &str = "points at an address webhooks may not reach (loopback, private, link-local or \
                               reserved; see KUTANGA_WEBHOOK_ALLOW)";
        if !self.permits_literal(url) {
            return Err(REFUSED.into());
        }
        let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        // Names that only ever mean something inside a host or a private network.
        if ["localhost", "localdomain", "local", "internal", "home.arpa", "lan", "intranet"]
            .iter()
            .any(|suffix| lower == *suffix || lower.ends_with(&format!(".{suffix}")))
        {
            return Err(REFUSED.into());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((name, port));
        if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), lookup).await {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.iter().any(|a| !self.permits(a.ip())) {
                return Err(REFUSED.into());
            }
        }
        Ok(())
    }
}

impl Resolve for Targets {
    fn resolve(&self, name: Name) -> Resolving {
        let targets = self.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| targets.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err("no address webhooks may reach".into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        let targets = Targets::default();
        for bad in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "fe80::1",
            "fd00::1",
            "2002:7f00:1::",
            "fec0::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!targets.permits(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(targets.permits(good.parse().unwrap()), "{good}");
        }
        let local = Targets::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(local.permits("127.0.0.1".parse().unwrap()));
        assert!(local.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!local.permits("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn literal_hosts_in_every_spelling_are_judged() {
        let targets = Targets::default();
        for bad in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]:8080/graphql",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1:6379/",
        ] {
            assert!(!targets.permits_literal(&Url::parse(bad).unwrap()), "{bad}");
        }
        assert!(targets.permits_literal(&Url::parse("https://hooks.slack.com/x").unwrap()));
    }
}
