//! Gladly's rules for the two settings that name the account: the organization `domain` (and the
//! one host it names) and the API `username`.
//!
//! The domain rules matter for safety as well as usability: the host derived here is the only host
//! the plugin declares for egress, so it must always be a Gladly host. These rules know nothing of
//! setting keys; `settings` files a [`Refusal`] under the key it came from.

use crate::email;

/// Why a value was refused, and what to type instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
}

/// The one Gladly host of an organization part: `{org}.gladly.com`, or `{org}.gladly.qa` for
/// the sandbox.
pub fn host(org: &str, sandbox: bool) -> String {
    let suffix = if sandbox { "gladly.qa" } else { "gladly.com" };
    format!("{org}.{suffix}")
}

/// Checks the `username` value: the API user's email, which is also the Basic username (so no
/// `:`). Returns the trimmed address.
pub fn check_username(raw: &str) -> Result<String, Refusal> {
    match email::validate(raw) {
        Ok(u) if !u.contains(':') => Ok(u),
        _ => Err(Refusal {
            message: "The username must be the email address of the Gladly API user.".to_string(),
            fix: "Enter that user's email address, e.g. api-user@mycompany.com.".to_string(),
        }),
    }
}

/// The refusal of a domain that is not just the organization part, with a derived fix.
fn domain_problem(raw: &str, what: &str, suggestion: Option<(String, bool)>) -> Refusal {
    let message = format!(
        "Domain check failed: `{raw}` {what}. Only the organization part of your Gladly address \
         belongs here (for https://mycompany.gladly.com that is mycompany)."
    );
    let fix = match suggestion {
        Some((org, true)) => format!("Enter `{org}` and set sandbox to true."),
        Some((org, false)) => format!("Enter `{org}`."),
        None => "Enter the part of your Gladly address before .gladly.com, e.g. mycompany or \
                 mycompany.us-1."
            .to_string(),
    };
    Refusal { message, fix }
}

/// From a host name, the organization part and whether it is a sandbox host.
fn org_from_host(host: &str) -> Option<(String, bool)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let (org, sandbox) = if let Some(org) = host.strip_suffix(".gladly.com") {
        (org, false)
    } else if let Some(org) = host.strip_suffix(".gladly.qa") {
        (org, true)
    } else {
        return None;
    };
    check_labels(org).ok().map(|o| (o, sandbox))
}

