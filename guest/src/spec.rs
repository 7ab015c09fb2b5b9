//! What the destination offers (the WIT `destination-spec`), as plain data.
//!
//! The standard target fields and the support of each mode are defined once here; `mapping`
//! reads the fields and `validate` the mode support from this module, so the spec a host renders
//! and the rules the plugin enforces cannot drift apart. The setting keys and defaults it lists
//! come from `settings`.

use crate::model::SyncMode;
use crate::settings::{
    DEFAULT_ATTRIBUTE_MODE, DEFAULT_ATTRIBUTE_PATCH, DEFAULT_CREATE_FIRST, DEFAULT_MATCH_ON,
    DEFAULT_REGION, KEY_ATTRIBUTE_MODE, KEY_ATTRIBUTE_PATCH, KEY_CREATE_FIRST, KEY_DEFAULT_REGION,
    KEY_DOMAIN, KEY_MATCH_ON, KEY_SANDBOX, KEY_USERNAME,
};

/// The kind of value a target field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A URL.
    Url,
    /// Gladly's own customer id.
    RecordId,
    /// A JSON object of key/value pairs.
    Object,
}

/// A field a mapping may target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetField {
    /// Name used in `field-mapping.target`.
    pub name: String,
    /// Kind of value.
    pub kind: FieldKind,
    /// What it is.
    pub description: String,
    /// Whether every mapping must include it.
    pub required: bool,
    /// Whether records can be looked up by it.
    pub matchable: bool,
    /// Whether several columns may map to it.
    pub repeatable: bool,
}

/// A configuration entry the host collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigField {
    /// Key in `setting.key`.
    pub key: String,
    /// Form label.
    pub label: String,
    /// What it means and what to type.
    pub description: String,
    /// Whether it must be given.
    pub required: bool,
    /// Value used when absent.
    pub default_value: Option<String>,
    /// Example value.
    pub example: Option<String>,
}

/// Whether a mode is supported, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSupport {
    /// The mode.
    pub mode: SyncMode,
    /// Supported or not.
    pub supported: bool,
    /// Why not (empty when supported).
    pub reason: String,
}

/// The credential the host attaches at egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credential.
    None,
    /// HTTP Basic.
    Basic {
        /// Config key whose value is the username.
        username_key: String,
        /// What the secret is, for the operator.
        secret_description: String,
    },
}

/// Everything a host needs to offer, validate and run the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationSpec {
    /// Machine name.
    pub name: String,
    /// Human name.
    pub title: String,
    /// Plugin version.
    pub version: String,
    /// One paragraph.
    pub description: String,
    /// Configuration to collect.
    pub config_fields: Vec<ConfigField>,
    /// Fields a mapping may target.
    pub target_fields: Vec<TargetField>,
    /// Whether unlisted targets become custom attributes.
    pub accepts_custom_fields: bool,
    /// Whether the schema can be listed (no, for Gladly).
    pub schema_introspection: bool,
    /// Every mode with its support.
    pub modes: Vec<ModeSupport>,
    /// Credential to attach.
    pub credential: Credential,
    /// Requests per second Gladly allows by default.
    pub suggested_rate_per_second: u32,
    /// Per-request timeout in milliseconds.
    pub suggested_timeout_ms: u32,
    /// Retries of a retryable record.
    pub suggested_max_retries: u32,
    /// Requests in flight at once.
    pub suggested_concurrency: u32,
}

/// The standard Gladly profile fields a mapping may target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardField {
    /// Gladly customer id.
    Id,
    /// Full name.
    Name,
    /// An email address (repeatable).
    Email,
    /// An untyped phone number (repeatable).
    Phone,
    /// A MOBILE phone.
    MobilePhone,
    /// A HOME phone.
    HomePhone,
    /// An OFFICE phone.
    OfficePhone,
    /// Mailing address, one string.
    Address,
    /// Avatar URL.
    Image,
    /// The customer's id in the caller's system.
    ExternalCustomerId,
    /// A JSON object whose keys join `customAttributes`.
    CustomAttributes,
    /// The row's phone region (ISO 3166 alpha-2), overriding `default-region` for its phones.
    PhoneRegion,
}

impl StandardField {
    /// Every standard field, in spec order.
    pub const ALL: [StandardField; 12] = [
        StandardField::Id,
        StandardField::Name,
        StandardField::Email,
        StandardField::Phone,
        StandardField::MobilePhone,
        StandardField::HomePhone,
        StandardField::OfficePhone,
        StandardField::Address,
        StandardField::Image,
        StandardField::ExternalCustomerId,
        StandardField::CustomAttributes,
        StandardField::PhoneRegion,
    ];

