//! Normalized forms of emails and phone numbers, as Gladly stores and matches them.

use phonenumber::Mode;
use phonenumber::country::Id;

/// An email as Gladly matches it: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plain syntax check of an email address (the addr-spec only, no display name).
pub fn is_valid_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 {
        return false;
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c))
    {
        return false;
    }
    if local.contains('@') || local.starts_with('.') || local.ends_with('.') || local.contains("..")
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// A phone number in E.164, read with `region` (US when absent) unless it already starts with `+`.
pub fn normalize_phone(original: &str, region: Option<&str>) -> Result<String, String> {
    let region_id = match region.map(str::trim).filter(|r| !r.is_empty()) {
        None => Id::US,
        Some(code) => code
            .to_ascii_uppercase()
            .parse::<Id>()
            .map_err(|_| format!("unknown region code {code:?}"))?,
    };
    let number = phonenumber::parse(Some(region_id), original.trim())
        .map_err(|e| format!("cannot read {original:?} as a phone number: {e}"))?;
    Ok(number.format().mode(Mode::E164).to_string())
}

/// Whether a find query value looks like an E.164 number (`+` then 2 to 15 digits).
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("  Martha.W@Example.COM "),
            "martha.w@example.com"
        );
        assert!(is_valid_email("a.b+c@example.co.uk"));
        assert!(!is_valid_email("not-an-email"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("Martha <m@example.com>"));
        assert!(!is_valid_email("a@@example.com"));
    }

    #[test]
    fn phones() {
        assert_eq!(
            normalize_phone("(415) 555-0100", None).unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalize_phone("+44 20 7946 0958", None).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("020 7946 0958", Some("GB")).unwrap(),
            "+442079460958"
        );
        assert!(normalize_phone("hello", None).is_err());
        assert!(normalize_phone("4155550100", Some("ZZZ")).is_err());
        assert!(is_e164("+14155550100"));
        assert!(!is_e164(" 14155550100"));
    }
}
