//! Who the client is: the peer's address, or, when the peer is a trusted reverse proxy, the
//! address the proxies say they forwarded for in `X-Forwarded-For`.
//!
//! Only proxies listed in `KUTANGA_TRUSTED_PROXIES` are believed, and the chain is read from the
//! right: each hop added by a trusted proxy is skipped, and the first address a trusted proxy did
//! not add itself is the client. A client can put anything at the left of the header; it cannot
//! make a trusted proxy append a lie. Without trusted proxies the header is ignored, so a client
//! can never choose its own address.
//!
//! `Forwarded` (RFC 7239) is never read: nginx, Apache, Caddy and Traefik append to
//! `X-Forwarded-For` but pass a client's own `Forwarded` header through untouched, so believing
//! it would let a client behind them name any address. A hop that names no address (garbage
//! written by a proxy) makes the client unknown (`0.0.0.0`), never the proxy itself.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

/// The client's address, as found by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(Arc::new(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
                // A hop that names no address: who is behind it is unknown.
                None => return IpAddr::from([0, 0, 0, 0]),
            }
        }
        client
    }
}

/// The hops of `X-Forwarded-For`, left to right (all its lines in order); `None` for a hop that
/// names no address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            v.to_str().map_or_else(|_| vec![None], |line| line.split(',').map(|hop| node_address(hop.trim())).collect())
        })
        .collect()
}

/// An address with or without its port: `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `::1`.
fn node_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).and_then(|t| t.parse().ok()))
}

/// The client of a request as the audit log and the sessions know it: its address and agent.
pub fn client_info(ip: IpAddr, headers: &HeaderMap) -> crate::auth::ClientInfo {
    crate::auth::ClientInfo {
        ip: Some(ip.to_string()),
        user_agent: headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

/// Whether the request says its body is JSON (`application/json`, with or without parameters).
pub fn sends_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The middleware that sets [`ClientAddr`] on every request.
pub async fn resolve(State(trusted): State<TrustedProxies>, mut req: Request, next: Next) -> Response {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let headers = req.headers();
        if trusted.0.is_empty()
            && headers.contains_key("x-forwarded-for")
            && peer.to_canonical().is_loopback()
            && !WARNED.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "requests come through a reverse proxy on this host, but KUTANGA_TRUSTED_PROXIES is not set: \
                 every client looks like 127.0.0.1 (rate limits, /metrics and the audit log see the proxy)"
            );
        }
        let client = trusted.client(peer, headers);
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let spoof = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(none.client(ip("127.0.0.1"), &spoof), ip("127.0.0.1"));
        let local = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
        assert_eq!(local.client(ip("203.0.113.9"), &spoof), ip("203.0.113.9"), "an untrusted peer's header");
        assert_eq!(local.client(ip("127.0.0.1"), &spoof), ip("1.2.3.4"));
        assert_eq!(local.client(ip("::ffff:127.0.0.1"), &spoof), ip("1.2.3.4"));
    }

    #[test]
    fn the_chain_is_read_from_the_right() {
        let local = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
        // The client wrote "9.9.9.9" itself; the trusted proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "9.9.9.9, 198.51.100.7"), ("x-forwarded-for", "10.1.2.3")]);
        assert_eq!(local.client(ip("127.0.0.1"), &chain), ip("198.51.100.7"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.5")]);
        assert_eq!(local.client(ip("127.0.0.1"), &all_trusted), ip("10.0.0.5"));
        let garbage = headers(&[("x-forwarded-for", "1.1.1.1, not-an-address")]);
        assert_eq!(local.client(ip("127.0.0.1"), &garbage), ip("0.0.0.0"));
    }

    #[test]
    fn forwarded_is_never_believed() {
        let local = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
        // A client's own Forwarded header, passed through by a proxy that appends to XFF.
        let h = headers(&[("forwarded", "for=127.0.0.1"), ("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(local.client(ip("127.0.0.1"), &h), ip("203.0.113.5"));
        let only = headers(&[("forwarded", "for=198.51.100.9")]);
        assert_eq!(local.client(ip("127.0.0.1"), &only), ip("127.0.0.1"));
        let garbage = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(local.client(ip("127.0.0.1"), &garbage), ip("0.0.0.0"), "unknown, not the proxy");
    }
}
