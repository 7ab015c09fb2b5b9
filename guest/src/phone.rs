//! Phone parsing and normalization to E.164 with the `phonenumber` crate.

use phonenumber::Mode;
use phonenumber::country::Id;

/// A phone number ready for Gladly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPhone {
    /// E.164 form, e.g. `+14155550123`.
    pub e164: String,
    /// The number's own region (`US`, `GB`…), sent as `regionCode`.
    pub region: String,
    /// Extension, when one was written (`ext. 12`).
    pub extension: Option<String>,
}

/// Why a phone cell was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Not a phone number at all.
    #[error("it is not a phone number ({0})")]
    Unparseable(String),
    /// Parsed, but not a number that exists in its region's numbering plan.
    #[error("it is not a valid number in region {0}")]
    Invalid(String),
}

/// Parses a region code such as `US` or `gb` (case-insensitive).
pub fn parse_region(code: &str) -> Option<Id> {
    code.trim().to_ascii_uppercase().parse::<Id>().ok()
}

/// The digits of an international (`+`) input, up to any extension; `None` for national input.
fn international_digits(raw: &str) -> Option<String> {
    let t = raw.trim();
    let t = t.strip_prefix("tel:").unwrap_or(t).trim_start();
    let rest = t.strip_prefix('+')?;
    Some(
        rest.chars()
            .take_while(|c| !c.is_alphabetic() && *c != ';' && *c != ',')
            .filter(char::is_ascii_digit)
            .collect(),
    )
}

/// Parses `raw`, reading national numbers in `default_region`; a `+` number keeps its own region.
///
/// A `+` number is parsed without a default region on purpose: phonenumber 0.3 strips the
/// default region's national prefix from foreign numbers (with US as default, `+49 170 …` loses
/// its `1`). As a second guard, the E.164 digits of a `+` number must be the digits typed.
pub fn normalize(raw: &str, default_region: Id) -> Result<NormalizedPhone, PhoneError> {
    let typed = international_digits(raw);
    let region_hint = if typed.is_some() {
        None
    } else {
        Some(default_region)
    };
    let number = phonenumber::parse(region_hint, raw.trim())
        .map_err(|e| PhoneError::Unparseable(e.to_string()))?;
    let region = number.country().id().unwrap_or(default_region);
    let e164 = number.format().mode(Mode::E164).to_string();
    let consistent = typed.is_none_or(|d| e164.strip_prefix('+') == Some(d.as_str()));
    if !consistent || !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid(region.as_ref().to_string()));
    }
    Ok(NormalizedPhone {
        e164,
        region: region.as_ref().to_string(),
        extension: number.extension().map(|x| x.to_string()),
    })
}

/// The comparison key of a phone already on a Gladly profile: its server-side `normalized`
/// value when present, else our own parse of `original` in its `regionCode` (Gladly reads a
/// phone without one as US), else the raw text.
pub fn existing_key(original: &str, normalized: Option<&str>, region_code: Option<&str>) -> String {
    if let Some(n) = normalized.map(str::trim).filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let region = region_code.and_then(parse_region).unwrap_or(Id::US);
    match phonenumber::parse(Some(region), original.trim()) {
        Ok(n) => n.format().mode(Mode::E164).to_string(),
        Err(_) => original.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_use_default_region() {
        let p = normalize("(415) 555-2671", Id::US).unwrap();
        assert_eq!(p.e164, "+14155552671");
        assert_eq!(p.region, "US");
        let p = normalize("020 7946 0958", Id::GB).unwrap();
        assert_eq!(p.e164, "+442079460958");
        assert_eq!(p.region, "GB");
    }

    #[test]
    fn plus_numbers_keep_their_region() {
        let p = normalize("+44 20 7946 0958", Id::US).unwrap();
        assert_eq!(p.e164, "+442079460958");
        assert_eq!(p.region, "GB");
    }

    #[test]
    fn foreign_numbers_survive_a_us_default() {
        for (raw, e164, region) in [
            ("+49 170 1234567", "+491701234567", "DE"),
            ("+49 151 23456789", "+4915123456789", "DE"),
            ("+86 138 0013 8000", "+8613800138000", "CN"),
            ("+55 11 91234 5678", "+5511912345678", "BR"),
            ("tel:+4915123456789", "+4915123456789", "DE"),
        ] {
            let p = normalize(raw, Id::US).unwrap();
            assert_eq!(
                (p.e164.as_str(), p.region.as_str()),
                (e164, region),
                "{raw}"
            );
        }
    }

    #[test]
    fn extensions_are_kept_apart() {
        let p = normalize("+1 (415) 555-2671 ext. 12", Id::US).unwrap();
        assert_eq!(p.e164, "+14155552671");
        assert_eq!(p.extension.as_deref(), Some("12"));
        assert_eq!(normalize("4155552671", Id::US).unwrap().extension, None);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            normalize("not a phone", Id::US),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(normalize("12", Id::US).is_err());
        assert!(normalize("+1 000 000 0000", Id::US).is_err());
    }

    #[test]
    fn regions_parse_case_insensitively() {
        assert_eq!(parse_region("gb"), Some(Id::GB));
        assert_eq!(parse_region("XX"), None);
        assert_eq!(parse_region(""), None);
    }

    #[test]
    fn existing_keys() {
        assert_eq!(
            existing_key("4155552671", Some("+14155552671"), None),
            "+14155552671"
        );
        assert_eq!(existing_key("(415) 555-2671", None, None), "+14155552671");
        assert_eq!(
            existing_key("020 7946 0958", None, Some("GB")),
            "+442079460958"
        );
        assert_eq!(existing_key("n/a", None, None), "n/a");
    }
}
