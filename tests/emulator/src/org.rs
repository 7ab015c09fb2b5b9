//! Which organization a request is for, from its Host header.

/// Organization used when the Host is not a Gladly host (e.g. `127.0.0.1:PORT`).
pub const DEFAULT_ORG: &str = "default";

/// The organization named by a Host value: the first label of a `{org}[.cluster].gladly.{tld}`
/// host, else [`DEFAULT_ORG`].
pub fn org_from_host(host: Option<&str>) -> String {
    let Some(host) = host else {
        return DEFAULT_ORG.to_string();
    };
    let host = host.trim().to_ascii_lowercase();
    // Drop a port; IPv6 literals never name an org, so a plain split is enough.
    let name = host.split(':').next().unwrap_or("");
    match name.find(".gladly.") {
        Some(end) if end > 0 => {
            let before = &name[..end];
            let org = before.split('.').next().unwrap_or("");
            if org.is_empty() {
                DEFAULT_ORG.to_string()
            } else {
                org.to_string()
            }
        }
        _ => DEFAULT_ORG.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(org_from_host(Some("acme.gladly.com")), "acme");
        assert_eq!(org_from_host(Some("acme.us-1.gladly.com")), "acme");
        assert_eq!(org_from_host(Some("ACME.gladly.qa:443")), "acme");
        assert_eq!(org_from_host(Some("acme.us-uat.gladly.qa")), "acme");
        assert_eq!(org_from_host(Some("127.0.0.1:8080")), "default");
        assert_eq!(org_from_host(Some("gladly.com")), "default");
        assert_eq!(org_from_host(Some(".gladly.com")), "default");
        assert_eq!(org_from_host(None), "default");
    }
}
