//! How an upsert finds the customer a row belongs to: the keys of the `match-on` setting, in
//! order, each with the find query Gladly accepts for it and the value a mapped row gives it.
//!
//! Gladly's find takes exactly one of `email`, `phoneNumber` or `externalCustomerId` per request.
//! The first key that has a value on the row and finds exactly one profile decides; several
//! profiles on one key is an ambiguous match, never a pick.

use crate::email;
use crate::profile::Profile;
use crate::spec::StandardField;

/// One key of `match-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKey {
    /// The warehouse's own customer id (Gladly's `externalCustomerId`). Gladly does not keep it
    /// unique, so a lookup always comes before a create.
    ExternalCustomerId,
    /// The row's first email.
    Email,
    /// The row's first phone, in E.164.
    Phone,
}

impl MatchKey {
    /// Every key, in the order the setting lists them in its description.
    pub const ALL: [MatchKey; 3] = [MatchKey::ExternalCustomerId, MatchKey::Email, MatchKey::Phone];

    /// The key's name in the setting.
    pub fn name(self) -> &'static str {
        match self {
            MatchKey::ExternalCustomerId => "externalCustomerId",
            MatchKey::Email => "email",
            MatchKey::Phone => "phone",
        }
    }

    /// The query parameter of Gladly's find for this key.
    pub fn query(self) -> &'static str {
        match self {
            MatchKey::ExternalCustomerId => "externalCustomerId",
            MatchKey::Email => "email",
            MatchKey::Phone => "phoneNumber",
        }
    }

    /// How a message names the row's value for this key.
    pub fn label(self) -> &'static str {
        match self {
            MatchKey::ExternalCustomerId => "external customer id",
            MatchKey::Email => "email",
            MatchKey::Phone => "phone number",
        }
    }

    /// The mapping targets that give this key a value (any one of them is enough).
    pub fn targets(self) -> &'static [StandardField] {
        match self {
            MatchKey::ExternalCustomerId => &[StandardField::ExternalCustomerId],
            MatchKey::Email => &[StandardField::Email],
            MatchKey::Phone => &[
                StandardField::Phone,
                StandardField::MobilePhone,
                StandardField::HomePhone,
                StandardField::OfficePhone,
            ],
        }
    }

    /// The value the mapped `profile` gives this key, if any: the external id as written, the
    /// first email in its lookup form, the first phone in E.164.
    pub fn value(self, profile: &Profile) -> Option<String> {
        let value = match self {
            MatchKey::ExternalCustomerId => profile.external_customer_id.clone(),
            MatchKey::Email => profile.emails.first().map(|e| email::key(&e.original)),
            MatchKey::Phone => profile.phones.first().map(|p| p.original.clone()),
        };
        value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// Parses a `match-on` value: key names separated by commas, in order, each once.
    pub fn parse_list(value: &str) -> Result<Vec<MatchKey>, String> {
        let mut keys = Vec::new();
        for part in value.split(',').map(str::trim) {
            let Some(key) = MatchKey::ALL.into_iter().find(|k| k.name() == part) else {
                return Err(format!("{part:?} is not a match key"));
            };
            if keys.contains(&key) {
                return Err(format!("{part} is listed twice"));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// The setting value for `keys`.
    pub fn join(keys: &[MatchKey]) -> String {
        keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{EmailEntry, PhoneEntry};

    #[test]
    fn parses_an_ordered_list_and_refuses_unknown_or_repeated_keys() {
        assert_eq!(
            MatchKey::parse_list("externalCustomerId, email,phone"),
            Ok(vec![MatchKey::ExternalCustomerId, MatchKey::Email, MatchKey::Phone])
        );
        assert_eq!(MatchKey::parse_list("email"), Ok(vec![MatchKey::Email]));
        assert_eq!(MatchKey::parse_list("email,mail"), Err("\"mail\" is not a match key".to_string()));
        assert_eq!(MatchKey::parse_list(""), Err("\"\" is not a match key".to_string()));
        assert_eq!(MatchKey::parse_list("phone,phone"), Err("phone is listed twice".to_string()));
        assert_eq!(MatchKey::join(&[MatchKey::Phone, MatchKey::Email]), "phone,email");
    }

    #[test]
    fn values_come_from_the_mapped_profile() {
        let profile = Profile {
            external_customer_id: Some(" ext-7 ".into()),
            emails: vec![EmailEntry { original: " A@Example.com".into(), ..Default::default() }],
            phones: vec![PhoneEntry { original: "+14155552671".into(), ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(MatchKey::ExternalCustomerId.value(&profile).as_deref(), Some("ext-7"));
        assert_eq!(MatchKey::Email.value(&profile).as_deref(), Some("a@example.com"));
        assert_eq!(MatchKey::Phone.value(&profile).as_deref(), Some("+14155552671"));
        assert_eq!(MatchKey::Phone.value(&Profile::default()), None);
    }
}
