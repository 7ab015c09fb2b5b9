//! Which network addresses a plugin's request may reach after DNS: public ones only.
//!
//! A granted name can still resolve to the host's own loopback, a private network, a link-local
//! address or a cloud metadata endpoint (DNS rebinding, a stale record, a hostile zone). The
//! resolver here runs the system's lookup and refuses the connection when any address it returns
//! is not public: fail closed, since an attacker who controls one record of a set controls which
//! one is tried. Literal IPs never reach a resolver, so [`crate::egress::policy`] checks those
//! with [`non_public`] before the request is sent.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

use crate::egress::policy::EgressStats;

/// Why `ip` is not a public address, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => non_public_v4(v4),
            None => non_public_v6(v6),
        },
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("a documentation or benchmarking address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("a cloud metadata address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// The error a refused resolution carries, so the connection layer can tell a policy refusal
/// from a network failure.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolved to {ip}, {why}; only public addresses are reachable")]
pub struct NonPublicAddress {
    /// The name looked up.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// Its class.
    pub why: &'static str,
}

/// The system resolver, refusing names that resolve to any non-public address.
#[derive(Clone)]
pub struct PublicOnlyResolver {
    inner: GaiResolver,
    tenant: Arc<str>,
    stats: Arc<EgressStats>,
}

impl PublicOnlyResolver {
    /// A resolver that records its refusals in the tenant's egress counters.
    pub fn new(tenant: Arc<str>, stats: Arc<EgressStats>) -> Self {
        PublicOnlyResolver { inner: GaiResolver::new(), tenant, stats }
    }
}

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, io::Error>> + Send>>;

impl tower_service::Service<Name> for PublicOnlyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let lookup = self.inner.call(name);
        let (tenant, stats) = (self.tenant.clone(), self.stats.clone());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            if let Some((ip, why)) = addrs.iter().find_map(|a| non_public(a.ip()).map(|why| (a.ip(), why))) {
                let refused = NonPublicAddress { host, ip, why };
                stats.deny(&tenant, &refused.host, &refused.to_string());
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, refused));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn refuses_every_non_public_range() {
        assert_eq!(class("127.0.0.1"), Some("a loopback address"));
        assert_eq!(class("10.1.2.3"), Some("a private address"));
        assert_eq!(class("172.16.0.1"), Some("a private address"));
        assert_eq!(class("192.168.1.1"), Some("a private address"));
        assert_eq!(class("169.254.169.254"), Some("a cloud metadata address"));
        assert_eq!(class("169.254.1.1"), Some("a link-local address"));
        assert_eq!(class("100.64.0.1"), Some("a shared (carrier-grade NAT) address"));
        assert_eq!(class("0.0.0.0"), Some("an unspecified address"));
        assert_eq!(class("::1"), Some("a loopback address"));
        assert_eq!(class("::ffff:127.0.0.1"), Some("a loopback address"));
        assert_eq!(class("fd00:ec2::254"), Some("a cloud metadata address"));
        assert_eq!(class("fc00::1"), Some("a private (unique local) address"));
        assert_eq!(class("fe80::1"), Some("a link-local address"));
    }

    #[test]
    fn allows_public_addresses() {
        assert_eq!(class("104.18.2.3"), None);
        assert_eq!(class("172.32.0.1"), None);
        assert_eq!(class("2606:4700::1111"), None);
    }
}
