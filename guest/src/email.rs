//! Email validation and the normalized form used to compare and match addresses.

use email_address::{EmailAddress, Options};

/// Why an email cell was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(String);

/// Strict parsing: a bare address with a dotted domain, as Gladly stores addr-specs only.
fn options() -> Options {
    Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld()
}

/// Trims and validates an address; returns the text to send as `original` (case kept).
pub fn validate(raw: &str) -> Result<String, EmailError> {
    let trimmed = raw.trim();
    match EmailAddress::parse_with_options(trimmed, options()) {
        Ok(_) => Ok(trimmed.to_string()),
        Err(e) => Err(EmailError(e.to_string())),
    }
}

/// The comparison key: trimmed and lower-cased (Gladly treats addresses case-insensitively).
pub fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_trims() {
        assert_eq!(
            validate("  Ann.Lee@Example.com ").unwrap(),
            "Ann.Lee@Example.com"
        );
        assert_eq!(
            validate("a+tag@sub.example.co.uk").unwrap(),
            "a+tag@sub.example.co.uk"
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "Ann <ann@example.com>",
            "ann@[127.0.0.1]",
            "ann lee@example.com",
            "ann@@example.com",
        ] {
            assert!(validate(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn key_is_case_insensitive() {
        assert_eq!(key(" Ann@Example.COM"), "ann@example.com");
    }
}