    /// The target name.
    pub fn name(self) -> &'static str {
        match self {
            StandardField::Id => "id",
            StandardField::Name => "name",
            StandardField::Email => "email",
            StandardField::Phone => "phone",
            StandardField::MobilePhone => "mobilePhone",
            StandardField::HomePhone => "homePhone",
            StandardField::OfficePhone => "officePhone",
            StandardField::Address => "address",
            StandardField::Image => "image",
            StandardField::ExternalCustomerId => "externalCustomerId",
            StandardField::CustomAttributes => "customAttributes",
            StandardField::PhoneRegion => "phoneRegion",
        }
    }

    /// The standard field with exactly this name.
    pub fn from_name(name: &str) -> Option<StandardField> {
        StandardField::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its kind.
    pub fn kind(self) -> FieldKind {
        match self {
            StandardField::Id => FieldKind::RecordId,
            StandardField::Email => FieldKind::Email,
            StandardField::Phone
            | StandardField::MobilePhone
            | StandardField::HomePhone
            | StandardField::OfficePhone => FieldKind::Phone,
            StandardField::Image => FieldKind::Url,
            StandardField::CustomAttributes => FieldKind::Object,
            StandardField::Name
            | StandardField::Address
            | StandardField::ExternalCustomerId
            | StandardField::PhoneRegion => FieldKind::Text,
        }
    }

    /// Whether several columns may feed it.
    pub fn repeatable(self) -> bool {
        matches!(
            self,
            StandardField::Email | StandardField::Phone | StandardField::CustomAttributes
        )
    }

    fn description(self) -> &'static str {
        match self {
            StandardField::Id => {
                "Gladly customer id of an existing profile. Needed by update mode; upsert uses it \
                 to skip the email lookup."
            }
            StandardField::Name => "Customer's full name.",
            StandardField::Email => {
                "Email address; identifies the customer in upsert. Map several columns for \
                 several addresses; the first one is the primary and the match value. Required \
                 except in update mode."
            }
            StandardField::Phone => {
                "Phone number without a type. Numbers not in +E.164 form are read in the \
                 default-region setting. Several columns may map here."
            }
            StandardField::MobilePhone => "Phone number stored with type MOBILE.",
            StandardField::HomePhone => "Phone number stored with type HOME.",
            StandardField::OfficePhone => "Phone number stored with type OFFICE.",
            StandardField::Address => "Mailing address as one line of text.",
            StandardField::Image => "URL of an image shown as the customer's avatar.",
            StandardField::ExternalCustomerId => {
                "Your system's id for the customer (only for Gladly organizations whose lookup \
                 adaptor allows setting it)."
            }
            StandardField::CustomAttributes => {
                "A JSON object column; each key becomes a custom attribute. Any other target \
                 name (or customAttributes.<key>) also becomes a custom attribute."
            }
            StandardField::PhoneRegion => {
                "Two-letter region (e.g. a country column holding GB) used to read this row's \
                 phone numbers that are not in +E.164 form; overrides default-region. Not sent."
            }
        }
    }

    /// The spec entry for this field.
    pub fn target_field(self) -> TargetField {
        TargetField {
            name: self.name().to_string(),
            kind: self.kind(),
            description: self.description().to_string(),
            required: self == StandardField::Email,
            matchable: matches!(
                self,
                StandardField::Id | StandardField::Email | StandardField::ExternalCustomerId
            ),
            repeatable: self.repeatable(),
        }
    }
}

/// Support and reason for one mode.
pub fn mode_support(mode: SyncMode) -> ModeSupport {
    let reason = match mode {
        SyncMode::Upsert | SyncMode::Insert | SyncMode::Update => "",
        SyncMode::Mirror => {
            "Mirror would delete profiles missing from the model; Gladly deletions are permanent, \
             need the Compliance Admin role and fail while a conversation is open, so this \
             destination never deletes."
        }
        SyncMode::AudienceAdd
        | SyncMode::AudienceRemove
        | SyncMode::AudienceMirror
        | SyncMode::AudienceUpsert => {
            "Gladly has no list, segment or audience membership API: profiles are standalone \
             records, so audience modes cannot be offered."
        }
    };
    ModeSupport {
        mode,
        supported: reason.is_empty(),
        reason: reason.to_string(),
    }
}

/// The destination's spec.
pub fn spec() -> DestinationSpec {
    DestinationSpec {
        name: "gladly".to_string(),
        title: "Gladly".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: "Creates and updates Gladly customer profiles (name, emails, phones, \
                      address, avatar, external id and custom attributes) from warehouse rows \
                      through Gladly's REST API, one profile per request. Existing emails and \
                      phones on a profile are kept; only changed fields are written."
            .to_string(),
        config_fields: config_fields(),
        target_fields: StandardField::ALL
            .into_iter()
            .map(StandardField::target_field)
            .collect(),
        accepts_custom_fields: true,
        schema_introspection: false,
        modes: SyncMode::ALL.into_iter().map(mode_support).collect(),
        credential: Credential::Basic {
            username_key: KEY_USERNAME.to_string(),
            secret_description: "API token of the Gladly API user (created by an admin in \
                                 Gladly under Settings > API Tokens; shown only once)."
                .to_string(),
        },
        suggested_rate_per_second: 10,
        suggested_timeout_ms: 30_000,
        suggested_max_retries: 3,
        suggested_concurrency: 5,
    }
}