/// Checks the `domain` value; returns the lower-cased organization part.
pub fn check_domain(raw: &str) -> Result<String, Refusal> {
    if raw.chars().any(char::is_whitespace) {
        let trimmed = raw.trim();
        let suggestion = if trimmed.chars().any(char::is_whitespace) {
            None
        } else {
            check_domain(trimmed).ok().map(|o| (o, false))
        };
        return Err(domain_problem(raw, "contains spaces", suggestion));
    }
    if raw.contains("://") {
        let host = url::Url::parse(raw)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        let suggestion = host.as_deref().and_then(org_from_host);
        let what = if suggestion.is_some() {
            "is a full URL"
        } else {
            "is a URL, and not one of a Gladly host"
        };
        return Err(domain_problem(raw, what, suggestion));
    }
    if raw.contains('@') {
        return Err(domain_problem(raw, "contains a user name (@)", None));
    }
    if let Some(pos) = raw.find(['/', '?', '#']) {
        let before = raw.get(..pos).unwrap_or_default();
        return Err(domain_problem(raw, "contains a path", suggest(before)));
    }
    if let Some(pos) = raw.find(':') {
        let before = raw.get(..pos).unwrap_or_default();
        return Err(domain_problem(raw, "contains a port", suggest(before)));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.ends_with(".gladly.com") || lower.ends_with(".gladly.qa") {
        return Err(domain_problem(
            raw,
            "is the whole host name",
            org_from_host(&lower),
        ));
    }
    check_labels(&lower).map_err(|what| {
        let first = lower.split('.').next().unwrap_or_default();
        let suggestion = check_labels(first)
            .ok()
            .filter(|f| *f != lower)
            .map(|f| (f, false));
        domain_problem(raw, &what, suggestion)
    })
}

/// A fix derived from the host-like text before a path or port.
fn suggest(before: &str) -> Option<(String, bool)> {
    org_from_host(before).or_else(|| {
        check_labels(&before.to_ascii_lowercase())
            .ok()
            .map(|o| (o, false))
    })
}

/// `org` or `org.cluster`: DNS labels of `[a-z0-9-]`, where a cluster label looks like `us-1`.
fn check_labels(lower: &str) -> Result<String, String> {
    let labels: Vec<&str> = lower.split('.').collect();
    if labels.len() > 2 {
        return Err("has too many dots to be an organization name".to_string());
    }
    for label in &labels {
        let ok_chars = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "has an invalid part `{label}` (letters, digits and inner hyphens only)"
            ));
        }
        if *label == "gladly" {
            return Err("contains gladly, which belongs after the organization part".to_string());
        }
    }
    // A second label is a Gladly cluster (`us-1`, `us-uat`); a bare word such as `com` means
    // another site's host name was typed.
    let bare_word = |l: &&&str| !l.chars().any(|c| c == '-' || c.is_ascii_digit());
    if let Some(cluster) = labels.get(1).filter(bare_word) {
        return Err(format!(
            "looks like a host name outside Gladly (`{cluster}` is not a Gladly cluster label)"
        ));
    }
    Ok(lower.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix_of(raw: &str) -> String {
        check_domain(raw).unwrap_err().fix
    }

    #[test]
    fn accepts_org_and_cluster() {
        assert_eq!(check_domain("mycompany").unwrap(), "mycompany");
        assert_eq!(check_domain("MyCompany.US-1").unwrap(), "mycompany.us-1");
        assert_eq!(check_domain("acme-2").unwrap(), "acme-2");
    }

    #[test]
    fn rejects_urls_with_a_derived_fix() {
        assert!(fix_of("https://mycompany.gladly.com").contains("`mycompany`"));
        assert!(fix_of("https://mycompany.gladly.com/").contains("`mycompany`"));
        assert!(fix_of("https://mycompany.us-1.gladly.com").contains("`mycompany.us-1`"));
        // The `domain` key of this refusal is checked in `settings` (which files it).
        let e = check_domain("https://mycompany.gladly.com").unwrap_err();
        assert!(e.message.contains("organization part"));
        let qa = fix_of("https://mycompany.gladly.qa");
        assert!(qa.contains("`mycompany`") && qa.contains("sandbox to true"));
        assert!(!fix_of("https://evil.example.com").contains('`'));
    }

    #[test]
    fn rejects_full_hosts_paths_ports_userinfo_spaces() {
        assert!(fix_of("mycompany.gladly.com").contains("`mycompany`"));
        let qa = fix_of("mycompany.gladly.qa");
        assert!(qa.contains("`mycompany`") && qa.contains("sandbox"));
        assert!(fix_of("mycompany/api").contains("`mycompany`"));
        assert!(fix_of("mycompany:443").contains("`mycompany`"));
        assert!(check_domain("user@mycompany").is_err());
        assert!(fix_of(" mycompany ").contains("`mycompany`"));
        assert!(check_domain("my company").is_err());
    }

    #[test]
    fn rejects_non_gladly_hosts() {
        for bad in [
            "evil.com",
            "acme.evil.com",
            "evil.com.",
            "a..b",
            "-acme",
            "acme_1",
            "gladly",
            "acme.gladly",
            "ACME.GLADLY.COM.evil.com",
            "acme?x=1",
            "acme#x",
            "",
        ] {
            assert!(check_domain(bad).is_err(), "{bad} should be rejected");
        }
        assert!(fix_of("acme.com").contains("`acme`"));
    }
}
