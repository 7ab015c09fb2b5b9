//! The operator's grants: which hosts a tenant's plugin may reach, and the one host its
//! credential may go to. Grants come from the operator's job file only; what a plugin declares
//! can narrow them, never widen them.

use http::uri::{Scheme, Uri};

/// Whether `grant` is too broad to mean anything: `*`, or a wildcard over a whole top-level
/// domain (`*.com`), or something that is not a host name at all.
fn refusal(grant: &str) -> Option<&'static str> {
    let g = grant.trim();
    if g.is_empty() {
        return Some("is empty");
    }
    if g == "*" || g == "*." {
        return Some("grants every host");
    }
    if let Some(suffix) = g.strip_prefix("*.") {
        if !suffix.contains('.') {
            return Some("grants a whole top-level domain");
        }
        if suffix.contains('*') {
            return Some("has more than one wildcard");
        }
        return None;
    }
    if g.contains('*') {
        return Some("has a wildcard that is not a leading `*.`");
    }
    if g.contains(['/', ':', '@', ' ']) {
        return Some("is not a host name (no scheme, port, path or user)");
    }
    None
}

/// Check the operator's grants: at least one, and none that covers everything. The error is
/// the operator's fix, spelled out.
pub fn check_grants(grants: &[String], needed: &[String]) -> Result<(), String> {
    let example = needed.first().map(String::as_str).unwrap_or("acme.gladly.com");
    if grants.is_empty() {
        return Err(format!(
            "[policy] allow_hosts is missing: the operator must grant the hosts this tenant's plugin may reach (the plugin asks for: {}). Add allow_hosts = [\"{example}\"] to the job file's [policy]",
            if needed.is_empty() { "nothing".to_string() } else { needed.join(", ") }
        ));
    }
    for g in grants {
        if let Some(why) = refusal(g) {
            return Err(format!(
                "[policy] allow_hosts entry {g:?} {why}; grant exact hosts such as \"{example}\", or a wildcard under one domain such as \"*.gladly.com\""
            ));
        }
    }
    Ok(())
}

/// Whether `host` matches an operator grant: an exact name or `*.suffix`.
pub fn host_matches(grant: &str, host: &str) -> bool {
    let grant = grant.trim().to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    match grant.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => grant == host,
    }
}

/// The reachable hosts: those the plugin declared that the operator's grants cover.
pub fn intersect_hosts(declared: &[String], grants: &[String]) -> Vec<String> {
    declared
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .filter(|h| grants.iter().any(|g| host_matches(g, h)))
        .collect()
}

/// The one host the credential is bound to: the validated config's base URL, which must be
/// `https` on the default port and among the reachable hosts.
pub fn credential_host(base_url: &str, reachable: &[String]) -> Result<String, String> {
    let uri: Uri = base_url
        .parse()
        .map_err(|_| format!("the destination resolved the base URL {base_url:?}, which is not a URL"))?;
    if uri.scheme() != Some(&Scheme::HTTPS) || uri.port_u16().is_some_and(|p| p != 443) {
        return Err(format!("the destination resolved the base URL {base_url:?}; credentials go over https on port 443 only"));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if authority.contains('@') {
        return Err(format!("the destination resolved the base URL {base_url:?}, which carries user information"));
    }
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    if !reachable.contains(&host) {
        return Err(format!(
            "the credential would go to {host}, which [policy] allow_hosts does not grant; add \"{host}\" to allow_hosts if this tenant's API is there"
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matching() {
        assert!(host_matches("*.gladly.com", "acme.gladly.com"));
        assert!(!host_matches("*.gladly.com", "gladly.com.evil.io"));
        assert!(host_matches("acme.gladly.com", "ACME.gladly.com"));
        assert!(!host_matches("acme.gladly.com", "other.gladly.com"));
        assert!(!host_matches("*", "acme.gladly.com"));
    }

    #[test]
    fn no_grant_is_refused_with_the_fix() {
        assert_eq!(
            check_grants(&[], &v(&["acme.gladly.com"])).unwrap_err(),
            "[policy] allow_hosts is missing: the operator must grant the hosts this tenant's plugin may reach (the plugin asks for: acme.gladly.com). Add allow_hosts = [\"acme.gladly.com\"] to the job file's [policy]"
        );
    }

    #[test]
    fn wildcards_over_everything_are_refused() {
        for g in ["*", "*.com", "*.*.com", "a*.gladly.com", "https://acme.gladly.com"] {
            assert!(check_grants(&v(&[g]), &[]).is_err(), "{g} accepted");
        }
        assert_eq!(check_grants(&v(&["*.gladly.com", "acme.gladly.qa"]), &[]), Ok(()));
    }

    #[test]
    fn only_granted_declared_hosts_are_reachable() {
        let declared = v(&["acme.gladly.com", "collector.example.net"]);
        assert_eq!(intersect_hosts(&declared, &v(&["*.gladly.com"])), v(&["acme.gladly.com"]));
    }

    #[test]
    fn the_credential_is_bound_to_the_base_url_host() {
        let reachable = v(&["acme.gladly.com", "collector.example.net"]);
        assert_eq!(credential_host("https://ACME.gladly.com", &reachable), Ok("acme.gladly.com".into()));
        assert!(credential_host("http://acme.gladly.com", &reachable).is_err());
        assert!(credential_host("https://acme.gladly.com:8443", &reachable).is_err());
        assert_eq!(
            credential_host("https://other.gladly.com", &reachable).unwrap_err(),
            "the credential would go to other.gladly.com, which [policy] allow_hosts does not grant; add \"other.gladly.com\" to allow_hosts if this tenant's API is there"
        );
    }
}