fn config_fields() -> Vec<ConfigField> {
    let field =
        |key: &str, label: &str, description: &str, default: Option<&str>, ex: &str| ConfigField {
            key: key.to_string(),
            label: label.to_string(),
            description: description.to_string(),
            required: default.is_none(),
            default_value: default.map(str::to_string),
            example: Some(ex.to_string()),
        };
    vec![
        field(
            KEY_DOMAIN,
            "Organization domain",
            "Only the organization part of your Gladly address: for https://mycompany.gladly.com \
             enter mycompany; for https://mycompany.us-1.gladly.com enter mycompany.us-1. Not a \
             URL.",
            None,
            "mycompany",
        ),
        field(
            KEY_USERNAME,
            "API user email",
            "Email address of the Gladly user that holds the API User permission and owns the \
             token.",
            None,
            "api-user@mycompany.com",
        ),
        field(
            KEY_SANDBOX,
            "Sandbox",
            "true sends requests to your sandbox organization ({domain}.gladly.qa) instead of \
             production ({domain}.gladly.com).",
            Some("false"),
            "true",
        ),
        field(
            KEY_DEFAULT_REGION,
            "Default phone region",
            "Two-letter region code used to read phone numbers that do not start with + and a \
             country code.",
            Some(DEFAULT_REGION),
            "GB",
        ),
        field(
            KEY_ATTRIBUTE_MODE,
            "Custom attribute values",
            "string sends every custom attribute as text (Gladly's own convention); typed keeps \
             JSON numbers and booleans as they are.",
            Some(DEFAULT_ATTRIBUTE_MODE),
            "typed",
        ),
        field(
            KEY_ATTRIBUTE_PATCH,
            "Custom attributes on update",
            "merge if your organization keeps the custom attributes a PATCH does not name (a \
             changed attribute then costs one request); replace if a PATCH replaces the whole \
             map (each change then reads the profile first, so attributes set by agents or other \
             tools are kept).",
            Some(DEFAULT_ATTRIBUTE_PATCH),
            "replace",
        ),
        field(
            KEY_MATCH_ON,
            "Match customers on",
            "For upsert: the keys a customer is looked up by when the host knows no Gladly id for \
             the row yet, tried in order: externalCustomerId, email, phone. The first key with a \
             value that finds exactly one profile decides; several profiles on one key fail the \
             row as ambiguous; none on any key creates. Each key must be mapped.",
            Some(DEFAULT_MATCH_ON),
            "externalCustomerId,email",
        ),
        field(
            KEY_CREATE_FIRST,
            "Create before looking up",
            "For upsert with match keys Gladly keeps unique (email, mobile phone): auto creates \
             a customer the host has no Gladly id for with one request and falls back to a \
             lookup when Gladly answers that the email or phone is taken; it switches to looking \
             up first while most customers turn out to exist already, and back. off always looks \
             up first. A match on externalCustomerId always looks up first.",
            Some(DEFAULT_CREATE_FIRST),
            "off",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_lists_fields_and_modes() {
        let s = spec();
        assert_eq!(s.name, "gladly");
        assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(s.modes.len(), 8);
        let supported: Vec<_> = s
            .modes
            .iter()
            .filter(|m| m.supported)
            .map(|m| m.mode)
            .collect();
        assert_eq!(
            supported,
            vec![SyncMode::Upsert, SyncMode::Insert, SyncMode::Update]
        );
        assert!(s.modes.iter().all(|m| m.supported == m.reason.is_empty()));
        let email = s.target_fields.iter().find(|f| f.name == "email").unwrap();
        assert!(email.required && email.matchable && email.repeatable);
        assert_eq!(email.kind, FieldKind::Email);
        let id = s.target_fields.iter().find(|f| f.name == "id").unwrap();
        assert_eq!(id.kind, FieldKind::RecordId);
        assert!(id.matchable && !id.required);
        let keys: Vec<_> = s.config_fields.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "domain",
                "username",
                "sandbox",
                "default-region",
                "custom-attribute-values",
                "custom-attributes-patch",
                "match-on",
                "create-first"
            ]
        );
        assert!(
            matches!(s.credential, Credential::Basic { ref username_key, .. } if username_key == "username")
        );
        assert_eq!(
            (
                s.suggested_rate_per_second,
                s.suggested_timeout_ms,
                s.suggested_max_retries,
                s.suggested_concurrency
            ),
            (10, 30_000, 3, 5)
        );
    }

    #[test]
    fn standard_names_round_trip() {
        for f in StandardField::ALL {
            assert_eq!(StandardField::from_name(f.name()), Some(f));
        }
        assert_eq!(StandardField::from_name("Email"), None);
    }
}
